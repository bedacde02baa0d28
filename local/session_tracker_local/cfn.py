"""Read ``template.yaml``: functions, their event sources, and the table definition.

The local stack is driven entirely by what the template declares: a function
with an ``HttpApi`` event gets a route, a ``DynamoDB`` event gets a stream poller
(with its ``FilterCriteria``), a ``Schedule``/``ScheduleV2`` event gets a timer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_TAGS = (
    "Ref",
    "GetAtt",
    "Sub",
    "Join",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Select",
    "Split",
    "FindInMap",
    "ImportValue",
    "GetAZs",
    "Base64",
    "Cidr",
    "Condition",
    "Transform",
)


class _Loader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form intrinsic tags."""


def _make_constructor(tag: str) -> Any:
    key = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else f"Fn::{tag}")

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: value}

    return construct


for _tag in _TAGS:
    _Loader.add_constructor(f"!{_tag}", _make_constructor(_tag))


def load_template(path: Path) -> dict[str, Any]:
    """The template as plain data, intrinsics as their long ``{"Fn::X": ...}`` forms."""
    with path.open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a CloudFormation template")
    return data


@dataclass(frozen=True)
class EventSource:
    name: str
    type: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, Any]
    events: list[EventSource] = field(default_factory=list)
    timeout: int = 10

    @property
    def module_file(self) -> Path:
        module = self.handler.rsplit(".", 1)[0]
        return self.code_uri / (module.replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass
class Template:
    path: Path
    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Template:
        return cls(path=path, data=load_template(path))

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.data.get("Resources", {})
        return resources

    def resources_of(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == type_}

    def parameter_defaults(self) -> dict[str, Any]:
        return {k: v.get("Default") for k, v in self.data.get("Parameters", {}).items()}

    def functions(self) -> list[FunctionSpec]:
        globals_fn = self.data.get("Globals", {}).get("Function", {})
        global_env = globals_fn.get("Environment", {}).get("Variables", {})
        specs = []
        for logical_id, res in self.resources_of("AWS::Serverless::Function").items():
            props = res.get("Properties", {})
            env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
            events = [
                EventSource(name=name, type=ev.get("Type", ""), properties=ev.get("Properties", {}) or {})
                for name, ev in (props.get("Events") or {}).items()
            ]
            specs.append(
                FunctionSpec(
                    logical_id=logical_id,
                    code_uri=(self.root / props["CodeUri"]).resolve(),
                    handler=props.get("Handler", globals_fn.get("Handler", "app.lambda_handler")),
                    environment=env,
                    events=events,
                    timeout=int(props.get("Timeout", globals_fn.get("Timeout", 10))),
                )
            )
        return specs

    def table(self, logical_id: str | None = None) -> tuple[str, dict[str, Any]]:
        tables = self.resources_of("AWS::DynamoDB::Table")
        if logical_id:
            return logical_id, tables[logical_id]["Properties"]
        if len(tables) != 1:
            raise ValueError(f"expected one DynamoDB table in the template, found {len(tables)}")
        name, res = next(iter(tables.items()))
        return name, res["Properties"]

    def create_table_request(self, table_name: str, logical_id: str | None = None) -> dict[str, Any]:
        """A boto3 ``create_table`` request equivalent to the template's table."""
        _, props = self.table(logical_id)
        request: dict[str, Any] = {
            "TableName": table_name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if props.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = [
                {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
                for g in props["GlobalSecondaryIndexes"]
            ]
        if props.get("StreamSpecification"):
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": props["StreamSpecification"]["StreamViewType"],
            }
        return request


_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


def resolve(value: Any, refs: dict[str, Any]) -> Any:
    """Resolve intrinsics with local stand-ins (``refs`` maps Ref/GetAtt names to values).

    Unknown references resolve to an empty string, so a function's environment
    never holds a raw intrinsic.
    """
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return refs.get(arg, "")
        if key == "Fn::GetAtt":
            return refs.get(".".join(arg), "")
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            scope = {**refs, **{k: resolve(v, refs) for k, v in extra.items()}}
            return _SUB_VAR.sub(lambda m: str(scope.get(m.group(1), "")), text)
        if key == "Fn::Join":
            sep, items = arg
            return sep.join(str(resolve(i, refs)) for i in items)
        if key == "Fn::If":
            return resolve(arg[2], refs)
        if key.startswith("Fn::"):
            return ""
    if isinstance(value, dict):
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    return value
