"""The tutoring MCP server on the official ``mcp`` SDK, logged by the session tracker.

Run it (from ``examples/``)::

    SESSION_TRACKER_URL=http://127.0.0.1:3000 INGEST_TOKEN=... python -m tutoring_server
    python -m tutoring_server --transport streamable-http --port 8000

The one line that adds logging is the ``middleware=[SessionTrackerMiddleware(...)]``
argument below; nothing else in the server knows about the tracker.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from session_tracker_client import Tracker
from session_tracker_client.mcp_middleware import SessionTrackerMiddleware
from tutoring_server.tutoring import Tutoring, UnknownItem

T = TypeVar("T")

INSTRUCTIONS = "Tools for a voice AI tutor: read a student's context and progress, the curriculum, record answers."


def build_server(
    tracker: Tracker | None = None, *, logging: bool = True, tutoring: Tutoring | None = None
) -> MCPServer:
    """The server; ``tracker`` defaults to one configured from SESSION_TRACKER_URL / INGEST_TOKEN."""
    data = tutoring or Tutoring()
    server = MCPServer(
        "tutoring",
        instructions=INSTRUCTIONS,
        middleware=[SessionTrackerMiddleware(tracker)] if logging else [],
    )

    def _run(fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except UnknownItem as exc:
            raise ToolError(str(exc)) from exc

    @server.tool()
    def get_student_context(student_id: str) -> dict[str, Any]:
        """Profile, goals, progress and recent activity of a student."""
        return _run(data.student_context, student_id)

    @server.tool()
    def get_progress(student_id: str, subject: str | None = None) -> dict[str, Any]:
        """Mastery per subject, with this session's answers counted."""
        return _run(data.progress, student_id, subject)

    @server.tool()
    def get_curriculum(subject: str, grade: int | None = None) -> dict[str, Any]:
        """Units and practice questions of a subject, optionally for one grade."""
        return _run(data.curriculum, subject, grade)

    @server.tool()
    def record_answer(student_id: str, question_id: str, answer: str) -> dict[str, Any]:
        """Check a student's answer to a practice question and record it."""
        return _run(data.record_answer, student_id, question_id, answer)

    @server.resource("curriculum://{subject}")
    def curriculum_resource(subject: str) -> dict[str, Any]:
        """A subject's curriculum as JSON."""
        return _run(data.curriculum, subject)

    @server.prompt()
    def lesson_plan(student_id: str, subject: str) -> str:
        """A lesson-plan prompt for one student and subject."""
        return _run(data.lesson_plan_prompt, student_id, subject)

    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-logging", action="store_true", help="run without the session tracker middleware")
    args = parser.parse_args(argv)
    server = build_server(logging=not args.no_logging)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=args.host, port=args.port)
