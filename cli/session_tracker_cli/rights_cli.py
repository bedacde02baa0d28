"""``session-tracker keys create|list|revoke``: named API keys (admin).

Over the API with an admin credential (``--token``, default ``SESSION_TRACKER_TOKEN`` then
``ADMIN_TOKEN``), or with ``--table`` directly on the DynamoDB table (operators: the first
admin key of a deployment, or when the API is down).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from session_tracker_cli import DEFAULT_URL
from session_tracker_cli.options import (
    AdminTableOption,
    AdminTokenOption,
    EndpointOption,
    JsonOption,
    LimitOption,
    UrlOption,
)
from session_tracker_cli.reading_cli import _console, _fail

if TYPE_CHECKING:
    from session_tracker_cli.rights_client import AdminSource

keys_app = typer.Typer(
    name="keys",
    help="Named API keys: one per tutor or MCP server, each with a scope, revocable on its own (admin).",
    no_args_is_help=True,
)


def _admin(url: str, token: str | None, table: str | None, endpoint_url: str | None) -> AdminSource:
    from session_tracker_cli.rights_client import open_admin

    return open_admin(url=url, token=token, table=table, endpoint_url=endpoint_url)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="The key's name: letters, digits, _ and -.")],
    scope: Annotated[str, typer.Option("--scope", help="ingest, read or admin.")],
    url: UrlOption = DEFAULT_URL,
    token: AdminTokenOption = None,
    table: AdminTableOption = None,
    endpoint_url: EndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it [bold]once[/] (only its hash is stored)."""
    from rich.markup import escape

    from session_tracker_cli.client import SourceError

    if scope not in ("ingest", "read", "admin"):
        raise typer.BadParameter("must be ingest, read or admin", param_hint="--scope")
    try:
        created = _admin(url, token, table, endpoint_url).create_key(name, scope)
    except SourceError as exc:
        raise _fail(str(exc), code=2 if exc.status in (409, 422) else 1) from exc
    if as_json:
        sys.stdout.write(json.dumps(created, indent=2) + "\n")
        return
    _console(stderr=True).print(
        f"created key [bold]{escape(created['name'])}[/] (scope {escape(created['scope'])}). "
        "Store it now: it is not shown again."
    )
    sys.stdout.write(created["key"] + "\n")


@keys_app.command("list")
def keys_list(
    url: UrlOption = DEFAULT_URL,
    token: AdminTokenOption = None,
    table: AdminTableOption = None,
    endpoint_url: EndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """Name, scope, created and last used of every key (never the key)."""
    from session_tracker_cli.client import SourceError

    try:
        found = _admin(url, token, table, endpoint_url).list_keys()
    except SourceError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
        return
    rows = [("NAME", "SCOPE", "CREATED", "LAST USED", "REVOKED")]
    for key in found:
        rows.append(
            (
                key["name"],
                key["scope"],
                _short(key.get("created_at")),
                _short(key.get("last_used")) or "never",
                _short(key.get("revoked_at")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        sys.stdout.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")


def _short(value: str | None) -> str:
    """``2026-12-04T18:31:07.123456Z`` -> ``2026-12-04 18:31:07Z``."""
    if not value:
        return ""
    return value.replace("T", " ").split(".", 1)[0].removesuffix("Z") + "Z"


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key to revoke.")],
    url: UrlOption = DEFAULT_URL,
    token: AdminTokenOption = None,
    table: AdminTableOption = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """Revoke a key: refused within 60 s everywhere (at once by the function that revoked it)."""
    from rich.markup import escape

    from session_tracker_cli.client import SourceError

    try:
        revoked = _admin(url, token, table, endpoint_url).revoke_key(name)
    except SourceError as exc:
        raise _fail(str(exc), code=2 if exc.status == 404 else 1) from exc
    _console(stderr=True).print(f"revoked key [bold]{escape(name)}[/] at {escape(revoked['revoked_at'])}")


# ----------------------------------------------------------------------------- audit
def audit(
    student: Annotated[str | None, typer.Option("--student", help="Only entries about this student.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Entries at or after (ISO date or time).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Entries at or before (ISO date or time).")] = None,
    limit: LimitOption = 50,
    url: UrlOption = DEFAULT_URL,
    token: AdminTokenOption = None,
    table: AdminTableOption = None,
    endpoint_url: EndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """The access audit, newest first: who read, erased or assigned which student's sessions."""
    from session_tracker_cli.client import SourceError

    try:
        found = _admin(url, token, table, endpoint_url).audit(student_id=student, start=start, end=end, limit=limit)
    except SourceError as exc:
        raise _fail(str(exc), code=2 if exc.status == 422 else 1) from exc
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
        return
    rows = [("AT", "ACTOR", "SCOPE", "ACTION", "STUDENT", "SESSION")]
    for entry in found:
        session = entry.get("session_id") or ""
        if entry.get("counts"):
            session = " ".join(f"{k}={v}" for k, v in sorted(entry["counts"].items()))
        rows.append(
            (
                _short(entry["at"]),
                entry["actor"],
                entry["scope"],
                entry["action"],
                entry.get("student_id") or "",
                session,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        sys.stdout.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")


# ----------------------------------------------------------------------------- erasure
MAX_STEPS = 10_000
"""A bounded loop even against a server that never says complete (25 sessions a step: 250,000)."""


def forget(
    student_id: Annotated[str, typer.Argument(help="The student whose data is erased.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: AdminTokenOption = None,
    table: AdminTableOption = None,
    endpoint_url: EndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase [bold]everything[/] stored about a student: sessions, calls, transcripts and other blobs,
    markers, audit entries (the erasure's own entry, with counts, is kept). Cannot be undone."""
    from rich.markup import escape

    from session_tracker_cli.client import SourceError

    source = _admin(url, token, table, endpoint_url)
    if not yes:  # no answer (stdin closed) is a no
        typer.confirm(
            f"Erase every session, call, transcript and marker of student {student_id!r} from "
            f"{source.describe()}? This cannot be undone",
            abort=True,
        )
    total = {"sessions_deleted": 0, "interactions_deleted": 0, "blobs_deleted": 0}
    steps = 0
    result: dict[str, object] = {}
    try:
        while steps < MAX_STEPS:
            result = source.erase_step(student_id)
            steps += 1
            for key in total:
                total[key] += int(result.get(key) or 0)  # type: ignore[call-overload]
            if result.get("complete"):
                break
            if not as_json:
                _console(stderr=True).print(
                    f"  ... {total['sessions_deleted']} sessions erased so far, continuing", highlight=False
                )
        else:
            raise _fail(f"the erasure did not complete after {MAX_STEPS} requests; run forget again")
    except SourceError as exc:
        raise _fail(
            f"{exc} - erased so far: {total['sessions_deleted']} sessions; run forget again to finish",
            code=2 if exc.status == 422 else 1,
        ) from exc
    summary = {"student_id": student_id, **total, "erased_at": result.get("erased_at"), "requests": steps}
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    _console().print(
        f"erased student [bold]{escape(student_id)}[/]: {total['sessions_deleted']} sessions, "
        f"{total['interactions_deleted']} interactions, {total['blobs_deleted']} blobs "
        f"({steps} request{'s' if steps != 1 else ''})",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``keys``, ``audit`` and ``forget`` (student data rights, admin) to the ``session-tracker`` app."""
    app.add_typer(keys_app, name="keys")
    app.command("audit")(audit)
    app.command("forget")(forget)
