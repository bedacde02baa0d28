"""The access audit on every backend (fake, moto, DynamoDB Local) and through the read API handler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import body_of, http_event

from session_tracker import runtime
from session_tracker.audit import AuditEntry
from session_tracker.blobs import DirBlobStore
from session_tracker.models import InteractionIn
from session_tracker.sessions import log_interactions
from session_tracker.store import InvalidCursor

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ADMIN = "test-admin-token"
READ = "test-read-token"


def _entry(at: datetime, student: str | None, action: str = "read_session", **kw: Any) -> AuditEntry:
    return AuditEntry(at=at, actor="tutor-anna", scope="read", action=action, student_id=student, **kw)  # type: ignore[arg-type]


def _all(store, **kw: Any) -> list[AuditEntry]:
    found: list[AuditEntry] = []
    cursor = None
    for _ in range(100):
        page, cursor = store.list_audit(cursor=cursor, **kw)
        found += page
        if cursor is None:
            return found
    raise AssertionError("cursor never ended")


def test_entries_are_listed_newest_first_by_student_and_for_everyone_across_days(store) -> None:
    for i in range(7):  # three days, two students
        store.append_audit(_entry(T0 + timedelta(hours=10 * i), "emma" if i % 2 == 0 else "liam", session_id=f"s{i}"))
    store.append_audit(_entry(T0, None, action="assign"))
    window = {"start": T0 - timedelta(days=1), "end": T0 + timedelta(days=5)}
    emma = _all(store, student_id="emma", limit=2, **window)
    assert [e.session_id for e in emma] == ["s6", "s4", "s2", "s0"]
    everyone = _all(store, student_id=None, limit=3, **window)
    assert [e.session_id for e in everyone if e.session_id] == ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]
    assert len(everyone) == 8
    narrow = _all(store, student_id=None, start=T0 + timedelta(hours=15), end=T0 + timedelta(hours=35))
    assert [e.session_id for e in narrow] == ["s3", "s2"]
    first = everyone[0]
    assert (first.actor, first.scope, first.action, first.student_id) == ("tutor-anna", "read", "read_session", "emma")


def test_a_cursor_of_another_query_or_altered_is_refused(store) -> None:
    for i in range(3):
        store.append_audit(_entry(T0 + timedelta(minutes=i), "emma"))
    window = {"start": T0 - timedelta(days=1), "end": T0 + timedelta(days=1)}
    _, cursor = store.list_audit(student_id="emma", limit=1, **window)
    assert cursor
    with pytest.raises(InvalidCursor):
        store.list_audit(student_id="liam", limit=1, cursor=cursor, **window)
    with pytest.raises(InvalidCursor):
        store.list_audit(student_id="emma", limit=1, cursor=cursor[:-3] + "AAA", **window)


def test_entries_expire_with_retention_days(dynamo_store) -> None:
    dynamo_store.append_audit(_entry(T0, "emma", session_id="s0"))
    (item,) = dynamo_store.client.scan(TableName=dynamo_store.table_name)["Items"]
    assert int(item["expires_at"]["N"]) == int((T0 + timedelta(days=365)).timestamp())
    assert item["SK"]["S"].startswith("2026-12-01T09:00:00") and item["gsi1pk"]["S"] == "AUDIT#emma"


# ------------------------------------------------------------------ through the read API handler
@pytest.fixture
def api(wire, ddb_store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("READ_TOKEN", READ)
    handler = wire(
        "sessions_api", ddb_store, blobs=DirBlobStore(tmp_path / "blobs"), function_name="SessionsApiFunction"
    )

    def call(path: str, token: str | None = READ, **query: Any) -> tuple[int, Any]:
        out = handler(http_event("GET", path, token=token, query=query))
        body = out.get("body") or "null"
        return out["statusCode"], body_of(out) if body.startswith(("{", "[", "n")) else body  # /ui: HTML

    call.module = handler.module  # type: ignore[attr-defined]
    return call


def _seed(store, student: str) -> str:
    now = datetime.now(UTC) - timedelta(hours=1)
    body = InteractionIn(student_id=student, function="get_student_context", timestamp=now)
    return log_interactions([body], store=store, now=now, timeout=timedelta(minutes=10))[0].session_id


def test_reads_are_audited_with_the_actor_and_listed_for_admins_only(api, ddb_store) -> None:
    session_id = _seed(ddb_store, "audit_emma")
    assert api(f"/sessions/{session_id}")[0] == 200
    assert api("/students/audit_emma/sessions")[0] == 200
    assert api("/sessions/audit_emma_20200101_0000")[0] == 404  # nothing read: nothing recorded

    status, problem = api("/audit")
    assert status == 403 and problem["required_scope"] == "admin"
    status, page = api("/audit", token=ADMIN, student_id="audit_emma")
    assert status == 200, page
    entries = [{k: e[k] for k in ("actor", "scope", "action", "student_id", "session_id")} for e in page["entries"]]
    assert entries == [
        {
            "actor": "env:read",
            "scope": "read",
            "action": "list_sessions",
            "student_id": "audit_emma",
            "session_id": None,
        },
        {
            "actor": "env:read",
            "scope": "read",
            "action": "read_session",
            "student_id": "audit_emma",
            "session_id": session_id,
        },
    ]
    status, everyone = api("/audit", token=ADMIN, limit=1)
    assert status == 200 and len(everyone["entries"]) == 1 and everyone["next_cursor"]
    status, problem = api("/audit", token=ADMIN, student_id="someone_else", cursor=everyone["next_cursor"])
    assert status == 422 and problem["field"] == "cursor"
    status, problem = api("/audit", token=ADMIN, **{"from": "2026-12-02", "to": "2026-12-01"})
    assert status == 422 and problem["field"] == "from"


def test_the_pages_are_audited_too(api, ddb_store) -> None:
    session_id = _seed(ddb_store, "audit_liam")
    assert api(f"/ui/sessions/{session_id}")[0] == 200
    assert api("/ui/students/audit_liam")[0] == 200
    _, page = api("/audit", token=ADMIN, student_id="audit_liam")
    assert [e["action"] for e in page["entries"]] == ["list_sessions", "read_session"]


class FailingAudit:
    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def append_audit(self, entry: AuditEntry) -> None:
        raise ConnectionError("the audit write fails")


def test_a_failing_audit_store_never_fails_the_read(api, ddb_store, monkeypatch) -> None:
    session_id = _seed(ddb_store, "audit_ava")
    failing = runtime.Deps(config=runtime.get_config(), store=FailingAudit(ddb_store), blobs=None)  # type: ignore[arg-type]
    monkeypatch.setattr(api.module, "deps", lambda: failing)
    status, body = api(f"/sessions/{session_id}")
    assert status == 200 and body["student_id"] == "audit_ava"
    assert api("/students/audit_ava/sessions")[0] == 200
