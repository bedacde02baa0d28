"""The queue's size estimate on the hot path: the fast path for plain JSON values gives the same
estimate as the general one (mappings and sequences of any type)."""

from __future__ import annotations

from collections import OrderedDict
from types import MappingProxyType
from typing import Any

import pytest

from session_tracker_client.tracker import approx_size

VALUES: list[Any] = [
    {"student_id": "emma_smith", "subject": "mathematics"},
    {"profile": {"grade": 5}, "progress": {"mathematics": {"mastery": 0.6, "topics": ["fractions", "decimals"]}}},
    {"big": "x" * 10_000, "n": 3, "ok": True, "none": None},
    {str(i): {"deep": {"deeper": {"deepest": i}}} for i in range(50)},
    [],
    {},
]


def _general(value: Any) -> Any:
    """The same data behind mapping/sequence types that are not dict/list (the general path)."""
    if isinstance(value, dict):
        return MappingProxyType(OrderedDict((k, _general(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_general(v) for v in value)
    return value


@pytest.mark.parametrize("value", VALUES)
def test_the_fast_path_estimates_plain_values_like_the_general_path(value: Any) -> None:
    assert approx_size(value) == approx_size(_general(value))


def test_a_large_result_is_sampled_not_walked() -> None:
    rows = [{"id": i, "text": "y" * 100} for i in range(100_000)]
    estimate = approx_size({"rows": rows})
    assert 10_000_000 < estimate < 13_000_000
