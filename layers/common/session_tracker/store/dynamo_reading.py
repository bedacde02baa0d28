"""Reading sessions: one session's partition, a student's sessions (GSI1), sessions by day (GSI3)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from session_tracker.models import (
    Interaction,
    SessionMeta,
    SessionRef,
    iso,
    parse_iso,
    to_utc,
)
from session_tracker.store.codec import (
    _values,
    deserialize,
    item_to_interaction,
    item_to_meta,
    serialize,
)
from session_tracker.store.cursors import InvalidCursor, cursor_key, decode_cursor, encode_cursor, fingerprint
from session_tracker.store.dynamo_base import DynamoBase
from session_tracker.store.keys import (
    GSI1,
    GSI3,
    session_key,
)
from session_tracker.store.v2 import derive_counters

_GSI1_KEYS = ("PK", "SK", "gsi1pk", "gsi1sk")
_GSI3_KEYS = ("PK", "SK", "gsi3pk", "gsi3sk")
_LIST_ATTRS = (
    "layout",
    "merged_from",
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
    "platform_metadata",  # cost and ended reason of every platform on list lines
    "created_at",
    "updated_at",
    *_GSI1_KEYS,
)


class ReadingMixin(DynamoBase):
    """:class:`~session_tracker.store.ports.SessionReader` on DynamoDB."""

    @property
    def cursor_secret(self) -> bytes:
        """Key of the page-token MAC (:func:`cursors.cursor_key`), resolved on the first listing."""
        if self._cursor_secret is None:
            self._cursor_secret = cursor_key(self._cursor_secret_arn)
        return self._cursor_secret

    def read_session(self, session_id: str) -> tuple[SessionMeta, list[Interaction]] | None:
        """The session record and its calls in time order: the record (GetItem), then its calls
        (v2: a Query of the student's partition over the session's span; v1: its own partition).
        An open session's counters are derived from its calls here (the record keeps them as of
        open); a ``merged`` session reads as the session it was merged into."""
        meta, pending = self._record(session_id)
        if meta is not None and meta.status == "merged" and meta.merged_into:
            meta, pending = self._record(meta.merged_into)
        if meta is None:
            return None
        # a finished session waiting for its re-check may hold a call that landed after its end
        span = meta.model_copy(update={"status": "active"}) if pending else meta
        records = [item_to_interaction(i) for i in self._session_call_items(span)]
        records.sort(key=lambda r: (r.timestamp, r.interaction_id))
        if meta.status == "active":
            meta = derive_counters(meta, records)
        return meta, records

    def _record(self, session_id: str) -> tuple[SessionMeta | None, bool]:
        """The record (consistent) and whether its closer re-check is pending."""
        out = self.client.get_item(
            TableName=self.table_name, Key=serialize(session_key(session_id)), ConsistentRead=True
        )
        if "Item" not in out:
            return None, False
        item = deserialize(out["Item"])
        return item_to_meta(item), "recheck_after" in item

    # ------------------------------------------------- reading sessions (sessions API, CLI)
    # A student's sessions: Query GSI1 (gsi1pk = STUDENT#{id}, gsi1sk BETWEEN), newest first.
    # Every session by start day: Query GSI3 (gsi3pk = DAY#{YYYY-MM-DD}), one query per day.
    # Page tokens are opaque, bound to the query they came from and tamper-checked.

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
        query = fingerprint("student", student_id, iso(start), iso(end))
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
        return self._derive_open([item_to_meta(i) for i in items[:limit]]), next_cursor

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
        query = fingerprint("days", iso(start), iso(end))
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
