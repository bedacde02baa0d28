"""A local API Gateway HTTP API: routes from ``HttpApi`` events, payload format 2.0."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from session_tracker_local.lambda_host import FunctionPool

# Lambda's synchronous invocation payload limit; API Gateway answers 413 above it.
MAX_EVENT_BODY = 6 * 1024 * 1024
# An over-limit body is read and dropped before the 413 (up to API Gateway's own 10 MB limit and
# a little more): closing a socket with unread data makes the kernel reset the connection, so
# the client, still sending, would see a reset instead of the answer.
MAX_DRAIN = 16 * 1024 * 1024


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    pool: FunctionPool
    pattern: re.Pattern[str]
    params: tuple[str, ...]

    @classmethod
    def build(cls, method: str, path: str, pool: FunctionPool) -> Route:
        params: list[str] = []
        regex = ""
        for part in path.strip("/").split("/"):
            if not part:
                continue
            m = re.fullmatch(r"\{([^}+]+)(\+?)\}", part)
            if m:
                params.append(m.group(1))
                regex += f"/(?P<{m.group(1)}>.+)" if m.group(2) else f"/(?P<{m.group(1)}>[^/]+)"
            else:
                regex += "/" + re.escape(part)
        return cls(method.upper(), path, pool, re.compile(f"^{regex or '/'}$"), tuple(params))

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def specificity(self) -> tuple[int, int]:
        greedy = any(p.endswith("+") for p in self.path.split("{"))
        return (int(greedy), len(self.params))


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, pool: FunctionPool) -> None:
        self.routes.append(Route.build(method, path, pool))
        self.routes.sort(key=lambda r: r.specificity)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path parameters, path-exists-for-another-method)."""
        path_known = False
        for route in self.routes:
            m = route.pattern.match(path)
            if not m:
                continue
            path_known = True
            if route.method in (method, "ANY"):
                return route, {k: v for k, v in m.groupdict().items()}, True
        return None, {}, path_known


def build_event(
    route: Route,
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    params: dict[str, str],
    source_ip: str,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    query_params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        query_params[key] = f"{query_params[key]},{value}" if key in query_params else value
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode("ascii"), True
    cookies = [c.strip() for c in headers.get("cookie", "").split(";") if c.strip()]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": is_b64,
    }
    if cookies:
        event["cookies"] = cookies
    if query_params:
        event["queryStringParameters"] = query_params
    if params:
        event["pathParameters"] = params
    if body:
        event["body"] = text
    return event


def _gateway_error(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps({"message": message}).encode()


def to_http(result: Any) -> tuple[int, dict[str, str], bytes, list[str]]:
    """Payload format 2.0 response -> (status, headers, body, cookies)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        body = result if isinstance(result, str) else json.dumps(result)
        return 200, {"content-type": "application/json"}, body.encode(), []
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(key).lower()] = ",".join(str(v) for v in values)
    raw = result.get("body") or ""
    data = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return int(result["statusCode"]), headers, data, list(result.get("cookies") or [])


class _Handler(BaseHTTPRequestHandler):
    server: LocalHttpApi
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: a response must not wait for the client's delayed ACK (~40 ms on Linux each).
    disable_nagle_algorithm = True
    # Buffered writes: status line, headers and body leave in one send (flushed after each request).
    wbufsize = 1 << 16

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            super().log_message(format, *args)

    def _send(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        cookies: list[str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        self.send_response(status)
        if close:  # said, so a client does not reuse the connection the server is closing
            self.send_header("connection", "close")
        for key, value in headers.items():
            if key not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        for cookie in cookies or []:
            self.send_header("set-cookie", cookie)
        if self.server.worker_pid:  # which worker process answered (worker mode only)
            self.send_header("x-local-worker-pid", self.server.worker_pid)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drain(self, length: int) -> None:
        left = min(length, MAX_DRAIN)
        self.connection.settimeout(10)  # a client that stops sending does not hold the thread
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    return
                left -= len(chunk)
        except OSError:
            return

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        method = self.command.upper()
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_EVENT_BODY:
            # Refused like API Gateway + Lambda (413, the gateway's JSON), after the body is drained.
            self._drain(length)
            self._send(*_gateway_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request Entity Too Large"), close=True)
            return
        body = self.rfile.read(length) if length else b""
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            k = key.lower()
            headers[k] = f"{headers[k]},{value}" if k in headers else value
        route, params, known = self.server.router.match(method, parts.path)
        if route is None:
            missing = HTTPStatus.METHOD_NOT_ALLOWED if known else HTTPStatus.NOT_FOUND
            self._send(*_gateway_error(missing, missing.phrase))
            return
        event = build_event(route, method, parts.path, parts.query, headers, body, params, self.client_address[0])
        try:
            result = route.pool.invoke(event)
        except Exception:  # a handler crash: API Gateway answers 500 with no details
            self.server.on_error(route)
            self._send(*_gateway_error(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error"))
            return
        status, out_headers, data, cookies = to_http(result)
        self._send(status, out_headers, data, cookies)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch


class LocalHttpApi(ThreadingHTTPServer):
    """ThreadingHTTPServer that dispatches to the router."""

    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: socketserver's default of 5 reset connections when a class connects at
    # once (15 of 40 simultaneous first calls). The kernel caps it at net.core.somaxconn.
    request_queue_size = 1024

    def __init__(self, host: str, port: int, router: Router, *, access_log: bool = False) -> None:
        super().__init__((host, port), _Handler)
        self.router = router
        self.access_log = access_log
        self.errors = 0
        self.worker_pid = ""
        self._thread: threading.Thread | None = None

    @classmethod
    def on_socket(cls, sock: socket.socket, router: Router, *, access_log: bool = False) -> LocalHttpApi:
        """A server on a socket already bound and listening (a worker's, inherited from the parent)."""
        server = cls.__new__(cls)
        ThreadingHTTPServer.__init__(server, sock.getsockname()[:2], _Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.server_address = sock.getsockname()
        host, port = server.server_address[:2]
        server.server_name, server.server_port = str(host), port  # no DNS lookup
        server.router = router
        server.access_log = access_log
        server.errors = 0
        server._thread = None
        server.worker_pid = str(os.getpid())
        return server

    def on_error(self, route: Route) -> None:
        import logging
        import traceback

        self.errors += 1
        logging.getLogger("session_tracker_local").error(
            "handler for %s crashed:\n%s", route.route_key, traceback.format_exc()
        )

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="local-http-api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
