"""A platform report that loses a race waits (jittered, growing) before it tries again.

Two reports of one session written at once cancel each other's DynamoDB transactions
(``TransactionConflict``, a :class:`StoreConflict` to the rules). Retrying at once met the other
writer again on every attempt and answered 503 after eight; with the backoff the attempts spread
out. Deterministic: the sleep and the random draw are injected, and the "other writer" holds the
session for a fixed stretch of a fake clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import call

from session_tracker import sessions
from session_tracker.errors import HeadChanged, ServiceUnavailable
from session_tracker.matching import Backoff, MatchSettings, ingest_platform_event
from session_tracker.platforms import get_adapter

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
NOW = START + timedelta(minutes=10)


class Clock:
    """A fake clock that only ``sleep`` moves."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def _report(session_id: str) -> Any:
    body = {
        "message": {
            "type": "end-of-call-report",
            "endedReason": "customer-ended-call",
            "artifact": {"transcript": "AI: Hi!\nUser: Hello.", "messages": []},
            "startedAt": START.isoformat(),
            "endedAt": (START + timedelta(minutes=3)).isoformat(),
            "call": {"id": "call-backoff", "assistantOverrides": {"metadata": {"session_id": session_id}}},
        }
    }
    return get_adapter("vapi").parse(body)


def _contended(store: Any, clock: Clock, *, busy_for: float) -> list[float]:
    """Every platform write before ``busy_for`` seconds of the fake clock loses the race."""
    attempts: list[float] = []
    write = store.write_platform_data

    def racing(plan: Any) -> None:
        attempts.append(clock.t)
        if clock.t < busy_for:
            raise HeadChanged("transaction conflict")
        write(plan)

    store.write_platform_data = racing
    return attempts


@pytest.fixture
def session_id(fake_store) -> str:
    [logged] = sessions.log_interactions(
        [call("emma_smith", START + timedelta(minutes=1))], store=fake_store, now=START, timeout=timedelta(minutes=10)
    )
    return logged.session_id


def test_a_report_that_keeps_losing_for_a_while_waits_and_is_merged(fake_store, session_id) -> None:
    """Fails without the backoff: the eight attempts all happen at once, inside the contention."""
    clock = Clock()
    attempts = _contended(fake_store, clock, busy_for=0.25)
    backoff = Backoff(sleep=clock.sleep, rand=lambda: 0.0)  # the shortest waits the backoff allows
    result = ingest_platform_event(
        _report(session_id), store=fake_store, blobs=None, now=NOW, settings=MatchSettings(), backoff=backoff
    )
    assert (result.outcome, result.session_id) == ("merged", session_id)
    assert attempts[-1] >= 0.25 and len(attempts) <= backoff.attempts
    assert clock.sleeps == sorted(clock.sleeps), "waits grow"


def test_every_attempt_lost_is_a_503_without_a_last_useless_wait(fake_store, session_id) -> None:
    clock = Clock()
    attempts = _contended(fake_store, clock, busy_for=float("inf"))
    backoff = Backoff(sleep=clock.sleep, rand=lambda: 1.0)
    with pytest.raises(ServiceUnavailable):
        ingest_platform_event(
            _report(session_id), store=fake_store, blobs=None, now=NOW, settings=MatchSettings(), backoff=backoff
        )
    assert len(attempts) == backoff.attempts
    assert len(clock.sleeps) == backoff.attempts - 1
    assert sum(clock.sleeps) <= 1.0, "a webhook gives up within a second of waiting"


def test_waits_double_up_to_the_cap_and_keep_half_of_it_whatever_the_draw() -> None:
    low, high = Backoff(rand=lambda: 0.0), Backoff(rand=lambda: 1.0)
    assert [low.delay(n) for n in range(3)] == pytest.approx([0.005, 0.01, 0.02])
    assert [high.delay(n) for n in range(3)] == pytest.approx([0.01, 0.02, 0.04])
    assert low.delay(20) == pytest.approx(low.cap / 2) and high.delay(20) == pytest.approx(high.cap)
    total_low = sum(low.delay(n) for n in range(low.attempts - 1))
    total_high = sum(high.delay(n) for n in range(high.attempts - 1))
    assert (round(total_low, 3), round(total_high, 3)) == (0.405, 0.81)


def test_no_wait_when_nothing_conflicts(fake_store, session_id) -> None:
    clock = Clock()
    result = ingest_platform_event(
        _report(session_id),
        store=fake_store,
        blobs=None,
        now=NOW,
        settings=MatchSettings(),
        backoff=Backoff(sleep=clock.sleep),
    )
    assert result.outcome == "merged" and clock.sleeps == []
