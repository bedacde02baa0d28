"""The tutor's pages' reads (store.ports.PageReader) behave the same on the fake, moto and DynamoDB Local."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from session_tracker.models import InteractionIn
from session_tracker.reading import EARLIEST, LATEST
from session_tracker.sessions import log_interactions

T0 = datetime(2026, 2, 2, 16, 0, tzinfo=UTC)


def _lesson(store, student: str, at: datetime, functions: list[str]) -> str:
    items = [
        InteractionIn(
            student_id=student,
            function=f,
            timestamp=at + timedelta(minutes=3 * n),
            subjects=["mathematics"],
            data_provided=[f"kind_{f}"],
        )
        for n, f in enumerate(functions)
    ]
    return log_interactions(items, store=store, now=at, timeout=timedelta(minutes=10))[0].session_id


def test_history_lines_notes_and_tools_read_what_the_pages_show(store) -> None:
    ids = [_lesson(store, "pia", T0 + timedelta(days=d), ["get_student_context", "check_answer"]) for d in range(3)]
    _lesson(store, "other", T0, ["get_hint"])
    assert store.save_analysis(
        ids[1],
        {"status": "ok", "progress_update": "Adds fractions.", "learning_insights": "Visuals help.", "model": "m"},
        content_updated_at=None,
        clear_pending=False,
    ) in (True, None)

    history = store.student_history("pia", start=EARLIEST, end=LATEST, limit=2)
    assert [m.session_id for m in history] == [ids[2], ids[1]]
    assert history[1].subjects == ["mathematics"] and history[1].interaction_count == 2
    assert history[1].analysis == {"status": "ok"}  # the status only, never the texts

    lines = store.session_lines([ids[0], ids[2], "nobody_20260101_0000"])
    assert set(lines) == {ids[0], ids[2]}
    assert lines[ids[0]].data_provided == ["kind_check_answer", "kind_get_student_context"]

    notes = store.session_notes(ids)
    assert notes[ids[1]]["progress_update"] == "Adds fractions."
    assert notes[ids[1]]["learning_insights"] == "Visuals help."
    assert "model" not in notes[ids[1]]

    assert store.session_tools(ids[0]) == {"get_student_context", "check_answer"}
    assert store.session_tools("nobody_20260101_0000") == set()


def test_the_live_views_open_sessions_count_every_call_so_far(store) -> None:
    """Storage v2 writes an open session's record at its first call only: the live view's read
    (``open_sessions_since``) must derive the counters of every open session it returns, not only
    of those whose record looks older than ``since`` (the live view showed 1 call after 2)."""
    sid = _lesson(store, "liv", T0, ["get_student_context"])
    second = InteractionIn(
        student_id="liv", function="get_lesson_plan", timestamp=T0 + timedelta(minutes=1), data_provided=["plan"]
    )
    assert (
        log_interactions([second], store=store, now=T0 + timedelta(minutes=1), timeout=timedelta(minutes=10))[
            0
        ].session_id
        == sid
    )

    found = {m.session_id: m for m in store.open_sessions_since(T0 - timedelta(minutes=5))}
    assert found[sid].interaction_count == 2
    assert found[sid].last_activity == T0 + timedelta(minutes=1)
    assert set(found[sid].data_provided) == {"kind_get_student_context", "plan"}
