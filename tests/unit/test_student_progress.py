"""The student page's figures and charts: correct for 1 session and for 500."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from session_tracker.models import SessionMeta
from session_tracker.progress import build_overview, student_view
from session_tracker.reading import list_item
from session_tracker.ui import charts
from session_tracker.ui.student_page import student_page

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday


def meta(n: int, *, at: datetime, minutes: float = 10, **extra: Any) -> SessionMeta:
    return SessionMeta(
        session_id=f"ana_{at:%Y%m%d_%H%M}",
        student_id="ana",
        start_time=at,
        last_activity=at + timedelta(minutes=minutes),
        status=extra.pop("status", "closed"),
        interaction_count=3,
        subjects=extra.pop("subjects", ["fractions"]),
        data_provided=extra.pop("data_provided", ["profile", "progress"]),
        **extra,
    )


class FakeReader:
    def __init__(self, metas: list[SessionMeta], notes: dict[str, dict[str, Any]] | None = None) -> None:
        self.metas = sorted(metas, key=lambda m: m.start_time, reverse=True)
        self.notes = notes or {}
        self.asked: list[str] = []

    def student_history(self, student_id: str, *, start: datetime, end: datetime, limit: int) -> list[SessionMeta]:
        return [m for m in self.metas if start <= m.start_time <= end][:limit]

    def session_notes(self, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.asked += list(session_ids)
        return {s: self.notes[s] for s in session_ids if s in self.notes}

    def list_student_sessions(self, student_id, *, start, end, limit=20, cursor=None):
        found = [m for m in self.metas if start <= m.start_time <= end]
        offset = int(cursor or 0)
        nxt = str(offset + limit) if len(found) > offset + limit else None
        return found[offset : offset + limit], nxt


def test_one_session_makes_one_bar_in_each_chart() -> None:
    overview = build_overview([list_item(meta(1, at=T0, minutes=12))])
    assert [(w.sessions, w.minutes) for w in overview.weeks] == [(1, 12.0)]
    assert [p.minutes for p in overview.lengths] == [12.0]
    assert overview.subject_cells == {"fractions": {"2026-01-05": 1}}
    assert overview.data_kinds == [("profile", 1), ("progress", 1)]
    svg = charts.bar_chart([charts.Bar("05 Jan", 1, "Week of 2026-01-05: 1 session")], title="t", desc="d", unit="s")
    assert len(re.findall(r'<rect class="bar"', svg)) == 1
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg


def test_weeks_without_sessions_are_shown_as_zero() -> None:
    overview = build_overview([list_item(meta(1, at=T0)), list_item(meta(2, at=T0 + timedelta(days=21)))])
    assert [w.sessions for w in overview.weeks] == [1, 0, 0, 1]


def test_500_sessions_draw_500_length_bars_with_thinned_axis_labels() -> None:
    metas = [meta(n, at=T0 + timedelta(hours=9 * n), minutes=5 + n % 30) for n in range(500)]
    view = student_view("ana", reader=FakeReader(metas))
    html = student_page(view, nonce="n")
    lengths = re.search(r'<svg class="chart" id="chart-lengths".*?</svg>', html, re.S).group(0)
    assert len(re.findall(r"<rect class=\"bar", lengths)) == 500
    assert len(re.findall(r"<text [^>]*text-anchor=\"(?:start|middle|end)\" font-size=\"11\"", lengths)) < 20
    weeks = re.search(r'<svg class="chart" id="chart-weeks".*?</svg>', html, re.S).group(0)
    assert sum(int(n) for n in re.findall(r"(\d+) sessions?,", weeks)) == 500
    assert view.overview.subject_bucket == "month"  # 27 weeks: subjects per month
    assert "500 sessions over" in html


def test_the_feed_shows_each_sessions_progress_and_the_latest_insights_on_top() -> None:
    metas = [
        meta(1, at=T0, analysis={"status": "ok"}),
        meta(2, at=T0 + timedelta(days=2), analysis={"status": "ok"}),
        meta(3, at=T0 + timedelta(days=4), analysis={"status": "failed"}),
    ]
    notes = {
        metas[0].session_id: {"status": "ok", "progress_update": "Adds fractions.", "learning_insights": "old"},
        metas[1].session_id: {"status": "ok", "progress_update": "Simplifies.", "learning_insights": "Needs visuals."},
        metas[2].session_id: {"status": "failed", "error": "model timed out"},
    }
    view = student_view("ana", reader=FakeReader(metas, notes))
    assert view.latest_insights == "Needs visuals."
    assert [f.progress_update for f in view.feed] == [None, "Simplifies.", "Adds fractions."]
    html = student_page(view, nonce="n")
    assert html.index("Needs visuals.") < html.index("chart-weeks")
    assert "Analysis failed: model timed out" in html
    assert [s.session_id for s in view.overview.flagged] == [metas[2].session_id]


def test_unmatched_sessions_are_flagged() -> None:
    view = student_view("ana", reader=FakeReader([meta(1, at=T0, status="unmatched"), meta(2, at=T0 + timedelta(1))]))
    assert len(view.overview.flagged) == 1
    assert "Needs a look" in student_page(view, nonce="n")


def test_labels_from_storage_are_escaped_in_charts() -> None:
    overview = build_overview([list_item(meta(1, at=T0, subjects=["<script>x</script>"]))])
    svg = charts.heatmap(
        overview.subject_rows,
        overview.subject_columns,
        {(s, c): n for s, cols in overview.subject_cells.items() for c, n in cols.items()},
        title="t",
        desc="d",
        unit="sessions",
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_the_page_reads_a_bounded_history() -> None:
    metas = [meta(n, at=T0 + timedelta(hours=n)) for n in range(30)]
    view = student_view("ana", reader=FakeReader(metas), cap=10)
    assert view.overview.sessions == 10 and view.overview.truncated
