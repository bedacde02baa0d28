"""ElevenLabs Agents post-call webhooks (``POST /webhook/elevenlabs``).

The body is ``{"type": ..., "event_timestamp": <unix s>, "data": {...}}``.

- ``post_call_transcription``: ``data`` is the conversation (``GetConversationResponseModel``
  in the ``elevenlabs`` SDK); merged into a session. Turns are ``transcript[]`` (``role``
  user/agent, ``message``, ``time_in_call_secs``); tool calls are each turn's
  ``tool_calls[]`` (``tool_name``, ``params_as_json``), results ``tool_results[]``.
  There is no transcript string: it is built from the messages.
- ``post_call_audio``: acknowledged, not stored (the recording is not kept here).
- ``call_initiation_failure``: acknowledged, not stored. The outbound call never
  connected, so there is no conversation, and the payload names no student (only the
  ``conversation_id`` and phone numbers): a session would only be an empty entry in the
  unmatched queue. It is counted (``CallInitiationFailures``) and logged with its
  ``failure_reason``. No existing session is changed: nothing was logged for a call that
  never started.
- anything else: acknowledged, not stored.

Units: ``metadata.start_time_unix_secs`` unix seconds, ``call_duration_secs`` seconds,
``metadata.cost`` **credits** (kept as ``cost_credits``, not money), ``metadata.cost_fiat``
USD (the session's ``cost_usd``; else ``charging.llm_price + charging.platform_price``).
The student is ``conversation_initiation_client_data.dynamic_variables.student_id``, else
``user_id`` (of the client data, then of ``data``); ``session_id`` in the dynamic variables
is an explicit handoff.

Authentication (:func:`verify_signature`): ``ElevenLabs-Signature: t=<unix s>,v0=<hex
HMAC-SHA256(secret, "{t}.{raw body}")>`` as the SDK's ``construct_event`` computes it, but
compared in constant time (the SDK uses ``!=``) and with the 30-minute tolerance in both
directions (the SDK bounds only the past).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ConfigDict, Field

from session_tracker.errors import ServiceUnavailable, Unauthorized
from session_tracker.http import tokens_equal
from session_tracker.models import LazyModel
from session_tracker.platforms.base import (
    LenientTime,
    PlatformAdapter,
    PlatformEvent,
    ToolCall,
    Turn,
    clean_id,
    parse_arguments,
    student_ids_of,
    turns_to_text,
    word_count,
)

SIGNATURE_HEADER = "elevenlabs-signature"
TOLERANCE = timedelta(minutes=30)
TRANSCRIPTION = "post_call_transcription"
FAILURE = "call_initiation_failure"
_ROLES = {"agent": "assistant", "user": "user"}


class _Open(LazyModel):
    model_config = ConfigDict(extra="allow")


class ElevenToolCall(_Open):
    tool_name: str | None = None
    request_id: str | None = None
    params_as_json: Any = None
    type: str | None = None


class ElevenToolResult(_Open):
    tool_name: str | None = None
    request_id: str | None = None
    is_error: bool | None = None


class ElevenTurn(_Open):
    role: str = Field(min_length=1)
    message: str | None = None
    time_in_call_secs: float | None = None
    tool_calls: list[ElevenToolCall] | None = None
    tool_results: list[ElevenToolResult] | None = None


class ElevenCharging(_Open):
    llm_price: float | None = None
    platform_price: float | None = None


class ElevenMetadata(_Open):
    start_time_unix_secs: LenientTime = None
    call_duration_secs: float | None = None
    cost: float | None = Field(None, description="Credits.")
    cost_fiat: float | None = Field(None, description="USD.")
    charging: ElevenCharging | None = None
    termination_reason: str | None = None
    phone_call: dict[str, Any] | None = None


class ElevenClientData(_Open):
    dynamic_variables: dict[str, Any] | None = None
    user_id: Any = None


class ElevenConversation(_Open):
    """``data`` of ``post_call_transcription`` (fields this system reads)."""

    conversation_id: str = Field(min_length=1)
    agent_id: str | None = None
    agent_name: str | None = None
    status: str | None = None
    user_id: Any = None
    transcript: list[ElevenTurn] = Field(default_factory=list)
    metadata: ElevenMetadata = Field(default_factory=ElevenMetadata)
    analysis: dict[str, Any] | None = None
    conversation_initiation_client_data: ElevenClientData | None = None


class ElevenEnvelope(LazyModel):
    model_config = ConfigDict(extra="ignore")

    type: str = Field(min_length=1, max_length=200)
    event_timestamp: LenientTime = None
    data: dict[str, Any] | None = None


class ElevenTranscription(LazyModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    event_timestamp: LenientTime = None
    data: ElevenConversation


# ------------------------------------------------------------------------ parsing
def _turns_and_tools(raw: list[ElevenTurn], start: datetime | None) -> tuple[list[Turn], list[ToolCall]]:
    turns: list[Turn] = []
    calls: list[ToolCall] = []
    for turn in raw:
        offset = turn.time_in_call_secs
        at = start + timedelta(seconds=offset) if start is not None and offset is not None else None
        if turn.role in _ROLES and (turn.message or "").strip():
            turns.append(Turn(role=_ROLES[turn.role], text=turn.message or "", offset=offset, time=at))
        for tc in turn.tool_calls or []:
            if not tc.tool_name:
                continue
            call = ToolCall(
                name=tc.tool_name,
                arguments=parse_arguments(tc.params_as_json),
                offset=offset,
                time=at,
                tool_call_id=tc.request_id,
                builtin=tc.type == "system",
            )
            calls.append(call)
            turns.append(
                Turn(
                    role="tool_call",
                    name=call.name,
                    arguments=call.arguments,
                    tool_call_id=call.tool_call_id,
                    offset=offset,
                    time=at,
                )
            )
        for tr in turn.tool_results or []:
            turns.append(
                Turn(
                    role="tool_result",
                    name=tr.tool_name,
                    tool_call_id=tr.request_id,
                    successful=None if tr.is_error is None else not tr.is_error,
                    offset=offset,
                    time=at,
                )
            )
    return turns, calls


def _student(data: ElevenConversation) -> tuple[str | None, str | None, str | None]:
    """``(student_id, source, session_id)`` from the client data."""
    client = data.conversation_initiation_client_data or ElevenClientData()
    variables = client.dynamic_variables or {}
    session_id = clean_id(variables.get("session_id"), kind="session")
    if sid := clean_id(variables.get("student_id")):
        return sid, "dynamic_variables", session_id
    for source, value in (("user_id", client.user_id), ("user_id", data.user_id)):
        if sid := clean_id(value):
            return sid, source, session_id
    return None, None, session_id


def _cost_usd(meta: ElevenMetadata) -> float | None:
    if meta.cost_fiat is not None:
        return round(meta.cost_fiat, 6)
    charging = meta.charging
    if charging and charging.llm_price is not None and charging.platform_price is not None:
        return round(charging.llm_price + charging.platform_price, 6)
    return None


class ElevenLabsAdapter(PlatformAdapter):
    """ElevenLabs Agents webhook bodies."""

    name = "elevenlabs"

    def _parse(self, body: Mapping[str, Any]) -> PlatformEvent:
        envelope = ElevenEnvelope.model_validate(body)
        if envelope.type != TRANSCRIPTION:
            other = envelope.data or {}
            return PlatformEvent(
                platform=self.name,
                kind="ignored",
                message_type=envelope.type,
                delivery_id="",
                call_id=clean_id(other.get("conversation_id"), kind="call"),
                ended_reason=str(other["failure_reason"])[:200]
                if envelope.type == FAILURE and other.get("failure_reason")
                else None,
            )
        data = ElevenTranscription.model_validate(body).data
        meta = data.metadata
        start = meta.start_time_unix_secs
        turns, tool_calls = _turns_and_tools(data.transcript, start)
        transcript = turns_to_text(turns)
        student_id, source, session_id = _student(data)
        call_id = clean_id(data.conversation_id, kind="call")
        duration = float(meta.call_duration_secs) if meta.call_duration_secs is not None else None
        end = start + timedelta(seconds=duration) if start is not None and duration is not None else None
        phone = meta.phone_call or {}
        details = {
            "agent_id": data.agent_id,
            "agent_name": data.agent_name,
            "conversation_status": data.status,
            "cost_credits": meta.cost,
            "phone_direction": phone.get("direction"),
        }
        return PlatformEvent(
            platform=self.name,
            kind="report",
            message_type=envelope.type,
            delivery_id=f"elevenlabs:{call_id or data.conversation_id}:{envelope.type}",
            call_id=call_id,
            session_id=session_id,
            student_id=student_id,
            student_id_source=source,
            phone_number=phone.get("external_number") if isinstance(phone.get("external_number"), str) else None,
            started_at=start,
            ended_at=end,
            event_time=end or envelope.event_timestamp,
            transcript=transcript,
            turns=turns,
            tool_student_ids=student_ids_of(tool_calls),
            tool_calls=tool_calls,
            call_duration=duration,
            word_count=word_count(transcript, turns),
            cost=_cost_usd(meta),
            ended_reason=meta.termination_reason,
            analysis=data.analysis or None,
            details={k: v for k, v in details.items() if v not in (None, [], {})},
        )


adapter = ElevenLabsAdapter()


# ------------------------------------------------------------------ authentication
def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``ElevenLabs-Signature`` value for ``body`` at unix second ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v0={mac}"


def verify_signature(
    headers: Mapping[str, str], body: bytes, *, secret: str | None, now: datetime, tolerance: timedelta = TOLERANCE
) -> None:
    """Raise :class:`Unauthorized` unless ``ElevenLabs-Signature`` signs ``body``.

    ``headers`` must have lower-case names. :class:`ServiceUnavailable` when no secret is configured.
    """
    if not secret:
        raise ServiceUnavailable("the ElevenLabs webhook secret (ELEVENLABS_WEBHOOK_SECRET) is not configured")
    value = headers.get(SIGNATURE_HEADER)
    if not value:
        raise Unauthorized("missing ElevenLabs-Signature header")
    stamp: str | None = None
    given: str | None = None
    for part in value.split(","):
        part = part.strip()
        if part.startswith("t="):
            stamp = part[2:]
        elif part.startswith("v0="):
            given = part[3:]
    if not stamp or not given or not stamp.isdigit() or len(stamp) > 12:
        raise Unauthorized("malformed ElevenLabs-Signature (expected t=<unix s>,v0=<hex>)")
    moment = datetime.fromtimestamp(int(stamp), tz=UTC)
    if abs(now - moment) > tolerance:
        raise Unauthorized(
            f"ElevenLabs-Signature timestamp is outside the {int(tolerance.total_seconds() // 60)} min window"
        )
    expected = sign(body, secret, int(stamp)).partition(",v0=")[2]
    if not tokens_equal(given, expected):
        raise Unauthorized("invalid ElevenLabs-Signature")
