"""Per-process dependencies, built lazily once per cold start (tests can swap them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from session_tracker.blobs import BlobStore, blob_store_from_env
from session_tracker.config import AppConfig, get_config
from session_tracker.store.ports import SessionStore
from session_tracker.store.settings import StoreSettings


@dataclass(frozen=True)
class Deps:
    config: AppConfig
    store: SessionStore
    blobs: BlobStore | None = None


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
    get_config.cache_clear()
