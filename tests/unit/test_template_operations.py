"""template.yaml, operations side: every function is watched (alarms, dashboard, log
retention), the custom metrics we alarm on are ones the code emits, and the
resources that hold student data are encrypted and bounded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from session_tracker_local.cfn import Template, resolve

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "TutorSessionTracker"


@pytest.fixture(scope="module")
def tpl() -> Template:
    return Template.load(ROOT / "template.yaml")


def _functions(tpl: Template) -> list[str]:
    return sorted(tpl.resources_of("AWS::Serverless::Function"))


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {v.split(".")[0] for v in re.findall(r"\$\{([^}!]+)\}", text)}
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _emitted_metrics() -> set[str]:
    names: set[str] = set()
    for path in [*(ROOT / "functions").rglob("*.py"), *(ROOT / "layers/common/session_tracker").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"""\bcount\(\s*["']([A-Za-z]+)["']""", text))
        names |= set(re.findall(r"""add_metric\(\s*name\s*=\s*["']([A-Za-z]+)["']""", text))
        # count_platform_delivery(result, received_metric="...") counts that name
        names |= set(re.findall(r"""\breceived_metric\s*=\s*["']([A-Za-z]+)["']""", text))
    return names


def test_every_function_is_in_the_error_alarm_and_the_dashboard(tpl: Template) -> None:
    alarm = tpl.resources["LambdaErrorsAlarm"]["Properties"]
    dashboard = tpl.resources["Dashboard"]["Properties"]["DashboardBody"]
    for name in _functions(tpl):
        assert name in _refs(alarm["Metrics"]), f"{name} is not in LambdaErrorsAlarm"
        assert name in _refs(dashboard), f"{name} is not on the dashboard"


def test_every_function_has_a_log_group_with_retention(tpl: Template) -> None:
    groups = tpl.resources_of("AWS::Logs::LogGroup")
    covered = {ref for g in groups.values() for ref in _refs(g["Properties"].get("LogGroupName", {}))}
    for name in _functions(tpl):
        assert name in covered, f"{name} has no log group (logs would be kept forever)"
    for group in groups.values():
        assert group["Properties"].get("RetentionInDays") == RETENTION_OR_FOREVER


def test_dashboard_body_is_valid_json_once_substituted(tpl: Template) -> None:
    body = tpl.resources["Dashboard"]["Properties"]["DashboardBody"]
    refs = {name: f"stub-{name}" for name in tpl.resources} | {"AWS::Region": "eu-west-1"}
    refs |= {f"{name}.QueueName": f"queue-{name}" for name in tpl.resources}
    document = json.loads(resolve(body, refs))
    assert len(document["widgets"]) >= 6


def _dashboard_metrics(tpl: Template, namespace: str) -> set[str]:
    """Metric names of ``namespace`` on the dashboard (following CloudWatch's "." shorthand)."""
    body = tpl.resources["Dashboard"]["Properties"]["DashboardBody"]
    document = json.loads(resolve(body, {name: name for name in tpl.resources}))
    names: set[str] = set()
    for widget in document["widgets"]:
        previous: list[Any] = []
        for row in widget["properties"].get("metrics", []):
            row = [v for v in row if not isinstance(v, dict)]
            if row and row[0] == "...":
                continue
            row = [previous[i] if v == "." and i < len(previous) else v for i, v in enumerate(row)]
            previous = row
            if row[0] == namespace:
                names.add(row[1])
    return names


def test_custom_metrics_on_alarms_and_dashboard_are_emitted_by_the_code(tpl: Template) -> None:
    emitted = _emitted_metrics()
    wanted = {
        res["Properties"]["MetricName"]
        for res in tpl.resources_of("AWS::CloudWatch::Alarm").values()
        if res["Properties"].get("Namespace") == NAMESPACE
    }
    wanted |= _dashboard_metrics(tpl, NAMESPACE)
    assert wanted, "no custom metrics found: the parser is broken"
    assert wanted <= emitted, f"metrics nobody emits: {sorted(wanted - emitted)}"


@pytest.mark.parametrize(
    "alarm",
    [
        "ApiServerErrorsAlarm",
        "LambdaErrorsAlarm",
        "LambdaThrottlesAlarm",
        "TableThrottlesAlarm",
        "StreamIteratorAgeAlarm",
        "AnalysisDeadLetterAlarm",
        "AnalysisFailuresAlarm",
    ],
)
def test_alarms_notify_the_alarm_topic(tpl: Template, alarm: str) -> None:
    assert tpl.resources[alarm]["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_analysis_concurrency_is_reserved_and_the_closer_never_overlaps(tpl: Template) -> None:
    assert 1 <= tpl.resources["AnalyzeFunction"]["Properties"]["ReservedConcurrentExecutions"] <= 5
    assert tpl.resources["CloseIdleFunction"]["Properties"]["ReservedConcurrentExecutions"] == 1


def test_api_is_throttled_by_default(tpl: Template) -> None:
    settings = tpl.resources["HttpApi"]["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ThrottleBurstLimit"}


def test_stored_data_is_encrypted_and_expires(tpl: Template) -> None:
    for res in tpl.resources_of("AWS::S3::Bucket").values():
        props = res["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
        assert props.get("LifecycleConfiguration"), "bucket without lifecycle: data kept forever"
    for res in tpl.resources_of("AWS::SQS::Queue").values():
        props = res["Properties"]
        assert props.get("SqsManagedSseEnabled") or props.get("KmsMasterKeyId")
    for res in tpl.resources_of("AWS::SNS::Topic").values():
        assert res["Properties"].get("KmsMasterKeyId")


def test_table_actions_are_scoped_to_the_table_and_its_indexes(tpl: Template) -> None:
    for name, res in tpl.resources_of("AWS::Serverless::Function").items():
        for policy in res["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if any(a.startswith("dynamodb:") for a in actions):
                    resources = (
                        statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                    )
                    assert all("SessionsTable" in json.dumps(r) for r in resources), (name, resources)


# ------------------------------------------------------------ issue 13: one retention, private traces
RETENTION_OR_FOREVER = {"Fn::If": ["KeepForever", {"Ref": "AWS::NoValue"}, {"Ref": "RetentionDays"}]}


def test_one_retention_parameter_drives_table_ttl_s3_lifecycle_and_log_retention(tpl: Template) -> None:
    """Before: TTL came from session_config.yaml, S3 from RetentionDays, logs from LogRetentionDays."""
    assert "LogRetentionDays" not in tpl.data["Parameters"]
    env = tpl.data["Globals"]["Function"]["Environment"]["Variables"]
    assert env["RETENTION_DAYS"] == {"Ref": "RetentionDays"}
    bucket_rules = tpl.resources["BlobBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiry = next(r for r in bucket_rules if r["Id"] == "ExpireWithRetention")
    assert expiry["ExpirationInDays"] == {"Fn::If": ["KeepForever", 1, {"Ref": "RetentionDays"}]}
    for name, group in tpl.resources_of("AWS::Logs::LogGroup").items():
        assert group["Properties"].get("RetentionInDays") == RETENTION_OR_FOREVER, name
    allowed = tpl.data["Parameters"]["RetentionDays"]["AllowedValues"]
    assert 0 in allowed and {1, 30, 365, 3653} <= set(allowed)  # CloudWatch accepts only these periods


def test_the_functions_ttl_comes_from_the_retention_parameter(monkeypatch) -> None:
    from session_tracker.config import load_config

    monkeypatch.setenv("RETENTION_DAYS", "30")
    assert load_config().session_tracking.retention_days == 30
    monkeypatch.setenv("RETENTION_DAYS", "0")
    assert load_config().session_tracking.retention is None


def test_no_function_traces_what_it_returns_or_raises(tpl: Template) -> None:
    env = tpl.data["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert env["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
    for name in _functions(tpl):
        fn = tpl.resources[name]
        own = ((fn.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        assert own.get("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "false") == "false", name


def test_the_cursor_key_is_a_secret_generated_per_stack(tpl: Template) -> None:
    secret = tpl.resources["CursorSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    api = tpl.resources["SessionsApiFunction"]["Properties"]
    assert api["Environment"]["Variables"]["CURSOR_SECRET_ARN"] == {"Ref": "CursorSecret"}
    statements = api["Policies"][0]["Statement"] if isinstance(api["Policies"], list) else []
    assert any(s.get("Action") == "secretsmanager:GetSecretValue" for s in statements)


def test_every_function_that_handles_transcripts_can_handle_offloaded_platform_fields(tpl: Template) -> None:
    """Large platform metadata fields go under platform/ (issue 13): same access as transcripts."""
    for name in _functions(tpl):
        text = json.dumps(tpl.resources[name]["Properties"].get("Policies", []))
        if "/transcripts/*" in text:
            assert "/platform/*" in text, f"{name} reads/writes transcripts but not platform/ blobs"
    ingest = json.dumps(tpl.resources["LogInteractionFunction"]["Properties"]["Policies"])
    assert "/arguments/*" in ingest and "s3:PutObject" in ingest
