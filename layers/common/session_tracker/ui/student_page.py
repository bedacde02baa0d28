"""The student page (``/ui/students/{id}``): progress across sessions at a glance.

Rendered from :class:`session_tracker.progress.StudentView`: totals, the newest learning
insights, four SVG charts (:mod:`.charts`) each with its data table, flagged sessions,
one page of the session list and the progress feed of that page.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from session_tracker.length import format_clock, format_duration
from session_tracker.progress import StudentView, is_flagged
from session_tracker.reading import SessionListItem
from session_tracker.ui import charts
from session_tracker.ui.pages import _chips, _cost, _date_value, _e, _seg, _status, _text_block, _when, layout


def _minutes(value: float) -> str:
    return f"{value:.0f} min" if value >= 10 else f"{value:.1f} min"


def _started(value: datetime) -> str:
    return f"{value:%a %d %b %Y %H:%M}"


def session_rows(items: list[SessionListItem], *, show_student: bool = False, compact: bool = False) -> str:
    """Table rows of session list lines (shared by the student page, the session list and the live view)."""
    rows = []
    for s in items:
        flag = ' class="flagged"' if is_flagged(s) else ""
        analysis = (
            '<span class="badge err">analysis failed</span>'
            if s.analysis_status == "failed"
            else _e(s.analysis_status or "—")
        )
        student = f'<td><a href="/ui/students/{_seg(s.student_id)}">{_e(s.student_id)}</a></td>' if show_student else ""
        wide = "" if compact else f"<td>{_e(s.platform or '—')}</td>"
        subjects = "" if compact else f"<td>{_chips(s.subjects, 'chip subject')}</td>"
        rows.append(
            f"<tr{flag}><td class='id'><a href=\"/ui/sessions/{_seg(s.session_id)}\">{_e(s.session_id)}</a></td>"
            f"{student}<td class='when'>{_e(_started(s.start_time))}</td>"
            f"<td class='num' data-seconds='{s.length_seconds:g}'>{_e(format_clock(s.length_seconds))}</td>"
            f"<td>{_status(s.status)}</td>{wide}"
            f"<td class='num'>{s.interaction_count}</td>{subjects}"
            f"<td class='num'>{_e(_cost(s.cost))}</td><td>{analysis}</td></tr>"
        )
    return "".join(rows)


def session_table(
    items: list[SessionListItem], *, show_student: bool = False, compact: bool = False, empty: str
) -> str:
    if not items:
        return f'<p class="empty">{_e(empty)}</p>'
    student = "<th scope='col'>Student</th>" if show_student else ""
    wide = "" if compact else "<th scope='col'>Platform</th>"
    subjects = "" if compact else "<th scope='col'>Subjects</th>"
    return (
        '<table class="list sessions"><thead><tr><th scope="col">Session</th>'
        f"{student}<th scope='col'>Started (UTC)</th><th scope='col'>Length</th><th scope='col'>Status</th>{wide}"
        f"<th scope='col'>Calls</th>{subjects}"
        "<th scope='col'>Cost</th><th scope='col'>Analysis</th></tr></thead>"
        f"<tbody>{session_rows(items, show_student=show_student, compact=compact)}</tbody></table>"
    )


def _charts(view: StudentView) -> str:
    o = view.overview
    if not o.sessions:
        return ""
    weeks = [
        charts.Bar(
            f"{w.week:%d %b}",
            w.sessions,
            f"Week of {w.week:%Y-%m-%d}: {w.sessions} session{'s' if w.sessions != 1 else ''}, {_minutes(w.minutes)}",
        )
        for w in o.weeks
    ]
    busiest = max(o.weeks, key=lambda w: w.sessions)
    per_week = charts.bar_chart(
        weeks,
        title="Sessions per week",
        desc=f"{o.sessions} sessions over {len(o.weeks)} week{'s' if len(o.weeks) != 1 else ''}; "
        f"busiest week {busiest.week:%Y-%m-%d} with {busiest.sessions}.",
        unit="sessions",
        chart_id="chart-weeks",
    )
    longest = max(o.lengths, key=lambda p: p.minutes)
    lengths = charts.bar_chart(
        [
            charts.Bar(
                f"{p.start_time:%d %b}",
                p.minutes,
                f"{p.session_id} ({p.start_time:%Y-%m-%d}): {_minutes(p.minutes)}"
                + (" (flagged)" if p.flagged else ""),
                flagged=p.flagged,
            )
            for p in o.lengths
        ],
        title="Minutes per session",
        desc=f"{o.sessions} sessions, median {_minutes(o.median_minutes)}, longest {_minutes(longest.minutes)} "
        f"({longest.start_time:%Y-%m-%d}), {format_duration_minutes(o.total_minutes)} in all.",
        unit="minutes",
        chart_id="chart-lengths",
    )
    values = {(s, c): n for s, cols in o.subject_cells.items() for c, n in cols.items()}
    subjects = charts.heatmap(
        o.subject_rows,
        o.subject_columns,
        values,
        title="Subjects over time",
        desc=f"Sessions touching each subject per {o.subject_bucket}: "
        + "; ".join(f"{s} in {sum(o.subject_cells[s].values())} sessions" for s in o.subject_rows)
        if o.subject_rows
        else "No subjects were recorded.",
        unit="sessions",
        chart_id="chart-subjects",
        labels=[_column_label(c) for c in o.subject_columns],
    )
    kinds = charts.hbar_chart(
        o.data_kinds,
        title="Data requested by kind",
        desc="Sessions whose tool calls provided each kind of data: " + "; ".join(f"{k} {n}" for k, n in o.data_kinds)
        if o.data_kinds
        else "No data kinds were recorded.",
        unit="sessions",
        chart_id="chart-kinds",
    )
    return f"""
<div class="charts">
  <section class="card chart-card"><h2>Sessions per week</h2>{per_week}
    {charts.data_table(["Week of", "Sessions", "Minutes"], [(f"{w.week:%Y-%m-%d}", w.sessions, f"{w.minutes:.1f}") for w in o.weeks], caption="Sessions per week")}</section>
  <section class="card chart-card"><h2>Minutes per session</h2>{lengths}
    {charts.data_table(["Session", "Started", "Minutes"], [(p.session_id, f"{p.start_time:%Y-%m-%d %H:%M}", f"{p.minutes:.1f}") for p in o.lengths], caption="Minutes per session")}</section>
  <section class="card chart-card"><h2>Subjects over time <span class="muted">(sessions per {_e(o.subject_bucket)})</span></h2>{subjects}
    {charts.data_table(["Subject", *o.subject_columns], [(s, *(o.subject_cells[s].get(c, 0) for c in o.subject_columns)) for s in o.subject_rows], caption="Subjects over time")}</section>
  <section class="card chart-card"><h2>Data requested by kind <span class="muted">(sessions)</span></h2>{kinds}
    {charts.data_table(["Kind", "Sessions"], o.data_kinds, caption="Data requested by kind")}</section>
</div>"""


def _column_label(column: str) -> str:
    """``2026-10-19`` → ``19 Oct``; ``2026-10`` → ``Oct 2026``."""
    try:
        if len(column) == 7:
            return f"{datetime.strptime(column, '%Y-%m'):%b %Y}"
        return f"{datetime.strptime(column, '%Y-%m-%d'):%d %b}"
    except ValueError:
        return column


def format_duration_minutes(minutes: float) -> str:
    return format_duration(timedelta(minutes=minutes))


def _feed(view: StudentView) -> str:
    entries = []
    for f in view.feed:
        if f.progress_update:
            body = _text_block(f.progress_update)
        elif f.analysis_status == "failed":
            body = f'<p class="flag-text">Analysis failed: {_e(f.analysis_error or "unknown error")}.</p>'
        elif f.status == "unmatched":
            body = '<p class="flag-text">Unmatched platform data: review it in the queue.</p>'
        else:
            body = '<p class="empty">Not analysed yet.</p>'
        entries.append(
            f'<li><div class="feed-head"><a href="/ui/sessions/{_seg(f.session_id)}">{_e(f"{f.start_time:%a %d %b %Y, %H:%M}")}</a>'
            f" {_status(f.status)}</div>{body}</li>"
        )
    if not entries:
        return ""
    return f'<section class="card feed"><h2>Progress, session by session</h2><ol class="feed">{"".join(entries)}</ol></section>'


def _flagged(view: StudentView) -> str:
    flagged = view.overview.flagged
    if not flagged:
        return ""
    items = "".join(
        f'<li><a href="/ui/sessions/{_seg(s.session_id)}">{_e(s.session_id)}</a> '
        + ("unmatched platform data" if s.status == "unmatched" else "analysis failed")
        + "</li>"
        for s in flagged[:20]
    )
    more = f"<p class='muted'>and {len(flagged) - 20} more</p>" if len(flagged) > 20 else ""
    return f'<section class="card flags" aria-label="Flagged sessions"><h2>Needs a look <span class="count">{len(flagged)}</span></h2><ul>{items}</ul>{more}</section>'


def student_page(view: StudentView, *, nonce: str) -> str:
    """The whole student page."""
    o = view.overview
    base = f"/ui/students/{_seg(view.student_id)}"
    start, end = _date_value(view.start), _date_value(view.end)
    query = {k: v for k, v in {"from": start, "to": end}.items() if v}
    pager = []
    if view.page.next_cursor:
        pager.append(
            f'<a href="{base}?{_e(urlencode({**query, "cursor": view.page.next_cursor}))}">Older sessions →</a>'
        )
    range_text = f"{start or 'first session'} to {end or 'now'}" if query else "all sessions"
    facts = [
        ("Sessions", f"{o.sessions}{'+' if o.truncated else ''}"),
        ("Time in sessions", format_duration_minutes(o.total_minutes) if o.sessions else "—"),
        ("Median length", _minutes(o.median_minutes) if o.sessions else "—"),
        ("First session", _when(o.first_start)),
        ("Latest session", _when(o.last_start)),
        ("Flagged", str(len(o.flagged))),
    ]
    fact_html = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts)
    truncated = (
        f'<p class="muted">The charts show the newest {o.sessions} sessions of this range; narrow the range to see older ones.</p>'
        if o.truncated
        else ""
    )
    insights = (
        f'<section class="card insights"><h2>Latest learning insights <span class="muted">from '
        f'<a href="/ui/sessions/{_seg(view.latest_insights_session or "")}">{_e(view.latest_insights_session)}</a></span></h2>'
        f"{_text_block(view.latest_insights)}</section>"
        if view.latest_insights
        else ""
    )
    body = f"""
<section class="card head">
  <div class="title-row"><h1>{_e(view.student_id)}</h1><span class="muted">{_e(range_text)}</span>
  <form method="get" action="{base}" class="row filter" aria-label="Range">
    <label>From <input type="date" name="from" value="{_e(start)}"></label>
    <label>To <input type="date" name="to" value="{_e(end)}"></label>
    <button type="submit">Show</button>{f' <a href="{base}">All sessions</a>' if query else ""}
  </form></div>
  <dl class="facts">{fact_html}</dl>{truncated}
</section>
{insights}
{_flagged(view)}
{_charts(view)}
<div class="columns student-cols">
  <section class="card"><h2>Sessions <span class="muted">(newest first)</span></h2>
    {session_table(view.page.sessions, compact=True, empty="No sessions for this student in this range.")}
    <p class="pager">{" ".join(pager)}</p></section>
  {_feed(view)}
</div>"""
    return layout(view.student_id, body, nonce=nonce, crumbs=[(view.student_id, None)])
