"""tutor-session-tracker: session logging for voice AI tutors (shared Lambda layer)."""

__version__ = "0.1.0"
