"""Reading sessions: what the read API, the session pages and the CLI answer.

Every read is a query on a documented access pattern (see ``docs/architecture.md``):
one session is one ``Query`` on its partition (through :func:`sessions.read_export`,
which also restores transcripts kept in blob storage); a student's sessions are a
``Query`` on GSI1; every session in a time range is one ``Query`` per start day on GSI3.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from session_tracker.blobs import BlobStore
from session_tracker.errors import NotFound, Unprocessable
from session_tracker.length import session_length
from session_tracker.models import (
    MAX_YEAR,
    MIN_YEAR,
    Health,
    LazyModel,
    SessionExport,
    SessionMeta,
    SessionRef,
    SessionStatus,
    UtcDatetime,
    parse_iso,
)
from session_tracker.sessions import read_export
from session_tracker.store.ports import SessionReader, SessionStore

DEFAULT_PAGE = 20
SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,199}$"
RECENT = timedelta(days=7)
MAX_PAGE = 100
EARLIEST = datetime(MIN_YEAR, 1, 1, tzinfo=UTC)
LATEST = datetime(MAX_YEAR, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


class SessionListItem(LazyModel):
    """One line of a student's session list (the large fields are left out)."""

    session_id: str
    student_id: str
    start_time: UtcDatetime
    end_time: UtcDatetime | None = None
    last_activity: UtcDatetime | None = None
    status: SessionStatus
    platform: str | None = None
    interaction_count: int = 0
    subjects: list[str] = Field(default_factory=list)
    data_provided: list[str] = Field(default_factory=list)
    matching_strategy: str = "none"
    cost: float | None = None
    ended_reason: str | None = None
    length_seconds: float = 0.0
    """First to last activity (calls and conversation): :mod:`session_tracker.length`."""
    analysis_status: str | None = None
    """``ok``, ``failed`` or ``skipped`` once the analyzer has looked at the session."""


class SessionPage(LazyModel):
    """A page of a student's sessions, newest first; pass ``next_cursor`` as ``cursor`` for more."""

    student_id: str
    sessions: list[SessionListItem]
    next_cursor: str | None = None


class SessionRefPage(LazyModel):
    """A page of every student's sessions, newest first (operators' exports).

    ``start``/``end`` are the range used; pass them again with ``cursor`` for the next page.
    """

    sessions: list[SessionRef]
    start: UtcDatetime
    end: UtcDatetime
    next_cursor: str | None = None
    kept_since: UtcDatetime | None = None
    """The oldest start time a stored session can still have (``retention_days``, plus a
    margin); ``null``: data is kept forever. A full export reads from here."""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def session_cost(meta: SessionMeta) -> tuple[float | None, str | None]:
    """(cost in USD, ended reason) from the platform-neutral ``platform_metadata``, else VAPI's view."""
    for source, key in ((meta.platform_metadata, "cost_usd"), (meta.vapi_metadata, "cost")):
        data: dict[str, Any] = source or {}
        cost = _number(data.get(key))
        if cost is None and key == "cost_usd":
            cost = _number(data.get("cost")) if meta.platform != "vapi" else None
        reason = data.get("ended_reason")
        if cost is not None or isinstance(reason, str):
            return cost, reason if isinstance(reason, str) else None
    return None, None


def list_item(meta: SessionMeta) -> SessionListItem:
    """The list-line view of a session record."""
    cost, ended_reason = session_cost(meta)
    status = (meta.analysis or {}).get("status")
    return SessionListItem(
        session_id=meta.session_id,
        student_id=meta.student_id,
        start_time=meta.start_time,
        end_time=meta.end_time,
        last_activity=meta.last_activity,
        status=meta.status,
        platform=meta.platform,
        interaction_count=meta.interaction_count,
        subjects=meta.subjects,
        data_provided=meta.data_provided,
        matching_strategy=str((meta.matching or {}).get("strategy") or "none"),
        cost=cost,
        ended_reason=ended_reason,
        length_seconds=round(
            session_length(
                start_time=meta.start_time,
                last_activity=meta.last_activity,
                end_time=meta.end_time,
                conversation=meta.conversation,
            ).total_seconds(),
            3,
        ),
        analysis_status=status if isinstance(status, str) else None,
    )


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_bound(value: str | None, *, field: str, end: bool = False) -> datetime | None:
    """A ``from``/``to`` query value: ISO 8601 instant, or a date (its first/last instant).

    422 naming ``field`` when it is neither, or outside the years stored timestamps allow.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            parsed = day + timedelta(days=1) - timedelta(microseconds=1) if end else day
        else:
            parsed = parse_iso(text)
    except (ValueError, OverflowError) as exc:
        raise Unprocessable(f"`{field}` must be an ISO 8601 date or date-time, got {text[:40]!r}", field=field) from exc
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise Unprocessable(f"`{field}` must be between {MIN_YEAR} and {MAX_YEAR}", field=field)
    return parsed


def time_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """``[from, to]`` with open ends filled in; 422 naming ``from`` when it is after ``to``."""
    low, high = start or EARLIEST, end or LATEST
    if low > high:
        raise Unprocessable("`from` must not be after `to`", field="from")
    return low, high


def get_session(session_id: str, *, store: SessionReader, blobs: BlobStore | None) -> SessionExport:
    """One session in the export shape; 404 when there is no such session."""
    found = read_export(session_id, store=store, blobs=blobs)
    if found is None:
        raise NotFound(f"no session {session_id!r}", field="session_id")
    return found


def student_sessions(
    student_id: str,
    *,
    store: SessionReader,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> SessionPage:
    """A page of the student's sessions that started in ``[start, end]``, newest first."""
    low, high = time_range(start, end)
    metas, next_cursor = store.list_student_sessions(student_id, start=low, end=high, limit=limit, cursor=cursor)
    return SessionPage(student_id=student_id, sessions=[list_item(m) for m in metas], next_cursor=next_cursor)


RETENTION_MARGIN = timedelta(days=2)
"""Slack on the retention bound: a session's start precedes the event time its TTL counts from."""
FUTURE_MARGIN = timedelta(days=2)
"""How far past ``now`` a full export looks: calls may be dated up to the clock skew ahead."""


def kept_since(now: datetime, retention: timedelta | None) -> datetime | None:
    """The oldest start time a kept session can have; ``None`` when data is kept forever."""
    return now - retention - RETENTION_MARGIN if retention is not None else None


def full_range(now: datetime, retention: timedelta | None) -> tuple[datetime, datetime]:
    """The start-time range of *every* kept session: a full export, no date bound applied."""
    return kept_since(now, retention) or EARLIEST, now + FUTURE_MARGIN


def sessions_between(
    *,
    store: SessionReader,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
    retention: timedelta | None = None,
) -> SessionRefPage:
    """A page of every student's sessions that started in ``[start, end]``, newest first.

    ``end`` defaults to ``now`` and ``start`` to ``RECENT`` before ``end``. A page may be
    short (or empty) and still carry a cursor: each call reads at most a month of day partitions.
    """
    high = end or now
    low, high = time_range(start or high - RECENT, high)
    refs, next_cursor = store.list_sessions_between(start=low, end=high, limit=limit, cursor=cursor)
    return SessionRefPage(
        sessions=refs, start=low, end=high, next_cursor=next_cursor, kept_since=kept_since(now, retention)
    )


HEALTH_TTL = timedelta(seconds=10)
"""``/health`` is public: at most one database read per container in this time, whatever the traffic."""
_HEALTH_PROBE_ID = "~health-probe"
"""A session id no caller can create (``~`` is outside the id alphabet): the read finds nothing."""


@dataclass
class HealthCheck:
    """``/health``'s cached view of the database: one cheap read per :data:`HEALTH_TTL`."""

    version: str
    last: Health | None = None

    def __call__(self, *, store: SessionStore, now: datetime, is_outage: Callable[[BaseException], bool]) -> Health:
        """The store's state; ``is_outage`` tells a database outage from a bug (which propagates)."""
        if self.last is not None and self.last.checked_at and now - self.last.checked_at < HEALTH_TTL:
            return self.last
        try:
            store.get_session(_HEALTH_PROBE_ID)
            self.last = Health(version=self.version, checked_at=now)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.last = Health(status="unavailable", version=self.version, store="unreachable", checked_at=now)
        return self.last
