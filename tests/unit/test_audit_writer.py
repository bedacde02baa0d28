"""The access audit's writer: it never fails or holds up the read it records."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from session_tracker.audit import AuditEntry, Auditor, student_of
from session_tracker.store.fake import InMemoryStore

T0 = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)


def _entry(**kw) -> AuditEntry:
    return AuditEntry(at=T0, actor="tutor-anna", scope="read", action="read_session", **kw)


class Failing:
    def append_audit(self, entry: AuditEntry) -> None:
        raise ConnectionError("audit table unreachable")


class Hanging:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def append_audit(self, entry: AuditEntry) -> None:
        self.calls += 1
        self.release.wait(10)


def test_an_entry_is_stored() -> None:
    store = InMemoryStore()
    assert Auditor(lambda: store).record(_entry(student_id="emma", session_id="emma_20261204_1900"))
    entries, cursor = store.list_audit(student_id="emma", start=T0 - timedelta(days=1), end=T0)
    assert [e.session_id for e in entries] == ["emma_20261204_1900"] and cursor is None


def test_a_failing_audit_store_never_fails_the_caller() -> None:
    assert Auditor(lambda: Failing()).record(_entry(student_id="emma")) is False


def test_a_store_that_cannot_even_be_built_never_fails_the_caller() -> None:
    def broken() -> None:
        raise RuntimeError("TABLE_NAME is not set")

    assert Auditor(broken).record(_entry(student_id="emma")) is False  # type: ignore[arg-type]


def test_a_hanging_audit_store_holds_a_read_up_for_at_most_the_wait() -> None:
    store = Hanging()
    auditor = Auditor(lambda: store, wait=timedelta(milliseconds=100), max_in_flight=3)
    started = time.monotonic()
    results = [auditor.record(_entry(student_id="emma")) for _ in range(6)]
    elapsed = time.monotonic() - started
    assert results == [False] * 6
    assert elapsed < 6 * 0.1 + 0.5, elapsed
    # at most max_in_flight writes wait on the stalled store; the rest are dropped, not queued
    store.release.set()
    time.sleep(0.2)
    assert store.calls <= 3


def test_the_student_of_a_session_id() -> None:
    assert student_of("emma_smith_20260117_1430") == "emma_smith"
    assert student_of("emma_smith_20260117_1430_2") == "emma_smith"
    assert student_of("not-a-session") is None
