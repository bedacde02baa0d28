"""Session page rendering: transcript turns, the time axis, label lanes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from session_tracker.models import ExportInteraction, SessionExport, SessionSummary
from session_tracker.ui.pages import _label_span, _lanes, conversation_turns, session_page

T0 = datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)


def _export(**extra) -> SessionExport:
    calls = [
        ExportInteraction(timestamp=T0 + timedelta(seconds=s), function=f, data_provided=d)
        for s, f, d in [(0, "get_student_context", ["profile"]), (2, "get_progress", ["progress"]), (300, "f", [])]
    ]
    return SessionExport(
        session_id="emma_smith_20260117_1430",
        student_id="emma_smith",
        start_time=T0,
        status="completed",
        mcp_interactions=calls,
        session_summary=SessionSummary(duration_estimated="5 minutes", data_requests=3, subjects_accessed=[]),
        **extra,
    )


def test_transcript_lines_become_speaker_turns_and_wrapped_lines_join_the_previous_turn() -> None:
    turns = conversation_turns({"transcript": "AI: Hi Emma!\nUser: Hello.\nI am ready.\n\nAI: Great."}, start=T0)
    assert [(t.speaker, t.text) for t in turns] == [
        ("Tutor", "Hi Emma!"),
        ("Student", "Hello. I am ready."),
        ("Tutor", "Great."),
    ]


def test_timed_turns_are_placed_on_the_conversation_lane() -> None:
    conversation = {
        "turns": [
            {"role": "assistant", "text": "Hi!", "time": "2026-01-17T14:30:10Z"},
            {"role": "user", "text": "Hello", "time": "2026-01-17T14:31:05Z"},
            {"role": "tool_calls", "text": "ignored"},
        ]
    }
    turns = conversation_turns(conversation, start=T0)
    assert [t.at for t in turns] == [T0 + timedelta(seconds=5), T0 + timedelta(seconds=60)]
    html = session_page(_export(conversation=conversation), nonce="n")
    assert len(re.findall(r'<a class="speech (tutor|student)"', html)) == 2
    assert '<span class="t">+1:00</span>' in html


def test_close_calls_get_different_lanes_so_labels_never_overlap() -> None:
    export = _export()
    spans = [_label_span(x, c) for x, c in zip([0.0, 0.7, 98.0], export.mcp_interactions, strict=True)]
    lanes = _lanes(spans)
    assert lanes[0] != lanes[1]
    for i, (a, b) in enumerate(spans):
        for j, (c, d) in enumerate(spans):
            if i < j and lanes[i] == lanes[j]:
                assert b <= c or a >= d


def test_a_late_call_label_flips_to_the_left_of_its_dot() -> None:
    html = session_page(_export(), nonce="n")
    assert html.count('class="marker flip"') == 1


def test_a_failed_analysis_shows_its_reason_escaped() -> None:
    export = _export(analysis={"status": "failed", "error": "endpoint said <500>"})
    html = session_page(export, nonce="n")
    assert "Analysis failed: endpoint said &lt;500&gt;" in html
    assert "Not analysed yet" not in html
