"""``session-tracker mcp-proxy -- COMMAND...``: a stdio MCP proxy for servers that cannot be changed.

Also ``python -m session_tracker_client.proxy [OPTIONS] -- COMMAND...`` (same options),
which needs nothing but this package and ``httpx``.

The proxy starts ``COMMAND`` and relays newline-delimited JSON-RPC between its own
stdin/stdout and the server's, byte for byte: tools, resources, prompts,
notifications and anything a future protocol version adds pass through unchanged.
It only *reads* the traffic: a client ``tools/call`` request is noted (name,
arguments, start time) and, when the response with the same id comes back, the
call is handed to a :class:`~session_tracker_client.tracker.Tracker` (response
size = the exact bytes of the response; ``isError`` or a JSON-RPC error = error).
Responses are forwarded before they are inspected, so logging adds no wait to them.
The server's stderr is inherited; the proxy writes nothing to stdout of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from session_tracker_client.tracker import Tracker

logger = logging.getLogger("session_tracker_client.proxy")

MAX_PENDING = 10_000
"""Unanswered ``tools/call`` requests remembered at most (the oldest are forgotten)."""


class ToolCallLog:
    """Pairs ``tools/call`` requests with their responses and records them on a tracker."""

    def __init__(self, tracker: Tracker, clock: Any = time.time) -> None:
        self.tracker = tracker
        self.clock = clock
        self._pending: dict[tuple[str, Any], tuple[str, dict[str, Any], float, float]] = {}
        self._lock = threading.Lock()

    def client_line(self, line: bytes) -> None:
        """Inspect one client -> server line (call before forwarding it)."""
        if b"tools/call" not in line and b"notifications/cancelled" not in line:
            return
        for message in _messages(line):
            method = message.get("method")
            if method == "tools/call" and "id" in message:
                params = _params(message)
                name = params.get("name")
                arguments = params.get("arguments")
                entry = (
                    name if isinstance(name, str) else "?",
                    arguments if isinstance(arguments, dict) else {},
                    self.clock(),
                    time.perf_counter(),
                )
                with self._lock:
                    if len(self._pending) >= MAX_PENDING:
                        self._pending.pop(next(iter(self._pending)))
                    self._pending[_key(message["id"])] = entry
            elif method == "notifications/cancelled":
                params = _params(message)
                if "requestId" in params:
                    self._finish(_key(params["requestId"]), None, is_error=True, size=None)

    def server_line(self, line: bytes) -> None:
        """Inspect one server -> client line (call after forwarding it)."""
        if not self._pending:
            return
        for message in _messages(line):
            if "method" in message or "id" not in message:
                continue
            if "result" in message:
                result = message["result"]
                is_error = isinstance(result, dict) and result.get("isError") is True
                self._finish(_key(message["id"]), result, is_error=is_error, size=len(line.rstrip(b"\r\n")))
            elif "error" in message:
                self._finish(_key(message["id"]), None, is_error=True, size=len(line.rstrip(b"\r\n")))

    def _finish(self, key: tuple[str, Any], result: Any, *, is_error: bool, size: int | None) -> None:
        with self._lock:
            entry = self._pending.pop(key, None)
        if entry is None:
            return
        name, arguments, started, t0 = entry
        self.tracker.record(
            name,
            arguments,
            result,
            started_at=started,
            duration_s=time.perf_counter() - t0,
            is_error=is_error,
            response_size=size,
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


def _pump(source: IO[bytes], sink: IO[bytes], inspect: Any, *, before: bool, on_eof: Any = None) -> None:
    """Copy lines from ``source`` to ``sink``; ``inspect`` each (before or after forwarding)."""
    try:
        for line in iter(source.readline, b""):
            if before:
                _safely(inspect, line)
            sink.write(line)
            sink.flush()
            if not before:
                _safely(inspect, line)
    except (BrokenPipeError, ValueError, OSError) as exc:
        logger.debug("proxy pipe closed: %s", exc)
    finally:
        if on_eof is not None:
            on_eof()


def _safely(inspect: Any, line: bytes) -> None:
    try:
        inspect(line)
    except Exception as exc:  # logging must never break the relay
        logger.debug("proxy could not inspect a message: %s", exc)


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
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    try:
        # Running the operator's own server command is the point of the proxy.
        process = subprocess.Popen(  # noqa: S603
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
    except OSError as exc:
        print(f"mcp-proxy: cannot start {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    assert process.stdin is not None and process.stdout is not None
    log = ToolCallLog(tracker)
    server_stdin = process.stdin

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
        target=_pump,
        args=(stdin, server_stdin, log.client_line),
        kwargs={"before": True, "on_eof": close_server_stdin},
        name="mcp-proxy-in",
        daemon=True,
    )
    downstream = threading.Thread(
        target=_pump,
        args=(process.stdout, stdout, log.server_line),
        kwargs={"before": False},
        name="mcp-proxy-out",
        daemon=True,
    )
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
        token,
        student_id_arg=student_id_arg,
        student_id=student_id,
        redact=redact,
        platform=platform,
        enabled=bool(url),
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m session_tracker_client.proxy [OPTIONS] -- COMMAND...``."""
    parser = argparse.ArgumentParser(
        prog="python -m session_tracker_client.proxy",
        description="Run an MCP server over stdio behind a proxy that logs every tools/call.",
    )
    parser.add_argument("--url", default=os.environ.get("SESSION_TRACKER_URL"), help="API base URL")
    parser.add_argument("--token", default=os.environ.get("INGEST_TOKEN"), help="bearer token")
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
        token=args.token,
        student_id_arg=args.student_id_arg,
        student_id=args.student_id,
        redact=args.redact,
        platform=args.platform,
        flush_timeout=args.flush_timeout,
    )


if __name__ == "__main__":
    sys.exit(main())
