"""Session files: every closed or completed session saved as one JSON object (``auto_save``).

The object is the session's export, exactly what ``GET /sessions/{id}`` answers (it is built
by :func:`session_tracker.sessions.read_export`, the same code), at
``sessions/date=YYYY-MM-DD/{session_id}.json`` (the UTC day the session started) in the
stack's bucket, or under the local data directory. It is written again whenever the session
changes (late data, a merge, an assignment, an analysis) and removed when the session is
deleted (erasure, retention) or reopened (it is not finished any more; it is written again
when it closes).

Driven by the table's stream (``functions/session_files``; see ``docs/session-files.md``):

* **Idempotent.** A file is never built from the stream image: each batch reads the
  session's current state (consistent reads) and writes that, so a redelivered or retried
  record writes the same object again.
* **Ordered.** Records of one session share its partition key, so Lambda hands them over in
  order, one batch at a time; a failed record is retried before any later one
  (``ReportBatchItemFailures`` reports the first failed record). Because every write is of
  the state read *now*, a record processed late (a retry, a redriven dead letter) can only
  write the newest version, never an older one. After each write the session record is read
  again: if it changed meanwhile (another writer racing on the same session, which only a
  manual redrive can cause), the file is written again, so the last write is the newest state.
* **One write per session per batch.** Several records of the same session in a batch give
  one read and one write; a change that alters nothing in the export (the analysis
  bookkeeping flags) writes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from session_tracker.blobs import BlobStore, DirBlobStore, S3BlobStore
from session_tracker.models import SessionExport, SessionMeta, parse_iso, to_utc
from session_tracker.sessions import read_session_export
from session_tracker.store.ports import SessionFilesStore

PREFIX = "sessions/"
FILE_STATUSES = frozenset({"closed", "completed"})
"""Sessions that have a file: finished ones (``active`` and ``unmatched`` ones do not)."""
MAX_ROUNDS = 3
"""Writes of one session in one batch before giving up (the stream then retries the record)."""
_NOT_EXPORTED = frozenset({"created_at", "updated_at"})


class FileSink(Protocol):
    """Where session files go: the stack's bucket (S3) or a local directory."""

    def put(self, key: str, data: bytes, *, content_type: str = "application/json") -> str: ...

    def delete(self, key: str) -> None: ...


class SessionKeptChanging(RuntimeError):
    """The session changed after every write of this batch; the stream retries the record."""


def file_key(session_id: str, start_time: datetime) -> str:
    """``sessions/date=YYYY-MM-DD/{session_id}.json``, by the UTC day the session started."""
    return f"{PREFIX}date={to_utc(start_time):%Y-%m-%d}/{session_id}.json"


def file_body(export: SessionExport) -> bytes:
    """The export as one line of JSON (what Athena's JSON SerDe and DuckDB read), same fields
    and values as ``GET /sessions/{id}``."""
    return export.model_dump_json().encode("utf-8") + b"\n"


# ------------------------------------------------------------------ stream records
@dataclass(frozen=True)
class SessionChange:
    """What one stream record of a session record says (images as stored; decoded by
    :func:`session_tracker.store.dynamo_stream.session_change`)."""

    session_id: str
    sequence: str
    old: SessionMeta | None
    new: SessionMeta | None

    @property
    def start_days(self) -> set[datetime]:
        """Start times in either image: a late call can move a session to an earlier day."""
        return {m.start_time for m in (self.old, self.new) if m is not None}

    def changes_export(self) -> bool:
        """Whether this change can alter the file (not only analysis bookkeeping flags)."""
        if self.old is None or self.new is None:
            return True
        return _exported(self.old) != _exported(self.new)


def _exported(meta: SessionMeta) -> dict[str, Any]:
    return meta.model_dump(mode="json", exclude=set(_NOT_EXPORTED))


# --------------------------------------------------------------------------- writing
Action = Literal["written", "deleted", "unchanged"]


@dataclass
class SyncOutcome:
    """What a batch did; ``failed`` are the sequence numbers to report as batch item failures."""

    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    puts: int = 0
    deletes: int = 0


@dataclass(frozen=True)
class _Pending:
    session_id: str
    first_sequence: str
    days: frozenset[datetime]


def _group(changes: Iterable[SessionChange]) -> list[_Pending]:
    """Sessions of the batch that need syncing, in order of their first record that matters."""
    order: dict[str, _Pending] = {}
    for change in changes:
        if not change.changes_export() or not change.session_id:
            continue
        seen = order.get(change.session_id)
        days = frozenset(change.start_days | (seen.days if seen else frozenset()))
        first = seen.first_sequence if seen else change.sequence
        order[change.session_id] = _Pending(change.session_id, first, days)
    return list(order.values())


def sync_session(
    session_id: str,
    *,
    store: SessionFilesStore,
    blobs: BlobStore | None,
    sink: FileSink,
    known_starts: Iterable[datetime] = (),
    outcome: SyncOutcome | None = None,
) -> Action:
    """Make the session's file match the session as stored now (write, replace or delete it).

    ``known_starts`` are start times the session had (from the stream images): the file under
    any other day than the current one is removed.
    """
    outcome = outcome if outcome is not None else SyncOutcome()
    starts = set(known_starts)
    for _ in range(MAX_ROUNDS):
        found = read_session_export(session_id, store=store, blobs=blobs)
        if found is None or found[1].status not in FILE_STATUSES:
            if found is not None:
                starts.add(found[0].start_time)
            for day in sorted({file_key(session_id, s) for s in starts}):
                sink.delete(day)
                outcome.deletes += 1
            return "deleted"
        meta, export = found
        key = file_key(session_id, export.start_time)
        sink.put(key, file_body(export))
        outcome.puts += 1
        for stale in sorted({file_key(session_id, s) for s in starts} - {key}):
            sink.delete(stale)
            outcome.deletes += 1
        starts = {export.start_time}
        now = store.get_session(session_id)
        if now is not None and _exported(now) == _exported(meta):
            return "written"
        # Changed since it was read (or gone): the newest state wins, write again.
        starts |= {now.start_time} if now is not None else set()
    raise SessionKeptChanging(f"session {session_id} changed after each of {MAX_ROUNDS} writes")


def sync_batch(
    changes: Sequence[SessionChange],
    *,
    store: SessionFilesStore,
    blobs: BlobStore | None,
    sink: FileSink,
    on_error: Callable[[str, Exception], None] = lambda session_id, exc: None,
) -> SyncOutcome:
    """Sync every session a batch of stream records touched, one write each.

    A session that fails (S3 or DynamoDB down) puts its first record's sequence number in
    ``failed``; the sessions after it are still synced (a retry re-syncs them harmlessly).
    """
    outcome = SyncOutcome()
    for pending in _group(changes):
        try:
            action = sync_session(
                pending.session_id,
                store=store,
                blobs=blobs,
                sink=sink,
                known_starts=pending.days,
                outcome=outcome,
            )
        except Exception as exc:
            on_error(pending.session_id, exc)
            outcome.failed.append(pending.first_sequence)
            continue
        getattr(outcome, action).append(pending.session_id)
    skipped = {c.session_id for c in changes} - {p.session_id for p in _group(changes)}
    outcome.unchanged += sorted(skipped)
    return outcome


def sink_from_env(env: Mapping[str, str] | None = None) -> FileSink | None:
    """``SESSION_FILES_BUCKET`` (S3, AWS) or ``SESSION_FILES_DIR`` (a directory, the local stack);
    ``None`` when neither is set. Called by the handler's dependencies, not the domain."""
    env = os.environ if env is None else env
    if env.get("SESSION_FILES_BUCKET"):
        return S3BlobStore(env["SESSION_FILES_BUCKET"])
    if env.get("SESSION_FILES_DIR"):
        return DirBlobStore(env["SESSION_FILES_DIR"])
    return None


def parse_file(data: bytes) -> dict[str, Any]:
    """A session file back as the JSON object it holds."""
    parsed = json.loads(data)
    if not isinstance(parsed, dict):
        raise ValueError("a session file holds one JSON object")
    return parsed


def day_of(value: str) -> str:
    """``YYYY-MM-DD`` of an export's ``start_time`` (the partition a file is under)."""
    return f"{parse_iso(value):%Y-%m-%d}"
