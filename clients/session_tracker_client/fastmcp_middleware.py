"""Hook for servers built on ``fastmcp`` (``fastmcp.FastMCP``): one line to add::

    from session_tracker_client.fastmcp_middleware import SessionTrackerMiddleware

    mcp = FastMCP("tutor", middleware=[SessionTrackerMiddleware()])
    # or: mcp.add_middleware(SessionTrackerMiddleware())

Only ``tools/call`` is observed (``on_call_tool``); results and exceptions
(``ToolError`` included) reach fastmcp unchanged.
"""

from __future__ import annotations

from typing import Any

import mcp_types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult

from session_tracker_client.tracker import Tracker, default_tracker

__all__ = ["SessionTrackerMiddleware", "instrument"]


class SessionTrackerMiddleware(Middleware):
    """fastmcp ``Middleware`` logging every tool call through a :class:`Tracker`.

    Without arguments it uses the process-wide tracker configured from
    ``SESSION_TRACKER_URL`` / ``INGEST_TOKEN``; keyword options build a dedicated one.
    """

    def __init__(self, tracker: Tracker | None = None, **options: Any) -> None:
        if tracker is None:
            tracker = Tracker(**options) if options else default_tracker()
        self.tracker = tracker

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        message = context.message
        return await self.tracker.around(
            message.name, message.arguments, lambda: call_next(context), request_id=_request_id(context)
        )


def _request_id(context: MiddlewareContext[Any]) -> Any:
    """The JSON-RPC id of the call (for the OpenTelemetry span), ``None`` outside a session."""
    fastmcp_context = context.fastmcp_context
    request_context = getattr(fastmcp_context, "request_context", None) if fastmcp_context else None
    return getattr(request_context, "request_id", None) if request_context is not None else None


def instrument(server: Any, tracker: Tracker | None = None, **options: Any) -> Tracker:
    """``server.add_middleware(SessionTrackerMiddleware(...))``; returns the tracker."""
    middleware = SessionTrackerMiddleware(tracker, **options)
    server.add_middleware(middleware)
    return middleware.tracker
