"""Large fields are stored whole (offloaded to the blob store) and read back whole; a blob that
is gone is answered with a marker, never a 500 (issue 13 items 1, 2 and 8). DynamoDB Local
enforces the real 400 KB item limit, so these fail the way AWS does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import http_event, sample_event

from session_tracker.blobs import DirBlobStore
from session_tracker.store import DynamoStore

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
TOKEN = "test-ingest-token"
READ = "test-read-token"
BIG = 450 * 1024  # between DynamoDB's 400 KB item limit and the 1 MiB body limit


@pytest.fixture
def invoke(ddb_store: DynamoStore, blobs: DirBlobStore, monkeypatch: pytest.MonkeyPatch, wire):
    monkeypatch.setenv("INGEST_TOKEN", TOKEN)
    monkeypatch.setenv("READ_TOKEN", READ)
    monkeypatch.setenv("VAPI_WEBHOOK_SECRET", "test-vapi-secret")
    handlers: dict[str, Any] = {}

    def run(function: str, event: dict[str, Any]) -> dict[str, Any]:
        if function not in handlers:
            handlers[function] = wire(function, ddb_store, blobs=blobs)
        response: dict[str, Any] = handlers[function](event)
        return response

    return run


def _post(name: str, body: Any) -> dict[str, Any]:
    return sample_event(name, body)


def _get(path: str) -> dict[str, Any]:
    return http_event("GET", path, token=READ)


def _session(invoke, session_id: str) -> dict[str, Any]:
    response = invoke("sessions_api", _get(f"/sessions/{session_id}"))
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def _call(**extra: Any) -> dict[str, Any]:
    return {"student_id": "big_args", "function": "save_essay", "timestamp": "2026-01-17T14:30:05Z", **extra}


def test_a_call_too_large_for_an_item_is_stored_whole_and_read_back_whole(invoke, blobs) -> None:
    essay = {"essay": "é" * (BIG // 2), "nested": {"n": [1.5, None, True]}}
    response = invoke("log_interaction", _post("post_interaction.json", _call(arguments=essay)))
    assert response["statusCode"] == 202, response["body"]
    session_id = json.loads(response["body"])["session_id"]
    [stored] = _session(invoke, session_id)["mcp_interactions"]
    assert stored["arguments"] == essay
    assert list((blobs.root / "arguments" / "big_args").glob("*.json"))


def test_a_batch_of_large_calls_is_stored_whole(invoke) -> None:
    batch = {"interactions": [_call(arguments={"part": str(i) * 90_000}, interaction_id=f"big-{i}") for i in range(10)]}
    response = invoke("log_interaction", _post("post_interaction.json", batch))
    assert response["statusCode"] == 202, response["body"]
    session_id = json.loads(response["body"])["results"][0]["session_id"]
    calls = _session(invoke, session_id)["mcp_interactions"]
    assert sorted(c["arguments"]["part"][0] for c in calls) == [str(i) for i in range(10)]


def test_a_retried_large_call_is_stored_once(invoke, blobs) -> None:
    body = _call(arguments={"essay": "x" * BIG}, interaction_id="big-retry")
    first = json.loads(invoke("log_interaction", _post("post_interaction.json", body))["body"])
    again = json.loads(invoke("log_interaction", _post("post_interaction.json", body))["body"])
    assert again["duplicate"] is True and again["session_id"] == first["session_id"]
    assert len(_session(invoke, first["session_id"])["mcp_interactions"]) == 1
    assert len(list((blobs.root / "arguments" / "big_args").glob("*.json"))) == 1  # content-addressed


def test_arguments_whose_blob_is_gone_are_answered_with_a_marker(invoke, blobs) -> None:
    response = invoke("log_interaction", _post("post_interaction.json", _call(arguments={"essay": "y" * BIG})))
    session_id = json.loads(response["body"])["session_id"]
    for path in (blobs.root / "arguments").rglob("*.json"):
        path.unlink()  # the lifecycle ran out before the item's TTL
    [stored] = _session(invoke, session_id)["mcp_interactions"]
    assert "no longer in blob storage" in stored["arguments"]["_missing"]


def _vapi(**fields: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / "webhook_vapi_end_of_call_report.json").read_text())
    body = json.loads(event["body"])
    body["message"].update(fields)
    event["body"] = json.dumps(body)
    return event


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("endedReason", "customer-ended-call " * (BIG // 20)),
        ("costs", [{"type": "model", "cost": 0.01, "note": "z" * 1000} for _ in range(BIG // 1000)]),
    ],
)
def test_a_vapi_report_with_a_huge_field_is_kept_whole(invoke, field, value) -> None:
    response = invoke("webhook_vapi", _vapi(**{field: value}))
    assert response["statusCode"] == 200, response["body"]
    session_id = json.loads(response["body"])["session_id"]
    session = _session(invoke, session_id)
    key = {"endedReason": "ended_reason", "costs": "costs"}[field]
    assert session["vapi_metadata"][key] == value
    assert session["conversation"]["transcript"]  # the transcript is not lost either


def test_generic_session_data_with_huge_metadata_is_kept_whole(invoke) -> None:
    event = json.loads((EVENTS / "webhook_session_data_generic.json").read_text())
    body = json.loads(event["body"])
    body["metadata"] = {"notes": "m" * BIG}
    event["body"] = json.dumps(body)
    response = invoke("webhook_generic", event)
    assert response["statusCode"] == 200, response["body"]
    session = _session(invoke, json.loads(response["body"])["session_id"])
    assert session["platform_metadata"]["metadata"] == {"notes": "m" * BIG}


def test_a_session_whose_transcript_blob_is_gone_is_answered_with_a_marker(invoke, blobs) -> None:
    event = _vapi()
    body = json.loads(event["body"])
    body["message"]["artifact"]["transcript"] = "AI: hello\nUser: " + "words " * 20_000
    event["body"] = json.dumps(body)
    session_id = json.loads(invoke("webhook_vapi", event)["body"])["session_id"]
    for path in (blobs.root / "transcripts").rglob("*"):
        if path.is_file():
            path.unlink()
    session = _session(invoke, session_id)
    assert session["conversation"]["transcript"] == ""
    assert [m["field"] for m in session["conversation"]["missing_blobs"]] == ["transcript"]
    page = invoke("sessions_api", _get(f"/ui/sessions/{session_id}"))
    assert page["statusCode"] == 200, page["body"][:300]
