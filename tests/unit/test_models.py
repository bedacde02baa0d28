"""Input models: timestamps that would corrupt sortable keys are refused, not stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from session_tracker.models import InteractionIn, iso


@pytest.mark.parametrize(
    "timestamp",
    ["0360-06-08T06:28:00Z", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", 1e30, -1e20, float("inf")],
)
def test_out_of_range_timestamps_are_a_validation_error(timestamp: object) -> None:
    with pytest.raises(ValidationError) as info:
        InteractionIn(student_id="emma", function="f", timestamp=timestamp)
    assert info.value.errors()[0]["loc"] == ("timestamp",)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-01-17T14:30:05Z", datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)),
        ("2026-01-17T15:30:05+01:00", datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)),
        (1768660205000, datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)),
        (1768660205, datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)),
    ],
)
def test_iso_epoch_seconds_and_ms_are_accepted_as_utc(timestamp: object, expected: datetime) -> None:
    assert InteractionIn(student_id="emma", function="f", timestamp=timestamp).timestamp == expected


def test_stored_timestamps_are_fixed_width_and_sort_as_text() -> None:
    early, late = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 12, 31, tzinfo=UTC)
    assert len(iso(early)) == len(iso(late)) == 27
    assert iso(early) < iso(late)
