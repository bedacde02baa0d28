"""Per-process dependencies, built lazily once per cold start (tests can swap them)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from session_tracker.config import AppConfig, get_config
from session_tracker.store import DynamoStore


@dataclass(frozen=True)
class Deps:
    config: AppConfig
    store: DynamoStore


@cache
def deps() -> Deps:
    """Config and store for this process; ``deps.cache_clear()`` rebuilds them."""
    config = get_config()
    return Deps(config=config, store=DynamoStore.from_env(retention_days=config.session_tracking.retention_days))


def reset() -> None:
    """Forget cached dependencies and config (tests, local stack reloads)."""
    deps.cache_clear()
    get_config.cache_clear()
