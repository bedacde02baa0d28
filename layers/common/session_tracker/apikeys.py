"""Named API keys: create (the key is shown once), list (never the key), revoke.

One key per tutor or per MCP server, each with a scope (``ingest`` < ``read`` < ``admin``),
revocable without rotating anyone else's. The table keeps only the key's SHA-256; a key
is ``stk_`` + 43 URL-safe characters (256 random bits), so a bearer that does not start
with ``stk_`` never costs a table read.

Used by ``POST/GET /keys``, ``DELETE /keys/{name}`` (admin) and ``session-tracker keys``
(over the API, or ``--table`` for operators). The store is a port, the clock injected.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from session_tracker.access import KEY_NAME_PATTERN, KEY_PREFIX, KeyRecord, Scope, token_hash
from session_tracker.errors import Conflict, NotFound, StoreConflict
from session_tracker.store.ports import KeyStore

KeyName = Annotated[
    str,
    StringConstraints(pattern=KEY_NAME_PATTERN),
    Field(description="Letters, digits, `_` and `-`; 1-64 characters, starting with a letter or digit."),
]


class KeyCreate(BaseModel):
    """Body of ``POST /keys``."""

    model_config = ConfigDict(extra="forbid")

    name: KeyName
    scope: Scope = Field(description="ingest, read or admin.")


class KeyInfo(BaseModel):
    """A key as listed: never the key itself, nor its hash."""

    name: str
    scope: Scope
    created_at: datetime | None = None
    last_used: datetime | None = Field(
        default=None, description="Updated at most once per key per 5 minutes per running function."
    )
    revoked_at: datetime | None = None


class KeyCreated(KeyInfo):
    key: str = Field(description="The bearer credential. Shown this once; only its hash is stored.")


class KeyList(BaseModel):
    keys: list[KeyInfo]


class KeyRevoked(BaseModel):
    name: str
    revoked_at: datetime


class Forgetter(Protocol):
    def forget(self, name: str) -> None: ...


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _info(record: KeyRecord) -> KeyInfo:
    return KeyInfo(
        name=record.name,
        scope=record.scope,
        created_at=record.created_at,
        last_used=record.last_used,
        revoked_at=record.revoked_at,
    )


def create_key(
    body: KeyCreate, *, store: KeyStore, now: datetime, cache: Forgetter | None = None, key: str | None = None
) -> KeyCreated:
    """A new key named ``body.name``; 409 when an active key has that name."""
    secret = key or new_key()
    record = KeyRecord(name=body.name, scope=body.scope, key_hash=token_hash(secret), created_at=now)
    try:
        store.create_key(record)
    except StoreConflict as exc:
        raise Conflict(
            f"a key named {body.name!r} exists; revoke it first or choose another name", field="name"
        ) from exc
    if cache is not None:
        cache.forget(body.name)  # a cached "no such name" of this process must not hide the new key
    return KeyCreated(name=record.name, scope=record.scope, created_at=now, key=secret)


def list_keys(*, store: KeyStore, include_revoked: bool = True) -> KeyList:
    records = store.list_keys()
    return KeyList(keys=[_info(r) for r in records if include_revoked or not r.revoked])


def revoke_key(name: str, *, store: KeyStore, now: datetime, cache: Forgetter | None = None) -> KeyRevoked:
    """Revoke the active key ``name``: refused at once by this process, within 60 s by every other."""
    revoked = store.revoke_key(name, at=now)
    if cache is not None:
        cache.forget(name)
    if revoked is None:
        raise NotFound(f"no active key named {name!r}", field="name")
    return KeyRevoked(name=name, revoked_at=revoked.revoked_at or now)


__all__ = [
    "KeyCreate",
    "KeyCreated",
    "KeyInfo",
    "KeyList",
    "KeyName",
    "KeyRevoked",
    "create_key",
    "list_keys",
    "new_key",
    "revoke_key",
]
