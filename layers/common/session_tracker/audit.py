"""The access audit: who read which student's sessions, who erased or assigned what.

Each read of a session or of a student's session list (API, ``/ui`` pages, CLI), each
erasure and each assignment appends one :class:`AuditEntry`
``{at, actor, scope, action, student_id, session_id}`` (``actor`` is the key's name or
``env:<scope>``; an erasure adds its counts). Entries hold ids only, never a transcript
or argument value, and expire with ``retention_days`` like everything else.

An audit write never blocks or fails the read it records: :class:`Auditor` hands it to a
small thread pool and waits at most :data:`AUDIT_WAIT` for it; a slow or failing audit
store costs the reader at most that, and is logged (a warning with the error type, no
content). A write still in flight when a Lambda answers finishes when the runtime thaws it.

A page that shows many students' sessions at once (``GET /sessions``, the ``/ui`` list, the
live view, the review queue, an export of everyone) appends one ``list_sessions`` entry per
distinct student on the page (:meth:`Auditor.record_many`: one background task, the same
single wait for the whole page). The live view's fragment, polled every few seconds, records a
student again only after :data:`REPEAT_AFTER` for the same reader (:class:`Repeats`).

Listed by ``GET /audit`` (admin) and ``session-tracker audit``, newest first.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel, Field

AuditAction = Literal["read_session", "list_sessions", "erase", "assign"]
AUDIT_WAIT = timedelta(milliseconds=250)
"""The longest a read waits for its audit write."""
MAX_IN_FLIGHT = 64
"""Audit writes waiting on a stalled store beyond this are dropped (and logged), never queued without bound."""
DEFAULT_PAGE = 50
MAX_PAGE = 500
REPEAT_AFTER = timedelta(minutes=5)
"""A polled view records the same reader seeing the same student at most this often."""


class AuditEntry(BaseModel):
    at: datetime
    actor: str = Field(description="The named key, `env:<scope>` for an env token, `table:<user>` for --table.")
    scope: str
    action: AuditAction
    student_id: str | None = None
    session_id: str | None = None
    entry_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16], description="Unique per entry.")
    counts: dict[str, int] | None = Field(default=None, description="An erasure's counts (nothing else).")
    detail: dict[str, str] | None = Field(default=None, description="An assignment's source session and outcome.")


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None = Field(
        default=None, description="Pass back as `cursor` (same query) for older entries; a page may be short."
    )


class AuditWriter(Protocol):
    def append_audit(self, entry: AuditEntry) -> None: ...


class AuditReader(Protocol):
    def list_audit(
        self,
        *,
        student_id: str | None,
        start: datetime,
        end: datetime,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> tuple[list[AuditEntry], str | None]:
        """One page of entries in ``[start, end]`` (of ``student_id``, or of everyone), newest first."""
        ...


_SESSION_ID = re.compile(r"^(?P<student>.+)_\d{8}_\d{4}(?:_\d+)?$")


def student_of(session_id: str) -> str | None:
    """The student a session id names (``{student_id}_{YYYYMMDD_HHMM}[_n]``)."""
    found = _SESSION_ID.match(session_id)
    return found.group("student") if found else None


class Auditor:
    """Append audit entries without ever failing, and without holding a read up for long."""

    def __init__(
        self,
        store: Callable[[], AuditWriter | None],
        *,
        wait: timedelta = AUDIT_WAIT,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._store = store
        self._wait = wait.total_seconds()
        self._max = max_in_flight
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="audit")
        self._lock = threading.Lock()
        self._in_flight = 0

    def _write_all(self, entries: list[AuditEntry]) -> None:
        try:
            store = self._store()
            if store is not None:
                for entry in entries:
                    store.append_audit(entry)
        finally:
            with self._lock:
                self._in_flight -= 1

    def record(self, entry: AuditEntry) -> bool:
        """Append ``entry``; ``True`` when it was stored within the wait. Never raises."""
        return self.record_many([entry])

    def record_many(self, entries: Iterable[AuditEntry]) -> bool:
        """Append ``entries`` (one background task, one wait of at most the audit wait for all of
        them); ``True`` when all were stored within it. Never raises; nothing to do is ``True``."""
        from session_tracker.observability import logger

        batch = list(entries)
        if not batch:
            return True
        entry = batch[0]
        with self._lock:
            if self._in_flight >= self._max:
                logger.warning(
                    "audit entry dropped: the audit store is not keeping up",
                    extra={"action": entry.action, "entries": len(batch)},
                )
                return False
            self._in_flight += 1
        try:
            future = self._pool.submit(self._write_all, batch)
        except RuntimeError:  # interpreter shutting down
            with self._lock:
                self._in_flight -= 1
            return False
        try:
            future.result(timeout=self._wait)
        except FutureTimeout:
            logger.warning("audit write still in flight", extra={"action": entry.action})
            return False
        except Exception as exc:
            logger.warning("audit write failed", extra={"action": entry.action, "error_type": type(exc).__name__})
            return False
        return True


def distinct(ids: Iterable[str | None]) -> list[str]:
    """The distinct ids in first-seen order (``None`` left out): one audit entry per student on a page."""
    return list(dict.fromkeys(i for i in ids if i))


class Repeats:
    """Which (reader, student) pairs a polled view recorded lately (bounded, per process)."""

    def __init__(self, *, after: timedelta = REPEAT_AFTER, size: int = 10_000) -> None:
        self._after, self._size = after, size
        self._seen: OrderedDict[tuple[str, ...], datetime] = OrderedDict()
        self._lock = threading.Lock()

    def fresh(self, keys: Iterable[tuple[str, ...]], now: datetime) -> list[tuple[str, ...]]:
        """The keys not recorded within ``after`` of ``now``; they count as recorded from now on."""
        out = []
        with self._lock:
            for key in keys:
                last = self._seen.get(key)
                if last is not None and now - last < self._after:
                    continue
                self._seen[key] = now
                self._seen.move_to_end(key)
                out.append(key)
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
        return out


def list_entries(
    *,
    store: AuditReader,
    student_id: str | None,
    start: datetime,
    end: datetime,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> AuditPage:
    entries, next_cursor = store.list_audit(student_id=student_id, start=start, end=end, limit=limit, cursor=cursor)
    return AuditPage(entries=entries, next_cursor=next_cursor)


__all__ = [
    "AUDIT_WAIT",
    "REPEAT_AFTER",
    "AuditAction",
    "AuditEntry",
    "AuditPage",
    "AuditReader",
    "AuditWriter",
    "Auditor",
    "Repeats",
    "distinct",
    "list_entries",
    "student_of",
]
