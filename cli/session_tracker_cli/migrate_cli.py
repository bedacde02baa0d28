"""``session-tracker migrate --table T``: move a v1 table to the storage v2 layout (operators).

Works on the DynamoDB table directly (AWS credentials from the environment, or DynamoDB Local
with ``--endpoint-url``). Each run is bounded (``--limit`` items scanned) and resumes from the
checkpoint item the previous run left; rerunning a finished migration changes nothing. See
docs/deploy.md ("Upgrading a v1 table"). boto3 and the layer load only when the command runs,
so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from session_tracker_cli.options import AdminTableOption, EndpointOption, JsonOption
from session_tracker_cli.reading_cli import _fail


def migrate(
    table: AdminTableOption = None,
    endpoint_url: EndpointOption = None,
    scan_limit: Annotated[
        int, typer.Option("--limit", min=1, help="Scan at most this many items in this run (bounded).")
    ] = 5000,
    until_done: Annotated[
        bool, typer.Option("--until-done", help="Keep running bounded runs until the migration is complete.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would move; write nothing.")] = False,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart", help="Ignore the checkpoint and scan from the start (a finished table: a no-op check)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Move a v1 table's calls and HEADs to the storage v2 layout, resumably, in bounded runs."""
    from botocore.exceptions import BotoCoreError, ClientError

    from session_tracker.store.dynamo_migrate import Migrator
    from session_tracker_cli.client import SourceError, dynamodb_client

    if not table:
        raise typer.BadParameter("the table to migrate is required (or SESSION_TRACKER_TABLE)", param_hint="--table")
    limit = scan_limit
    try:
        migrator = Migrator(table, client=dynamodb_client(endpoint_url))
        report = migrator.run(limit=limit, dry_run=dry_run, restart=restart)
        runs = [report]
        while until_done and not report.complete and not dry_run:
            report = migrator.run(limit=limit)
            runs.append(report)
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise _fail(
            f"table {table}: {error.get('Code')}: {error.get('Message')} - run migrate again to resume"
        ) from exc
    except BotoCoreError as exc:
        raise _fail(f"table {table}: {exc} - run migrate again to resume") from exc
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
        return
    if report.already_complete:
        typer.echo(f"table {table}: the migration to storage v2 is already complete ({report.completed_at}).")
        return
    moved = {k: sum(getattr(r.run, k) for r in runs) for k in ("scanned", "sessions", "calls", "heads", "markers")}
    verb = "would move" if dry_run else "moved"
    typer.echo(
        f"table {table}: scanned {moved['scanned']} items; {verb} {moved['sessions']} sessions "
        f"({moved['calls']} calls), {moved['heads']} HEADs, {'would delete' if dry_run else 'deleted'} "
        f"{moved['markers']} idempotency markers"
    )
    if report.complete:
        typer.echo("complete." if not dry_run else "dry run: nothing written.")
    else:
        typer.echo("not complete yet: run `session-tracker migrate` again (it resumes from its checkpoint).")


def register(app: typer.Typer) -> None:
    """Add ``migrate`` to the ``session-tracker`` app."""
    app.command("migrate")(migrate)
