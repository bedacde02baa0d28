"""Background sender: tool calls go into a bounded in-memory queue and a worker thread
posts them to ``POST /interactions`` in batches.

The caller's side (:meth:`Sender.submit`) is a lock, an append and, once per batch,
an event set: microseconds, never I/O, never an exception. Everything slow happens
on the worker thread:

- batches of up to ``batch_size`` calls (and under ``max_body_bytes``), posted with
  a per-request ``timeout``;
- the queue is bounded in calls (``max_queue``, default 10,000) **and** in bytes
  (``max_queue_bytes``, default 64 MiB, estimated from each call's arguments and result
  when it is queued); beyond either bound the oldest calls are dropped and counted
  (``stats.dropped``, ``stats.dropped_bytes``) - memory stays bounded;
- while the endpoint is unavailable (network errors, timeouts, 408/425/429, 502/503/504)
  a batch is retried with exponential backoff and full jitter (``backoff_base`` doubling
  up to ``backoff_max``, continued across batches), at most ``max_retries`` times in a
  row; then it goes to the back of the queue so it never blocks the calls behind it, and
  is retried in its next turn (nothing is lost while the endpoint is down, only by the
  queue bounds);
- a 4xx for a batch is final for that batch: it is split in halves until the refused
  call is alone, which is dropped and counted ``rejected``; the others are sent;
- another 5xx (e.g. 500: the server fails on this batch) is retried
  ``max_server_error_retries`` times, then the batch is split the same way and a call
  that still fails alone is dropped and counted ``failed``;
- 401/403/404 (wrong token or URL) are counted ``rejected`` without retry or split;
- every call carries a client ``interaction_id`` fixed before the first attempt, so
  a retry after a lost response is stored once by the server;
- :meth:`close` (also run at interpreter exit) flushes what is queued, within a deadline.

Every submitted call ends up in exactly one counter: ``sent + dropped + rejected + failed
+ skipped == submitted`` once nothing is pending.
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

UNAVAILABLE_STATUS = frozenset({408, 425, 429, 502, 503, 504})
"""The endpoint is down, overloaded or restarting: worth another attempt later, whatever the batch."""
CONFIG_STATUS = frozenset({401, 403, 404})
"""Wrong token or URL: no call of any batch would be accepted, so nothing is split or retried."""
RETRYABLE_STATUS = UNAVAILABLE_STATUS  # kept for callers of 0.1

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
    dropped_bytes: int = 0
    """Estimated bytes of the dropped calls."""
    rejected: int = 0
    """Calls the endpoint refused for good (a 4xx for the call alone, or a wrong token/URL)."""
    failed: int = 0
    """Calls the endpoint kept failing on alone (5xx other than 502/503/504) after retries and splitting."""
    skipped: int = 0
    """Calls with nothing to send (no student id could be resolved, or building failed)."""
    oversized: int = 0
    """Calls sent with their arguments replaced by a note because the call exceeded ``max_body_bytes``."""
    attempts: int = 0
    failed_attempts: int = 0
    retries: int = 0
    requeued: int = 0
    """Times a batch went to the back of the queue after ``max_retries`` attempts in a row."""
    batches: int = 0
    queued_bytes: int = 0
    """Estimated bytes held in the queue now."""
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
    max_queue_bytes: int = 64 * 1024 * 1024
    """Estimated bytes (arguments + result) kept in memory; the oldest calls are dropped beyond this."""
    max_retries: int = 8
    """Attempts in a row for one batch while the endpoint is unavailable; then it goes to the back of the queue."""
    max_server_error_retries: int = 2
    """Retries of a batch answered 500 (or another non-availability 5xx) before it is split to find the call."""
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
        if self.options.max_queue_bytes < 1 or self.options.max_retries < 1:
            raise ValueError("max_queue_bytes and max_retries must be at least 1")
        self.endpoint = url.rstrip("/") + "/interactions"
        self._headers = {"Content-Type": "application/json", "User-Agent": "session-tracker-client/0.1"}
        self._headers |= self.options.headers
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._transport = transport
        self.stats = SenderStats()
        self._queue: deque[_Entry] = deque()
        self._queued_bytes = 0
        self._streak = 0
        """Failed attempts in a row (across batches): the backoff keeps growing through an outage."""
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
    def submit(self, build: Builder, size: int = 256) -> None:
        """Queue one call (``build`` runs later, on the worker). Never blocks, never raises.

        ``size`` is the caller's estimate of the call's bytes (what ``build`` holds on to),
        counted against ``max_queue_bytes``.
        """
        if self._closed:
            return
        entry = _Entry(build=build, size=max(int(size), 1))
        with self._lock:
            self.stats.submitted += 1
            self._push(entry)
            size = len(self._queue)
        if self._thread is None:
            self._start()
        if size >= self.options.batch_size and not self._wake.is_set():
            self._wake.set()

    def _push(self, entry: _Entry) -> None:
        """Append under the lock, dropping the oldest beyond either bound (``entry`` itself
        when it alone is larger than the byte bound)."""
        if entry.size > self.options.max_queue_bytes:
            self._drop(entry)
            return
        while self._queue and (
            len(self._queue) >= self.options.max_queue or self._queued_bytes + entry.size > self.options.max_queue_bytes
        ):
            oldest = self._queue.popleft()
            self._queued_bytes -= oldest.size
            self._drop(oldest)
        self._queue.append(entry)
        self._queued_bytes += entry.size
        self.stats.queued_bytes = self._queued_bytes

    def _drop(self, entry: _Entry) -> None:
        self.stats.dropped += 1
        self.stats.dropped_bytes += entry.size

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
            for entry in self._queue:
                self._drop(entry)
            self._queue.clear()
            self._queued_bytes = self.stats.queued_bytes = 0
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

    def _take(self) -> list[_Entry]:
        with self._lock:
            n = min(len(self._queue), self.options.batch_size)
            taken = [self._queue.popleft() for _ in range(n)]
            self._queued_bytes -= sum(e.size for e in taken)
            self.stats.queued_bytes = self._queued_bytes
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
                entries = self._take()
                try:
                    self._deliver(client, self._build(entries))
                except Exception as exc:  # never let the worker die
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    logger.warning("session tracker: unexpected sender error: %s", self.stats.last_error)
                finally:
                    with self._idle:
                        self._in_flight = 0
                        self._idle.notify_all()
                if self._past_deadline():
                    break

    def _build(self, entries: list[_Entry]) -> list[_Entry]:
        """Entries with their encoded body (built once: a requeued call keeps its id)."""
        built: list[_Entry] = []
        for entry in entries:
            if entry.body is None:
                try:
                    payload = entry.build() if entry.build is not None else None
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
                    self.stats.oversized += 1
                entry.body, entry.build, entry.size = body, None, len(body)
            built.append(entry)
        return built

    def _deliver(self, client: httpx.Client, entries: list[_Entry]) -> None:
        """Send ``entries`` in requests under the size limit."""
        chunk: list[_Entry] = []
        size = 20
        for entry in entries:
            length = len(entry.body or b"")
            if chunk and size + length + 1 > self.options.max_body_bytes:
                self._post(client, chunk)
                chunk, size = [], 20
            chunk.append(entry)
            size += length + 1
        if chunk:
            self._post(client, chunk)

    def _post(self, client: httpx.Client, entries: list[_Entry]) -> None:
        """One batch: sent, split, requeued or given up on (and counted) - never retried forever here."""
        content = b'{"interactions":[' + b",".join(e.body or b"" for e in entries) + b"]}"
        attempt = server_errors = 0
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
                self.stats.sent += len(entries)
                self.stats.batches += 1
                self._streak = 0
                return
            self.stats.failed_attempts += 1
            if status is not None:
                self.stats.last_error = f"HTTP {status}"
            if status in CONFIG_STATUS:
                self.stats.rejected += len(entries)
                logger.warning("session tracker: endpoint refused %d call(s) with HTTP %d", len(entries), status)
                return
            if status is not None and 400 <= status < 500 and status not in UNAVAILABLE_STATUS:
                self._isolate(client, entries, status, counter="rejected")
                return
            if status is not None and status >= 500 and status not in UNAVAILABLE_STATUS:
                server_errors += 1
                if server_errors > self.options.max_server_error_retries:
                    self._isolate(client, entries, status, counter="failed")
                    return
            if self._past_deadline():
                with self._lock:
                    for entry in entries:
                        self._drop(entry)
                return
            attempt += 1
            self._streak += 1
            if attempt >= self.options.max_retries and not self._closed:
                # Unavailable for a while: let the calls behind this batch have their turn.
                with self._lock:
                    for entry in entries:
                        self._push(entry)
                    self.stats.requeued += 1
                return
            delay = random.uniform(
                0, min(self.options.backoff_max, self.options.backoff_base * 2 ** (self._streak - 1))
            )
            self.stats.retries += 1
            if self._deadline is not None:
                delay = min(delay, max(0.0, self._deadline - time.monotonic()))
            self._sleep(delay)

    def _isolate(self, client: httpx.Client, entries: list[_Entry], status: int, *, counter: str) -> None:
        """A status that is about this batch's content: split it until the offending call is alone."""
        if len(entries) > 1:
            half = len(entries) // 2
            self._post(client, entries[:half])
            self._post(client, entries[half:])
            return
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        logger.warning("session tracker: endpoint refused a call with HTTP %d (%s)", status, counter)

    def _sleep(self, seconds: float) -> None:
        if self._deadline is not None:  # closing: the delay is already cut to the deadline
            time.sleep(seconds)
        else:  # woken early by close(), which then retries at once within its deadline
            self._stop.wait(seconds)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline


@dataclass(slots=True)
class _Entry:
    """One queued call: its builder until the worker builds it, then its encoded body."""

    build: Builder | None
    size: int
    body: bytes | None = None


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
