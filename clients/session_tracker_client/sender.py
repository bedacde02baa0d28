"""Background sender: tool calls go into a bounded in-memory queue and a worker thread
posts them to ``POST /interactions`` in batches.

The caller's side (:meth:`Sender.submit`) is a lock, an append and, once per batch,
an event set: microseconds, never I/O, never an exception. Everything slow happens
on the worker thread:

- batches of up to ``batch_size`` calls (and under ``max_body_bytes``), posted with
  a per-request ``timeout``;
- network errors, timeouts, 408/425/429 and 5xx are retried with exponential backoff
  and full jitter (``backoff_base`` doubling up to ``backoff_max``), for as long as
  the endpoint stays down; meanwhile new calls queue up to ``max_queue`` and beyond
  that the oldest are dropped and counted (``stats.dropped``) - memory stays bounded;
- a batch answered 413/422 is split and retried one call at a time, so a single bad
  call cannot take its neighbours down; a call still refused is counted ``rejected``;
- 401/403 (wrong token) are counted ``rejected`` without retry;
- every call carries a client ``interaction_id`` fixed before the first attempt, so
  a retry after a lost response is stored once by the server;
- :meth:`close` (also run at interpreter exit) flushes what is queued, within a deadline.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

logger = logging.getLogger("session_tracker_client")

RETRYABLE_STATUS = frozenset({408, 425, 429})
"""Besides 5xx: statuses worth another attempt later."""

Payload = dict[str, Any]
Builder = Callable[[], Payload | None]
"""Builds one interaction body on the worker thread (``None`` = nothing to send)."""


@dataclass
class SenderStats:
    """Counters of what happened to submitted calls (read them for monitoring/tests)."""

    submitted: int = 0
    sent: int = 0
    dropped: int = 0
    """Oldest calls dropped because the queue was full (endpoint down or slow for long)."""
    rejected: int = 0
    """Calls the endpoint refused for good (4xx other than 408/425/429, after splitting)."""
    skipped: int = 0
    """Calls with nothing to send (no student id could be resolved, or building failed)."""
    attempts: int = 0
    failed_attempts: int = 0
    retries: int = 0
    batches: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SenderOptions:
    """Tuning knobs; the defaults suit a tutoring MCP server."""

    batch_size: int = 25
    """Calls per request (the API accepts up to 25)."""
    max_queue: int = 10_000
    """Calls kept in memory while the endpoint is slow or down; the oldest are dropped beyond this."""
    flush_interval: float = 0.5
    """Seconds a partial batch waits for company before it is sent."""
    timeout: float = 5.0
    """Per-request timeout (connect, read, write) in seconds."""
    backoff_base: float = 0.2
    backoff_max: float = 30.0
    max_body_bytes: int = 1_000_000
    """Keep each request under the API's body limit (1 MiB by default)."""
    shutdown_timeout: float = 5.0
    """How long :meth:`Sender.close` (and interpreter exit) may spend sending what is left."""
    headers: dict[str, str] = field(default_factory=dict)


class Sender:
    """Posts interactions to the session tracker from a background thread.

    ``Sender(url, token)``; then :meth:`submit` from any thread or event loop.
    ``transport`` lets tests swap the HTTP transport (httpx's ``MockTransport``).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        options: SenderOptions | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.options = options or SenderOptions()
        if not 1 <= self.options.batch_size <= 25:
            raise ValueError("batch_size must be between 1 and 25")
        if self.options.max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.endpoint = url.rstrip("/") + "/interactions"
        self._headers = {"Content-Type": "application/json", "User-Agent": "session-tracker-client/0.1"}
        self._headers |= self.options.headers
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._transport = transport
        self.stats = SenderStats()
        self._queue: deque[Builder] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition(threading.Lock())
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._deadline: float | None = None
        _live_senders.add(self)

    # ----------------------------------------------------------------- caller side
    def submit(self, build: Builder) -> None:
        """Queue one call (``build`` runs later, on the worker). Never blocks, never raises."""
        if self._closed:
            return
        with self._lock:
            if len(self._queue) >= self.options.max_queue:
                self._queue.popleft()
                self.stats.dropped += 1
            self._queue.append(build)
            self.stats.submitted += 1
            size = len(self._queue)
        if self._thread is None:
            self._start()
        if size >= self.options.batch_size and not self._wake.is_set():
            self._wake.set()

    def pending(self) -> int:
        """Calls queued or in flight."""
        return len(self._queue) + self._in_flight

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is sent (or given up on); ``True`` if done in time."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self.pending():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued (within ``timeout``, default ``options.shutdown_timeout``), then stop.

        Calls still unsent at the deadline are counted as dropped.
        """
        if self._closed:
            return
        self._closed = True
        timeout = self.options.shutdown_timeout if timeout is None else timeout
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout + min(self.options.timeout, 1.0) + 0.2)
        with self._lock:
            self.stats.dropped += len(self._queue)
            self._queue.clear()
        _live_senders.discard(self)

    # ----------------------------------------------------------------- worker side
    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=WORKER_THREAD, daemon=True)
        self._thread.start()

    def _after_fork(self) -> None:
        """In a forked child the worker thread does not exist: start a new one on demand."""
        self._thread = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(threading.Lock())
        self._in_flight = 0

    def _take(self) -> list[Builder]:
        with self._lock:
            n = min(len(self._queue), self.options.batch_size)
            taken = [self._queue.popleft() for _ in range(n)]
            self._in_flight = n
        return taken

    def _run(self) -> None:
        with httpx.Client(timeout=self.options.timeout, transport=self._transport) as client:
            while True:
                if not self._queue:
                    if self._stop.is_set():
                        break
                    self._wake.wait(self.options.flush_interval)
                    self._wake.clear()
                    if not self._queue:
                        continue
                elif len(self._queue) < self.options.batch_size and not self._stop.is_set():
                    # A partial batch: give it one flush interval to fill up.
                    self._wake.wait(self.options.flush_interval)
                    self._wake.clear()
                builders = self._take()
                try:
                    self._deliver(client, self._build(builders))
                except Exception as exc:  # never let the worker die
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    logger.warning("session tracker: unexpected sender error: %s", self.stats.last_error)
                finally:
                    with self._idle:
                        self._in_flight = 0
                        self._idle.notify_all()
                if self._past_deadline():
                    break

    def _build(self, builders: list[Builder]) -> list[bytes]:
        bodies: list[bytes] = []
        for build in builders:
            try:
                payload = build()
            except Exception as exc:
                self.stats.skipped += 1
                self.stats.last_error = f"building a call failed: {type(exc).__name__}: {exc}"
                continue
            if payload is None:
                self.stats.skipped += 1
                continue
            payload.setdefault("interaction_id", uuid.uuid4().hex)
            body = _encode(payload)
            if len(body) > self.options.max_body_bytes - 64:
                size = len(_encode(payload.get("arguments")))
                payload["arguments"] = {"_omitted": f"arguments too large to log ({size} bytes)"}
                body = _encode(payload)
            bodies.append(body)
        return bodies

    def _deliver(self, client: httpx.Client, bodies: list[bytes]) -> None:
        """Send ``bodies`` in requests under the size limit."""
        chunk: list[bytes] = []
        size = 20
        for body in bodies:
            if chunk and size + len(body) + 1 > self.options.max_body_bytes:
                self._post(client, chunk)
                chunk, size = [], 20
            chunk.append(body)
            size += len(body) + 1
        if chunk:
            self._post(client, chunk)

    def _post(self, client: httpx.Client, bodies: list[bytes]) -> None:
        """One request, retried until it succeeds, is refused for good, or the close deadline passes."""
        content = b'{"interactions":[' + b",".join(bodies) + b"]}"
        attempt = 0
        while True:
            status: int | None = None
            self.stats.attempts += 1
            timeout = self.options.timeout
            if self._deadline is not None:  # closing: no attempt may outlive the deadline by much
                timeout = max(0.05, min(timeout, self._deadline - time.monotonic()))
            try:
                response = client.post(self.endpoint, content=content, headers=self._headers, timeout=timeout)
                status = response.status_code
            except httpx.HTTPError as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
            if status is not None and 200 <= status < 300:
                self.stats.sent += len(bodies)
                self.stats.batches += 1
                return
            self.stats.failed_attempts += 1
            if status is not None:
                self.stats.last_error = f"HTTP {status}"
            if status in (413, 422) and len(bodies) > 1:
                for body in bodies:  # isolate the call the endpoint refuses
                    self._post(client, [body])
                return
            if status is not None and 400 <= status < 500 and status not in RETRYABLE_STATUS:
                self.stats.rejected += len(bodies)
                logger.warning("session tracker: endpoint refused %d call(s) with HTTP %d", len(bodies), status)
                return
            if self._past_deadline():
                with self._lock:
                    self.stats.dropped += len(bodies)
                return
            delay = random.uniform(0, min(self.options.backoff_max, self.options.backoff_base * 2**attempt))
            attempt += 1
            self.stats.retries += 1
            if self._deadline is not None:
                delay = min(delay, max(0.0, self._deadline - time.monotonic()))
            self._sleep(delay)

    def _sleep(self, seconds: float) -> None:
        if self._deadline is not None:  # closing: the delay is already cut to the deadline
            time.sleep(seconds)
        else:  # woken early by close(), which then retries at once within its deadline
            self._stop.wait(seconds)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, default=str, separators=(",", ":"), ensure_ascii=False).encode()


WORKER_THREAD = "session-tracker-sender"


class _QuietWorker(logging.Filter):
    """Drops httpx's one-INFO-line-per-request records made by our worker thread (only those)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != WORKER_THREAD or record.levelno > logging.INFO


logging.getLogger("httpx").addFilter(_QuietWorker())

_live_senders: weakref.WeakSet[Sender] = weakref.WeakSet()


def _close_all() -> None:
    for sender in list(_live_senders):
        try:
            sender.close()
        except Exception as exc:  # pragma: no cover - interpreter teardown
            logger.debug("session tracker: close at exit failed: %s", exc)


def _reset_after_fork() -> None:
    for sender in list(_live_senders):
        sender._after_fork()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_reset_after_fork)
