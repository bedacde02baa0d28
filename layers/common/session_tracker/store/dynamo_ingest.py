"""Logging tool calls (storage v2): one conditional put per call, HEAD and records at boundaries.

- steady state: :meth:`get_head` (one consistent Query: HEAD + newest calls) and one
  ``PutItem`` of the call with ``attribute_not_exists(SK)`` (:meth:`append_to_head`);
- a batch: the same Query and one ``BatchWriteItem`` of up to 25 calls;
- a boundary (new session, reopen): one ``TransactWriteItems`` of the session record
  (``attribute_not_exists``), the HEAD (conditioned on the ``version`` read) and the calls.

The session record is not touched per call: its counters are derived from the calls at
close (and on read while it is open).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from session_tracker.errors import DuplicateInteraction, HeadChanged
from session_tracker.models import Head, Interaction, RecentCall, SessionMeta, iso
from session_tracker.store.codec import _values, deserialize, meta_to_item, serialize
from session_tracker.store.dynamo_base import _Tx
from session_tracker.store.dynamo_merge import MergeMixin
from session_tracker.store.keys import (
    LAYOUT_VERSION,
    V2_HEAD_SK,
    day_index_keys,
    head_key,
    open_bucket,
    open_shard,
    session_key,
    student_pk,
)
from session_tracker.store.v2 import new_version, recent_session

_BATCH = 25


class IngestMixin(MergeMixin):
    """:class:`~session_tracker.store.ports.IngestStore` on DynamoDB."""

    # ----------------------------------------------------------------- helpers
    def _check_recent(self, head: Head | None, records: Sequence[Interaction]) -> None:
        """A client id already stored under another timestamp (within the look-back)."""
        for rec in records:
            if rec.client_id:
                sid = recent_session(head, rec.interaction_id, rec.timestamp)
                if sid is not None:
                    raise DuplicateInteraction(rec.interaction_id, sid)

    def _put_call(self, session_id: str, rec: Interaction) -> None:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=serialize(self._call_item(session_id, rec)),
                ConditionExpression="attribute_not_exists(SK)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raw: Any = exc.response.get("Item")
            old = deserialize(dict(raw)) if raw else {}
            if not old:
                got = self.client.get_item(
                    TableName=self.table_name,
                    Key=serialize({"PK": student_pk(rec.student_id), "SK": self._call_item(session_id, rec)["SK"]}),
                    ConsistentRead=True,
                )
                old = deserialize(got.get("Item") or {})
            raise DuplicateInteraction(rec.interaction_id, old.get("session_id") or session_id) from exc

    def _put_calls(self, session_id: str, records: Sequence[Interaction], head: Head | None) -> None:
        """One call: a conditional put. More: one ``BatchWriteItem`` per 25 (idempotent by key);
        calls older than the look-back (where a stored twin could hide) go one by one, conditioned."""
        if len(records) == 1:
            self._put_call(session_id, records[0])
            return
        oldest_seen = min((c.timestamp for c in head.recent), default=None) if head else None
        batchable = [r for r in records if (oldest_seen is not None and r.timestamp >= oldest_seen) or head is None]
        single = [r for r in records if r not in batchable]
        for rec in single:
            self._put_call(session_id, rec)
        keys = {(iso(c.timestamp), c.interaction_id) for c in (head.recent if head else [])}
        for rec in batchable:
            if (iso(rec.timestamp), rec.interaction_id) in keys:
                raise DuplicateInteraction(rec.interaction_id, recent_session(head, rec.interaction_id, rec.timestamp))
        for start in range(0, len(batchable), _BATCH):
            requests: list[Any] = [
                {"PutRequest": {"Item": serialize(self._call_item(session_id, r))}}
                for r in batchable[start : start + _BATCH]
            ]
            for attempt in range(8):
                out = self.client.batch_write_item(RequestItems={self.table_name: requests})
                requests = list(out.get("UnprocessedItems", {}).get(self.table_name, []))
                if not requests:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise HeadChanged("the table kept refusing writes (throttled)")

    def _link_new_calls(self, session_id: str, student_id: str, call_ids: set[str], at: datetime) -> None:
        if not call_ids:
            return
        tx = _Tx()
        self._call_ops(tx, session_id, student_id, call_ids, at)
        self._transact(tx) if len(tx.items) > 1 else self._single(tx)

    def _single(self, tx: _Tx) -> None:
        op = tx.items[0]["Put"]
        try:
            self.client.put_item(**op)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise  # a link owned by another student stays as it is

    def _new_record(self, meta: SessionMeta) -> dict[str, Any]:
        stored = meta.model_copy(update={"layout": LAYOUT_VERSION})
        return self._put(
            meta_to_item(stored, expires_at=self.expires_at(meta.last_activity)), "attribute_not_exists(PK)"
        )

    @staticmethod
    def _recent(head: Head | None, session_id: str, records: Sequence[Interaction]) -> list[RecentCall]:
        mine = [
            RecentCall(timestamp=r.timestamp, interaction_id=r.interaction_id, session_id=session_id) for r in records
        ]
        return sorted([*mine, *(head.recent if head else [])], key=lambda c: c.timestamp, reverse=True)

    # ------------------------------------------------------------- ingest writes
    def append_to_head(self, head: Head, records: Sequence[Interaction]) -> Head:
        """Join the HEAD's session: the calls' puts only (no HEAD, no session record)."""
        self._check_recent(head, records)
        self._put_calls(head.session_id, records, head)
        calls = {rec.call_id for rec in records if rec.call_id and rec.call_id != head.call_id}
        self._link_new_calls(head.session_id, head.student_id, calls, max(r.received_at for r in records))
        latest = max(rec.timestamp for rec in records)
        last_call = next((rec.call_id for rec in reversed(records) if rec.call_id), head.call_id)
        return head.model_copy(
            update={
                "last_activity": max(latest, head.last_activity),
                "call_id": last_call,
                "recent": self._recent(head, head.session_id, records),
            }
        )

    def reopen_session(self, head: Head, records: Sequence[Interaction]) -> Head:
        """Calls into the session the idle closer closed: one transaction (HEAD on its version
        and ``closed_at``, the record back to ``active`` and into the closer's index, the calls)."""
        assert head.closed_at is not None
        self._check_recent(head, records)
        new_last = max(max(rec.timestamp for rec in records), head.last_activity)
        version = new_version()
        tx = _Tx()
        self._record_ops(tx, head.session_id, records)
        cond, values = self._head_condition(head)
        tx.add(
            "head",
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": serialize(head_key(head.student_id)),
                    "UpdateExpression": "SET last_activity = :last, version = :nv REMOVE closed_at",
                    "ConditionExpression": f"{cond} AND session_id = :sid AND attribute_not_exists(ended_at)",
                    "ExpressionAttributeValues": _values(last=iso(new_last), nv=version, sid=head.session_id, **values),
                }
            },
        )
        tx.add(
            "meta_update",
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": serialize(session_key(head.session_id)),
                    "UpdateExpression": "SET #status = :active, gsi2pk = :g2pk, gsi2sk = :g2sk, last_activity = :last "
                    "REMOVE end_time, recheck_after",
                    "ConditionExpression": "#status = :closed",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": _values(
                        active="active",
                        closed="closed",
                        g2pk=open_shard(head.session_id),
                        g2sk=open_bucket(new_last),
                        last=iso(new_last),
                    ),
                }
            },
        )
        calls = {rec.call_id for rec in records if rec.call_id and rec.call_id != head.call_id}
        self._call_ops(tx, head.session_id, head.student_id, calls, new_last)
        self._transact(tx)
        return head.model_copy(
            update={
                "last_activity": new_last,
                "closed_at": None,
                "version": version,
                "recent": self._recent(head, head.session_id, records),
            }
        )

    def open_session(self, meta: SessionMeta, records: Sequence[Interaction], *, expected_head: Head | None) -> Head:
        """A boundary: the record, the HEAD (conditioned on the version read) and the calls, one transaction."""
        self._check_recent(expected_head, records)
        tx = _Tx()
        tx.add("meta_new", self._new_record(meta))
        self._record_ops(tx, meta.session_id, records)
        call_id = next((rec.call_id for rec in reversed(records) if rec.call_id), None)
        head = Head(
            student_id=meta.student_id,
            session_id=meta.session_id,
            session_start=meta.start_time,
            last_activity=meta.last_activity,
            call_id=call_id,
        )
        item = self._head_item(head)
        cond, values = self._head_condition(expected_head)
        tx.add("head", self._put(item, cond, **values))
        self._call_ops(tx, meta.session_id, meta.student_id, set(meta.call_ids), meta.last_activity)
        self._transact(tx)
        return head.model_copy(
            update={"version": item["version"], "recent": self._recent(expected_head, meta.session_id, records)}
        )

    def create_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None:
        """A session outside the HEAD's sequence (late calls, explicit ids): record and calls."""
        tx = _Tx()
        tx.add("meta_new", self._new_record(meta))
        self._record_ops(tx, meta.session_id, records)
        if move_head:
            self._move_head_op(tx, meta)
        self._call_ops(tx, meta.session_id, meta.student_id, set(meta.call_ids), meta.last_activity)
        self._transact(tx)

    def append_to_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None:
        """Calls into a known session (``meta`` as read). The record is written only when the
        calls start before it (its index keys move) or it is closed (back into the closer's
        index, so the re-check counts them)."""
        earliest = min(rec.timestamp for rec in records)
        latest = max(rec.timestamp for rec in records)
        new_start = earliest if earliest < meta.start_time else None
        tx = _Tx()
        self._record_ops(tx, meta.session_id, records)
        sets: list[str] = []
        conds = ["student_id = :student"]
        values: dict[str, Any] = {"student": meta.student_id}
        if new_start is not None:
            sets += ["start_time = :start", "gsi1sk = :g1", "gsi3pk = :g3pk", "gsi3sk = :g1"]
            conds.append("start_time >= :start")
            values |= {
                "start": iso(new_start),
                "g1": f"{iso(new_start)}#{meta.session_id}",
                "g3pk": day_index_keys(new_start, meta.session_id)["gsi3pk"],
            }
        adds: list[str] = []
        if meta.status != "active" and meta.status != "unmatched":
            # a finished session's record keeps its counters: add these calls (and the
            # re-check recounts them, in case a call was in flight)
            adds.append("interaction_count :n")
            values["n"] = len(records)
            for attr in ("subjects", "data_provided"):
                merged = {v for rec in records for v in getattr(rec, attr)}
                if merged:
                    adds.append(f"{attr} :{attr}")
                    values[attr] = merged
            sets += ["gsi2pk = :g2pk", "gsi2sk = :g2sk", "recheck_after = :now"]
            values |= {
                "g2pk": open_shard(meta.session_id),
                "g2sk": open_bucket(min(meta.end_time or latest, latest)),
                "now": iso(max(r.received_at for r in records)),
            }
        if latest > meta.last_activity and (meta.layout != LAYOUT_VERSION or meta.status != "active"):
            sets += ["last_activity = :last"]  # a v1 record keeps its counter-free last activity
            values["last"] = iso(latest)
        if sets:
            tx.add(
                "meta_update",
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": serialize(session_key(meta.session_id)),
                        "UpdateExpression": "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else ""),
                        "ConditionExpression": " AND ".join(conds),
                        "ExpressionAttributeValues": _values(**values),
                    }
                },
            )
        if move_head:
            self._move_head_op(
                tx,
                meta.model_copy(
                    update={
                        "last_activity": max(latest, meta.last_activity),
                        "start_time": new_start or meta.start_time,
                    }
                ),
            )
        calls = {rec.call_id for rec in records if rec.call_id and rec.call_id not in meta.call_ids}
        self._call_ops(tx, meta.session_id, meta.student_id, calls, max(r.received_at for r in records))
        if len(tx.items) == 1 and len(records) == 1:
            self._put_call(meta.session_id, records[0])
            return
        self._transact(tx)

    def lookup_marker(self, student_id: str, interaction_id: str) -> str | None:
        """The session of a stored call with this id among the student's newest calls (v2 has no markers)."""
        head = self.get_head(student_id)
        return recent_session(head, interaction_id, head.last_activity) if head else None


__all__ = ["V2_HEAD_SK", "IngestMixin"]
