"""``session-tracker`` commands that read sessions: ``sessions``, ``show``, ``export``, ``analyze``.

Each works against the API (``--url``/``--token``, defaulting to ``SESSION_TRACKER_URL``
and ``SESSION_TRACKER_TOKEN``, then ``READ_TOKEN``, then ``ADMIN_TOKEN``: the local stack or
a deployed stack) or, for operators, directly
against the DynamoDB table (``--table``, AWS credentials from the environment).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from session_tracker_cli import DEFAULT_URL
from session_tracker_cli.options import (
    AdminTokenOption,
    JsonOption,
    LimitOption,
    SinceOption,
    StudentOption,
    TableOption,
    TokenOption,
    UntilOption,
    UrlOption,
)

if TYPE_CHECKING:
    from rich.console import Console

    from session_tracker.models import ExportInteraction, SessionExport
    from session_tracker_cli.client import SessionSource

# Startup stays light: `session-tracker --help` and `session-tracker mcp-proxy` (which starts in
# front of every MCP server) must not pay for pydantic models, boto3 or rich. The session
# models, the read path (which imports boto3) and rich are imported inside the commands.


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _fail(message: str, code: int = 1) -> typer.Exit:
    from rich.markup import escape

    _console(stderr=True).print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _bound(value: str | None, *, name: str, end: bool = False) -> datetime | None:
    from session_tracker.errors import DomainError
    from session_tracker.reading import parse_bound

    try:
        return parse_bound(value, field=name, end=end)
    except DomainError as exc:
        raise typer.BadParameter(exc.detail, param_hint=f"--{name}") from exc


def _window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``--since``/``--until`` (options.SinceOption/UntilOption) as the times they bound."""
    return _bound(since, name="since"), _bound(until, name="until", end=True)


def open_source(*, url: str | None, token: str | None, table: str | None) -> SessionSource:
    """Where the commands read from (see :func:`session_tracker_cli.client.open_source`); imported on first use."""
    from session_tracker_cli.client import open_source as _open

    return _open(url=url, token=token, table=table)


def _source(url: str, token: str | None, table: str | None) -> SessionSource:
    from session_tracker_cli.client import SourceError

    try:
        return open_source(url=url, token=token, table=table)
    except SourceError as exc:  # e.g. --table without the table extra
        raise _fail(str(exc)) from exc


# --------------------------------------------------------------------------- export
def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def export_json(export: SessionExport) -> str:
    """The session file: the export shape, pretty-printed, keys in a stable order.

    Top-level and interaction keys keep the documented order of the export model;
    free-form maps (arguments, conversation, platform metadata, analysis) are sorted.
    """
    data = export.model_dump(mode="json")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "mcp_interactions":
            out[key] = [{k: _sorted(v) for k, v in call.items()} for call in value]
        elif key == "session_summary":
            out[key] = value
        else:
            out[key] = _sorted(value)
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


def write_export(export: SessionExport, out: Path) -> Path:
    """Write ``<session_id>.json`` under ``out`` atomically; return its path."""
    path = out / f"{export.session_id}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(export_json(export), encoding="utf-8")
    tmp.replace(path)
    return path


FUTURE_MARGIN = timedelta(days=2)
"""Calls may be dated up to the clock skew (1 day) ahead: an export without --until reads that far."""


def _full_export_note(kept_from: datetime) -> str:
    if kept_from.year <= 1970:  # models.MIN_YEAR (not imported: startup stays light)
        return "exporting every session (data is kept forever: every start day is read; --since bounds it)"
    return f"exporting every session kept (retention: started since {kept_from:%Y-%m-%d})"


def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the <session_id>.json files (created).")],
    student: StudentOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="json: one <session_id>.json per session; csv: sessions.csv and interactions.csv."
        ),
    ] = "json",
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    table: TableOption = None,
) -> None:
    """Write one pretty-printed [bold]<session_id>.json[/] per session (the export format),
    or with [bold]--format csv[/] a sessions.csv and an interactions.csv.

    With [bold]--student[/] exports that student's sessions (a query on the student index);
    without it, every student's sessions that started in [--since, --until] (one query
    per start day; without [bold]--since[/], every session kept). Existing files with the same
    name are replaced.
    """
    from contextlib import nullcontext

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from session_tracker_cli.client import SourceError
    from session_tracker_cli.csv_export import CsvExport

    if fmt not in ("json", "csv"):
        raise typer.BadParameter("must be json or csv", param_hint="--format")
    start, end = _window(since, until)
    source = _source(url, token, table)
    err = _console(stderr=True)
    try:
        if student:
            ids = [s.session_id for s in source.student_sessions(student, start=start, end=end)]
        else:
            if start is None:  # a full export: everything kept, whatever its age
                kept_from, kept_to = source.full_range()
                err.print(_full_export_note(kept_from))
                start, end = kept_from, end or kept_to
            end = end or datetime.now(UTC) + FUTURE_MARGIN
            ids = [r.session_id for r in source.all_sessions(start=start, end=end)]
        out.mkdir(parents=True, exist_ok=True)
        with (
            CsvExport(out) if fmt == "csv" else nullcontext() as table_out,
            Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
                disable=len(ids) < 20 or not err.is_terminal,
            ) as progress,
        ):
            task = progress.add_task("exporting", total=len(ids))
            for session_id in ids:
                found = source.get_session(session_id)
                if table_out is not None:
                    table_out.add(found)
                else:
                    write_export(found, out)
                progress.advance(task)
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    who = f"student {student}" if student else "all students"
    files = " (sessions.csv, interactions.csv)" if fmt == "csv" else ""
    _console().print(f"exported {len(ids)} session{'s' if len(ids) != 1 else ''} ({who}) to {out}{files}")


# ------------------------------------------------------------------------- sessions
def sessions(
    student: Annotated[str, typer.Option("--student", "-s", help="The student whose sessions to list.")],
    since: SinceOption = None,
    until: UntilOption = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    table: TableOption = None,
) -> None:
    """List a student's sessions, newest first."""
    from rich.markup import escape
    from rich.table import Table

    from session_tracker_cli.client import SourceError

    start, end = _window(since, until)
    source = _source(url, token, table)
    rows = []
    try:
        for item in source.student_sessions(student, start=start, end=end, page_size=min(limit, 100)):
            rows.append(item)
            if len(rows) >= limit:
                break
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    console = _console()
    if as_json:
        for item in rows:
            console.out(item.model_dump_json(), highlight=False)
        return
    if not rows:
        console.print(f"no sessions for {escape(student)}")
        return
    from session_tracker.length import format_clock

    grid = Table(title=f"Sessions of {escape(student)} (newest first)", title_justify="left")
    # Ids are never cut (they are what you paste into `show`); the other columns give way.
    grid.add_column("session", no_wrap=True, min_width=max(len(i.session_id) for i in rows))
    for name, justify in (
        ("started (UTC)", "left"),
        ("length", "right"),
        ("status", "left"),
        ("platform", "left"),
        ("calls", "right"),
        ("subjects", "left"),
        ("cost", "right"),
        ("ended", "left"),
    ):
        grid.add_column(name, justify=justify)  # type: ignore[arg-type]
    for item in rows:
        grid.add_row(
            escape(item.session_id),
            f"{item.start_time:%Y-%m-%d %H:%M}",
            format_clock(item.length_seconds),
            _status(item.status),
            escape(item.platform or "-"),
            str(item.interaction_count),
            escape(", ".join(item.subjects) or "-"),
            f"${item.cost:.4f}" if item.cost is not None else "-",
            escape(item.ended_reason or "-"),
        )
    console.print(grid)


def _status(status: str) -> str:
    colour = {"active": "blue", "completed": "green", "closed": "white", "unmatched": "yellow"}.get(status, "white")
    return f"[{colour}]{status}[/]"


# ----------------------------------------------------------------------------- show
def _offset(seconds: float) -> str:
    minutes, secs = divmod(max(0, round(seconds)), 60)
    return f"+{minutes}:{secs:02d}"


def _call_row(call: ExportInteraction, start: datetime) -> list[str]:
    from rich.markup import escape

    flag = "[bold red]error[/]" if call.is_error else ""
    return [
        _offset((call.timestamp - start).total_seconds()),
        f"{call.timestamp:%H:%M:%S}",
        f"[bold]{escape(call.function)}[/]",
        escape(", ".join(call.data_provided) or "-"),
        escape(", ".join(call.subjects) or "-"),
        f"{call.duration_ms:g}" if call.duration_ms else "-",
        flag,
    ]


def render_session(export: SessionExport, console: Console) -> None:
    """A readable terminal view: facts, MCP calls in time order, transcript, analysis."""
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    from session_tracker.callmeta import session_cost_usd
    from session_tracker.ui.pages import conversation_turns

    call_meta = export.platform_metadata or export.vapi_metadata or {}
    cost = session_cost_usd(export.platform_metadata, export.vapi_metadata)
    facts = [
        ("student", escape(export.student_id)),
        ("status", _status(export.status)),
        ("started", f"{export.start_time:%Y-%m-%d %H:%M:%S} UTC"),
        ("ended", f"{export.end_time:%Y-%m-%d %H:%M:%S} UTC" if export.end_time else "-"),
        ("length", escape(export.session_summary.duration_estimated)),
        ("platform", escape(export.platform or "-")),
        ("cost", f"${cost:.4f}" if isinstance(cost, (int, float)) else "-"),
        ("ended reason", escape(str(call_meta.get("ended_reason") or "-"))),
        ("matched by", escape(str(export.matching.get("strategy", "none")))),
        ("subjects", escape(", ".join(export.session_summary.subjects_accessed) or "-")),
    ]
    console.print(
        Panel(
            "\n".join(f"[dim]{k:>12}[/]  {v}" for k, v in facts),
            title=f"[bold]{escape(export.session_id)}[/]",
            title_align="left",
            expand=False,
        )
    )
    calls = Table(title=f"MCP calls ({len(export.mcp_interactions)})", title_justify="left", expand=False)
    for name in ("", "time", "function", "data provided", "subjects", "ms", ""):
        calls.add_column(name)
    for call in export.mcp_interactions:
        calls.add_row(*_call_row(call, export.start_time))
    console.print(calls)
    turns = conversation_turns(export.conversation, start=export.start_time)
    console.print("[bold]Transcript[/]" + ("" if turns else " [dim](none merged yet)[/]"))
    for turn in turns:
        colour = "yellow" if turn.speaker == "Student" else "cyan"
        when = f"[dim]{_offset((turn.at - export.start_time).total_seconds())}[/] " if turn.at else ""
        console.print(f"  {when}[bold {colour}]{escape(turn.speaker or '?')}:[/] {escape(turn.text)}")
    analysis = export.analysis or {}
    console.print("[bold]Analysis[/]")
    shown = False
    for key, label in (
        ("session_summary", "Summary"),
        ("progress_update", "Progress"),
        ("learning_insights", "Insights"),
    ):
        value = analysis.get(key)
        if value:
            shown = True
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2)
            console.print(f"  [bold]{label}:[/] {escape(text)}")
    status = analysis.get("status")
    if status == "failed":
        reason = escape(str(analysis.get("error") or "unknown error"))
        console.print(f"  [red]analysis failed:[/] {reason}")
        console.print(f"  [dim]retry: session-tracker analyze {escape(export.session_id)}[/]")
    elif status == "skipped" and not shown:
        console.print(f"  [dim]skipped: {escape(str(analysis.get('reason') or analysis.get('error') or ''))}[/]")
    elif not shown:
        console.print(f"  [dim]not analysed yet - run: session-tracker analyze {escape(export.session_id)}[/]")


def show(
    session_id: Annotated[str, typer.Argument(help="The session id, e.g. emma_smith_20260117_1430.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    table: TableOption = None,
) -> None:
    """Show one session: calls on a time line, the transcript beside them, cost and analysis."""
    from rich.console import Console

    from session_tracker_cli.client import SessionNotFound, SourceError

    source = _source(url, token, table)
    try:
        found = source.get_session(session_id)
    except SessionNotFound as exc:
        raise _fail(str(exc), code=2) from exc
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(export_json(found))
        return
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "120"))
    render_session(found, Console(highlight=False, width=width))


# -------------------------------------------------------------------------- analyze
def analyze(
    session_id: Annotated[str, typer.Argument(help="The session to analyse.")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    table: TableOption = None,
) -> None:
    """Request an analysis of one session (runs asynchronously; see it with [bold]show[/])."""
    from rich.markup import escape

    from session_tracker_cli.client import SourceError

    source = _source(url, token, table)
    try:
        result = source.analyze(session_id)
    except SourceError as exc:
        if exc.status == 404:
            raise _fail(f"no session {session_id!r}", code=2) from exc
        raise _fail(str(exc)) from exc
    _console().print(f"analysis requested for {escape(session_id)}")
    sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- assign
def assign(
    session_id: Annotated[str, typer.Argument(help="The unmatched session to assign.")],
    student: Annotated[
        str | None, typer.Option("--student", help="Give it to this student (their session nearest the call).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Move its platform data into this session.")] = None,
    url: UrlOption = DEFAULT_URL,
    token: AdminTokenOption = None,
    table: TableOption = None,
) -> None:
    """Assign an [bold]unmatched[/] session to a student (--student) or a session (--to)."""
    from pydantic import ValidationError
    from rich.markup import escape

    from session_tracker_cli.client import SourceError

    if not student and not to:
        raise typer.BadParameter("give --student or --to", param_hint="--student")
    source = _source(url, token, table)
    try:
        result = source.assign(session_id, student_id=student, target=to)
    except ValidationError as exc:
        raise _fail(str(exc.errors()[0].get("msg")), code=2) from exc
    except SourceError as exc:
        if exc.status == 404:
            raise _fail(f"no session {session_id!r}", code=2) from exc
        raise _fail(str(exc)) from exc
    _console(stderr=True).print(f"{escape(session_id)} -> {escape(str(result.get('session_id')))}")
    sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


def register(app: typer.Typer) -> None:
    """Add the reading commands to the ``session-tracker`` app."""
    app.command("sessions")(sessions)
    app.command("show")(show)
    app.command("export")(export)
    app.command("analyze")(analyze)
    app.command("assign")(assign)
