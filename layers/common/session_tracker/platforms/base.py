"""The adapter interface every voice/chat platform implements, and what it produces.

An adapter turns one platform payload into a :class:`PlatformEvent`: the platform-neutral
facts the matching and merge rules need (ids that may identify the session or student,
call start/end, transcript, cost, the platform's own analysis). Adapters are pure: no
storage, no clock. Adding a platform is one module in this package that defines a
subclass of :class:`PlatformAdapter` and an ``adapter`` instance (see ``__init__``).
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError

from session_tracker.models import ID_PATTERN, MAX_YEAR, MIN_YEAR, UNKNOWN_STUDENT, LazyModel, to_utc
from session_tracker.platforms.exceptions import PayloadInvalid

EventKind = Literal["report", "ended", "ignored"]
"""``report``: end-of-call data to merge; ``ended``: the call ended (maybe no report will
follow); ``ignored``: acknowledged, nothing stored."""

_ID = re.compile(ID_PATTERN)
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,199}$")
_CALL_ID = re.compile(r"^[^#\s]{1,200}$")


def parse_time(value: Any) -> datetime | None:
    """Epoch seconds/ms or ISO 8601 to aware UTC; ``None`` for anything unusable.

    Platform timestamps are informational: a malformed one must not lose a transcript.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            seconds = value / 1000 if abs(value) > 1e11 else value
            result = datetime.fromtimestamp(seconds, tz=UTC)
        elif isinstance(value, str) and value.strip():
            text = value.strip()
            if re.fullmatch(r"-?\d+(\.\d+)?", text):
                return parse_time(float(text))
            result = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        elif isinstance(value, datetime):
            result = value
        else:
            return None
        result = to_utc(result)
    except (ValueError, OverflowError, OSError):
        return None
    return result if MIN_YEAR <= result.year <= MAX_YEAR else None


LenientTime = Annotated[datetime | None, BeforeValidator(parse_time)]
"""A timestamp field that tolerates epoch s/ms, ISO strings, and garbage (-> None)."""


def clean_id(value: Any, *, kind: Literal["student", "session", "call"] = "student") -> str | None:
    """The value as an id usable in keys, or ``None`` (wrong type, empty, bad characters,
    or the reserved student id ``unknown``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if kind == "student" and value == UNKNOWN_STUDENT:
        return None
    pattern = {"student": _ID, "session": _SESSION_ID, "call": _CALL_ID}[kind]
    return value if pattern.match(value) else None


_LABEL = re.compile(r"^\s*[A-Za-z][A-Za-z _-]{0,20}:\s?", re.MULTILINE)


def word_count(transcript: str | None, turns: list[Turn] | None = None) -> int:
    """Spoken words: the turns' text when known, else the transcript without ``AI:``/``User:`` labels."""
    if turns:
        return sum(len(t.text.split()) for t in turns if t.role in SPOKEN_ROLES)
    if not transcript:
        return 0
    return len(_LABEL.sub("", transcript).split())


SPOKEN_ROLES = frozenset({"assistant", "user"})


class Turn(LazyModel):
    """One turn of the conversation, platform-neutral.

    Spoken turns have ``role`` ``assistant`` or ``user``; tool calls the assistant made are
    turns with ``role`` ``tool_call`` (``name``, ``arguments``) and ``tool_result``
    (``name``, ``successful``; the result itself is not kept). ``offset`` is seconds from
    the call's start; ``words`` the platform's word timings (``{word, start, end}``, s).
    """

    role: str
    text: str = ""
    time: datetime | None = None
    offset: float | None = None
    words: list[dict[str, Any]] | None = None
    name: str | None = None
    arguments: dict[str, Any] | None = None
    tool_call_id: str | None = None
    successful: bool | None = None


class ToolCall(LazyModel):
    """A tool call the platform reports the assistant made (what ``tool_calls`` matching compares)."""

    model_config = ConfigDict(frozen=True)

    name: str
    arguments: dict[str, Any] | None = None
    """Parsed arguments; ``None`` when the platform sent none or they were not a JSON object."""
    offset: float | None = None
    """Seconds from the call's start, when the platform says (or it can be read from neighbouring turns)."""
    time: datetime | None = None
    """Wall-clock time of the call, when the platform gives one."""
    tool_call_id: str | None = None
    builtin: bool = False
    """A tool of the platform itself (end the call, transfer ...): never logged by an MCP server."""


def parse_arguments(value: Any) -> dict[str, Any] | None:
    """Tool-call arguments as a dict: platforms send a JSON object or a JSON string of one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def student_ids_of(calls: list[ToolCall]) -> list[str]:
    """The distinct ``student_id`` arguments of ``calls``, in order."""
    found: list[str] = []
    for call in calls:
        sid = clean_id((call.arguments or {}).get("student_id"))
        if sid and sid not in found:
            found.append(sid)
    return found


def tool_turns(calls: list[ToolCall]) -> list[Turn]:
    """Tool calls as ``tool_call`` turns (for platforms that report them apart from the turns)."""
    return [
        Turn(
            role="tool_call",
            time=c.time,
            offset=c.offset,
            name=c.name,
            arguments=c.arguments,
            tool_call_id=c.tool_call_id,
        )
        for c in calls
    ]


def turns_to_text(turns: list[Turn]) -> str:
    """``AI: ...`` / ``User: ...`` lines, the same layout VAPI uses for its transcript."""
    label = {"assistant": "AI", "user": "User"}
    return "\n".join(f"{label.get(t.role, t.role.capitalize())}: {t.text}" for t in turns if t.text)


def fingerprint(data: Mapping[str, Any]) -> str:
    """Stable hash of a payload (delivery de-duplication when there is no call id)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class PlatformEvent(LazyModel):
    """One platform message, reduced to what matching and merging use."""

    model_config = ConfigDict(frozen=True)

    platform: str
    kind: EventKind
    message_type: str
    delivery_id: str = Field(description="Same value for a redelivery of the same message (de-duplication).")
    call_id: str | None = None
    session_id: str | None = Field(None, description="Explicit handoff from the platform's metadata.")
    student_id: str | None = None
    student_id_source: str | None = None
    phone_number: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    event_time: datetime | None = None
    transcript: str | None = None
    turns: list[Turn] = Field(default_factory=list)
    tool_student_ids: list[str] = Field(default_factory=list)
    """``student_id`` arguments of tool calls made during the conversation."""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    """The tool calls the assistant made, in call order (``tool_calls`` matching)."""
    call_duration: float | None = None
    word_count: int | None = None
    cost: float | None = None
    """In USD (adapters convert from the platform's unit)."""
    ended_reason: str | None = None
    analysis: dict[str, Any] | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    """Platform extras kept with the session (recording URLs, cost breakdown, call type)."""

    @property
    def call_start(self) -> datetime | None:
        """When the conversation began, as best known."""
        return self.started_at or (self.turns[0].time if self.turns and self.turns[0].time else None)

    @property
    def call_end(self) -> datetime | None:
        """When the conversation ended, as best known."""
        return self.ended_at or self.event_time

    def duration_seconds(self) -> float | None:
        """The explicit duration, else ``ended_at - started_at``."""
        if self.call_duration is not None:
            return self.call_duration
        if self.started_at and self.ended_at and self.ended_at >= self.started_at:
            return round((self.ended_at - self.started_at).total_seconds(), 3)
        return None


class PlatformAdapter(ABC):
    """Reads one platform's payloads. Subclasses implement :meth:`_parse`.

    :meth:`parse` turns pydantic validation errors into :class:`PayloadInvalid`
    (422 naming the field), so adapters validate with models and never catch.
    """

    name: ClassVar[str]
    field_prefix: ClassVar[str] = ""

    def parse(self, body: Mapping[str, Any]) -> PlatformEvent:
        """The event in ``body``; raises :class:`PayloadInvalid` for a body that breaks the schema."""
        try:
            return self._parse(body)
        except ValidationError as exc:
            raise PayloadInvalid.from_validation(exc, prefix=self.field_prefix) from exc

    @abstractmethod
    def _parse(self, body: Mapping[str, Any]) -> PlatformEvent:
        """Validate ``body`` with the platform's models and normalize it."""
