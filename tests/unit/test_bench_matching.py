"""The labelled matching set of bench/matching.py: big and hard enough, and no wrong merge on it."""

from __future__ import annotations

from bench import matching


def test_the_set_has_over_200_reports_with_every_hard_case() -> None:
    calls = matching.simulate()
    assert len(calls) >= 200
    notes = {n for c in calls for n in c.notes}
    assert notes >= {
        "several students at once",
        "missing calls",
        "extra logged calls",
        "no MCP session",
        "skew beyond tolerance",
    }
    assert any(len(c.reported) != len({(t.name, str(t.arguments)) for t in c.reported}) for c in calls)  # repeats


def test_the_full_order_makes_no_wrong_merge_and_beats_todays_order() -> None:
    calls = matching.simulate()
    full = matching.score(calls, matching.CONFIGS["v2 order (explicit, tool_calls, student_id, time_window)"])
    today = matching.score(calls, matching.CONFIGS["v1 order (explicit, student_id, time_window)"])
    assert full["wrong"] == 0
    assert full["correct"] > today["correct"]
