"""DynamoDB single-table store: every key format, index, condition and page token.

Item types (``PK`` / ``SK``):

=====================  ==========================  ===============================
item                   PK                          SK
=====================  ==========================  ===============================
session record         ``SESSION#{session_id}``    ``META``
logged tool call       ``SESSION#{session_id}``    ``I#{timestamp}#{interaction_id}``
student head pointer   ``STUDENT#{student_id}``    ``HEAD``
idempotency marker     ``IID#{interaction_id}``    ``IID``
platform call link     ``CALL#{call_id}``          ``CALL``
=====================  ==========================  ===============================

Indexes: ``GSI1`` (``gsi1pk = STUDENT#{student_id}``, ``gsi1sk = {start_time}#{session_id}``)
lists a student's sessions by start time; ``GSI2`` is sparse (``gsi2pk = OPEN#{shard}``,
``gsi2sk = last_activity``) and holds only sessions still open, for the idle closer.

Callers pass models in and get models back; lost races come back as the domain
errors in :mod:`session_tracker.errors`.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from session_tracker.errors import DuplicateInteraction, HeadChanged, SessionIdTaken, StoreConflict
from session_tracker.models import Head, Interaction, SessionMeta, iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OPEN_SHARDS = 4
GSI1 = "GSI1"
GSI2 = "GSI2"
MARKER_TTL = timedelta(days=7)

_ser = TypeSerializer()
_deser = TypeDeserializer()


# ----------------------------------------------------------------------------- keys
def session_key(session_id: str) -> dict[str, str]:
    return {"PK": f"SESSION#{session_id}", "SK": "META"}


def interaction_key(session_id: str, timestamp: datetime, interaction_id: str) -> dict[str, str]:
    return {"PK": f"SESSION#{session_id}", "SK": f"I#{iso(timestamp)}#{interaction_id}"}


def head_key(student_id: str) -> dict[str, str]:
    return {"PK": f"STUDENT#{student_id}", "SK": "HEAD"}


def marker_key(interaction_id: str) -> dict[str, str]:
    return {"PK": f"IID#{interaction_id}", "SK": "IID"}


def call_key(call_id: str) -> dict[str, str]:
    return {"PK": f"CALL#{call_id}", "SK": "CALL"}


def open_shard(session_id: str) -> str:
    return f"OPEN#{zlib.crc32(session_id.encode()) % OPEN_SHARDS}"


# ---------------------------------------------------------------------- conversion
def _to_ddb(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {str(k): _to_ddb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_ddb(v) for v in value]
    return value


def _from_ddb(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_ddb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_from_ddb(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_from_ddb(v) for v in value)
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_to_ddb(v)) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_ddb(_deser.deserialize(v)) for k, v in item.items()}


def _values(**values: Any) -> dict[str, Any]:
    return {f":{k}": _ser.serialize(_to_ddb(v)) for k, v in values.items()}


# --------------------------------------------------------------------- item shapes
_META_JSON_FIELDS = ("matching", "conversation", "vapi_metadata", "platform_metadata", "session_summary", "analysis")


def meta_to_item(meta: SessionMeta, *, expires_at: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        **session_key(meta.session_id),
        "entity": "session",
        "session_id": meta.session_id,
        "student_id": meta.student_id,
        "start_time": iso(meta.start_time),
        "last_activity": iso(meta.last_activity),
        "end_time": iso(meta.end_time) if meta.end_time else None,
        "status": meta.status,
        "platform": meta.platform,
        "interaction_count": meta.interaction_count,
        "subjects": set(meta.subjects) or None,
        "data_provided": set(meta.data_provided) or None,
        "call_ids": set(meta.call_ids) or None,
        "created_at": iso(meta.created_at) if meta.created_at else None,
        "updated_at": iso(meta.updated_at) if meta.updated_at else None,
        "gsi1pk": f"STUDENT#{meta.student_id}",
        "gsi1sk": f"{iso(meta.start_time)}#{meta.session_id}",
        "expires_at": expires_at,
    }
    if meta.status == "active":
        item["gsi2pk"] = open_shard(meta.session_id)
        item["gsi2sk"] = iso(meta.last_activity)
    for name in _META_JSON_FIELDS:
        item[name] = getattr(meta, name)
    return item


def item_to_meta(item: dict[str, Any]) -> SessionMeta:
    data = {k: v for k, v in item.items() if k in SessionMeta.model_fields}
    return SessionMeta.model_validate(data)


def interaction_to_item(session_id: str, rec: Interaction, *, expires_at: int | None) -> dict[str, Any]:
    return {
        **interaction_key(session_id, rec.timestamp, rec.interaction_id),
        "entity": "interaction",
        "session_id": session_id,
        "interaction_id": rec.interaction_id,
        "student_id": rec.student_id,
        "function": rec.function,
        "timestamp": iso(rec.timestamp),
        "received_at": iso(rec.received_at),
        "arguments_json": json.dumps(rec.arguments, separators=(",", ":"), ensure_ascii=False),
        "data_provided": list(rec.data_provided),
        "subjects": list(rec.subjects),
        "response_size": rec.response_size,
        "duration_ms": rec.duration_ms,
        "is_error": rec.is_error,
        "platform": rec.platform,
        "call_id": rec.call_id,
        "expires_at": expires_at,
    }


def item_to_interaction(item: dict[str, Any]) -> Interaction:
    data = {k: v for k, v in item.items() if k in Interaction.model_fields}
    data["arguments"] = json.loads(item.get("arguments_json") or "{}")
    return Interaction.model_validate(data)


def item_to_head(item: dict[str, Any]) -> Head:
    return Head.model_validate({k: v for k, v in item.items() if k in Head.model_fields})


# --------------------------------------------------------------------------- protocol
class SessionStore(Protocol):
    """What the domain needs from storage (one DynamoDB implementation below)."""

    def get_head(self, student_id: str) -> Head | None: ...

    def get_session(self, session_id: str) -> SessionMeta | None: ...

    def append_to_head(self, head: Head, records: Sequence[Interaction]) -> Head: ...

    def open_session(
        self, meta: SessionMeta, records: Sequence[Interaction], *, expected_head: Head | None
    ) -> Head: ...

    def create_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None: ...

    def append_to_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None: ...

    def neighbours(self, student_id: str, at: datetime) -> tuple[SessionMeta | None, SessionMeta | None]: ...

    def read_session(self, session_id: str) -> tuple[SessionMeta, list[Interaction]] | None: ...


@dataclass
class _Tx:
    """A transaction being assembled, with a label per item for reading cancellations."""

    items: list[dict[str, Any]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    records: list[Interaction | None] = field(default_factory=list)

    def add(self, label: str, op: dict[str, Any], record: Interaction | None = None) -> None:
        self.items.append(op)
        self.labels.append(label)
        self.records.append(record)


class DynamoStore:
    """:class:`SessionStore` on one DynamoDB table."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        retention_days: int = 365,
    ) -> None:
        self.table_name = table_name
        self.retention_days = retention_days
        self.client: DynamoDBClient = client or boto3.client(
            "dynamodb",
            config=Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=2,
                read_timeout=5,
                tcp_keepalive=True,
            ),
        )

    @classmethod
    def from_env(cls, *, retention_days: int = 365) -> DynamoStore:
        return cls(os.environ["TABLE_NAME"], retention_days=retention_days)

    # ------------------------------------------------------------------ helpers
    def expires_at(self, at: datetime) -> int | None:
        if self.retention_days <= 0:
            return None
        return int((at + timedelta(days=self.retention_days)).timestamp())

    def _put(self, item: dict[str, Any], condition: str | None = None, **values: Any) -> dict[str, Any]:
        op: dict[str, Any] = {"TableName": self.table_name, "Item": serialize(item)}
        if condition:
            op["ConditionExpression"] = condition
            op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if values:
            op["ExpressionAttributeValues"] = _values(**values)
        return {"Put": op}

    def _record_ops(self, tx: _Tx, session_id: str, records: Sequence[Interaction]) -> None:
        for rec in records:
            tx.add(
                "interaction",
                self._put(
                    interaction_to_item(session_id, rec, expires_at=self.expires_at(rec.timestamp)),
                    "attribute_not_exists(PK)",
                ),
                rec,
            )
            if rec.client_id:
                marker = {
                    **marker_key(rec.interaction_id),
                    "session_id": session_id,
                    "expires_at": int((rec.received_at + MARKER_TTL).timestamp()),
                }
                tx.add("marker", self._put(marker, "attribute_not_exists(PK)"), rec)

    def _call_ops(self, tx: _Tx, session_id: str, student_id: str, call_ids: set[str], at: datetime) -> None:
        for call_id in sorted(call_ids):
            item = {
                **call_key(call_id),
                "session_id": session_id,
                "student_id": student_id,
                "expires_at": self.expires_at(at),
            }
            tx.add("call", self._put(item))

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
            sets += ["last_activity = :last", "gsi2sk = :last"]
            conds.append("last_activity <= :last")
            values["last"] = iso(new_last)
        if new_start is not None:
            sets += ["start_time = :start", "gsi1sk = :g1"]
            conds.append("start_time >= :start")
            values["start"] = iso(new_start)
            values["g1"] = f"{iso(new_start)}#{meta.session_id}"
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

    def _head_item(self, head: Head) -> dict[str, Any]:
        return {
            **head_key(head.student_id),
            "entity": "head",
            "student_id": head.student_id,
            "session_id": head.session_id,
            "session_start": iso(head.session_start),
            "last_activity": iso(head.last_activity),
            "call_id": head.call_id,
            "ended_at": iso(head.ended_at) if head.ended_at else None,
            "expires_at": self.expires_at(head.last_activity),
        }

    def _transact(self, tx: _Tx) -> None:
        try:
            self.client.transact_write_items(TransactItems=tx.items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            raise self._conflict(tx, exc) from exc

    def _conflict(self, tx: _Tx, exc: ClientError) -> StoreConflict:
        reasons = exc.response.get("CancellationReasons") or []
        failed: dict[str, tuple[Interaction | None, dict[str, Any] | None]] = {}
        for label, record, reason in zip(tx.labels, tx.records, reasons, strict=False):
            if reason.get("Code") == "ConditionalCheckFailed":
                old = deserialize(dict(reason["Item"])) if reason.get("Item") else None
                failed.setdefault(label, (record, old))
        if not failed and not reasons:
            # Some emulators omit the reasons: treat as a lost race, the caller re-reads.
            return HeadChanged("transaction cancelled")
        if "head" in failed or "meta_update" in failed:
            return HeadChanged("concurrent update")
        if "meta_new" in failed:
            return SessionIdTaken("session id exists")
        for label in ("marker", "interaction"):
            if label in failed:
                record, old = failed[label]
                session_id = (old or {}).get("session_id")
                return DuplicateInteraction(record.interaction_id if record else "?", session_id)
        if any(r.get("Code") not in (None, "None") for r in reasons):
            codes = {r.get("Code") for r in reasons}
            if codes & {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}:
                return HeadChanged("transaction conflict")
        raise exc

    # ---------------------------------------------------------------------- reads
    def get_head(self, student_id: str) -> Head | None:
        out = self.client.get_item(TableName=self.table_name, Key=serialize(head_key(student_id)), ConsistentRead=True)
        return item_to_head(deserialize(out["Item"])) if "Item" in out else None

    def get_session(self, session_id: str) -> SessionMeta | None:
        out = self.client.get_item(
            TableName=self.table_name, Key=serialize(session_key(session_id)), ConsistentRead=True
        )
        return item_to_meta(deserialize(out["Item"])) if "Item" in out else None

    def read_session(self, session_id: str) -> tuple[SessionMeta, list[Interaction]] | None:
        """The session record and its interactions in time order (one paginated query)."""
        meta: SessionMeta | None = None
        records: list[Interaction] = []
        for item in self._query(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=_values(pk=f"SESSION#{session_id}"),
            ConsistentRead=True,
        ):
            if item["SK"] == "META":
                meta = item_to_meta(item)
            elif item["SK"].startswith("I#"):
                records.append(item_to_interaction(item))
        if meta is None:
            return None
        records.sort(key=lambda r: (r.timestamp, r.interaction_id))
        return meta, records

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        while True:
            out = self.client.query(TableName=self.table_name, **kwargs)
            for item in out.get("Items", []):
                yield deserialize(item)
            if "LastEvaluatedKey" not in out:
                return
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

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
        to_meta = lambda items: item_to_meta(deserialize(items[0])) if items else None  # noqa: E731
        return to_meta(prev), to_meta(nxt)

    # --------------------------------------------------------------------- writes
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
        cond = "session_id = :sid"
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

    def _move_head_op(self, tx: _Tx, meta: SessionMeta) -> None:
        head = Head(
            student_id=meta.student_id,
            session_id=meta.session_id,
            session_start=meta.start_time,
            last_activity=meta.last_activity,
        )
        tx.add(
            "head",
            self._put(
                self._head_item(head),
                "attribute_not_exists(PK) OR last_activity <= :last",
                last=iso(meta.last_activity),
            ),
        )

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

    # ------------------------------------------------------------------- admin
    def lookup_marker(self, interaction_id: str) -> str | None:
        out = self.client.get_item(TableName=self.table_name, Key=serialize(marker_key(interaction_id)))
        return deserialize(out["Item"]).get("session_id") if "Item" in out else None
