"""``session-tracker mcp-proxy -- COMMAND...``: a stdio MCP proxy for servers that cannot be changed.

Also ``python -m session_tracker_client.proxy [OPTIONS] -- COMMAND...`` (same options),
which needs nothing but this package and ``httpx``.

The proxy starts ``COMMAND`` and relays the bytes between its own stdin/stdout and the
server's exactly as they arrive: each direction is one thread doing ``os.read`` then
``os.write`` of whatever the read returned (no line buffering, no re-encoding), so tools,
resources, prompts, notifications and anything a future protocol version adds pass through
unchanged and no message waits for a newline or a parser. Inspection happens *after* a chunk
is forwarded, on a copy of its complete lines, and only where it must:

- client -> server: only lines containing ``"tools/call"`` (or ``notifications/cancelled``)
  are parsed; a ``tools/call`` request is noted (name, arguments, start time);
- server -> client: lines are looked at only while a ``tools/call`` is unanswered; the
  response with the same id hands the call to a :class:`~session_tracker_client.tracker.Tracker`
  (response size = the exact bytes of the response; ``isError`` or a JSON-RPC error = error).

Recording is an in-memory append; building, redacting, encoding and sending run on the
tracker's sender thread, and the proxy logs nothing on the forwarding path. The server's
stderr is inherited; the proxy writes nothing to stdout of its own.

The bearer token is read from the environment (``INGEST_TOKEN``, or the variable named by
``--token-env``) so that it never appears in the process list; ``--token`` still works but
puts the token into ``ps`` output for every user of the machine, and the proxy says so.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from session_tracker_client.tracker import Tracker

logger = logging.getLogger("session_tracker_client.proxy")

MAX_PENDING = 10_000
"""Unanswered ``tools/call`` requests remembered at most (the oldest are forgotten)."""
CHUNK = 1 << 16
"""Bytes per read: a read returns as soon as *any* bytes are there, this is only the most."""
MAX_INSPECTED_LINE = 64 << 20
"""Lines longer than this are forwarded but not inspected (their call is not logged)."""
TOKEN_ENV = "INGEST_TOKEN"  # noqa: S105 - the name of a variable, not a secret
_CALL = b"tools/call"
_CANCEL = b"notifications/cancelled"
_MARKERS = (_CALL, _CANCEL)
_TAIL = max(len(m) for m in _MARKERS) - 1


class ToolCallLog:
    """Pairs ``tools/call`` requests with their responses and records them on a tracker.

    The relay calls :meth:`expect` *before* forwarding a client chunk that may hold a
    ``tools/call`` and :meth:`client_line` for its lines *after*; a response that comes
    back in between waits (off the forwarding path) until its request is registered.
    """

    def __init__(self, tracker: Tracker, clock: Callable[[], float] = time.time) -> None:
        self.tracker = tracker
        self.clock = clock
        self._pending: dict[tuple[str, Any], tuple[str, dict[str, Any], float, float]] = {}
        self._expecting = 0
        self._cond = threading.Condition(threading.Lock())

    @property
    def active(self) -> bool:
        """A ``tools/call`` is unanswered or about to be registered: server lines need a look."""
        return bool(self._pending) or self._expecting > 0

    def expect(self) -> None:
        """A client chunk that may hold a ``tools/call`` is about to be forwarded."""
        with self._cond:
            self._expecting += 1

    def expected(self) -> None:
        """Its lines are registered (pair with :meth:`expect`)."""
        with self._cond:
            self._expecting = max(0, self._expecting - 1)
            self._cond.notify_all()

    def client_line(self, line: bytes, read_at: tuple[float, float] | None = None) -> None:
        """Inspect one complete client -> server line; ``read_at`` = (wall clock, perf_counter) it arrived."""
        if _CALL not in line and _CANCEL not in line:
            return
        started, t0 = read_at if read_at is not None else (self.clock(), time.perf_counter())
        for message in _messages(line):
            method = message.get("method")
            if method == "tools/call" and "id" in message:
                params = _params(message)
                name = params.get("name")
                arguments = params.get("arguments")
                entry = (
                    name if isinstance(name, str) else "?",
                    arguments if isinstance(arguments, dict) else {},
                    started,
                    t0,
                )
                with self._cond:
                    if len(self._pending) >= MAX_PENDING:
                        self._pending.pop(next(iter(self._pending)))
                    self._pending[_key(message["id"])] = entry
                    self._cond.notify_all()
            elif method == "notifications/cancelled":
                params = _params(message)
                if "requestId" in params:
                    self._finish(_key(params["requestId"]), None, is_error=True, size=None, t1=time.perf_counter())

    def server_line(self, line: bytes, read_at: float | None = None) -> None:
        """Inspect one complete server -> client line; ``read_at`` = perf_counter when it arrived."""
        if not self.active or b'"id"' not in line:
            return
        t1 = read_at if read_at is not None else time.perf_counter()
        for message in _messages(line):
            if "method" in message or "id" not in message:
                continue
            if "result" in message:
                result = message["result"]
                is_error = isinstance(result, dict) and result.get("isError") is True
            elif "error" in message:
                result, is_error = None, True
            else:
                continue
            self._finish(_key(message["id"]), result, is_error=is_error, size=len(line.rstrip(b"\r\n")), t1=t1)

    def _finish(self, key: tuple[str, Any], result: Any, *, is_error: bool, size: int | None, t1: float) -> None:
        with self._cond:
            entry = self._pending.pop(key, None)
            if entry is None and self._expecting:
                # The request was forwarded but not registered yet: wait for it (bounded).
                self._cond.wait_for(lambda: key in self._pending or not self._expecting, timeout=1.0)
                entry = self._pending.pop(key, None)
        if entry is None:
            return
        name, arguments, started, t0 = entry
        self.tracker.record(
            name,
            arguments,
            result,
            started_at=started,
            duration_s=max(0.0, t1 - t0),
            is_error=is_error,
            response_size=size,
            request_id=key[1],
        )


def _params(message: dict[str, Any]) -> dict[str, Any]:
    params = message.get("params")
    return params if isinstance(params, dict) else {}


def _key(request_id: Any) -> tuple[str, Any]:
    return (type(request_id).__name__, request_id if isinstance(request_id, str | int | float) else repr(request_id))


def _messages(line: bytes) -> list[dict[str, Any]]:
    stripped = line.strip()
    if not stripped or stripped[:1] not in (b"{", b"["):
        return []
    try:
        data = json.loads(stripped)
    except ValueError:
        return []
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [m for m in data if isinstance(m, dict)]
    return []


class LineSplitter:
    """Complete lines out of forwarded chunks, for inspection only.

    ``wanted(first_bytes)`` decides at the start of each line whether it is kept at all;
    an unwanted line is skipped without copying. Lines over ``limit`` bytes are dropped.
    """

    def __init__(self, wanted: Callable[[], bool] = lambda: True, limit: int = MAX_INSPECTED_LINE) -> None:
        self._wanted = wanted
        self._limit = limit
        self._buf = bytearray()
        self._keep: bool | None = None  # None: at the start of a line, not decided yet

    def feed(self, chunk: bytes) -> list[bytes]:
        lines: list[bytes] = []
        view = memoryview(chunk)
        buf = self._buf
        start, end = 0, len(chunk)
        while start < end:
            if self._keep is None:
                self._keep = self._wanted()
            nl = chunk.find(b"\n", start)
            stop = end if nl < 0 else nl + 1
            if self._keep:
                if len(buf) + stop - start > self._limit:
                    self._keep = False
                    buf.clear()
                elif nl < 0:
                    buf += view[start:stop]
                elif buf:
                    buf += view[start:stop]
                    lines.append(bytes(buf))
                    buf.clear()
                else:
                    lines.append(chunk[start:stop])
            if nl < 0:
                break
            self._keep = None
            start = stop
        return lines


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _relay(
    source: int,
    sink: int,
    after: Callable[[bytes, float, float], None] | None,
    before: Callable[[bytes], bool] | None = None,
    done: Callable[[], None] | None = None,
) -> None:
    """Forward bytes from ``source`` to ``sink`` as they are read; ``after(chunk, wall, perf)`` once each is out.

    ``before(chunk)`` runs first and may only do a substring check; it returns whether
    ``after`` must run for this chunk.
    """
    try:
        while True:
            chunk = os.read(source, CHUNK)
            if not chunk:
                break
            t0 = time.perf_counter()
            look = before(chunk) if before is not None else after is not None
            _write_all(sink, chunk)
            if look and after is not None:
                try:
                    after(chunk, t0, time.time() - (time.perf_counter() - t0))
                except Exception as exc:  # logging must never break the relay
                    logger.debug("proxy could not inspect a message: %s", exc)
    except OSError as exc:
        logger.debug("proxy pipe closed: %s", exc)
    finally:
        if done is not None:
            done()


class _Inspector:
    """The per-direction glue between the relay and :class:`ToolCallLog`."""

    def __init__(self, log: ToolCallLog) -> None:
        self.log = log
        self._client = LineSplitter()
        self._server = LineSplitter(wanted=lambda: log.active)
        self._tail = b""
        self._hit = False
        self._client_partial = False

    def client_before(self, chunk: bytes) -> bool:
        """Before forwarding, a substring check only: must this chunk's lines be looked at?"""
        hit = _CALL in chunk or _CANCEL in chunk
        if not hit and self._tail:
            joined = self._tail + chunk[:_TAIL]
            hit = _CALL in joined or _CANCEL in joined
        self._tail = chunk[-_TAIL:]
        self._hit = hit
        if hit:
            self.log.expect()  # a response may come back before the request is registered
        # Lines split across chunks must be followed even when this piece has no marker.
        return hit or self._client_partial or not chunk.endswith(b"\n")

    def client_after(self, chunk: bytes, t0: float, wall: float) -> None:
        try:
            self._client_partial = not chunk.endswith(b"\n")
            for line in self._client.feed(chunk):
                self.log.client_line(line, (wall, t0))
        finally:
            if self._hit:
                self._hit = False
                self.log.expected()

    def server_after(self, chunk: bytes, t0: float, _wall: float) -> None:
        for line in self._server.feed(chunk):
            self.log.server_line(line, t0)


def run_proxy(
    command: Sequence[str],
    tracker: Tracker,
    *,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    flush_timeout: float = 1.5,
    handle_signals: bool = True,
) -> int:
    """Run ``command`` behind the proxy until it exits; returns its exit code.

    The server's stdin is closed when ours reaches EOF (the MCP stdio shutdown), then
    the proxy waits for the server and flushes the tracker within ``flush_timeout``.
    """
    if not command:
        raise ValueError("no server command given")
    stdin_fd = (stdin or sys.stdin.buffer).fileno()
    stdout_fd = (stdout or sys.stdout.buffer).fileno()
    try:
        # Running the operator's own server command is the point of the proxy.
        process = subprocess.Popen(  # noqa: S603
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
    except OSError as exc:
        print(f"mcp-proxy: cannot start {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    assert process.stdin is not None and process.stdout is not None
    server_stdin = process.stdin
    server_stdout = process.stdout
    logging_on = tracker.sender is not None
    inspector = _Inspector(ToolCallLog(tracker)) if logging_on else None

    def close_server_stdin() -> None:
        with contextlib.suppress(OSError):
            server_stdin.close()

    if handle_signals and threading.current_thread() is threading.main_thread():

        def _forward(signum: int, _frame: object) -> None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, _forward)

    upstream = threading.Thread(
        target=_relay,
        args=(
            stdin_fd,
            server_stdin.fileno(),
            inspector.client_after if inspector else None,
            inspector.client_before if inspector else None,
            close_server_stdin,
        ),
        name="mcp-proxy-in",
        daemon=True,
    )
    downstream = threading.Thread(
        target=_relay,
        args=(server_stdout.fileno(), stdout_fd, inspector.server_after if inspector else None),
        name="mcp-proxy-out",
        daemon=True,
    )
    # Everything loaded so far lives as long as the proxy: keep it out of the collector's
    # full passes, which would otherwise walk it while a message waits.
    gc.freeze()
    upstream.start()
    downstream.start()
    code = process.wait()
    downstream.join(5)
    tracker.close(flush_timeout)
    return code


def proxy(
    command: Sequence[str],
    *,
    url: str | None,
    token: str | None = None,
    student_id_arg: str = "student_id",
    student_id: str | None = None,
    redact: Sequence[str] = (),
    platform: str | None = None,
    flush_timeout: float = 1.5,
) -> int:
    """Run ``command`` behind a logging proxy (both entry points); returns the server's exit code.

    Without ``url`` the proxy still relays, without logging. Calls that could not be
    logged are summed up on stderr at exit.
    """
    if not url:
        print("mcp-proxy: no --url / SESSION_TRACKER_URL; relaying without logging", file=sys.stderr)
    tracker = Tracker(
        url or "",
        token or "",
        student_id_arg=student_id_arg,
        student_id=student_id,
        redact=redact,
        platform=platform,
        enabled=bool(url),
        network_transport="pipe",  # stdio (OpenTelemetry MCP conventions)
    )
    code = run_proxy(command, tracker, flush_timeout=flush_timeout)
    stats = tracker.stats
    if stats.get("dropped") or stats.get("rejected") or stats.get("skipped"):
        print(
            "mcp-proxy: tool calls not logged: "
            f"{stats['dropped']} dropped, {stats['rejected']} refused, {stats['skipped']} without a student id",
            file=sys.stderr,
        )
    return code


EXPOSED_WARNING = (
    "mcp-proxy: warning: --token puts the token into the process list (ps) for every user of this machine; "
    "set it in the environment instead (INGEST_TOKEN, or the variable named by --token-env)"
)


def resolve_token(token: str | None, token_env: str | None) -> str | None:
    """The bearer token: ``--token`` if given (with a warning on stderr), else the environment variable."""
    if token:
        print(EXPOSED_WARNING, file=sys.stderr)
        return token
    return os.environ.get(token_env or TOKEN_ENV) or None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m session_tracker_client.proxy [OPTIONS] -- COMMAND...``."""
    parser = argparse.ArgumentParser(
        prog="python -m session_tracker_client.proxy",
        description="Run an MCP server over stdio behind a proxy that logs every tools/call. "
        f"The bearer token is read from ${TOKEN_ENV} (or --token-env NAME), never needed on the command line.",
    )
    parser.add_argument("--url", default=os.environ.get("SESSION_TRACKER_URL"), help="API base URL")
    parser.add_argument(
        "--token-env", default=TOKEN_ENV, metavar="NAME", help=f"environment variable with the token ({TOKEN_ENV})"
    )
    parser.add_argument("--token", help="bearer token (discouraged: visible in ps; use the environment)")
    parser.add_argument("--student-id-arg", default="student_id", help="tool argument holding the student id")
    parser.add_argument("--student-id", help="student id for calls without that argument")
    parser.add_argument("--redact", action="append", default=[], help="argument not logged (repeatable)")
    parser.add_argument("--platform", help="voice platform name sent with every call")
    parser.add_argument("--flush-timeout", type=float, default=1.5, help="seconds to send what is left at exit")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the server command after --")
    return proxy(
        command,
        url=args.url,
        token=resolve_token(args.token, args.token_env),
        student_id_arg=args.student_id_arg,
        student_id=args.student_id,
        redact=args.redact,
        platform=args.platform,
        flush_timeout=args.flush_timeout,
    )


if __name__ == "__main__":
    sys.exit(main())
