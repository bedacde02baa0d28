"""What each caller needs from storage: one small protocol per caller (no AWS imports).

The domain modules type their ``store`` argument on the protocol of their caller, so a
domain module imports this file and never boto3. Two implementations exist:
:class:`session_tracker.store.dynamo.DynamoStore` (one DynamoDB table, one module per
access pattern) and :class:`session_tracker.store.fake.InMemoryStore` (unit tests; it
passes the same scenario suite as DynamoDB Local and moto).

Lost races come back as the domain errors of :mod:`session_tracker.errors`
(``HeadChanged``, ``SessionIdTaken``, ``DuplicateInteraction``, ``DuplicateDelivery``,
``StoreConflict``), never as AWS exceptions.

A new access pattern (erasure, audit, session files, tool-call matching ...) adds its own
protocol here, its DynamoDB module next to the others, and the same methods on the fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from session_tracker.access import KeyRecord
from session_tracker.audit import AuditEntry
from session_tracker.models import (
    AnalysisState,
    AnalysisUsage,
    CallLink,
    Head,
    Interaction,
    PlatformMove,
    PlatformWrite,
    SessionMeta,
    SessionRef,
)


class SessionReader(Protocol):
    """Reading sessions (sessions API, pages, CLI, export, analysis input)."""

    def read_session(self, session_id: str) -> tuple[SessionMeta, list[Interaction]] | None:
        """The session record and its calls in time order; ``None`` when it does not exist."""
        ...

    def list_student_sessions(
        self, student_id: str, *, start: datetime, end: datetime, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[SessionMeta], str | None]:
        """One page of a student's sessions started in ``[start, end]``, newest first."""
        ...

    def list_sessions_between(
        self, *, start: datetime, end: datetime, limit: int = 50, cursor: str | None = None, max_days: int = 32
    ) -> tuple[list[SessionRef], str | None]:
        """One page of every student's sessions started in ``[start, end]``, newest first."""
        ...


class IngestStore(Protocol):
    """Logging tool calls (``POST /interactions``)."""

    def get_head(self, student_id: str) -> Head | None: ...

    def get_session(self, session_id: str) -> SessionMeta | None: ...

    def append_to_head(self, head: Head, records: Sequence[Interaction]) -> Head: ...

    def reopen_session(self, head: Head, records: Sequence[Interaction]) -> Head: ...

    def open_session(
        self, meta: SessionMeta, records: Sequence[Interaction], *, expected_head: Head | None
    ) -> Head: ...

    def create_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None: ...

    def append_to_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None: ...

    def neighbours(self, student_id: str, at: datetime) -> tuple[SessionMeta | None, SessionMeta | None]: ...

    def merge_session(self, into: SessionMeta, merged: SessionMeta, *, head: Head | None) -> None:
        """Fold the later session ``merged`` into ``into`` (a call bridged the gap between them)."""
        ...

    def get_call_link(self, call_id: str) -> CallLink | None: ...

    def claim_session(self, session_id: str, *, call_id: str, student_id: str, now: datetime) -> bool: ...


class ToolCallReader(Protocol):
    """Tool-call matching: the MCP calls logged around a platform call, by time."""

    def sessions_with_calls_between(
        self, start: datetime, end: datetime, *, student_id: str | None = None, limit: int = 50
    ) -> list[tuple[SessionMeta, list[Interaction]]]:
        """Sessions (of ``student_id``, or of every student) active in ``[start, end]``, each
        with its logged calls whose timestamps fall in ``[start, end]`` (time order)."""
        ...


class PlatformStore(ToolCallReader, Protocol):
    """Merging platform data into sessions (webhooks)."""

    def get_head(self, student_id: str) -> Head | None: ...

    def get_call_link(self, call_id: str) -> CallLink | None: ...

    def get_delivery(self, delivery_id: str) -> str | None: ...

    def get_session_versioned(self, session_id: str) -> tuple[SessionMeta, int | None] | None: ...

    def student_sessions_before(self, student_id: str, before: datetime, *, limit: int = 10) -> list[SessionMeta]: ...

    def open_sessions_since(self, since: datetime, *, limit: int = 50) -> list[SessionMeta]: ...

    def write_platform_data(self, write: PlatformWrite) -> None: ...

    def create_platform_session(self, meta: SessionMeta, write: PlatformWrite, *, move_head: bool) -> None: ...

    def claim_session(self, session_id: str, *, call_id: str, student_id: str, now: datetime) -> bool: ...


class CloserStore(Protocol):
    """Closing idle sessions (``close_idle``, on a schedule)."""

    def due_sessions(self, cutoff: datetime, *, limit: int, page_size: int = 500) -> list[tuple[str, datetime]]: ...

    def get_sessions(self, session_ids: Sequence[str]) -> dict[str, SessionMeta]: ...

    def sessions_to_close(self, session_ids: Sequence[str], *, now: datetime) -> dict[str, SessionMeta]:
        """Due records with counters derived from their calls: active ones, and closed ones
        whose re-check (``RECHECK_AFTER`` after closing) is due."""
        ...

    def rebucket(self, meta: SessionMeta) -> None:
        """Re-index an active session that is not idle yet at its newest call."""
        ...

    def finish_recheck(
        self, meta: SessionMeta, *, summary: dict[str, Any] | None, now: datetime, request_analysis: bool
    ) -> None:
        """End a re-check; ``summary``: re-close with ``meta``'s counters. :class:`StoreConflict` if it changed."""
        ...

    def close_session(
        self, meta: SessionMeta, *, end_time: datetime, summary: dict[str, Any], now: datetime, request_analysis: bool
    ) -> None: ...


class AnalysisStore(SessionReader, Protocol):
    """Analysis state, daily spend and the analyzer's inputs (``analyze``, on-request analysis)."""

    def previous_sessions(self, student_id: str, before: datetime, *, limit: int) -> list[SessionMeta]: ...

    def get_analysis_state(self, session_id: str) -> AnalysisState | None: ...

    def request_analysis(self, session_id: str, *, now: datetime, trigger: str) -> None: ...

    def save_analysis(
        self, session_id: str, analysis: dict[str, Any], *, content_updated_at: str | None, clear_pending: bool
    ) -> bool: ...

    def reserve_analysis_slot(self, day: str, *, max_per_day: int, now: datetime) -> bool: ...

    def release_analysis_slot(self, day: str) -> None: ...

    def record_usage(self, day: str, *, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None: ...

    def get_usage(self, day: str) -> AnalysisUsage: ...


class ReviewStore(Protocol):
    """Reviewing unmatched data (``POST /sessions/{id}/assign``)."""

    def get_session_versioned(self, session_id: str) -> tuple[SessionMeta, int | None] | None: ...

    def student_sessions_before(self, student_id: str, before: datetime, *, limit: int = 10) -> list[SessionMeta]: ...

    def get_head(self, student_id: str) -> Head | None: ...

    def get_assignment(self, source_session_id: str) -> str | None:
        """The session an earlier assignment moved ``source_session_id``'s data to."""
        ...

    def move_platform_data(self, move: PlatformMove) -> None:
        """Apply ``move``; :class:`StoreConflict` when the source or target changed meanwhile,
        :class:`SessionIdTaken` when a new target's id exists, :class:`DuplicateDelivery` when
        another assignment of the source won."""
        ...


class SessionFilesStore(SessionReader, Protocol):
    """The session-files writer: the session as the read API exports it, then its record again
    (consistent) to see whether it changed while the file was written."""

    def get_session(self, session_id: str) -> SessionMeta | None: ...


class PageReader(SessionReader, Protocol):
    """The tutor's pages (``/ui``) and the CLI's student view: bounded, projected reads."""

    def student_history(self, student_id: str, *, start: datetime, end: datetime, limit: int) -> list[SessionMeta]:
        """The student's sessions that started in ``[start, end]``, newest first, at most ``limit``,
        with the list fields, the conversation window and ``analysis.status`` only."""
        ...

    def session_lines(self, session_ids: Sequence[str]) -> dict[str, SessionMeta]:
        """Those sessions' records with the same projection as :meth:`student_history`."""
        ...

    def session_notes(self, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``analysis`` (status, progress_update, learning_insights, analyzed_at, error) of each session."""
        ...

    def session_tools(self, session_id: str) -> set[str]:
        """The tool (function) names of a session's logged calls."""
        ...

    def student_sessions_before(self, student_id: str, before: datetime, *, limit: int = 10) -> list[SessionMeta]: ...

    def open_sessions_since(self, since: datetime, *, limit: int = 50) -> list[SessionMeta]: ...


class KeyStore(Protocol):
    """Named API keys (``/keys``, ``session-tracker keys``) and their lookup at authentication
    (:class:`session_tracker.access.KeyLookup` is the read half)."""

    def create_key(self, record: KeyRecord) -> None:
        """Store a new key (its hash only); :class:`StoreConflict` when an active key has that name."""
        ...

    def find_key(self, key_hash: str) -> KeyRecord | None:
        """The active key with that hash, else ``None`` (revoked keys are not found)."""
        ...

    def find_key_by_name(self, name: str) -> KeyRecord | None:
        """The record of that name (revoked or not)."""
        ...

    def list_keys(self) -> list[KeyRecord]:
        """Every key's record, revoked ones too, by name."""
        ...

    def touch_key(self, name: str, *, at: datetime) -> None:
        """Record a use of the key (callers throttle: at most once per key per few minutes)."""
        ...

    def revoke_key(self, name: str, *, at: datetime) -> KeyRecord | None:
        """Revoke the active key of that name; ``None`` when there is none."""
        ...


class AuditStore(Protocol):
    """The access audit: appended by reads, erasures and assignments, listed by ``GET /audit``."""

    def append_audit(self, entry: AuditEntry) -> None: ...

    def list_audit(
        self,
        *,
        student_id: str | None,
        start: datetime,
        end: datetime,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[AuditEntry], str | None]:
        """One page of entries in ``[start, end]`` (of ``student_id``, or everyone's), newest first;
        :class:`InvalidCursor` for a token another query made."""
        ...


class ErasureStore(Protocol):
    """Erasing one student (:mod:`session_tracker.erasure`), a page of sessions at a time."""

    def student_session_ids(self, student_id: str, *, limit: int) -> tuple[list[str], bool]:
        """Up to ``limit`` of the student's session ids (any order) and whether more remain."""
        ...

    def assigned_sources(self, session_id: str) -> list[str]:
        """The unmatched sessions assigned into ``session_id`` (``POST /sessions/{id}/assign``)
        that no longer exist: their blobs stay under their own ids until an erasure."""
        ...

    def erase_session(self, student_id: str, session_id: str) -> int | None:
        """Delete the session's calls, idempotency markers, call links and delivery markers,
        then its record; the number of calls deleted, ``None`` when it was not the student's
        (or is already gone)."""
        ...

    def erase_student_rest(self, student_id: str) -> None:
        """Delete the student's HEAD and the older audit entries about the student."""
        ...


class SessionStore(
    ErasureStore,
    KeyStore,
    AuditStore,
    IngestStore,
    PlatformStore,
    CloserStore,
    AnalysisStore,
    SessionFilesStore,
    PageReader,
    ToolCallReader,
    ReviewStore,
    Protocol,
):
    """Everything at once: what ``Deps.store`` holds (each caller uses its own slice)."""
