"""The local stream -> function wiring: Lambda filter patterns, batching and failure handling."""

from __future__ import annotations

import json

import pytest

from session_tracker_local.cfn import Template
from session_tracker_local.streams import Delivery, EventFilter, PatternError, matches, to_lambda_record


def record(sk: str = "META", new: dict | None = None, old: dict | None = None, seq: str = "1", name: str = "MODIFY"):
    ddb: dict = {"Keys": {"PK": {"S": "SESSION#s1"}, "SK": {"S": sk}}, "SequenceNumber": seq}
    if new is not None:
        ddb["NewImage"] = new
    if old is not None:
        ddb["OldImage"] = old
    return {"eventName": name, "eventSource": "aws:dynamodb", "dynamodb": ddb}


PENDING = {"pending_analysis": {"BOOL": True}, "status": {"S": "completed"}}


@pytest.fixture(scope="module")
def analyze_filter() -> EventFilter:
    from pathlib import Path

    tpl = Template.load(Path(__file__).resolve().parents[2] / "template.yaml")
    spec = next(f for f in tpl.functions() if f.logical_id == "AnalyzeFunction")
    source = next(e for e in spec.events if e.type == "DynamoDB")
    return EventFilter.from_criteria(source.properties["FilterCriteria"])


# --------------------------------------------------------------- the template's filter
def test_template_filter_passes_a_session_whose_flag_was_just_set(analyze_filter) -> None:
    assert analyze_filter(record(new=PENDING, old={"status": {"S": "active"}}))
    assert analyze_filter(record(new=PENDING, old={"pending_analysis": {"BOOL": False}}))
    assert analyze_filter(record(new=PENDING, name="INSERT"))


def test_template_filter_drops_everything_else(analyze_filter) -> None:
    assert not analyze_filter(record(new=PENDING, old=PENDING))  # still pending: already triggered
    assert not analyze_filter(record(new={"status": {"S": "closed"}}, old=PENDING))  # flag cleared
    assert not analyze_filter(record(new={"status": {"S": "active"}}, old={"status": {"S": "active"}}))
    assert not analyze_filter(record(sk="HEAD", new=PENDING))
    assert not analyze_filter(record(sk="I#2026-01-17T14:30:05.000000Z#x", new=PENDING))
    assert not analyze_filter(record(new=None, old=PENDING, name="REMOVE"))


# ------------------------------------------------------------------- pattern syntax
@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        ({"a": ["x"]}, {"a": "x"}, True),
        ({"a": ["x"]}, {"a": "y"}, False),
        ({"a": ["x"]}, {}, False),
        ({"a": [True]}, {"a": True}, True),
        ({"a": [True]}, {"a": 1}, False),
        ({"a": [5]}, {"a": 5.0}, True),
        ({"a": [None]}, {"a": None}, True),
        ({"a": ["x", "y"]}, {"a": "y"}, True),
        ({"a": ["x"]}, {"a": ["z", "x"]}, True),
        ({"a": [{"prefix": "SESS"}]}, {"a": "SESSION#1"}, True),
        ({"a": [{"prefix": "SESS"}]}, {"a": "STUDENT#1"}, False),
        ({"a": [{"prefix": {"equals-ignore-case": "sess"}}]}, {"a": "SESSION#1"}, True),
        ({"a": [{"suffix": ".json"}]}, {"a": "x.json"}, True),
        ({"a": [{"equals-ignore-case": "CLOSED"}]}, {"a": "closed"}, True),
        ({"a": [{"anything-but": "active"}]}, {"a": "closed"}, True),
        ({"a": [{"anything-but": ["active", "closed"]}]}, {"a": "closed"}, False),
        ({"a": [{"anything-but": "active"}]}, {}, False),
        ({"a": [{"anything-but": {"prefix": "I#"}}]}, {"a": "META"}, True),
        ({"a": [{"anything-but": {"prefix": "I#"}}]}, {"a": "I#1"}, False),
        ({"a": [{"exists": True}]}, {"a": "v"}, True),
        ({"a": [{"exists": True}]}, {}, False),
        ({"a": [{"exists": False}]}, {}, True),
        ({"a": [{"exists": False}]}, {"a": "v"}, False),
        ({"a": {"b": [{"exists": False}]}}, {}, True),  # parent object missing too
        ({"a": {"b": ["v"]}}, {}, False),
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 5}, True),
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": "3"}, True),  # DynamoDB N values are strings
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 6}, False),
        ({"a": [{"numeric": ["=", 2]}]}, {"a": "x"}, False),
        ({"a": [{"wildcard": "SESSION#*_2026*"}]}, {"a": "SESSION#emma_20260117_1430"}, True),
        ({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"b": "2"}, True),
        ({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"b": "3"}, False),
        ({"a": ["x"], "b": ["y"]}, {"a": "x", "b": "z"}, False),
    ],
)
def test_pattern_matching(pattern, event, expected) -> None:
    assert matches(pattern, event) is expected


@pytest.mark.parametrize(
    "pattern",
    [{"a": "x"}, {"a": []}, {"a": [{"numeric": [">"]}]}, {"a": [{"cidr": "10.0.0.0/8"}]}, {"a": [{"exists": "yes"}]}],
)
def test_invalid_patterns_are_refused(pattern) -> None:
    with pytest.raises(PatternError):
        EventFilter.from_criteria({"Filters": [{"Pattern": json.dumps(pattern)}]})


def test_no_filters_pass_everything() -> None:
    assert EventFilter.from_criteria(None)(record())


def test_stream_records_take_lambdas_shape() -> None:
    from datetime import UTC, datetime

    raw = {
        "eventID": "e1",
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 1, 17, tzinfo=UTC),
            "Keys": {"PK": {"S": "SESSION#s1"}, "SK": {"S": "META"}},
            "NewImage": {"blob": {"B": b"\x00\x01"}},
            "SequenceNumber": "100",
        },
    }
    out = to_lambda_record(raw, stream_arn="arn:stream", region="us-east-1")
    assert out["eventSource"] == "aws:dynamodb" and out["eventSourceARN"] == "arn:stream"
    assert out["dynamodb"]["NewImage"]["blob"]["B"] == "AAE="
    assert out["dynamodb"]["ApproximateCreationDateTime"] == datetime(2026, 1, 17, tzinfo=UTC).timestamp()


# ---------------------------------------------------------------------- delivery
def recs(n: int) -> list[dict]:
    return [record(seq=str(100 + i)) for i in range(n)]


def seqs(event: dict) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]


def test_partial_batch_failure_retries_from_the_first_failed_record() -> None:
    calls: list[list[str]] = []

    def invoke(event):
        calls.append(seqs(event))
        return {"batchItemFailures": [{"itemIdentifier": "102"}]} if len(calls) == 1 else {"batchItemFailures": []}

    Delivery(invoke, report_failures=True, max_retries=3, sleep=lambda s: None).deliver(recs(5))
    assert calls == [["100", "101", "102", "103", "104"], ["102", "103", "104"]]


def test_without_report_batch_item_failures_the_response_is_ignored() -> None:
    calls: list[list[str]] = []

    def invoke(event):
        calls.append(seqs(event))
        return {"batchItemFailures": [{"itemIdentifier": "100"}]}

    Delivery(invoke, report_failures=False, sleep=lambda s: None).deliver(recs(2))
    assert len(calls) == 1


def test_a_function_error_bisects_the_batch_down_to_the_poison_record() -> None:
    calls: list[list[str]] = []
    dead: list[tuple[list[str], str]] = []

    def invoke(event):
        calls.append(seqs(event))
        if "102" in seqs(event):
            raise RuntimeError("poison")
        return None

    Delivery(
        invoke,
        bisect=True,
        max_retries=1,
        on_failure=lambda records, reason: dead.append(([r["dynamodb"]["SequenceNumber"] for r in records], reason)),
        sleep=lambda s: None,
    ).deliver(recs(4))
    delivered = {s for batch in calls if "102" not in batch for s in batch}
    assert delivered == {"100", "101", "103"}
    assert dead == [(["102"], "function error: RuntimeError")]


def test_retries_are_bounded_then_the_batch_goes_to_the_failure_destination() -> None:
    calls = 0
    dead: list[str] = []

    def invoke(event):
        nonlocal calls
        calls += 1
        return {"batchItemFailures": [{"itemIdentifier": "100"}]}

    Delivery(
        invoke,
        report_failures=True,
        max_retries=2,
        on_failure=lambda records, reason: dead.append(reason),
        sleep=lambda s: None,
    ).deliver(recs(1))
    assert calls == 3 and dead == ["batch item failures"]


# ------------------------------------------------------------ moto's stream (fallback)
class _RecordingPool:
    """Stands in for the Lambda host: records what the poller delivers."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        self.spec = SimpleNamespace(logical_id="AnalyzeFunction")
        self.events: list[dict] = []

    def invoke(self, event: dict) -> dict:
        self.events.append(event)
        return {"batchItemFailures": []}


def test_the_poller_reads_motos_stream_and_applies_the_template_filter(moto_client, template) -> None:
    from types import SimpleNamespace

    from session_tracker_local.streams import StreamPoller

    table = "poller-moto"
    moto_client.create_table(**template.create_table_request(table))
    spec = next(f for f in template.functions() if f.logical_id == "AnalyzeFunction")
    source = next(e for e in spec.events if e.type == "DynamoDB")
    stack = SimpleNamespace(refs={"SessionsTable": table}, options=SimpleNamespace(table_name=table), backend="moto")
    pool = _RecordingPool()
    poller = StreamPoller(stack, pool, source)
    poller.window = 0
    poller.connect()
    key = {"PK": {"S": "SESSION#s1"}, "SK": {"S": "META"}}
    moto_client.put_item(TableName=table, Item={**key, "status": {"S": "active"}})
    moto_client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET pending_analysis = :t, #s = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":t": {"BOOL": True}, ":c": {"S": "closed"}},
    )
    moto_client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET updated_at = :u",
        ExpressionAttributeValues={":u": {"S": "later"}},
    )
    poller.poll_once()
    assert poller.records_seen == 3
    assert len(pool.events) == 1
    (delivered,) = pool.events[0]["Records"]
    assert delivered["eventName"] == "MODIFY" and delivered["dynamodb"]["Keys"] == key
    assert delivered["dynamodb"]["NewImage"]["pending_analysis"] == {"BOOL": True}
