"""Where a session's calls are: both layouts (v2 student partition, v1 session partition)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from session_tracker.models import SessionMeta, iso
from session_tracker.store.codec import _values
from session_tracker.store.keys import CALL_SK_PREFIX, LAYOUT_VERSION, student_pk
from session_tracker.store.v2 import derive_counters, item_to_interaction_light


def session_call_items(
    self: Any,
    meta: SessionMeta,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    projection: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """The items of a session's calls (time order), from wherever its layout keeps them:
    v2 in the student's partition between its start and end (filtered on ``session_id``,
    merged sessions included), v1 under ``SESSION#{id}`` (plus any v2 calls it received)."""
    ids = [meta.session_id, *meta.merged_from]
    lo = start if start is not None and start > meta.start_time else meta.start_time
    upper = end
    if upper is None and meta.status in ("closed", "completed") and meta.end_time is not None:
        # a finished session: its calls end at its end, or at a later call it received (which
        # moves last_activity; one in flight while it finished is found by the closer's re-check)
        upper = max(meta.end_time, meta.last_activity)
    a = f"{CALL_SK_PREFIX}{iso(lo)}"
    b = f"{CALL_SK_PREFIX}{iso(upper)}#\uffff" if upper is not None else f"{CALL_SK_PREFIX}\uffff"
    names = {f"#s{i}": n for i, n in enumerate(projection or ())}
    extra: dict[str, Any] = {}
    if projection:
        extra["ProjectionExpression"] = ", ".join(names)
    filter_ids = {f"sid{i}": sid for i, sid in enumerate(ids)}
    items = list(
        self._query(
            KeyConditionExpression="PK = :pk AND SK BETWEEN :a AND :b",
            FilterExpression=f"session_id IN ({', '.join(':' + k for k in filter_ids)})",
            ExpressionAttributeValues=_values(pk=student_pk(meta.student_id), a=a, b=b, **filter_ids),
            ConsistentRead=True,
            **({"ExpressionAttributeNames": names} if names else {}),
            **extra,
        )
    )
    if meta.layout != LAYOUT_VERSION:
        v1_names = {f"#s{i}": n for i, n in enumerate(projection or ())}
        lo_sk = f"{CALL_SK_PREFIX}{iso(start)}" if start is not None else CALL_SK_PREFIX
        hi_sk = f"{CALL_SK_PREFIX}{iso(end)}#\uffff" if end is not None else f"{CALL_SK_PREFIX}\uffff"
        items += list(
            self._query(
                KeyConditionExpression="PK = :pk AND SK BETWEEN :a AND :b",
                ExpressionAttributeValues=_values(pk=f"SESSION#{meta.session_id}", a=lo_sk, b=hi_sk),
                ConsistentRead=True,
                **(
                    {"ExpressionAttributeNames": v1_names, "ProjectionExpression": ", ".join(v1_names)}
                    if v1_names
                    else {}
                ),
            )
        )
    # mid-migration a v1 call can be in both places: once per (timestamp, id), the v2 copy first
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        sk = str(item.get("SK", ""))
        key = (
            (str(item.get("timestamp", "")), str(item.get("interaction_id", "")))
            if "timestamp" in item
            else (str(item.get("PK")), sk)
        )
        unique.setdefault(key, item)
    return sorted(unique.values(), key=lambda i: (str(i.get("timestamp", "")), str(i.get("interaction_id", ""))))


def completion_counters(self: Any, session_id: str, values: dict[str, Any]) -> list[str]:
    """SET clauses (values added to ``values``) of a finishing session's counters, from its calls."""
    current: SessionMeta | None = self.get_session(session_id)
    if current is None:
        return []
    names = ("session_id", "interaction_id", "timestamp", "subjects", "data_provided", "call_id")
    items = session_call_items(self, current.model_copy(update={"status": "active"}), projection=names)
    if not items:
        return []
    derived = derive_counters(current, [item_to_interaction_light(i) for i in items])
    sets = ["interaction_count = :cnt", "last_activity = :lastact"]
    values |= {"cnt": derived.interaction_count, "lastact": iso(derived.last_activity)}
    for attr in ("subjects", "data_provided"):
        if getattr(derived, attr):
            sets.append(f"{attr} = :{attr}")
            values[attr] = set(getattr(derived, attr))
    return sets
