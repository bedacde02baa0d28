"""template.yaml: every reference resolves, and the promises the issues make of it (cfn-lint and
``sam validate``: tests/tools/test_template_tools.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from session_tracker_local.cfn import Template

ROOT = Path(__file__).resolve().parents[2]
PSEUDO = {
    "AWS::Region",
    "AWS::AccountId",
    "AWS::Partition",
    "AWS::StackName",
    "AWS::StackId",
    "AWS::URLSuffix",
    "AWS::NoValue",
    "AWS::NotificationARNs",
}
# Attributes SAM adds for a resource (e.g. an implicit role or version).
SAM_GENERATED = re.compile(r".+(Role|Version|Alias)$")


@pytest.fixture(scope="module")
def tpl() -> Template:
    return Template.load(ROOT / "template.yaml")


def _walk(node: Any, found: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.append(("Ref", value))
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.append(("GetAtt", target))
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                local = set(value[1]) if isinstance(value, list) else set()
                for var in re.findall(r"\$\{([^}!]+)\}", text):
                    name = var.split(".")[0]
                    if name not in local:
                        found.append(("Sub", name))
                if isinstance(value, list):
                    _walk(value[1], found)
            else:
                _walk(value, found)
    elif isinstance(node, list):
        for item in node:
            _walk(item, found)


def test_every_ref_getatt_and_sub_target_exists(tpl: Template) -> None:
    found: list[tuple[str, str]] = []
    _walk(tpl.data.get("Resources", {}), found)
    _walk(tpl.data.get("Outputs", {}), found)
    _walk(tpl.data.get("Globals", {}), found)
    _walk(tpl.data.get("Conditions", {}), found)
    known = set(tpl.resources) | set(tpl.data.get("Parameters", {})) | PSEUDO
    missing = [
        (kind, name)
        for kind, name in found
        if name not in known and not (SAM_GENERATED.match(name) and name.rsplit("Role", 1)[0] in known)
    ]
    assert found, "no references found: the walker is broken"
    assert not missing, f"undefined targets: {missing}"


def test_the_reference_check_catches_a_typo(tpl: Template) -> None:
    found: list[tuple[str, str]] = []
    _walk({"X": {"Fn::Sub": "${SessionTable.Arn}/index/GSI1"}}, found)
    known = set(tpl.resources)
    assert [n for _, n in found if n not in known] == ["SessionTable"]


def test_table_has_stream_ttl_pitr_and_encryption(tpl: Template) -> None:
    _, props = tpl.table()
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert props["TimeToLiveSpecification"]["AttributeName"] == "expires_at"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_functions_are_arm64_with_powertools_and_tracing(tpl: Template) -> None:
    globals_fn = tpl.data["Globals"]["Function"]
    assert globals_fn["Architectures"] == ["arm64"]
    assert globals_fn["Tracing"] == "Active"
    assert "POWERTOOLS_SERVICE_NAME" in globals_fn["Environment"]["Variables"]
    for spec in tpl.functions():
        assert spec.module_file.is_file(), spec.module_file


def test_no_wildcard_actions_in_function_policies(tpl: Template) -> None:
    for name, res in tpl.resources_of("AWS::Serverless::Function").items():
        for policy in res["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert not any(a == "*" or a.endswith(":*") for a in actions), (name, actions)


def test_stored_openapi_document_is_current() -> None:
    from session_tracker_local.openapi import build_document, target

    stored = json.loads(target(ROOT).read_text())
    assert stored == build_document(ROOT), "run `make openapi` and commit the result"
