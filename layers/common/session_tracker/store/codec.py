"""Models to DynamoDB items and back: attribute types and the item shape of each entity."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from session_tracker.models import Head, Interaction, RecentCall, SessionMeta, iso
from session_tracker.store.keys import day_index_keys, open_bucket, open_shard, session_key, student_call_key

_ser = TypeSerializer()
_deser = TypeDeserializer()


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


def projection(names: tuple[str, ...]) -> dict[str, Any]:
    """``ProjectionExpression`` and its placeholder names for reading only ``names``."""
    return {
        "ProjectionExpression": ", ".join(f"#{n}" for n in range(len(names))),
        "ExpressionAttributeNames": {f"#{n}": name for n, name in enumerate(names)},
    }


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
        "layout": meta.layout,
        "merged_from": set(meta.merged_from) or None,
        "merged_into": meta.merged_into,
    }
    if meta.status == "active":
        item["gsi2pk"] = open_shard(meta.session_id)
        item["gsi2sk"] = open_bucket(meta.last_activity)
    for name in _META_JSON_FIELDS:
        item[name] = getattr(meta, name)
    return item


def item_to_meta(item: dict[str, Any]) -> SessionMeta:
    data = {k: v for k, v in item.items() if k in SessionMeta.model_fields}
    return SessionMeta.model_validate(data)


def interaction_to_item(session_id: str, rec: Interaction, *, expires_at: int | None) -> dict[str, Any]:
    return {
        **student_call_key(rec.student_id, rec.timestamp, rec.interaction_id),
        "entity": "interaction",
        "session_id": session_id,
        "interaction_id": rec.interaction_id,
        "student_id": rec.student_id,
        "function": rec.function,
        "timestamp": iso(rec.timestamp),
        "received_at": iso(rec.received_at),
        "arguments_json": json.dumps(rec.arguments, separators=(",", ":"), ensure_ascii=False),
        "arguments_blob": rec.arguments_blob,
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


def item_to_recent(item: dict[str, Any]) -> RecentCall:
    return RecentCall(timestamp=item["timestamp"], interaction_id=item["interaction_id"], session_id=item["session_id"])


def item_to_head(item: dict[str, Any]) -> Head:
    return Head.model_validate({k: v for k, v in item.items() if k in Head.model_fields})
