"""What one tool call looks like to the session tracker, and the :class:`Tracker` every hook uses.

The hot path (:meth:`Tracker.record`) only resolves the student id, copies the
argument dict and queues a builder; redaction, result inspection (``data_provided``,
``subjects``, response size) and JSON encoding run later on the sender's thread.
Nothing here raises into the tool call: a failing resolver or extractor is counted
and the call is skipped or logged without those fields.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, ParamSpec, TypeVar, overload

import httpx

from session_tracker_client.otel import SpanEmitter
from session_tracker_client.otel import emitter as otel_emitter
from session_tracker_client.sender import Payload, Sender, SenderOptions

logger = logging.getLogger("session_tracker_client")

P = ParamSpec("P")
R = TypeVar("R")

StudentResolver = Callable[[str, Mapping[str, Any]], str | None]
"""``(tool_name, arguments) -> student id | None``; runs in the tool call, keep it cheap."""
Extractor = Callable[[str, Any], Mapping[str, Sequence[str]] | None]
"""``(tool_name, result) -> {"data_provided": [...], "subjects": [...]}``; runs on the sender thread.

``result`` is the tool's result as plain JSON data: an MCP result's structured content,
else its text parsed as JSON when it is JSON, else the text; a Python value as returned.
"""

REDACTED = "[redacted]"
_CALL_ID = re.compile(r"^[^#\s]{1,200}$")
"""What the API accepts as ``call_id``; anything else is left out rather than get the call refused."""
_NOT_DATA = frozenset({"student_id", "subject", "subjects", "data_provided", "error", "isError", "is_error"})


@dataclass
class CaptureOptions:
    """How a tool call becomes a logged interaction."""

    student_id_arg: str = "student_id"
    """Tool argument holding the student id."""
    student_id: str | None = None
    """Student id for calls without that argument (e.g. a server that serves one student)."""
    resolve_student: StudentResolver | None = None
    """Called when the argument is missing, before falling back to ``student_id``."""
    redact: Collection[str] = ()
    """Argument names (at any depth, case-insensitive) whose values are replaced by ``[redacted]``."""
    extract: Extractor | None = None
    """Reads ``data_provided`` / ``subjects`` from a result; :func:`default_extract` by default."""
    platform: str | None = None
    """Sent as ``platform`` with every call (e.g. ``"vapi"``)."""
    call_id_arg: str | None = "call_id"
    """Tool argument holding a voice-platform call id, sent as ``call_id`` (explicit session handoff)."""


@dataclass(slots=True)
class ToolCall:
    """One observed tool call, as captured on the hot path."""

    tool: str
    arguments: dict[str, Any]
    student_id: str | None
    started_at: float
    """Wall-clock start, epoch seconds."""
    duration_s: float
    result: Any = None
    is_error: bool = False
    response_size: int | None = None
    """Exact size when the hook knows it (the proxy does); otherwise measured from ``result``."""
    extra: dict[str, Any] = field(default_factory=dict)


class Tracker:
    """Captures tool calls and sends them to the session tracker in the background.

    ``Tracker()`` reads ``SESSION_TRACKER_URL`` and ``INGEST_TOKEN``; without a URL it is
    disabled (calls are not recorded) and says so once in the log. All hooks - the ``mcp``
    and ``fastmcp`` middleware, :meth:`tool`, :meth:`call` and the stdio proxy - feed
    :meth:`record`.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        student_id_arg: str = "student_id",
        student_id: str | None = None,
        resolve_student: StudentResolver | None = None,
        redact: Collection[str] = (),
        extract: Extractor | None = None,
        platform: str | None = None,
        call_id_arg: str | None = "call_id",
        options: SenderOptions | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        enabled: bool = True,
        otel: bool | None = None,
        otel_content: bool | None = None,
        otel_tracer_provider: Any = None,
        network_transport: str | None = None,
    ) -> None:
        url = url if url is not None else os.environ.get("SESSION_TRACKER_URL")
        token = token if token is not None else os.environ.get("INGEST_TOKEN")
        self.capture = CaptureOptions(
            student_id_arg=student_id_arg,
            student_id=student_id,
            resolve_student=resolve_student,
            redact=redact,
            extract=extract,
            platform=platform,
            call_id_arg=call_id_arg,
        )
        self._redact = frozenset(name.lower() for name in redact)
        self.clock = clock
        self.enabled = bool(enabled and url)
        self.sender: Sender | None = Sender(url, token, options, transport=transport) if self.enabled and url else None
        self.resolver_errors = 0
        # One OpenTelemetry span per call (session_tracker_client.otel): None when
        # opentelemetry-api is not installed or SESSION_TRACKER_OTEL=0 (then nothing is done).
        self.spans: SpanEmitter | None = otel_emitter(
            otel, content=otel_content, transport=network_transport, tracer_provider=otel_tracer_provider
        )
        if enabled and not url:
            logger.warning("session tracker: SESSION_TRACKER_URL is not set; tool calls are not logged")

    # ----------------------------------------------------------------- hot path
    def record(
        self,
        tool: str,
        arguments: Mapping[str, Any] | None,
        result: Any = None,
        *,
        started_at: float,
        duration_s: float,
        is_error: bool = False,
        response_size: int | None = None,
        request_id: Any = None,
    ) -> None:
        """Queue one finished tool call (and emit its span). Never raises, never blocks."""
        sender = self.sender
        spans = self.spans
        if sender is None and spans is None:
            return
        try:
            args = dict(arguments) if arguments else {}
            student_id = self._student(tool, args)
            if spans is not None and spans.live():
                spans.emit(
                    tool,
                    args,
                    result,
                    student_id=student_id,
                    started_at=started_at,
                    duration_s=duration_s,
                    is_error=is_error,
                    request_id=request_id,
                    redact=self._redact,
                )
            if sender is None:
                return
            call = ToolCall(
                tool=tool,
                arguments=args,
                student_id=student_id,
                started_at=started_at,
                duration_s=duration_s,
                result=result,
                is_error=is_error,
                response_size=response_size,
            )
            size = approx_size(args) + (response_size if response_size is not None else approx_size(result))
            sender.submit(functools.partial(self.build, call), size=size)
        except Exception as exc:  # pragma: no cover - defensive: the tool call must not see it
            logger.debug("session tracker: could not record %s: %s", tool, exc)

    def _student(self, tool: str, args: Mapping[str, Any]) -> str | None:
        value = args.get(self.capture.student_id_arg)
        if isinstance(value, str) and value:
            return value
        if self.capture.resolve_student is not None:
            try:
                resolved = self.capture.resolve_student(tool, args)
            except Exception:
                self.resolver_errors += 1
                resolved = None
            if resolved:
                return resolved
        return self.capture.student_id

    # ----------------------------------------------------------------- sender thread
    def build(self, call: ToolCall) -> Payload | None:
        """The ``POST /interactions`` body for one call (``None`` without a student id)."""
        if not call.student_id:
            return None
        value = plain_result(call.result)
        extracted: Mapping[str, Sequence[str]] | None
        try:
            extract = self.capture.extract or default_extract
            extracted = extract(call.tool, value) if not call.is_error else None
        except Exception as exc:
            logger.debug("session tracker: extractor failed for %s: %s", call.tool, exc)
            extracted = None
        size = call.response_size
        if size is None and call.result is not None:
            size = response_size(call.result)
        payload: Payload = {
            "student_id": call.student_id,
            "function": call.tool,
            "timestamp": datetime.fromtimestamp(call.started_at, UTC).isoformat().replace("+00:00", "Z"),
            "arguments": redact(call.arguments, self._redact) if self._redact else call.arguments,
            "data_provided": _strings((extracted or {}).get("data_provided")),
            "subjects": _strings((extracted or {}).get("subjects")),
            "duration_ms": round(max(call.duration_s, 0.0) * 1000, 3),
            "is_error": call.is_error,
        }
        if size is not None:
            payload["response_size"] = size
        if self.capture.platform:
            payload["platform"] = self.capture.platform
        call_id = call.arguments.get(self.capture.call_id_arg) if self.capture.call_id_arg else None
        if isinstance(call_id, str) and _CALL_ID.match(call_id):
            payload["call_id"] = call_id
        payload.update(call.extra)
        return payload

    # ----------------------------------------------------------------- hooks for any server
    def call(self, tool: str, arguments: Mapping[str, Any] | None = None) -> TrackedCall:
        """Context manager timing one tool call::

        with tracker.call("get_progress", {"student_id": sid}) as call:
            call.result = compute()
        """
        return TrackedCall(self, tool, arguments)

    @overload
    def tool(self, fn: Callable[P, R], /, *, name: str | None = None) -> Callable[P, R]: ...

    @overload
    def tool(self, fn: None = None, /, *, name: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    def tool(self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
        """Decorator logging every call of a (sync or async) tool function, named after it by default."""
        if fn is None:
            return lambda f: self.tool(f, name=name)
        tool_name = name or fn.__name__
        signature = inspect.signature(fn)

        def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            if not args:
                return kwargs
            try:
                return dict(signature.bind_partial(*args, **kwargs).arguments)
            except TypeError:
                return kwargs

        def done(args: tuple[Any, ...], kwargs: dict[str, Any], started: float, t0: float, *outcome: Any) -> None:
            """Record the call: ``outcome`` is ``(result,)``, or empty when the tool raised."""
            self.record(
                tool_name,
                arguments(args, kwargs),
                *outcome,
                started_at=started,
                duration_s=time.perf_counter() - t0,
                is_error=result_is_error(outcome[0]) if outcome else True,
            )

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                started, t0 = self.clock(), time.perf_counter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException:
                    done(args, kwargs, started, t0)
                    raise
                done(args, kwargs, started, t0, result)
                return result

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started, t0 = self.clock(), time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                done(args, kwargs, started, t0)
                raise
            done(args, kwargs, started, t0, result)
            return result

        return wrapper

    async def around(
        self,
        tool: str,
        arguments: Mapping[str, Any] | None,
        call_next: Callable[[], Awaitable[R]],
        *,
        request_id: Any = None,
    ) -> R:
        """Await ``call_next()`` and record it as ``tool``: the body of every async middleware."""
        started, t0 = self.clock(), time.perf_counter()
        try:
            result = await call_next()
        except BaseException:
            self.record(
                tool,
                arguments,
                started_at=started,
                duration_s=time.perf_counter() - t0,
                is_error=True,
                request_id=request_id,
            )
            raise
        self.record(
            tool,
            arguments,
            result,
            started_at=started,
            duration_s=time.perf_counter() - t0,
            is_error=result_is_error(result),
            request_id=request_id,
        )
        return result

    # ----------------------------------------------------------------- lifecycle
    @property
    def stats(self) -> dict[str, Any]:
        """Sender counters (submitted, sent, dropped, rejected, skipped, retries, ...)."""
        return self.sender.stats.as_dict() if self.sender else {}

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded call is sent or given up on."""
        return self.sender.flush(timeout) if self.sender else True

    def close(self, timeout: float | None = None) -> None:
        """Flush within ``timeout`` and stop the sender (also done at interpreter exit)."""
        if self.sender:
            self.sender.close(timeout)


class TrackedCall:
    """``with tracker.call(name, args) as call:`` - set ``call.result`` / ``call.is_error`` inside."""

    __slots__ = ("_t0", "arguments", "is_error", "result", "started_at", "tool", "tracker")

    def __init__(self, tracker: Tracker, tool: str, arguments: Mapping[str, Any] | None) -> None:
        self.tracker, self.tool, self.arguments = tracker, tool, arguments
        self.result: Any = None
        self.is_error = False
        self.started_at = 0.0
        self._t0 = 0.0

    def __enter__(self) -> TrackedCall:
        self.started_at, self._t0 = self.tracker.clock(), time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.tracker.record(
            self.tool,
            self.arguments,
            self.result,
            started_at=self.started_at,
            duration_s=time.perf_counter() - self._t0,
            is_error=self.is_error or exc_type is not None or result_is_error(self.result),
        )

    async def __aenter__(self) -> TrackedCall:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.__exit__(exc_type, *rest)


# --------------------------------------------------------------------------- result inspection
def result_is_error(result: Any) -> bool:
    """An MCP error result (``CallToolResult(is_error=True)`` / ``{"isError": true}``)."""
    if result is None:
        return False
    if isinstance(result, Mapping):
        return result.get("isError") is True
    return getattr(result, "is_error", False) is True


def plain_result(result: Any) -> Any:
    """A tool result as plain JSON data (see :data:`Extractor`)."""
    if result is None:
        return None
    if isinstance(result, Mapping):
        if "structuredContent" in result or ("content" in result and isinstance(result.get("content"), list)):
            return _from_wire(result.get("structuredContent"), result.get("content"))
        return result
    structured = getattr(result, "structured_content", None)
    content = getattr(result, "content", None)
    if structured is not None or isinstance(content, list):
        return _from_wire(structured, content)
    return result


def _from_wire(structured: Any, content: Any) -> Any:
    if isinstance(structured, Mapping):
        # MCPServer wraps non-object returns as {"result": value}
        if set(structured) == {"result"}:
            return structured["result"]
        return structured
    if isinstance(content, list) and len(content) == 1:
        block = content[0]
        text = block.get("text") if isinstance(block, Mapping) else getattr(block, "text", None)
        if isinstance(text, str):
            stripped = text.lstrip()
            if stripped[:1] in ("{", "["):
                try:
                    return json.loads(text)
                except ValueError:
                    return text
            return text
    return None


def default_extract(tool: str, value: Any) -> dict[str, list[str]]:
    """Sensible defaults for dict results.

    ``data_provided``: the result's ``data_provided`` list, else its top-level keys with
    a value (except ids and subject fields). ``subjects``: ``subjects`` / ``subject``
    found at the top level or one level down (in nested objects and lists of objects).
    """
    if not isinstance(value, Mapping):
        return {"data_provided": [], "subjects": []}
    declared = value.get("data_provided")
    if isinstance(declared, list):
        data = [str(v) for v in declared if isinstance(v, str)]
    else:
        data = [str(k) for k, v in value.items() if k not in _NOT_DATA and v not in (None, [], {}, "")]
    subjects: list[str] = []
    _collect_subjects(value, subjects)
    for v in value.values():
        for child in v if isinstance(v, list) else [v]:
            if isinstance(child, Mapping):
                _collect_subjects(child, subjects)
    return {"data_provided": data, "subjects": subjects}


def _collect_subjects(obj: Mapping[str, Any], into: list[str]) -> None:
    found = obj.get("subjects")
    candidates = [*found, obj.get("subject")] if isinstance(found, list) else [found, obj.get("subject")]
    for s in candidates:
        if isinstance(s, str) and s and s not in into:
            into.append(s)


_SAMPLE = 8


def approx_size(value: Any, depth: int = 0) -> int:
    """Rough bytes a value holds, for the queue's byte bound: strings by length, containers
    from a sample of at most 8 items scaled to their length, at most 3 levels deep.
    Runs on the hot path, so it never walks a whole large result (microseconds): plain
    ``dict``/``list``/``str`` values - what tool arguments and JSON results are - take a fast
    path without ABC checks."""
    kind = type(value)
    if kind is str:
        return len(value) + 2
    if kind is dict:
        if not value:
            return 2
        if depth >= 3:
            return 64
        total = seen = 0
        for k, v in value.items():
            t = type(v)  # strings and scalars inline: one call per nested container only
            if t is str:
                size = len(v) + 2
            elif t is int or t is float or t is bool or v is None:
                size = 8
            else:
                size = approx_size(v, depth + 1)
            total += (len(k) + 2 if type(k) is str else 8) + size
            seen += 1
            if seen == _SAMPLE:
                break
        return 2 + total * len(value) // seen
    if kind is list:
        if not value:
            return 2
        if depth >= 3:
            return 64
        total = seen = 0
        for v in value:
            t = type(v)
            if t is str:
                total += len(v) + 2
            elif t is int or t is float or t is bool or v is None:
                total += 8
            else:
                total += approx_size(v, depth + 1)
            seen += 1
            if seen == _SAMPLE:
                break
        return 2 + total * len(value) // seen
    if value is None or kind is bool or kind is int or kind is float:
        return 8
    if isinstance(value, (bool, int, float)):
        return 8
    if isinstance(value, (str, bytes, bytearray)):
        return len(value) + 2
    if depth >= 3:
        return 64
    if isinstance(value, Mapping):
        if not value:
            return 2
        sample = [approx_size(k, depth + 1) + approx_size(v, depth + 1) for k, v in islice(value.items(), _SAMPLE)]
        return 2 + sum(sample) * len(value) // len(sample)
    if isinstance(value, (list, tuple)):
        if not value:
            return 2
        sample = [approx_size(v, depth + 1) for v in islice(value, _SAMPLE)]
        return 2 + sum(sample) * len(value) // len(sample)
    # SDK result models (mcp CallToolResult, TextContent ...): their payload attributes
    text = getattr(value, "text", None)
    if isinstance(text, str):
        return len(text) + 2
    content = getattr(value, "content", None)
    if content is None:
        return 64
    structured = getattr(value, "structuredContent", None)
    return approx_size(content, depth + 1) + (approx_size(structured, depth + 1) if structured else 0)


def response_size(result: Any) -> int:
    """Bytes of the result as JSON (the MCP wire form for SDK result models)."""
    if isinstance(result, bytes):
        return len(result)
    if isinstance(result, str):
        return len(result.encode())
    dump = getattr(result, "model_dump_json", None)
    if callable(dump):
        try:
            return len(dump(by_alias=True, exclude_none=True).encode())
        except TypeError:
            return len(dump().encode())
    return len(json.dumps(result, default=str, separators=(",", ":")).encode())


def redact(value: Any, names: frozenset[str]) -> Any:
    """Copy of ``value`` with the values of keys in ``names`` (lower-case) replaced, at any depth."""
    if isinstance(value, Mapping):
        return {k: REDACTED if str(k).lower() in names else redact(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, names) for v in value]
    return value


def _strings(values: Any) -> list[str]:
    if not isinstance(values, list | tuple):
        return []
    return [v[:200] for v in values if isinstance(v, str) and v][:200]


_default: Tracker | None = None
_default_lock = threading.Lock()


def default_tracker() -> Tracker:
    """A process-wide :class:`Tracker` configured from the environment (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Tracker()
        return _default
