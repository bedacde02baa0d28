"""Matching by tool calls: the pure rule (session_tracker.toolmatch) and its place in the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import call

from session_tracker import sessions
from session_tracker.matching import MatchSettings, find_session, ingest_platform_event
from session_tracker.models import Interaction, SessionMeta
from session_tracker.platforms.base import PlatformEvent, ToolCall
from session_tracker.toolmatch import (
    ToolMatchRules,
    agreeing_calls,
    match_tool_calls,
    normalise_arguments,
    normalise_name,
)

T0 = datetime(2026, 4, 1, 10, 0, 0, tzinfo=UTC)


def logged(function: str, arguments: dict[str, Any], seconds: float, student: str = "emma") -> Interaction:
    return Interaction(
        interaction_id=f"{function}-{seconds}",
        student_id=student,
        function=function,
        timestamp=T0 + timedelta(seconds=seconds),
        received_at=T0 + timedelta(seconds=seconds),
        arguments=arguments,
    )


def reported(name: str, arguments: dict[str, Any] | None, offset: float, **extra: Any) -> ToolCall:
    return ToolCall(name=name, arguments=arguments, offset=offset, **extra)


def meta(session_id: str, student: str = "emma") -> SessionMeta:
    return SessionMeta(session_id=session_id, student_id=student, start_time=T0, last_activity=T0)


# ---------------------------------------------------------------- normalisation
@pytest.mark.parametrize(
    "name", ["get_lesson", " Get_Lesson ", "mcp:srv1:get_lesson", "tutor.get_lesson", "tutor__get_lesson"]
)
def test_tool_names_compare_without_case_space_or_namespace(name: str) -> None:
    assert normalise_name(name) == "get_lesson"


def test_numbers_sent_as_strings_equal_numbers_and_strings_ignore_case_and_space() -> None:
    assert normalise_arguments({"attempted": "4", "skill": " Fractions ", "x": None}) == normalise_arguments(
        {"skill": "fractions", "attempted": 4.0}
    )


def test_different_argument_values_do_not_agree() -> None:
    assert normalise_arguments({"student_id": "emma"}) != normalise_arguments({"student_id": "liam"})


def test_unparseable_arguments_agree_with_nothing() -> None:
    assert agreeing_calls([reported("get_lesson", None, 5)], [logged("get_lesson", {}, 5)], call_start=T0) == (0, 0)


# ----------------------------------------------------------------- agreement
def test_a_call_agrees_within_the_tolerance_and_not_beyond() -> None:
    calls = [reported("get_lesson", {"unit": "fractions"}, 10)]
    near = [logged("get_lesson", {"unit": "fractions"}, 10 + 89)]
    far = [logged("get_lesson", {"unit": "fractions"}, 10 + 91)]
    assert agreeing_calls(calls, near, call_start=T0)[0] == 1
    assert agreeing_calls(calls, far, call_start=T0)[0] == 0


def test_a_repeated_call_counts_once_per_logged_interaction() -> None:
    calls = [reported("get_hint", {"problem": 3}, s) for s in (20, 40, 60)]
    assert agreeing_calls(calls, [logged("get_hint", {"problem": 3}, 41)], call_start=T0) == (1, 1)
    twice = [logged("get_hint", {"problem": 3}, 21), logged("get_hint", {"problem": 3}, 59)]
    assert agreeing_calls(calls, twice, call_start=T0)[0] == 2


def test_the_platforms_own_tools_are_not_counted() -> None:
    calls = [reported("get_lesson", {"unit": "f"}, 5), reported("end_call", {}, 90, builtin=True)]
    found = match_tool_calls(calls, [(meta("s1"), [logged("get_lesson", {"unit": "f"}, 6)])], call_start=T0)
    assert found is not None and (found.agreeing, found.reported) == (1, 1)


def test_a_wall_clock_time_wins_over_the_offset() -> None:
    calls = [reported("get_lesson", {"unit": "f"}, 0, time=T0 + timedelta(minutes=10))]
    assert agreeing_calls(calls, [logged("get_lesson", {"unit": "f"}, 600)], call_start=T0)[0] == 1


# --------------------------------------------------------------------- picking
def test_the_session_whose_calls_are_the_reported_ones_is_picked() -> None:
    calls = [reported("get_student_context", {"student_id": "emma"}, 5), reported("save", {"score": 3}, 200)]
    emma = [logged("get_student_context", {"student_id": "emma"}, 7), logged("save", {"score": 3}, 201)]
    liam = [logged("get_student_context", {"student_id": "liam"}, 6, "liam"), logged("save", {"score": 3}, 199, "liam")]
    found = match_tool_calls(calls, [(meta("liam_1", "liam"), liam), (meta("emma_1"), emma)], call_start=T0)
    assert found is not None and found.session.session_id == "emma_1"
    assert (found.agreeing, found.reported, found.runner_up) == (2, 2, 1)


def test_a_tie_between_two_students_doing_the_same_thing_picks_nothing() -> None:
    calls = [reported("get_lesson", {"unit": "fractions"}, 5)]
    same = [logged("get_lesson", {"unit": "fractions"}, 6)]
    assert match_tool_calls(calls, [(meta("a"), same), (meta("b", "b"), same)], call_start=T0) is None


def test_less_than_half_of_the_reported_calls_is_not_enough() -> None:
    calls = [reported(f"tool{i}", {"i": i}, i * 10) for i in range(5)]
    two = [logged("tool0", {"i": 0}, 0), logged("tool1", {"i": 1}, 10)]
    three = [*two, logged("tool2", {"i": 2}, 20)]
    assert match_tool_calls(calls, [(meta("s"), two)], call_start=T0) is None
    assert match_tool_calls(calls, [(meta("s"), three)], call_start=T0) is not None


def test_one_argument_less_call_is_no_evidence() -> None:
    calls = [reported("get_time", {}, 5)]
    assert match_tool_calls(calls, [(meta("s"), [logged("get_time", {}, 5)])], call_start=T0) is None


def test_a_tolerance_can_be_configured() -> None:
    calls = [reported("get_lesson", {"unit": "f"}, 0)]
    late = [(meta("s"), [logged("get_lesson", {"unit": "f"}, 150)])]
    assert match_tool_calls(calls, late, call_start=T0) is None
    assert match_tool_calls(calls, late, call_start=T0, rules=ToolMatchRules(tolerance=timedelta(minutes=3)))


# ------------------------------------------------------- in the matching order
def event(calls: list[ToolCall], **extra: Any) -> PlatformEvent:
    return PlatformEvent(
        platform="retell",
        kind="report",
        message_type="call_analyzed",
        delivery_id=f"d-{extra.get('call_id', 'c1')}",
        call_id=extra.pop("call_id", "c1"),
        started_at=T0,
        ended_at=T0 + timedelta(minutes=5),
        tool_calls=calls,
        **extra,
    )


def log_all(store: Any, *calls: Any) -> list[str]:
    results = sessions.log_interactions(list(calls), store=store, now=T0, timeout=timedelta(minutes=10))
    return [r.session_id for r in results]


def test_tool_calls_place_a_report_with_no_student_among_several_active_students(fake_store) -> None:
    ids = log_all(
        fake_store,
        call("emma", T0 + timedelta(seconds=8), function="get_student_context", arguments={"student_id": "emma"}),
        call("liam", T0 + timedelta(seconds=9), function="get_student_context", arguments={"student_id": "liam"}),
    )
    report = event([reported("get_student_context", {"student_id": "liam"}, 7)])
    match = find_session(report, store=fake_store, now=T0 + timedelta(minutes=6), settings=MatchSettings())
    assert (match.strategy, match.session.session_id if match.session else None) == ("tool_calls", ids[1])
    assert (match.agreeing_calls, match.reported_calls) == (1, 1)


def test_without_tool_calls_the_same_report_is_unmatched(fake_store) -> None:
    log_all(
        fake_store,
        call("emma", T0 + timedelta(seconds=8), function="get_student_context", arguments={"student_id": "emma"}),
        call("liam", T0 + timedelta(seconds=9), function="get_student_context", arguments={"student_id": "liam"}),
    )
    report = event([reported("get_student_context", {"student_id": "liam"}, 7)])
    v1 = MatchSettings(strategies=frozenset({"explicit", "student_id", "time_window"}))
    assert find_session(report, store=fake_store, now=T0 + timedelta(minutes=6), settings=v1).strategy == "none"


def test_a_stated_student_limits_the_candidates_to_their_sessions(fake_store) -> None:
    log_all(fake_store, call("liam", T0 + timedelta(seconds=9), function="get_lesson", arguments={"unit": "f"}))
    report = event([reported("get_lesson", {"unit": "f"}, 7)], student_id="emma", student_id_source="metadata")
    match = find_session(report, store=fake_store, now=T0 + timedelta(minutes=6), settings=MatchSettings())
    assert (match.strategy, match.student_id, match.session) == ("student_id", "emma", None)


def test_the_matching_record_carries_the_agreeing_calls(fake_store) -> None:
    [sid, _] = log_all(
        fake_store,
        call("ava", T0 + timedelta(seconds=8), function="get_lesson", arguments={"unit": "decimals"}),
        call("ava", T0 + timedelta(seconds=100), function="save_result", arguments={"correct": 2}),
    )
    report = event([reported("get_lesson", {"unit": "decimals"}, 6), reported("save_result", {"correct": "2"}, 98)])
    result = ingest_platform_event(
        report, store=fake_store, blobs=None, now=T0 + timedelta(minutes=6), settings=MatchSettings()
    )
    assert (result.strategy, result.session_id) == ("tool_calls", sid)
    stored = fake_store.get_session(sid)
    assert stored is not None and stored.matching is not None
    assert (stored.matching["strategy"], stored.matching["agreeing_calls"], stored.matching["reported_calls"]) == (
        "tool_calls",
        2,
        2,
    )
