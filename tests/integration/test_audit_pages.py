"""Reads that show several students at once are audited too (#15): ``GET /sessions``, the ``/ui``
list, the live view and its polled fragment, the review queue, and the CLI's ``--table`` reads
of everyone's sessions and its assignments. One entry per distinct student shown, written in
one background task that the read waits on at most once."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import http_event, lambda_context, load_function

from session_tracker import runtime
from session_tracker.audit import AUDIT_WAIT, AuditEntry
from session_tracker.blobs import DirBlobStore
from session_tracker.matching import MatchSettings, ingest_platform_event
from session_tracker.models import InteractionIn
from session_tracker.platforms.generic import adapter
from session_tracker.sessions import log_interactions

ADMIN = "test-admin-token"
READ = "test-read-token"
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
STUDENTS = ("pages_ava", "pages_ben", "pages_cat")


def _seed(store) -> None:
    """ava has two sessions today, ben and cat one each; ben's is still active."""
    for n, student in enumerate(("pages_ava", "pages_ava", "pages_ben", "pages_cat")):
        at = NOW - timedelta(hours=2 * (n % 2)) if student == "pages_ava" else NOW + timedelta(minutes=n)
        calls = [InteractionIn(student_id=student, function="get_student_context", timestamp=at)]
        log_interactions(calls, store=store, now=at, timeout=timedelta(minutes=10))


def _unmatched(store, blobs) -> str:
    body = {
        "platform": "generic",
        "call_id": "pages-conv",
        "started_at": (NOW - timedelta(minutes=5)).isoformat(),
        "ended_at": NOW.isoformat(),
        "transcript": "AI: Hello!\nUser: Hi.",
    }
    result = ingest_platform_event(adapter.parse(body), store=store, blobs=blobs, now=NOW, settings=MatchSettings())
    assert result.status == "unmatched" and result.session_id
    return result.session_id


def _audited(store, *, expect: int | None = None) -> Counter[tuple[str, str | None, str | None, str]]:
    """Every entry (action, student, session, actor); waits briefly for writes still in flight."""
    deadline = time.monotonic() + 3
    while True:
        entries, _ = store.list_audit(
            student_id=None, start=NOW - timedelta(days=1), end=datetime.now(UTC) + timedelta(days=1), limit=500
        )
        found = Counter((e.action, e.student_id, e.session_id, e.actor) for e in entries)
        if expect is None or sum(found.values()) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture
def api(ddb_store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("READ_TOKEN", READ)
    runtime.reset()
    module = load_function("sessions_api")
    deps = runtime.Deps(config=runtime.get_config(), store=ddb_store, blobs=DirBlobStore(tmp_path / "blobs"))
    monkeypatch.setattr(module, "deps", lambda: deps)

    def call(path: str, *, token: str = READ, headers: dict[str, str] | None = None, **query: Any) -> dict[str, Any]:
        event = http_event("GET", path, query=query, token=token, headers=headers)
        out: dict[str, Any] = module.lambda_handler(event, lambda_context("SessionsApiFunction", 10))
        return out

    call.module = module  # type: ignore[attr-defined]
    call.deps = deps  # type: ignore[attr-defined]
    yield call
    monkeypatch.undo()
    runtime.reset()


def _lists(found: Counter) -> dict[str | None, int]:
    """``list_sessions`` entries per student (all readers)."""
    out: Counter[str | None] = Counter()
    for (action, student, _, _), n in found.items():
        if action == "list_sessions":
            out[student] += n
    return dict(out)


def test_every_students_sessions_by_day_are_audited_once_per_student_shown(api, ddb_store) -> None:
    _seed(ddb_store)
    out = api("/sessions", **{"from": (NOW - timedelta(days=1)).isoformat()})
    assert out["statusCode"] == 200, out
    found = _audited(ddb_store, expect=3)
    assert _lists(found) == dict.fromkeys(STUDENTS, 1)  # ava's two sessions: one entry
    assert {actor for *_, actor in found} == {"env:read"}
    # an empty page shows nobody: nothing recorded
    api("/sessions", **{"from": "2020-01-01", "to": "2020-01-02"})
    assert sum(_audited(ddb_store).values()) == 3


def test_the_session_list_page_is_audited_per_student_shown(api, ddb_store) -> None:
    _seed(ddb_store)
    out = api("/ui", student="pages_ben")
    assert out["statusCode"] == 200
    assert _lists(_audited(ddb_store, expect=1)) == {"pages_ben": 1}
    assert api("/ui")["statusCode"] == 200
    assert _lists(_audited(ddb_store, expect=4)) == {"pages_ava": 1, "pages_ben": 2, "pages_cat": 1}


def test_the_live_view_is_audited_and_its_polled_fragment_at_most_once_per_reader_and_student(api, ddb_store) -> None:
    _seed(ddb_store)
    assert api("/ui/live")["statusCode"] == 200
    first = _lists(_audited(ddb_store, expect=3))
    assert first == dict.fromkeys(STUDENTS, 1)
    data = api("/ui/live/data")
    assert data["statusCode"] == 200
    assert _lists(_audited(ddb_store, expect=6)) == dict.fromkeys(STUDENTS, 2)
    for _ in range(3):  # the page polls every 2 s: the same reader again within 5 minutes adds nothing
        assert api("/ui/live/data")["statusCode"] == 200
    not_modified = api("/ui/live/data", headers={"if-none-match": data["headers"]["ETag"]})
    assert not_modified["statusCode"] == 304
    assert api("/ui/live/data", token=ADMIN)["statusCode"] == 200  # another reader is recorded
    found = _audited(ddb_store, expect=9)
    assert _lists(found) == dict.fromkeys(STUDENTS, 3)
    assert sum(n for (_, _, _, actor), n in found.items() if actor == "env:admin") == 3


def test_the_review_queue_and_its_candidates_are_audited(api, ddb_store) -> None:
    _seed(ddb_store)
    source = _unmatched(ddb_store, api.deps.blobs)
    out = api("/ui/review", token=ADMIN, session=source, student="pages_ben")
    assert out["statusCode"] == 200, out
    found = _audited(ddb_store, expect=3)
    assert found[("read_session", "unknown", source, "env:admin")] == 1
    assert _lists(found) == {"unknown": 1, "pages_ben": 1}


class SlowAudit:
    """A store whose audit writes take 0.3 s each."""

    def __init__(self, store) -> None:
        self._store = store
        self.written: list[AuditEntry] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def append_audit(self, entry: AuditEntry) -> None:
        time.sleep(0.3)
        self.written.append(entry)


def test_a_page_of_many_students_waits_for_its_audit_once_not_per_student(api, ddb_store, monkeypatch) -> None:
    for n in range(8):
        log_interactions(
            [InteractionIn(student_id=f"many_{n}", function="f", timestamp=NOW + timedelta(seconds=n))],
            store=ddb_store,
            now=NOW,
            timeout=timedelta(minutes=10),
        )
    slow = SlowAudit(ddb_store)
    deps = runtime.Deps(config=runtime.get_config(), store=slow, blobs=None)  # type: ignore[arg-type]
    monkeypatch.setattr(api.module, "deps", lambda: deps)
    api("/ui")  # warm: the first request builds the resolver
    started = time.monotonic()
    out = api("/sessions", **{"from": (NOW - timedelta(days=1)).isoformat()})
    took = time.monotonic() - started
    assert out["statusCode"] == 200
    assert took < 8 * 0.3, took  # not one wait per student (the audit wait bounds it: 250 ms)
    assert took < AUDIT_WAIT.total_seconds() + 1.0, took
    deadline = time.monotonic() + 10
    while len([e for e in slow.written if e.student_id and e.student_id.startswith("many_")]) < 16:
        assert time.monotonic() < deadline, slow.written  # both pages' entries still land, in the background
        time.sleep(0.1)


def test_the_cli_on_the_table_audits_everyones_sessions_and_assignments(ddb_store, tmp_path: Path) -> None:
    from session_tracker_cli.client import TableSource, table_actor

    _seed(ddb_store)
    blobs = DirBlobStore(tmp_path / "blobs")
    source = _unmatched(ddb_store, blobs)
    table = TableSource(ddb_store.table_name, store=ddb_store, blobs=blobs)
    refs = list(table.all_sessions(start=NOW - timedelta(days=1), end=datetime.now(UTC), page_size=2))
    assert {r.student_id for r in refs} >= set(STUDENTS)
    found = _audited(ddb_store, expect=4)
    assert _lists(found) == {**dict.fromkeys(STUDENTS, 1), "unknown": 1}
    assert {actor for *_, actor in found} == {table_actor()}
    result = table.assign(source, student_id="pages_cat", target=None)
    found = _audited(ddb_store, expect=5)
    assert found[("assign", "pages_cat", result["session_id"], table_actor())] == 1
