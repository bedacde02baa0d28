"""Named API keys on the table (:class:`~session_tracker.store.ports.KeyStore`).

Two items per key, written together:

- ``PK=APIKEYS, SK=KEY#{name}``: the record (name, scope, hash, created, last used, revoked).
  All records share one partition, so listing is a single Query (there are tens of keys, not
  millions).
- ``PK=KEYHASH#{sha256}, SK=KEYHASH``: the lookup of an *active* key by its hash, the one
  GetItem authentication makes (cached 30 s per process). Revoking deletes it in the same
  transaction that marks the record revoked, so a revoked key is never found again.

Keys carry no ``expires_at``: they live until revoked, whatever ``retention_days`` says.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from session_tracker.access import KeyRecord, Scope
from session_tracker.errors import StoreConflict
from session_tracker.models import iso, parse_iso
from session_tracker.store.codec import _values, deserialize, serialize
from session_tracker.store.dynamo_base import DynamoBase
from session_tracker.store.keys import API_KEYS_PK, api_key_key, key_hash_key


def _record(item: dict[str, Any]) -> KeyRecord:
    def when(name: str) -> datetime | None:
        value = item.get(name)
        return parse_iso(value) if isinstance(value, str) and value else None

    return KeyRecord(
        name=str(item["name"]),
        scope=Scope(str(item["scope"])),
        key_hash=str(item["key_hash"]),
        revoked=bool(item.get("revoked_at")),
        last_used=when("last_used"),
        created_at=when("created_at"),
        revoked_at=when("revoked_at"),
    )


class KeysMixin(DynamoBase):
    """Create, find, list, touch and revoke named API keys."""

    def create_key(self, record: KeyRecord) -> None:
        """Store a new key; :class:`StoreConflict` when an active key has that name."""
        created = iso(record.created_at) if record.created_at else None
        item = {
            **api_key_key(record.name),
            "entity": "api_key",
            "name": record.name,
            "scope": record.scope.value,
            "key_hash": record.key_hash,
            "created_at": created,
        }
        lookup = {
            **key_hash_key(record.key_hash),
            "entity": "api_key_hash",
            "name": record.name,
            "scope": record.scope.value,
            "key_hash": record.key_hash,
            "created_at": created,
        }
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": serialize(item),
                            # a revoked name may be given to a new key; an active one may not
                            "ConditionExpression": "attribute_not_exists(PK) OR attribute_exists(revoked_at)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": serialize(lookup),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise StoreConflict(f"an active key is named {record.name!r}") from exc
            raise

    def find_key(self, key_hash: str) -> KeyRecord | None:
        out = self.client.get_item(TableName=self.table_name, Key=serialize(key_hash_key(key_hash)))
        return _record(deserialize(out["Item"])) if "Item" in out else None

    def find_key_by_name(self, name: str) -> KeyRecord | None:
        out = self.client.get_item(TableName=self.table_name, Key=serialize(api_key_key(name)))
        return _record(deserialize(out["Item"])) if "Item" in out else None

    def list_keys(self) -> list[KeyRecord]:
        """Every key's record (revoked ones too), by name."""
        items = self._query(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :key)",
            ExpressionAttributeValues=_values(pk=API_KEYS_PK, key="KEY#"),
        )
        return sorted((_record(item) for item in items), key=lambda r: r.name)

    def touch_key(self, name: str, *, at: datetime) -> None:
        """``last_used = at`` on an active key's record (never moves it back, never revives it)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=serialize(api_key_key(name)),
                UpdateExpression="SET last_used = :at",
                ConditionExpression="attribute_exists(PK) AND attribute_not_exists(revoked_at) "
                "AND (attribute_not_exists(last_used) OR last_used < :at)",
                ExpressionAttributeValues=_values(at=iso(at)),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def revoke_key(self, name: str, *, at: datetime) -> KeyRecord | None:
        """Mark the key revoked and delete its hash lookup; ``None`` when no active key has that name."""
        for _ in range(3):
            current = self.find_key_by_name(name)
            if current is None or current.revoked:
                return None
            try:
                self.client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": self.table_name,
                                "Key": serialize(api_key_key(name)),
                                "UpdateExpression": "SET revoked_at = :at",
                                "ConditionExpression": "key_hash = :hash AND attribute_not_exists(revoked_at)",
                                "ExpressionAttributeValues": _values(at=iso(at), hash=current.key_hash),
                            }
                        },
                        {"Delete": {"TableName": self.table_name, "Key": serialize(key_hash_key(current.key_hash))}},
                    ]
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                continue  # revoked or replaced meanwhile: read again
            return KeyRecord(
                name=current.name,
                scope=current.scope,
                key_hash=current.key_hash,
                revoked=True,
                last_used=current.last_used,
                created_at=current.created_at,
                revoked_at=at,
            )
        raise StoreConflict(f"key {name!r} kept changing")
