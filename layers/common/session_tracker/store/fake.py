"""An in-memory store with the behaviour of the DynamoDB one (unit tests; no AWS imports).

Every method is atomic under one lock, like a DynamoDB transaction, and checks the same
conditions the DynamoDB store puts on its writes, raising the same domain errors in the
same order of precedence. The integration scenario suite runs on it next to moto and
DynamoDB Local (``tests/integration/conftest.py``), races included, so the fake cannot
drift from the real store unnoticed.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from session_tracker.access import KeyRecord
from session_tracker.audit import AuditEntry
from session_tracker.errors import (
    DuplicateDelivery,
    DuplicateInteraction,
    HeadChanged,
    SessionIdTaken,
    StoreConflict,
)
from session_tracker.models import (
    UNKNOWN_STUDENT,
    AnalysisState,
    AnalysisUsage,
    CallLink,
    Head,
    Interaction,
    PlatformMove,
    PlatformWrite,
    RecentCall,
    SessionMeta,
    SessionRef,
    iso,
    to_utc,
)
from session_tracker.store.cursors import InvalidCursor, decode_cursor, encode_cursor, fingerprint
from session_tracker.store.keys import ASSIGN_PREFIX
from session_tracker.store.v2 import LOOK_BACK

_LARGE = ("matching", "vapi_metadata", "platform_metadata", "session_summary", "analysis", "created_at", "updated_at")
_NOT_LISTED = ("conversation", "session_summary", "analysis")
_GSI1_KEYS = ("PK", "SK", "gsi1pk", "gsi1sk")
_GSI3_KEYS = ("PK", "SK", "gsi3pk", "gsi3sk")


@dataclass
class _Session:
    meta: SessionMeta
    calls: dict[tuple[str, str], Interaction] = field(default_factory=dict)
    platform_version: int | None = None
    pending: bool = False
    content_updated_at: str | None = None
    trigger: str | None = None

    @property
    def gsi1sk(self) -> str:
        return f"{iso(self.meta.start_time)}#{self.meta.session_id}"


class InMemoryStore:
    """:class:`~session_tracker.store.ports.SessionStore` in memory."""

    def __init__(self, *, retention_days: int = 365, cursor_secret: str | None = None) -> None:
        self.retention_days = retention_days
        self.cursor_secret = (cursor_secret or secrets.token_hex(16)).encode()
        self._lock = threading.RLock()
        self._sessions: dict[str, _Session] = {}
        self._heads: dict[str, Head] = {}
        self._markers: dict[tuple[str, str], str] = {}
        self._links: dict[str, CallLink] = {}
        self._deliveries: dict[str, str] = {}
        self._usage: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, KeyRecord] = {}
        self._audit: dict[str, AuditEntry] = {}

    # ------------------------------------------------------------------ helpers
    def _fresh(self, meta: SessionMeta) -> SessionMeta:
        """A stored copy, normalised the way a DynamoDB round trip normalises it."""
        return meta.model_copy(
            deep=True,
            update={
                "subjects": sorted(set(meta.subjects)),
                "data_provided": sorted(set(meta.data_provided)),
                "call_ids": sorted(set(meta.call_ids)),
            },
        )

    def _check_records(self, student_id: str, session_id: str, records: Sequence[Interaction]) -> None:
        target = self._sessions.get(session_id)
        for rec in records:
            if rec.client_id and (student_id, rec.interaction_id) in self._markers:
                raise DuplicateInteraction(rec.interaction_id, self._markers[(student_id, rec.interaction_id)])
            if target is not None and (iso(rec.timestamp), rec.interaction_id) in target.calls:
                raise DuplicateInteraction(rec.interaction_id, session_id)

    def _store_records(self, session: _Session, records: Sequence[Interaction]) -> None:
        for rec in records:
            session.calls[(iso(rec.timestamp), rec.interaction_id)] = rec.model_copy(update={"client_id": False})
            if rec.client_id:
                self._markers[(rec.student_id, rec.interaction_id)] = session.meta.session_id

    def _merge(self, session: _Session, records: Sequence[Interaction], now: datetime) -> None:
        meta = session.meta
        meta.interaction_count += len(records)
        meta.subjects = sorted(set(meta.subjects) | {s for r in records for s in r.subjects})
        meta.data_provided = sorted(set(meta.data_provided) | {d for r in records for d in r.data_provided})
        meta.call_ids = sorted(set(meta.call_ids) | {r.call_id for r in records if r.call_id})
        platforms = [r.platform for r in records if r.platform]
        if platforms and meta.platform is None:
            meta.platform = platforms[0]
        meta.updated_at = now
        for rec in records:
            meta.last_activity = max(meta.last_activity, rec.timestamp)

    def _link_calls(self, session_id: str, student_id: str, call_ids: set[str]) -> None:
        for call_id in call_ids:
            current = self._links.get(call_id)
            if current is not None and current.student_id not in (student_id, UNKNOWN_STUDENT):
                continue  # linked to another student's session: never re-pointed
            self._links[call_id] = CallLink(call_id=call_id, session_id=session_id, student_id=student_id)

    def _can_move_head(self, meta: SessionMeta) -> bool:
        current = self._heads.get(meta.student_id)
        return current is None or current.last_activity <= meta.last_activity

    def _move_head(self, meta: SessionMeta, *, call_id: str | None = None, ended_at: datetime | None = None) -> None:
        self._heads[meta.student_id] = Head(
            student_id=meta.student_id,
            session_id=meta.session_id,
            session_start=meta.start_time,
            last_activity=meta.last_activity,
            call_id=call_id,
            ended_at=ended_at,
        )

    # ------------------------------------------------------------- ingest reads
    def get_head(self, student_id: str) -> Head | None:
        """The HEAD with the student's newest calls (the DynamoDB store's one Query)."""
        with self._lock:
            head = self._heads.get(student_id)
            if head is None:
                return None
            calls = sorted(
                (
                    (key, s.meta.session_id)
                    for s in self._sessions.values()
                    if s.meta.student_id == student_id
                    for key in s.calls
                ),
                reverse=True,
            )[:LOOK_BACK]
            recent = [RecentCall(timestamp=ts, interaction_id=iid, session_id=sid) for (ts, iid), sid in calls]
            return head.model_copy(update={"recent": recent, "version": id(head)})

    def merge_session(self, into: SessionMeta, merged: SessionMeta, *, head: Head | None) -> None:
        with self._lock:
            target = self._sessions.get(into.session_id)
            source = self._sessions.get(merged.session_id)
            if target is None or source is None or source.meta.status == "merged":
                raise StoreConflict("merged meanwhile")
            stored = self._heads.get(merged.student_id)
            for key, rec in source.calls.items():
                target.calls[key] = rec
            for key, sid in list(self._markers.items()):
                if sid == merged.session_id:
                    self._markers[key] = into.session_id
            self._merge(target, list(source.calls.values()), merged.last_activity)
            target.meta.interaction_count = len(target.calls)
            target.meta.merged_from = sorted({*target.meta.merged_from, merged.session_id})
            source.calls = {}
            source.meta.status = "merged"
            source.meta.merged_into = into.session_id
            if stored is not None and stored.session_id == merged.session_id:
                stored.session_id = into.session_id
                stored.session_start = target.meta.start_time
            for link in self._links.values():
                if link.session_id == merged.session_id:
                    link.session_id = into.session_id

    def sessions_to_close(self, session_ids: Sequence[str], *, now: datetime) -> dict[str, SessionMeta]:
        """Counters are exact in memory: the active records as they are."""
        return {sid: m for sid, m in self.get_sessions(session_ids).items() if m.status == "active"}

    def rebucket(self, meta: SessionMeta) -> None:
        return None

    def finish_recheck(
        self, meta: SessionMeta, *, summary: dict[str, Any] | None, now: datetime, request_analysis: bool
    ) -> None:
        return None

    def get_session(self, session_id: str) -> SessionMeta | None:
        with self._lock:
            found = self._sessions.get(session_id)
            return found.meta.model_copy(deep=True) if found else None

    def neighbours(self, student_id: str, at: datetime) -> tuple[SessionMeta | None, SessionMeta | None]:
        with self._lock:
            mine = sorted(
                (s for s in self._sessions.values() if s.meta.student_id == student_id and s.meta.status != "merged"),
                key=lambda s: s.gsi1sk,
            )
            bound = f"{iso(at)}#\uffff"
            prev = [s for s in mine if s.gsi1sk <= bound]
            nxt = [s for s in mine if s.gsi1sk > bound]
            return (
                prev[-1].meta.model_copy(deep=True) if prev else None,
                nxt[0].meta.model_copy(deep=True) if nxt else None,
            )

    # ------------------------------------------------------------ ingest writes
    def append_to_head(self, head: Head, records: Sequence[Interaction]) -> Head:
        latest = max(rec.timestamp for rec in records)
        new_last = latest if latest > head.last_activity else None
        now = max(rec.received_at for rec in records)
        with self._lock:
            stored = self._heads.get(head.student_id)
            session = self._sessions.get(head.session_id)
            if (
                stored is None
                or stored.session_id != head.session_id
                or (stored.ended_at is not None and stored.ended_at < latest)
                or (stored.closed_at is not None and stored.closed_at < latest)
                or (new_last is not None and stored.last_activity > new_last)
                or session is None
                or (new_last is not None and session.meta.last_activity > new_last)
            ):
                raise HeadChanged("concurrent update")
            self._check_records(head.student_id, head.session_id, records)
            self._store_records(session, records)
            self._merge(session, records, now)
            last_call = next((rec.call_id for rec in reversed(records) if rec.call_id), head.call_id)
            stored.last_activity = new_last or stored.last_activity
            stored.call_id = last_call
            calls = {rec.call_id for rec in records if rec.call_id and rec.call_id != head.call_id}
            self._link_calls(head.session_id, head.student_id, calls)
            return head.model_copy(update={"last_activity": new_last or head.last_activity, "call_id": last_call})

    def reopen_session(self, head: Head, records: Sequence[Interaction]) -> Head:
        assert head.closed_at is not None
        latest = max(rec.timestamp for rec in records)
        new_last = max(latest, head.last_activity)
        now = max(rec.received_at for rec in records)
        with self._lock:
            stored = self._heads.get(head.student_id)
            session = self._sessions.get(head.session_id)
            moved = new_last > head.last_activity
            if (
                stored is None
                or stored.session_id != head.session_id
                or stored.closed_at != head.closed_at
                or stored.ended_at is not None
                or session is None
                or session.meta.status != "closed"
                or (moved and session.meta.last_activity > new_last)
            ):
                raise HeadChanged("concurrent update")
            self._check_records(head.student_id, head.session_id, records)
            self._store_records(session, records)
            self._merge(session, records, now)
            session.meta.status = "active"
            session.meta.end_time = None
            stored.last_activity = new_last
            stored.closed_at = None
            calls = {rec.call_id for rec in records if rec.call_id and rec.call_id != head.call_id}
            self._link_calls(head.session_id, head.student_id, calls)
            return head.model_copy(update={"last_activity": new_last, "closed_at": None})

    def open_session(self, meta: SessionMeta, records: Sequence[Interaction], *, expected_head: Head | None) -> Head:
        call_id = next((rec.call_id for rec in reversed(records) if rec.call_id), None)
        head = Head(
            student_id=meta.student_id,
            session_id=meta.session_id,
            session_start=meta.start_time,
            last_activity=meta.last_activity,
            call_id=call_id,
        )
        with self._lock:
            stored = self._heads.get(meta.student_id)
            if expected_head is None:
                head_ok = stored is None
            else:
                head_ok = (
                    stored is not None
                    and stored.session_id == expected_head.session_id
                    and stored.last_activity == expected_head.last_activity
                )
            if not head_ok:
                raise HeadChanged("concurrent update")
            if meta.session_id in self._sessions:
                raise SessionIdTaken("session id exists")
            self._check_records(meta.student_id, meta.session_id, records)
            session = self._sessions[meta.session_id] = _Session(self._fresh(meta))
            self._store_records(session, records)
            self._heads[meta.student_id] = head.model_copy()
            self._link_calls(meta.session_id, meta.student_id, set(meta.call_ids))
            return head

    def create_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None:
        with self._lock:
            if move_head and not self._can_move_head(meta):
                raise HeadChanged("concurrent update")
            if meta.session_id in self._sessions:
                raise SessionIdTaken("session id exists")
            self._check_records(meta.student_id, meta.session_id, records)
            session = self._sessions[meta.session_id] = _Session(self._fresh(meta))
            self._store_records(session, records)
            if move_head:
                self._move_head(meta)
            self._link_calls(meta.session_id, meta.student_id, set(meta.call_ids))

    def append_to_session(self, meta: SessionMeta, records: Sequence[Interaction], *, move_head: bool) -> None:
        latest = max(rec.timestamp for rec in records)
        earliest = min(rec.timestamp for rec in records)
        new_last = latest if latest > meta.last_activity else None
        new_start = earliest if earliest < meta.start_time else None
        now = max(rec.received_at for rec in records)
        moved = meta.model_copy(
            update={"last_activity": new_last or meta.last_activity, "start_time": new_start or meta.start_time}
        )
        with self._lock:
            session = self._sessions.get(meta.session_id)
            if (
                session is None
                or session.meta.student_id != meta.student_id
                or (new_last is not None and session.meta.last_activity > new_last)
                or (new_start is not None and session.meta.start_time < new_start)
                or (move_head and not self._can_move_head(moved))
            ):
                raise HeadChanged("concurrent update")
            self._check_records(meta.student_id, meta.session_id, records)
            self._store_records(session, records)
            self._merge(session, records, now)
            if new_start is not None:
                session.meta.start_time = new_start
            if move_head:
                self._move_head(moved)
            calls = {rec.call_id for rec in records if rec.call_id and rec.call_id not in meta.call_ids}
            self._link_calls(meta.session_id, meta.student_id, calls)

    def lookup_marker(self, student_id: str, interaction_id: str) -> str | None:
        with self._lock:
            return self._markers.get((student_id, interaction_id))

    # ------------------------------------------------------------------ closer
    def due_sessions(self, cutoff: datetime, *, limit: int, page_size: int = 500) -> list[tuple[str, datetime]]:
        with self._lock:
            due = [
                (s.meta.session_id, s.meta.last_activity)
                for s in self._sessions.values()
                if s.meta.status == "active" and s.meta.last_activity < cutoff
            ]
        return sorted(due, key=lambda d: (d[1], d[0]))[:limit]

    def get_sessions(self, session_ids: Sequence[str]) -> dict[str, SessionMeta]:
        with self._lock:
            return {
                sid: self._sessions[sid].meta.model_copy(deep=True, update=dict.fromkeys(_LARGE))
                for sid in dict.fromkeys(session_ids)
                if sid in self._sessions
            }

    def close_session(
        self, meta: SessionMeta, *, end_time: datetime, summary: dict[str, Any], now: datetime, request_analysis: bool
    ) -> None:
        with self._lock:
            session = self._sessions.get(meta.session_id)
            if session is None or session.meta.status != "active" or session.meta.last_activity != meta.last_activity:
                raise StoreConflict(f"session {meta.session_id} changed while closing")
            session.meta.status = "closed"
            session.meta.end_time = end_time
            session.meta.session_summary = dict(summary)
            session.meta.updated_at = now
            if request_analysis:
                session.pending, session.content_updated_at, session.trigger = True, iso(now), "on_session_complete"
            head = self._heads.get(meta.student_id)
            if head is not None and head.session_id == meta.session_id:
                head.closed_at = end_time

    # --------------------------------------------------------- analysis state
    def previous_sessions(self, student_id: str, before: datetime, *, limit: int) -> list[SessionMeta]:
        if limit <= 0:
            return []
        with self._lock:
            mine = [
                s
                for s in self._sessions.values()
                if s.meta.student_id == student_id and s.meta.status != "merged" and s.gsi1sk < iso(before)
            ]
            mine.sort(key=lambda s: s.gsi1sk, reverse=True)
            keep = ("platform", "matching", "conversation", "vapi_metadata", "platform_metadata")
            return [
                s.meta.model_copy(
                    deep=True,
                    update={
                        **dict.fromkeys(keep),
                        "data_provided": [],
                        "call_ids": [],
                        "created_at": None,
                        "updated_at": None,
                    },
                )
                for s in mine[:limit]
            ]

    def get_analysis_state(self, session_id: str) -> AnalysisState | None:
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None:
                return None
            return AnalysisState(
                session_id=s.meta.session_id,
                student_id=s.meta.student_id,
                status=s.meta.status,
                start_time=s.meta.start_time,
                pending=s.pending,
                content_updated_at=s.content_updated_at,
                trigger=s.trigger,
                analysis=dict(s.meta.analysis) if s.meta.analysis else None,
            )

    def request_analysis(self, session_id: str, *, now: datetime, trigger: str) -> None:
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None:
                raise StoreConflict(f"session {session_id} does not exist")
            s.pending, s.content_updated_at, s.trigger = True, iso(now), trigger

    def save_analysis(
        self, session_id: str, analysis: dict[str, Any], *, content_updated_at: str | None, clear_pending: bool
    ) -> bool:
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None or (clear_pending and s.content_updated_at != content_updated_at):
                return False
            s.meta.analysis = dict(analysis)
            if clear_pending:
                s.pending, s.trigger = False, None
            return True

    def reserve_analysis_slot(self, day: str, *, max_per_day: int, now: datetime) -> bool:
        if max_per_day <= 0:
            return False
        with self._lock:
            usage = self._usage.setdefault(day, {})
            if usage.get("sessions", 0) >= max_per_day:
                return False
            usage["sessions"] = usage.get("sessions", 0) + 1
            return True

    def release_analysis_slot(self, day: str) -> None:
        with self._lock:
            usage = self._usage.setdefault(day, {})
            usage["sessions"] = usage.get("sessions", 0) - 1
            usage["failures"] = usage.get("failures", 0) + 1

    def record_usage(self, day: str, *, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
        with self._lock:
            usage = self._usage.setdefault(day, {})
            for name, value in (("analyses", 1), ("input_tokens", input_tokens), ("output_tokens", output_tokens)):
                usage[name] = usage.get(name, 0) + value
            if cost_usd is not None:
                usage["cost_usd"] = usage.get("cost_usd", 0.0) + round(cost_usd, 8)

    def get_usage(self, day: str) -> AnalysisUsage:
        with self._lock:
            usage = dict(self._usage.get(day, {}))
        cost = round(float(usage.pop("cost_usd", 0.0)), 6)
        return AnalysisUsage(date=day, **usage, cost_usd=cost)

    # ------------------------------------------------------------------ reading
    def read_session(self, session_id: str) -> tuple[SessionMeta, list[Interaction]] | None:
        with self._lock:
            found = self._sessions.get(session_id)
            if found is not None and found.meta.status == "merged" and found.meta.merged_into:
                session_id = found.meta.merged_into
            s = self._sessions.get(session_id)
            if s is None:
                return None
            records = [rec.model_copy(deep=True) for _, rec in sorted(s.calls.items())]
            return s.meta.model_copy(deep=True), sorted(records, key=lambda r: (r.timestamp, r.interaction_id))

    def list_student_sessions(
        self, student_id: str, *, start: datetime, end: datetime, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[SessionMeta], str | None]:
        query = fingerprint("student", student_id, iso(start), iso(end))
        low, high = iso(start), f"{iso(end)}#\uffff"
        after = None
        if cursor:
            key = decode_cursor(cursor, query, secret=self.cursor_secret, keys=_GSI1_KEYS)
            if key["gsi1pk"] != f"STUDENT#{student_id}":
                raise InvalidCursor("the cursor belongs to another query")
            after = key["gsi1sk"]
        with self._lock:
            mine = [
                s
                for s in self._sessions.values()
                if s.meta.student_id == student_id
                and s.meta.status != "merged"
                and low <= s.gsi1sk <= high
                and (after is None or s.gsi1sk < after)
            ]
            mine.sort(key=lambda s: s.gsi1sk, reverse=True)
            page = [s.meta.model_copy(deep=True, update=dict.fromkeys(_NOT_LISTED)) for s in mine]
            keys = [s.gsi1sk for s in mine]
        next_cursor = None
        if len(page) > limit:
            sid = page[limit - 1].session_id
            last = {"PK": f"SESSION#{sid}", "SK": "META", "gsi1pk": f"STUDENT#{student_id}", "gsi1sk": keys[limit - 1]}
            next_cursor = encode_cursor(last, query, secret=self.cursor_secret)
        return page[:limit], next_cursor

    def list_sessions_between(
        self, *, start: datetime, end: datetime, limit: int = 50, cursor: str | None = None, max_days: int = 32
    ) -> tuple[list[SessionRef], str | None]:
        query = fingerprint("days", iso(start), iso(end))
        day, first_day = to_utc(end).date(), to_utc(start).date()
        after: str | None = None
        if cursor:
            key = decode_cursor(cursor, query, secret=self.cursor_secret, keys=_GSI3_KEYS, partial=("gsi3pk",))
            try:
                day = datetime.strptime(key["gsi3pk"], "DAY#%Y-%m-%d").date()
            except ValueError as exc:
                raise InvalidCursor("the cursor is not a page token of this API") from exc
            after = key.get("gsi3sk")
        low, high = iso(start), f"{iso(end)}#\uffff"
        with self._lock:
            by_day: dict[str, list[tuple[str, _Session]]] = {}
            for s in self._sessions.values():
                by_day.setdefault(f"{to_utc(s.meta.start_time):%Y-%m-%d}", []).append((s.gsi1sk, s))
        refs: list[SessionRef] = []
        keys: list[dict[str, str]] = []
        days_read = 0
        while day >= first_day and len(refs) <= limit and days_read < max_days:
            rows = sorted(by_day.get(f"{day:%Y-%m-%d}", []), key=lambda r: r[0], reverse=True)
            for sk, s in rows:
                if not low <= sk <= high or (after is not None and sk >= after):
                    continue
                refs.append(
                    SessionRef(session_id=s.meta.session_id, student_id=s.meta.student_id, start_time=s.meta.start_time)
                )
                keys.append(
                    {"PK": f"SESSION#{s.meta.session_id}", "SK": "META", "gsi3pk": f"DAY#{day:%Y-%m-%d}", "gsi3sk": sk}
                )
            after = None
            day -= timedelta(days=1)
            days_read += 1
        if len(refs) > limit:
            return refs[:limit], encode_cursor(keys[limit - 1], query, secret=self.cursor_secret)
        if day >= first_day:
            return refs, encode_cursor({"gsi3pk": f"DAY#{day:%Y-%m-%d}"}, query, secret=self.cursor_secret)
        return refs, None

    # ------------------------------------------------------------ tutor's pages
    def _line(self, meta: SessionMeta) -> SessionMeta:
        """What the pages' projection keeps (see ``dynamo_views.LINE_PATHS``)."""
        conv = meta.conversation or {}
        vapi, other = meta.vapi_metadata or {}, meta.platform_metadata or {}
        return meta.model_copy(
            deep=True,
            update={
                "call_ids": [],
                "matching": {"strategy": (meta.matching or {}).get("strategy")} if meta.matching else None,
                "conversation": {k: conv[k] for k in ("started_at", "ended_at") if k in conv} or None,
                "vapi_metadata": {k: vapi[k] for k in ("cost", "ended_reason") if k in vapi} or None,
                "platform_metadata": {k: other[k] for k in ("cost_usd", "ended_reason") if k in other} or None,
                "analysis": {"status": meta.analysis["status"]}
                if meta.analysis and "status" in meta.analysis
                else None,
                "session_summary": None,
                "created_at": None,
                "updated_at": None,
            },
        )

    def student_history(self, student_id: str, *, start: datetime, end: datetime, limit: int) -> list[SessionMeta]:
        low, high = iso(start), f"{iso(end)}#\uffff"
        with self._lock:
            mine = [
                s
                for s in self._sessions.values()
                if s.meta.student_id == student_id and s.meta.status != "merged" and low <= s.gsi1sk <= high
            ]
            mine.sort(key=lambda s: s.gsi1sk, reverse=True)
            return [self._line(s.meta) for s in mine[:limit]]

    def session_lines(self, session_ids: Sequence[str]) -> dict[str, SessionMeta]:
        with self._lock:
            return {sid: self._line(self._sessions[sid].meta) for sid in session_ids if sid in self._sessions}

    def session_notes(self, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        keys = ("status", "progress_update", "learning_insights", "analyzed_at", "error")
        with self._lock:
            return {
                sid: {k: v for k, v in (self._sessions[sid].meta.analysis or {}).items() if k in keys}
                for sid in session_ids
                if sid in self._sessions
            }

    def session_tools(self, session_id: str) -> set[str]:
        with self._lock:
            s = self._sessions.get(session_id)
            return {rec.function for rec in s.calls.values()} if s else set()

    # ------------------------------------------------------------ platform data
    def get_call_link(self, call_id: str) -> CallLink | None:
        with self._lock:
            link = self._links.get(call_id)
            return link.model_copy() if link else None

    def get_delivery(self, delivery_id: str) -> str | None:
        with self._lock:
            return self._deliveries.get(delivery_id)

    def get_session_versioned(self, session_id: str) -> tuple[SessionMeta, int | None] | None:
        with self._lock:
            s = self._sessions.get(session_id)
            return (s.meta.model_copy(deep=True), s.platform_version) if s else None

    def student_sessions_before(self, student_id: str, before: datetime, *, limit: int = 10) -> list[SessionMeta]:
        with self._lock:
            bound = f"{iso(before)}#\uffff"
            mine = [
                s
                for s in self._sessions.values()
                if s.meta.student_id == student_id and s.meta.status != "merged" and s.gsi1sk <= bound
            ]
            mine.sort(key=lambda s: s.gsi1sk, reverse=True)
            return [s.meta.model_copy(deep=True) for s in mine[:limit]]

    def open_sessions_since(self, since: datetime, *, limit: int = 50) -> list[SessionMeta]:
        with self._lock:
            found = [s for s in self._sessions.values() if s.meta.status == "active" and s.meta.last_activity >= since]
            found.sort(key=lambda s: s.meta.last_activity)
            return [s.meta.model_copy(deep=True, update=dict.fromkeys(_LARGE)) for s in found[: limit * 4]]

    def _check_delivery(self, write: PlatformWrite) -> None:
        if write.delivery_id in self._deliveries:
            raise DuplicateDelivery(write.delivery_id, self._deliveries[write.delivery_id])

    def _link_taken(self, write: PlatformWrite) -> bool:
        link = self._links.get(write.call_id) if write.call_id and write.link_call else None
        return link is not None and link.session_id != write.session_id

    def _apply_platform(self, write: PlatformWrite) -> None:
        self._deliveries[write.delivery_id] = write.session_id
        if write.call_id and write.link_call:
            self._links[write.call_id] = CallLink(
                call_id=write.call_id, session_id=write.session_id, student_id=write.student_id
            )

    def write_platform_data(self, write: PlatformWrite) -> None:
        with self._lock:
            self._check_delivery(write)
            s = self._sessions.get(write.session_id)
            head = self._heads.get(write.student_id)
            if (
                self._link_taken(write)
                or s is None
                or s.meta.student_id != write.student_id
                or s.platform_version != write.expected_version
                or (write.head_ended_at is not None and (head is None or head.session_id != write.session_id))
            ):
                raise HeadChanged("concurrent platform write")
            meta = s.meta
            meta.updated_at, meta.end_time, meta.status = write.now, write.end_time, write.status
            meta.platform = meta.platform or write.platform
            for name in ("conversation", "vapi_metadata", "platform_metadata", "matching"):
                value = getattr(write, name)
                if value is not None:
                    setattr(meta, name, value)
            if write.call_id:
                meta.call_ids = sorted(set(meta.call_ids) | {write.call_id})
            s.platform_version = (write.expected_version or 0) + 1
            if write.request_analysis:
                s.pending, s.content_updated_at = True, iso(write.now)
            self._apply_platform(write)
            if write.head_ended_at is not None and head is not None:
                head.ended_at = write.head_ended_at

    def claim_session(self, session_id: str, *, call_id: str, student_id: str, now: datetime) -> bool:
        with self._lock:
            s = self._sessions.get(session_id)
            link = self._links.get(call_id)
            if (
                s is None
                or s.meta.student_id != UNKNOWN_STUDENT
                or s.meta.status != "unmatched"
                or link is None
                or link.session_id != session_id
            ):
                return False
            s.meta.student_id, s.meta.status, s.meta.updated_at = student_id, "completed", now
            s.meta.matching = {"strategy": "explicit", "source": "call_id", "call_id": call_id, "claimed_at": iso(now)}
            s.pending, s.content_updated_at = True, iso(now)
            link.student_id = student_id
            return True

    def create_platform_session(self, meta: SessionMeta, write: PlatformWrite, *, move_head: bool) -> None:
        with self._lock:
            self._check_delivery(write)
            if meta.session_id in self._sessions:
                raise SessionIdTaken("session id exists")
            if self._link_taken(write) or (move_head and not self._can_move_head(meta)):
                raise HeadChanged("concurrent platform write")
            s = self._sessions[meta.session_id] = _Session(self._fresh(meta), platform_version=1)
            if write.request_analysis:
                s.pending, s.content_updated_at = True, iso(write.now)
            self._apply_platform(write)
            if move_head:
                self._move_head(meta, call_id=write.call_id, ended_at=write.head_ended_at)

    # ----------------------------------------------------------- tool-call matching
    def sessions_with_calls_between(
        self, start: datetime, end: datetime, *, student_id: str | None = None, limit: int = 50
    ) -> list[tuple[SessionMeta, list[Interaction]]]:
        with self._lock:
            first = f"{iso(start - timedelta(hours=6))}"
            bound = f"{iso(end)}#\uffff"
            candidates = [
                s
                for s in self._sessions.values()
                if (student_id is None or (s.meta.student_id == student_id and s.meta.status != "merged"))
                and first <= s.gsi1sk <= bound
            ]
            candidates.sort(key=lambda s: s.gsi1sk, reverse=True)
            found: list[tuple[SessionMeta, list[Interaction]]] = []
            for s in candidates[:limit]:
                meta = s.meta
                if meta.status == "unmatched" or meta.last_activity < start or meta.start_time > end:
                    continue
                calls = sorted(
                    (c.model_copy() for c in s.calls.values() if start <= c.timestamp <= end),
                    key=lambda r: (r.timestamp, r.interaction_id),
                )
                if calls:
                    found.append((meta.model_copy(deep=True, update=dict.fromkeys(_LARGE)), calls))
            return found

    # ------------------------------------------------------------------- review
    def get_assignment(self, source_session_id: str) -> str | None:
        with self._lock:
            return self._deliveries.get(ASSIGN_PREFIX + source_session_id)

    def move_platform_data(self, move: PlatformMove) -> None:
        with self._lock:
            marker = ASSIGN_PREFIX + move.source.session_id
            if marker in self._deliveries:
                raise DuplicateDelivery(marker, self._deliveries[marker])
            meta = move.target
            if move.create and meta.session_id in self._sessions:
                raise SessionIdTaken("session id exists")
            source = self._sessions.get(move.source.session_id)
            target = None if move.create else self._sessions.get(meta.session_id)
            head = self._heads.get(meta.student_id)
            if (
                source is None
                or source.meta.status != "unmatched"
                or source.meta.student_id != move.source.student_id
                or source.platform_version != move.source_version
                or source.meta.interaction_count != move.source.interaction_count
                or (not move.create and (target is None or target.meta.student_id != meta.student_id))
                or (target is not None and target.platform_version != move.target_version)
                or any(
                    (link := self._links.get(c)) is not None and link.session_id != move.source.session_id
                    for c in move.source.call_ids
                )
                or (move.head_ended_at is not None and (head is None or head.session_id != meta.session_id))
            ):
                raise StoreConflict("the session changed during the assignment")
            if move.create:
                created = self._sessions[meta.session_id] = _Session(self._fresh(meta), platform_version=1)
                created.pending, created.content_updated_at = True, iso(move.now)
            else:
                assert target is not None
                kept = target.meta
                for name in ("end_time", "status", "conversation", "vapi_metadata", "platform_metadata", "matching"):
                    value = getattr(meta, name)
                    if value is not None:
                        setattr(kept, name, value)
                kept.platform = kept.platform or meta.platform
                kept.call_ids = sorted(set(kept.call_ids) | set(meta.call_ids))
                kept.updated_at = move.now
                target.platform_version = (move.target_version or 0) + 1
                target.pending, target.content_updated_at = True, iso(move.now)
            del self._sessions[move.source.session_id]
            for call_id in move.source.call_ids:
                self._links[call_id] = CallLink(call_id=call_id, session_id=meta.session_id, student_id=meta.student_id)
            self._deliveries[marker] = meta.session_id
            for delivery_id, held in list(self._deliveries.items()):  # the table: the target's delivery_ids
                if held == move.source.session_id:
                    self._deliveries[delivery_id] = meta.session_id
            if move.head_ended_at is not None and head is not None:
                head.ended_at = move.head_ended_at

    # ------------------------------------------------------------------- API keys
    def create_key(self, record: KeyRecord) -> None:
        with self._lock:
            current = self._keys.get(record.name)
            if current is not None and not current.revoked:
                raise StoreConflict(f"an active key is named {record.name!r}")
            if any(k.key_hash == record.key_hash and not k.revoked for k in self._keys.values()):
                raise StoreConflict("a key with that hash exists")
            self._keys[record.name] = replace(record, revoked=False, revoked_at=None, last_used=None)

    def find_key(self, key_hash: str) -> KeyRecord | None:
        with self._lock:
            return next((k for k in self._keys.values() if k.key_hash == key_hash and not k.revoked), None)

    def find_key_by_name(self, name: str) -> KeyRecord | None:
        with self._lock:
            return self._keys.get(name)

    def list_keys(self) -> list[KeyRecord]:
        with self._lock:
            return [self._keys[name] for name in sorted(self._keys)]

    def touch_key(self, name: str, *, at: datetime) -> None:
        with self._lock:
            current = self._keys.get(name)
            if current is None or current.revoked or (current.last_used is not None and current.last_used >= at):
                return
            self._keys[name] = replace(current, last_used=at)

    def revoke_key(self, name: str, *, at: datetime) -> KeyRecord | None:
        with self._lock:
            current = self._keys.get(name)
            if current is None or current.revoked:
                return None
            revoked = self._keys[name] = replace(current, revoked=True, revoked_at=at)
            return revoked

    # ------------------------------------------------------------------- audit
    def append_audit(self, entry: AuditEntry) -> None:
        with self._lock:
            self._audit[f"{iso(entry.at)}#{entry.entry_id}"] = entry.model_copy(deep=True)

    def list_audit(
        self,
        *,
        student_id: str | None,
        start: datetime,
        end: datetime,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[AuditEntry], str | None]:
        query = (
            fingerprint("audit-student", student_id, iso(start), iso(end))
            if student_id is not None
            else (fingerprint("audit-days", iso(start), iso(end)))
        )
        with self._lock:
            low, high = iso(start), f"{iso(end)}#\uffff"
            keys = sorted(
                (k for k, e in self._audit.items() if low <= k <= high and student_id in (None, e.student_id)),
                reverse=True,
            )
            if cursor:
                after = decode_cursor(cursor, query, secret=self.cursor_secret, keys=("PK", "SK"))["SK"]
                keys = [k for k in keys if k < after]
            page = keys[:limit]
            more = len(keys) > limit
            entries = [self._audit[k].model_copy(deep=True) for k in page]
        next_cursor = None
        if more:
            last = self._audit[page[-1]]
            next_cursor = encode_cursor(
                {"PK": f"AUDIT#{to_utc(last.at):%Y-%m-%d}", "SK": page[-1]}, query, secret=self.cursor_secret
            )
        return entries, next_cursor

    # ------------------------------------------------------------------ erasure
    def student_session_ids(self, student_id: str, *, limit: int) -> tuple[list[str], bool]:
        with self._lock:
            mine = sorted(s.meta.session_id for s in self._sessions.values() if s.meta.student_id == student_id)
            return mine[:limit], len(mine) > limit

    def assigned_sources(self, session_id: str) -> list[str]:
        with self._lock:
            return sorted(
                d.removeprefix(ASSIGN_PREFIX)
                for d, held in self._deliveries.items()
                if held == session_id
                and d.startswith(ASSIGN_PREFIX)
                and d.removeprefix(ASSIGN_PREFIX) not in self._sessions
            )

    def erase_session(self, student_id: str, session_id: str) -> int | None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.meta.student_id != student_id:
                return None
            calls = list(session.calls.values())
            for rec in calls:
                self._markers.pop((student_id, rec.interaction_id), None)
            for call_id, link in list(self._links.items()):
                if link.session_id == session_id:
                    del self._links[call_id]
            for delivery_id, target in list(self._deliveries.items()):
                if target == session_id:
                    del self._deliveries[delivery_id]
            del self._sessions[session_id]
            return len(calls)

    def erase_student_rest(self, student_id: str) -> None:
        with self._lock:
            self._heads.pop(student_id, None)
            for key, entry in list(self._audit.items()):
                if entry.student_id == student_id and entry.action != "erase":
                    del self._audit[key]
