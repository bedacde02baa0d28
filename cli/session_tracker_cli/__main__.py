"""``python -m session_tracker_cli``: the same as the ``session-tracker`` command."""

from session_tracker_cli.cli import main

main()
