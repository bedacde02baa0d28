"""Session lifecycle: closing sessions that went idle (the scheduled ``close_idle`` function).

Pure rules over models; the clock (``now``), the store and the time budget come in as
arguments.

- A session is due when ``now - last_activity > timeout`` (strictly longer than the
  configured idle gap, the same rule that makes the next call open a new session).
- Closing sets ``status: closed``, ``end_time`` (= its last activity) and
  ``session_summary``, and (when analysis runs on completion) ``pending_analysis``.
- The write is conditional on ``last_activity`` being what was read and the status still
  ``active``: a call that lands in between wins, and the session stays open.
- Due sessions are found through the sparse index GSI2 (only active sessions), oldest
  first, at most ``max_sessions`` per run and within a time budget; the rest are found by
  the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from pydantic import Field

from session_tracker.errors import StoreConflict
from session_tracker.length import format_duration, session_length
from session_tracker.models import LazyModel, SessionMeta, SessionSummary
from session_tracker.store.ports import CloserStore

BATCH = 100


class CloseReport(LazyModel):
    """What one run of the closer did."""

    cutoff: datetime
    due: int = 0
    closed: list[str] = Field(default_factory=list)
    raced: list[str] = Field(default_factory=list)
    """Sessions that received a call (or were closed by someone else) while being closed."""
    missing: int = 0
    rebucketed: int = 0
    """Sessions found due by the index whose newest call was recent: re-indexed to it."""
    rechecked: list[str] = Field(default_factory=list)
    """Closed sessions re-read ``RECHECK_AFTER`` after closing: nothing landed meanwhile."""
    reclosed: list[str] = Field(default_factory=list)
    """Closed sessions that received a call while closing: closed again with it counted."""
    stopped_early: bool = False
    """The time budget ran out; the remaining due sessions wait for the next run."""


def is_due(last_activity: datetime, *, now: datetime, timeout: timedelta) -> bool:
    """Whether a session last active at ``last_activity`` has been idle longer than ``timeout``."""
    return now - last_activity > timeout


def closing_summary(meta: SessionMeta) -> SessionSummary:
    """``session_summary`` of a session being closed, from its own record (no extra reads)."""
    span = session_length(
        start_time=meta.start_time,
        last_activity=meta.last_activity,
        end_time=meta.end_time,
        conversation=meta.conversation,
    )
    return SessionSummary(
        duration_estimated=format_duration(span),
        duration_seconds=round(span.total_seconds(), 3),
        data_requests=meta.interaction_count,
        subjects_accessed=sorted(set(meta.subjects)),
    )


def close_session(meta: SessionMeta, *, store: CloserStore, now: datetime, request_analysis: bool) -> bool:
    """Close one active session as read; ``False`` when a concurrent change won (left open)."""
    try:
        store.close_session(
            meta,
            end_time=meta.last_activity,
            summary=closing_summary(meta).model_dump(mode="json"),
            now=now,
            request_analysis=request_analysis,
        )
    except StoreConflict:
        return False
    return True


def close_idle_sessions(
    *,
    store: CloserStore,
    now: datetime,
    timeout: timedelta,
    request_analysis: bool,
    max_sessions: int = 2000,
    time_left: Callable[[], float] = lambda: float("inf"),
    min_seconds: float = 5.0,
    workers: int = 8,
) -> CloseReport:
    """Close every session idle longer than ``timeout`` (up to ``max_sessions`` this run).

    ``time_left`` returns the seconds left in this invocation; the run stops starting new
    batches when fewer than ``min_seconds`` remain.
    """
    cutoff = now - timeout
    report = CloseReport(cutoff=cutoff)
    due = store.due_sessions(cutoff, limit=max_sessions)
    report.due = len(due)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(due), BATCH):
            if time_left() < min_seconds:
                report.stopped_early = True
                break
            batch = due[start : start + BATCH]
            metas = store.sessions_to_close([sid for sid, _ in batch], now=now)
            report.missing += len(batch) - len(metas)  # gone, or closed and waiting for its re-check
            todo = _still_due(batch, metas, now=now, timeout=timeout)
            for meta in metas.values():
                if meta.status == "active" and meta not in todo:
                    store.rebucket(meta)  # calls arrived since it was indexed: due later
                    report.rebucketed += 1
                elif meta.status != "active":
                    _recheck(meta, store=store, now=now, request_analysis=request_analysis, report=report)
            results = pool.map(
                lambda meta: (
                    meta.session_id,
                    close_session(meta, store=store, now=now, request_analysis=request_analysis),
                ),
                todo,
            )
            for session_id, closed in results:
                (report.closed if closed else report.raced).append(session_id)
    return report


def _recheck(
    meta: SessionMeta, *, store: CloserStore, now: datetime, request_analysis: bool, report: CloseReport
) -> None:
    """A closed session's re-check: calls that landed while it closed re-close it with them counted."""
    stored = (meta.session_summary or {}).get("data_requests")
    changed = meta.status == "closed" and (
        stored != meta.interaction_count or (meta.end_time is not None and meta.last_activity > meta.end_time)
    )
    summary = closing_summary(meta.model_copy(update={"end_time": None})).model_dump(mode="json") if changed else None
    try:
        store.finish_recheck(meta, summary=summary, now=now, request_analysis=request_analysis and changed)
    except StoreConflict:
        return
    (report.reclosed if changed else report.rechecked).append(meta.session_id)


def _still_due(
    batch: Sequence[tuple[str, datetime]], metas: dict[str, SessionMeta], *, now: datetime, timeout: timedelta
) -> list[SessionMeta]:
    """The records that are still active and idle (the index is eventually consistent)."""
    return [
        meta
        for session_id, _ in batch
        if (meta := metas.get(session_id)) is not None
        and meta.status == "active"
        and is_due(meta.last_activity, now=now, timeout=timeout)
    ]
