"""Per-process dependencies, built lazily once per cold start (tests can swap them)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from session_tracker.access import Authenticator, KeyLookup, Scope, SecretSource
from session_tracker.blobs import BlobStore, blob_store_from_env
from session_tracker.config import AppConfig, SecretRef, get_config
from session_tracker.privacy import Redactor
from session_tracker.store.ports import SessionStore
from session_tracker.store.settings import StoreSettings


@dataclass(frozen=True)
class Deps:
    config: AppConfig
    store: SessionStore
    blobs: BlobStore | None = None


def authenticator_for(
    config: AppConfig, *, keys: Callable[[], KeyLookup | None] | None = None, extra_ingest: tuple[SecretRef, ...] = ()
) -> Authenticator:
    """The scope authenticator of the env bootstrap tokens (and named keys, through ``keys``)."""
    api = config.api
    env: dict[Scope, list[SecretSource]] = {
        Scope.INGEST: [api.auth_token, *(ref for ref in extra_ingest if ref != api.auth_token)],
        Scope.READ: [api.read_token],
        Scope.ADMIN: [api.admin_token],
    }
    return Authenticator(env, keys=keys, clock=lambda: datetime.now(UTC))


def table_keys() -> KeyLookup | None:
    """The named-key lookup of this process: the table's store, when the function has a table."""
    if not os.environ.get("TABLE_NAME"):
        return None
    return deps().store


@cache
def authenticator() -> Authenticator:
    """This process's authenticator (built once per cold start): env tokens and named keys."""
    return authenticator_for(get_config(), keys=table_keys)


@cache
def redactor() -> Redactor:
    """The ``privacy:`` redaction of this process (built once per cold start)."""
    return Redactor.from_config(get_config().privacy)


@cache
def deps() -> Deps:
    """Config and store for this process; ``deps.cache_clear()`` rebuilds them.

    The environment is read here, once: ``TABLE_NAME`` / ``CURSOR_SECRET`` into
    :class:`StoreSettings`, ``BLOB_BUCKET`` / ``BLOB_DIR`` into the blob store.
    """
    from session_tracker.store.dynamo import DynamoStore  # boto3: only when a function needs the store

    config = get_config()
    settings = StoreSettings.from_env(os.environ, retention_days=config.session_tracking.retention_days)
    return Deps(config=config, store=DynamoStore.from_settings(settings), blobs=blob_store_from_env())


def reset() -> None:
    """Forget cached dependencies and config (tests, local stack reloads)."""
    deps.cache_clear()
    authenticator.cache_clear()
    redactor.cache_clear()
    get_config.cache_clear()
