"""``POST /sessions/{id}/assign`` through the read API handler, on DynamoDB Local."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import call, lambda_context, load_function

from session_tracker import runtime, sessions
from session_tracker.blobs import DirBlobStore
from session_tracker.matching import MatchSettings, ingest_platform_event
from session_tracker.platforms import parse_session_data
from session_tracker.store import DynamoStore

TOKEN = "test-admin-token"
START = datetime(2026, 3, 2, 15, 0, 10, tzinfo=UTC)
NOW = START + timedelta(minutes=10)


def post(path: str, body: Any, *, token: str | None = TOKEN) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})},
        "body": body if isinstance(body, str) else json.dumps(body),
        "requestContext": {
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"},
            "requestId": "r",
            "routeKey": f"POST {path}",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


@pytest.fixture
def blobs(tmp_path: Path) -> DirBlobStore:
    return DirBlobStore(tmp_path / "blobs")


@pytest.fixture
def api(ddb_store: DynamoStore, monkeypatch: pytest.MonkeyPatch, blobs: DirBlobStore):
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    runtime.reset()
    module = load_function("sessions_api")
    config = runtime.get_config()
    monkeypatch.setattr(module, "deps", lambda: runtime.Deps(config=config, store=ddb_store, blobs=blobs))

    def send(path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        out = module.lambda_handler(post(path, body, **kw), lambda_context("SessionsApiFunction", 10))
        return out["statusCode"], json.loads(out.get("body") or "null")

    yield send
    runtime.reset()


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
