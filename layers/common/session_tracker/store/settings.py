"""Where the store lives: read once from the environment by the handler's ``deps()`` (no AWS imports)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ConfigDict, Field

from session_tracker.errors import ConfigError
from session_tracker.models import LazyModel


class StoreSettings(LazyModel):
    """``TABLE_NAME`` and ``CURSOR_SECRET`` of a function, plus the configured retention."""

    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3, max_length=255)
    cursor_secret: str | None = None
    """Key of the page-token MAC (``CURSOR_SECRET``, local and tests)."""
    cursor_secret_arn: str | None = None
    """The Secrets Manager secret holding that key (``CURSOR_SECRET_ARN``: the template's
    per-stack ``CursorSecret``), read on first use. With neither, a random key per process:
    never one derived from the table name, which anyone can guess."""
    retention_days: int = 365

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, retention_days: int = 365) -> StoreSettings:
        """Parse the environment once; :class:`ConfigError` naming ``TABLE_NAME`` when it is missing."""
        table = env.get("TABLE_NAME")
        if not table:
            raise ConfigError("TABLE_NAME is not set: the function does not know its DynamoDB table")
        arn = env.get("CURSOR_SECRET_ARN") or ""
        return cls(
            table_name=table,
            cursor_secret=env.get("CURSOR_SECRET") or None,
            cursor_secret_arn=arn if arn.startswith("arn:") else None,  # locally: the logical id, ignored
            retention_days=retention_days,
        )
