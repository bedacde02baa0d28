"""The access audit on the table (:class:`~session_tracker.store.ports.AuditStore`).

An entry is one item ``PK=AUDIT#{YYYY-MM-DD}``, ``SK={at}#{entry_id}`` (every student's
entries of a day, newest first with a reverse Query); an entry about a student also carries
``gsi1pk=AUDIT#{student_id}``, ``gsi1sk={at}#{entry_id}`` so GSI1 lists one student's
entries (the ``AUDIT#`` prefix never meets the ``STUDENT#`` session lists there). Writing
one costs 1 WRU plus 1 for the GSI1 copy; entries expire with ``retention_days``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from session_tracker.audit import AuditEntry
from session_tracker.models import iso, parse_iso, to_utc
from session_tracker.store.codec import _values, deserialize, serialize
from session_tracker.store.cursors import InvalidCursor, cursor_key, decode_cursor, encode_cursor, fingerprint
from session_tracker.store.dynamo_base import DynamoBase
from session_tracker.store.keys import GSI1, audit_key, audit_student_keys

_BASE_KEYS = ("PK", "SK")
_GSI1_KEYS = ("PK", "SK", "gsi1pk", "gsi1sk")


def audit_item(entry: AuditEntry, *, expires_at: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        **audit_key(entry.at, entry.entry_id),
        "entity": "audit",
        "at": iso(entry.at),
        "entry_id": entry.entry_id,
        "actor": entry.actor,
        "scope": entry.scope,
        "action": entry.action,
        "student_id": entry.student_id,
        "session_id": entry.session_id,
        "counts_json": json.dumps(entry.counts, sort_keys=True) if entry.counts is not None else None,
        "detail_json": json.dumps(entry.detail, sort_keys=True) if entry.detail is not None else None,
        "expires_at": expires_at,
    }
    if entry.student_id:
        item.update(audit_student_keys(entry.student_id, entry.at, entry.entry_id))
    return item


def item_to_entry(item: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        at=parse_iso(item["at"]),
        entry_id=item["entry_id"],
        actor=item["actor"],
        scope=item["scope"],
        action=item["action"],
        student_id=item.get("student_id"),
        session_id=item.get("session_id"),
        counts=json.loads(item["counts_json"]) if item.get("counts_json") else None,
        detail=json.loads(item["detail_json"]) if item.get("detail_json") else None,
    )


class AuditMixin(DynamoBase):
    """Append and list audit entries."""

    @property
    def _audit_secret(self) -> bytes:
        if self._cursor_secret is None:
            self._cursor_secret = cursor_key(self._cursor_secret_arn)
        return self._cursor_secret

    def append_audit(self, entry: AuditEntry) -> None:
        item = audit_item(entry, expires_at=self.expires_at(entry.at))
        self.client.put_item(TableName=self.table_name, Item=serialize(item))

    def list_audit(
        self,
        *,
        student_id: str | None,
        start: datetime,
        end: datetime,
        limit: int = 50,
        cursor: str | None = None,
        max_days: int = 32,
    ) -> tuple[list[AuditEntry], str | None]:
        """One page, newest first: one student's entries from GSI1, or every entry by day partition
        (at most ``max_days`` days per call, so a page may be short and still have a cursor)."""
        if student_id is not None:
            return self._student_audit(student_id, start=start, end=end, limit=limit, cursor=cursor)
        return self._days_audit(start=start, end=end, limit=limit, cursor=cursor, max_days=max_days)

    def _student_audit(
        self, student_id: str, *, start: datetime, end: datetime, limit: int, cursor: str | None
    ) -> tuple[list[AuditEntry], str | None]:
        query = fingerprint("audit-student", student_id, iso(start), iso(end))
        kwargs: dict[str, Any] = {
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :pk AND gsi1sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": _values(pk=f"AUDIT#{student_id}", a=iso(start), b=f"{iso(end)}#\uffff"),
            "ScanIndexForward": False,
        }
        if cursor:
            key = decode_cursor(cursor, query, secret=self._audit_secret, keys=_GSI1_KEYS)
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
            next_cursor = encode_cursor({k: last[k] for k in _GSI1_KEYS}, query, secret=self._audit_secret)
        return [item_to_entry(i) for i in items[:limit]], next_cursor

    def _days_audit(
        self, *, start: datetime, end: datetime, limit: int, cursor: str | None, max_days: int
    ) -> tuple[list[AuditEntry], str | None]:
        query = fingerprint("audit-days", iso(start), iso(end))
        day = to_utc(end).date()
        first_day = to_utc(start).date()
        start_key: dict[str, Any] | None = None
        if cursor:
            key = decode_cursor(cursor, query, secret=self._audit_secret, keys=_BASE_KEYS, partial=("PK",))
            try:
                day = datetime.strptime(key["PK"], "AUDIT#%Y-%m-%d").date()
            except ValueError as exc:
                raise InvalidCursor("the cursor is not a page token of this API") from exc
            if len(key) > 1:
                start_key = serialize(key)
        items: list[dict[str, Any]] = []
        days_read = 0
        while day >= first_day and len(items) <= limit and days_read < max_days:
            kwargs: dict[str, Any] = {
                "KeyConditionExpression": "PK = :pk AND SK BETWEEN :a AND :b",
                "ExpressionAttributeValues": _values(pk=f"AUDIT#{day:%Y-%m-%d}", a=iso(start), b=f"{iso(end)}#\uffff"),
                "ScanIndexForward": False,
            }
            if start_key:
                kwargs["ExclusiveStartKey"], start_key = start_key, None
            out = self.client.query(TableName=self.table_name, Limit=limit + 1 - len(items), **kwargs)
            items += [deserialize(raw) for raw in out.get("Items", [])]
            if "LastEvaluatedKey" in out:
                start_key = out["LastEvaluatedKey"]
                continue
            day -= timedelta(days=1)
            days_read += 1
        entries = [item_to_entry(i) for i in items]
        if len(items) > limit:
            last = items[limit - 1]
            return entries[:limit], encode_cursor({k: last[k] for k in _BASE_KEYS}, query, secret=self._audit_secret)
        if start_key is not None:
            return entries, encode_cursor(deserialize(start_key), query, secret=self._audit_secret)
        if day >= first_day:
            return entries, encode_cursor({"PK": f"AUDIT#{day:%Y-%m-%d}"}, query, secret=self._audit_secret)
        return entries, None
