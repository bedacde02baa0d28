"""Test helpers shared across suites."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from session_tracker.models import InteractionIn

T0 = datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)


def call(
    student: str = "emma_smith", at: datetime = T0, function: str = "get_student_context", **extra: Any
) -> InteractionIn:
    return InteractionIn(student_id=student, function=function, timestamp=at, **extra)


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
