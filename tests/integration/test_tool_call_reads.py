"""The tool-call read (ToolCallReader.sessions_with_calls_between) on the fake, moto and DynamoDB Local."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpers import call

from session_tracker import sessions

T0 = datetime(2026, 4, 2, 9, 0, 0, tzinfo=UTC)


def test_sessions_with_calls_in_the_window_come_with_those_calls_only(store) -> None:
    calls = [
        call("emma", T0, function="get_student_context"),
        call("emma", T0 + timedelta(minutes=3), function="get_lesson"),
        call("liam", T0 + timedelta(minutes=2), function="get_lesson"),
        call("noah", T0 - timedelta(hours=3), function="get_lesson"),
    ]
    ids = {
        r.session_id.split("_")[0]: r.session_id
        for r in sessions.log_interactions(calls, store=store, now=T0, timeout=timedelta(minutes=10))
    }

    found = store.sessions_with_calls_between(T0 + timedelta(minutes=1), T0 + timedelta(minutes=5))

    by_session = {meta.session_id: [c.function for c in logged] for meta, logged in found}
    assert by_session == {ids["emma"]: ["get_lesson"], ids["liam"]: ["get_lesson"]}
    only_emma = store.sessions_with_calls_between(
        T0 - timedelta(minutes=1), T0 + timedelta(minutes=5), student_id="emma"
    )
    assert [(m.session_id, [c.function for c in logged]) for m, logged in only_emma] == [
        (ids["emma"], ["get_student_context", "get_lesson"])
    ]
