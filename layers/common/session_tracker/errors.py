"""Errors: one :class:`DomainError` base that the HTTP layer renders as problem+json."""

from __future__ import annotations

from typing import ClassVar


class ConfigError(Exception):
    """The configuration is invalid; the message names the bad key."""


class DomainError(Exception):
    """Base of every error that maps to an HTTP status (RFC 9457 problem)."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    type: ClassVar[str] = "about:blank"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    @property
    def extra(self) -> dict[str, str]:
        """More problem members for this error (e.g. the scope a 403 lacks)."""
        return {}


class BadRequest(DomainError):
    status = 400
    title = "Malformed request"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    """A known credential without the scope the route needs; the problem names that scope."""

    status = 403
    title = "Forbidden"

    def __init__(self, detail: str, *, scope: str) -> None:
        super().__init__(detail)
        self.scope = scope

    @property
    def extra(self) -> dict[str, str]:
        return {"required_scope": self.scope}


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(DomainError):
    status = 413
    title = "Payload too large"


class Unprocessable(DomainError):
    status = 422
    title = "Validation failed"


class TooManyRequests(DomainError):
    status = 429
    title = "Too many requests"


class ServiceUnavailable(DomainError):
    status = 503
    title = "Service unavailable"


# Outcomes of conditional writes that the domain decides about (not HTTP errors).
class StoreConflict(Exception):
    """A conditional write lost a race."""


class HeadChanged(StoreConflict):
    """Someone else moved the student's current-session pointer first."""


class SessionIdTaken(StoreConflict):
    """A session with that id already exists."""


class DuplicateInteraction(StoreConflict):
    """This interaction id was stored before."""

    def __init__(self, interaction_id: str, session_id: str | None = None) -> None:
        super().__init__(interaction_id)
        self.interaction_id = interaction_id
        self.session_id = session_id


class DuplicateDelivery(StoreConflict):
    """This platform delivery (e.g. a VAPI report redelivered) was stored before."""

    def __init__(self, delivery_id: str, session_id: str | None = None) -> None:
        super().__init__(delivery_id)
        self.delivery_id = delivery_id
        self.session_id = session_id
