"""Pure session rules: the gap boundary, ids, late calls (no storage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from session_tracker.models import Head
from session_tracker.sessions import Decision, decide, format_duration, session_id_for

T0 = datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)
TIMEOUT = timedelta(minutes=10)


def head(last: datetime, start: datetime = T0, ended: datetime | None = None) -> Head:
    return Head(
        student_id="emma", session_id="emma_20260117_1430", session_start=start, last_activity=last, ended_at=ended
    )


def test_session_id_uses_utc_minute_of_first_call() -> None:
    local = datetime(2026, 1, 17, 9, 30, 59, tzinfo=UTC) + timedelta(hours=5)
    assert session_id_for("emma_smith", local) == "emma_smith_20260117_1430"
    assert session_id_for("emma_smith", local, 2) == "emma_smith_20260117_1430_2"


def test_first_call_opens_a_session() -> None:
    assert decide(None, T0, TIMEOUT) is Decision.NEW


def test_gap_of_exactly_timeout_joins() -> None:
    assert decide(head(T0), T0 + TIMEOUT, TIMEOUT) is Decision.JOIN


def test_gap_over_timeout_opens_new() -> None:
    assert decide(head(T0), T0 + TIMEOUT + timedelta(seconds=1), TIMEOUT) is Decision.NEW


def test_call_older_than_current_session_is_late() -> None:
    assert decide(head(T0), T0 - timedelta(seconds=1), TIMEOUT) is Decision.LATE


def test_out_of_order_call_inside_current_session_joins() -> None:
    assert decide(head(T0 + timedelta(minutes=5)), T0 + timedelta(minutes=2), TIMEOUT) is Decision.JOIN


def test_call_after_platform_end_opens_new_even_within_timeout() -> None:
    ended = T0 + timedelta(minutes=3)
    assert decide(head(T0, ended=ended), ended + timedelta(minutes=1), TIMEOUT) is Decision.NEW


def test_duration_formatting() -> None:
    assert format_duration(timedelta(seconds=20)) == "under a minute"
    assert format_duration(timedelta(minutes=15)) == "15 minutes"
    assert format_duration(timedelta(minutes=1)) == "1 minute"
    assert format_duration(timedelta(minutes=75)) == "1 h 15 min"


def test_call_after_an_idle_close_within_timeout_reopens() -> None:
    closed = head(T0).model_copy(update={"closed_at": T0})
    assert decide(closed, T0 + timedelta(minutes=4), TIMEOUT) is Decision.REOPEN
    assert decide(closed, T0 + TIMEOUT + timedelta(seconds=1), TIMEOUT) is Decision.NEW
    assert decide(closed, T0, TIMEOUT) is Decision.JOIN  # inside the closed span: just added


def test_platform_end_wins_over_an_idle_close() -> None:
    both = head(T0).model_copy(update={"closed_at": T0, "ended_at": T0})
    assert decide(both, T0 + timedelta(minutes=4), TIMEOUT) is Decision.NEW
