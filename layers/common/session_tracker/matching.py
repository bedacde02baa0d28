"""Platform data (VAPI, Retell, ElevenLabs reports, generic session data) matched to sessions and merged in.

Pure rules over models: the store, the blob store and the clock (``now``) come in as
arguments. Matching order (the first that applies wins, and is recorded in the
session's ``matching``):

1. ``explicit``: the payload names the session (``session_id`` in VAPI
   ``assistantOverrides.metadata`` / ``variableValues`` or the generic body), or its
   ``call_id`` is already linked to a session (logged MCP calls carried it, or an earlier
   message of the same call created the session). A named session is honoured only for
   the student the payload states (payload id or phone map): another student's session,
   or a new id that is not ``{student_id}_...``, is ignored and matching goes on below.
2. ``tool_calls``: the tool calls the platform reports (name, arguments, time in the call)
   are the interactions the MCP server logged in one session (:mod:`session_tracker.toolmatch`
   has the rule: normalisation, tolerance, repeats, "enough", ties); the stated student's
   sessions only, when the payload states one. ``matching`` records ``agreeing_calls``.
3. ``student_id``: the student is known (``student_id`` in variableValues / metadata /
   body, the configured phone map, or extraction from the transcript's opening turns)
   and the call's span overlaps one of the student's sessions. A known student with no
   session near the call gets a new ``completed`` session (strategy ``student_id``).
4. ``time_window``: the call comes within ±``match_window_minutes`` of one of that
   student's sessions, or, when the student is unknown, of exactly one active session.
5. ``none``: a new session with ``status: unmatched`` (student ``unknown``), kept for review.
   When MCP calls carrying that call's id arrive later, the first one claims the session
   for its student (``completed``, strategy ``explicit``/``call_id``) and they all join it.

Matching uses the call's own times (event time), never "whichever session is active
now". A session that ended more than ``late_data_hours`` before the data arrived is not
changed any more; the data is kept as a new ``unmatched`` session naming the candidate.

Merging sets ``end_time``, ``status: completed`` (``unmatched`` stays), ``conversation``
``{transcript, turns, source, word_count, call_duration, call_ids, started_at, ended_at,
platform_analysis}``, ``platform_metadata {platform, call_id, cost_usd, ended_reason,
duration_seconds, ...}`` for every platform (VAPI also keeps its v1 view ``vapi_metadata
{call_id, cost, ended_reason, ...}``), ``matching``, and the analysis trigger flags. A second
call merged into the same session is appended (transcripts joined, costs and durations
summed, per-call entries under ``calls``). Transcripts (and platform analyses) larger
than ``inline_limit`` bytes, and platform metadata fields larger than ``METADATA_LIMIT``,
go to the blob store (``blobs.offload``); the record keeps a pointer and ``blobs.hydrate``
puts them back on read. Every delivery is stored once.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from session_tracker import callmeta
from session_tracker.blobs import INLINE_LIMIT, BlobStore, hydrate, hydrate_conversation, offload
from session_tracker.errors import DuplicateDelivery, ServiceUnavailable, SessionIdTaken, StoreConflict
from session_tracker.models import (
    UNKNOWN_STUDENT,
    LazyModel,
    MatchStrategy,
    PlatformWrite,
    SessionMeta,
    SessionStatus,
    iso,
    parse_iso,
)
from session_tracker.platforms.base import PlatformEvent, clean_id
from session_tracker.privacy import Redactor, redact_event
from session_tracker.sessions import session_id_for, session_id_owner
from session_tracker.toolmatch import DEFAULT_TOLERANCE, ToolMatchRules, match_tool_calls

if TYPE_CHECKING:
    from session_tracker.config import AppConfig
    from session_tracker.store.ports import PlatformStore

MAX_ATTEMPTS = 8
CANDIDATES = 10


@dataclass(frozen=True)
class Backoff:
    """How :func:`ingest_platform_event` waits before it tries again after a lost race
    (:class:`StoreConflict`: the head or session changed, or DynamoDB cancelled the transaction
    for a concurrent one, ``TransactionConflict``).

    Retrying at once made two reports of one session collide on every attempt (each retry
    met the other's transaction again) until both gave up with a 503. The wait doubles from
    ``base`` up to ``cap`` with "equal jitter" (half of it fixed, half drawn), so two writers
    drift apart and the wait still grows with an unlucky draw: the seven waits between eight
    attempts add up to 0.41-0.81 s at the defaults. ``sleep`` and ``rand`` are injected so tests
    are deterministic.
    """

    attempts: int = MAX_ATTEMPTS
    base: float = 0.01
    cap: float = 0.25
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first)."""
        ceiling = min(self.cap, self.base * (1 << min(retry, 30)))
        return ceiling / 2 + self.rand() * ceiling / 2

    def pause(self, retry: int) -> None:
        self.sleep(self.delay(retry))


DEFAULT_BACKOFF = Backoff()
DEFAULT_STUDENT_ID_PATTERNS = (
    r"(?i)\bstudent[\s_-]*id\b\s*(?:is|was|:|=|#)?\s*(?P<student_id>[A-Za-z0-9](?:[A-Za-z0-9_.@+-]*[A-Za-z0-9])?)",
)
_MAX_DEPTH = 24
_GUESSED_SOURCES = frozenset({"transcript", "transcript_tool_call"})
"""Student ids read from the conversation: a guess, not a statement that can veto a handoff."""

Outcome = Literal["merged", "created", "ignored", "duplicate"]
STRATEGIES = frozenset({"explicit", "tool_calls", "student_id", "time_window"})


@dataclass(frozen=True)
class MatchSettings:
    """The configuration the rules read (``session_tracking`` and ``webhooks.vapi``)."""

    match_window: timedelta = timedelta(minutes=5)
    late_data: timedelta = timedelta(hours=24)
    phone_map: Mapping[str, str] = field(default_factory=dict)
    student_id_patterns: Sequence[str] = DEFAULT_STUDENT_ID_PATTERNS
    opening_turns: int = 6
    inline_limit: int = INLINE_LIMIT
    clock_skew: timedelta = timedelta(days=1)
    tool_call_tolerance: timedelta = DEFAULT_TOLERANCE
    strategies: frozenset[str] = STRATEGIES
    """Which strategies run (all by default; the matching benchmark measures each alone)."""
    redactor: Redactor = field(default_factory=Redactor)
    """``privacy:`` redaction, applied to each event before it is matched or stored."""

    @classmethod
    def from_config(cls, config: AppConfig) -> MatchSettings:
        """Settings from ``session_config.yaml`` (default extraction patterns when none are set)."""
        vapi = config.webhooks.vapi
        return cls(
            match_window=config.session_tracking.match_window,
            late_data=config.session_tracking.late_data,
            phone_map=dict(vapi.phone_map),
            student_id_patterns=tuple(vapi.student_id_patterns) or DEFAULT_STUDENT_ID_PATTERNS,
            clock_skew=config.session_tracking.clock_skew,
            tool_call_tolerance=config.session_tracking.tool_call_tolerance,
            redactor=Redactor.from_config(config.privacy),
        )


class WebhookResult(LazyModel):
    """The answer to a platform delivery (always 2xx)."""

    received: str
    """The message type as sent (``end-of-call-report``, ``status-update``, ``session-data`` ...)."""
    outcome: Outcome
    session_id: str | None = None
    strategy: MatchStrategy | None = None
    status: SessionStatus | None = None
    detail: str | None = None


@dataclass
class Match:
    """Where a platform event goes: an existing session (``session``) or a new one."""

    strategy: MatchStrategy
    source: str
    student_id: str
    session: SessionMeta | None = None
    version: int | None = None
    new_session_id: str | None = None
    reason: str | None = None
    candidate: str | None = None
    agreeing_calls: int | None = None
    reported_calls: int | None = None

    def record(self, event: PlatformEvent, now: datetime) -> dict[str, Any]:
        """The ``matching`` attribute stored with the session."""
        out: dict[str, Any] = {
            "strategy": self.strategy,
            "source": self.source,
            "platform": event.platform,
            "call_id": event.call_id,
            "matched_at": iso(now),
            "reason": self.reason,
            "candidate_session_id": self.candidate,
            "agreeing_calls": self.agreeing_calls,
            "reported_calls": self.reported_calls,
        }
        return {k: v for k, v in out.items() if v is not None}


# ------------------------------------------------------------------- student ids
def _phone(number: str) -> str:
    digits = re.sub(r"[^\d+]", "", number)
    return digits if digits.startswith("+") else digits.lstrip("0")


def extract_student_id(event: PlatformEvent, settings: MatchSettings) -> tuple[str | None, str | None]:
    """A student id from the conversation: configured patterns over the opening turns,
    else the ``student_id`` argument of the conversation's tool calls (when they agree)."""
    if event.turns:
        texts = [t.text for t in event.turns[: settings.opening_turns]]
    else:
        texts = (event.transcript or "").splitlines()[: settings.opening_turns]
    for pattern in settings.student_id_patterns:
        regex = re.compile(pattern)
        for text in texts:
            found = regex.search(text)
            if not found:
                continue
            value = found.group("student_id") if "student_id" in regex.groupindex else found.group(found.re.groups)
            student = clean_id(value)
            if student:
                return student, "transcript"
    if len(set(event.tool_student_ids)) == 1:
        return event.tool_student_ids[0], "transcript_tool_call"
    return None, None


def resolve_student(event: PlatformEvent, settings: MatchSettings) -> tuple[str | None, str | None]:
    """``(student_id, source)``: the payload's own id, then the phone map, then the transcript."""
    if event.student_id:
        return event.student_id, event.student_id_source or "payload"
    if event.phone_number and settings.phone_map:
        wanted = _phone(event.phone_number)
        for number, student in settings.phone_map.items():
            if _phone(number) == wanted and (sid := clean_id(student)):
                return sid, "phone_map"
    return extract_student_id(event, settings)


# ------------------------------------------------------------------------ time
def call_span(event: PlatformEvent, now: datetime) -> tuple[datetime, datetime]:
    """The call's start and end (event time), falling back as far as receive time."""
    start = event.call_start or event.call_end or now
    end = event.call_end or start
    return start, max(start, end)


def session_span(meta: SessionMeta) -> tuple[datetime, datetime]:
    end = max(meta.end_time or meta.last_activity, meta.last_activity)
    return meta.start_time, end


def gap(meta: SessionMeta, start: datetime, end: datetime) -> timedelta:
    """Zero when the call's span overlaps the session's, else the time between them."""
    s0, s1 = session_span(meta)
    if start <= s1 and end >= s0:
        return timedelta(0)
    return s0 - end if end < s0 else start - s1


def too_late(meta: SessionMeta, now: datetime, late_data: timedelta) -> bool:
    """Whether a session ended longer than ``late_data`` ago (it is no longer changed).

    "Ended" is the later of its end in event time and when it was last written (closed by
    the idle closer, completed by a platform): a session closed a minute ago still takes
    its report, even when its calls carry timestamps from long ago (back-filled data).
    """
    if meta.status == "active":
        return False
    ended = max(session_span(meta)[1], meta.updated_at or session_span(meta)[1])
    return now - ended > late_data


def within_clock(event: PlatformEvent, now: datetime, settings: MatchSettings) -> PlatformEvent:
    """``event`` without times more than ``clock_skew`` in the future (a wrong clock).
    Platform times are informational, so such a time is dropped (the call's other times,
    else receive time, stand in), never the report."""
    latest = now + settings.clock_skew

    def usable(at: datetime | None) -> datetime | None:
        return None if at is None or at > latest else at

    times = {name: getattr(event, name) for name in ("started_at", "ended_at", "event_time")}
    bad_turns = any(t.time is not None and t.time > latest for t in event.turns)
    if all(usable(v) == v for v in times.values()) and not bad_turns:
        return event
    return event.model_copy(
        update={
            **{name: usable(value) for name, value in times.items()},
            "turns": [t.model_copy(update={"time": usable(t.time)}) for t in event.turns],
        }
    )


# -------------------------------------------------------------------- matching
def find_session(event: PlatformEvent, *, store: PlatformStore, now: datetime, settings: MatchSettings) -> Match:
    """Where ``event`` belongs, by the matching order in the module docstring."""
    start, end = call_span(event, now)
    student, source = resolve_student(event, settings)
    stated = student if source not in _GUESSED_SOURCES else None
    enabled = settings.strategies
    if "explicit" in enabled:
        if event.session_id:
            explicit = _explicit_session(event.session_id, stated, store=store)
            if explicit is not None:
                return _checked(explicit, now, settings) if explicit.session is not None else explicit
        if event.call_id:
            link = store.get_call_link(event.call_id)
            found = store.get_session_versioned(link.session_id) if link else None
            if found is not None:
                return _checked(Match("explicit", "call_id", found[0].student_id, *found), now, settings)
    if "tool_calls" in enabled and event.tool_calls:
        by_tools = _by_tool_calls(event, stated, start, end, store=store, settings=settings)
        if by_tools is not None:
            return _checked(by_tools, now, settings)
    window = settings.match_window
    if student:
        sessions = store.student_sessions_before(student, end + window, limit=CANDIDATES)
        scored = sorted(
            ((gap(m, start, end), -m.start_time.timestamp(), m) for m in sessions if gap(m, start, end) <= window),
            key=lambda t: (t[0], t[1]),
        )
        if scored:
            distance, _, best = scored[0]
            strategy: MatchStrategy | None = None
            if distance == timedelta(0) and "student_id" in enabled:
                strategy = "student_id"
            elif "time_window" in enabled:
                strategy = "time_window"
            found = store.get_session_versioned(best.session_id) if strategy else None
            if strategy and found is not None:
                return _checked(Match(strategy, source or "payload", student, *found), now, settings)
        if "student_id" in enabled:
            return Match("student_id", source or "payload", student, reason="no session near the call: new session")
        return Match("none", "unmatched", UNKNOWN_STUDENT, reason="no session of the student near the call")
    fits = (
        [m for m in store.open_sessions_since(start - window) if gap(m, start, end) <= window]
        if "time_window" in enabled
        else []
    )
    if len(fits) == 1:
        found = store.get_session_versioned(fits[0].session_id)
        if found is not None:
            return _checked(Match("time_window", "single_active_session", found[0].student_id, *found), now, settings)
    reason = f"student unknown; {len(fits)} active sessions in the window" if fits else "student unknown"
    return Match("none", "unmatched", UNKNOWN_STUDENT, reason=reason)


def _by_tool_calls(
    event: PlatformEvent,
    student: str | None,
    start: datetime,
    end: datetime,
    *,
    store: PlatformStore,
    settings: MatchSettings,
) -> Match | None:
    """The session whose logged calls are the reported ones (:mod:`session_tracker.toolmatch`).

    Only sessions of the stated student are candidates when the payload states one; else
    every student's sessions with calls in the call's span widened by the tolerance.
    """
    tolerance = settings.tool_call_tolerance
    candidates = store.sessions_with_calls_between(start - tolerance, end + tolerance, student_id=student)
    found = match_tool_calls(
        event.tool_calls,
        candidates,
        call_start=event.call_start,
        rules=ToolMatchRules(tolerance=tolerance),
    )
    if found is None:
        return None
    versioned = store.get_session_versioned(found.session.session_id)
    if versioned is None:
        return None
    return Match(
        "tool_calls",
        "tool_calls",
        versioned[0].student_id,
        *versioned,
        agreeing_calls=found.agreeing,
        reported_calls=found.reported,
    )


def _explicit_session(session_id: str, student: str | None, *, store: PlatformStore) -> Match | None:
    """The session a payload names, honoured only for the student it belongs to.

    A report that names a student may only name one of that student's sessions: an
    existing session of someone else, or a new id that is not ``{student_id}_...`` of the
    report's student, is ignored (``None``) and the report is matched as if it named no
    session. A report that names no student is trusted with the id alone (the handoff).
    """
    implied = session_id_owner(session_id)
    id_owner = clean_id(implied) if implied else None
    found = store.get_session_versioned(session_id)
    if found is not None:
        meta, version = found
        if student is not None and meta.student_id != student:
            return None
        return Match("explicit", "session_id", meta.student_id, meta, version)
    if student is not None and id_owner != student:
        return None
    owner = student or id_owner or UNKNOWN_STUDENT
    return Match("explicit", "session_id", owner, new_session_id=session_id)


def _checked(match: Match, now: datetime, settings: MatchSettings) -> Match:
    """``match`` unless its session ended too long ago: then a new unmatched session."""
    meta = match.session
    if meta is None or not too_late(meta, now, settings.late_data):
        return match
    return Match(
        "none",
        match.source,
        meta.student_id,
        reason=f"arrived more than {settings.late_data} after the session ended",
        candidate=meta.session_id,
    )


# ---------------------------------------------------------------------- merging
def _storable(value: Any, depth: int = 0) -> Any:
    """JSON that DynamoDB accepts: no NaN/Infinity, nesting capped (deeper parts as JSON text),
    numbers outside DynamoDB's range or precision kept as their text (never a failed write)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return value if value == 0 or 1e-120 < abs(value) < 1e120 else repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**38:
        return str(value)
    if depth >= _MAX_DEPTH and isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, dict):
        return {str(k): _storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(v, depth + 1) for v in value]
    return value


def _storable_dict(value: dict[str, Any]) -> dict[str, Any]:
    """:func:`_storable` of a mapping, typed as one."""
    return {str(k): _storable(v, 1) for k, v in value.items()}


METADATA_LIMIT = 16 * 1024
"""A platform metadata field (ended reason, cost lists, the generic body's metadata ...) larger
than this goes to the blob store: several of them share the session record's 400 KB."""


def offload_conversation(
    conv: dict[str, Any], session_id: str, blobs: BlobStore | None, limit: int = INLINE_LIMIT
) -> dict[str, Any]:
    """Move a large transcript / turn list / platform analysis to the blob store, leaving pointers."""
    out = offload(conv, ["transcript", "turns"], prefix=f"transcripts/{session_id}", blobs=blobs, limit=limit)
    return offload(out, ["platform_analysis"], prefix=f"analysis/{session_id}", blobs=blobs, limit=limit)


_offload = offload_conversation  # the name review.py imports


def offload_metadata(
    metadata: dict[str, Any] | None, session_id: str, blobs: BlobStore | None, limit: int = METADATA_LIMIT
) -> dict[str, Any] | None:
    """Platform metadata with every field larger than ``limit`` bytes moved to the blob store."""
    if metadata is None:
        return None
    fields = [k for k in metadata if k not in ("call_id", "cost", "platform") and not k.endswith("_blob")]
    return offload(metadata, fields, prefix=f"platform/{session_id}", blobs=blobs, limit=limit)


Mode = Literal["new", "replace", "append", "keep"]


def merge_mode(existing: dict[str, Any] | None, event: PlatformEvent) -> Mode:
    """How ``event``'s conversation combines with the session's current one.

    ``keep``: an end-of-call status after the report of the same call adds nothing;
    ``replace``: the report of a call replaces what its status message left;
    ``append``: another call of the same session.
    """
    if not existing:
        return "new"
    calls = existing.get("call_ids") or []
    if event.call_id and event.call_id in calls:
        if event.kind == "ended" or not existing.get("partial") or len(calls) > 1:
            return "keep"
        return "replace"
    return "append"


def _conversation(event: PlatformEvent, start: datetime, end: datetime) -> dict[str, Any]:
    conv: dict[str, Any] = {
        "transcript": event.transcript or "",
        "source": event.platform,
        "word_count": event.word_count or 0,
        "call_duration": event.duration_seconds(),
        "call_ids": [event.call_id] if event.call_id else [],
        "started_at": iso(start),
        "ended_at": iso(end),
        "platform_analysis": event.analysis or None,
        "partial": event.kind == "ended" or None,
        "turns": [t.model_dump(mode="json", exclude_none=True) for t in event.turns] or None,
    }
    return _storable_dict({k: v for k, v in conv.items() if v is not None})


def _appended(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    durations = [d for d in (old.get("call_duration"), new.get("call_duration")) if d is not None]
    starts = [parse_iso(x) for x in (old.get("started_at"), new.get("started_at")) if x]
    ends = [parse_iso(x) for x in (old.get("ended_at"), new.get("ended_at")) if x]
    parts = [p for p in (old.get("transcript", ""), new.get("transcript", "")) if p]
    out = {
        **old,
        "transcript": "\n\n".join(parts),
        "word_count": int(old.get("word_count") or 0) + int(new.get("word_count") or 0),
        "call_duration": round(sum(durations), 3) if durations else None,
        "call_ids": [*(old.get("call_ids") or []), *new.get("call_ids", [])],
        "started_at": iso(min(starts)) if starts else None,
        "ended_at": iso(max(ends)) if ends else None,
        "platform_analysis": new.get("platform_analysis", old.get("platform_analysis")),
        "partial": (old.get("partial") or new.get("partial")) or None,
        "turns": [*(old.get("turns") or []), *(new.get("turns") or [])] or None,
    }
    return {k: v for k, v in out.items() if v is not None}


def _call_entry(event: PlatformEvent, start: datetime, end: datetime) -> dict[str, Any]:
    """The platform-neutral ``platform_metadata`` entry of one call (see :mod:`session_tracker.callmeta`)."""
    entry: dict[str, Any] = {
        "platform": event.platform,
        "call_id": event.call_id,
        "cost_usd": event.cost,
        "ended_reason": event.ended_reason,
        "duration_seconds": event.duration_seconds(),
        "started_at": iso(start),
        "ended_at": iso(end),
        **event.details,
    }
    return _storable_dict({k: v for k, v in entry.items() if v is not None})


def _vapi_entry(event: PlatformEvent) -> dict[str, Any]:
    """VAPI's v1 ``vapi_metadata`` view of a call: ``{call_id, cost, ended_reason, ...}``."""
    entry: dict[str, Any] = {"call_id": event.call_id, "cost": event.cost, "ended_reason": event.ended_reason}
    return _storable_dict({**entry, **event.details})


def _metadata(existing: dict[str, Any] | None, entry: dict[str, Any], mode: Mode) -> dict[str, Any]:
    if mode != "append" or not existing:
        return entry
    return callmeta.combine(existing, entry) or entry


def plan_merge(
    event: PlatformEvent,
    match: Match,
    *,
    blobs: BlobStore | None,
    now: datetime,
    settings: MatchSettings,
    head_session_id: str | None,
) -> PlatformWrite:
    """The write that merges ``event`` into ``match.session``."""
    meta = match.session
    assert meta is not None
    start, end = call_span(event, now)
    existing = hydrate_conversation(meta.conversation, blobs) if meta.conversation else None
    mode = merge_mode(existing, event)
    incoming = _conversation(event, start, end)
    conversation: dict[str, Any] | None
    if mode == "keep":
        conversation = None
    elif mode == "append" and existing:
        conversation = _appended(existing, incoming)
    else:
        conversation = incoming
    if conversation is not None:
        conversation = offload_conversation(conversation, meta.session_id, blobs, settings.inline_limit)
    platform_metadata = (
        None
        if mode == "keep"
        else _metadata(hydrate(meta.platform_metadata, blobs), _call_entry(event, start, end), mode)
    )
    vapi_metadata = (
        _metadata(hydrate(meta.vapi_metadata, blobs), _vapi_entry(event), mode)
        if event.platform == "vapi" and mode != "keep"
        else None
    )
    platform_metadata = offload_metadata(platform_metadata, meta.session_id, blobs)
    vapi_metadata = offload_metadata(vapi_metadata, meta.session_id, blobs)
    end_time = max(session_span(meta)[1], end) if event.call_end else session_span(meta)[1]
    return PlatformWrite(
        session_id=meta.session_id,
        student_id=meta.student_id,
        delivery_id=event.delivery_id,
        platform=event.platform,
        call_id=event.call_id,
        status="unmatched" if meta.status == "unmatched" else "completed",
        end_time=end_time,
        conversation=conversation,
        vapi_metadata=vapi_metadata,
        platform_metadata=platform_metadata,
        matching=None if meta.matching else match.record(event, now),
        request_analysis=conversation is not None,
        head_ended_at=end_time if head_session_id == meta.session_id else None,
        expected_version=match.version,
        now=now,
    )


def plan_new_session(
    event: PlatformEvent,
    match: Match,
    *,
    blobs: BlobStore | None,
    now: datetime,
    settings: MatchSettings,
    suffix: int = 1,
) -> tuple[SessionMeta, PlatformWrite]:
    """A new session holding ``event`` (no existing session matched)."""
    start, end = call_span(event, now)
    session_id = match.new_session_id or session_id_for(match.student_id, start, suffix)
    status: SessionStatus = "unmatched" if match.strategy == "none" else "completed"
    conversation = offload_conversation(_conversation(event, start, end), session_id, blobs, settings.inline_limit)
    record = match.record(event, now)
    meta = SessionMeta(
        session_id=session_id,
        student_id=match.student_id,
        start_time=start,
        last_activity=end,
        end_time=end,
        status=status,
        platform=event.platform,
        call_ids=[event.call_id] if event.call_id else [],
        matching=record,
        conversation=conversation,
        vapi_metadata=offload_metadata(_vapi_entry(event), session_id, blobs) if event.platform == "vapi" else None,
        platform_metadata=offload_metadata(_call_entry(event, start, end), session_id, blobs),
        created_at=now,
        updated_at=now,
    )
    write = PlatformWrite(
        session_id=session_id,
        student_id=match.student_id,
        delivery_id=event.delivery_id,
        platform=event.platform,
        call_id=event.call_id,
        status=status,
        end_time=end,
        matching=record,
        request_analysis=True,
        link_call=match.candidate is None,
        head_ended_at=end,
        now=now,
    )
    return meta, write


def ingest_platform_event(
    event: PlatformEvent,
    *,
    store: PlatformStore,
    blobs: BlobStore | None,
    now: datetime,
    settings: MatchSettings,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> WebhookResult:
    """Match ``event`` to a session and merge it (or keep it as a new session); idempotent.
    A lost race is retried after a jittered, growing wait (``backoff``); 503 when every
    attempt lost."""
    if event.kind == "ignored":
        return WebhookResult(received=event.message_type, outcome="ignored")
    event = redact_event(within_clock(event, now, settings), settings.redactor)
    prior = store.get_delivery(event.delivery_id)
    if prior is not None:
        return WebhookResult(received=event.message_type, outcome="duplicate", session_id=prior)
    suffix = 1
    conflicts = 0
    for attempt in range(backoff.attempts):
        match = find_session(event, store=store, now=now, settings=settings)
        if _claims_unmatched(event, match, store=store, now=now, settings=settings):
            continue  # the session now belongs to the student this event names: match again
        try:
            if match.session is not None:
                head = store.get_head(match.session.student_id)
                write = plan_merge(
                    event,
                    match,
                    blobs=blobs,
                    now=now,
                    settings=settings,
                    head_session_id=head.session_id if head else None,
                )
                store.write_platform_data(write)
                return WebhookResult(
                    received=event.message_type,
                    outcome="merged",
                    session_id=write.session_id,
                    strategy=match.strategy,
                    status=write.status,
                    detail=None if write.conversation is not None else "the call's report was merged before",
                )
            meta, write = plan_new_session(event, match, blobs=blobs, now=now, settings=settings, suffix=suffix)
            move_head = meta.status != "unmatched" and _is_newest(store, meta)
            store.create_platform_session(meta, write, move_head=move_head)
            return WebhookResult(
                received=event.message_type,
                outcome="created",
                session_id=meta.session_id,
                strategy=match.strategy,
                status=meta.status,
                detail=match.reason,
            )
        except DuplicateDelivery as dup:
            return WebhookResult(received=event.message_type, outcome="duplicate", session_id=dup.session_id)
        except SessionIdTaken:
            if match.new_session_id is None:
                suffix += 1
        except StoreConflict:
            if attempt < backoff.attempts - 1:  # no wait before giving up
                backoff.pause(conflicts)
                conflicts += 1
    raise ServiceUnavailable("too much contention on this session; retry")


def _claims_unmatched(
    event: PlatformEvent, match: Match, *, store: PlatformStore, now: datetime, settings: MatchSettings
) -> bool:
    """An earlier message of this call (e.g. a status-update) made an ``unmatched`` session of
    the unknown student, and this one names the student: give the session to that student."""
    meta = match.session
    if meta is None or meta.status != "unmatched" or meta.student_id != UNKNOWN_STUDENT or not event.call_id:
        return False
    student, _ = resolve_student(event, settings)
    if not student:
        return False
    return store.claim_session(meta.session_id, call_id=event.call_id, student_id=student, now=now)


def _is_newest(store: PlatformStore, meta: SessionMeta) -> bool:
    head = store.get_head(meta.student_id)
    return head is None or head.last_activity <= meta.last_activity
