"""Platform data: call links, delivery markers and versioned merges into session records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from session_tracker.errors import (
    DuplicateDelivery,
    HeadChanged,
    SessionIdTaken,
)
from session_tracker.models import (
    UNKNOWN_STUDENT,
    CallLink,
    PlatformWrite,
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
from session_tracker.store.dynamo_calls import completion_counters
from session_tracker.store.keys import (
    DELIVERY_TTL,
    GSI1,
    GSI2,
    OPEN_INDEX_LAG,
    OPEN_SHARDS,
    RECHECK_AFTER,
    call_key,
    delivery_key,
    head_key,
    open_bucket,
    open_shard,
    session_key,
)
from session_tracker.store.v2 import new_version


class PlatformMixin(DynamoBase):
    """:class:`~session_tracker.store.ports.PlatformStore` on DynamoDB."""

    # ``CALL#{call_id}`` / ``CALL`` links a platform call to its session: written by MCP calls
    # that carry a call_id and by platform messages (condition: absent or same session).
    # ``DELIVERY#{delivery_id}`` / ``DELIVERY`` marks a platform message as stored, put with
    # ``attribute_not_exists`` in the same transaction as its write: a redelivery changes
    # nothing. META ``platform_version`` (N) orders platform writes (optimistic concurrency);
    # MCP appends do not touch it, so the hot path never conflicts with a webhook.

    def get_call_link(self, call_id: str) -> CallLink | None:
        """The session a platform call was linked to, if any."""
        out = self.client.get_item(TableName=self.table_name, Key=serialize(call_key(call_id)), ConsistentRead=True)
        if "Item" not in out:
            return None
        item = deserialize(out["Item"])
        return CallLink(call_id=call_id, session_id=item["session_id"], student_id=item.get("student_id", ""))

    def get_delivery(self, delivery_id: str) -> str | None:
        """The session id a platform delivery was stored into, or ``None`` if it is new."""
        out = self.client.get_item(
            TableName=self.table_name, Key=serialize(delivery_key(delivery_id)), ConsistentRead=True
        )
        return deserialize(out["Item"]).get("session_id") if "Item" in out else None

    def get_session_versioned(self, session_id: str) -> tuple[SessionMeta, int | None] | None:
        """The session record and its ``platform_version`` (``None``: no platform write yet)."""
        out = self.client.get_item(
            TableName=self.table_name, Key=serialize(session_key(session_id)), ConsistentRead=True
        )
        if "Item" not in out:
            return None
        item = deserialize(out["Item"])
        version = item.get("platform_version")
        return item_to_meta(item), int(version) if version is not None else None

    def student_sessions_before(self, student_id: str, before: datetime, *, limit: int = 10) -> list[SessionMeta]:
        """The student's sessions that started at or before ``before``, newest first (GSI1)."""
        out = self.client.query(
            TableName=self.table_name,
            IndexName=GSI1,
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk <= :b",
            ExpressionAttributeValues=_values(pk=f"STUDENT#{student_id}", b=f"{iso(before)}#\uffff"),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [item_to_meta(deserialize(raw)) for raw in out.get("Items", [])]

    def open_sessions_since(self, since: datetime, *, limit: int = 50) -> list[SessionMeta]:
        """Active sessions (GSI2, every shard) with activity at or after ``since``."""
        ids: list[str] = []
        for shard in range(OPEN_SHARDS):
            kwargs: dict[str, Any] = {
                "IndexName": GSI2,
                "KeyConditionExpression": "gsi2pk = :pk AND gsi2sk >= :since",
                # gsi2sk is a bucket floor (keys.open_bucket): compare with the bucket of ``since``
                # storage v2: the key is the bucket of the newest call as of the closer's last look,
                # at most OPEN_INDEX_LAG behind the real last activity: widen, then derive
                "ExpressionAttributeValues": _values(pk=f"OPEN#{shard}", since=open_bucket(since - OPEN_INDEX_LAG)),
                "ScanIndexForward": False,
                "Limit": limit,
            }
            out = self.client.query(TableName=self.table_name, **kwargs)
            ids += [deserialize(raw)["PK"].removeprefix("SESSION#") for raw in out.get("Items", [])]
        found = self.get_sessions(ids[: limit * OPEN_SHARDS]) if ids else {}
        active = [meta for meta in found.values() if meta.status == "active"]
        # every open record keeps the counters of its first call (v2 writes it at boundaries only):
        # derive them all, not only those that look older than ``since`` (the live view shows them)
        return [m for m in self._derive_open(active) if m.last_activity >= since]

    def _platform_ops(self, tx: _Tx, write: PlatformWrite) -> None:
        marker = {
            **delivery_key(write.delivery_id),
            "entity": "delivery",
            "session_id": write.session_id,
            "platform": write.platform,
            "expires_at": int((write.now + DELIVERY_TTL).timestamp()),
        }
        tx.add("delivery", self._put(marker, "attribute_not_exists(PK)"))
        if write.call_id and write.link_call:
            link = {
                **call_key(write.call_id),
                "entity": "call",
                "session_id": write.session_id,
                "student_id": write.student_id,
                "platform": write.platform,
                "expires_at": self.expires_at(write.end_time),
            }
            tx.add(
                "call",
                self._put(link, "attribute_not_exists(PK) OR session_id = :sid", sid=write.session_id),
            )

    def _platform_transact(self, tx: _Tx, delivery_id: str) -> None:
        try:
            self.client.transact_write_items(TransactItems=tx.items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            failed = {
                label: reason
                for label, reason in zip(tx.labels, reasons, strict=False)
                if reason.get("Code") == "ConditionalCheckFailed"
            }
            if "delivery" in failed:
                old = deserialize(dict(failed["delivery"]["Item"])) if failed["delivery"].get("Item") else {}
                raise DuplicateDelivery(delivery_id, old.get("session_id")) from exc
            if "meta_new" in failed:
                raise SessionIdTaken("session id exists") from exc
            raise HeadChanged("concurrent platform write") from exc

    def write_platform_data(self, write: PlatformWrite) -> None:
        """Merge platform data into an existing session record, in one transaction.

        Conditions: the record exists, belongs to ``write.student_id`` and its
        ``platform_version`` is still ``write.expected_version``. Leaving ``active`` removes
        the GSI2 keys. Raises :class:`DuplicateDelivery` for a delivery stored before and
        :class:`HeadChanged` when another write won (re-read and retry).
        """
        names = {"#status": "status", "#platform": "platform", "#end": "end_time", "#v": "platform_version"}
        values: dict[str, Any] = {
            "now": iso(write.now),
            "end": iso(write.end_time),
            "status": write.status,
            "platform": write.platform,
            "v": (write.expected_version or 0) + 1,
            "student": write.student_id,
        }
        sets = ["updated_at = :now", "#end = :end", "#status = :status", "#v = :v"]
        sets.append("#platform = if_not_exists(#platform, :platform)")
        for name in ("conversation", "vapi_metadata", "platform_metadata", "matching"):
            value = getattr(write, name)
            if value is not None:
                names[f"#{name}"] = name
                values[name] = value
                sets.append(f"#{name} = :{name}")
        if write.request_analysis:
            sets += ["pending_analysis = :true", "content_updated_at = :now"]
            values["true"] = True
        if self.retention_days > 0:
            sets.append("expires_at = :exp")
            values["exp"] = self.expires_at(write.end_time)
        conds = ["attribute_exists(PK)", "student_id = :student"]
        if write.expected_version is None:
            conds.append("attribute_not_exists(#v)")
        else:
            conds.append("#v = :ev")
            values["ev"] = write.expected_version
        if write.status != "active":
            # storage v2: the counters from the calls now, and a re-check by the closer
            # RECHECK_AFTER later counts a call that was in flight while the session ended.
            sets += completion_counters(self, write.session_id, values)
            sets += ["gsi2pk = :g2pk", "gsi2sk = :g2sk", "recheck_after = :recheck"]
            values |= {
                "g2pk": open_shard(write.session_id),
                "g2sk": open_bucket(write.end_time),
                "recheck": iso(write.now + RECHECK_AFTER),
            }
        expression = f"SET {', '.join(sets)}"
        # delivery_ids: the DELIVERY# markers of this session, so an erasure finds them (no Scan)
        expression += " ADD delivery_ids :deliveries"
        values["deliveries"] = {write.delivery_id}
        if write.call_id:
            expression += ", call_ids :calls"
            values["calls"] = {write.call_id}
        tx = _Tx()
        tx.add(
            "meta",
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": serialize(session_key(write.session_id)),
                    "UpdateExpression": expression,
                    "ConditionExpression": " AND ".join(conds),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": _values(**values),
                }
            },
        )
        self._platform_ops(tx, write)
        if write.head_ended_at is not None:
            tx.add(
                "head",
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": serialize(head_key(write.student_id)),
                        "UpdateExpression": "SET ended_at = :ended, version = :nv",
                        "ConditionExpression": "session_id = :sid",
                        "ExpressionAttributeValues": _values(
                            ended=iso(write.head_ended_at), sid=write.session_id, nv=new_version()
                        ),
                    }
                },
            )
        self._platform_transact(tx, write.delivery_id)

    def claim_session(self, session_id: str, *, call_id: str, student_id: str, now: datetime) -> bool:
        """Give an ``unmatched`` session of the unknown student to ``student_id`` (an MCP call
        carrying its call id arrived). ``False`` when it was not unmatched/unknown any more."""
        matching = {"strategy": "explicit", "source": "call_id", "call_id": call_id, "claimed_at": iso(now)}
        meta_op = {
            "Update": {
                "TableName": self.table_name,
                "Key": serialize(session_key(session_id)),
                "UpdateExpression": "SET student_id = :to, gsi1pk = :g1, #status = :completed, matching = :m, "
                "updated_at = :now, pending_analysis = :true, content_updated_at = :now",
                "ConditionExpression": "student_id = :from AND #status = :unmatched",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": _values(
                    to=student_id,
                    g1=f"STUDENT#{student_id}",
                    completed="completed",
                    m=matching,
                    now=iso(now),
                    true=True,
                    unmatched="unmatched",
                    **{"from": UNKNOWN_STUDENT},
                ),
            }
        }
        link_op = {
            "Update": {
                "TableName": self.table_name,
                "Key": serialize(call_key(call_id)),
                "UpdateExpression": "SET student_id = :to",
                "ConditionExpression": "session_id = :sid",
                "ExpressionAttributeValues": _values(to=student_id, sid=session_id),
            }
        }
        try:
            self.client.transact_write_items(TransactItems=[meta_op, link_op])  # type: ignore[list-item]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            return False
        return True

    def create_platform_session(self, meta: SessionMeta, write: PlatformWrite, *, move_head: bool) -> None:
        """A new session made from platform data (no MCP call seen for it yet), in one transaction.

        ``move_head``: point the student's HEAD at it (with ``ended_at``) unless the HEAD
        has newer activity. Raises :class:`SessionIdTaken`, :class:`DuplicateDelivery`, or
        :class:`HeadChanged` (a concurrent write won; re-read and retry).
        """
        item = meta_to_item(meta, expires_at=self.expires_at(meta.end_time or meta.last_activity))
        item["platform_version"] = 1
        item["delivery_ids"] = {write.delivery_id}
        if write.request_analysis:
            item["pending_analysis"] = True
            item["content_updated_at"] = iso(write.now)
        tx = _Tx()
        tx.add("meta_new", self._put(item, "attribute_not_exists(PK)"))
        self._platform_ops(tx, write)
        if move_head:
            self._move_head_op(tx, meta, call_id=write.call_id, ended_at=write.head_ended_at)
        self._platform_transact(tx, write.delivery_id)
