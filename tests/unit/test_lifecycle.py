"""Idle close rules (session_tracker.lifecycle) on a moto-backed store with an injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import T0, call, minutes

from session_tracker.lifecycle import close_idle_sessions, closing_summary, is_due
from session_tracker.sessions import log_interactions

TIMEOUT = minutes(10)


def log(store, *items, now=None):
    latest = max(i.timestamp for i in items)
    return log_interactions(list(items), store=store, now=now or latest, timeout=TIMEOUT)


def close(store, now, **kw):
    kw.setdefault("request_analysis", True)
    kw.setdefault("workers", 1)  # moto's in-memory table is not thread-safe; DynamoDB Local tests run 8
    return close_idle_sessions(store=store, now=now, timeout=TIMEOUT, **kw)


def test_due_only_when_idle_strictly_longer_than_the_timeout() -> None:
    assert not is_due(T0, now=T0 + TIMEOUT, timeout=TIMEOUT)
    assert is_due(T0, now=T0 + TIMEOUT + timedelta(microseconds=1), timeout=TIMEOUT)


def test_session_is_left_open_until_the_timeout_passes(fake_store) -> None:
    sid = log(fake_store, call(at=T0))[0].session_id
    report = close(fake_store, T0 + TIMEOUT)
    assert report.closed == []
    assert fake_store.get_session(sid).status == "active"


def test_idle_session_closes_with_end_time_and_summary(fake_store) -> None:
    sid = log(
        fake_store,
        call(at=T0, subjects=["mathematics"]),
        call(at=T0 + minutes(8), function="get_progress", subjects=["reading"]),
        call(at=T0 + minutes(15), function="get_progress"),
    )[0].session_id
    report = close(fake_store, T0 + minutes(25) + timedelta(seconds=1))
    assert report.closed == [sid]
    meta = fake_store.get_session(sid)
    assert meta.status == "closed"
    assert meta.end_time == T0 + minutes(15)
    assert meta.session_summary == {
        "duration_estimated": "15 minutes",
        "duration_seconds": 900,
        "data_requests": 3,
        "subjects_accessed": ["mathematics", "reading"],
    }


def test_closed_session_leaves_the_open_index_and_is_not_closed_twice(fake_store) -> None:
    log(fake_store, call(at=T0))
    later = T0 + minutes(11)
    assert len(close(fake_store, later).closed) == 1
    assert fake_store.due_sessions(later, limit=10) == []
    assert close(fake_store, later + minutes(5)).closed == []


def test_closing_requests_analysis_only_when_asked(fake_store) -> None:
    a = log(fake_store, call("amy", at=T0))[0].session_id
    b = log(fake_store, call("bob", at=T0 + minutes(30)))[0].session_id
    close(fake_store, T0 + minutes(11), request_analysis=True)
    close(fake_store, T0 + minutes(41), request_analysis=False)
    state = fake_store.get_analysis_state(a)
    assert state.pending and state.trigger == "on_session_complete" and state.content_updated_at
    assert fake_store.get_session(b).status == "closed"
    assert not fake_store.get_analysis_state(b).pending


def test_a_call_that_lands_while_closing_keeps_the_session_open(fake_store) -> None:
    """The closer read the session as idle; a call arrives before its conditional write."""
    sid = log(fake_store, call(at=T0))[0].session_id
    real_get = fake_store.get_sessions

    def get_then_race(ids):
        metas = real_get(ids)
        # The student's client delivers a call stamped 9 minutes after the last one.
        log(fake_store, call(at=T0 + minutes(9), function="late_delivery"), now=T0 + minutes(11))
        return metas

    fake_store.get_sessions = get_then_race
    report = close(fake_store, T0 + minutes(11))
    assert report.closed == [] and report.raced == [sid]
    meta, records = fake_store.read_session(sid)
    assert meta.status == "active"
    assert [r.function for r in records] == ["get_student_context", "late_delivery"]
    assert fake_store.due_sessions(T0 + minutes(11) - TIMEOUT, limit=10) == []


def test_after_close_a_call_within_the_timeout_reopens_the_session(fake_store) -> None:
    """Idleness is judged on the wall clock; membership on event time: a call stamped 5 minutes
    after the last one belongs to that session even when it arrives after the close."""
    first = log(fake_store, call(at=T0))[0].session_id
    close(fake_store, T0 + minutes(11))
    head = fake_store.get_head("emma_smith")
    assert (head.closed_at, head.ended_at) == (T0, None)
    result = log(fake_store, call(at=T0 + minutes(5)), now=T0 + minutes(12))[0]
    assert (result.session_id, result.new_session) == (first, False)
    meta = fake_store.read_session(first)[0]
    assert (meta.status, meta.interaction_count) == ("active", 2)
    assert fake_store.get_head("emma_smith").closed_at is None


def test_a_call_in_flight_across_the_close_reopens_the_session(fake_store) -> None:
    """A call that read the HEAD before the close and writes after it is not added past the
    closed session's end: the join fails, the HEAD is read again and the session reopens."""
    first = log(fake_store, call(at=T0))[0].session_id
    stale_head = fake_store.get_head("emma_smith")
    close(fake_store, T0 + minutes(11))
    real_get_head = fake_store.get_head
    calls = iter([stale_head])
    fake_store.get_head = lambda student: next(calls, None) or real_get_head(student)
    result = log(fake_store, call(at=T0 + minutes(9), function="in_flight"), now=T0 + minutes(11))[0]
    assert result.session_id == first
    meta, records = fake_store.read_session(first)
    assert meta.status == "active" and [r.function for r in records] == ["get_student_context", "in_flight"]
    assert meta.end_time is None


def test_closing_the_older_of_two_sessions_leaves_the_head_alone(fake_store) -> None:
    """An explicit handoff opened a newer session; closing the old one must not end the new one."""
    old = log(fake_store, call(at=T0))[0].session_id
    log(fake_store, call(at=T0 + minutes(30), session_id="emma_smith_explicit_1"))
    report = close(fake_store, T0 + minutes(31))
    assert report.closed == [old]
    head = fake_store.get_head("emma_smith")
    assert head.session_id == "emma_smith_explicit_1" and head.ended_at is None


def test_each_run_closes_at_most_max_sessions_and_the_next_run_continues(fake_store) -> None:
    for n in range(25):
        log(fake_store, call(f"s{n:02d}", at=T0 + timedelta(seconds=n)))
    now = T0 + minutes(20)
    first = close(fake_store, now, max_sessions=10)
    assert len(first.closed) == 10
    second = close(fake_store, now, max_sessions=100)
    assert len(second.closed) == 15
    assert set(first.closed).isdisjoint(second.closed)


def test_a_run_stops_when_its_time_budget_is_spent(fake_store) -> None:
    log(fake_store, call(at=T0))
    report = close(fake_store, T0 + minutes(11), time_left=lambda: 1.0, min_seconds=5.0)
    assert report.stopped_early and report.closed == [] and report.due == 1


def test_due_sessions_pages_through_every_shard(fake_store) -> None:
    for n in range(40):
        log(fake_store, call(f"p{n:02d}", at=T0 + timedelta(seconds=n)))
    due = fake_store.due_sessions(T0 + minutes(11), limit=1000, page_size=3)
    assert len(due) == 40 and len({sid for sid, _ in due}) == 40
    assert len(fake_store.due_sessions(T0 + minutes(11), limit=7, page_size=3)) == 7
    assert len(fake_store.due_sessions(T0 + timedelta(seconds=20), limit=1000, page_size=3)) == 20


@pytest.mark.parametrize(
    ("conversation", "expected"),
    [
        (None, "12 minutes"),
        ({"call_duration": 95}, "12 minutes"),  # a call duration is not the session's length
        ({"started_at": "2026-01-17T14:27:05Z", "ended_at": "2026-01-17T14:44:05Z"}, "17 minutes"),
    ],
)
def test_summary_runs_from_the_first_to_the_last_activity(fake_store, conversation, expected) -> None:
    sid = log(fake_store, call(at=T0), call(at=T0 + minutes(6)), call(at=T0 + minutes(12)))[0].session_id
    meta = fake_store.get_session(sid).model_copy(update={"conversation": conversation})
    assert closing_summary(meta).duration_estimated == expected
