"""Per-process dependencies, built lazily once per cold start (tests can swap them)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from session_tracker.blobs import BlobStore, blob_store_from_env
from session_tracker.config import AppConfig, get_config
from session_tracker.store import DynamoStore


@dataclass(frozen=True)
class Deps:
    config: AppConfig
    store: DynamoStore
    blobs: BlobStore | None = None


@cache
def deps() -> Deps:
    """Config and store for this process; ``deps.cache_clear()`` rebuilds them."""
    config = get_config()
    return Deps(
        config=config,
        store=DynamoStore.from_env(retention_days=config.session_tracking.retention_days),
        blobs=blob_store_from_env(),
    )


def reset() -> None:
    """Forget cached dependencies and config (tests, local stack reloads)."""
    deps.cache_clear()
    get_config.cache_clear()
