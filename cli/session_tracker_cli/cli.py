"""``session-tracker``: the command line of tutor-session-tracker."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer

from session_tracker_cli import DEFAULT_URL, migrate_cli, progress_cli, pull_cli, reading_cli, rights_cli
from session_tracker_cli.options import (
    EndpointOption,
    JsonOption,
    SinceDayOption,
    TokenOption,
    UntilDayOption,
    UrlOption,
)

app = typer.Typer(
    name="session-tracker",
    help="Session logging for voice AI tutors: run the local stack, read and export sessions, "
    "and log the tool calls of any MCP server.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root() -> None:
    """Session logging for voice AI tutors."""


@app.command()
def serve(
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Keep DynamoDB Local data here (default: .local-data under the project)."),
    ] = None,
    in_memory: Annotated[bool, typer.Option("--in-memory", help="Keep no data on disk.")] = False,
    backend: Annotated[
        str, typer.Option(help="auto (DynamoDB Local when java is present, else moto), dynamodb-local or moto.")
    ] = "auto",
    schedule_seconds: Annotated[
        float | None, typer.Option(help="Run every scheduled function this often instead of its template rate.")
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Print one line per HTTP request.")] = True,
    workers: Annotated[
        int | None,
        typer.Option(
            help="HTTP worker processes sharing the port (default: one per core, at most 4; 0: threads of "
            "one process). Streams and schedules run once, in the main process."
        ),
    ] = None,
) -> None:
    """Serve every route of template.yaml locally, with streams and schedules running (dev: `make run`)."""
    try:
        from session_tracker_local.stack import LocalStack, StackOptions, default_workers, find_root
    except ImportError as exc:
        typer.echo(
            "error: `serve` runs the local stack, a development package that is not installed here: "
            "run `make run` in a clone of tutor-session-tracker (it installs ./local).",
            err=True,
        )
        raise typer.Exit(2) from exc

    if backend not in ("auto", "dynamodb-local", "moto"):
        raise typer.BadParameter("must be auto, dynamodb-local or moto", param_hint="--backend")
    import logging
    import signal
    import threading

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    root = find_root()
    options = StackOptions(
        root=root,
        host=host,
        port=port,
        data_dir=None if in_memory else (data_dir or root / ".local-data"),
        backend=backend,  # type: ignore[arg-type]
        schedule_interval=schedule_seconds,
        access_log=access_log,
        workers=default_workers() if workers is None else workers,
    )
    stopped = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stack = LocalStack(options)
    try:
        stack.start()
    except Exception as exc:
        typer.echo(f"error: could not start the local stack: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        typer.echo(stack.describe())
        typer.echo("Press Ctrl-C to stop.")
        sys.stdout.flush()
        stopped.wait()
    finally:
        typer.echo("stopping ...")
        stack.stop()
        typer.echo("stopped.")


@app.command(
    "mcp-proxy",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    no_args_is_help=True,
)
def mcp_proxy(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(envvar="SESSION_TRACKER_URL", help="Session tracker API base URL.")] = None,
    token_env: Annotated[
        str, typer.Option(help="Environment variable holding the bearer token for POST /interactions.")
    ] = "INGEST_TOKEN",  # noqa: S107 - a variable name
    token: Annotated[
        str | None,
        typer.Option(help="Bearer token (discouraged: visible in ps to every user; use the environment)."),
    ] = None,
    student_id_arg: Annotated[str, typer.Option(help="Tool argument holding the student id.")] = "student_id",
    student_id: Annotated[str | None, typer.Option(help="Student id for calls without that argument.")] = None,
    redact: Annotated[
        list[str] | None, typer.Option(help="Argument name whose value is not logged (repeatable).")
    ] = None,
    platform: Annotated[str | None, typer.Option(help="Voice platform name sent with every call.")] = None,
    flush_timeout: Annotated[float, typer.Option(help="Seconds to send what is left when the server exits.")] = 1.5,
) -> None:
    """Run an MCP server over stdio behind a proxy that logs every tools/call: mcp-proxy [OPTIONS] -- COMMAND..."""
    from session_tracker_client.proxy import proxy, resolve_token

    command = list(ctx.args)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise typer.BadParameter("give the server command after --", param_hint="COMMAND")
    code = proxy(
        command,
        url=url,
        token=resolve_token(token, token_env),
        student_id_arg=student_id_arg,
        student_id=student_id,
        redact=redact or (),
        platform=platform,
        flush_timeout=flush_timeout,
    )
    raise typer.Exit(code)


# Reading sessions: sessions, show, export, analyze (cli/session_tracker_cli/reading_cli.py).
reading_cli.register(app)
# Platforms that send no webhooks: pull superinterface (cli/session_tracker_cli/pull_cli.py).
pull_cli.register(app)
# The tutor's view in a terminal: students, student S, and the demo (progress_cli.py).
progress_cli.register(app)
# Student data rights: keys create|list|revoke (rights_cli.py).
rights_cli.register(app)
# Storage v2 upgrade of a v1 table: migrate --table (migrate_cli.py).
migrate_cli.register(app)


@app.command()
def usage(
    date: Annotated[str | None, typer.Option(help="UTC day, YYYY-MM-DD (default: today).")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    table: Annotated[
        str | None,
        typer.Option(
            envvar=["SESSION_TRACKER_TABLE", "TABLE_NAME"],
            help="Read the table directly instead of the API (operators).",
            show_default=False,
        ),
    ] = None,
    endpoint_url: EndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """Analysis spend of one day: sessions analysed against max_sessions_per_day, tokens, estimated cost (JSON)."""
    import json
    from datetime import UTC, datetime

    from session_tracker_cli.client import ApiSource, SourceError, TableSource

    day = date or datetime.now(UTC).date().isoformat()
    try:
        datetime.strptime(day, "%Y-%m-%d")
    except ValueError as exc:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--date") from exc
    try:
        source = TableSource(table, endpoint_url=endpoint_url) if table else ApiSource(url, token)
        found = source.usage(day)
    except SourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(found, indent=2))


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint=option) from exc


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One SQL statement over the views `sessions` and `interactions`.")],
    source: Annotated[
        str,
        typer.Option(
            envvar="SESSION_FILES",
            help="The session files: a folder (default: .local-data/sessions, what `make run` writes) "
            "or s3://BUCKET/sessions/ (read with your AWS credentials).",
        ),
    ] = ".local-data/sessions",
    since: SinceDayOption = None,
    until: UntilDayOption = None,
    output: Annotated[str, typer.Option("--format", help="table, csv or json (JSON lines).")] = "table",
) -> None:
    """SQL over the session files with DuckDB (extra: pip install 'session-tracker-cli[query]').

    Views: [bold]sessions[/] (one row per session) and [bold]interactions[/] (one row per
    logged call); [bold]session_files[/] holds the exports as they are. See docs/session-files.md.
    """
    from session_tracker_cli import query as q

    render = {"table": q.as_table, "csv": q.as_csv, "json": q.as_json_lines}.get(output)
    if render is None:
        raise typer.BadParameter("must be table, csv or json", param_hint="--format")
    first, last = _day(since, "--since"), _day(until, "--until")
    try:
        with q.local_root(source, since=first, until=last) as root:
            result = q.run(sql, root)
    except q.QueryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    sys.stdout.write(render(result))


def main() -> None:
    _defer_rich_extras()
    app()


_DEFERRED = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}
"""Modules typer's help renderer imports at its top but uses only for markdown help (this CLI uses
rich markup) and for a crash's traceback; with what they import (markdown-it, pygments,
rich.pretty) they were most of what ``--help`` loaded beyond rich's console."""


def _real_module(name: str) -> ModuleType:
    """The real module ``name``, imported now if only its stand-in is there."""
    import importlib

    if isinstance(sys.modules.get(name), _StandIn):
        del sys.modules[name]
    return importlib.import_module(name)


class _StandIn(ModuleType):
    """A module not imported yet: any name read from it imports it (and it replaces this)."""

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):  # the import system's probes (__path__, ...) do not load it
            raise AttributeError(attr)
        return getattr(_real_module(self.__name__), attr)


class _LazyClass(type):
    """A class of a deferred module: calling it or reading its attributes imports the module."""

    _module: str

    def _real(cls) -> Any:
        return getattr(_real_module(cls._module), cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(cls._real(), attr)


def _defer_rich_extras() -> None:
    """Stand-ins for :data:`_DEFERRED` in ``sys.modules`` (a module already imported is left)."""
    for name, class_name in _DEFERRED.items():
        if name not in sys.modules:
            stand_in = _StandIn(name)
            setattr(stand_in, class_name, _LazyClass(class_name, (), {"_module": name, "__module__": name}))
            sys.modules[name] = stand_in


if __name__ == "__main__":
    main()
