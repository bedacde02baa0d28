"""One OpenTelemetry span per tool call, following the OpenTelemetry MCP semantic conventions.

Conventions followed: OpenTelemetry GenAI semantic conventions v0.1.0
(``open-telemetry/semantic-conventions-genai``, ``docs/gen-ai/mcp.md``: the MCP server span,
status Development; the core semantic-conventions releases, e.g. v1.43, mark their MCP attributes
as moved there).

Span ``tools/call {tool}``, kind ``SERVER``, with ``mcp.method.name=tools/call``,
``gen_ai.tool.name``, ``gen_ai.operation.name=execute_tool``, ``jsonrpc.request.id`` (when the
hook knows it), ``network.transport`` (``pipe`` for stdio, when known), ``enduser.id`` (the
student id) and, for an error result, ``error.type=tool_error`` with status ``ERROR``.
Argument and result values (``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result``, as
JSON text, redacted like the logged call) only when the user opts in
(``Tracker(otel_content=True)`` or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``).

Only ``opentelemetry-api`` is used, and only when it is installed: without it :func:`emitter`
returns ``None`` and the tracker does nothing more than before. With the API but no SDK
configured, spans are the API's no-op spans. The span is recorded when the call has finished,
with the call's own start and end times, as a child of the context the hook runs in. When that
context already is the server's own ``tools/call`` span for this tool (the ``mcp`` 2.x SDK makes
one when OpenTelemetry is configured), the attributes are added to it instead, as the conventions
ask ("SHOULD NOT create a separate span").
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("session_tracker_client")

CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
SWITCH_ENV = "SESSION_TRACKER_OTEL"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


class SpanEmitter:
    """Turns one finished tool call into one span (built once per :class:`Tracker`)."""

    __slots__ = ("_current", "_error", "_global", "_kind", "_static", "_tracer", "content")

    def __init__(self, *, content: bool, transport: str | None, version: str, tracer_provider: Any = None) -> None:
        from opentelemetry import trace

        self._current = trace.get_current_span
        # While no global provider is set (no SDK set up, yet) every span is the API's no-op:
        # live() says so from the API module's global (one attribute read; get_tracer_provider()
        # reads the environment on every call), so record() skips the span work. Not used with
        # an explicit provider, or when OTEL_PYTHON_TRACER_PROVIDER names one to load.
        usable = hasattr(trace, "_TRACER_PROVIDER") and "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ
        self._global = trace if tracer_provider is None and usable else None
        self._tracer = trace.get_tracer("session_tracker_client", version, tracer_provider=tracer_provider)
        self._kind = trace.SpanKind.SERVER
        self._error = trace.Status(trace.StatusCode.ERROR, "tool_error")
        static: dict[str, str] = {"mcp.method.name": "tools/call", "gen_ai.operation.name": "execute_tool"}
        if transport:
            static["network.transport"] = transport
        self._static = static
        self.content = content

    def live(self) -> bool:
        """``False`` while every span would be a no-op (global provider still the API's proxy)."""
        return self._global is None or self._global._TRACER_PROVIDER is not None

    def emit(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        result: Any,
        *,
        student_id: str | None,
        started_at: float,
        duration_s: float,
        is_error: bool,
        request_id: Any = None,
        redact: frozenset[str] = frozenset(),
    ) -> None:
        if not self.live():
            return
        attributes: dict[str, Any] = {**self._static, "gen_ai.tool.name": tool}
        if request_id is not None:
            attributes["jsonrpc.request.id"] = str(request_id)
        if student_id:
            attributes["enduser.id"] = student_id
        if is_error:
            attributes["error.type"] = "tool_error"
        if self.content:
            self._content(attributes, arguments, result, is_error, redact)
        # The conventions: when the server's own instrumentation already traces this tools/call
        # (the `mcp` 2.x SDK does), add our attributes to its span instead of a second span.
        current = self._current()
        traced = getattr(current, "attributes", None)
        if (
            traced is not None
            and traced.get("mcp.method.name") == "tools/call"
            and traced.get("gen_ai.tool.name") == tool
            and current.is_recording()
        ):
            current.set_attributes({k: v for k, v in attributes.items() if k not in traced})
            if is_error:
                current.set_status(self._error)
            return
        start = int(started_at * 1e9)
        span = self._tracer.start_span(f"tools/call {tool}", kind=self._kind, attributes=attributes, start_time=start)
        if is_error:
            span.set_status(self._error)
        span.end(end_time=start + int(max(duration_s, 0.0) * 1e9))

    @staticmethod
    def _content(
        attributes: dict[str, Any], arguments: Mapping[str, Any], result: Any, is_error: bool, redact: frozenset[str]
    ) -> None:
        from session_tracker_client.tracker import plain_result
        from session_tracker_client.tracker import redact as redacted

        try:
            args = redacted(dict(arguments), redact) if redact else arguments
            attributes["gen_ai.tool.call.arguments"] = json.dumps(args, ensure_ascii=False, default=str)
            if not is_error and result is not None:
                attributes["gen_ai.tool.call.result"] = json.dumps(
                    plain_result(result), ensure_ascii=False, default=str
                )
        except Exception as exc:  # pragma: no cover - defensive: a span never fails the call
            logger.debug("session tracker: tool call content not added to the span: %s", exc)


def emitter(
    enabled: bool | None = None,
    *,
    content: bool | None = None,
    transport: str | None = None,
    tracer_provider: Any = None,
) -> SpanEmitter | None:
    """A :class:`SpanEmitter`, or ``None`` when spans are off or ``opentelemetry-api`` is absent.

    ``enabled``: ``None`` = on when ``opentelemetry-api`` is installed, unless
    ``SESSION_TRACKER_OTEL=0``. ``content``: ``None`` = ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``.
    ``tracer_provider``: the global one (``opentelemetry.trace.set_tracer_provider``) by default.
    """
    if enabled is None:
        enabled = _flag(SWITCH_ENV) is not False
    if not enabled:
        return None
    try:
        if importlib.util.find_spec("opentelemetry.trace") is None:
            return None
    except (ImportError, ValueError):
        return None
    from session_tracker_client import __version__

    try:
        return SpanEmitter(
            content=bool(content if content is not None else _flag(CONTENT_ENV)),
            transport=transport,
            version=__version__,
            tracer_provider=tracer_provider,
        )
    except Exception as exc:  # pragma: no cover - a broken OpenTelemetry install must not break the server
        logger.warning("session tracker: OpenTelemetry spans are off: %s", exc)
        return None
