"""The session list with filters (``/ui``), the unmatched review queue and its candidates.

Pure rules plus service functions with the reader injected (:class:`ListingReader`, a
port with no AWS imports). DynamoDB has no secondary index per filter, so a filtered page
is read the way the indexes allow and bounded per request:

- with a student: that student's sessions (GSI1), newest first;
- otherwise: every session by start day (GSI3), newest day first;
- each candidate's list line comes from one batch read; the filters (status, platform,
  subject, tool) are applied to it; the tool filter also reads the session's calls.

A request examines at most ``budget`` sessions (and ``max_days`` day partitions); when it
stops early the page says how far back it looked and offers the cursor to go on, so a rare
filter value costs a few clicks, never an unbounded read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from session_tracker.errors import Unprocessable
from session_tracker.length import activity_span
from session_tracker.matching import gap
from session_tracker.models import UNKNOWN_STUDENT, LazyModel, SessionMeta
from session_tracker.reading import SessionListItem, list_item, time_range
from session_tracker.store.ports import PageReader

PAGE = 25
BUDGET = 400
"""Sessions examined per request at most (each is part of one batch read)."""
MAX_CALLS = 6
"""Underlying list reads per request at most (each covers at most 32 start days)."""
TOOL_BUDGET = 100
"""With a tool filter each examined session also costs a query of its calls."""
STATUSES = ("active", "closed", "completed", "unmatched")
CANDIDATE_SPAN = timedelta(hours=12)
"""Review: the chosen student's sessions this close to the call are offered."""


class ListFilters(LazyModel):
    """What the list's form controls ask for (every field optional)."""

    student: str | None = None
    status: Literal["active", "closed", "completed", "unmatched"] | None = None
    platform: str | None = None
    subject: str | None = None
    tool: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def active(self) -> bool:
        return any(v for k, v in self.model_dump().items() if k not in ("start", "end"))

    def needs_meta(self) -> bool:
        return bool(self.status or self.platform or self.subject or self.tool)


ListingReader = PageReader
"""What the list and the review queue read (:class:`session_tracker.store.ports.PageReader`)."""


class ListPage(LazyModel):
    sessions: list[SessionListItem]
    next_cursor: str | None = None
    examined: int = 0
    searched_to: datetime | None = None
    """The page stopped early (budget): sessions that started before this were not looked at yet."""


def matches(item: SessionListItem, filters: ListFilters, tools: set[str] | None = None) -> bool:
    """Whether a list line passes every filter that is set (text filters: case-insensitive, exact)."""
    if filters.status and item.status != filters.status:
        return False
    if filters.platform and (item.platform or "").lower() != filters.platform.lower():
        return False
    if filters.subject and filters.subject.lower() not in {s.lower() for s in item.subjects}:
        return False
    return not (filters.tool and filters.tool.lower() not in {t.lower() for t in tools or set()})


def list_sessions(
    filters: ListFilters,
    *,
    reader: ListingReader,
    now: datetime,
    cursor: str | None = None,
    page: int = PAGE,
    budget: int = BUDGET,
) -> ListPage:
    """A page of sessions matching ``filters``, newest first (see the module docstring)."""
    low, high = time_range(filters.start, filters.end or now)
    if filters.tool:
        budget = min(budget, TOOL_BUDGET)
    found: list[SessionListItem] = []
    examined = calls = 0
    oldest: datetime | None = None
    while len(found) < page and examined < budget and calls < MAX_CALLS:
        want = page - len(found) if not filters.needs_meta() else max(page - len(found), PAGE)
        want = min(want, budget - examined)
        calls += 1
        if filters.student:
            metas, cursor = reader.list_student_sessions(
                filters.student, start=low, end=high, limit=want, cursor=cursor
            )
            ids = [m.session_id for m in metas]
        else:
            refs, cursor = reader.list_sessions_between(start=low, end=high, limit=want, cursor=cursor)
            ids = [r.session_id for r in refs]
        lines_by_id = reader.session_lines(ids) if ids else {}
        lines = [list_item(lines_by_id[i]) for i in ids if i in lines_by_id]
        examined += len(ids)
        for line in lines:
            tools: set[str] | None = None
            if filters.tool:
                if not matches(line, filters.model_copy(update={"tool": None})):
                    continue
                tools = reader.session_tools(line.session_id)
            if matches(line, filters, tools):
                found.append(line)
        if lines:
            oldest = lines[-1].start_time
        if not cursor:
            break
    stopped_early = cursor is not None and len(found) < page
    return ListPage(
        sessions=found,
        next_cursor=cursor,
        examined=examined,
        searched_to=oldest if stopped_early else None,
    )


def review_queue(
    *, reader: ListingReader, start: datetime | None = None, end: datetime | None = None, cursor: str | None = None
) -> ListPage:
    """Unmatched platform data nobody could place (sessions of the ``unknown`` student), newest first."""
    low, high = time_range(start, end)
    metas, next_cursor = reader.list_student_sessions(UNKNOWN_STUDENT, start=low, end=high, limit=PAGE, cursor=cursor)
    fuller = reader.session_lines([m.session_id for m in metas]) if metas else {}
    items = [list_item(fuller.get(m.session_id, m)) for m in metas]
    return ListPage(
        sessions=[i for i in items if i.status == "unmatched"], next_cursor=next_cursor, examined=len(items)
    )


class Candidate(LazyModel):
    """A session of the chosen student near the unmatched call, for the reviewer to pick."""

    session: SessionListItem
    gap_seconds: float
    """0: the session's span overlaps the call; else the time between them."""
    in_window: bool
    """Within ``match_window``: ``{"student_id": S}`` alone would merge into the nearest such one."""
    nearest: bool = False


def review_candidates(
    source: SessionMeta,
    student_id: str,
    *,
    reader: PageReader,
    window: timedelta,
    span: timedelta = CANDIDATE_SPAN,
    limit: int = 8,
) -> list[Candidate]:
    """The student's sessions within ``span`` of the unmatched call, nearest first."""
    if source.status != "unmatched":
        raise Unprocessable("only unmatched sessions are reviewed", field="session_id")
    start, end = activity_span(
        start_time=source.start_time,
        last_activity=source.last_activity,
        end_time=source.end_time,
        conversation=source.conversation,
    )
    metas = reader.student_sessions_before(student_id, end + span, limit=20)
    scored = sorted(
        (
            (gap(m, start, end), -m.start_time.timestamp(), m)
            for m in metas
            if m.session_id != source.session_id and m.status != "unmatched"
        ),
        key=lambda t: (t[0], t[1]),
    )
    out = [
        Candidate(session=list_item(m), gap_seconds=g.total_seconds(), in_window=g <= window)
        for g, _, m in scored
        if g <= span
    ][:limit]
    if out and out[0].in_window:
        out[0].nearest = True
    return out


__all__ = [
    "STATUSES",
    "Candidate",
    "ListFilters",
    "ListPage",
    "ListingReader",
    "list_sessions",
    "matches",
    "review_candidates",
    "review_queue",
]
