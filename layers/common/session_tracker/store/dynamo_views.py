"""The tutor's pages' reads: a student's history, list lines in batches, analysis notes, tool names.

- ``student_history``: ``Query`` GSI1 (``gsi1pk = STUDENT#{id}``, ``gsi1sk BETWEEN``), newest
  first, projecting the list fields plus the nested paths the session length and the flags
  need (``conversation.started_at``/``ended_at``, ``analysis.status``, the cost): ~300 B per
  session, so 500 sessions are one or two 1 MB query pages.
- ``session_lines``: ``BatchGetItem`` (<= 100 keys per call) of META records, same projection.
- ``session_notes``: ``BatchGetItem`` of the analysis texts of a page's sessions.
- ``session_tools``: ``Query`` of one session's calls projecting only ``function``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from session_tracker.models import SessionMeta, iso
from session_tracker.store.codec import deserialize, item_to_meta, serialize
from session_tracker.store.dynamo_base import DynamoBase
from session_tracker.store.keys import GSI1, session_key

LINE_PATHS = (
    "layout",
    "merged_from",
    "session_id",
    "student_id",
    "start_time",
    "last_activity",
    "end_time",
    "status",
    "platform",
    "interaction_count",
    "subjects",
    "data_provided",
    "matching.strategy",
    "vapi_metadata.cost",
    "vapi_metadata.ended_reason",
    "platform_metadata.cost_usd",
    "platform_metadata.ended_reason",
    "conversation.started_at",
    "conversation.ended_at",
    "analysis.status",
)
NOTE_PATHS = (
    "session_id",
    "analysis.status",
    "analysis.progress_update",
    "analysis.learning_insights",
    "analysis.analyzed_at",
    "analysis.error",
)


def projection(paths: Sequence[str]) -> tuple[str, dict[str, str]]:
    """A ``ProjectionExpression`` of (possibly nested) attribute paths, every name aliased."""
    names: dict[str, str] = {}
    aliases: dict[str, str] = {}
    parts = []
    for path in paths:
        aliased = []
        for name in path.split("."):
            if name not in aliases:
                aliases[name] = f"#p{len(aliases)}"
                names[aliases[name]] = name
            aliased.append(aliases[name])
        parts.append(".".join(aliased))
    return ", ".join(parts), names


class ViewsMixin(DynamoBase):
    """:class:`~session_tracker.store.ports.PageReader` on the table."""

    def student_history(self, student_id: str, *, start: datetime, end: datetime, limit: int) -> list[SessionMeta]:
        expression, names = projection(LINE_PATHS)
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :pk AND gsi1sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": serialize(
                {":pk": f"STUDENT#{student_id}", ":a": iso(start), ":b": f"{iso(end)}#\uffff"}
            ),
            "ProjectionExpression": expression,
            "ExpressionAttributeNames": names,
            "ScanIndexForward": False,
        }
        items: list[SessionMeta] = []
        while len(items) < limit:
            out = self.client.query(Limit=limit - len(items), **kwargs)
            items += [item_to_meta(deserialize(i)) for i in out.get("Items", [])]
            if "LastEvaluatedKey" not in out:
                break
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        return self._derive_open(items)

    def _batch(self, session_ids: Sequence[str], paths: Sequence[str]) -> Iterator[dict[str, Any]]:
        expression, names = projection(paths)
        ids = list(dict.fromkeys(session_ids))
        for chunk in (ids[i : i + 100] for i in range(0, len(ids), 100)):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [serialize(session_key(s)) for s in chunk],
                    "ProjectionExpression": expression,
                    "ExpressionAttributeNames": names,
                }
            }
            for _ in range(10):
                out = self.client.batch_get_item(RequestItems=request)
                for raw in out.get("Responses", {}).get(self.table_name, []):
                    yield deserialize(raw)
                request = out.get("UnprocessedKeys") or {}
                if not request:
                    break

    def session_lines(self, session_ids: Sequence[str]) -> dict[str, SessionMeta]:
        metas = self._derive_open([item_to_meta(item) for item in self._batch(session_ids, LINE_PATHS)])
        return {m.session_id: m for m in metas}

    def session_notes(self, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {str(i["session_id"]): dict(i.get("analysis") or {}) for i in self._batch(session_ids, NOTE_PATHS)}

    def session_tools(self, session_id: str) -> set[str]:
        meta = self.get_session(session_id)
        if meta is None:
            return set()
        items = self._session_call_items(meta, projection=("session_id", "interaction_id", "timestamp", "function"))
        return {n for n in (i.get("function") for i in items) if isinstance(n, str)}
