"""Opaque, tamper-checked page tokens bound to the query that made them (no AWS imports)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from session_tracker.errors import Unprocessable

_CURSOR_MAC_BYTES = 12
MAX_CURSOR_CHARS = 2048


class InvalidCursor(Unprocessable):
    """A page token that this query did not hand out (422 naming ``cursor``)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"invalid cursor: {detail}", field="cursor")


def fingerprint(*parts: str) -> str:
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


_PROCESS_CURSOR_SECRET = secrets.token_bytes(32)
"""Page-token key when none is configured: valid within this process only (local stack, CLI)."""


def cursor_key(secret_arn: str | None) -> bytes:
    """The per-stack Secrets Manager secret (``CURSOR_SECRET_ARN``), else a random key for this
    process - never one derived from the table name (``CURSOR_SECRET`` is used before this)."""
    if not secret_arn:
        return _PROCESS_CURSOR_SECRET
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(secret_arn, max_age=3600)).encode()
