"""The part every DynamoDB access-pattern module shares: client, table, TTL, transactions."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from session_tracker.errors import (
    DuplicateInteraction,
    HeadChanged,
    SessionIdTaken,
    StoreConflict,
)
from session_tracker.models import (
    UNKNOWN_STUDENT,
    Head,
    Interaction,
    SessionMeta,
    iso,
)
from session_tracker.store.codec import (
    _values,
    deserialize,
    interaction_to_item,
    item_to_head,
    item_to_meta,
    item_to_recent,
    serialize,
)
from session_tracker.store.dynamo_calls import session_call_items
from session_tracker.store.keys import (
    CALL_SK_PREFIX,
    V2_HEAD_SK,
    call_key,
    head_key,
    session_key,
    student_pk,
    v1_head_key,
)
from session_tracker.store.v2 import (
    LOOK_BACK,
    _from_calls,
    derive_counters,
    item_to_interaction_light,
    new_version,
    with_recent,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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


class DynamoBase:
    """One table and its client; the access-pattern mixins (ingest, platform, closer,
    analysis state, reading) add their methods on top."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        retention_days: int = 365,
        cursor_secret: str | None = None,
        cursor_secret_arn: str | None = None,
    ) -> None:
        self.table_name = table_name
        self._cursor_secret = cursor_secret.encode() if cursor_secret else None
        self._cursor_secret_arn = cursor_secret_arn
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
        """Each call's put in the student's partition, idempotent by key (no marker items)."""
        for rec in records:
            tx.add("interaction", self._put(self._call_item(session_id, rec), "attribute_not_exists(SK)"), rec)

    def _call_item(self, session_id: str, rec: Interaction) -> dict[str, Any]:
        return interaction_to_item(session_id, rec, expires_at=self.expires_at(rec.timestamp))

    def _call_ops(self, tx: _Tx, session_id: str, student_id: str, call_ids: set[str], at: datetime) -> None:
        for call_id in sorted(call_ids):
            item = {
                **call_key(call_id),
                "session_id": session_id,
                "student_id": student_id,
                "expires_at": self.expires_at(at),
            }
            # Never re-point a link that belongs to another student (only the unmatched bucket's).
            condition = "attribute_not_exists(PK) OR student_id IN (:student, :unknown)"
            tx.add("call", self._put(item, condition, student=student_id, unknown=UNKNOWN_STUDENT))

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
            "version": new_version(),
            "expires_at": self.expires_at(head.last_activity),
        }

    def _transact(self, tx: _Tx) -> None:
        """Run ``tx``; a call link owned by another student is left as it is (its put dropped)."""
        for _ in range(2):
            try:
                self.client.transact_write_items(TransactItems=tx.items)  # type: ignore[arg-type]
                return
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                failed = [
                    (label, reason.get("Code"))
                    for label, reason in zip(tx.labels, reasons, strict=False)
                    if reason.get("Code") not in (None, "None")
                ]
                if not failed or any(label != "call" or code != "ConditionalCheckFailed" for label, code in failed):
                    raise self._conflict(tx, exc) from exc
                keep = [
                    i
                    for i, (label, reason) in enumerate(zip(tx.labels, reasons, strict=False))
                    if not (label == "call" and reason.get("Code") == "ConditionalCheckFailed")
                ]
                tx = _Tx([tx.items[i] for i in keep], [tx.labels[i] for i in keep], [tx.records[i] for i in keep])
        raise StoreConflict("call links kept changing")

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

    def get_head(self, student_id: str) -> Head | None:
        """HEAD and the student's newest calls: one consistent Query of the student's partition,
        newest first (``I~HEAD`` sorts after every call). No v2 HEAD: the v1 one (GetItem)."""
        out = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="PK = :pk AND SK BETWEEN :a AND :b",
            ExpressionAttributeValues=_values(pk=student_pk(student_id), a=CALL_SK_PREFIX, b=V2_HEAD_SK),
            ProjectionExpression="SK, session_id, session_start, last_activity, ended_at, closed_at, call_id, "
            "version, student_id, interaction_id, #ts",
            ExpressionAttributeNames={"#ts": "timestamp"},
            ScanIndexForward=False,
            Limit=1 + LOOK_BACK,
            ConsistentRead=True,
        )
        items = [deserialize(raw) for raw in out.get("Items", [])]
        head_item = items[0] if items and items[0]["SK"] == V2_HEAD_SK else None
        calls = [item_to_recent(i) for i in items if i["SK"] != V2_HEAD_SK and "session_id" in i]
        if head_item is None:
            v1 = self.client.get_item(
                TableName=self.table_name, Key=serialize(v1_head_key(student_id)), ConsistentRead=True
            )
            if "Item" not in v1:
                return _from_calls(student_id, calls)
            head_item = {**deserialize(v1["Item"]), "version": None}
        return with_recent(item_to_head(head_item), calls)

    _session_call_items = session_call_items

    def _derive_open(self, metas: list[SessionMeta]) -> list[SessionMeta]:
        """Listing lines of open sessions with counters derived from their calls (one Query per
        open session on the page; closed ones carry the counters written at close)."""
        names = ("session_id", "interaction_id", "timestamp", "subjects", "data_provided", "call_id")
        return [
            derive_counters(m, [item_to_interaction_light(i) for i in self._session_call_items(m, projection=names)])
            if m.status == "active"
            else m
            for m in metas
        ]

    def get_session(self, session_id: str) -> SessionMeta | None:
        out = self.client.get_item(
            TableName=self.table_name, Key=serialize(session_key(session_id)), ConsistentRead=True
        )
        return item_to_meta(deserialize(out["Item"])) if "Item" in out else None

    def get_sessions(self, session_ids: Sequence[str]) -> dict[str, SessionMeta]:
        """Session records by id (BatchGetItem, 100 a request), without the large fields."""
        metas = (item_to_meta(item) for item in self._batch_records(session_ids))
        return {m.session_id: m for m in metas}

    def _batch_records(self, session_ids: Sequence[str], extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        names: tuple[str, ...] = ("session_id", "student_id", "start_time", "last_activity", "end_time", "status")
        names += ("platform", "interaction_count", "subjects", "data_provided", "call_ids", "conversation")
        names += ("layout", "merged_from", "merged_into", *extra)
        found: list[dict[str, Any]] = []
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
                found += [deserialize(raw) for raw in out.get("Responses", {}).get(self.table_name, [])]
                request = out.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
        return found

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        while True:
            out = self.client.query(TableName=self.table_name, **kwargs)
            for item in out.get("Items", []):
                yield deserialize(item)
            if "LastEvaluatedKey" not in out:
                return
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

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
