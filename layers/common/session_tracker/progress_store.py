"""DynamoDB side of :class:`session_tracker.progress.StudentHistoryReader` (the student page's reads).

- ``student_history``: ``Query`` GSI1 (``gsi1pk = STUDENT#{id}``, ``gsi1sk BETWEEN``), newest
  first, with a projection of the list fields plus the nested paths the session length and the
  flags need (``conversation.started_at``/``ended_at``, ``analysis.status``, the cost). About
  300 B per session: 500 sessions are one or two 1 MB query pages.
- ``session_notes``: one ``BatchGetItem`` (≤ 100 keys) of the analysis texts of a page's sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from session_tracker.models import SessionMeta, iso
from session_tracker.store import GSI1, DynamoStore, deserialize, item_to_meta, serialize, session_key

HISTORY_PATHS = (
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
    parts = []
    for path in paths:
        aliased = []
        for name in path.split("."):
            alias = next((k for k, v in names.items() if v == name), None) or f"#p{len(names)}"
            names[alias] = name
            aliased.append(alias)
        parts.append(".".join(aliased))
    return ", ".join(parts), names


class DynamoHistory:
    """The student page's reads on the single table (wraps the :class:`DynamoStore`)."""

    def __init__(self, store: DynamoStore) -> None:
        self.store = store
        self.reads = 0
        """Items read so far (the bench checks the page reads a bounded number)."""

    def student_history(self, student_id: str, *, start: datetime, end: datetime, limit: int) -> list[SessionMeta]:
        expression, names = projection(HISTORY_PATHS)
        kwargs: dict[str, Any] = {
            "TableName": self.store.table_name,
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
            out = self.store.client.query(Limit=limit - len(items), **kwargs)
            raw = out.get("Items", [])
            self.reads += len(raw)
            items += [item_to_meta(deserialize(i)) for i in raw]
            if "LastEvaluatedKey" not in out:
                break
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        return items

    def session_notes(self, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        expression, names = projection(NOTE_PATHS)
        notes: dict[str, dict[str, Any]] = {}
        ids = list(dict.fromkeys(session_ids))
        for chunk in (ids[i : i + 100] for i in range(0, len(ids), 100)):
            request: dict[str, Any] = {
                self.store.table_name: {
                    "Keys": [serialize(session_key(s)) for s in chunk],
                    "ProjectionExpression": expression,
                    "ExpressionAttributeNames": names,
                }
            }
            for _ in range(10):
                out = self.store.client.batch_get_item(RequestItems=request)
                for raw in out.get("Responses", {}).get(self.store.table_name, []):
                    item = deserialize(raw)
                    self.reads += 1
                    notes[str(item["session_id"])] = dict(item.get("analysis") or {})
                request = out.get("UnprocessedKeys") or {}
                if not request:
                    break
        return notes

    def list_student_sessions(
        self, student_id: str, *, start: datetime, end: datetime, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[SessionMeta], str | None]:
        metas, next_cursor = self.store.list_student_sessions(
            student_id, start=start, end=end, limit=limit, cursor=cursor
        )
        self.reads += len(metas) + (1 if next_cursor else 0)
        return metas, next_cursor
