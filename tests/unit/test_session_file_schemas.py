"""The Athena table in docs/session-files.md matches the export model field for field, and its
partition projection matches the layout the writer uses."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from session_tracker.models import SessionExport
from session_tracker.session_files import file_key

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "session-files.md"


def athena_statement(text: str) -> str:
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    (ddl,) = [b for b in blocks if b.lstrip().upper().startswith("CREATE EXTERNAL TABLE")]
    return ddl


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside <...> and (...)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def parse_type(text: str) -> Any:
    """A Hive type as a comparable value: "string", ("array", t), ("struct", {name: t})."""
    text = " ".join(text.split())
    lower = text.lower()
    if lower.startswith("array<") and text.endswith(">"):
        return ("array", parse_type(text[6:-1]))
    if lower.startswith("struct<") and text.endswith(">"):
        fields = {}
        for part in split_top(text[7:-1]):
            name, _, kind = part.partition(":")
            fields[name.strip().strip("`")] = parse_type(kind)
        return ("struct", fields)
    return lower


def parse_columns(ddl: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], str]:
    """(columns, partition columns, TBLPROPERTIES, LOCATION) of a CREATE EXTERNAL TABLE."""
    head = ddl.index("(")
    depth, end = 0, head
    for end, ch in enumerate(ddl[head:], start=head):  # noqa: B007
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            break
    columns = {}
    for part in split_top(ddl[head + 1 : end]):
        name, kind = part.split(None, 1)
        columns[name.strip("`")] = parse_type(kind)
    partition_text = re.search(r"PARTITIONED BY \((.*?)\)", ddl, flags=re.S)
    assert partition_text, "no PARTITIONED BY"
    partitions = {}
    for part in split_top(partition_text.group(1)):
        name, kind = part.split(None, 1)
        partitions[name.strip("`")] = parse_type(kind)
    properties = dict(re.findall(r"'([^']+)'\s*=\s*'([^']*)'", ddl[ddl.index("TBLPROPERTIES") :]))
    location = re.search(r"LOCATION\s+'([^']+)'", ddl)
    assert location, "no LOCATION"
    return columns, partitions, properties, location.group(1)


_SCALARS = {str: "string", int: "bigint", float: "double", bool: "boolean", datetime: "string"}


def expected_type(annotation: Any) -> Any:
    """The Hive type the DDL must give a pydantic field (free-form objects: JSON text, ``string``)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return expected_type(args[0])
    if origin in (Union, UnionType):
        kinds = [a for a in args if a is not type(None)]
        return expected_type(kinds[0]) if len(kinds) == 1 else "string"
    if origin is Literal:
        return "string"
    if origin is list:
        return ("array", expected_type(args[0]))
    if origin is dict or annotation is dict:
        return "string"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("struct", {n: expected_type(f.annotation) for n, f in annotation.model_fields.items()})
    return _SCALARS[annotation]


@pytest.fixture(scope="module")
def table() -> tuple[dict[str, Any], dict[str, Any], dict[str, str], str]:
    return parse_columns(athena_statement(DOC.read_text(encoding="utf-8")))


def test_the_athena_columns_are_the_export_models_fields_with_their_types(table) -> None:
    columns, _, _, _ = table
    expected = {name: expected_type(f.annotation) for name, f in SessionExport.model_fields.items()}
    assert list(columns) == list(expected), "column names/order differ from SessionExport"
    for name, kind in expected.items():
        assert columns[name] == kind, f"{name}: DDL has {columns[name]!r}, the model needs {kind!r}"


def test_the_schema_check_catches_a_missing_struct_field(table) -> None:
    columns, _, _, _ = table
    broken = dict(columns["session_summary"][1])
    broken.pop("data_requests")
    summary = SessionExport.model_fields["session_summary"].annotation
    assert ("struct", broken) != expected_type(summary)


def test_the_partition_projection_is_the_writers_layout(table) -> None:
    _, partitions, props, location = table
    assert partitions == {"date": "string"}
    assert props["projection.enabled"] == "true"
    assert props["projection.date.type"] == "date"
    assert props["projection.date.format"] == "yyyy-MM-dd"
    assert props["projection.date.interval.unit"] == "DAYS"
    assert location.endswith("/sessions/")
    template = props["storage.location.template"]
    assert template == location + "date=${date}/"
    started = datetime(2026, 3, 4, 23, 59, tzinfo=UTC)
    key = file_key("emma_smith_20260304_2359", started)
    folder = template.replace("${date}", started.strftime("%Y-%m-%d")).removeprefix("s3://YOUR_BUCKET/")
    assert key == folder + "emma_smith_20260304_2359.json"


def test_the_serde_reads_one_object_per_line(table) -> None:
    ddl = athena_statement(DOC.read_text(encoding="utf-8"))
    assert "org.openx.data.jsonserde.JsonSerDe" in ddl
