"""Tiny local HTTP endpoints standing in for ``POST /interactions`` when it misbehaves:
answers 202, 500 or 4xx, hangs, or is not there at all (a refused port)."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Endpoint:
    """A local ``/interactions`` endpoint; ``status`` decides each answer (may be changed live)."""

    status: int | Callable[[dict[str, Any], int], int] = 202
    """A fixed status, or ``f(body, attempt_number) -> status``."""
    hang: threading.Event | None = None
    """While set to an unset Event, requests block until it is set (or the endpoint stops)."""
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Every request body received (parsed JSON), in order, whatever the answer."""
    headers: list[dict[str, str]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    """Interactions of the requests answered 2xx."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accepted_ids(self) -> list[str]:
        return [i["interaction_id"] for i in self.accepted]


@contextmanager
def endpoint(status: int | Callable[[dict[str, Any], int], int] = 202, *, hang: bool = False) -> Iterator[Endpoint]:
    """Serve an :class:`Endpoint` on 127.0.0.1 for the duration of the block."""
    ep = Endpoint(status=status, hang=threading.Event() if hang else None)
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Status line + headers and the body go out in two writes; without TCP_NODELAY the
        # second waits on the client's delayed ACK (~40 ms per response on Linux).
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
            with ep.lock:
                ep.requests.append(body)
                ep.headers.append(dict(self.headers))
                attempt = len(ep.requests)
            if ep.hang is not None:
                while not ep.hang.is_set() and not stopping.is_set():
                    ep.hang.wait(0.05)
            status = ep.status(body, attempt) if callable(ep.status) else ep.status
            if 200 <= status < 300:
                with ep.lock:
                    ep.accepted.extend(body.get("interactions", [body]))
            payload = b"{}" if status < 400 else b'{"title": "no", "status": %d}' % status
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (timeout) and closed the connection

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            if isinstance(sys.exc_info()[1], OSError):
                return  # a client that timed out and hung up: expected here
            super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    ep.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield ep
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()


def refused_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def jsonrpc_request(i: Any, method: str = "tools/call", **params: Any) -> bytes:
    """One JSON-RPC request line, as an MCP client writes it to a stdio server."""
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}).encode() + b"\n"
