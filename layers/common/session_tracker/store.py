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
platform delivery      ``DELIVERY#{delivery_id}``  ``DELIVERY``
daily analysis usage   ``USAGE#{YYYY-MM-DD}``      ``USAGE``
=====================  ==========================  ===============================

Indexes: ``GSI1`` (``gsi1pk = STUDENT#{student_id}``, ``gsi1sk = {start_time}#{session_id}``)
lists a student's sessions by start time; ``GSI3`` (``gsi3pk = DAY#{YYYY-MM-DD}``,
``gsi3sk = {start_time}#{session_id}``, projecting only ``student_id``) lists every
session by start day (operators' exports); ``GSI2`` is sparse (``gsi2pk = OPEN#{shard}``,
``gsi2sk = last_activity``) and holds only sessions still open, for the idle closer.

Callers pass models in and get models back; lost races come back as the domain
errors in :mod:`session_tracker.errors`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
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

from session_tracker.errors import (
    DuplicateDelivery,
    DuplicateInteraction,
    HeadChanged,
    SessionIdTaken,
    StoreConflict,
    Unprocessable,
)
from session_tracker.models import (
    UNKNOWN_STUDENT,
    AnalysisState,
    AnalysisUsage,
    CallLink,
    Head,
    Interaction,
    PlatformWrite,
    SessionMeta,
    SessionRef,
    iso,
    parse_iso,
    to_utc,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OPEN_SHARDS = 4
GSI1 = "GSI1"
GSI2 = "GSI2"
MARKER_TTL = timedelta(days=7)
DELIVERY_TTL = timedelta(days=7)

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


def delivery_key(delivery_id: str) -> dict[str, str]:
    return {"PK": f"DELIVERY#{delivery_id}", "SK": "DELIVERY"}


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
        **day_index_keys(meta.start_time, meta.session_id),
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

    def reopen_session(self, head: Head, records: Sequence[Interaction]) -> Head: ...

    def open_session(
        self, meta: SessionMeta, records: Sequence[Interaction], *, expected_head: Head | None
    ) -> Head: ...

    def create_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None: ...

    def append_to_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None: ...

    def neighbours(self, student_id: str, at: datetime) -> tuple[SessionMeta | None, SessionMeta | None]: ...

    def read_session(self, session_id: str) -> tuple[SessionMeta, list[Interaction]] | None: ...

    # reading sessions (sessions API, CLI)
    def list_student_sessions(
        self, student_id: str, *, start: datetime, end: datetime, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[SessionMeta], str | None]: ...

    def list_sessions_between(
        self, *, start: datetime, end: datetime, limit: int = 50, cursor: str | None = None, max_days: int = 32
    ) -> tuple[list[SessionRef], str | None]: ...

    # lifecycle and analysis (close_idle, analyze)
    def due_sessions(self, cutoff: datetime, *, limit: int, page_size: int = 500) -> list[tuple[str, datetime]]: ...

    def get_sessions(self, session_ids: Sequence[str]) -> dict[str, SessionMeta]: ...

    def close_session(
        self, meta: SessionMeta, *, end_time: datetime, summary: dict[str, Any], now: datetime, request_analysis: bool
    ) -> None: ...

    def previous_sessions(self, student_id: str, before: datetime, *, limit: int) -> list[SessionMeta]: ...

    def get_analysis_state(self, session_id: str) -> AnalysisState | None: ...

    def request_analysis(self, session_id: str, *, now: datetime, trigger: str) -> None: ...

    def save_analysis(
        self, session_id: str, analysis: dict[str, Any], *, content_updated_at: str | None, clear_pending: bool
    ) -> bool: ...

    def reserve_analysis_slot(self, day: str, *, max_per_day: int, now: datetime) -> bool: ...

    def release_analysis_slot(self, day: str) -> None: ...

    def record_usage(self, day: str, *, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None: ...

    def get_usage(self, day: str) -> AnalysisUsage: ...

    # platform data (webhook_vapi, webhook_generic)
    def get_call_link(self, call_id: str) -> CallLink | None: ...

    def get_delivery(self, delivery_id: str) -> str | None: ...

    def get_session_versioned(self, session_id: str) -> tuple[SessionMeta, int | None] | None: ...

    def student_sessions_before(self, student_id: str, before: datetime, *, limit: int = 10) -> list[SessionMeta]: ...

    def open_sessions_since(self, since: datetime, *, limit: int = 50) -> list[SessionMeta]: ...

    def write_platform_data(self, write: PlatformWrite) -> None: ...

    def create_platform_session(self, meta: SessionMeta, write: PlatformWrite, *, move_head: bool) -> None: ...

    def claim_session(self, session_id: str, *, call_id: str, student_id: str, now: datetime) -> bool: ...


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
            "closed_at": iso(head.closed_at) if head.closed_at else None,
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
        # Back into the sparse open-session index (GSI2); gsi2sk is already set when last_activity moved.
        reopen = "#status = :active, gsi2pk = :g2pk, " + ("" if moved else "gsi2sk = :g2sk, ")
        update["UpdateExpression"] = update["UpdateExpression"].replace("SET ", f"SET {reopen}", 1) + " REMOVE end_time"
        update["ConditionExpression"] += " AND #status = :closedstatus"
        update["ExpressionAttributeNames"] = {**update.get("ExpressionAttributeNames", {}), "#status": "status"}
        reopen_values = {"active": "active", "closedstatus": "closed", "g2pk": open_shard(head.session_id)}
        if not moved:
            reopen_values["g2sk"] = iso(new_last)
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

    def _move_head_op(
        self, tx: _Tx, meta: SessionMeta, *, call_id: str | None = None, ended_at: datetime | None = None
    ) -> None:
        """Point the student's HEAD at ``meta`` unless it already points at something newer."""
        head = Head(
            student_id=meta.student_id,
            session_id=meta.session_id,
            session_start=meta.start_time,
            last_activity=meta.last_activity,
            call_id=call_id,
            ended_at=ended_at,
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

    def get_sessions(self, session_ids: Sequence[str]) -> dict[str, SessionMeta]:
        """Session records by id (BatchGetItem, 100 a request), without the large fields."""
        names: tuple[str, ...] = ("session_id", "student_id", "start_time", "last_activity", "end_time", "status")
        names += ("platform", "interaction_count", "subjects", "data_provided", "call_ids", "conversation")
        found: dict[str, SessionMeta] = {}
        ids = list(dict.fromkeys(session_ids))
        for start in range(0, len(ids), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [serialize(session_key(i)) for i in ids[start : start + 100]],
                    "ProjectionExpression": ", ".join(f"#{n}" for n in range(len(names))),
                    "ExpressionAttributeNames": {f"#{n}": name for n, name in enumerate(names)},
                    "ConsistentRead": True,
                }
            }
            for attempt in range(8):
                out = self.client.batch_get_item(RequestItems=request)
                for raw in out.get("Responses", {}).get(self.table_name, []):
                    meta = item_to_meta(deserialize(raw))
                    found[meta.session_id] = meta
                request = out.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
        return found

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

    def previous_sessions(self, student_id: str, before: datetime, *, limit: int) -> list[SessionMeta]:
        """The student's sessions that started before ``before``, newest first (GSI1), small fields only."""
        if limit <= 0:
            return []
        names: tuple[str, ...] = ("session_id", "student_id", "start_time", "last_activity", "end_time", "status")
        names += ("interaction_count", "subjects", "session_summary", "analysis")
        out = self.client.query(
            TableName=self.table_name,
            IndexName=GSI1,
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk < :before",
            ExpressionAttributeValues=_values(pk=f"STUDENT#{student_id}", before=iso(before)),
            ProjectionExpression=", ".join(f"#{n}" for n in range(len(names))),
            ExpressionAttributeNames={f"#{n}": name for n, name in enumerate(names)},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [item_to_meta(deserialize(raw)) for raw in out.get("Items", [])]

    def get_analysis_state(self, session_id: str) -> AnalysisState | None:
        """Status, pending flags and current analysis of a session (consistent read)."""
        names: tuple[str, ...] = ("session_id", "student_id", "status", "start_time", "pending_analysis")
        names += ("content_updated_at", "analysis_trigger", "analysis")
        out = self.client.get_item(
            TableName=self.table_name,
            Key=serialize(session_key(session_id)),
            ConsistentRead=True,
            ProjectionExpression=", ".join(f"#{n}" for n in range(len(names))),
            ExpressionAttributeNames={f"#{n}": name for n, name in enumerate(names)},
        )
        if "Item" not in out:
            return None
        item = deserialize(out["Item"])
        return AnalysisState(
            session_id=item["session_id"],
            student_id=item["student_id"],
            status=item["status"],
            start_time=item["start_time"],
            pending=bool(item.get("pending_analysis")),
            content_updated_at=item.get("content_updated_at"),
            trigger=item.get("analysis_trigger"),
            analysis=item.get("analysis"),
        )

    def request_analysis(self, session_id: str, *, now: datetime, trigger: str) -> None:
        """Set ``pending_analysis`` (and ``content_updated_at``) so the stream runs the analyzer.

        The stream filter fires on the flag's rising edge, so a flag left set (an analysis
        that never finished) is first cleared, then set again. :class:`StoreConflict` when
        the session does not exist.
        """
        key = serialize(session_key(session_id))
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="REMOVE pending_analysis",
                ConditionExpression="attribute_exists(PK) AND pending_analysis = :true",
                ExpressionAttributeValues=_values(true=True),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET pending_analysis = :true, content_updated_at = :now, analysis_trigger = :trigger",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues=_values(true=True, now=iso(now), trigger=trigger),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise StoreConflict(f"session {session_id} does not exist") from exc

    def save_analysis(
        self, session_id: str, analysis: dict[str, Any], *, content_updated_at: str | None, clear_pending: bool
    ) -> bool:
        """Store ``analysis`` on the session; with ``clear_pending``, also clear the flags, but only
        if ``content_updated_at`` is still what the analysis read. ``False``: newer content arrived
        (nothing written; analyse again)."""
        update = "SET analysis = :analysis"
        values: dict[str, Any] = {"analysis": analysis}
        condition = "attribute_exists(PK)"
        if clear_pending:
            update += " REMOVE pending_analysis, analysis_trigger"
            if content_updated_at is None:
                condition += " AND attribute_not_exists(content_updated_at)"
            else:
                condition += " AND content_updated_at = :seen"
                values["seen"] = content_updated_at
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=serialize(session_key(session_id)),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=_values(**values),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _usage_key(self, day: str) -> dict[str, Any]:
        return serialize({"PK": f"USAGE#{day}", "SK": "USAGE"})

    def reserve_analysis_slot(self, day: str, *, max_per_day: int, now: datetime) -> bool:
        """Take one of the day's ``max_per_day`` analysis slots (atomic); ``False`` when none is left."""
        if max_per_day <= 0:
            return False
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._usage_key(day),
                UpdateExpression="ADD sessions :one SET updated_at = :now, entity = :entity, expires_at = :exp",
                ConditionExpression="attribute_not_exists(sessions) OR sessions < :max",
                ExpressionAttributeValues=_values(
                    one=1,
                    max=max_per_day,
                    now=iso(now),
                    entity="usage",
                    exp=int((now + timedelta(days=400)).timestamp()),
                ),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def release_analysis_slot(self, day: str) -> None:
        """Give back a slot taken for a model call that failed (counted as a failure)."""
        self.client.update_item(
            TableName=self.table_name,
            Key=self._usage_key(day),
            UpdateExpression="ADD sessions :minus, failures :one",
            ExpressionAttributeValues=_values(minus=-1, one=1),
        )

    def record_usage(self, day: str, *, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
        """Add one analysis's tokens and estimated cost to the day's totals."""
        adds = ["analyses :one", "input_tokens :in", "output_tokens :out"]
        values: dict[str, Any] = {"one": 1, "in": input_tokens, "out": output_tokens}
        if cost_usd is not None:
            adds.append("cost_usd :cost")
            values["cost"] = Decimal(f"{cost_usd:.8f}")
        self.client.update_item(
            TableName=self.table_name,
            Key=self._usage_key(day),
            UpdateExpression="ADD " + ", ".join(adds),
            ExpressionAttributeValues=_values(**values),
        )

    def get_usage(self, day: str) -> AnalysisUsage:
        """The day's analysis totals (zeros when nothing ran that day)."""
        out = self.client.get_item(TableName=self.table_name, Key=self._usage_key(day), ConsistentRead=True)
        item = deserialize(out.get("Item") or {})
        return AnalysisUsage(
            date=day,
            **{k: item[k] for k in ("sessions", "analyses", "failures", "input_tokens", "output_tokens") if k in item},
            cost_usd=round(float(item.get("cost_usd", 0)), 6),
        )

    # ------------------------------------------------- reading sessions (sessions API, CLI)
    # A student's sessions: Query GSI1 (gsi1pk = STUDENT#{id}, gsi1sk BETWEEN), newest first.
    # Every session by start day: Query GSI3 (gsi3pk = DAY#{YYYY-MM-DD}), one query per day.
    # Page tokens are opaque, bound to the query they came from and tamper-checked.

    @property
    def cursor_secret(self) -> bytes:
        """Key of the page-token check (``CURSOR_SECRET``, else derived from the table name)."""
        return (os.environ.get("CURSOR_SECRET") or f"cursor:{self.table_name}").encode()

    def list_student_sessions(
        self,
        student_id: str,
        *,
        start: datetime,
        end: datetime,
        limit: int = 20,
        cursor: str | None = None,
    ) -> tuple[list[SessionMeta], str | None]:
        """One page of a student's sessions that started in ``[start, end]``, newest first.

        The records come without their large fields (conversation, analysis); read one
        session for those. Raises :class:`InvalidCursor` for a token not made by this query.
        """
        query = _fingerprint("student", student_id, iso(start), iso(end))
        kwargs: dict[str, Any] = {
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :pk AND gsi1sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": _values(pk=f"STUDENT#{student_id}", a=iso(start), b=f"{iso(end)}#\uffff"),
            "ProjectionExpression": ", ".join(f"#{i}" for i in range(len(_LIST_ATTRS))),
            "ExpressionAttributeNames": {f"#{i}": name for i, name in enumerate(_LIST_ATTRS)},
            "ScanIndexForward": False,
        }
        if cursor:
            key = decode_cursor(cursor, query, secret=self.cursor_secret, keys=_GSI1_KEYS)
            if key["gsi1pk"] != f"STUDENT#{student_id}":
                raise InvalidCursor("the cursor belongs to another query")
            kwargs["ExclusiveStartKey"] = serialize(key)
        items: list[dict[str, Any]] = []
        while len(items) <= limit:
            out = self.client.query(TableName=self.table_name, Limit=limit + 1 - len(items), **kwargs)
            items += [deserialize(i) for i in out.get("Items", [])]
            if "LastEvaluatedKey" not in out:
                break
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        next_cursor = None
        if len(items) > limit:
            last = items[limit - 1]
            next_cursor = encode_cursor({k: last[k] for k in _GSI1_KEYS}, query, secret=self.cursor_secret)
        return [item_to_meta(i) for i in items[:limit]], next_cursor

    def list_sessions_between(
        self,
        *,
        start: datetime,
        end: datetime,
        limit: int = 50,
        cursor: str | None = None,
        max_days: int = 32,
    ) -> tuple[list[SessionRef], str | None]:
        """One page of every student's sessions that started in ``[start, end]``, newest first.

        Reads the sparse day index GSI3: at most ``max_days`` day partitions per call,
        so a page can hold fewer than ``limit`` sessions and still have a next cursor.
        """
        query = _fingerprint("days", iso(start), iso(end))
        day = to_utc(end).date()
        first_day = to_utc(start).date()
        start_key: dict[str, Any] | None = None
        if cursor:
            key = decode_cursor(cursor, query, secret=self.cursor_secret, keys=_GSI3_KEYS, partial=("gsi3pk",))
            try:
                day = datetime.strptime(key["gsi3pk"], "DAY#%Y-%m-%d").date()
            except ValueError as exc:
                raise InvalidCursor("the cursor is not a page token of this API") from exc
            if len(key) > 1:
                start_key = serialize(key)
        refs: list[SessionRef] = []
        keys: list[dict[str, Any]] = []
        days_read = 0
        while day >= first_day and len(refs) <= limit and days_read < max_days:
            kwargs: dict[str, Any] = {
                "IndexName": GSI3,
                "KeyConditionExpression": "gsi3pk = :pk AND gsi3sk BETWEEN :a AND :b",
                "ExpressionAttributeValues": _values(pk=f"DAY#{day:%Y-%m-%d}", a=iso(start), b=f"{iso(end)}#\uffff"),
                "ScanIndexForward": False,
            }
            if start_key:
                kwargs["ExclusiveStartKey"], start_key = start_key, None
            out = self.client.query(TableName=self.table_name, Limit=limit + 1 - len(refs), **kwargs)
            for raw in out.get("Items", []):
                item = deserialize(raw)
                keys.append({k: item[k] for k in _GSI3_KEYS})
                refs.append(
                    SessionRef(
                        session_id=item["PK"].removeprefix("SESSION#"),
                        student_id=item.get("student_id", ""),
                        start_time=parse_iso(item["gsi3sk"].split("#", 1)[0]),
                    )
                )
            if "LastEvaluatedKey" in out:
                start_key = out["LastEvaluatedKey"]
                continue
            day -= timedelta(days=1)
            days_read += 1
        if len(refs) > limit:
            return refs[:limit], encode_cursor(keys[limit - 1], query, secret=self.cursor_secret)
        if start_key is not None:
            return refs, encode_cursor(deserialize(start_key), query, secret=self.cursor_secret)
        if day >= first_day:
            return refs, encode_cursor({"gsi3pk": f"DAY#{day:%Y-%m-%d}"}, query, secret=self.cursor_secret)
        return refs, None

    # ---------------------------------------- platform data (webhook_vapi, webhook_generic)
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
                "ExpressionAttributeValues": _values(pk=f"OPEN#{shard}", since=iso(since)),
                "Limit": limit,
            }
            out = self.client.query(TableName=self.table_name, **kwargs)
            ids += [deserialize(raw)["PK"].removeprefix("SESSION#") for raw in out.get("Items", [])]
        found = self.get_sessions(ids[: limit * OPEN_SHARDS]) if ids else {}
        return [meta for meta in found.values() if meta.status == "active"]

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
        expression = f"SET {', '.join(sets)}"
        if write.status != "active":
            expression += " REMOVE gsi2pk, gsi2sk"
        if write.call_id:
            expression += " ADD call_ids :calls"
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
                        "UpdateExpression": "SET ended_at = :ended",
                        "ConditionExpression": "session_id = :sid",
                        "ExpressionAttributeValues": _values(ended=iso(write.head_ended_at), sid=write.session_id),
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
        if write.request_analysis:
            item["pending_analysis"] = True
            item["content_updated_at"] = iso(write.now)
        tx = _Tx()
        tx.add("meta_new", self._put(item, "attribute_not_exists(PK)"))
        self._platform_ops(tx, write)
        if move_head:
            self._move_head_op(tx, meta, call_id=write.call_id, ended_at=write.head_ended_at)
        self._platform_transact(tx, write.delivery_id)


GSI3 = "GSI3"
_GSI1_KEYS = ("PK", "SK", "gsi1pk", "gsi1sk")
_GSI3_KEYS = ("PK", "SK", "gsi3pk", "gsi3sk")
_LIST_ATTRS = (
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
    "call_ids",
    "matching",
    "vapi_metadata",
    "created_at",
    "updated_at",
    *_GSI1_KEYS,
)
_CURSOR_MAC_BYTES = 12
MAX_CURSOR_CHARS = 2048


class InvalidCursor(Unprocessable):
    """A page token that this query did not hand out (422 naming ``cursor``)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"invalid cursor: {detail}", field="cursor")


def day_index_keys(start_time: datetime, session_id: str) -> dict[str, str]:
    """GSI3 keys of a session record: its UTC start day and start time."""
    return {"gsi3pk": f"DAY#{to_utc(start_time):%Y-%m-%d}", "gsi3sk": f"{iso(start_time)}#{session_id}"}


def _fingerprint(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


def encode_cursor(key: dict[str, Any], query: str, *, secret: bytes) -> str:
    """An opaque page token: the key to resume after, the query it belongs to, and a MAC."""
    payload = json.dumps({"k": key, "q": query, "v": 1}, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()[:_CURSOR_MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode("ascii")


def decode_cursor(
    cursor: str, query: str, *, secret: bytes, keys: tuple[str, ...], partial: tuple[str, ...] = ()
) -> dict[str, str]:
    """The key inside a page token; :class:`InvalidCursor` unless it is intact and from ``query``."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor("too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError as exc:
        raise InvalidCursor("not a page token of this API") from exc
    payload, mac = raw[:-_CURSOR_MAC_BYTES], raw[-_CURSOR_MAC_BYTES:]
    expected = hmac.new(secret, payload, hashlib.sha256).digest()[:_CURSOR_MAC_BYTES]
    if len(raw) <= _CURSOR_MAC_BYTES or not hmac.compare_digest(mac, expected):
        raise InvalidCursor("not a page token of this API (or it was altered)")
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise InvalidCursor("not a page token of this API") from exc
    if not isinstance(data, dict) or data.get("q") != query:
        raise InvalidCursor("the cursor belongs to another query (student or time range changed)")
    key = data.get("k")
    shapes = [set(keys), set(partial)] if partial else [set(keys)]
    if not isinstance(key, dict) or set(key) not in shapes or not all(isinstance(v, str) for v in key.values()):
        raise InvalidCursor("malformed key")
    return key
