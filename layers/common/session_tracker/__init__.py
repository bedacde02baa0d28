"""tutor-session-tracker: session logging for voice AI tutors (shared Lambda layer).

``__version__`` is the one place the product version is written: the root, ``cli/`` and
``local/`` pyproject.toml files read it (setuptools dynamic version) and ``/health`` reports it.
"""

__version__ = "0.2.0"

from session_tracker import coldstart

coldstart.pause()  # in Lambda only; the first invocation of every handler ends it (coldstart.handler)
