"""Reviewing unmatched data (:class:`~session_tracker.store.ports.ReviewStore`): the assignment transaction.


1. the target META: a new item (``attribute_not_exists``) or an update conditioned on its
   ``platform_version`` and owner, exactly like a platform merge;
2. delete the source META, only while it is ``unmatched``, owned by the same student and
   at the ``platform_version`` that was read;
3. ``CALL#{call_id}`` of every call of the source now points at the target;
4. ``DELIVERY#assign:{source}`` remembers the assignment (a second one fails); it and the
   source's own delivery markers join the target's ``delivery_ids`` (erasure finds them);
5. the student's HEAD ``ended_at`` when it points at the target.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from session_tracker.errors import DuplicateDelivery, SessionIdTaken, StoreConflict
from session_tracker.models import PlatformMove, iso
from session_tracker.store.codec import _values, deserialize, meta_to_item, serialize
from session_tracker.store.dynamo_base import DynamoBase
from session_tracker.store.keys import ASSIGN_PREFIX, DELIVERY_TTL, call_key, delivery_key, head_key, session_key
from session_tracker.store.v2 import new_version


class ReviewMixin(DynamoBase):
    """Moving an unmatched session's platform data (``get_session_versioned``,
    ``student_sessions_before`` and ``get_head`` come from the platform mixin)."""

    def get_assignment(self, source_session_id: str) -> str | None:
        out = self.client.get_item(
            TableName=self.table_name,
            Key=serialize(delivery_key(ASSIGN_PREFIX + source_session_id)),
            ConsistentRead=True,
        )
        return deserialize(out["Item"]).get("session_id") if "Item" in out else None

    # -------------------------------------------------------------------- the move
    def _source_deliveries(self, move: PlatformMove) -> set[str]:
        """The assignment marker and the source's own ``DELIVERY#`` markers: they join the
        target's ``delivery_ids`` so an erasure of the student finds them (a delivery to the
        source after this read changes its ``platform_version``: the transaction fails, retried)."""
        out = self.client.get_item(
            TableName=self.table_name,
            Key=serialize(session_key(move.source.session_id)),
            ProjectionExpression="delivery_ids",
            ConsistentRead=True,
        )
        own = deserialize(out["Item"]).get("delivery_ids") or set() if "Item" in out else set()
        return {ASSIGN_PREFIX + move.source.session_id, *own}

    def _target_update(self, move: PlatformMove, deliveries: set[str]) -> dict[str, Any]:
        meta = move.target
        names = {"#status": "status", "#platform": "platform", "#end": "end_time", "#v": "platform_version"}
        values: dict[str, Any] = {
            "now": iso(move.now),
            "end": iso(meta.end_time or meta.last_activity),
            "status": meta.status,
            "platform": meta.platform,
            "v": (move.target_version or 0) + 1,
            "student": meta.student_id,
            "true": True,
        }
        sets = [
            "updated_at = :now",
            "#end = :end",
            "#status = :status",
            "#v = :v",
            "#platform = if_not_exists(#platform, :platform)",
            "pending_analysis = :true",
            "content_updated_at = :now",
        ]
        for name in ("conversation", "vapi_metadata", "platform_metadata", "matching"):
            value = getattr(meta, name)
            if value is not None:
                names[f"#{name}"] = name
                values[name] = value
                sets.append(f"#{name} = :{name}")
        if self.retention_days > 0:
            sets.append("expires_at = :exp")
            values["exp"] = self.expires_at(meta.end_time or meta.last_activity)
        conds = ["attribute_exists(PK)", "student_id = :student"]
        if move.target_version is None:
            conds.append("attribute_not_exists(#v)")
        else:
            conds.append("#v = :ev")
            values["ev"] = move.target_version
        expression = f"SET {', '.join(sets)}"
        if meta.status != "active":
            expression += " REMOVE gsi2pk, gsi2sk"
        # the assignment marker joins the target's delivery_ids: an erasure of the student finds it
        expression += " ADD delivery_ids :deliveries"
        values["deliveries"] = deliveries
        if meta.call_ids:
            expression += ", call_ids :calls"
            values["calls"] = set(meta.call_ids)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": serialize(session_key(meta.session_id)),
                "UpdateExpression": expression,
                "ConditionExpression": " AND ".join(conds),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": _values(**values),
            }
        }

    def _target_put(self, move: PlatformMove, deliveries: set[str]) -> dict[str, Any]:
        meta = move.target
        item = meta_to_item(meta, expires_at=self.expires_at(meta.end_time or meta.last_activity))
        item["platform_version"] = 1
        item["pending_analysis"] = True
        item["content_updated_at"] = iso(move.now)
        item["delivery_ids"] = deliveries
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": serialize(item),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }

    def _source_delete(self, move: PlatformMove) -> dict[str, Any]:
        values: dict[str, Any] = {"unmatched": "unmatched", "student": move.source.student_id}
        conds = ["#status = :unmatched", "student_id = :student"]
        if move.source_version is None:
            conds.append("attribute_not_exists(platform_version)")
        else:
            conds.append("platform_version = :v")
            values["v"] = move.source_version
        # an MCP call joining the session meanwhile (it carried the call id) changes the count
        values["n"] = move.source.interaction_count
        conds.append("(interaction_count = :n OR attribute_not_exists(interaction_count))")
        return {
            "Delete": {
                "TableName": self.table_name,
                "Key": serialize(session_key(move.source.session_id)),
                "ConditionExpression": " AND ".join(conds),
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": _values(**values),
            }
        }

    def move_platform_data(self, move: PlatformMove) -> None:
        """Apply ``move`` in one transaction (see the module docstring)."""
        meta = move.target
        items: list[dict[str, Any]] = []
        labels: list[str] = []

        def add(label: str, op: dict[str, Any]) -> None:
            labels.append(label)
            items.append(op)

        deliveries = self._source_deliveries(move)
        add(
            "target_new" if move.create else "target",
            self._target_put(move, deliveries) if move.create else self._target_update(move, deliveries),
        )
        add("source", self._source_delete(move))
        for call_id in move.source.call_ids:
            link = {
                **call_key(call_id),
                "entity": "call",
                "session_id": meta.session_id,
                "student_id": meta.student_id,
                "platform": move.source.platform,
                "expires_at": self.expires_at(meta.end_time or meta.last_activity),
            }
            add(
                "call",
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": serialize({k: v for k, v in link.items() if v is not None}),
                        "ConditionExpression": "attribute_not_exists(PK) OR session_id = :src",
                        "ExpressionAttributeValues": _values(src=move.source.session_id),
                    }
                },
            )
        marker = {
            **delivery_key(ASSIGN_PREFIX + move.source.session_id),
            "entity": "delivery",
            "session_id": meta.session_id,
            "platform": move.source.platform or "unknown",
            "expires_at": int((move.now + DELIVERY_TTL).timestamp()),
        }
        add(
            "assignment",
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": serialize(marker),
                    "ConditionExpression": "attribute_not_exists(PK)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        )
        if move.head_ended_at is not None:
            add(
                "head",
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": serialize(head_key(meta.student_id)),
                        "UpdateExpression": "SET ended_at = :ended, version = :nv",
                        "ConditionExpression": "session_id = :sid",
                        "ExpressionAttributeValues": _values(
                            ended=iso(move.head_ended_at), sid=meta.session_id, nv=new_version()
                        ),
                    }
                },
            )
        try:
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            failed = {
                label: reason
                for label, reason in zip(labels, reasons, strict=False)
                if reason.get("Code") == "ConditionalCheckFailed"
            }
            if "assignment" in failed:
                old = deserialize(dict(failed["assignment"]["Item"])) if failed["assignment"].get("Item") else {}
                raise DuplicateDelivery(ASSIGN_PREFIX + move.source.session_id, old.get("session_id")) from exc
            if "target_new" in failed:
                raise SessionIdTaken("session id exists") from exc
            raise StoreConflict("the session changed during the assignment") from exc
