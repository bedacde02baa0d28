"""Test helpers shared across suites."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

from session_tracker.models import InteractionIn

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"

T0 = datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)


def call(
    student: str = "emma_smith", at: datetime = T0, function: str = "get_student_context", **extra: Any
) -> InteractionIn:
    return InteractionIn(student_id=student, function=function, timestamp=at, **extra)


def dependency_closure(dist: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """Every distribution that installing ``dist[extras]`` pulls in (normalised names), read
    from the installed metadata."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [(dist, extras)]
    while todo:
        name, wanted = todo.pop()
        key = normalise(name)
        if key in seen and not wanted:
            continue
        seen.add(key)
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            env = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(e) for e in env):
                todo.append((req.name, frozenset(req.extras)))
    return seen


def normalise(dist: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", dist).lower()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


@contextmanager
def count_requests(client: Any) -> Iterator[Counter[str]]:
    """Count DynamoDB API requests made through ``client`` (by operation name)."""
    counts: Counter[str] = Counter()

    def hook(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    client.meta.events.register("before-call.dynamodb", hook)
    try:
        yield counts
    finally:
        client.meta.events.unregister("before-call.dynamodb", hook)


def load_function(name: str) -> ModuleType:
    """``functions/<name>/app.py`` loaded afresh (its own module globals, like a new Lambda
    container), exactly as the local stack loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_test_{name}", ROOT / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lambda_context(function_name: str, timeout_seconds: int = 10) -> Any:
    """A Lambda context for calling a handler directly."""
    from session_tracker_local.lambda_host import FakeContext

    return FakeContext(function_name=function_name, timeout_seconds=timeout_seconds)


class Handler:
    """A function of ``functions/`` loaded afresh with ``deps()`` wired to a test's store (and
    blobs); calling it invokes ``lambda_handler`` with a Lambda context. ``config`` may be swapped
    between calls (the next invocation's ``deps()`` reads it)."""

    def __init__(self, name: str, store: Any, *, blobs: Any = None, function_name: str = "", timeout: int = 10) -> None:
        from session_tracker import runtime

        self.module = load_function(name)
        self.config = runtime.get_config()
        self.function_name = function_name or name
        self.timeout = timeout
        self.module.deps = lambda: runtime.Deps(config=self.config, store=store, blobs=blobs)

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.module.lambda_handler(event, lambda_context(self.function_name, self.timeout))
        return response


def http_event(
    method: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
    source_ip: str = "203.0.113.7",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event: ``body`` a string as sent, or JSON-encoded;
    ``token`` the bearer credential; ``headers`` added last (they win)."""
    sent: dict[str, str] = {}
    if body is not None:
        sent["content-type"] = "application/json"
    if token:
        sent["authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": sent,
        "body": body if body is None or isinstance(body, str) else json.dumps(body, ensure_ascii=False),
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip},
            "requestId": "r",
            "routeKey": f"{method} {path}",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = {k: str(v) for k, v in query.items()}
    if cookies:
        event["cookies"] = cookies
    return event


def sample_event(
    sample: str | dict[str, Any],
    body: Any = None,
    *,
    raw: str | None = None,
    headers: dict[str, str] | None = None,
    b64: bool = False,
) -> dict[str, Any]:
    """A copy of an event of tests/events (a file name, or an event already read) with its body
    replaced (``body`` JSON-encoded, or ``raw`` as is), its headers replaced, base64-encoded."""
    import base64
    import copy

    event: dict[str, Any] = (
        copy.deepcopy(sample) if isinstance(sample, dict) else json.loads((EVENTS / sample).read_text())
    )
    if raw is not None:
        event["body"] = raw
    elif body is not None:
        event["body"] = json.dumps(body, ensure_ascii=False)
    if headers is not None:
        event["headers"] = headers
    if b64:
        event["body"] = base64.b64encode(event["body"].encode()).decode()
        event["isBase64Encoded"] = True
    return event


def problem(response: dict[str, Any]) -> dict[str, Any]:
    """The problem+json body of a handler's error response."""
    assert response["headers"]["Content-Type"] == "application/problem+json", response
    body: dict[str, Any] = json.loads(response["body"])
    return body


def body_of(response: dict[str, Any]) -> Any:
    """A handler response's JSON body (None when empty)."""
    return json.loads(response.get("body") or "null")


class StreamStack:
    """What a local stream poller needs from the local stack: the table and the backend."""

    def __init__(self, table_name: str, backend: str) -> None:
        from types import SimpleNamespace

        self.table_name = table_name
        self.backend = backend
        self.options = SimpleNamespace(table_name=table_name)
        self.refs: dict[str, Any] = {"SessionsTable": table_name}


def stream_poller(logical_id: str, store: Any, endpoint: str | None, monkeypatch: Any) -> Any:
    """A local stream poller feeding template.yaml's ``logical_id`` (its DynamoDB stream event,
    one invocation at a time) from ``store``'s table, on DynamoDB Local (``endpoint``) or moto;
    the function reads the same table through its environment."""
    from session_tracker import runtime
    from session_tracker_local.cfn import Template
    from session_tracker_local.lambda_host import FunctionPool
    from session_tracker_local.streams import StreamPoller

    monkeypatch.setenv("TABLE_NAME", store.table_name)
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", endpoint)
    runtime.reset()
    spec = next(f for f in Template.load(ROOT / "template.yaml").functions() if f.logical_id == logical_id)
    source = next(e for e in spec.events if e.type == "DynamoDB")
    stack = StreamStack(store.table_name, "dynamodb-local" if endpoint else "moto")
    poller = StreamPoller(stack, FunctionPool(spec, max_concurrency=1), source)
    poller.connect()
    return poller


def drain(poller: Any, until: Any, timeout: float = 20.0) -> None:
    """Poll the stream (past the batching window) until ``until()`` holds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        poller.poll_once()
        if until():
            time.sleep(0.3)
            poller.poll_once()
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached while polling the stream")
