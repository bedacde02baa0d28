"""Assigning unmatched platform data (``POST /sessions/{id}/assign``), fixed clock; every scenario
runs on the in-memory fake and on moto, so the fake's move keeps the DynamoDB conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import call, minutes

from session_tracker import sessions
from session_tracker.blobs import DirBlobStore
from session_tracker.errors import Conflict, NotFound, Unprocessable
from session_tracker.matching import MatchSettings, ingest_platform_event
from session_tracker.platforms import parse_session_data
from session_tracker.review import AssignmentAudit, AssignRequest, assign_session

START = datetime(2026, 3, 2, 15, 0, 10, tzinfo=UTC)
END = START + minutes(8)
NOW = END + minutes(2)
WINDOW = timedelta(minutes=5)


@pytest.fixture(params=["fake", "moto"])
def store(request: pytest.FixtureRequest):
    return request.getfixturevalue("fake_store" if request.param == "fake" else "moto_store")


@pytest.fixture
def blobs(tmp_path):
    return DirBlobStore(tmp_path / "blobs")


def unmatched(store: Any, blobs, *, call_id: str = "conv-1", start: datetime = START, **extra: Any) -> str:
    body = {
        "platform": "generic",
        "call_id": call_id,
        "started_at": start.isoformat(),
        "ended_at": (start + minutes(8)).isoformat(),
        "transcript": "AI: Hello!\nUser: Hi, it's me.",
        "cost": 0.25,
        "ended_reason": "hangup",
        **extra,
    }
    result = ingest_platform_event(
        parse_session_data(body), store=store, blobs=blobs, now=NOW, settings=MatchSettings()
    )
    assert result.status == "unmatched", result
    assert result.session_id is not None
    return result.session_id


def assign(store: Any, blobs, source: str, audit: list[AssignmentAudit] | None = None, **body: Any):
    return assign_session(
        source,
        AssignRequest(**body),
        store=store,
        blobs=blobs,
        now=NOW,
        match_window=WINDOW,
        audit=audit.append if audit is not None else None,
    )


def test_assigning_to_a_student_merges_into_the_session_its_call_time_matches(store, blobs) -> None:
    calls = [call("emma", START + minutes(1)), call("liam", START + minutes(1))]
    sid, _ = [r.session_id for r in sessions.log_interactions(calls, store=store, now=NOW, timeout=minutes(10))]
    source = unmatched(store, blobs)  # two students active at once: nobody can tell whose call it is
    audit: list[AssignmentAudit] = []

    result = assign(store, blobs, source, audit, student_id="emma")

    assert (result.session_id, result.outcome, result.student_id) == (sid, "merged", "emma")
    out = sessions.read_export(sid, store=store, blobs=blobs)
    assert out is not None and out.conversation is not None
    assert out.conversation["transcript"] == "AI: Hello!\nUser: Hi, it's me."
    assert out.status == "completed"
    assert out.matching["strategy"] == "manual"
    assert out.matching["assigned_from"] == source
    assert out.platform_metadata is not None and out.platform_metadata["call_id"] == "conv-1"
    assert len(out.mcp_interactions) == 1
    assert store.get_session(source) is None
    link = store.get_call_link("conv-1")
    assert link is not None and (link.session_id, link.student_id) == (sid, "emma")
    assert [(a.action, a.student_id, a.session_id, a.assigned_from) for a in audit] == [("assign", "emma", sid, source)]


def test_a_student_with_no_session_near_the_call_gets_a_new_session_named_for_them(store, blobs) -> None:
    sessions.log_interactions([call("emma", START - timedelta(hours=3))], store=store, now=NOW, timeout=minutes(10))
    source = unmatched(store, blobs)

    result = assign(store, blobs, source, student_id="emma")

    assert result.outcome == "created"
    assert result.session_id == "emma_20260302_1500"
    out = sessions.read_export(result.session_id, store=store, blobs=blobs)
    assert out is not None and out.student_id == "emma" and out.status == "completed"
    assert out.matching["strategy"] == "manual"
    assert out.conversation is not None and out.conversation["word_count"] == 4
    assert store.get_session(source) is None


def test_assigning_to_a_named_session_merges_there_even_outside_the_window(store, blobs) -> None:
    [far] = [
        r.session_id
        for r in sessions.log_interactions(
            [call("noah", START - timedelta(hours=2))], store=store, now=NOW, timeout=minutes(10)
        )
    ]
    source = unmatched(store, blobs)

    result = assign(store, blobs, source, session_id=far)

    assert (result.session_id, result.outcome, result.student_id) == (far, "merged", "noah")


def test_assigning_a_session_that_is_not_unmatched_is_409(store, blobs) -> None:
    [sid] = [
        r.session_id
        for r in sessions.log_interactions([call("emma", START)], store=store, now=NOW, timeout=minutes(10))
    ]
    with pytest.raises(Conflict, match="not unmatched"):
        assign(store, blobs, sid, student_id="emma")


def test_assigning_twice_is_409_naming_where_the_data_went(store, blobs) -> None:
    source = unmatched(store, blobs)
    first = assign(store, blobs, source, student_id="emma")
    with pytest.raises(Conflict, match=first.session_id):
        assign(store, blobs, source, student_id="liam")


def test_an_unknown_session_is_404(store, blobs) -> None:
    with pytest.raises(NotFound):
        assign(store, blobs, "unknown_20260302_1500", student_id="emma")


def test_a_named_target_that_does_not_exist_is_422(store, blobs) -> None:
    source = unmatched(store, blobs)
    with pytest.raises(Unprocessable, match="session_id"):
        assign(store, blobs, source, session_id="emma_20990101_0000")
    assert store.get_session(source) is not None


def test_a_target_of_another_student_than_named_is_422(store, blobs) -> None:
    calls = [call("emma", START), call("liam", START)]
    sid, _ = [r.session_id for r in sessions.log_interactions(calls, store=store, now=NOW, timeout=minutes(10))]
    source = unmatched(store, blobs)
    with pytest.raises(Unprocessable, match="not a session of student 'liam'"):
        assign(store, blobs, source, session_id=sid, student_id="liam")


def test_an_unmatched_session_is_never_the_target(store, blobs) -> None:
    first = unmatched(store, blobs)
    second = unmatched(store, blobs, call_id="conv-2")
    with pytest.raises(Conflict, match="itself unmatched"):
        assign(store, blobs, first, session_id=second)


def test_a_body_naming_nothing_is_rejected() -> None:
    with pytest.raises(ValueError, match="student_id or session_id"):
        AssignRequest()


def test_a_second_call_merged_by_assignment_adds_up_cost_and_keeps_both_transcripts(store, blobs) -> None:
    body = {
        "platform": "generic",
        "student_id": "emma",
        "call_id": "conv-0",
        "started_at": START.isoformat(),
        "ended_at": (START + minutes(3)).isoformat(),
        "transcript": "AI: First call.",
        "cost": 0.5,
    }
    first = ingest_platform_event(parse_session_data(body), store=store, blobs=blobs, now=NOW, settings=MatchSettings())
    source = unmatched(store, blobs, start=START + minutes(4))

    result = assign(store, blobs, source, student_id="emma")

    assert result.session_id == first.session_id
    out = sessions.read_export(result.session_id, store=store, blobs=blobs)
    assert out is not None and out.conversation is not None
    assert out.conversation["transcript"] == "AI: First call.\n\nAI: Hello!\nUser: Hi, it's me."
    assert out.conversation["call_ids"] == ["conv-0", "conv-1"]
    meta = out.platform_metadata or {}
    assert [c["call_id"] for c in meta["calls"]] == ["conv-0", "conv-1"]
