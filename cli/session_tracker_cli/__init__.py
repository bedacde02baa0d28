"""``session-tracker``: the command line of tutor-session-tracker (package ``session-tracker-cli``).

Commands live in :mod:`session_tracker_cli.cli` (the Typer app) and in modules that
register theirs on it (:mod:`session_tracker_cli.reading_cli`). Reading works over the
API with ``httpx``; ``--table`` (operators) needs the ``table`` extra (boto3); ``serve``
needs the development-only local stack (``session-tracker-local``, installed by ``make run``).
"""

DEFAULT_URL = "http://127.0.0.1:3000"
"""Where the CLI finds the API when neither ``--url`` nor ``SESSION_TRACKER_URL`` is given (the local stack)."""
