"""Hook for servers built on the official ``mcp`` SDK (2.x, ``mcp.server.mcpserver.MCPServer``
or the low-level ``mcp.server.Server``): one line to add::

    from session_tracker_client.mcp_middleware import SessionTrackerMiddleware

    server = MCPServer("tutor", middleware=[SessionTrackerMiddleware()])
    # or, for an existing server object:
    server.middleware.append(SessionTrackerMiddleware())

The middleware sees every inbound message; it times ``tools/call`` only and passes
everything else straight on. The call's result and exceptions go back to the SDK
untouched.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext

from session_tracker_client.tracker import Tracker, default_tracker

__all__ = ["SessionTrackerMiddleware", "instrument"]


class SessionTrackerMiddleware(ServerMiddleware[Any]):
    """``ServerMiddleware`` logging every ``tools/call`` through a :class:`Tracker`.

    Without arguments it uses the process-wide tracker configured from
    ``SESSION_TRACKER_URL`` / ``INGEST_TOKEN``; keyword options build a dedicated one
    (see :class:`Tracker` for ``student_id_arg``, ``student_id``, ``redact``, ``extract`` ...).
    """

    def __init__(self, tracker: Tracker | None = None, **options: Any) -> None:
        if tracker is None:
            tracker = Tracker(**options) if options else default_tracker()
        self.tracker = tracker

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or not ctx.params:
            return await call_next(ctx)
        params = ctx.params
        name = params.get("name")
        arguments = params.get("arguments")
        return await self.tracker.around(
            name if isinstance(name, str) else "?",
            arguments if isinstance(arguments, dict) else None,
            lambda: call_next(ctx),
            request_id=getattr(ctx, "request_id", None),
        )


def instrument(server: Any, tracker: Tracker | None = None, **options: Any) -> Tracker:
    """Add the middleware to ``server`` (an ``MCPServer`` or low-level ``Server``); returns its tracker."""
    middleware = SessionTrackerMiddleware(tracker, **options)
    server.middleware.append(middleware)
    return middleware.tracker
