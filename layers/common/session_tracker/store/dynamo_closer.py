"""Closing idle sessions: the sparse open-session index GSI2 and the closing transaction."""

from __future__ import annotations

from collections.abc import Sequence
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
    item_to_meta,
    serialize,
)
from session_tracker.store.dynamo_base import DynamoBase
from session_tracker.store.keys import (
    GSI2,
    OPEN_SHARDS,
    RECHECK_AFTER,
    head_key,
    open_bucket,
    session_key,
)
from session_tracker.store.v2 import derive_counters, item_to_interaction_light, new_version


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

    def sessions_to_close(self, session_ids: Sequence[str], *, now: datetime) -> dict[str, SessionMeta]:
        """The due sessions' records with counters derived from their calls (one Query each):
        active ones, and closed ones whose re-check is due (``recheck_after`` passed)."""
        items = self._batch_records(session_ids, ("recheck_after", "session_summary"))
        records = {str(i["session_id"]): item_to_meta(i) for i in items}
        extra = {str(i["session_id"]): i for i in items}
        found: dict[str, SessionMeta] = {}
        for sid, meta in records.items():
            more = extra.get(sid, {})
            if meta.status != "active":
                after = more.get("recheck_after")
                if not after or parse_iso(after) > now:
                    continue
            meta = meta.model_copy(update={"session_summary": more.get("session_summary")})
            found[sid] = derive_counters(
                meta,
                [
                    item_to_interaction_light(i)
                    for i in self._session_call_items(
                        meta.model_copy(update={"status": "active"}), projection=_COUNT_ATTRS
                    )
                ],
            )
        return found

    def rebucket(self, meta: SessionMeta) -> None:
        """Not idle yet: move the session's closer-index key to its newest call's bucket."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=serialize(session_key(meta.session_id)),
                UpdateExpression="SET gsi2sk = :b",
                ConditionExpression="#status = :active",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_values(b=open_bucket(meta.last_activity), active="active"),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def finish_recheck(
        self, meta: SessionMeta, *, summary: dict[str, Any] | None, now: datetime, request_analysis: bool
    ) -> None:
        """End a closed session's re-check: with ``summary``, re-close it with the counters of
        ``meta`` (calls landed while it closed); then off the closer's index."""
        sets = ["updated_at = :now"]
        values: dict[str, Any] = {"now": iso(now)}
        sets += _counter_sets(meta, values)  # the calls as they are now (a completed session's too)
        if summary is not None:
            end = max(meta.end_time or meta.last_activity, meta.last_activity)
            sets += ["end_time = :end", "session_summary = :summary"]
            values |= {"end": iso(end), "summary": summary}
            if request_analysis:
                sets += ["pending_analysis = :true", "content_updated_at = :now", "analysis_trigger = :trigger"]
                values |= {"true": True, "trigger": "on_session_complete"}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=serialize(session_key(meta.session_id)),
                UpdateExpression=f"SET {', '.join(sets)} REMOVE gsi2pk, gsi2sk, recheck_after",
                ConditionExpression="#status = :status AND attribute_exists(recheck_after)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_values(status=meta.status, **values),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise StoreConflict(f"session {meta.session_id} changed while re-checked") from exc

    def close_session(
        self,
        meta: SessionMeta,
        *,
        end_time: datetime,
        summary: dict[str, Any],
        now: datetime,
        request_analysis: bool,
    ) -> None:
        """Close an active session as read (``meta``, counters derived from its calls);
        :class:`StoreConflict` if it changed since.

        One transaction: the session record (condition ``status = active``; the derived
        counters written; kept in GSI2 for the re-check ``RECHECK_AFTER`` later) and the
        student's HEAD (``closed_at`` while it still points at this session, else a condition
        check that it does not). A call that lands after the counters were read is counted by
        the re-check, which re-closes the session.
        """
        sets = ["#status = :closed", "end_time = :end", "session_summary = :summary", "updated_at = :now"]
        values: dict[str, Any] = {
            "closed": "closed",
            "active": "active",
            "end": iso(end_time),
            "summary": summary,
            "now": iso(now),
            "seen": iso(meta.last_activity),
            "recheck": iso(now + RECHECK_AFTER),
        }
        sets += _counter_sets(meta, values)
        sets.append("recheck_after = :recheck")
        if request_analysis:
            sets += ["pending_analysis = :true", "content_updated_at = :now", "analysis_trigger = :trigger"]
            values |= {"true": True, "trigger": "on_session_complete"}
        meta_op = {
            "Update": {
                "TableName": self.table_name,
                "Key": serialize(session_key(meta.session_id)),
                "UpdateExpression": f"SET {', '.join(sets)}",
                "ConditionExpression": "#status = :active AND (attribute_not_exists(last_activity) OR last_activity <= :seen)",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": _values(**values),
            }
        }
        head_here = {
            "Update": {
                "TableName": self.table_name,
                "Key": serialize(head_key(meta.student_id)),
                "UpdateExpression": "SET closed_at = :end, version = :nv",
                "ConditionExpression": "session_id = :sid",
                "ExpressionAttributeValues": _values(sid=meta.session_id, end=iso(end_time), nv=new_version()),
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
                if current is None or current.status != "active" or current.last_activity > meta.last_activity:
                    raise StoreConflict(f"session {meta.session_id} changed while closing") from exc
                # Only the HEAD condition failed: it points elsewhere (or moved); try the other form.
        raise StoreConflict(f"the head of {meta.student_id} kept moving while closing {meta.session_id}")


_COUNT_ATTRS = ("PK", "SK", "session_id", "interaction_id", "timestamp", "subjects", "data_provided", "call_id")


def _counter_sets(meta: SessionMeta, values: dict[str, Any]) -> list[str]:
    sets = ["interaction_count = :count", "last_activity = :last"]
    values |= {"count": meta.interaction_count, "last": iso(meta.last_activity)}
    for name in ("subjects", "data_provided", "call_ids"):
        if getattr(meta, name):
            sets.append(f"{name} = :{name}")
            values[name] = set(getattr(meta, name))
    return sets
