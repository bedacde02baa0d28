"""Pydantic models: what the API accepts and returns, and the domain's records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$"

Identifier = Annotated[
    str,
    StringConstraints(pattern=ID_PATTERN),
    Field(description="Letters, digits and _ . @ + - ; 1-128 characters, starting with a letter or digit."),
]
"""Ids that become part of keys and URLs: no '#', '/', spaces or control characters."""

UNKNOWN_STUDENT = "unknown"
"""Student id of sessions made from platform data whose student is not known (``unmatched``).
Reserved: no caller may log calls or send platform data as this student."""


def _not_reserved(value: str) -> str:
    if value == UNKNOWN_STUDENT:
        raise ValueError(f"{UNKNOWN_STUDENT!r} is reserved for platform data whose student is not known")
    return value


StudentId = Annotated[Identifier, AfterValidator(_not_reserved)]
"""A student id a caller may state: an :data:`Identifier` other than the reserved ``unknown``."""

NUMBER_LIMIT = 1e15
"""Largest magnitude of a measured number (sizes, costs, durations in ms): exact as a JSON
double and far inside DynamoDB's number range, so it can never fail a write."""
MAX_CALL_SECONDS = 366 * 24 * 3600
"""Longest call or tool-call duration accepted (a year): keeps every duration a valid ``timedelta``."""


def _not_subnormal(value: float) -> float:
    """Magnitudes below 1e-100 are 0 (DynamoDB holds nothing under 1e-130; 1e-320 ms is 0 ms)."""
    return 0.0 if abs(value) < 1e-100 else value


FiniteNumber = Annotated[
    float, Field(allow_inf_nan=False, ge=-NUMBER_LIMIT, le=NUMBER_LIMIT), AfterValidator(_not_subnormal)
]
"""A float that is finite and within :data:`NUMBER_LIMIT` (tiny magnitudes become 0); anything
else is a 422 naming the field."""
Count = Annotated[int, Field(ge=0, le=2**53 - 1)]
"""A non-negative integer that JSON, Python and DynamoDB all hold exactly."""

SessionStatus = Literal["active", "closed", "completed", "unmatched", "merged"]
MatchStrategy = Literal["explicit", "tool_calls", "student_id", "time_window", "none", "manual"]


def to_utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive input is taken to be UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """Fixed-width, sortable UTC timestamp with microseconds: ``2026-01-17T14:30:05.000000Z``."""
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    """Inverse of :func:`iso` (accepts any ISO 8601 form)."""
    return to_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def _epoch_or_iso(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError("epoch timestamp out of range") from exc
    return value


MIN_YEAR, MAX_YEAR = 1970, 2200


def _in_range(value: datetime) -> datetime:
    """UTC, and within years 1970-2200: stored timestamps are fixed-width sortable text."""
    try:
        value = to_utc(value)
    except OverflowError as exc:
        raise ValueError(f"timestamp must be between {MIN_YEAR} and {MAX_YEAR}") from exc
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"timestamp must be between {MIN_YEAR} and {MAX_YEAR}")
    return value


UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_epoch_or_iso),
    BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v),
    AfterValidator(_in_range),
    PlainSerializer(iso, return_type=str),
]


class LazyModel(BaseModel):
    """Base of our models: validators and serializers are built on first use, not at import
    (a handler's cold start builds only the models its first request touches)."""

    model_config = ConfigDict(defer_build=True)


class Problem(LazyModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
    required_scope: str | None = None
    errors: list[dict[str, Any]] | None = None


class InteractionIn(LazyModel):
    """One MCP tool call as posted by the MCP-side client."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    student_id: StudentId
    function: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    timestamp: UtcDatetime | None = Field(None, description="When the call happened; defaults to receive time.")
    arguments: dict[str, Any] = Field(default_factory=dict)
    data_provided: list[Annotated[str, StringConstraints(max_length=200)]] = Field(default_factory=list, max_length=200)
    subjects: list[Annotated[str, StringConstraints(max_length=200)]] = Field(default_factory=list, max_length=200)
    response_size: Count | None = None
    duration_ms: FiniteNumber | None = Field(None, ge=0, le=MAX_CALL_SECONDS * 1000)
    is_error: bool = False
    interaction_id: Identifier | None = Field(None, description="Client id; a retried id is stored once.")
    platform: Annotated[str, StringConstraints(max_length=64)] | None = None
    call_id: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^#\s]+$")] | None = None
    session_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,199}$")] | None = Field(
        None, description="Explicit session handoff: always wins over the gap rule."
    )

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return to_utc(value) if value is not None else None


class InteractionBatch(LazyModel):
    """``{"interactions": [...]}``: up to 25 tool calls in one request."""

    interactions: list[InteractionIn] = Field(min_length=1, max_length=25)


class IngestResult(LazyModel):
    session_id: str
    interaction_id: str
    new_session: bool
    duplicate: bool = False


class IngestBatchResult(LazyModel):
    results: list[IngestResult]


class Interaction(LazyModel):
    """A logged tool call as stored."""

    interaction_id: str
    student_id: str
    function: str
    timestamp: UtcDatetime
    received_at: UtcDatetime
    arguments: dict[str, Any] = Field(default_factory=dict)
    data_provided: list[str] = Field(default_factory=list)
    subjects: list[str] = Field(default_factory=list)
    response_size: int | None = None
    duration_ms: float | None = None
    is_error: bool = False
    platform: str | None = None
    call_id: str | None = None
    client_id: bool = False
    """True when the client supplied the interaction id (so retries must be de-duplicated)."""
    arguments_blob: dict[str, Any] | None = None
    """Pointer to the arguments in blob storage when they are too large for the item
    (``arguments`` is then empty until :func:`blobs.hydrate` reads them back)."""


class RecentCall(LazyModel):
    """A stored call as the ingest read sees it: its key and session."""

    timestamp: UtcDatetime
    interaction_id: str
    session_id: str


class Head(LazyModel):
    """The student's current session pointer."""

    student_id: str
    session_id: str
    session_start: UtcDatetime
    last_activity: UtcDatetime
    call_id: str | None = None
    ended_at: UtcDatetime | None = None
    """The voice call ended here (platform data): later calls start a new session."""
    closed_at: UtcDatetime | None = None
    """The idle closer closed the session (wall clock). A later call within the timeout of
    ``last_activity`` (event time) still belongs to it and reopens it."""
    version: int | None = None
    """Change token of the stored HEAD (storage v2): boundary writes are conditioned on it.
    ``None``: no v2 HEAD is stored (none at all, or only a v1 one)."""
    recent: list[RecentCall] = Field(default_factory=list)
    """The student's newest calls as read with the HEAD (newest first): the look-back that
    catches a retried ``interaction_id`` sent with another timestamp."""


class SessionMeta(LazyModel):
    """A session's own record (without interactions)."""

    session_id: str
    student_id: str
    start_time: UtcDatetime
    last_activity: UtcDatetime
    end_time: UtcDatetime | None = None
    status: SessionStatus = "active"
    platform: str | None = None
    interaction_count: int = 0
    subjects: list[str] = Field(default_factory=list)
    data_provided: list[str] = Field(default_factory=list)
    call_ids: list[str] = Field(default_factory=list)
    matching: dict[str, Any] | None = None
    conversation: dict[str, Any] | None = None
    vapi_metadata: dict[str, Any] | None = None
    platform_metadata: dict[str, Any] | None = None
    session_summary: dict[str, Any] | None = None
    analysis: dict[str, Any] | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    layout: int | None = None
    """Storage layout of its calls: 2 = in the student's partition; ``None`` = v1 (``SESSION#{id}``)."""
    merged_from: list[str] = Field(default_factory=list)
    """Sessions folded into this one (a late call bridged the gap); their calls count here."""
    merged_into: str | None = None
    """Set on a ``merged`` session: the session that now holds its calls."""


class ExportInteraction(LazyModel):
    timestamp: UtcDatetime
    function: str
    data_provided: list[str] = Field(default_factory=list)
    arguments: dict[str, Any] = Field(default_factory=dict)
    response_size: int = 0
    duration_ms: float = 0
    is_error: bool = False
    subjects: list[str] = Field(default_factory=list)
    interaction_id: str | None = None
    call_id: str | None = None


class SessionSummary(LazyModel):
    duration_estimated: str
    duration_seconds: float | None = Field(
        None, description="First to last activity (calls and conversation), in seconds; see session_tracker.length."
    )
    data_requests: int
    subjects_accessed: list[str]


class SessionExport(LazyModel):
    """The documented per-session JSON shape (``GET /sessions/{id}``, ``export``)."""

    session_id: str
    student_id: str
    start_time: UtcDatetime
    end_time: UtcDatetime | None = None
    platform: str | None = None
    status: SessionStatus
    mcp_interactions: list[ExportInteraction] = Field(default_factory=list)
    conversation: dict[str, Any] | None = None
    vapi_metadata: dict[str, Any] | None = None
    platform_metadata: dict[str, Any] | None = Field(
        None, description="Metadata from platforms other than VAPI (generic, superinterface adapters)."
    )
    session_summary: SessionSummary
    matching: dict[str, Any] = Field(default_factory=lambda: {"strategy": "none"})
    analysis: dict[str, Any] | None = None
    last_activity: UtcDatetime | None = None


class Health(LazyModel):
    """``GET /health``: liveness and the database's state (public: no names, no secrets)."""

    status: Literal["ok", "unavailable"] = "ok"
    service: str = "tutor-session-tracker"
    version: str
    store: Literal["ok", "unreachable"] = "ok"
    checked_at: UtcDatetime | None = None
    """When the database was last reached for this answer (checks are cached for a few seconds)."""


class SessionRef(LazyModel):
    """A session found through the day index: enough to read it."""

    session_id: str
    student_id: str
    start_time: UtcDatetime


# ------------------------------------------------------- lifecycle and analysis
class AnalysisState(LazyModel):
    """A session record as the analyzer sees it: status and the pending-analysis flags."""

    session_id: str
    student_id: str
    status: SessionStatus
    start_time: UtcDatetime
    pending: bool = False
    content_updated_at: str | None = None
    """Exactly as stored: conditional writes compare it as text."""
    trigger: str | None = None
    analysis: dict[str, Any] | None = None


class AnalysisUsage(LazyModel):
    """One UTC day of analysis spend (the ``max_sessions_per_day`` counter and totals)."""

    date: str
    sessions: int = 0
    """Analysis slots taken (sessions sent to the model) against ``max_sessions_per_day``."""
    analyses: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    max_sessions_per_day: int | None = None


# ------------------------------------------------------- platform data (webhooks)


class CallLink(LazyModel):
    """``CALL#{call_id}``: which session a platform call belongs to."""

    call_id: str
    session_id: str
    student_id: str


class PlatformWrite(LazyModel):
    """What a platform message changes on a session record (computed by ``matching``).

    ``expected_version`` is the session's ``platform_version`` as read (``None``: never
    merged); the write succeeds only if no other platform write happened in between.
    """

    session_id: str
    student_id: str
    delivery_id: str
    platform: str
    call_id: str | None = None
    status: SessionStatus
    end_time: UtcDatetime
    conversation: dict[str, Any] | None = None
    vapi_metadata: dict[str, Any] | None = None
    platform_metadata: dict[str, Any] | None = None
    matching: dict[str, Any] | None = None
    request_analysis: bool = True
    link_call: bool = True
    """Point ``CALL#{call_id}`` at this session (not for late data kept apart from its call's session)."""
    head_ended_at: UtcDatetime | None = None
    """Set the student's HEAD ``ended_at`` (only while it points at this session)."""
    expected_version: int | None = None
    now: UtcDatetime


class PlatformMove(LazyModel):
    """An unmatched session's platform data moving to a session (``POST /sessions/{id}/assign``).

    Applied in one transaction: the target written (``create``: a new record), the source
    deleted only while it is still unmatched and unchanged, its calls' links pointed at the
    target, and the assignment remembered (a second assignment of the source fails).
    """

    source: SessionMeta
    source_version: int | None
    target: SessionMeta
    """The target record as it must be after the move."""
    create: bool
    target_version: int | None = None
    """The target's ``platform_version`` as read (optimistic concurrency); ignored when ``create``."""
    head_ended_at: UtcDatetime | None = None
    """Set the student's HEAD ``ended_at`` (only when it points at the target)."""
    now: UtcDatetime
