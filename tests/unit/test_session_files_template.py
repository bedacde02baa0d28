"""template.yaml, session files: the writer's stream filter, its least-privilege S3 rights, and
the bucket rules (encryption, retention lifecycle) that cover the files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from session_tracker_local.cfn import Template
from session_tracker_local.streams import EventFilter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tpl() -> Template:
    return Template.load(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def files_filter(tpl: Template) -> EventFilter:
    spec = next(f for f in tpl.functions() if f.logical_id == "SessionFilesFunction")
    source = next(e for e in spec.events if e.type == "DynamoDB")
    return EventFilter.from_criteria(source.properties["FilterCriteria"])


def rec(sk: str = "META", new: str | None = None, old: str | None = None, name: str = "MODIFY") -> dict[str, Any]:
    ddb: dict[str, Any] = {"Keys": {"PK": {"S": "SESSION#s1"}, "SK": {"S": sk}}}
    if new:
        ddb["NewImage"] = {"status": {"S": new}}
    if old:
        ddb["OldImage"] = {"status": {"S": old}}
    return {"eventName": name, "dynamodb": ddb}


def _statements(tpl: Template, function: str) -> list[dict[str, Any]]:
    policies = tpl.resources[function]["Properties"].get("Policies", [])
    return [s for p in policies if isinstance(p, dict) for s in p.get("Statement", [])]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_finishing_changing_reopening_and_deleting_a_finished_session_reach_the_writer(files_filter) -> None:
    assert files_filter(rec(new="closed", old="active"))
    assert files_filter(rec(new="completed", old="closed"))
    assert files_filter(rec(new="completed", old="completed"))
    assert files_filter(rec(new="active", old="closed"))  # reopened: its file goes
    assert files_filter(rec(old="completed", name="REMOVE"))  # erased or expired
    assert files_filter(rec(new="completed", name="INSERT"))  # a platform report making a session


def test_active_sessions_calls_and_unmatched_reports_do_not(files_filter) -> None:
    assert not files_filter(rec(new="active", old="active"))
    assert not files_filter(rec(new="active", name="INSERT"))
    assert not files_filter(rec(new="unmatched", name="INSERT"))
    assert not files_filter(rec(sk="I#2026-01-17T14:30:05.000000Z#x", new="closed"))
    assert not files_filter(rec(old="active", name="REMOVE"))


def test_the_writer_may_only_put_and_delete_under_sessions(tpl: Template) -> None:
    writes = [
        s for s in _statements(tpl, "SessionFilesFunction") if any(a != "s3:GetObject" for a in _as_list(s["Action"]))
    ]
    s3_writes = [s for s in writes if any(a.startswith("s3:") for a in _as_list(s["Action"]))]
    assert len(s3_writes) == 1
    (statement,) = s3_writes
    assert sorted(_as_list(statement["Action"])) == ["s3:DeleteObject", "s3:PutObject"]
    assert [r["Fn::Sub"] for r in _as_list(statement["Resource"])] == ["${BlobBucket.Arn}/sessions/*"]
    dynamodb = {a for s in writes for a in _as_list(s["Action"]) if a.startswith("dynamodb:")}
    assert dynamodb == {"dynamodb:GetItem", "dynamodb:Query"}


def test_no_other_function_can_write_session_files(tpl: Template) -> None:
    for name in tpl.resources_of("AWS::Serverless::Function"):
        if name == "SessionFilesFunction":
            continue
        for statement in _statements(tpl, name):
            if any(a in ("s3:PutObject", "s3:DeleteObject") for a in _as_list(statement["Action"])):
                assert "/sessions/" not in json.dumps(statement["Resource"]), name


def test_the_buckets_encryption_and_retention_cover_the_whole_bucket(tpl: Template) -> None:
    bucket = tpl.resources["BlobBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    (expiry,) = [r for r in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    assert expiry["ExpirationInDays"] == {"Fn::If": ["KeepForever", 1, {"Ref": "RetentionDays"}]}
    assert "Prefix" not in expiry and "Filter" not in expiry, "the retention rule must not skip sessions/"


def test_failed_batches_are_retried_in_order_then_dead_lettered(tpl: Template) -> None:
    spec = next(f for f in tpl.functions() if f.logical_id == "SessionFilesFunction")
    props = next(e for e in spec.events if e.type == "DynamoDB").properties
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 < props["MaximumRetryAttempts"] <= 10
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["SessionFilesDeadLetterQueue", "Arn"]
    }
    alarmed = {
        json.dumps(r["Properties"].get("Dimensions")) for r in tpl.resources_of("AWS::CloudWatch::Alarm").values()
    }
    assert any("SessionFilesDeadLetterQueue" in a for a in alarmed)
