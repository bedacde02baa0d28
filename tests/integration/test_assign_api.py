"""``POST /sessions/{id}/assign`` through the read API handler, on DynamoDB Local."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import body_of, call, http_event

from session_tracker import sessions
from session_tracker.blobs import DirBlobStore
from session_tracker.matching import MatchSettings, ingest_platform_event
from session_tracker.platforms import parse_session_data
from session_tracker.store import DynamoStore

TOKEN = "test-admin-token"
START = datetime(2026, 3, 2, 15, 0, 10, tzinfo=UTC)
NOW = START + timedelta(minutes=10)


def post(path: str, body: Any, *, token: str | None = TOKEN) -> dict[str, Any]:
    return http_event("POST", path, body=body, token=token)


@pytest.fixture
def api(ddb_store: DynamoStore, monkeypatch: pytest.MonkeyPatch, blobs: DirBlobStore, wire):
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    handler = wire("sessions_api", ddb_store, blobs=blobs, function_name="SessionsApiFunction")

    def send(path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        out = handler(post(path, body, **kw))
        return out["statusCode"], body_of(out)

    return send


@pytest.fixture
def unmatched(ddb_store: DynamoStore, blobs: DirBlobStore) -> str:
    body = {
        "platform": "generic",
        "call_id": "conv-api-1",
        "started_at": START.isoformat(),
        "ended_at": (START + timedelta(minutes=5)).isoformat(),
        "transcript": "AI: Hello!\nUser: Hi.",
    }
    result = ingest_platform_event(
        parse_session_data(body), store=ddb_store, blobs=blobs, now=NOW, settings=MatchSettings()
    )
    assert result.status == "unmatched" and result.session_id
    return result.session_id


def test_assign_answers_200_with_the_resulting_session(api, ddb_store, unmatched) -> None:
    sessions.log_interactions(
        [call("ava", START + timedelta(minutes=1))], store=ddb_store, now=NOW, timeout=timedelta(minutes=10)
    )
    status, body = api(f"/sessions/{unmatched}/assign", {"student_id": "ava"})
    assert status == 200, body
    assert body["session_id"] == "ava_20260302_1501"
    assert body["outcome"] == "merged"
    stored = ddb_store.get_session("ava_20260302_1501")
    assert stored is not None and stored.matching is not None and stored.matching["strategy"] == "manual"


def test_assign_of_a_session_that_is_not_unmatched_is_409(api, ddb_store) -> None:
    [result] = sessions.log_interactions([call("ava", START)], store=ddb_store, now=NOW, timeout=timedelta(minutes=10))
    status, body = api(f"/sessions/{result.session_id}/assign", {"student_id": "ava"})
    assert status == 409 and "not unmatched" in body["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "body"), ({"student_id": "bad id"}, "student_id"), ({"student_id": "a", "extra": 1}, "extra")],
)
def test_assign_with_a_bad_body_is_422_naming_the_field(api, unmatched, body, field) -> None:
    status, problem = api(f"/sessions/{unmatched}/assign", body)
    assert status == 422, problem
    assert field in problem["detail"]


def test_assign_without_credentials_is_401_and_changes_nothing(api, ddb_store, unmatched) -> None:
    status, _ = api(f"/sessions/{unmatched}/assign", {"student_id": "ava"}, token=None)
    assert status == 401
    stored = ddb_store.get_session(unmatched)
    assert stored is not None and stored.status == "unmatched"


@pytest.mark.parametrize("token", ["test-ingest-token", "test-read-token"])
def test_assign_needs_the_admin_scope(api, ddb_store, unmatched, token) -> None:
    status, problem = api(f"/sessions/{unmatched}/assign", {"student_id": "ava"}, token=token)
    assert status == 403
    assert problem["required_scope"] == "admin"
    stored = ddb_store.get_session(unmatched)
    assert stored is not None and stored.status == "unmatched"
