"""Storage-v2 helpers shared by the DynamoDB store and the fake (no AWS imports)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from session_tracker.models import Head, Interaction, RecentCall, SessionMeta

LOOK_BACK = 7
"""Calls read with the HEAD (newest first): a retried ``interaction_id`` with a different
timestamp is recognised when the stored one is among the student's 7 newest calls."""


def new_version() -> int:
    """A fresh HEAD change token (nanoseconds: distinct for every write in practice)."""
    return time.time_ns()


def with_recent(head: Head, calls: Sequence[RecentCall]) -> Head:
    """``head`` with the newest calls read alongside it; ``last_activity`` is the newest call
    of the head's session (the HEAD item's own value is only as of its last boundary write)."""
    last = max([head.last_activity, *(c.timestamp for c in calls if c.session_id == head.session_id)])
    return head.model_copy(update={"recent": list(calls), "last_activity": last})


def _from_calls(student_id: str, calls: Sequence[RecentCall]) -> Head | None:
    """No HEAD stored (v1 table being migrated / erased HEAD) but calls exist: ``None`` still
    (the first call opens a session), with nothing else to go on."""
    return None


def recent_session(head: Head | None, interaction_id: str, at: datetime) -> str | None:
    """The session of a stored call with this id among the look-back (another timestamp)."""
    if head is None:
        return None
    for call in head.recent:
        if call.interaction_id == interaction_id:
            return call.session_id
    return None


def item_to_interaction_light(item: dict[str, Any]) -> Interaction:
    """A call item read with the counter attributes only (closer, views)."""
    return Interaction(
        interaction_id=str(item.get("interaction_id") or item.get("SK", "")),
        student_id=str(item.get("student_id") or ""),
        function=str(item.get("function") or ""),
        timestamp=item["timestamp"],
        received_at=item["timestamp"],
        subjects=list(item.get("subjects") or []),
        data_provided=list(item.get("data_provided") or []),
        call_id=item.get("call_id"),
    )


def derive_counters(meta: SessionMeta, calls: Sequence[Interaction]) -> SessionMeta:
    """The record with the counters its calls give (v2 records keep them only as of open/close)."""
    if not calls:
        return meta
    return meta.model_copy(
        update={
            "interaction_count": len(calls),
            "last_activity": max([meta.last_activity, *(c.timestamp for c in calls)]),
            "start_time": min([meta.start_time, *(c.timestamp for c in calls)]),
            "subjects": sorted(set(meta.subjects) | {s for c in calls for s in c.subjects}),
            "data_provided": sorted(set(meta.data_provided) | {d for c in calls for d in c.data_provided}),
            "call_ids": sorted(set(meta.call_ids) | {c.call_id for c in calls if c.call_id}),
        }
    )
