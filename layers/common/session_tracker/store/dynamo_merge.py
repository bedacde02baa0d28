"""Placing late calls (neighbours by call) and merging a session a late call bridged to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from session_tracker.models import Head, SessionMeta, iso, parse_iso
from session_tracker.store.codec import _values, deserialize, item_to_meta, serialize
from session_tracker.store.dynamo_base import DynamoBase, _Tx
from session_tracker.store.keys import (
    CALL_SK_PREFIX,
    GSI1,
    LAYOUT_VERSION,
    MERGED_PREFIX,
    head_key,
    open_bucket,
    open_shard,
    session_key,
    student_pk,
)
from session_tracker.store.v2 import new_version


class MergeMixin(DynamoBase):
    """Late calls and bridging merges (part of the ingest port)."""

    def _head_condition(self, expected: Head | None) -> tuple[str, dict[str, Any]]:
        if expected is None or expected.version is None:
            return "attribute_not_exists(SK)", {}
        return "version = :v", {"v": expected.version}

    # -------------------------------------------------------------- ingest reads
    def neighbours(self, student_id: str, at: datetime) -> tuple[SessionMeta | None, SessionMeta | None]:
        """The sessions of the student's calls just before and just after ``at``: ``prev`` with
        ``last_activity`` = that call's time, ``nxt`` with ``start_time`` = that call's time.
        Sides with no v2 call fall back to the session records (GSI1: v1 sessions, calls-less ones)."""
        bound = f"{CALL_SK_PREFIX}{iso(at)}#\uffff"
        common = {"TableName": self.table_name, "ConsistentRead": True, "Limit": 1}
        prev_items = self.client.query(
            KeyConditionExpression="PK = :pk AND SK BETWEEN :a AND :b",
            ExpressionAttributeValues=_values(pk=student_pk(student_id), a=CALL_SK_PREFIX, b=bound),
            ScanIndexForward=False,
            **common,  # type: ignore[arg-type]
        ).get("Items", [])
        next_items = self.client.query(
            KeyConditionExpression="PK = :pk AND SK BETWEEN :a AND :b",
            ExpressionAttributeValues=_values(pk=student_pk(student_id), a=bound, b=f"{CALL_SK_PREFIX}\uffff"),
            ScanIndexForward=True,
            **common,  # type: ignore[arg-type]
        ).get("Items", [])
        old_prev, old_next = self._record_neighbours(student_id, at)

        def pick(items: list[dict[str, Any]], fallback: SessionMeta | None, field: str) -> SessionMeta | None:
            if not items:
                return fallback
            call = deserialize(items[0])
            meta = self.get_session(call["session_id"])
            if meta is None:
                return fallback
            if meta.status == "merged" and meta.merged_into:
                meta = self.get_session(meta.merged_into) or meta
            return meta.model_copy(update={field: parse_iso(str(call["timestamp"]))})

        prev = pick(prev_items, old_prev, "last_activity")
        nxt = pick(next_items, old_next, "start_time")
        if old_prev is not None and prev is not None and old_prev.last_activity > prev.last_activity:
            prev = old_prev if old_prev.layout != LAYOUT_VERSION else prev
        return prev, nxt

    def _record_neighbours(self, student_id: str, at: datetime) -> tuple[SessionMeta | None, SessionMeta | None]:
        pk = f"STUDENT#{student_id}"
        bound = f"{iso(at)}#\uffff"
        found: list[SessionMeta | None] = []
        for cond, forward in (("gsi1sk <= :b", False), ("gsi1sk > :b", True)):
            items = self.client.query(
                TableName=self.table_name,
                IndexName=GSI1,
                KeyConditionExpression=f"gsi1pk = :pk AND {cond}",
                ExpressionAttributeValues=_values(pk=pk, b=bound),
                ScanIndexForward=forward,
                Limit=1,
            ).get("Items", [])
            found.append(item_to_meta(deserialize(items[0])) if items else None)
        return found[0], found[1]

    def merge_session(self, into: SessionMeta, merged: SessionMeta, *, head: Head | None) -> None:
        """Fold ``merged`` (a later session a call bridged to) into ``into``: its calls get
        ``into``'s id, its record becomes a ``merged`` pointer (off the listings), ``into`` lists it
        in ``merged_from`` (so a straggler still tagged ``merged`` counts), the HEAD follows."""
        calls = self._session_call_items(merged, projection=("PK", "SK"))
        tx = _Tx()
        tx.add(
            "meta_update",
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": serialize(session_key(merged.session_id)),
                    "UpdateExpression": "SET #status = :merged, merged_into = :into, gsi1pk = :g1 "
                    "REMOVE gsi2pk, gsi2sk, gsi3pk, gsi3sk",
                    "ConditionExpression": "attribute_exists(PK) AND #status <> :merged",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": _values(
                        merged="merged", into=into.session_id, g1=f"{MERGED_PREFIX}{merged.student_id}"
                    ),
                }
            },
        )
        sets = ["updated_at = :now"]
        values: dict[str, Any] = {"from": {merged.session_id, *merged.merged_from}, "now": iso(merged.last_activity)}
        if into.status in ("closed", "completed"):
            sets += ["gsi2pk = :g2pk", "gsi2sk = :g2sk", "recheck_after = :now"]
            values |= {"g2pk": open_shard(into.session_id), "g2sk": open_bucket(merged.last_activity)}
        tx.add(
            "into",
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": serialize(session_key(into.session_id)),
                    "UpdateExpression": f"SET {', '.join(sets)} ADD merged_from :from",
                    "ConditionExpression": "attribute_exists(PK)",
                    "ExpressionAttributeValues": _values(**values),
                }
            },
        )
        if head is not None and head.session_id == merged.session_id:
            cond, hv = self._head_condition(head)
            tx.add(
                "head",
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": serialize(head_key(head.student_id)),
                        "UpdateExpression": "SET session_id = :sid, session_start = :start, version = :nv",
                        "ConditionExpression": cond,
                        "ExpressionAttributeValues": _values(
                            sid=into.session_id, start=iso(into.start_time), nv=new_version(), **hv
                        ),
                    }
                },
            )
        retag = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": serialize({"PK": c["PK"], "SK": c["SK"]}),
                    "UpdateExpression": "SET session_id = :sid",
                    "ConditionExpression": "attribute_exists(SK)",
                    "ExpressionAttributeValues": _values(sid=into.session_id),
                }
            }
            for c in calls
        ]
        first = 100 - len(tx.items)
        for op in retag[:first]:
            tx.add("retag", op)
        self._transact(tx)
        for start in range(first, len(retag), 100):
            self.client.transact_write_items(TransactItems=retag[start : start + 100])  # type: ignore[arg-type]
