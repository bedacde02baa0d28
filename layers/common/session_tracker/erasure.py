"""Erasing a student: every item and blob of theirs, in bounded, resumable requests.

``DELETE /students/{student_id}`` (admin) and ``session-tracker forget`` call
:func:`erase_student`. What goes, in this order, so that an interrupted run still finds the
rest on the next request (the work is derived from what is still stored, never remembered):

1. each of the student's sessions (GSI1 ``STUDENT#{id}``, a page at a time): its blobs
   (``transcripts/``, ``platform/``, ``analysis/`` under the session id, and under the id of
   every unmatched session assigned into it, whose blobs keep their old id), then its idempotency
   markers, call links, delivery markers and calls, and last its session record - whose
   deletion also removes its session file (the session-files function follows the stream);
2. the student's HEAD and earlier access-audit entries (an erasure's own entries are kept);
3. the ``arguments/{student_id}/`` blobs (large tool-call arguments).

One request erases at most ``max_sessions`` sessions and starts no new session after
``deadline`` (on ``clock``); when work is left it answers ``complete: false`` (HTTP 202) with
the counts of *that* request, and the caller repeats it until ``complete: true`` (HTTP 200).
A repeat after that answers zeros. Domain logic only: the store is a port, the clock injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, Field

from session_tracker.store.ports import ErasureStore

MAX_SESSIONS = 25
"""Sessions one request erases at most (about 5 s of DynamoDB and S3 requests)."""
PAGE = 25


class Erasure(BaseModel):
    """The answer of ``DELETE /students/{student_id}``: what this request erased."""

    student_id: str
    sessions_deleted: int = 0
    interactions_deleted: int = 0
    blobs_deleted: int = 0
    erased_at: datetime | None = Field(default=None, description="Set when nothing of the student is left.")
    complete: bool = Field(
        default=True, description="false (HTTP 202): sessions are left; repeat the request until true."
    )

    def counts(self) -> dict[str, int]:
        return {
            "sessions_deleted": self.sessions_deleted,
            "interactions_deleted": self.interactions_deleted,
            "blobs_deleted": self.blobs_deleted,
        }


class ErasableBlobs(Protocol):
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; how many there were."""
        ...


def session_prefixes(session_id: str) -> tuple[str, ...]:
    """The blob prefixes of one session (where ``blobs.offload`` puts its large fields)."""
    return (f"transcripts/{session_id}/", f"platform/{session_id}/", f"analysis/{session_id}/")


def erase_student(
    student_id: str,
    *,
    store: ErasureStore,
    blobs: ErasableBlobs | None,
    now: datetime,
    max_sessions: int = MAX_SESSIONS,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Erasure:
    """Erase up to ``max_sessions`` of ``student_id``'s sessions, and the rest of the student
    once no session is left (see the module docstring)."""
    result = Erasure(student_id=student_id, complete=False)
    seen: set[str] = set()

    def out_of_budget() -> bool:
        return result.sessions_deleted >= max_sessions or (deadline is not None and clock() > deadline)

    while True:
        if result.sessions_deleted >= max_sessions:
            return result
        ids, _ = store.student_session_ids(student_id, limit=PAGE)
        fresh = [i for i in ids if i not in seen]
        if not fresh:
            break
        for session_id in fresh:
            if out_of_budget():
                return result
            seen.add(session_id)
            if blobs is not None:  # blobs first: a retry still finds their session
                for owner in (session_id, *store.assigned_sources(session_id)):
                    for prefix in session_prefixes(owner):
                        result.blobs_deleted += blobs.delete_prefix(prefix)
            calls = store.erase_session(student_id, session_id)
            if calls is not None:
                result.sessions_deleted += 1
                result.interactions_deleted += calls
    store.erase_student_rest(student_id)
    if blobs is not None:
        result.blobs_deleted += blobs.delete_prefix(f"arguments/{student_id}/")
    result.complete, result.erased_at = True, now
    return result


__all__ = ["MAX_SESSIONS", "ErasableBlobs", "Erasure", "erase_student", "session_prefixes"]
