"""``session-tracker students`` and ``session-tracker student S``: the tutor's view in a terminal.

Both read through the same source as the other reading commands (the API with a token, or
the table with ``--table``) and compute their figures with the student page's own code
(:func:`session_tracker.progress.build_overview`), so the terminal and ``/ui`` agree.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from session_tracker_cli import DEFAULT_URL
from session_tracker_cli.options import (
    JsonOption,
    LimitOption,
    SinceOption,
    TableOption,
    TokenOption,
    UntilOption,
    UrlOption,
)
from session_tracker_cli.reading_cli import _bound, _console, _fail, _source, _window

STUDENTS_LOOKBACK = timedelta(days=365)
FEED = 5
"""``student S`` reads the analysis of this many newest sessions (one request each)."""


def students(
    since: SinceOption = None,
    until: UntilOption = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    table: TableOption = None,
) -> None:
    """Students with their number of sessions and their latest session (one read per start day;
    without --since, the sessions of the last 365 days)."""
    from rich.markup import escape
    from rich.table import Table

    from session_tracker.models import UNKNOWN_STUDENT
    from session_tracker_cli.client import SourceError

    end = _bound(until, name="until", end=True) or datetime.now(UTC)
    start = _bound(since, name="since") or end - STUDENTS_LOOKBACK
    source = _source(url, token, table)
    counts: Counter[str] = Counter()
    latest: dict[str, tuple[datetime, str]] = {}
    try:
        for ref in source.all_sessions(start=start, end=end):
            counts[ref.student_id] += 1
            if ref.student_id not in latest or ref.start_time > latest[ref.student_id][0]:
                latest[ref.student_id] = (ref.start_time, ref.session_id)
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    order = sorted(counts, key=lambda s: latest[s][0], reverse=True)
    rows: list[dict[str, Any]] = [
        {
            "student_id": s,
            "sessions": counts[s],
            "last_session_start": latest[s][0].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "last_session_id": latest[s][1],
            "unmatched_queue": s == UNKNOWN_STUDENT,
        }
        for s in order
    ]
    console = _console()
    if as_json:
        for row in rows:
            console.out(json.dumps(row), highlight=False)
        return
    if not rows:
        console.print(f"no sessions started between {start:%Y-%m-%d} and {end:%Y-%m-%d}")
        return
    grid = Table(
        title=f"Students with sessions {start:%Y-%m-%d} to {end:%Y-%m-%d} (latest first)", title_justify="left"
    )
    grid.add_column("student", no_wrap=True, min_width=max(len(r["student_id"]) for r in rows))
    grid.add_column("sessions", justify="right")
    grid.add_column("last session (UTC)", no_wrap=True)
    grid.add_column("id", no_wrap=True, min_width=max(len(r["last_session_id"]) for r in rows))
    for row in rows:
        name = escape(row["student_id"]) + (" [yellow](unmatched calls)[/]" if row["unmatched_queue"] else "")
        grid.add_row(
            name, str(row["sessions"]), row["last_session_start"][:16].replace("T", " "), row["last_session_id"]
        )
    console.print(grid)


def _minutes(value: float) -> str:
    return f"{value:.0f} min" if value >= 10 else f"{value:.1f} min"


def student(
    student_id: Annotated[str, typer.Argument(help="The student, e.g. emma_smith.")],
    since: SinceOption = None,
    until: UntilOption = None,
    limit: LimitOption = 10,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    table: TableOption = None,
) -> None:
    """A student's progress: sessions, minutes, subjects, data requested, the latest progress and insights."""
    from rich.markup import escape
    from rich.table import Table

    from session_tracker.length import format_clock, format_duration
    from session_tracker.progress import HISTORY_CAP, build_overview
    from session_tracker_cli.client import SessionNotFound, SourceError

    start, end = _window(since, until)
    source = _source(url, token, table)
    items = []
    progress: list[dict[str, Any]] = []
    insights: tuple[str, str] | None = None
    try:
        for item in source.student_sessions(student_id, start=start, end=end):
            items.append(item)
            if len(items) >= HISTORY_CAP:
                break
        for item in items[:FEED]:
            try:
                export = source.get_session(item.session_id)
            except SessionNotFound:
                continue
            analysis = export.analysis or {}
            text = analysis.get("progress_update")
            progress.append(
                {
                    "session_id": item.session_id,
                    "start_time": item.start_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "progress_update": text if isinstance(text, str) else None,
                    "analysis_status": analysis.get("status"),
                }
            )
            found = analysis.get("learning_insights")
            if insights is None and isinstance(found, str) and found.strip():
                insights = (item.session_id, found.strip())
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    overview = build_overview(items, truncated=len(items) >= HISTORY_CAP)
    if as_json:
        out = {
            "student_id": student_id,
            "overview": overview.model_dump(mode="json", exclude={"lengths", "flagged", "subject_cells"}),
            "sessions": [i.model_dump(mode="json") for i in items[:limit]],
            "progress": progress,
            "latest_insights": {"session_id": insights[0], "text": insights[1]} if insights else None,
        }
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        return
    console = _console()
    if not items:
        console.print(f"no sessions for {escape(student_id)}")
        return
    subjects = Counter(s for i in items for s in set(i.subjects))
    facts = [
        ("sessions", f"{overview.sessions}{'+' if overview.truncated else ''}"),
        ("time", format_duration(timedelta(minutes=overview.total_minutes))),
        ("median length", _minutes(overview.median_minutes)),
        ("first / latest", f"{overview.first_start:%Y-%m-%d} / {overview.last_start:%Y-%m-%d}"),
        ("weeks active", f"{sum(1 for w in overview.weeks if w.sessions)} of {len(overview.weeks)}"),
        ("subjects", ", ".join(f"{s} ({n})" for s, n in subjects.most_common(6)) or "-"),
        ("data requested", ", ".join(f"{k} ({n})" for k, n in overview.data_kinds[:6]) or "-"),
        ("flagged", str(len(overview.flagged))),
    ]
    console.print(f"[bold]{escape(student_id)}[/]")
    for key, value in facts:
        console.print(f"  [dim]{key:>15}[/]  {escape(value)}")
    if insights:
        console.print(f"\n[bold]Latest learning insights[/] [dim]({escape(insights[0])})[/]\n  {escape(insights[1])}")
    grid = Table(title=f"\nNewest {min(limit, len(items))} sessions", title_justify="left")
    grid.add_column("session", no_wrap=True, min_width=max(len(i.session_id) for i in items[:limit]))
    grid.add_column("started (UTC)", no_wrap=True)
    grid.add_column("length", justify="right", no_wrap=True)
    grid.add_column("status")
    grid.add_column("calls", justify="right")
    grid.add_column("subjects")
    for item in items[:limit]:
        grid.add_row(
            item.session_id,
            f"{item.start_time:%Y-%m-%d %H:%M}",
            format_clock(item.length_seconds),
            item.status,
            str(item.interaction_count),
            escape(", ".join(item.subjects) or "-"),
        )
    console.print(grid)
    if progress:
        console.print("[bold]Progress[/]")
        for entry in progress:
            text = entry["progress_update"] or (
                "analysis failed" if entry["analysis_status"] == "failed" else "not analysed yet"
            )
            console.print(f"  [dim]{entry['start_time'][:10]}[/] {escape(text)}")


def demo(
    port: Annotated[int, typer.Option(envvar="PORT", help="Port of the demo stack.")] = 3000,
) -> None:
    """Start the local stack seeded with demo students, reports and analyses (no OpenAI key needed)."""
    try:
        from session_tracker_local.demo import main as run_demo
    except ImportError as exc:
        raise _fail("the demo needs the development stack: run it from a clone with `make demo`") from exc
    raise typer.Exit(run_demo(["--port", str(port)]))


def register(app: typer.Typer) -> None:
    app.command("students")(students)
    app.command("student")(student)
    app.command("demo")(demo)
