"""Retell AI post-call webhooks (``POST /webhook/retell``).

The body is ``{"event": "<type>", "call": {...}}`` where ``call`` is Retell's call object
(``WebCallResponse`` / ``PhoneCallResponse`` in ``retell-sdk``; the deprecated ``data``
key is read too). ``call_ended`` and ``call_analyzed`` both carry the final transcript of
the same ``call_id``: ``call_ended`` is merged as the call's end (kind ``ended``) and
``call_analyzed`` as its report, which replaces it and adds ``call_analysis`` (in either
order, each stored once). Every other event (``call_started``, ``transcript_updated``,
``transfer_*``, future ones) is acknowledged and not stored. A call that never connected
(``call_status: not_connected``, no transcript) is acknowledged and not stored either: it
has no conversation to keep and would only fill the unmatched queue.

Units: ``start_timestamp``/``end_timestamp`` are epoch ms, ``duration_ms`` ms, word timings
seconds from the call's start, ``call_cost.combined_cost`` **cents** (stored as USD).
The student is ``call.metadata.student_id``, else
``call.retell_llm_dynamic_variables.student_id``; a ``session_id`` in the same places is
an explicit handoff (honoured only for that student, see :mod:`session_tracker.matching`).

Authentication (:func:`verify_signature`) is Retell SDK's ``verify``:
``X-Retell-Signature: v=<unix ms>,d=<hex HMAC-SHA256(api key, raw body + str(ms))>``,
``|now - v| <= 5 min``, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
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
from session_tracker.platforms.exceptions import PayloadInvalid

SIGNATURE_HEADER = "x-retell-signature"
TOLERANCE = timedelta(minutes=5)
CARRIES_CALL = {"call_ended": "ended", "call_analyzed": "report"}
_SIGNATURE = re.compile(r"v=(\d+),d=([0-9a-f]{64})")
BUILTIN_TYPES = frozenset(
    {
        "end_call",
        "transfer_call",
        "press_digit",
        "send_sms",
        "agent_swap",
        "check_availability_cal",
        "book_appointment_cal",
    }
)
"""Retell's own tool types (``custom``, ``code``, ``mcp`` are the agent's tools)."""
_ROLES = {"agent": "assistant", "user": "user", "transfer_target": "transfer_target"}


class _Open(LazyModel):
    """Retell objects: unknown fields are kept, never an error (Retell adds fields)."""

    model_config = ConfigDict(extra="allow")


class RetellWord(_Open):
    word: str | None = None
    start: float | None = None
    end: float | None = None


class RetellEntry(_Open):
    """One entry of ``transcript_object`` / ``transcript_with_tool_calls``."""

    role: str = Field(min_length=1)
    content: str | None = None
    words: list[RetellWord] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    arguments: Any = None
    successful: bool | None = None
    type: str | None = None


class RetellCallCost(_Open):
    combined_cost: float | None = Field(None, description="Cents.")
    total_duration_seconds: float | None = None
    product_costs: list[dict[str, Any]] | None = None


class RetellCall(_Open):
    """The call object (fields this system reads; the rest are kept in the raw body only)."""

    call_id: str = Field(min_length=1)
    call_type: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    call_status: str | None = None
    direction: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    metadata: dict[str, Any] | None = None
    retell_llm_dynamic_variables: dict[str, Any] | None = None
    start_timestamp: LenientTime = None
    end_timestamp: LenientTime = None
    duration_ms: float | None = None
    transcript: str | None = None
    transcript_object: list[RetellEntry] | None = None
    transcript_with_tool_calls: list[RetellEntry] | None = None
    disconnection_reason: str | None = None
    call_cost: RetellCallCost | None = None
    call_analysis: dict[str, Any] | None = None
    recording_url: str | None = None
    public_log_url: str | None = None


class RetellEnvelope(LazyModel):
    """``{"event": ..., "call": {...}}`` (``data`` instead of ``call`` is the deprecated form)."""

    model_config = ConfigDict(extra="ignore")

    event: str = Field(min_length=1, max_length=200)
    call: dict[str, Any] | None = None
    data: dict[str, Any] | None = None


class RetellReport(LazyModel):
    """An event that carries the call (``call_ended``, ``call_analyzed``)."""

    model_config = ConfigDict(extra="ignore")

    event: str
    call: RetellCall | None = None
    data: RetellCall | None = None


# ------------------------------------------------------------------------ parsing
def _last_word_end(entry: RetellEntry) -> float | None:
    ends = [w.end for w in entry.words or [] if isinstance(w.end, (int, float))]
    return max(ends) if ends else None


def _first_word_start(entry: RetellEntry) -> float | None:
    starts = [w.start for w in entry.words or [] if isinstance(w.start, (int, float))]
    return min(starts) if starts else None


def _turns_and_tools(entries: list[RetellEntry], start: datetime | None) -> tuple[list[Turn], list[ToolCall]]:
    """Turns (utterances with word timings, tool calls, tool results) and the tool calls.

    Tool entries carry no time: their offset is the end of the utterance before them (the
    agent decides to call the tool once the user has spoken), or the start of the first
    utterance when none came before.
    """
    turns: list[Turn] = []
    calls: list[ToolCall] = []
    names: dict[str, str] = {}
    clock: float | None = None
    first_start = next((s for e in entries if (s := _first_word_start(e)) is not None), None)

    def at(offset: float | None) -> datetime | None:
        return start + timedelta(seconds=offset) if start is not None and offset is not None else None

    for entry in entries:
        if entry.role in _ROLES:
            offset = _first_word_start(entry)
            turns.append(
                Turn(
                    role=_ROLES[entry.role],
                    text=entry.content or "",
                    offset=offset,
                    time=at(offset),
                    words=[w.model_dump(exclude_none=True) for w in entry.words] if entry.words else None,
                )
            )
            clock = _last_word_end(entry) if _last_word_end(entry) is not None else clock
        elif entry.role == "tool_call_invocation" and entry.name:
            offset = clock if clock is not None else first_start
            call = ToolCall(
                name=entry.name,
                arguments=parse_arguments(entry.arguments),
                offset=offset,
                time=at(offset),
                tool_call_id=entry.tool_call_id,
                builtin=entry.type in BUILTIN_TYPES,
            )
            calls.append(call)
            if entry.tool_call_id:
                names[entry.tool_call_id] = entry.name
            turns.append(
                Turn(
                    role="tool_call",
                    name=call.name,
                    arguments=call.arguments,
                    tool_call_id=call.tool_call_id,
                    offset=offset,
                    time=call.time,
                )
            )
        elif entry.role == "tool_call_result":
            offset = clock if clock is not None else first_start
            turns.append(
                Turn(
                    role="tool_result",
                    name=names.get(entry.tool_call_id or ""),
                    tool_call_id=entry.tool_call_id,
                    successful=entry.successful,
                    offset=offset,
                    time=at(offset),
                )
            )
    return turns, calls


def _ids(call: RetellCall, key: str, kind: Any) -> tuple[str | None, str | None]:
    for name, source in (
        ("metadata", call.metadata),
        ("retell_llm_dynamic_variables", call.retell_llm_dynamic_variables),
    ):
        if source and (value := clean_id(source.get(key), kind=kind)):
            return value, name
    return None, None


class RetellAdapter(PlatformAdapter):
    """Retell webhook bodies."""

    name = "retell"

    def _parse(self, body: Mapping[str, Any]) -> PlatformEvent:
        envelope = RetellEnvelope.model_validate(body)
        kind = CARRIES_CALL.get(envelope.event)
        raw_call = envelope.call if envelope.call is not None else envelope.data
        if kind is None:
            call_id = clean_id((raw_call or {}).get("call_id"), kind="call") if raw_call else None
            return PlatformEvent(
                platform=self.name, kind="ignored", message_type=envelope.event, delivery_id="", call_id=call_id
            )
        report = RetellReport.model_validate(body)
        call = report.call or report.data
        if call is None:
            raise PayloadInvalid("call: field required", field="call")
        call_id = clean_id(call.call_id, kind="call")
        if call.call_status == "not_connected" or (
            not call.transcript and not call.transcript_with_tool_calls and call.start_timestamp is None
        ):
            return PlatformEvent(
                platform=self.name,
                kind="ignored",
                message_type=f"{envelope.event}:not_connected",
                delivery_id="",
                call_id=call_id,
                ended_reason=call.disconnection_reason,
            )
        entries = call.transcript_with_tool_calls or call.transcript_object or []
        turns, tool_calls = _turns_and_tools(entries, call.start_timestamp)
        transcript = call.transcript if call.transcript is not None else turns_to_text(turns)
        session_id, _ = _ids(call, "session_id", "session")
        student_id, source = _ids(call, "student_id", "student")
        cents = call.call_cost.combined_cost if call.call_cost else None
        details = {
            "call_type": call.call_type,
            "agent_id": call.agent_id,
            "agent_name": call.agent_name,
            "direction": call.direction,
            "recording_url": call.recording_url,
            "public_log_url": call.public_log_url,
            "cost_breakdown_cents": call.call_cost.product_costs if call.call_cost else None,
        }
        duration = round(call.duration_ms / 1000, 3) if call.duration_ms is not None else None
        phone = call.from_number if call.direction == "inbound" else call.to_number
        return PlatformEvent(
            platform=self.name,
            kind=kind,
            message_type=envelope.event,
            delivery_id=f"retell:{call_id or call.call_id}:{envelope.event}",
            call_id=call_id,
            session_id=session_id,
            student_id=student_id,
            student_id_source=source,
            phone_number=phone,
            started_at=call.start_timestamp,
            ended_at=call.end_timestamp,
            event_time=call.end_timestamp,
            transcript=transcript,
            turns=turns,
            tool_student_ids=student_ids_of(tool_calls),
            tool_calls=tool_calls,
            call_duration=duration,
            word_count=word_count(transcript, turns),
            cost=round(cents / 100, 6) if cents is not None else None,
            ended_reason=call.disconnection_reason,
            analysis=call.call_analysis or None,
            details={k: v for k, v in details.items() if v not in (None, [], {})},
        )


adapter = RetellAdapter()


# ------------------------------------------------------------------ authentication
def sign(body: bytes, api_key: str, timestamp_ms: int) -> str:
    """The ``X-Retell-Signature`` value Retell sends for ``body`` at ``timestamp_ms``."""
    digest = hmac.new(api_key.encode("utf-8"), body + str(timestamp_ms).encode("ascii"), hashlib.sha256).hexdigest()
    return f"v={timestamp_ms},d={digest}"


def verify_signature(
    headers: Mapping[str, str], body: bytes, *, api_key: str | None, now: datetime, tolerance: timedelta = TOLERANCE
) -> None:
    """Raise :class:`Unauthorized` unless ``X-Retell-Signature`` signs ``body`` (as retell-sdk's ``verify``).

    ``headers`` must have lower-case names. :class:`ServiceUnavailable` when no key is configured.
    """
    if not api_key:
        raise ServiceUnavailable("the Retell API key (RETELL_API_KEY) is not configured on the server")
    value = headers.get(SIGNATURE_HEADER)
    if not value:
        raise Unauthorized("missing X-Retell-Signature header")
    found = _SIGNATURE.fullmatch(value.strip())
    if not found:
        raise Unauthorized("malformed X-Retell-Signature (expected v=<unix ms>,d=<64 hex>)")
    stamp = int(found.group(1))
    if abs(now.timestamp() * 1000 - stamp) > tolerance.total_seconds() * 1000:
        raise Unauthorized(f"X-Retell-Signature timestamp is outside the {int(tolerance.total_seconds())} s window")
    expected = sign(body, api_key, stamp).partition(",d=")[2]
    if not tokens_equal(found.group(2), expected):
        raise Unauthorized("invalid X-Retell-Signature")
