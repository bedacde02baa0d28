"""``session-tracker``: the command line of tutor-session-tracker."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

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
) -> None:
    """Serve every route of template.yaml locally, with streams and schedules running."""
    from session_tracker_local.stack import LocalStack, StackOptions, find_root

    if backend not in ("auto", "dynamodb-local", "moto"):
        raise typer.BadParameter("must be auto, dynamodb-local or moto", param_hint="--backend")
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
