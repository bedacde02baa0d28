"""Who may do what: scopes, credentials and the route → scope rule.

Three scopes, ordered: ``ingest`` < ``read`` < ``admin``; a credential of a higher
scope may do what a lower one may (CONTRACT.md v2, "Identity and access").

A credential is a bearer token: one of the env bootstrap tokens (``INGEST_TOKEN``,
``READ_TOKEN``, ``ADMIN_TOKEN``; SSM parameters in AWS) or a named API key (stored
only as its SHA-256 in the table, looked up through :class:`KeyLookup`). Unknown
credentials are 401; a known one without the scope a route needs is 403 naming
that scope.

This module has no AWS imports: the key store is a port, the clock is injected.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from session_tracker.errors import Forbidden, ServiceUnavailable, Unauthorized


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Scope) -> bool:
        """True when a credential of this scope may do what ``needed`` permits."""
        return self.rank >= needed.rank


_RANK = {Scope.INGEST: 1, Scope.READ: 2, Scope.ADMIN: 3}
ENV_TOKEN_NAMES: dict[Scope, str] = {Scope.INGEST: "INGEST_TOKEN", Scope.READ: "READ_TOKEN", Scope.ADMIN: "ADMIN_TOKEN"}

KEY_PREFIX = "stk_"
"""Named API keys start with this, so a bearer that is not one never costs a table read."""

KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
"""Key names: letters, digits, ``_`` and ``-`` (no ``.``: the sign-in cookie uses it as a separator)."""

PUBLIC_ROUTES = frozenset({("GET", "/health"), ("GET", "/openapi.json")})
SIGN_IN_PATH = "/ui/sign-in"

_INGEST_ROUTES = frozenset({("POST", "/interactions"), ("POST", "/webhook/session-data")})
_READ_POSTS = (re.compile(r"^/sessions/[^/]+/analyze$"),)
_ADMIN_GETS = (re.compile(r"^/audit$"), re.compile(r"^/keys(/.*)?$"))


def required_scope(method: str, path: str) -> Scope | None:
    """The least scope that serves ``method path``; ``None`` for the public routes.

    Fail-safe: a route this rule does not know (a new ``POST``/``DELETE``) needs ``admin``.
    """
    method = method.upper()
    if (method, path) in PUBLIC_ROUTES or (method == "HEAD" and ("GET", path) in PUBLIC_ROUTES):
        return None
    if (method, path) in _INGEST_ROUTES:
        return Scope.INGEST
    if method in ("GET", "HEAD"):
        return Scope.ADMIN if any(p.match(path) for p in _ADMIN_GETS) else Scope.READ
    if method == "POST" and (path == SIGN_IN_PATH or any(p.match(path) for p in _READ_POSTS)):
        return Scope.READ
    return Scope.ADMIN


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a credential: what the table stores, and the sign-in cookie's MAC key."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def secrets_equal(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``actor`` is the key's name or ``env:<scope>``."""

    actor: str
    scope: Scope
    credential_hash: str
    key_name: str | None = None

    def as_context(self) -> dict[str, str]:
        return {"actor": self.actor, "scope": self.scope.value}


@dataclass(frozen=True)
class KeyRecord:
    """A named API key as the authenticator sees it (never the key itself)."""

    name: str
    scope: Scope
    key_hash: str
    revoked: bool = False
    last_used: datetime | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None


class KeyLookup(Protocol):
    """The part of the key store authentication needs."""

    def find_key(self, key_hash: str) -> KeyRecord | None: ...

    def find_key_by_name(self, name: str) -> KeyRecord | None: ...

    def touch_key(self, name: str, *, at: datetime) -> None: ...


class SecretSource(Protocol):
    def get(self) -> str | None: ...


REVOCATION_SECONDS = 30
"""Named-key lookups are cached this long per warm Lambda: a revoked key is refused within 60 s."""

LAST_USED_EVERY = timedelta(minutes=5)
"""``last_used`` is written at most once per key per this long per process (no write per request)."""

_CACHE_MAX = 1024


class Authenticator:
    """Turn a bearer token into a :class:`Principal` (or ``None``: unknown)."""

    def __init__(
        self,
        env_tokens: Mapping[Scope, list[SecretSource]],
        *,
        keys: Callable[[], KeyLookup | None] | None = None,
        clock: Callable[[], datetime],
        cache_seconds: float = REVOCATION_SECONDS,
    ) -> None:
        self._env = env_tokens
        self._keys = keys or (lambda: None)
        self._clock = clock
        self._ttl = timedelta(seconds=cache_seconds)
        self._lock = threading.Lock()
        self._by_hash: dict[str, tuple[datetime, KeyRecord | None]] = {}
        self._by_name: dict[str, tuple[datetime, KeyRecord | None]] = {}
        self._touched: dict[str, datetime] = {}

    # ------------------------------------------------------------------ env tokens
    def env_secrets(self) -> dict[Scope, list[str]]:
        out: dict[Scope, list[str]] = {}
        for scope, refs in self._env.items():
            values = [v for v in (ref.get() for ref in refs) if v]
            if values:
                out[scope] = values
        return out

    def _env_principal(self, token: str) -> Principal | None:
        found: Scope | None = None
        for scope, values in self.env_secrets().items():
            for value in values:
                # every configured token is compared (constant time each), no early exit
                if secrets_equal(token, value) and (found is None or scope.allows(found)):
                    found = scope
        if found is None:
            return None
        return Principal(actor=f"env:{found.value}", scope=found, credential_hash=token_hash(token))

    def env_hash(self, scope: Scope) -> str | None:
        """The hash of the (first) env token of ``scope``, for sign-in cookies."""
        values = self.env_secrets().get(scope)
        return token_hash(values[0]) if values else None

    # ------------------------------------------------------------------ named keys
    def _cached(
        self, cache: dict[str, tuple[datetime, KeyRecord | None]], key: str, load: Callable[[], KeyRecord | None]
    ) -> KeyRecord | None:
        now = self._clock()
        with self._lock:
            hit = cache.get(key)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        record = load()
        with self._lock:
            if len(cache) >= _CACHE_MAX:
                cache.pop(next(iter(cache)))
            cache[key] = (now, record)
        return record

    def named_key(self, token: str) -> KeyRecord | None:
        store = self._keys()
        if store is None or not token.startswith(KEY_PREFIX):
            return None
        digest = token_hash(token)
        record = self._cached(self._by_hash, digest, lambda: store.find_key(digest))
        if record is None or record.revoked or not secrets_equal(record.key_hash, digest):
            return None
        return record

    def key_by_name(self, name: str) -> KeyRecord | None:
        store = self._keys()
        if store is None:
            return None
        record = self._cached(self._by_name, name, lambda: store.find_key_by_name(name))
        return None if record is None or record.revoked else record

    def forget(self, name: str) -> None:
        """Drop a key from this process's caches (the process that revokes it refuses it at once)."""
        with self._lock:
            for cache in (self._by_hash, self._by_name):
                for key, (_, record) in list(cache.items()):
                    if key == name or (record is not None and record.name == name):
                        del cache[key]
            self._touched.pop(name, None)

    def _touch(self, record: KeyRecord) -> None:
        """Record use at most once per :data:`LAST_USED_EVERY`; never fails the request."""
        now = self._clock()
        with self._lock:
            last = self._touched.get(record.name) or record.last_used
            if last is not None and now - last < LAST_USED_EVERY:
                return
            self._touched[record.name] = now
        store = self._keys()
        if store is None:
            return
        try:
            store.touch_key(record.name, at=now)
        except Exception:
            from session_tracker.observability import logger

            logger.warning("could not record key use", extra={"key_name": record.name})

    # ------------------------------------------------------------------ the entry point
    def authenticate(self, token: str) -> Principal | None:
        principal = self._env_principal(token)
        if principal is not None:
            return principal
        record = self.named_key(token)
        if record is None:
            return None
        self._touch(record)
        return Principal(actor=record.name, scope=record.scope, credential_hash=record.key_hash, key_name=record.name)

    def configured(self) -> bool:
        return bool(self.env_secrets()) or self._keys() is not None

    def require(self, token: str | None, needed: Scope) -> Principal:
        """The caller, or 401 (missing/unknown) / 403 (lacks ``needed``)."""
        if not token:
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        if not self.env_secrets() and self._keys() is None:
            raise ServiceUnavailable("no credentials are configured on the server")
        principal = self.authenticate(token)
        if principal is None:
            raise Unauthorized("unknown credential")
        if not principal.scope.allows(needed):
            raise Forbidden(
                f"this credential ({principal.actor}) has scope {principal.scope.value!r}; "
                f"this route needs scope {needed.value!r}",
                scope=needed.value,
            )
        return principal


# ------------------------------------------------------------------ principal in the event
_CONTEXT_KEY = "session_tracker"


def attach(event: dict[str, Any], principal: Principal) -> None:
    """Remember who is calling on the event, like an API Gateway authorizer context."""
    context = event.setdefault("requestContext", {})
    authorizer = context.setdefault("authorizer", {})
    if not isinstance(authorizer, dict):
        authorizer = context["authorizer"] = {}
    authorizer.setdefault("lambda", {})[_CONTEXT_KEY] = principal.as_context()


def caller(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(actor, scope)`` the gate attached to ``event``, if any."""
    found = ((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda", {}).get(_CONTEXT_KEY)
    if not isinstance(found, dict):
        return None
    return str(found.get("actor")), str(found.get("scope"))


__all__ = [
    "ENV_TOKEN_NAMES",
    "KEY_NAME_PATTERN",
    "KEY_PREFIX",
    "Authenticator",
    "KeyLookup",
    "KeyRecord",
    "Principal",
    "Scope",
    "SecretSource",
    "attach",
    "caller",
    "required_scope",
    "secrets_equal",
    "token_hash",
]
