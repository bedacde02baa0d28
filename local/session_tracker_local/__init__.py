"""CLI and local stack for tutor-session-tracker."""

DEFAULT_URL = "http://127.0.0.1:3000"
"""Where the CLI finds the API when neither ``--url`` nor ``SESSION_TRACKER_URL`` is given (the local stack)."""
