"""Reviewing unmatched platform data: ``POST /sessions/{id}/assign`` and ``session-tracker assign``.

An ``unmatched`` session holds a platform call nobody could place. An admin assigns it:

- ``{"session_id": TARGET}``: its platform data moves into ``TARGET``;
- ``{"student_id": S}``: it moves into the session of ``S`` whose span is nearest the
  call (overlapping, or within ±``match_window_minutes``; ties: the later session),
  ignoring ``S``'s other unmatched sessions;
- no such session: it becomes a new ``completed`` session of ``S``, named
  ``{S}_{YYYYMMDD_HHMM}`` from the call's start like every other session.

The move is one transaction (:meth:`ReviewStore.move_platform_data`): the target is
written, the unmatched record is deleted only if it is still unmatched and unchanged,
the calls' ``CALL#`` links point at the target, and a marker ``assign:{id}`` remembers
the result, so a retried request is a 409 naming where the data went instead of a 404.
The target's ``matching`` becomes ``{"strategy": "manual", ...}`` and it is queued for
analysis again. Sessions that are not ``unmatched`` answer 409.

Storage is :class:`~session_tracker.store.ports.ReviewStore` (DynamoDB:
``store/dynamo_review.py``; the in-memory fake has the same conditions).

Auditing: every successful assignment calls ``audit(AssignmentAudit)`` (the access-audit
log of issue 15 plugs in there; until it exists the handler passes a structured-log sink).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from session_tracker import callmeta
from session_tracker.blobs import INLINE_LIMIT, BlobStore, hydrate_conversation
from session_tracker.errors import (
    Conflict,
    DuplicateDelivery,
    NotFound,
    ServiceUnavailable,
    SessionIdTaken,
    StoreConflict,
    Unprocessable,
)
from session_tracker.matching import _appended, _offload, gap, session_span
from session_tracker.models import Head, Identifier, LazyModel, PlatformMove, SessionMeta, iso, parse_iso
from session_tracker.sessions import session_id_for
from session_tracker.store.ports import ReviewStore

MAX_ATTEMPTS = 6
CANDIDATES = 20
SessionIdText = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,199}$")]


class AssignRequest(LazyModel):
    """``{"student_id": S}`` or ``{"session_id": TARGET}`` (both: TARGET must be S's)."""

    model_config = ConfigDict(extra="forbid")

    student_id: Identifier | None = None
    session_id: SessionIdText | None = None

    @model_validator(mode="after")
    def _one_given(self) -> AssignRequest:
        if self.student_id is None and self.session_id is None:
            raise ValueError("give student_id or session_id")
        return self


class AssignResult(LazyModel):
    """The answer: where the platform data is now."""

    session_id: str = Field(description="The session that now holds the platform data.")
    assigned_from: str = Field(description="The unmatched session that was assigned (it no longer exists).")
    outcome: Literal["merged", "created"] = Field(
        description="merged: into an existing session; created: a new session of the student."
    )
    student_id: str


class AssignmentAudit(LazyModel):
    """What the access audit records about one assignment (no transcript, no arguments)."""

    at: datetime
    action: Literal["assign"] = "assign"
    student_id: str
    session_id: str
    assigned_from: str
    outcome: Literal["merged", "created"]


AuditSink = Callable[[AssignmentAudit], None]


def _call_span(meta: SessionMeta) -> tuple[datetime, datetime]:
    conv = meta.conversation or {}
    start, end = session_span(meta)
    try:
        start = parse_iso(conv["started_at"]) if conv.get("started_at") else start
        end = parse_iso(conv["ended_at"]) if conv.get("ended_at") else end
    except ValueError:
        pass
    return start, max(start, end)


def nearest_session(
    store: ReviewStore, student_id: str, start: datetime, end: datetime, *, window: timedelta, exclude: str
) -> SessionMeta | None:
    """The student's session nearest the call span within ``window`` (not unmatched ones)."""
    sessions = store.student_sessions_before(student_id, end + window, limit=CANDIDATES)
    fits = [
        (gap(m, start, end), -m.start_time.timestamp(), m)
        for m in sessions
        if m.session_id != exclude and m.status != "unmatched" and gap(m, start, end) <= window
    ]
    if not fits:
        return None
    return min(fits, key=lambda t: (t[0], t[1]))[2]


def _matching(source: SessionMeta, *, now: datetime, actor: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "strategy": "manual",
        "source": "assign",
        "assigned_from": source.session_id,
        "assigned_at": iso(now),
        "assigned_by": actor,
        "platform": source.platform,
        "call_id": source.call_ids[0] if source.call_ids else None,
        "previous": source.matching,
    }
    return {k: v for k, v in out.items() if v is not None}


def _merged_conversation(
    target: SessionMeta, source: SessionMeta, *, blobs: BlobStore | None, limit: int
) -> dict[str, Any] | None:
    incoming = source.conversation
    if not target.conversation:
        return incoming
    if not incoming:
        return target.conversation
    old = hydrate_conversation(target.conversation, blobs) or {}
    new = hydrate_conversation(incoming, blobs) or {}
    return _offload(_appended(old, new), target.session_id, blobs, limit)


def plan_move(
    source: SessionMeta,
    source_version: int | None,
    *,
    target: tuple[SessionMeta, int | None] | None,
    student_id: str,
    head: Head | None,
    blobs: BlobStore | None,
    now: datetime,
    actor: str | None,
    suffix: int = 1,
    inline_limit: int = INLINE_LIMIT,
) -> PlatformMove:
    """The move of ``source``'s platform data into ``target`` (or a new session of ``student_id``)."""
    matching = _matching(source, now=now, actor=actor)
    start, end = _call_span(source)
    if target is None:
        meta = source.model_copy(
            update={
                "session_id": session_id_for(student_id, start, suffix),
                "student_id": student_id,
                "status": "completed",
                "matching": matching,
                "created_at": now,
                "updated_at": now,
                "analysis": None,
            }
        )
        return PlatformMove(source=source, source_version=source_version, target=meta, create=True, now=now)
    found, version = target
    end_time = max(session_span(found)[1], end)
    meta = found.model_copy(
        update={
            "status": "completed" if found.status in ("active", "closed", "completed") else found.status,
            "end_time": end_time,
            "platform": found.platform or source.platform,
            "call_ids": [*found.call_ids, *(c for c in source.call_ids if c not in found.call_ids)],
            "conversation": _merged_conversation(found, source, blobs=blobs, limit=inline_limit),
            "vapi_metadata": callmeta.combine(found.vapi_metadata, source.vapi_metadata),
            "platform_metadata": callmeta.combine(found.platform_metadata, source.platform_metadata),
            "matching": matching,
            "updated_at": now,
        }
    )
    ended = end_time if head is not None and head.session_id == found.session_id else None
    return PlatformMove(
        source=source,
        source_version=source_version,
        target=meta,
        create=False,
        target_version=version,
        head_ended_at=ended,
        now=now,
    )


def assign_session(
    session_id: str,
    request: AssignRequest,
    *,
    store: ReviewStore,
    blobs: BlobStore | None,
    now: datetime,
    match_window: timedelta,
    actor: str | None = None,
    audit: AuditSink | None = None,
) -> AssignResult:
    """Assign the unmatched session ``session_id`` (see the module docstring)."""
    suffix = 1
    for _ in range(MAX_ATTEMPTS):
        found = store.get_session_versioned(session_id)
        if found is None:
            earlier = store.get_assignment(session_id)
            if earlier is None:
                raise NotFound(f"no session {session_id!r}", field="session_id")
            raise Conflict(f"session {session_id!r} was already assigned to {earlier!r}", field="session_id")
        source, version = found
        if source.status != "unmatched":
            raise Conflict(
                f"session {session_id!r} is {source.status}, not unmatched: only unmatched sessions can be assigned",
                field="session_id",
            )
        target = _resolve_target(source, request, store=store, window=match_window)
        student = target[0].student_id if target else str(request.student_id)
        head = store.get_head(student)
        move = plan_move(
            source,
            version,
            target=target,
            student_id=student,
            head=head,
            blobs=blobs,
            now=now,
            actor=actor,
            suffix=suffix,
        )
        try:
            store.move_platform_data(move)
        except SessionIdTaken:
            suffix += 1
            continue
        except DuplicateDelivery as dup:
            raise Conflict(
                f"session {session_id!r} was already assigned to {dup.session_id!r}", field="session_id"
            ) from dup
        except StoreConflict:
            continue
        outcome: Literal["merged", "created"] = "created" if move.create else "merged"
        if audit is not None:
            audit(
                AssignmentAudit(
                    at=now,
                    student_id=student,
                    session_id=move.target.session_id,
                    assigned_from=session_id,
                    outcome=outcome,
                )
            )
        return AssignResult(
            session_id=move.target.session_id, assigned_from=session_id, outcome=outcome, student_id=student
        )
    raise ServiceUnavailable("too much contention on this session; retry")


def _resolve_target(
    source: SessionMeta, request: AssignRequest, *, store: ReviewStore, window: timedelta
) -> tuple[SessionMeta, int | None] | None:
    if request.session_id is not None:
        if request.session_id == source.session_id:
            raise Unprocessable("session_id: a session cannot be assigned to itself", field="session_id")
        target = store.get_session_versioned(request.session_id)
        if target is None:
            raise Unprocessable(f"session_id: no session {request.session_id!r}", field="session_id")
        if target[0].status == "unmatched":
            raise Conflict(
                f"session_id: {request.session_id!r} is itself unmatched; assign it to a student first",
                field="session_id",
            )
        if request.student_id is not None and target[0].student_id != request.student_id:
            raise Unprocessable(
                f"session_id: {request.session_id!r} is not a session of student {request.student_id!r}",
                field="session_id",
            )
        return target
    assert request.student_id is not None
    start, end = _call_span(source)
    near = nearest_session(store, request.student_id, start, end, window=window, exclude=source.session_id)
    if near is None:
        return None
    return store.get_session_versioned(near.session_id)
