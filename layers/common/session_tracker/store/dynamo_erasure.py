"""Erasing one student on the table (:class:`~session_tracker.store.ports.ErasureStore`).

Everything is found from the student's keys, never by a Scan: the student's session records
on GSI1 (``STUDENT#{student_id}`` and, for merged ones, ``MERGED#{student_id}``); per session one
Query of ``SESSION#{session_id}`` (record, v1 calls) and of the student's partition over its span
(v2 calls); the rest of ``STUDENT#{student_id}`` (HEADs, stray calls) last; from them the idempotency markers ``IID#{student_id}#{interaction_id}``, the call
links ``CALL#{call_id}`` (record ``call_ids`` and the calls' ``call_id``; deleted only while
they still point at this session) and the delivery markers ``DELIVERY#{id}`` (record
``delivery_ids``, written since erasure exists; older markers expire with their 7-day TTL;
an assignment adds the unmatched source's markers and ``assign:{source}``, from which
:meth:`assigned_sources` names the source sessions whose blobs the erasure deletes).
Deletes go in ``BatchWriteItem`` pages of 25; the record goes last, conditioned on its owner.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from session_tracker.store.codec import _values, deserialize, item_to_meta, serialize
from session_tracker.store.dynamo_base import DynamoBase
from session_tracker.store.keys import (
    ASSIGN_PREFIX,
    CALL_SK_PREFIX,
    GSI1,
    LAYOUT_VERSION,
    MERGED_PREFIX,
    call_key,
    delivery_key,
    head_key,
    marker_key,
    session_key,
    student_pk,
    v1_head_key,
)

_BATCH = 25
_MAX_UNPROCESSED_ROUNDS = 8


class ErasureMixin(DynamoBase):
    """Delete a student's sessions page by page, then the rest of the student."""

    def student_session_ids(self, student_id: str, *, limit: int) -> tuple[list[str], bool]:
        ids: list[str] = []
        more = False
        for pk in (f"STUDENT#{student_id}", f"{MERGED_PREFIX}{student_id}"):  # merged records too
            if len(ids) >= limit:
                return ids, True
            out = self.client.query(
                TableName=self.table_name,
                IndexName=GSI1,
                KeyConditionExpression="gsi1pk = :pk",
                ExpressionAttributeValues=_values(pk=pk),
                ProjectionExpression="PK",
                Limit=limit - len(ids),
            )
            ids += [deserialize(raw)["PK"].removeprefix("SESSION#") for raw in out.get("Items", [])]
            more = more or "LastEvaluatedKey" in out
        return ids, more

    def assigned_sources(self, session_id: str) -> list[str]:
        out = self.client.get_item(
            TableName=self.table_name,
            Key=serialize(session_key(session_id)),
            ProjectionExpression="delivery_ids",
            ConsistentRead=True,
        )
        deliveries = deserialize(out["Item"]).get("delivery_ids") or () if "Item" in out else ()
        sources = sorted(d.removeprefix(ASSIGN_PREFIX) for d in deliveries if d.startswith(ASSIGN_PREFIX))
        gone = []
        for source in sources:  # an id reused by a later unmatched session keeps its blobs
            got = self.client.get_item(
                TableName=self.table_name, Key=serialize(session_key(source)), ProjectionExpression="PK"
            )
            if "Item" not in got:
                gone.append(source)
        return gone

    def _partition(self, session_id: str) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": _values(pk=f"SESSION#{session_id}"),
            "ProjectionExpression": "PK, SK, student_id, interaction_id, call_id, call_ids, delivery_ids, layout, "
            "start_time, last_activity, session_id, #st",
            "ExpressionAttributeNames": {"#st": "status"},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            out = self.client.query(**kwargs)
            items += [deserialize(raw) for raw in out.get("Items", [])]
            if "LastEvaluatedKey" not in out:
                return items
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def _delete_keys(self, keys: list[dict[str, str]]) -> None:
        unique = list({(k["PK"], k["SK"]): k for k in keys}.values())
        for start in range(0, len(unique), _BATCH):
            requests: list[Any] = [{"DeleteRequest": {"Key": serialize(k)}} for k in unique[start : start + _BATCH]]
            for _ in range(_MAX_UNPROCESSED_ROUNDS):
                out = self.client.batch_write_item(RequestItems={self.table_name: requests})
                requests = list(out.get("UnprocessedItems", {}).get(self.table_name, []))
                if not requests:
                    break
            else:
                raise RuntimeError("the table kept refusing deletes (throttled); retry the erasure")

    def erase_session(self, student_id: str, session_id: str) -> int | None:
        items = self._partition(session_id)
        meta = next((i for i in items if i["SK"] == "META"), None)
        calls = [i for i in items if i["SK"].startswith("I#")]
        if meta is not None and meta.get("student_id") == student_id:
            # v2 calls (and v2 calls a v1 session received) are in the student's partition
            calls += (
                self._session_call_items(
                    item_to_meta(meta).model_copy(update={"status": "active", "end_time": None}),
                    projection=("PK", "SK", "student_id", "interaction_id", "call_id", "session_id", "timestamp"),
                )
                if meta.get("layout") == LAYOUT_VERSION
                else [
                    c
                    for c in self._student_calls(student_id)
                    if c.get("session_id") == session_id and str(c["SK"]).startswith(CALL_SK_PREFIX)
                ]
            )
        if meta is None and not calls:
            return None
        if meta is not None and meta.get("student_id") != student_id:
            return None
        if meta is None and any(c.get("student_id") not in (None, student_id) for c in calls):
            return None
        call_ids = set(meta.get("call_ids") or ()) if meta else set()
        call_ids |= {c["call_id"] for c in calls if c.get("call_id")}
        for call_id in sorted(call_ids):
            try:
                self.client.delete_item(
                    TableName=self.table_name,
                    Key=serialize(call_key(call_id)),
                    ConditionExpression="session_id = :sid",
                    ExpressionAttributeValues=_values(sid=session_id),
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
        keys = [marker_key(student_id, c["interaction_id"]) for c in calls if c.get("interaction_id")]
        keys += [delivery_key(d) for d in sorted(meta.get("delivery_ids") or ())] if meta else []
        keys += [{"PK": c["PK"], "SK": c["SK"]} for c in calls]
        self._delete_keys(keys)
        if meta is not None:
            try:
                self.client.delete_item(
                    TableName=self.table_name,
                    Key=serialize(session_key(session_id)),
                    ConditionExpression="student_id = :student",
                    ExpressionAttributeValues=_values(student=student_id),
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
        return len(calls)

    def _student_calls(self, student_id: str) -> list[dict[str, Any]]:
        """Every item of the student's partition (calls, HEADs), keys and owner attributes only."""
        return list(
            self._query(
                KeyConditionExpression="PK = :pk",
                ExpressionAttributeValues=_values(pk=student_pk(student_id)),
                ProjectionExpression="PK, SK, session_id, call_id, interaction_id",
                ConsistentRead=True,
            )
        )

    def erase_student_rest(self, student_id: str) -> None:
        keys = [head_key(student_id), v1_head_key(student_id)]
        keys += [{"PK": i["PK"], "SK": i["SK"]} for i in self._student_calls(student_id)]
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": GSI1,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": _values(pk=f"AUDIT#{student_id}"),
            "ProjectionExpression": "PK, SK, #action",
            "ExpressionAttributeNames": {"#action": "action"},
        }
        while True:
            out = self.client.query(**kwargs)
            for raw in out.get("Items", []):
                entry = deserialize(raw)
                if entry.get("action") != "erase":  # an erasure keeps its own entry (counts only)
                    keys.append({"PK": entry["PK"], "SK": entry["SK"]})
            if "LastEvaluatedKey" not in out:
                break
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        self._delete_keys(keys)
