"""The options several ``session-tracker`` commands share, defined once.

A command takes one as ``since: SinceOption = None``; the same name, aliases, environment
variables and help then read alike in every ``--help``. Only typer is imported here
(``--help`` stays light).
"""

from __future__ import annotations

from typing import Annotated

import typer

READ_TOKEN_VARS = ("SESSION_TRACKER_TOKEN", "READ_TOKEN", "ADMIN_TOKEN")
"""Where reading commands find their credential, in this order (INGEST_TOKEN cannot read)."""

UrlOption = Annotated[
    str,
    typer.Option(
        envvar="SESSION_TRACKER_URL", help="Base URL of the API (local stack or deployed).", show_default=True
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        envvar=list(READ_TOKEN_VARS),
        help="A read (or admin) credential [env: SESSION_TRACKER_TOKEN, then READ_TOKEN, then ADMIN_TOKEN].",
        show_default=False,
        show_envvar=False,
    ),
]
AdminTokenOption = Annotated[
    str | None,
    typer.Option(
        envvar=["SESSION_TRACKER_TOKEN", "ADMIN_TOKEN"],
        help="A credential with the admin scope [env: SESSION_TRACKER_TOKEN, then ADMIN_TOKEN].",
        show_envvar=False,
        show_default=False,
    ),
]
TableOption = Annotated[
    str | None,
    typer.Option(
        envvar="SESSION_TRACKER_TABLE",
        help="Read the DynamoDB table directly instead of the API (operators; AWS credentials from the environment).",
        show_default=False,
    ),
]
AdminTableOption = Annotated[
    str | None,
    typer.Option(
        envvar="SESSION_TRACKER_TABLE",
        help="Work on the DynamoDB table directly instead of the API (operators; AWS credentials "
        "from the environment).",
        show_default=False,
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        envvar="AWS_ENDPOINT_URL_DYNAMODB",
        help="With --table: the DynamoDB endpoint (DynamoDB Local as `make run` prints it).",
        show_default=False,
    ),
]

SinceOption = Annotated[
    str | None,
    typer.Option("--since", "--from", help="Only sessions started on/after this date or ISO time.", show_default=False),
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until", "--to", help="Only sessions started on/before this date or ISO time.", show_default=False),
]
SinceDayOption = Annotated[
    str | None, typer.Option("--since", help="Only sessions started on or after this UTC day (YYYY-MM-DD).")
]
UntilDayOption = Annotated[
    str | None, typer.Option("--until", help="Only sessions started on or before this UTC day (YYYY-MM-DD).")
]
StudentOption = Annotated[
    str | None, typer.Option("--student", "-s", help="Only this student's sessions.", show_default=False)
]
LimitOption = Annotated[int, typer.Option(min=1, help="At most this many, newest first.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (lines, for a list) instead of a table.")]
