"""Closing idle sessions: the sparse open-session index GSI2 and the closing transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from session_tracker.errors import (
    StoreConflict,
)
from session_tracker.models import (
    SessionMeta,
    iso,
    parse_iso,
)
from session_tracker.store.codec import (
    _values,
    deserialize,
    serialize,
)
from session_tracker.store.dynamo_base import DynamoBase
from session_tracker.store.keys import (
    GSI2,
    OPEN_SHARDS,
    head_key,
    session_key,
)


class CloserMixin(DynamoBase):
    """:class:`~session_tracker.store.ports.CloserStore` on DynamoDB."""

    # ------------------------------------------- lifecycle and analysis (close_idle, analyze)
    # Idle close: Query GSI2 (sparse: only active sessions carry gsi2pk/gsi2sk), one partition
    # per OPEN#{shard}, ``gsi2sk < cutoff``, oldest first: reads only what is due, never the
    # table. Closing REMOVEs gsi2pk/gsi2sk in the same conditional write, so the index only
    # ever holds active sessions. Analysis: META flags ``pending_analysis`` (BOOL) and
    # ``content_updated_at`` trigger the stream; the analyzer clears them conditionally.
    # Daily spend: one counter item per UTC day, ``USAGE#{YYYY-MM-DD}`` / ``USAGE``.

    def due_sessions(self, cutoff: datetime, *, limit: int, page_size: int = 500) -> list[tuple[str, datetime]]:
        """Up to ``limit`` open sessions whose last activity is before ``cutoff``: (id, last_activity).

        Shards are read round-robin, a page at a time, oldest first, so one busy shard
        cannot starve the others and a run reads at most about ``limit`` index entries.
        """
        found: list[tuple[str, datetime]] = []
        starts: dict[int, dict[str, Any] | None] = dict.fromkeys(range(OPEN_SHARDS))
        while starts and len(found) < limit:
            for shard in list(starts):
                want = min(page_size, limit - len(found))
                if want <= 0:
                    break
                kwargs: dict[str, Any] = {
                    "IndexName": GSI2,
                    "KeyConditionExpression": "gsi2pk = :pk AND gsi2sk < :cutoff",
                    "ExpressionAttributeValues": _values(pk=f"OPEN#{shard}", cutoff=iso(cutoff)),
                    "ScanIndexForward": True,
                    "Limit": want,
                }
                if starts[shard]:
                    kwargs["ExclusiveStartKey"] = starts[shard]
                out = self.client.query(TableName=self.table_name, **kwargs)
                for raw in out.get("Items", []):
                    item = deserialize(raw)
                    found.append((item["PK"].removeprefix("SESSION#"), parse_iso(item["gsi2sk"])))
                if "LastEvaluatedKey" in out:
                    starts[shard] = out["LastEvaluatedKey"]
                else:
                    del starts[shard]
        return found[:limit]

    def close_session(
        self,
        meta: SessionMeta,
        *,
        end_time: datetime,
        summary: dict[str, Any],
        now: datetime,
        request_analysis: bool,
    ) -> None:
        """Close an active session as read (``meta``); :class:`StoreConflict` if it changed since.

        One transaction: the session record (condition ``last_activity`` unchanged and
        ``status = active``; REMOVE the GSI2 keys) and the student's HEAD, which gets
        ``ended_at`` only while it still points at this session (else a condition check that
        it does not). A call that lands between the read and this write makes it fail.
        """
        sets = ["#status = :closed", "end_time = :end", "session_summary = :summary", "updated_at = :now"]
        values: dict[str, Any] = {
            "closed": "closed",
            "active": "active",
            "end": iso(end_time),
            "summary": summary,
            "now": iso(now),
            "seen": iso(meta.last_activity),
        }
        if request_analysis:
            sets += ["pending_analysis = :true", "content_updated_at = :now", "analysis_trigger = :trigger"]
            values |= {"true": True, "trigger": "on_session_complete"}
        meta_op = {
            "Update": {
                "TableName": self.table_name,
                "Key": serialize(session_key(meta.session_id)),
                "UpdateExpression": f"SET {', '.join(sets)} REMOVE gsi2pk, gsi2sk",
                "ConditionExpression": "last_activity = :seen AND #status = :active",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": _values(**values),
            }
        }
        head_here = {
            "Update": {
                "TableName": self.table_name,
                "Key": serialize(head_key(meta.student_id)),
                "UpdateExpression": "SET closed_at = :end",
                "ConditionExpression": "session_id = :sid",
                "ExpressionAttributeValues": _values(sid=meta.session_id, end=iso(end_time)),
            }
        }
        head_elsewhere = {
            "ConditionCheck": {
                "TableName": self.table_name,
                "Key": serialize(head_key(meta.student_id)),
                "ConditionExpression": "attribute_not_exists(PK) OR session_id <> :sid",
                "ExpressionAttributeValues": _values(sid=meta.session_id),
            }
        }
        for head_op in (head_here, head_elsewhere, head_here):
            try:
                self.client.transact_write_items(TransactItems=[meta_op, head_op])  # type: ignore[list-item]
                return
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                current = self.get_session(meta.session_id)
                if current is None or current.status != "active" or current.last_activity != meta.last_activity:
                    raise StoreConflict(f"session {meta.session_id} changed while closing") from exc
                # Only the HEAD condition failed: it points elsewhere (or moved); try the other form.
        raise StoreConflict(f"the head of {meta.student_id} kept moving while closing {meta.session_id}")
