"""One session length (first to last activity of calls and conversation), the same everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from session_tracker.length import activity_span, format_clock, session_length
from session_tracker.lifecycle import closing_summary
from session_tracker.models import Interaction, SessionMeta, iso
from session_tracker.reading import list_item
from session_tracker.sessions import summarize
from session_tracker.ui.pages import _span

T0 = datetime(2026, 2, 10, 16, 0, 0, tzinfo=UTC)


def _calls(*offsets: float) -> list[Interaction]:
    return [
        Interaction(
            interaction_id=f"i{n}",
            student_id="emma",
            function="get_student_context",
            timestamp=T0 + timedelta(seconds=s),
            received_at=T0 + timedelta(seconds=s),
        )
        for n, s in enumerate(offsets)
    ]


def _merged_twice() -> SessionMeta:
    """Two overlapping reports (a reconnect) merged: call durations 300 s + 180 s, the calls span 6:05."""
    return SessionMeta(
        session_id="emma_20260210_1600",
        student_id="emma",
        start_time=T0 + timedelta(seconds=20),
        last_activity=T0 + timedelta(seconds=300),
        end_time=T0 + timedelta(seconds=365),
        status="completed",
        interaction_count=3,
        conversation={
            "call_duration": 480,
            "started_at": iso(T0),
            "ended_at": iso(T0 + timedelta(seconds=365)),
        },
    )


def test_overlapping_reports_do_not_add_their_call_durations() -> None:
    meta = _merged_twice()
    summary = summarize(meta, _calls(20, 100, 300))
    assert summary.duration_seconds == 365
    assert summary.duration_estimated == "6 minutes"


def test_the_page_the_list_and_the_closer_show_the_same_length() -> None:
    meta = _merged_twice()
    from session_tracker.sessions import export_session

    export = export_session(meta, _calls(20, 100, 300))
    start, end = _span(export, [])
    assert (end - start).total_seconds() == 365
    assert list_item(meta).length_seconds == 365
    assert closing_summary(meta).duration_seconds == 365
    assert format_clock(365) == "6:05"


def test_the_conversation_before_the_first_call_counts() -> None:
    first, last = activity_span(
        start_time=T0 + timedelta(minutes=2),
        last_activity=T0 + timedelta(minutes=9),
        conversation={"started_at": iso(T0), "ended_at": iso(T0 + timedelta(minutes=10))},
    )
    assert (first, last) == (T0, T0 + timedelta(minutes=10))


def test_a_session_of_calls_only_runs_from_the_first_to_the_last_call() -> None:
    assert session_length(start_time=T0, last_activity=T0 + timedelta(minutes=4)) == timedelta(minutes=4)
    assert session_length(start_time=T0, conversation={"started_at": "garbage"}) == timedelta(0)
