"""The same tutoring tools on ``fastmcp``, logged by the session tracker.

Run it (from ``examples/``): ``python -m tutoring_server.fastmcp_server``. The one
line that adds logging is ``middleware=[SessionTrackerMiddleware(...)]`` below.
"""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError

from session_tracker_client import Tracker
from session_tracker_client.fastmcp_middleware import SessionTrackerMiddleware
from tutoring_server.tutoring import Tutoring, UnknownItem


def build_server(tracker: Tracker | None = None, *, tutoring: Tutoring | None = None) -> FastMCP:
    """The fastmcp server; ``tracker`` defaults to one configured from the environment."""
    data = tutoring or Tutoring()
    mcp = FastMCP("tutoring", middleware=[SessionTrackerMiddleware(tracker)])

    @mcp.tool
    def get_student_context(student_id: str) -> dict[str, Any]:
        """Profile, goals, progress and recent activity of a student."""
        try:
            return data.student_context(student_id)
        except UnknownItem as exc:
            raise ToolError(str(exc)) from exc

    @mcp.tool
    def get_progress(student_id: str, subject: str | None = None) -> dict[str, Any]:
        """Mastery per subject, with this session's answers counted."""
        try:
            return data.progress(student_id, subject)
        except UnknownItem as exc:
            raise ToolError(str(exc)) from exc

    @mcp.tool
    def get_curriculum(subject: str, grade: int | None = None) -> dict[str, Any]:
        """Units and practice questions of a subject, optionally for one grade."""
        try:
            return data.curriculum(subject, grade)
        except UnknownItem as exc:
            raise ToolError(str(exc)) from exc

    @mcp.tool
    def record_answer(student_id: str, question_id: str, answer: str) -> dict[str, Any]:
        """Check a student's answer to a practice question and record it."""
        try:
            return data.record_answer(student_id, question_id, answer)
        except UnknownItem as exc:
            raise ToolError(str(exc)) from exc

    return mcp


if __name__ == "__main__":
    build_server().run()
