"""Tool-call matching (:class:`~session_tracker.store.ports.ToolCallReader`): logged calls by time.

Candidate sessions come from GSI1 (one student's sessions by start time) or, when the
student is unknown, from the day index GSI3 (every session by start day), started at most
:data:`LOOKBACK` before the call; each candidate's calls in the window are one Query on
its partition (``SK BETWEEN I#{start} AND I#{end}``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from session_tracker.models import Interaction, SessionMeta, iso, parse_iso, to_utc
from session_tracker.store.codec import _values, deserialize, item_to_interaction
from session_tracker.store.dynamo_base import DynamoBase
from session_tracker.store.keys import GSI1, GSI3

LOOKBACK = timedelta(hours=6)
"""A session that overlaps a call started at most this long before the call's window."""


class ToolCallMixin(DynamoBase):
    def _candidate_ids(self, start: datetime, end: datetime, student_id: str | None, limit: int) -> list[str]:
        first = start - LOOKBACK
        if student_id is not None:
            out = self.client.query(
                TableName=self.table_name,
                IndexName=GSI1,
                KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :a AND :b",
                ExpressionAttributeValues=_values(pk=f"STUDENT#{student_id}", a=iso(first), b=f"{iso(end)}#\uffff"),
                ProjectionExpression="PK",
                ScanIndexForward=False,
                Limit=limit,
            )
            return [deserialize(raw)["PK"].removeprefix("SESSION#") for raw in out.get("Items", [])]
        ids: list[str] = []
        day = to_utc(end).date()
        while day >= to_utc(first).date() and len(ids) < limit:
            kwargs: dict[str, Any] = {
                "IndexName": GSI3,
                "KeyConditionExpression": "gsi3pk = :pk AND gsi3sk BETWEEN :a AND :b",
                "ExpressionAttributeValues": _values(pk=f"DAY#{day:%Y-%m-%d}", a=iso(first), b=f"{iso(end)}#\uffff"),
                "ScanIndexForward": False,
                "Limit": limit - len(ids),
            }
            out = self.client.query(TableName=self.table_name, **kwargs)
            ids += [deserialize(raw)["PK"].removeprefix("SESSION#") for raw in out.get("Items", [])]
            day -= timedelta(days=1)
        return ids

    def _calls_between(self, meta: SessionMeta, start: datetime, end: datetime) -> list[Interaction]:
        items = self._session_call_items(meta, start=start, end=end)
        records = [item_to_interaction(i) for i in items if start <= parse_iso(str(i["timestamp"])) <= end]
        return sorted(records, key=lambda r: (r.timestamp, r.interaction_id))

    def sessions_with_calls_between(
        self, start: datetime, end: datetime, *, student_id: str | None = None, limit: int = 50
    ) -> list[tuple[SessionMeta, list[Interaction]]]:
        """Sessions active in ``[start, end]`` with their calls in that window (see the module docstring)."""
        ids = self._candidate_ids(start, end, student_id, limit)
        metas = self.get_sessions(ids) if ids else {}
        found: list[tuple[SessionMeta, list[Interaction]]] = []
        for session_id in ids:
            meta = metas.get(session_id)
            if meta is None or meta.status in ("unmatched", "merged") or meta.start_time > end:
                continue
            calls = self._calls_between(meta, start, end)
            if calls:
                found.append((meta, calls))
        return found


__all__ = ["LOOKBACK", "ToolCallMixin"]
