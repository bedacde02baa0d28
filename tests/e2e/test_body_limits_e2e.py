"""Over-limit bodies on every route of template.yaml that takes one, over HTTP against the local stack.

Two limits stand in front of a handler, as in AWS:
- the route's own (``api.max_body_bytes`` for ``POST /interactions``, 64 KiB for the sessions API,
  ``webhooks.*.max_body_bytes``): the function answers 413 problem+json naming ``body``;
- Lambda's synchronous invocation payload, 6 MiB: the gateway answers 413 itself
  (``{"message": "Request Entity Too Large"}``) without invoking anything. It reads and drops the
  body first, so the client gets that answer, never a connection reset, even past API Gateway's
  own 10 MB.
Never a 5xx, and the stack answers normally afterwards.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from e2e_helpers import ADMIN, VAPI, VAPI_ROUTE, body_routes
from platform_signing import signed_headers

from session_tracker_local.apigw import MAX_EVENT_BODY

PROBE = MAX_EVENT_BODY - 64 * 1024
"""Under the gateway's limit, over every route limit that is lower than it."""


def _body(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes."""
    return b'{"x": "' + b"y" * (size - 9) + b'"}'


def _headers(path: str, body: bytes) -> dict[str, str]:
    signed = signed_headers(path, body)
    base = signed if signed is not None else VAPI if path == VAPI_ROUTE else ADMIN
    return {**base, "Content-Type": "application/json"}


def _path(route: str) -> str:
    return re.sub(r"\{[^}]+\}", "limits_student_20260501_1000", route)


def _send(http: httpx.Client, method: str, route: str, size: int) -> httpx.Response:
    body = _body(size)
    response = http.request(method, _path(route), headers=_headers(route, body), content=body)
    assert len(body) == size
    return response


def test_every_body_route_of_the_template_is_served_by_the_local_stack(local_stack, template) -> None:
    served = {(r.method, r.path) for r in local_stack.router.routes}
    routes = body_routes(template)
    assert len(routes) >= 10, routes
    assert set(routes) <= served | {("POST", p) for m, p in served if m == "ANY"}


def _trickle(body: bytes, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """The body in pieces with pauses, as a slow uplink sends it: the client is still writing
    when the gateway has decided."""
    for start in range(0, len(body), chunk):
        time.sleep(0.002)
        yield body[start : start + chunk]


@pytest.mark.parametrize("size", [MAX_EVENT_BODY + 1, 12 * 1024 * 1024], ids=["6MiB+1", "12MiB"])
@pytest.mark.parametrize("upload", ["at-once", "trickled"])
def test_a_body_over_lambdas_payload_limit_is_the_gateways_413_never_a_reset(
    local_stack, template, size, upload
) -> None:
    for method, route in body_routes(template):
        body = _body(size)
        headers = {**_headers(route, body), "Content-Length": str(len(body))}
        content = body if upload == "at-once" else _trickle(body)
        # a fresh connection each time: the gateway closes it after a refusal, as API Gateway does
        with httpx.Client(base_url=local_stack.url, timeout=60) as http:
            response = http.request(method, _path(route), headers=headers, content=content)
        assert response.status_code == 413, (route, response.status_code, response.text[:200])
        assert response.json() == {"message": "Request Entity Too Large"}, route
    with httpx.Client(base_url=local_stack.url, timeout=30) as http:
        assert http.get("/health").status_code == 200


def test_a_body_over_the_routes_own_limit_is_a_413_problem_naming_the_body(http, template) -> None:
    limited: dict[str, int] = {}
    for method, route in body_routes(template):
        response = _send(http, method, route, PROBE)
        assert response.status_code < 500, (route, response.status_code, response.text[:200])
        if response.status_code != 413:
            continue  # this route admits everything the gateway lets through (the webhooks: 6 MiB)
        assert response.headers["content-type"].startswith("application/problem+json"), route
        problem = response.json()
        assert (problem["status"], problem["field"]) == (413, "body"), (route, problem)
        limit = int(re.search(r"the limit is (\d+)", problem["detail"]).group(1))
        limited[route] = limit
        over = _send(http, method, route, limit + 1)
        assert (over.status_code, over.json()["field"]) == (413, "body"), route
        assert f"request body is {limit + 1} bytes" in over.json()["detail"]
        at = _send(http, method, route, limit)
        assert at.status_code not in (413,) and at.status_code < 500, (route, at.status_code, at.text[:200])
    # the ingest route and the whole sessions API have limits of their own, below the gateway's
    assert limited.get("/interactions") == 1024 * 1024
    assert {r for r in limited if r != "/interactions"} >= {"/keys", "/ui/sign-in", "/sessions/{session_id}/assign"}
    assert http.get("/health").status_code == 200


@pytest.mark.parametrize("size", [MAX_EVENT_BODY + 1, 12 * 1024 * 1024], ids=["6MiB+1", "12MiB"])
def test_a_client_that_writes_the_whole_body_before_it_reads_gets_the_413(local_stack, template, size) -> None:
    """What urllib, requests or curl do. Before the gateway drained the body it closed the socket
    with the body unread: the kernel reset the connection and the client's next write failed
    (BrokenPipeError, 10 of 10 here) before it could read the 413."""
    url = httpx.URL(local_stack.url)
    for method, route in body_routes(template):
        body = _body(size)
        head = f"{method} {_path(route)} HTTP/1.1\r\nHost: {url.host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in _headers(route, body).items()) + "\r\n"
        with socket.create_connection((url.host, url.port), timeout=30) as sock:
            sock.sendall(head.encode())
            for start in range(0, len(body), 1 << 16):
                sock.sendall(body[start : start + (1 << 16)])
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                assert chunk, route
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 413 "), (route, answer[:100])
