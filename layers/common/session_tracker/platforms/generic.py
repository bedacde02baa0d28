"""The platform-agnostic shape (``"platform": "generic"`` on ``POST /webhook/session-data``).

Any platform that can run code at the end of a conversation (or a small job that
pulls transcripts from it) posts::

    {"platform": "generic", "student_id": "emma_smith", "session_id": null,
     "call_id": "conv-123", "started_at": "2026-01-17T14:30:00Z",
     "ended_at": "2026-01-17T14:45:00Z",
     "transcript": "AI: Hi!\\nUser: Hello"  |  [{"role": "assistant", "text": "Hi!", "time": "..."}],
     "metadata": {...}, "cost": 0.12, "ended_reason": "user-hung-up",
     "analysis": {...}, "delivery_id": "optional id; a retried id is stored once"}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator

from session_tracker.models import FiniteNumber, LazyModel, StudentId, UtcDatetime
from session_tracker.platforms.base import (
    PlatformAdapter,
    PlatformEvent,
    Turn,
    fingerprint,
    turns_to_text,
    word_count,
)

ASSISTANT_ROLES = frozenset({"assistant", "ai", "bot", "agent", "tutor", "model"})
USER_ROLES = frozenset({"user", "student", "human", "customer", "caller"})

CallId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^#\s]+$")]
SessionIdField = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,199}$")]


def normalize_role(role: str) -> str:
    """``assistant`` / ``user`` for the usual synonyms; anything else lower-cased as given."""
    key = role.strip().lower()
    if key in ASSISTANT_ROLES:
        return "assistant"
    if key in USER_ROLES:
        return "user"
    return key or "unknown"


class TurnIn(LazyModel):
    model_config = ConfigDict(extra="ignore")

    role: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    text: str
    time: UtcDatetime | None = None


class GenericSessionData(LazyModel):
    """``POST /webhook/session-data`` with ``platform: generic``."""

    model_config = ConfigDict(extra="ignore")

    platform: Literal["generic"] = "generic"
    student_id: StudentId | None = None
    session_id: SessionIdField | None = None
    call_id: CallId | None = None
    started_at: UtcDatetime
    ended_at: UtcDatetime
    transcript: str | list[TurnIn] = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    cost: FiniteNumber | None = Field(None, ge=0)
    ended_reason: Annotated[str, StringConstraints(max_length=500)] | None = None
    analysis: dict[str, Any] | None = None
    delivery_id: CallId | None = None

    @field_validator("ended_at")
    @classmethod
    def _after_start(cls, value: datetime, info: Any) -> datetime:
        start = info.data.get("started_at")
        if start is not None and value < start:
            raise ValueError("must not be before started_at")
        return value


def event_from(
    data: GenericSessionData | Any,
    *,
    platform: str,
    turns: list[Turn],
    transcript: str,
    raw: Mapping[str, Any],
    details: dict[str, Any] | None = None,
) -> PlatformEvent:
    """The :class:`PlatformEvent` of a generic-shaped payload (shared with similar adapters)."""
    metadata = data.metadata or {}
    delivery = data.delivery_id or fingerprint(raw)
    return PlatformEvent(
        platform=platform,
        kind="report",
        message_type="session-data",
        delivery_id=f"{platform}:{delivery}",
        call_id=data.call_id,
        session_id=data.session_id,
        student_id=data.student_id,
        student_id_source="body" if data.student_id else None,
        phone_number=metadata.get("phone_number") if isinstance(metadata.get("phone_number"), str) else None,
        started_at=data.started_at,
        ended_at=data.ended_at,
        event_time=data.ended_at,
        transcript=transcript,
        turns=turns,
        call_duration=round((data.ended_at - data.started_at).total_seconds(), 3),
        word_count=word_count(transcript, turns),
        cost=data.cost,
        ended_reason=data.ended_reason,
        analysis=data.analysis or None,
        details={**({"metadata": metadata} if metadata else {}), **(details or {})},
    )


class GenericAdapter(PlatformAdapter):
    """The documented platform-agnostic shape."""

    name = "generic"

    def _parse(self, body: Mapping[str, Any]) -> PlatformEvent:
        data = GenericSessionData.model_validate(body)
        if isinstance(data.transcript, str):
            turns: list[Turn] = []
            transcript = data.transcript
        else:
            turns = [Turn(role=normalize_role(t.role), text=t.text, time=t.time) for t in data.transcript]
            transcript = turns_to_text(turns)
        return event_from(data, platform=self.name, turns=turns, transcript=transcript, raw=body)


adapter = GenericAdapter()
