"""Test helpers shared across suites."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from session_tracker.models import InteractionIn

ROOT = Path(__file__).resolve().parents[1]

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


class StreamStack:
    """What a local stream poller needs from the local stack: the table and the backend."""

    def __init__(self, table_name: str, backend: str) -> None:
        from types import SimpleNamespace

        self.table_name = table_name
        self.backend = backend
        self.options = SimpleNamespace(table_name=table_name)
        self.refs: dict[str, Any] = {"SessionsTable": table_name}


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
