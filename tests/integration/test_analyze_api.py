"""POST /sessions/{session_id}/analyze through the sessions API handler, on DynamoDB Local."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import body_of, call, http_event, minutes

from session_tracker.config import parse_config
from session_tracker.sessions import log_interactions
from session_tracker.store import DynamoStore

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-read-token"
INGEST = "test-ingest-token"


def post_event(path: str, token: str | None = TOKEN) -> dict[str, Any]:
    return http_event("POST", path, token=token)


@pytest.fixture
def api(ddb_store: DynamoStore, monkeypatch: pytest.MonkeyPatch, wire):
    monkeypatch.setenv("INGEST_TOKEN", INGEST)
    monkeypatch.setenv("READ_TOKEN", TOKEN)
    handler = wire("sessions_api", ddb_store, function_name="SessionsApiFunction")

    def post(path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        out = handler(post_event(path, **kw))
        return out["statusCode"], body_of(out), out.get("headers") or {}

    def configure(text: str) -> None:
        handler.config = parse_config(
            text, env={"INGEST_TOKEN": INGEST, "READ_TOKEN": TOKEN, "VAPI_WEBHOOK_SECRET": "x"}
        )

    return post, configure


def session(store: DynamoStore) -> str:
    at = datetime(2026, 1, 17, 14, 30, tzinfo=UTC)
    return log_interactions([call(at=at)], store=store, now=at, timeout=minutes(10))[0].session_id


def test_an_analysis_request_is_queued_with_202(api, ddb_store) -> None:
    post, _ = api
    sid = session(ddb_store)
    status, body, _headers = post(f"/sessions/{sid}/analyze")
    assert status == 202, body
    assert body["session_id"] == sid and body["status"] == "queued" and body["trigger"] == "on_request"
    state = ddb_store.get_analysis_state(sid)
    assert state.pending and state.trigger == "on_request"


def test_an_unknown_session_is_a_404_problem(api) -> None:
    post, _ = api
    status, body, headers = post("/sessions/nobody_20260101_0000/analyze")
    assert status == 404 and headers["Content-Type"] == "application/problem+json"
    assert body["field"] == "session_id"


@pytest.mark.parametrize(
    ("config", "mentions"),
    [
        ("analysis:\n  enabled: false\n", "disabled"),
        ("analysis:\n  triggers: [on_session_complete]\n", "on_request"),
    ],
)
def test_analysis_not_allowed_on_request_is_a_409_problem(api, ddb_store, config, mentions) -> None:
    post, configure = api
    sid = session(ddb_store)
    configure(config)
    status, body, headers = post(f"/sessions/{sid}/analyze")
    assert status == 409 and headers["Content-Type"] == "application/problem+json"
    assert mentions in body["detail"]
    assert not ddb_store.get_analysis_state(sid).pending


def test_the_route_needs_the_token(api, ddb_store) -> None:
    post, _ = api
    sid = session(ddb_store)
    assert post(f"/sessions/{sid}/analyze", token=None)[0] == 401
    assert post(f"/sessions/{sid}/analyze", token="wrong")[0] == 401
    assert post(f"/sessions/{sid}/analyze", token=INGEST)[0] == 403
    assert not ddb_store.get_analysis_state(sid).pending
