"""Named API keys on every backend (fake, moto, DynamoDB Local) and through the read API handler."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import body_of, http_event

from session_tracker import apikeys, runtime
from session_tracker.access import KeyRecord, Scope, token_hash
from session_tracker.blobs import DirBlobStore
from session_tracker.errors import StoreConflict

T0 = datetime(2026, 12, 4, 18, 30, tzinfo=UTC)
ADMIN = "test-admin-token"


def _record(name: str, scope: Scope, key: str) -> KeyRecord:
    return KeyRecord(name=name, scope=scope, key_hash=token_hash(key), created_at=T0)


def test_keys_are_found_by_hash_listed_touched_and_revoked(store) -> None:
    store.create_key(_record("tutor-anna", Scope.READ, "stk_anna"))
    store.create_key(_record("mcp-1", Scope.INGEST, "stk_mcp"))
    found = store.find_key(token_hash("stk_anna"))
    assert found is not None and (found.name, found.scope, found.revoked) == ("tutor-anna", Scope.READ, False)
    assert found.created_at == T0
    assert store.find_key(token_hash("stk_nobody")) is None
    assert [k.name for k in store.list_keys()] == ["mcp-1", "tutor-anna"]

    store.touch_key("tutor-anna", at=T0 + timedelta(minutes=5))
    store.touch_key("tutor-anna", at=T0 + timedelta(minutes=1))  # an older touch never moves it back
    by_name = store.find_key_by_name("tutor-anna")
    assert by_name is not None and by_name.last_used == T0 + timedelta(minutes=5)

    revoked = store.revoke_key("tutor-anna", at=T0 + timedelta(minutes=6))
    assert revoked is not None and revoked.revoked and revoked.revoked_at == T0 + timedelta(minutes=6)
    assert store.find_key(token_hash("stk_anna")) is None, "a revoked key is never found by its hash"
    listed = {k.name: k for k in store.list_keys()}
    assert listed["tutor-anna"].revoked and listed["tutor-anna"].revoked_at == T0 + timedelta(minutes=6)
    assert not listed["mcp-1"].revoked
    assert store.revoke_key("tutor-anna", at=T0) is None
    store.touch_key("tutor-anna", at=T0 + timedelta(hours=1))  # a late touch does not revive it
    assert store.find_key(token_hash("stk_anna")) is None


def test_an_active_name_cannot_be_taken_twice_but_a_revoked_one_can(store) -> None:
    store.create_key(_record("tutor-ben", Scope.READ, "stk_ben1"))
    with pytest.raises(StoreConflict):
        store.create_key(_record("tutor-ben", Scope.ADMIN, "stk_ben2"))
    assert store.find_key(token_hash("stk_ben2")) is None
    store.revoke_key("tutor-ben", at=T0)
    store.create_key(_record("tutor-ben", Scope.ADMIN, "stk_ben3"))
    again = store.find_key(token_hash("stk_ben3"))
    assert again is not None and again.scope is Scope.ADMIN and not again.revoked
    assert store.find_key(token_hash("stk_ben1")) is None


def test_key_items_are_not_session_records(dynamo_store) -> None:
    """The stream consumers (analysis, session files) filter on SK = META: key items never match."""
    apikeys.create_key(apikeys.KeyCreate(name="tutor-cy", scope=Scope.READ), store=dynamo_store, now=T0)
    items = dynamo_store.client.scan(TableName=dynamo_store.table_name)["Items"]
    assert items and all(item["SK"]["S"] in ("KEY#tutor-cy", "KEYHASH") for item in items)
    assert not any(name == "key" for item in items for name in item)


# ------------------------------------------------------------------ over the read API handler
@pytest.fixture
def api(wire, ddb_store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("TABLE_NAME", ddb_store.table_name)
    handler = wire(
        "sessions_api", ddb_store, blobs=DirBlobStore(tmp_path / "blobs"), function_name="SessionsApiFunction"
    )
    # named keys are looked up through runtime.deps() (the process's table), not the module's
    monkeypatch.setattr(runtime, "deps", handler.module.deps)

    def call(method: str, path: str, token: str | None = ADMIN, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        out = handler(http_event(method, path, token=token, body=body))
        return out["statusCode"], body_of(out), out.get("headers") or {}

    return call


def test_keys_over_the_api_create_list_use_and_revoke(api) -> None:
    status, created, headers = api("POST", "/keys", body={"name": "tutor-dee", "scope": "read"})
    assert status == 201, created
    assert headers.get("Cache-Control") == "no-store"
    key = created["key"]
    assert created["name"] == "tutor-dee" and created["scope"] == "read"

    status, _, _ = api("GET", "/sessions/emma_20260117_1430", token=key)
    assert status == 404  # authenticated (no such session), not 401
    status, problem, _ = api("GET", "/keys", token=key)
    assert status == 403 and problem["required_scope"] == "admin"

    status, listed, _ = api("GET", "/keys")
    assert status == 200
    (info,) = listed["keys"]
    assert info["name"] == "tutor-dee" and info["last_used"] is not None
    assert key not in json.dumps(listed)

    status, again, _ = api("POST", "/keys", body={"name": "tutor-dee", "scope": "admin"})
    assert status == 409 and again["field"] == "name"
    status, bad, _ = api("POST", "/keys", body={"name": "tutor dee", "scope": "root"})
    assert status == 422 and "name" in bad["detail"] and "scope" in bad["detail"]

    status, revoked, _ = api("DELETE", "/keys/tutor-dee")
    assert status == 200 and revoked["name"] == "tutor-dee"
    status, problem, _ = api("GET", "/sessions/emma_20260117_1430", token=key)
    assert status == 401, "the revoking process refuses the key at once"
    status, _, _ = api("DELETE", "/keys/tutor-dee")
    assert status == 404


def test_an_admin_key_manages_keys_and_an_ingest_key_cannot_read(api) -> None:
    _, admin, _ = api("POST", "/keys", body={"name": "ops", "scope": "admin"})
    status, created, _ = api("POST", "/keys", token=admin["key"], body={"name": "mcp-2", "scope": "ingest"})
    assert status == 201
    status, problem, _ = api("GET", "/students/emma/sessions", token=created["key"])
    assert status == 403 and problem["required_scope"] == "read"
