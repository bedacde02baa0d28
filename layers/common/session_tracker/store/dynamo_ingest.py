"""Logging tool calls: HEAD pointer, session records and calls in one transaction per write."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from session_tracker.models import (
    Head,
    Interaction,
    SessionMeta,
    iso,
)
from session_tracker.store.codec import (
    _values,
    deserialize,
    item_to_meta,
    meta_to_item,
    serialize,
)
from session_tracker.store.dynamo_base import DynamoBase, _Tx
from session_tracker.store.keys import (
    GSI1,
    day_index_keys,
    head_key,
    marker_key,
    open_bucket,
    open_shard,
    session_key,
)


class IngestMixin(DynamoBase):
    """:class:`~session_tracker.store.ports.IngestStore` on DynamoDB."""

    def _meta_update(
        self,
        meta: SessionMeta,
        records: Sequence[Interaction],
        *,
        new_last: datetime | None,
        new_start: datetime | None,
        student_guard: bool,
        now: datetime,
    ) -> dict[str, Any]:
        sets = ["updated_at = :now", "expires_at = :exp"]
        conds = ["attribute_exists(PK)"]
        values: dict[str, Any] = {
            "now": iso(now),
            "n": len(records),
            "exp": self.expires_at(max(new_last or meta.last_activity, meta.last_activity)) or 0,
        }
        adds = ["interaction_count :n"]
        for attr in ("subjects", "data_provided"):
            merged = {v for rec in records for v in getattr(rec, attr)}
            if merged:
                adds.append(f"{attr} :{attr}")
                values[attr] = merged
        calls = {rec.call_id for rec in records if rec.call_id}
        if calls:
            adds.append("call_ids :calls")
            values["calls"] = calls
        platforms = [rec.platform for rec in records if rec.platform]
        if platforms:
            sets.append("platform = if_not_exists(platform, :platform)")
            values["platform"] = platforms[0]
        if new_last is not None:
            sets.append("last_activity = :last")
            if open_bucket(new_last) != open_bucket(meta.last_activity):
                sets.append("gsi2sk = :bucket")  # only when the call enters a new bucket
                values["bucket"] = open_bucket(new_last)
            conds.append("last_activity <= :last")
            values["last"] = iso(new_last)
        if new_start is not None:
            sets += ["start_time = :start", "gsi1sk = :g1", "gsi3pk = :g3pk", "gsi3sk = :g1"]
            conds.append("start_time >= :start")
            values["start"] = iso(new_start)
            values["g1"] = f"{iso(new_start)}#{meta.session_id}"
            values["g3pk"] = day_index_keys(new_start, meta.session_id)["gsi3pk"]
        if student_guard:
            conds.append("student_id = :student")
            values["student"] = meta.student_id
        if self.retention_days <= 0:
            sets.remove("expires_at = :exp")
            del values["exp"]
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": serialize(session_key(meta.session_id)),
                "UpdateExpression": f"SET {', '.join(sets)} ADD {', '.join(adds)}",
                "ConditionExpression": " AND ".join(conds),
                "ExpressionAttributeValues": _values(**values),
            }
        }

    def neighbours(self, student_id: str, at: datetime) -> tuple[SessionMeta | None, SessionMeta | None]:
        """The student's last session starting at or before ``at`` and the first one after it."""
        pk = f"STUDENT#{student_id}"
        bound = f"{iso(at)}#\uffff"
        prev = self.client.query(
            TableName=self.table_name,
            IndexName=GSI1,
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk <= :b",
            ExpressionAttributeValues=_values(pk=pk, b=bound),
            ScanIndexForward=False,
            Limit=1,
        ).get("Items", [])
        nxt = self.client.query(
            TableName=self.table_name,
            IndexName=GSI1,
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk > :b",
            ExpressionAttributeValues=_values(pk=pk, b=bound),
            ScanIndexForward=True,
            Limit=1,
        ).get("Items", [])

        def to_meta(items: list[dict[str, Any]]) -> SessionMeta | None:
            return item_to_meta(deserialize(items[0])) if items else None

        return to_meta(prev), to_meta(nxt)

    def append_to_head(self, head: Head, records: Sequence[Interaction]) -> Head:
        """Join the student's current session: one transaction, conditioned on the head."""
        latest = max(rec.timestamp for rec in records)
        new_last = latest if latest > head.last_activity else None
        now = max(rec.received_at for rec in records)
        tx = _Tx()
        self._record_ops(tx, head.session_id, records)
        calls = {rec.call_id for rec in records if rec.call_id and rec.call_id != head.call_id}
        last_call = next((rec.call_id for rec in reversed(records) if rec.call_id), head.call_id)
        head_sets = ["expires_at = :exp"] if self.retention_days > 0 else []
        values: dict[str, Any] = {"sid": head.session_id}
        if self.retention_days > 0:
            values["exp"] = self.expires_at(new_last or head.last_activity)
        # A session closed meanwhile (HEAD.ended_at set by close_idle / end of call) takes no
        # call later than its end: the transaction fails, the caller re-reads HEAD and opens anew.
        cond = (
            "session_id = :sid AND (attribute_not_exists(ended_at) OR ended_at >= :latest)"
            " AND (attribute_not_exists(closed_at) OR closed_at >= :latest)"
        )
        values["latest"] = iso(latest)
        if new_last is not None:
            head_sets.append("last_activity = :last")
            cond += " AND last_activity <= :last"
            values["last"] = iso(new_last)
        if last_call != head.call_id:
            head_sets.append("call_id = :call")
            values["call"] = last_call
        head_sets.append("session_id = :sid")
        tx.add(
            "head",
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": serialize(head_key(head.student_id)),
                    "UpdateExpression": "SET " + ", ".join(head_sets),
                    "ConditionExpression": cond,
                    "ExpressionAttributeValues": _values(**values),
                }
            },
        )
        meta = SessionMeta(
            session_id=head.session_id,
            student_id=head.student_id,
            start_time=head.session_start,
            last_activity=head.last_activity,
        )
        tx.add(
            "meta_update",
            self._meta_update(meta, records, new_last=new_last, new_start=None, student_guard=False, now=now),
        )
        self._call_ops(tx, head.session_id, head.student_id, calls, now)
        self._transact(tx)
        return head.model_copy(update={"last_activity": new_last or head.last_activity, "call_id": last_call})

    def reopen_session(self, head: Head, records: Sequence[Interaction]) -> Head:
        """Add calls to the session the idle closer closed (``head.closed_at``) and make it
        active again: one transaction, conditioned on the HEAD as read and the session being
        ``closed``. :class:`HeadChanged` when either moved (re-read and decide again)."""
        assert head.closed_at is not None
        latest = max(rec.timestamp for rec in records)
        new_last = max(latest, head.last_activity)
        now = max(rec.received_at for rec in records)
        tx = _Tx()
        self._record_ops(tx, head.session_id, records)
        values: dict[str, Any] = {"sid": head.session_id, "closed": iso(head.closed_at), "last": iso(new_last)}
        head_sets = ["last_activity = :last"]
        if self.retention_days > 0:
            head_sets.append("expires_at = :exp")
            values["exp"] = self.expires_at(new_last)
        tx.add(
            "head",
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": serialize(head_key(head.student_id)),
                    "UpdateExpression": f"SET {', '.join(head_sets)} REMOVE closed_at",
                    "ConditionExpression": "session_id = :sid AND closed_at = :closed AND attribute_not_exists(ended_at)",
                    "ExpressionAttributeValues": _values(**values),
                }
            },
        )
        meta = SessionMeta(
            session_id=head.session_id,
            student_id=head.student_id,
            start_time=head.session_start,
            last_activity=head.last_activity,
        )
        moved = new_last > head.last_activity
        update = self._meta_update(
            meta, records, new_last=new_last if moved else None, new_start=None, student_guard=False, now=now
        )["Update"]
        # Back into the sparse open-session index (GSI2), keyed by the bucket of its new last activity.
        reopen = "#status = :active, gsi2pk = :g2pk, gsi2sk = :g2sk, "
        update["UpdateExpression"] = update["UpdateExpression"].replace(", gsi2sk = :bucket", "")
        update["UpdateExpression"] = update["UpdateExpression"].replace("SET ", f"SET {reopen}", 1) + " REMOVE end_time"
        update["ConditionExpression"] += " AND #status = :closedstatus"
        update["ExpressionAttributeNames"] = {**update.get("ExpressionAttributeNames", {}), "#status": "status"}
        reopen_values = {"active": "active", "closedstatus": "closed", "g2pk": open_shard(head.session_id)}
        reopen_values["g2sk"] = open_bucket(new_last)
        update["ExpressionAttributeValues"].pop(":bucket", None)
        update["ExpressionAttributeValues"].update(_values(**reopen_values))
        tx.add("meta_update", {"Update": update})
        calls = {rec.call_id for rec in records if rec.call_id and rec.call_id != head.call_id}
        self._call_ops(tx, head.session_id, head.student_id, calls, now)
        self._transact(tx)
        return head.model_copy(update={"last_activity": new_last, "closed_at": None})

    def open_session(self, meta: SessionMeta, records: Sequence[Interaction], *, expected_head: Head | None) -> Head:
        """Start a new session and point the head at it, if the head is still ``expected_head``."""
        tx = _Tx()
        tx.add(
            "meta_new",
            self._put(meta_to_item(meta, expires_at=self.expires_at(meta.last_activity)), "attribute_not_exists(PK)"),
        )
        self._record_ops(tx, meta.session_id, records)
        call_id = next((rec.call_id for rec in reversed(records) if rec.call_id), None)
        head = Head(
            student_id=meta.student_id,
            session_id=meta.session_id,
            session_start=meta.start_time,
            last_activity=meta.last_activity,
            call_id=call_id,
        )
        if expected_head is None:
            tx.add("head", self._put(self._head_item(head), "attribute_not_exists(PK)"))
        else:
            tx.add(
                "head",
                self._put(
                    self._head_item(head),
                    "session_id = :sid AND last_activity = :last",
                    sid=expected_head.session_id,
                    last=iso(expected_head.last_activity),
                ),
            )
        self._call_ops(tx, meta.session_id, meta.student_id, set(meta.call_ids), meta.last_activity)
        self._transact(tx)
        return head

    def create_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None:
        """Create a session outside the head's sequence (late calls, explicit ids)."""
        tx = _Tx()
        tx.add(
            "meta_new",
            self._put(meta_to_item(meta, expires_at=self.expires_at(meta.last_activity)), "attribute_not_exists(PK)"),
        )
        self._record_ops(tx, meta.session_id, records)
        if move_head:
            self._move_head_op(tx, meta)
        self._call_ops(tx, meta.session_id, meta.student_id, set(meta.call_ids), meta.last_activity)
        self._transact(tx)

    def append_to_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None:
        """Add calls to a known session (``meta`` as read), widening its time span if needed."""
        latest = max(rec.timestamp for rec in records)
        earliest = min(rec.timestamp for rec in records)
        new_last = latest if latest > meta.last_activity else None
        new_start = earliest if earliest < meta.start_time else None
        now = max(rec.received_at for rec in records)
        tx = _Tx()
        self._record_ops(tx, meta.session_id, records)
        tx.add(
            "meta_update",
            self._meta_update(meta, records, new_last=new_last, new_start=new_start, student_guard=True, now=now),
        )
        if move_head:
            self._move_head_op(
                tx,
                meta.model_copy(
                    update={"last_activity": new_last or meta.last_activity, "start_time": new_start or meta.start_time}
                ),
            )
        calls = {rec.call_id for rec in records if rec.call_id and rec.call_id not in meta.call_ids}
        self._call_ops(tx, meta.session_id, meta.student_id, calls, now)
        self._transact(tx)

    def lookup_marker(self, student_id: str, interaction_id: str) -> str | None:
        out = self.client.get_item(TableName=self.table_name, Key=serialize(marker_key(student_id, interaction_id)))
        return deserialize(out["Item"]).get("session_id") if "Item" in out else None
