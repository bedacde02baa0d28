"""The log_interaction Lambda handler, invoked with API Gateway v2 events, on DynamoDB Local."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import http_event, problem, sample_event

from session_tracker.store import DynamoStore

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "tests/events/post_interaction.json").read_text())


@pytest.fixture
def handler(ddb_store: DynamoStore, monkeypatch: pytest.MonkeyPatch, wire):
    monkeypatch.setenv("INGEST_TOKEN", "test-ingest-token")
    return wire("log_interaction", ddb_store, function_name="LogInteractionFunction")


def event_with(body: Any = None, **kw: Any) -> dict[str, Any]:
    return sample_event(EVENT, body, **kw)


def test_sample_event_is_accepted_and_stored(handler, ddb_store) -> None:
    response = handler(EVENT)
    assert response["statusCode"] == 202
    body = json.loads(response["body"])
    assert body == {
        "session_id": "emma_smith_20260117_1430",
        "interaction_id": "evt-0001",
        "new_session": True,
        "duplicate": False,
    }
    meta, [record] = ddb_store.read_session("emma_smith_20260117_1430")
    assert record.arguments == {"student_id": "emma_smith"}
    assert record.data_provided == ["profile", "progress"]
    assert meta.platform == "vapi" and meta.call_ids == ["53077b4f-8470-4ae4-b473-ec0b2be99634"]


def test_base64_body_is_decoded(handler) -> None:
    assert handler(event_with(b64=True))["statusCode"] == 202


def test_batch_answers_results_in_order(handler) -> None:
    body = {
        "interactions": [
            {"student_id": "a", "function": "f", "timestamp": "2026-01-17T14:30:00Z"},
            {"student_id": "b", "function": "g", "timestamp": "2026-01-17T14:31:00Z"},
        ]
    }
    response = handler(event_with(body))
    assert response["statusCode"] == 202
    assert [r["session_id"] for r in json.loads(response["body"])["results"]] == ["a_20260117_1430", "b_20260117_1431"]


def test_retry_is_acknowledged_and_stored_once(handler, ddb_store) -> None:
    handler(EVENT)
    again = handler(EVENT)
    assert again["statusCode"] == 202 and json.loads(again["body"])["duplicate"] is True
    assert ddb_store.read_session("emma_smith_20260117_1430")[0].interaction_count == 1


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing bearer token"),
        ({"authorization": "Bearer wrong"}, "unknown credential"),
        ({"authorization": "Basic dGVzdA=="}, "missing bearer token"),
    ],
)
def test_bad_credentials_are_401_problems(handler, headers, detail) -> None:
    response = handler(event_with(headers=headers))
    assert response["statusCode"] == 401
    assert detail in problem(response)["detail"]


@pytest.mark.parametrize("token", ["test-read-token", "test-admin-token"])
def test_a_higher_scope_may_log_calls_too(handler, token) -> None:
    response = handler(event_with(headers={"authorization": f"Bearer {token}"}))
    assert response["statusCode"] == 202, response["body"]


def test_auth_is_checked_before_the_body_is_parsed(handler) -> None:
    response = handler(event_with(raw="{not json", headers={}))
    assert response["statusCode"] == 401


def test_malformed_json_is_400(handler) -> None:
    response = handler(event_with(raw='{"student_id": '))
    assert response["statusCode"] == 400
    assert problem(response)["title"] == "Malformed JSON"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"function": "f"}, "student_id"),
        ({"student_id": "emma"}, "function"),
        ({"student_id": "emma", "function": 3}, "function"),
        ({"student_id": "emma", "function": "f", "timestamp": "yesterday"}, "timestamp"),
        ({"student_id": "emma", "function": "f", "response_size": -1}, "response_size"),
        ({"student_id": "emma", "function": "f", "arguments": [1, 2]}, "arguments"),
        ({"student_id": "../etc/passwd", "function": "f"}, "student_id"),
        ({"student_id": "emma#HEAD", "function": "f"}, "student_id"),
        ({"student_id": "emma", "function": "f", "session_id": "a/b"}, "session_id"),
        ({"interactions": []}, "interactions"),
        ({"interactions": [{"student_id": "a", "function": "f"}] * 26}, "interactions"),
        ({"interactions": [{"student_id": "a"}]}, "interactions.0.function"),
        ([1, 2], "body"),
        ("just a string", "body"),
    ],
)
def test_schema_violations_are_422_naming_the_field(handler, body, field) -> None:
    response = handler(event_with(body))
    assert response["statusCode"] == 422, response
    fields = [e["field"] for e in problem(response)["errors"]]
    assert field in fields, fields


def test_body_over_the_limit_is_413(handler) -> None:
    big = {"student_id": "emma", "function": "f", "arguments": {"blob": "x" * (1024 * 1024)}}
    response = handler(event_with(big))
    assert response["statusCode"] == 413
    assert "limit" in problem(response)["detail"]


def test_health_needs_no_token_and_openapi_lists_every_route(ddb_store, wire) -> None:
    health = wire("sessions_api", ddb_store)(http_event("GET", "/health"))
    assert health["statusCode"] == 200 and json.loads(health["body"])["status"] == "ok"


# ------------------------------------------------------------ issue 13: numbers, clocks, reserved ids
def _one(**fields: Any) -> dict[str, Any]:
    return {"student_id": "num_kid", "function": "f", **fields}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"student_id":"num_kid","function":"f","duration_ms":Infinity}', "duration_ms"),
        ('{"student_id":"num_kid","function":"f","duration_ms":NaN}', "duration_ms"),
        ('{"student_id":"num_kid","function":"f","duration_ms":1e308}', "duration_ms"),
        ('{"student_id":"num_kid","function":"f","response_size":1e40}', "response_size"),
        ('{"student_id":"num_kid","function":"f","response_size":-Infinity}', "response_size"),
    ],
)
def test_non_finite_or_out_of_range_numbers_are_422_naming_the_field(handler, raw, field) -> None:
    response = handler(event_with(raw=raw))
    assert response["statusCode"] == 422, response["body"]
    assert [e["field"] for e in problem(response)["errors"]] == [field]


def test_a_timestamp_more_than_the_clock_skew_in_the_future_is_422_and_nothing_is_stored(handler, ddb_store) -> None:
    response = handler(event_with(_one(timestamp="2199-01-01T00:00:00Z")))
    assert response["statusCode"] == 422
    assert problem(response)["field"] == "timestamp" and "clock" in problem(response)["detail"]
    assert ddb_store.get_head("num_kid") is None


def test_in_a_batch_the_far_future_timestamp_is_named_by_its_index(handler, ddb_store) -> None:
    batch = {"interactions": [_one(), _one(timestamp="2199-01-01T00:00:00Z")]}
    response = handler(event_with(batch))
    assert response["statusCode"] == 422
    assert problem(response)["field"] == "interactions.1.timestamp"
    assert ddb_store.get_head("num_kid") is None


def test_a_timestamp_within_the_clock_skew_is_accepted(handler) -> None:
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    assert handler(event_with(_one(timestamp=soon)))["statusCode"] == 202


def test_the_unmatched_buckets_student_id_unknown_is_reserved(handler) -> None:
    response = handler(event_with(_one(student_id="unknown")))
    assert response["statusCode"] == 422
    assert problem(response)["errors"][0]["field"] == "student_id"


def test_an_explicit_session_id_of_another_student_is_a_409_problem_naming_session_id(handler, ddb_store) -> None:
    """Session-id squatting (#13 item 5): bob cannot take the id alice's first call would get."""
    body = {"student_id": "bob", "function": "get_progress", "session_id": "alice_20260117_1430"}
    response = handler(event_with(body))
    assert response["statusCode"] == 409
    assert problem(response)["field"] == "session_id"
    assert ddb_store.get_session("alice_20260117_1430") is None


def test_a_subnormal_duration_is_stored_as_zero_not_a_500(handler, ddb_store) -> None:
    """Found by the hostile-value fuzz: 1e-320 underflowed DynamoDB's number type (500)."""
    response = handler(event_with(raw='{"student_id":"num_kid","function":"f","duration_ms":1e-320}'))
    assert response["statusCode"] == 202, response["body"]


def test_a_bare_json_list_is_refused_not_half_stored(handler, ddb_store) -> None:
    """A JSON array is neither a call nor ``{"interactions": [...]}``: 422, nothing stored
    (it was answered 202 with its first call stored and the rest dropped)."""
    calls = [
        {"student_id": "list_a", "function": "f", "timestamp": "2026-01-17T14:30:00Z"},
        {"student_id": "list_a", "function": "g", "timestamp": "2026-01-17T14:31:00Z"},
    ]
    response = handler(event_with(calls))
    assert response["statusCode"] == 422, response["body"]
    assert ddb_store.read_session("list_a_20260117_1430") is None
    assert problem(response)["errors"][0]["field"] == "body"
