"""Errors raised while reading a platform's payload (rendered as 422 problem+json)."""

from __future__ import annotations

from pydantic import ValidationError

from session_tracker.errors import Unprocessable


class PlatformError(Unprocessable):
    """Base of the platform adapters' errors."""


class UnknownPlatform(PlatformError):
    """``platform`` names no registered adapter."""

    def __init__(self, name: object, known: list[str]) -> None:
        super().__init__(f"platform: unknown platform {name!r}; expected one of {', '.join(known)}", field="platform")


class PayloadInvalid(PlatformError):
    """The payload does not match the platform's schema; ``field`` names the first bad field."""

    @classmethod
    def from_validation(cls, exc: ValidationError, *, prefix: str = "") -> PayloadInvalid:
        """Turn pydantic errors into one message naming each bad field (dotted path)."""
        parts: list[str] = []
        first: str | None = None
        for err in exc.errors()[:10]:
            loc = ".".join(str(p) for p in err.get("loc", ()))
            where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "body")
            first = first or where
            msg = "field required" if err.get("type") == "missing" else err.get("msg", "invalid")
            parts.append(f"{where}: {msg}")
        return cls("; ".join(parts) or "the payload does not match the schema", field=first)
