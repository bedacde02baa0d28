"""Session rules: which session a logged tool call belongs to.

Pure functions over models; the clock (``now``) and the store come in as arguments.

- A call joins the student's current session when its time is no more than
  ``timeout`` after the session's last activity; a longer gap opens a new one.
- Session ids are ``{student_id}_{YYYYMMDD_HHMM}`` (UTC, first call), with ``_2``,
  ``_3`` ... when that id is taken.
- An explicit ``session_id`` always wins.
- A late call (timestamp before the current session began) lands in the earlier
  session whose span it falls into (within ``timeout``), else in a session of its own.
- Retried client ``interaction_id`` values are stored once.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import Enum

from session_tracker.blobs import BlobStore, hydrate, offload, offloaded
from session_tracker.errors import (
    Conflict,
    DuplicateInteraction,
    HeadChanged,
    ServiceUnavailable,
    SessionIdTaken,
    StoreConflict,
    Unprocessable,
)
from session_tracker.length import format_duration, session_length
from session_tracker.models import (
    UNKNOWN_STUDENT,
    ExportInteraction,
    Head,
    IngestResult,
    Interaction,
    InteractionIn,
    SessionExport,
    SessionMeta,
    SessionSummary,
    iso,
    to_utc,
)
from session_tracker.privacy import Redactor
from session_tracker.store.ports import IngestStore, SessionReader

MAX_ATTEMPTS = 12
RACE_SKEW = timedelta(seconds=60)
"""A joining call re-checks for a racing boundary (one more Query) when the newest call it read
is within ``RACE_SKEW`` of being idle for ``timeout`` on the server's clock: only then can a
concurrent call (stamped at most ``RACE_SKEW`` ahead of the clock) have opened a new session
that this call should have bridged. A boundary always re-checks after its transaction. Between
the two, whichever commits last sees the other, so the split is merged whatever the order."""
DEFAULT_CLOCK_SKEW = timedelta(days=1)


class Decision(Enum):
    JOIN = "join"
    NEW = "new"
    LATE = "late"
    REOPEN = "reopen"


def session_id_for(student_id: str, started: datetime, n: int = 1) -> str:
    """``{student_id}_{YYYYMMDD_HHMM}`` from the first call's UTC time; ``_n`` for n > 1."""
    base = f"{student_id}_{to_utc(started):%Y%m%d_%H%M}"
    return base if n == 1 else f"{base}_{n}"


SESSION_ID_FORMAT = re.compile(r"^(?P<student>[A-Za-z0-9][A-Za-z0-9_.@+-]*)_\d{8}_\d{4}(?:_\d+)?$")
"""Generated session ids: ``{student_id}_{YYYYMMDD_HHMM}`` with an optional ``_n``."""


def session_id_owner(session_id: str) -> str | None:
    """The student a generated-format session id names, ``None`` for other ids."""
    implied = SESSION_ID_FORMAT.match(session_id)
    return implied.group("student") if implied else None


def owns_session_id(student_id: str, session_id: str) -> bool:
    """Whether ``session_id`` is one of ``student_id``'s own: ``{student_id}_...``, and not an id
    in the generated format of another student whose id starts the same (``ann`` vs ``ann_b``)."""
    if not session_id.startswith(f"{student_id}_"):
        return False
    owner = session_id_owner(session_id)
    return owner is None or owner == student_id


def decide(head: Head | None, at: datetime, timeout: timedelta) -> Decision:
    """Where a non-explicit call at ``at`` goes, given the student's head pointer."""
    if head is None:
        return Decision.NEW
    if at < head.session_start:
        return Decision.LATE
    if head.ended_at is not None and at > head.ended_at:
        return Decision.NEW
    if at - head.last_activity > timeout:
        return Decision.NEW
    if head.closed_at is not None and at > head.closed_at:
        return Decision.REOPEN
    return Decision.JOIN


def to_record(
    item: InteractionIn, *, now: datetime, new_id: Callable[[], str], redactor: Redactor | None = None
) -> Interaction:
    """The stored form of a posted call: timestamp defaults to receive time, id to a new uuid,
    arguments redacted (``privacy:``) before anything stores, logs or analyses them."""
    arguments = redactor.arguments(item.arguments, student_id=item.student_id) if redactor else item.arguments
    return Interaction(
        interaction_id=item.interaction_id or new_id(),
        client_id=item.interaction_id is not None,
        student_id=item.student_id,
        function=item.function,
        timestamp=item.timestamp or now,
        received_at=now,
        arguments=arguments,
        data_provided=item.data_provided,
        subjects=item.subjects,
        response_size=item.response_size,
        duration_ms=item.duration_ms,
        is_error=item.is_error,
        platform=item.platform,
        call_id=item.call_id,
    )


def offload_arguments(rec: Interaction, blobs: BlobStore | None) -> Interaction:
    """A call whose arguments are too large for a database item keeps them in the blob store
    (``arguments/{student_id}/{sha256}.json``: content-addressed, so a retry writes the same
    object) and a pointer in the item; every read puts them back whole."""
    moved = offload({"arguments": rec.arguments}, ["arguments"], prefix=f"arguments/{rec.student_id}", blobs=blobs)
    if "arguments_blob" not in moved:
        return rec
    return rec.model_copy(update={"arguments": {}, "arguments_blob": moved["arguments_blob"]})


def hydrate_arguments(rec: Interaction, blobs: BlobStore | None) -> Interaction:
    """The call with offloaded arguments read back; gone from blob storage: a note instead."""
    if rec.arguments_blob is None:
        return rec
    restored = hydrate({"arguments_blob": rec.arguments_blob}, blobs) or {}
    arguments = restored.get("arguments")
    if not isinstance(arguments, dict):
        size = rec.arguments_blob.get("bytes")
        arguments = {"_missing": f"arguments ({size} bytes) are no longer in blob storage (expired or deleted)"}
    return rec.model_copy(update={"arguments": arguments, "arguments_blob": None})


def new_meta(session_id: str, first: Interaction, *, now: datetime, status: str = "active") -> SessionMeta:
    return SessionMeta(
        session_id=session_id,
        student_id=first.student_id,
        start_time=first.timestamp,
        last_activity=first.timestamp,
        status=status,
        platform=first.platform,
        interaction_count=1,
        subjects=sorted(set(first.subjects)),
        data_provided=sorted(set(first.data_provided)),
        call_ids=[first.call_id] if first.call_id else [],
        created_at=now,
        updated_at=now,
    )


def check_times(
    items: Sequence[InteractionIn],
    *,
    now: datetime,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    field_prefix: str = "",
) -> None:
    """422 naming the field for a timestamp more than ``clock_skew`` in the future: a wrong
    clock, whose call would open a session that never closes.

    Old timestamps are accepted (back-filling is legitimate); their retention counts from
    the event time, so a call older than ``retention_days`` is deleted by the table's TTL
    soon after it is stored (``docs/architecture.md``, "Limits").
    """
    for index, item in enumerate(items):
        at = item.timestamp
        if at is not None and at > now + clock_skew:
            where = f"{field_prefix}{index}.timestamp" if field_prefix else "timestamp"
            raise Unprocessable(
                f"{where}: {iso(at)} is more than {format_duration(clock_skew)} ahead of the server's clock "
                f"({iso(now)}); check the caller's clock",
                field=where,
            )


def log_interactions(
    items: Sequence[InteractionIn],
    *,
    store: IngestStore,
    now: datetime,
    timeout: timedelta,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    field_prefix: str = "",
    blobs: BlobStore | None = None,
    redactor: Redactor | None = None,
) -> list[IngestResult]:
    """Log tool calls into sessions; results in the order of ``items``.

    Times are checked first (:func:`check_times`): nothing of a request with a refused
    timestamp is stored.
    """
    check_times(items, now=now, clock_skew=clock_skew, field_prefix=field_prefix)
    records = [offload_arguments(to_record(item, now=now, new_id=new_id, redactor=redactor), blobs) for item in items]
    results: list[IngestResult | None] = [None] * len(records)
    first_seen: dict[tuple[str, str], int] = {}
    by_student: dict[str, list[int]] = defaultdict(list)
    for index, rec in enumerate(records):
        key = (rec.student_id, rec.interaction_id)  # retry ids are scoped to their student
        if rec.client_id and key in first_seen:
            continue  # same id twice in one request: answered from the first below
        first_seen[key] = index
        by_student[rec.student_id].append(index)
    for student_id, indexes in by_student.items():
        indexes.sort(key=lambda i: (records[i].timestamp, i))
        queue = [(i, records[i], items[i].session_id) for i in indexes]
        _StudentLog(student_id, store, timeout, results, now).run(queue)
    for index, rec in enumerate(records):
        if results[index] is None:
            first = results[first_seen[(rec.student_id, rec.interaction_id)]]
            assert first is not None
            results[index] = first.model_copy(update={"new_session": False, "duplicate": True})
    return [r for r in results if r is not None]


class _StudentLog:
    """One student's calls from one request, logged in time order with retries on lost races."""

    def __init__(
        self,
        student_id: str,
        store: IngestStore,
        timeout: timedelta,
        results: list[IngestResult | None],
        now: datetime,
    ) -> None:
        self.student_id = student_id
        self.store = store
        self.timeout = timeout
        self.results = results
        self.now = now
        self.head: Head | None = None
        self._bridges = 0

    def _done(self, index: int, session_id: str, rec: Interaction, *, new: bool, duplicate: bool = False) -> None:
        self.results[index] = IngestResult(
            session_id=session_id, interaction_id=rec.interaction_id, new_session=new, duplicate=duplicate
        )

    def run(self, queue: list[tuple[int, Interaction, str | None]]) -> None:
        self.head = self.store.get_head(self.student_id)
        position, attempts, group_limit, suffix = 0, 0, len(queue), 1
        while position < len(queue):
            attempts += 1
            if attempts > MAX_ATTEMPTS + len(queue) * 2:
                raise ServiceUnavailable("too much contention on this student's session; retry")
            index, rec, explicit = queue[position]
            if explicit:
                if not owns_session_id(self.student_id, explicit):
                    raise Conflict(
                        f"session {explicit} is not a session of student {self.student_id}: an explicit "
                        f"session_id must be the student's own ({self.student_id}_...)",
                        field="session_id",
                    )
                self._explicit(index, rec, explicit)
                position += 1
                continue
            decision = decide(self.head, rec.timestamp, self.timeout)
            if decision is Decision.LATE:
                self._late(index, rec)
                position += 1
                continue
            if decision is Decision.NEW and rec.call_id:
                # A platform report may have created this call's session already: join it.
                link = self.store.get_call_link(rec.call_id)
                if link is not None and link.student_id in (self.student_id, UNKNOWN_STUDENT):
                    if link.student_id != self.student_id:
                        # The report came first and named no student: this call's student claims it.
                        self.store.claim_session(
                            link.session_id, call_id=rec.call_id, student_id=self.student_id, now=rec.received_at
                        )
                    self._explicit(index, rec, link.session_id)
                    position += 1
                    continue
            if decision is Decision.NEW:
                ended = self.head is not None and self.head.ended_at is not None and rec.timestamp > self.head.ended_at
                try:
                    self.head = self.store.open_session(
                        new_meta(session_id_for(self.student_id, rec.timestamp, suffix), rec, now=rec.received_at),
                        [rec],
                        expected_head=self.head,
                    )
                    opened = self.head.session_id
                    into = opened if ended else self._bridge(rec, opened)  # a platform end splits on purpose
                    self._done(index, into, rec, new=into == opened)
                    position, suffix = position + 1, 1
                except HeadChanged:
                    self.head = self.store.get_head(self.student_id)
                except SessionIdTaken:
                    suffix += 1
                except DuplicateInteraction as dup:
                    self._done(index, dup.session_id or "", rec, new=False, duplicate=True)
                    position += 1
                continue
            assert self.head is not None
            if decision is Decision.REOPEN:
                # Closed by the idle closer on the wall clock, but this call is within the
                # timeout of its last activity: it belongs there, so the session reopens.
                try:
                    self.head = self.store.reopen_session(self.head, [rec])
                    self._done(index, self.head.session_id, rec, new=False)
                    position += 1
                except HeadChanged:
                    self.head = self.store.get_head(self.student_id)
                except DuplicateInteraction as dup:
                    self._done(index, dup.session_id or self.head.session_id, rec, new=False, duplicate=True)
                    position += 1
                continue
            group = self._join_group(queue, position, group_limit)
            seen_last = self.head.last_activity
            try:
                self.head = self.store.append_to_head(self.head, [r for _, r, _ in group])
                joined = self.head.session_id
                if seen_last + self.timeout <= self.now + RACE_SKEW:
                    # A boundary racing this call could have opened a session it should have
                    # joined (a later call within the timeout): look again, merge if so.
                    joined = self._bridge(min((r for _, r, _ in group), key=lambda r: r.timestamp), joined)
                for i, r, _ in group:
                    self._done(i, joined, r, new=False)
                position += len(group)
                group_limit = len(queue)
            except HeadChanged:
                self.head = self.store.get_head(self.student_id)
            except DuplicateInteraction as dup:
                if len(group) == 1:
                    self._done(index, dup.session_id or self.head.session_id, rec, new=False, duplicate=True)
                    position += 1
                else:
                    group_limit = 1  # find which one is the duplicate

    def _bridge(self, rec: Interaction, session_id: str) -> str:
        """The gap rule across sessions, whatever the arrival order: a call in ``session_id``
        within the timeout of a call of another of the student's sessions that it should have
        joined merges the later session into the earlier one. Returns where ``rec`` ends up."""
        fresh = self.store.get_head(self.student_id)
        if fresh is None:
            return session_id
        self.head = fresh
        for call in fresh.recent:
            if call.session_id == session_id or abs(call.timestamp - rec.timestamp) > self.timeout:
                continue
            earlier, later = (
                (call.session_id, session_id) if call.timestamp <= rec.timestamp else (session_id, call.session_id)
            )
            into, merged = self.store.get_session(earlier), self.store.get_session(later)
            if into is None or merged is None or into.student_id != merged.student_id:
                continue
            if "merged" in (into.status, merged.status) or merged.start_time < min(call.timestamp, rec.timestamp):
                continue  # the later session began before these calls: not a split of theirs
            if into.status == "completed" and into.end_time is not None and into.end_time < merged.start_time:
                continue  # the platform ended the earlier one: the later one is a new session
            try:
                self.store.merge_session(into, merged, head=fresh)
            except (HeadChanged, StoreConflict):
                self.head = self.store.get_head(self.student_id)
                return self._bridge(rec, session_id) if self._bridges < 3 else session_id
            finally:
                self._bridges += 1
            self.head = self.store.get_head(self.student_id)
            return earlier
        return session_id

    def _join_group(
        self, queue: list[tuple[int, Interaction, str | None]], start: int, limit: int
    ) -> list[tuple[int, Interaction, str | None]]:
        assert self.head is not None
        group = [queue[start]]
        simulated = self.head.model_copy(
            update={"last_activity": max(self.head.last_activity, queue[start][1].timestamp)}
        )
        for entry in queue[start + 1 :]:
            if (
                len(group) >= limit
                or entry[2]
                or decide(simulated, entry[1].timestamp, self.timeout) is not Decision.JOIN
            ):
                break
            group.append(entry)
            simulated.last_activity = max(simulated.last_activity, entry[1].timestamp)
        return group

    def _explicit(self, index: int, rec: Interaction, session_id: str) -> None:
        """Explicit handoff: the named session, created if it does not exist yet."""
        for _ in range(MAX_ATTEMPTS):
            meta = self.store.get_session(session_id)
            move_head = self.head is None or rec.timestamp >= self.head.last_activity
            try:
                if meta is None:
                    self.store.create_session(
                        new_meta(session_id, rec, now=rec.received_at), [rec], move_head=move_head
                    )
                    self._done(index, session_id, rec, new=True)
                else:
                    if meta.student_id != rec.student_id:
                        raise Conflict(f"session {session_id} belongs to another student", field="session_id")
                    self.store.append_to_session(meta, [rec], move_head=move_head)
                    self._done(index, session_id, rec, new=False)
                if move_head:
                    self.head = (
                        self.store.get_head(self.student_id)
                        if self.head is None
                        else Head(
                            student_id=self.student_id,
                            session_id=session_id,
                            session_start=meta.start_time if meta else rec.timestamp,
                            last_activity=rec.timestamp,
                        )
                    )
                return
            except DuplicateInteraction as dup:
                self._done(index, dup.session_id or session_id, rec, new=False, duplicate=True)
                return
            except (HeadChanged, SessionIdTaken):
                self.head = self.store.get_head(self.student_id)
        raise ServiceUnavailable("too much contention on this session; retry")

    def _late(self, index: int, rec: Interaction) -> None:
        """A call older than the current session: into the session whose span holds it."""
        suffix = 1
        for _ in range(MAX_ATTEMPTS):
            prev, nxt = self.store.neighbours(self.student_id, rec.timestamp)
            target: SessionMeta | None = None
            if prev is not None and rec.timestamp - prev.last_activity <= self.timeout:
                target = prev
            elif nxt is not None and nxt.start_time - rec.timestamp <= self.timeout:
                target = nxt
            try:
                if target is not None:
                    fresh = self.store.get_session(target.session_id) or target
                    self.store.append_to_session(fresh, [rec], move_head=False)
                    self._done(index, self._bridge(rec, target.session_id), rec, new=False)
                else:
                    meta = new_meta(session_id_for(self.student_id, rec.timestamp, suffix), rec, now=rec.received_at)
                    self.store.create_session(meta, [rec], move_head=False)
                    self._done(index, meta.session_id, rec, new=True)
                return
            except DuplicateInteraction as dup:
                self._done(index, dup.session_id or "", rec, new=False, duplicate=True)
                return
            except SessionIdTaken:
                suffix += 1
            except HeadChanged:
                continue
        raise ServiceUnavailable("too much contention on this student's sessions; retry")


# ------------------------------------------------------------------------ reading
def summarize(meta: SessionMeta, records: Sequence[Interaction]) -> SessionSummary:
    """``session_summary`` from the session's calls and conversation (length: :mod:`.length`)."""
    span = session_length(
        start_time=meta.start_time,
        last_activity=meta.last_activity,
        end_time=meta.end_time,
        conversation=meta.conversation,
        call_times=[r.timestamp for r in records],
    )
    subjects = sorted({s for r in records for s in r.subjects} | set(meta.subjects))
    return SessionSummary(
        duration_estimated=format_duration(span),
        duration_seconds=round(span.total_seconds(), 3),
        data_requests=len(records),
        subjects_accessed=subjects,
    )


def export_session(meta: SessionMeta, records: Sequence[Interaction]) -> SessionExport:
    """The documented JSON shape of one session."""
    ordered = sorted(records, key=lambda r: (r.timestamp, r.interaction_id))
    return SessionExport(
        session_id=meta.session_id,
        student_id=meta.student_id,
        start_time=meta.start_time,
        end_time=meta.end_time,
        last_activity=meta.last_activity,
        platform=meta.platform,
        status=meta.status,
        mcp_interactions=[
            ExportInteraction(
                timestamp=r.timestamp,
                function=r.function,
                data_provided=r.data_provided,
                arguments=r.arguments,
                response_size=r.response_size or 0,
                duration_ms=r.duration_ms or 0,
                is_error=r.is_error,
                subjects=r.subjects,
                interaction_id=r.interaction_id,
                call_id=r.call_id,
            )
            for r in ordered
        ],
        conversation=meta.conversation,
        vapi_metadata=meta.vapi_metadata,
        platform_metadata=meta.platform_metadata,
        session_summary=summarize(meta, ordered),
        matching=meta.matching or {"strategy": "none"},
        analysis=meta.analysis,
    )


def read_export(session_id: str, *, store: SessionReader, blobs: BlobStore | None = None) -> SessionExport | None:
    """One session in the export shape, ``None`` when it does not exist.

    Every reader (read API, CLI, export, analysis, session files) goes through here, so a
    transcript offloaded to blob storage is always returned whole.
    """
    found = read_session_export(session_id, store=store, blobs=blobs)
    return None if found is None else found[1]


def read_session_export(
    session_id: str, *, store: SessionReader, blobs: BlobStore | None = None
) -> tuple[SessionMeta, SessionExport] | None:
    """The session record as stored and its export (what :func:`read_export` answers)."""
    found = store.read_session(session_id)
    if found is None:
        return None
    meta, records = found
    shown = meta
    large = {name: getattr(meta, name) for name in ("conversation", "vapi_metadata", "platform_metadata")}
    if any(offloaded(value) for value in large.values()) or any(r.arguments_blob for r in records):
        shown = meta.model_copy(update={name: hydrate(value, blobs) for name, value in large.items()})
        records = [hydrate_arguments(r, blobs) for r in records]
    return meta, export_session(shown, records)
