"""MCP-side logging client for tutor-session-tracker (no Lambda dependencies).

Imports only the standard library and ``httpx``; the ``mcp`` and ``fastmcp`` hooks
live in their own modules (:mod:`session_tracker_client.mcp_middleware`,
:mod:`session_tracker_client.fastmcp_middleware`) and import those SDKs there.

- :class:`Tracker`: capture options + a background :class:`Sender`; ``tracker.tool``
  (decorator) and ``tracker.call(...)`` (context manager) for any Python server.
- ``session-tracker-proxy -- COMMAND...`` (also ``session-tracker mcp-proxy``;
  :mod:`session_tracker_client.proxy`) for servers that cannot be changed.

Distribution ``session-tracker-client`` (``clients/pyproject.toml``), versioned on its
own (``clients/CHANGELOG.md``).
"""

__version__ = "0.2.0"

from session_tracker_client.sender import Sender, SenderOptions, SenderStats
from session_tracker_client.tracker import (
    CaptureOptions,
    ToolCall,
    TrackedCall,
    Tracker,
    default_extract,
    default_tracker,
    plain_result,
    result_is_error,
)

__all__ = [
    "CaptureOptions",
    "Sender",
    "SenderOptions",
    "SenderStats",
    "ToolCall",
    "TrackedCall",
    "Tracker",
    "default_extract",
    "default_tracker",
    "plain_result",
    "result_is_error",
]
