"""VAPI server messages (``POST /webhook/vapi/session-complete``).

Every message is ``{"message": {"type": ..., ...}}``. Two types matter here:
``end-of-call-report`` (merged into a session) and ``status-update`` with
``status: "ended"`` (the call ended; VAPI may never send a report, e.g. after
``call.in-progress.error-vapifault-worker-died``). Every other type, including types
VAPI adds later, is acknowledged and ignored. The models accept unknown fields, the
current report shape (``artifact.*``, ``analysis``, ``startedAt``/``endedAt``, epoch-ms
``timestamp``) and the 2024 shape (top-level ``transcript``/``summary``/``messages``,
ISO ``timestamp``, ``costBreakdown``). ``endedReason`` is an open string.

Authentication (:func:`authenticate`) accepts every server-URL credential VAPI can
send to a receiver: ``Authorization: Bearer``, the legacy raw-secret headers
``X-Vapi-Secret`` / ``X-Vapi-Signature``, and HMAC (``x-signature`` over
``{timestamp}.{raw body}``, SHA-256, hex or base64, optional ``sha256=`` prefix) with a
replay window on ``x-timestamp`` (seconds or milliseconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ConfigDict, Field

from session_tracker.errors import ServiceUnavailable, Unauthorized
from session_tracker.http import tokens_equal
from session_tracker.models import MAX_CALL_SECONDS, FiniteNumber, LazyModel
from session_tracker.platforms.base import (
    LenientTime,
    PlatformAdapter,
    PlatformEvent,
    ToolCall,
    Turn,
    clean_id,
    fingerprint,
    parse_arguments,
    student_ids_of,
    turns_to_text,
    word_count,
)

REPORT = "end-of-call-report"
STATUS = "status-update"
_ROLES = {"bot": "assistant", "assistant": "assistant", "user": "user"}


class _Open(LazyModel):
    """VAPI objects: unknown fields are kept, never an error."""

    model_config = ConfigDict(extra="allow")


class VapiOverrides(_Open):
    variableValues: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class VapiCustomer(_Open):
    number: str | None = None
    externalId: Any = None
    name: str | None = None


class VapiCall(_Open):
    id: str | None = None
    type: str | None = None
    startedAt: LenientTime = None
    endedAt: LenientTime = None
    endedReason: str | None = None
    assistantId: str | None = None
    phoneNumberId: str | None = None
    assistantOverrides: VapiOverrides | None = None
    squadOverrides: VapiOverrides | None = None
    customer: VapiCustomer | None = None


class VapiToolFunction(_Open):
    name: str | None = None
    arguments: Any = None


class VapiToolCall(_Open):
    id: str | None = None
    function: VapiToolFunction | None = None
    name: str | None = None
    parameters: Any = None


class VapiTurn(_Open):
    """One entry of ``artifact.messages`` (roles system, bot, user, tool_calls, tool_call_result)."""

    role: str
    message: str | None = None
    time: LenientTime = None
    endTime: LenientTime = None
    secondsFromStart: Any = None
    toolCalls: list[VapiToolCall] | None = None


class VapiArtifact(_Open):
    transcript: str | None = None
    messages: list[VapiTurn] | None = None
    recordingUrl: str | None = None
    stereoRecordingUrl: str | None = None
    variableValues: dict[str, Any] | None = None


class VapiAnalysis(_Open):
    summary: str | None = None
    structuredData: Any = None
    structuredDataMulti: Any = None
    successEvaluation: Any = None


class VapiMessage(_Open):
    """Fields every server message may carry."""

    type: str = Field(min_length=1)
    timestamp: LenientTime = None
    call: VapiCall | None = None
    customer: VapiCustomer | None = None
    artifact: VapiArtifact | None = None
    assistant: dict[str, Any] | None = None
    phoneNumber: dict[str, Any] | None = None


class VapiEndOfCallReport(VapiMessage):
    """``end-of-call-report``, current and 2024 shapes."""

    endedReason: str | None = None
    cost: FiniteNumber | None = None
    costs: list[dict[str, Any]] | None = None
    costBreakdown: dict[str, Any] | None = None
    analysis: VapiAnalysis | None = None
    startedAt: LenientTime = None
    endedAt: LenientTime = None
    durationSeconds: FiniteNumber | None = Field(None, ge=0, le=MAX_CALL_SECONDS)
    durationMs: FiniteNumber | None = Field(None, ge=0, le=MAX_CALL_SECONDS * 1000)
    durationMinutes: FiniteNumber | None = Field(None, ge=0, le=MAX_CALL_SECONDS / 60)
    # 2024 shape: these sat directly on the message.
    transcript: str | None = None
    summary: str | None = None
    messages: list[VapiTurn] | None = None
    recordingUrl: str | None = None


class VapiStatusUpdate(VapiMessage):
    status: str
    endedReason: str | None = None
    transcript: str | None = None
    summary: str | None = None
    messages: list[VapiTurn] | None = None


class VapiEnvelope(LazyModel):
    """The POST body: ``{"message": {"type": "...", ...}}`` (other keys ignored)."""

    model_config = ConfigDict(extra="ignore")

    message: VapiMessage


class _ReportEnvelope(LazyModel):
    """Validating the report inside its envelope makes errors name ``message.<field>``."""

    message: VapiEndOfCallReport


class _StatusEnvelope(LazyModel):
    message: VapiStatusUpdate


# ------------------------------------------------------------------------ parsing
def _tool_calls(turns: list[VapiTurn]) -> list[ToolCall]:
    """The ``tool_calls`` turns of ``artifact.messages`` (time: the turn's, offset: ``secondsFromStart``)."""
    found: list[ToolCall] = []
    for turn in turns:
        if turn.role != "tool_calls":
            continue
        offset = (
            float(turn.secondsFromStart)
            if isinstance(turn.secondsFromStart, (int, float)) and not isinstance(turn.secondsFromStart, bool)
            else None
        )
        for call in turn.toolCalls or []:
            name = (call.function.name if call.function else None) or call.name
            if not isinstance(name, str) or not name.strip():
                continue
            args: Any = call.function.arguments if call.function else call.parameters
            found.append(
                ToolCall(
                    name=name, arguments=parse_arguments(args), offset=offset, time=turn.time, tool_call_id=call.id
                )
            )
    return found


def _turns(raw: list[VapiTurn]) -> list[Turn]:
    return [
        Turn(role=_ROLES[t.role], text=t.message or "", time=t.time)
        for t in raw
        if t.role in _ROLES and (t.message or "").strip()
    ]


def _id_sources(msg: VapiMessage) -> list[tuple[str, Mapping[str, Any]]]:
    call = msg.call or VapiCall()
    sources: list[tuple[str, Mapping[str, Any] | None]] = []
    for overrides in (call.assistantOverrides, call.squadOverrides):
        if overrides is not None:
            sources += [("metadata", overrides.metadata), ("variableValues", overrides.variableValues)]
    if msg.artifact is not None:
        sources.append(("variableValues", msg.artifact.variableValues))
    if msg.assistant:
        meta = msg.assistant.get("metadata")
        sources.append(("metadata", meta if isinstance(meta, dict) else None))
    return [(name, src) for name, src in sources if src]


def _first_id(sources: list[tuple[str, Mapping[str, Any]]], key: str, kind: str) -> tuple[str | None, str | None]:
    for name, src in sources:
        value = clean_id(src.get(key), kind=kind)  # type: ignore[arg-type]
        if value:
            return value, name
    return None, None


def _duration(report: VapiEndOfCallReport) -> float | None:
    if report.durationSeconds is not None:
        return float(report.durationSeconds)
    if report.durationMs is not None:
        return round(report.durationMs / 1000, 3)
    if report.durationMinutes is not None:
        return round(report.durationMinutes * 60, 3)
    return None


class VapiAdapter(PlatformAdapter):
    """VAPI server messages; the body is the whole ``{"message": {...}}`` envelope."""

    name = "vapi"

    def _parse(self, body: Mapping[str, Any]) -> PlatformEvent:
        head = VapiEnvelope.model_validate(body).message
        raw = body["message"]
        if head.type == REPORT:
            return self._event(_ReportEnvelope.model_validate(body).message, raw, kind="report")
        if head.type == STATUS:
            update = _StatusEnvelope.model_validate(body).message
            if update.status == "ended":
                return self._event(update, raw, kind="ended")
        return PlatformEvent(
            platform=self.name,
            kind="ignored",
            message_type=head.type,
            delivery_id="",
            call_id=clean_id(head.call.id, kind="call") if head.call else None,
        )

    def _event(
        self, msg: VapiEndOfCallReport | VapiStatusUpdate, raw: Mapping[str, Any], *, kind: Any
    ) -> PlatformEvent:
        call = msg.call or VapiCall()
        artifact = msg.artifact or VapiArtifact()
        raw_turns = artifact.messages if artifact.messages is not None else (msg.messages or [])
        turns = _turns(raw_turns)
        tool_calls = _tool_calls(raw_turns)
        transcript = artifact.transcript if artifact.transcript is not None else msg.transcript
        if transcript is None and turns:
            transcript = turns_to_text(turns)
        sources = _id_sources(msg)
        session_id, _ = _first_id(sources, "session_id", "session")
        student_id, student_source = _first_id(sources, "student_id", "student")
        customer = msg.customer or call.customer
        call_id = clean_id(call.id, kind="call")
        delivery = f"{msg.type}:{getattr(msg, 'status', '')}" if kind == "ended" else msg.type
        report = msg if isinstance(msg, VapiEndOfCallReport) else None
        started = (report.startedAt if report else None) or call.startedAt
        ended = (report.endedAt if report else None) or call.endedAt
        analysis: dict[str, Any] | None = None
        details: dict[str, Any] = {"call_type": call.type, "assistant_id": call.assistantId}
        cost: float | None = None
        if isinstance(msg, VapiEndOfCallReport):
            analysis = {
                k: v for k, v in (msg.analysis.model_dump() if msg.analysis else {}).items() if v not in (None, {}, [])
            }
            if not analysis.get("summary") and msg.summary:
                analysis["summary"] = msg.summary
            cost = msg.cost
            details |= {
                "costs": msg.costs,
                "cost_breakdown": msg.costBreakdown,
                "recording_url": artifact.recordingUrl or msg.recordingUrl,
                "stereo_recording_url": artifact.stereoRecordingUrl,
            }
        elif msg.summary:
            analysis = {"summary": msg.summary}
        return PlatformEvent(
            platform=self.name,
            kind=kind,
            message_type=msg.type,
            delivery_id=f"{call_id}:{delivery}" if call_id else fingerprint(raw),
            call_id=call_id,
            session_id=session_id,
            student_id=student_id,
            student_id_source=student_source,
            phone_number=customer.number if customer else None,
            started_at=started,
            ended_at=ended,
            event_time=msg.timestamp,
            transcript=transcript,
            turns=turns,
            tool_student_ids=student_ids_of(tool_calls),
            tool_calls=tool_calls,
            call_duration=_duration(msg) if isinstance(msg, VapiEndOfCallReport) else None,
            word_count=word_count(transcript, turns),
            cost=cost,
            ended_reason=msg.endedReason or call.endedReason,
            analysis=analysis or None,
            details={k: v for k, v in details.items() if v not in (None, [], {})},
        )


adapter = VapiAdapter()


# ------------------------------------------------------------------ authentication
def _hmac_ok(secret: str, signature: str, timestamp: str, body: bytes) -> bool:
    given = signature.strip()
    if given.lower().startswith("sha256="):
        given = given[7:]
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).digest()
    hex_ok = tokens_equal(given.lower(), digest.hex())
    b64_ok = tokens_equal(given, base64.b64encode(digest).decode())
    return hex_ok | b64_ok


def _timestamp_fresh(value: str, now: datetime, window: timedelta) -> bool:
    try:
        number = float(value.strip())
    except ValueError:
        return False
    seconds = number / 1000 if number > 1e11 else number
    return abs(now.timestamp() - seconds) <= window.total_seconds()


def authenticate(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | None,
    hmac_secret: str | None,
    signature_header: str = "x-signature",
    timestamp_header: str = "x-timestamp",
    replay_window: timedelta = timedelta(minutes=5),
    now: datetime,
) -> str:
    """Which credential authenticated the request (``bearer``, ``x-vapi-secret``, ``hmac``).

    ``headers`` must have lower-case names. Any one valid credential is enough; every
    comparison is constant-time. Raises :class:`Unauthorized` otherwise, and
    :class:`ServiceUnavailable` when no secret is configured on the server.
    """
    hmac_key = hmac_secret or secret
    if not secret and not hmac_key:
        raise ServiceUnavailable("the VAPI webhook secret is not configured on the server")
    failures: list[str] = []
    signature = headers.get(signature_header.lower())
    if signature:
        stamp = headers.get(timestamp_header.lower())
        if not hmac_key:
            failures.append("HMAC signatures are not configured")
        elif not stamp:
            failures.append(f"{timestamp_header} header missing for the HMAC signature")
        elif not _timestamp_fresh(stamp, now, replay_window):
            failures.append(f"{timestamp_header} is outside the {int(replay_window.total_seconds())} s replay window")
        elif _hmac_ok(hmac_key, signature, stamp, body):
            return "hmac"
        else:
            failures.append(f"invalid {signature_header}")
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip() and secret and tokens_equal(token.strip(), secret):
            return "bearer"
        failures.append("invalid bearer token")
    for name in ("x-vapi-secret", "x-vapi-signature"):
        raw = headers.get(name)
        if raw:
            if secret and tokens_equal(raw.strip(), secret):
                return "x-vapi-secret"
            failures.append(f"invalid {name}")
    if not failures:
        raise Unauthorized(
            "missing credentials: send Authorization: Bearer <secret>, X-Vapi-Secret, "
            f"or an HMAC {signature_header}/{timestamp_header}"
        )
    raise Unauthorized("; ".join(failures))
