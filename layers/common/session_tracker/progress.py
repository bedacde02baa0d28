"""A student's progress across sessions: what the student page and ``session-tracker student`` show.

Pure functions over the read models, plus one service function with its reader injected
(:class:`StudentHistoryReader`, a port with no AWS imports). Reads are bounded: the
charts cover at most ``HISTORY_CAP`` sessions of the chosen range (newest first; the page
says when a range holds more), the table is one page of the student's session list, and
the feed's analysis texts are one batch read of that page's sessions.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import Field

from session_tracker.models import LazyModel
from session_tracker.reading import SessionListItem, SessionPage, list_item, student_sessions, time_range
from session_tracker.store.ports import PageReader

HISTORY_CAP = 1000
"""The most sessions one student page reads for its charts."""
TOP_SUBJECTS = 8
TOP_KINDS = 12
MONTHLY_AFTER_WEEKS = 26
"""Subjects over time is drawn per month when the range spans more weeks than this."""


StudentHistoryReader = PageReader
"""What the student page reads (:class:`session_tracker.store.ports.PageReader`)."""


class WeekPoint(LazyModel):
    week: date
    """Monday of the ISO week (UTC)."""
    sessions: int = 0
    minutes: float = 0.0


class LengthPoint(LazyModel):
    session_id: str
    start_time: datetime
    minutes: float
    flagged: bool = False


class FeedEntry(LazyModel):
    session_id: str
    start_time: datetime
    status: str
    progress_update: str | None = None
    analysis_status: str | None = None
    analysis_error: str | None = None


class Overview(LazyModel):
    """The figures of a student page (charts and totals) over the sessions read."""

    sessions: int = 0
    truncated: bool = False
    """The range holds more than :data:`HISTORY_CAP` sessions: the charts show the newest ones."""
    total_minutes: float = 0.0
    median_minutes: float = 0.0
    first_start: datetime | None = None
    last_start: datetime | None = None
    weeks: list[WeekPoint] = Field(default_factory=list)
    lengths: list[LengthPoint] = Field(default_factory=list)
    """Oldest first (time runs left to right)."""
    subject_columns: list[str] = Field(default_factory=list)
    subject_rows: list[str] = Field(default_factory=list)
    subject_cells: dict[str, dict[str, int]] = Field(default_factory=dict)
    """``{subject: {column label: sessions}}``."""
    subject_bucket: str = "week"
    data_kinds: list[tuple[str, int]] = Field(default_factory=list)
    """Data kinds requested, by the number of sessions that requested them (most first)."""
    flagged: list[SessionListItem] = Field(default_factory=list)
    """Unmatched sessions and sessions whose analysis failed."""


class StudentView(LazyModel):
    student_id: str
    start: datetime | None = None
    end: datetime | None = None
    overview: Overview
    page: SessionPage
    feed: list[FeedEntry] = Field(default_factory=list)
    latest_insights: str | None = None
    latest_insights_session: str | None = None


def is_flagged(item: SessionListItem) -> bool:
    """Needs a look: kept unmatched, or its analysis failed."""
    return item.status == "unmatched" or item.analysis_status == "failed"


def week_of(moment: datetime) -> date:
    day = moment.date()
    return day - timedelta(days=day.weekday())


def _month(moment: date) -> str:
    return f"{moment:%Y-%m}"


def build_overview(items: Sequence[SessionListItem], *, truncated: bool = False) -> Overview:
    """Charts' figures from the sessions read (any order)."""
    if not items:
        return Overview(truncated=truncated)
    ordered = sorted(items, key=lambda i: (i.start_time, i.session_id))
    minutes = [i.length_seconds / 60 for i in ordered]
    first, last = week_of(ordered[0].start_time), week_of(ordered[-1].start_time)
    weeks: dict[date, WeekPoint] = {}
    cursor = first
    while cursor <= last:
        weeks[cursor] = WeekPoint(week=cursor)
        cursor += timedelta(days=7)
    for item, mins in zip(ordered, minutes, strict=True):
        point = weeks[week_of(item.start_time)]
        point.sessions += 1
        point.minutes = round(point.minutes + mins, 2)
    monthly = len(weeks) > MONTHLY_AFTER_WEEKS
    columns = sorted({_month(w) for w in weeks}) if monthly else [f"{w:%Y-%m-%d}" for w in weeks]
    subject_count: Counter[str] = Counter()
    cells: dict[str, dict[str, int]] = defaultdict(dict)
    kinds: Counter[str] = Counter()
    for item in ordered:
        column = _month(item.start_time.date()) if monthly else f"{week_of(item.start_time):%Y-%m-%d}"
        for subject in set(item.subjects):
            subject_count[subject] += 1
            cells[subject][column] = cells[subject].get(column, 0) + 1
        kinds.update(set(item.data_provided))
    rows = [s for s, _ in sorted(subject_count.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SUBJECTS]]
    return Overview(
        sessions=len(ordered),
        truncated=truncated,
        total_minutes=round(sum(minutes), 2),
        median_minutes=round(statistics.median(minutes), 2),
        first_start=ordered[0].start_time,
        last_start=ordered[-1].start_time,
        weeks=list(weeks.values()),
        lengths=[
            LengthPoint(session_id=i.session_id, start_time=i.start_time, minutes=round(m, 2), flagged=is_flagged(i))
            for i, m in zip(ordered, minutes, strict=True)
        ],
        subject_columns=columns,
        subject_rows=rows,
        subject_cells={s: cells[s] for s in rows},
        subject_bucket="month" if monthly else "week",
        data_kinds=sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_KINDS],
        flagged=[i for i in sorted(items, key=lambda i: i.start_time, reverse=True) if is_flagged(i)],
    )


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list) and value:
        return "\n".join(f"• {v}" for v in value)
    return None


def student_view(
    student_id: str,
    *,
    reader: StudentHistoryReader,
    start: datetime | None = None,
    end: datetime | None = None,
    cursor: str | None = None,
    page_size: int = 20,
    cap: int = HISTORY_CAP,
) -> StudentView:
    """The student page: charts over the range (at most ``cap`` sessions), one page of the table,
    the progress feed of that page and the newest learning insights of the range."""
    low, high = time_range(start, end)
    history = reader.student_history(student_id, start=low, end=high, limit=cap + 1)
    items = [list_item(m) for m in history[:cap]]
    overview = build_overview(items, truncated=len(history) > cap)
    page = student_sessions(student_id, store=reader, start=start, end=end, limit=page_size, cursor=cursor)
    # The same line everywhere: rows use the history's reading (with the conversation window).
    by_id = {i.session_id: i for i in items}
    page = page.model_copy(update={"sessions": [by_id.get(s.session_id, s) for s in page.sessions]})
    newest_analysed = next((i.session_id for i in items if i.analysis_status == "ok"), None)
    wanted = [s.session_id for s in page.sessions]
    if newest_analysed and newest_analysed not in wanted:
        wanted.append(newest_analysed)
    notes = reader.session_notes(wanted) if wanted else {}
    feed = [
        FeedEntry(
            session_id=s.session_id,
            start_time=s.start_time,
            status=s.status,
            progress_update=_text(notes.get(s.session_id, {}).get("progress_update")),
            analysis_status=s.analysis_status or notes.get(s.session_id, {}).get("status"),
            analysis_error=_text(notes.get(s.session_id, {}).get("error")),
        )
        for s in page.sessions
    ]
    insights = _text(notes.get(newest_analysed, {}).get("learning_insights")) if newest_analysed else None
    return StudentView(
        student_id=student_id,
        start=start,
        end=end,
        overview=overview,
        page=page,
        feed=feed,
        latest_insights=insights,
        latest_insights_session=newest_analysed if insights else None,
    )
