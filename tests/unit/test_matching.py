"""Matching platform data to sessions and merging it (moto store, fixed clock)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import call, count_requests, minutes
from samples import vapi_sample

from session_tracker import sessions
from session_tracker.blobs import DirBlobStore
from session_tracker.matching import (
    UNKNOWN_STUDENT,
    MatchSettings,
    WebhookResult,
    extract_student_id,
    ingest_platform_event,
)
from session_tracker.platforms import PlatformEvent, get_adapter, parse_session_data
from session_tracker.store import DynamoStore, deserialize, serialize, session_key

TIMEOUT = timedelta(minutes=10)
CALL_START = datetime(2026, 3, 2, 15, 0, 10, tzinfo=UTC)
CALL_END = CALL_START + minutes(8)
NOW = CALL_END + minutes(1)
SETTINGS = MatchSettings()


def vapi_body(
    call_id: str = "call-1",
    start: datetime = CALL_START,
    end: datetime = CALL_END,
    *,
    student_id: str | None = None,
    session_id: str | None = None,
    phone: str | None = None,
    transcript: str = "AI: Hi! Ready?\nUser: Yes, let's go.",
    message_type: str = "end-of-call-report",
) -> dict[str, Any]:
    overrides: dict[str, Any] = {"variableValues": {"student_name": "X"}, "metadata": {}}
    if student_id:
        overrides["variableValues"]["student_id"] = student_id
    if session_id:
        overrides["metadata"]["session_id"] = session_id
    message: dict[str, Any] = {
        "type": message_type,
        "timestamp": int(end.timestamp() * 1000) + 4000,
        "endedReason": "customer-ended-call",
        "cost": 0.05,
        "artifact": {"transcript": transcript, "messages": []},
        "analysis": {},
        "startedAt": start.isoformat(),
        "endedAt": end.isoformat(),
        "call": {
            "id": call_id,
            "orgId": "6a2f1d3c-8b4e-4f7a-9c1d-2e3f4a5b6c7d",
            "type": "webCall",
            "createdAt": (start - timedelta(seconds=2)).isoformat(),
            "updatedAt": end.isoformat(),
            "assistantOverrides": overrides,
        },
    }
    if message_type == "status-update":
        message["status"] = "ended"
        del message["startedAt"], message["endedAt"]
        message["call"] |= {"startedAt": start.isoformat(), "endedAt": end.isoformat()}
    if phone:
        message["customer"] = {"number": phone}
    return {"message": message}


def event(body: dict[str, Any]) -> PlatformEvent:
    return get_adapter("vapi").parse(body)


@pytest.fixture
def blobs(tmp_path):
    return DirBlobStore(tmp_path / "blobs")


@pytest.fixture
def store(request: pytest.FixtureRequest):
    """The test's store: moto when the test inspects DynamoDB items or requests, else the fake."""
    return request.getfixturevalue("moto_store" if "moto_store" in request.fixturenames else "fake_store")


@pytest.fixture
def ingest(store, blobs):
    def run(body: dict[str, Any], *, now: datetime = NOW, settings: MatchSettings = SETTINGS) -> WebhookResult:
        parsed = parse_session_data(body) if "platform" in body else event(body)
        return ingest_platform_event(parsed, store=store, blobs=blobs, now=now, settings=settings)

    return run


def log(store: DynamoStore, *calls) -> list[str]:
    results = sessions.log_interactions(list(calls), store=store, now=NOW, timeout=TIMEOUT)
    return [r.session_id for r in results]


def export(store: DynamoStore, session_id: str, blobs=None):
    found = sessions.read_export(session_id, store=store, blobs=blobs)
    assert found is not None, session_id
    return found


def raw_meta(store: DynamoStore, session_id: str) -> dict[str, Any]:
    out = store.client.get_item(TableName=store.table_name, Key=serialize(session_key(session_id)))
    return deserialize(out["Item"])


# ------------------------------------------------------------------ strategies
def test_explicit_session_id_in_assistant_overrides_metadata_merges_the_real_report(fake_store, ingest) -> None:
    """Sample end-of-call-report.full names emma_smith_20260117_1430, the MCP session of that call."""
    [sid] = log(fake_store, call("emma_smith", datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)))
    result = ingest(vapi_sample("end-of-call-report.full"), now=datetime(2026, 1, 17, 14, 32, tzinfo=UTC))
    assert (result.outcome, result.session_id, result.strategy) == ("merged", sid, "explicit")
    out = export(fake_store, sid)
    assert out.status == "completed"
    assert out.end_time == datetime(2026, 1, 17, 14, 31, 44, 418000, tzinfo=UTC)
    assert out.conversation is not None
    assert {k: out.conversation[k] for k in ("source", "word_count", "call_duration")} == {
        "source": "vapi",
        "word_count": 209,
        "call_duration": 92,
    }
    assert out.conversation["transcript"].startswith("AI: Hi Emma! Ready to practice some fractions today?")
    assert out.conversation["platform_analysis"]["structuredData"]["problems_attempted"] == 4
    assert {k: out.vapi_metadata[k] for k in ("call_id", "cost", "ended_reason")} == {
        "call_id": "53077b4f-8470-4ae4-b473-ec0b2be99634",
        "cost": 0.1977,
        "ended_reason": "customer-ended-call",
    }
    assert out.matching["strategy"] == "explicit" and out.matching["source"] == "session_id"


def test_explicit_session_id_in_variable_values_also_counts(fake_store, ingest) -> None:
    [sid] = log(fake_store, call("liam_b", CALL_START))
    body = vapi_body()
    body["message"]["call"]["assistantOverrides"]["variableValues"]["session_id"] = sid
    assert ingest(body).strategy == "explicit"


def test_explicit_call_id_carried_by_logged_interactions(fake_store, ingest) -> None:
    """The MCP server passed VAPI's call id through: the report (no ids of its own) joins that session."""
    [sid] = log(fake_store, call("liam_b", CALL_START + minutes(1), call_id="call-1", platform="vapi"))
    result = ingest(vapi_body("call-1"))
    assert (result.outcome, result.session_id, result.strategy) == ("merged", sid, "explicit")
    assert export(fake_store, sid).matching["source"] == "call_id"


def test_student_id_from_variable_values_matches_the_overlapping_session(fake_store, ingest) -> None:
    sid, _ = log(fake_store, call("mia_w", CALL_START + minutes(2)), call("mia_w", CALL_START + minutes(6)))
    result = ingest(vapi_body(student_id="mia_w"))
    assert (result.outcome, result.session_id, result.strategy) == ("merged", sid, "student_id")
    assert export(fake_store, sid).matching["source"] == "variableValues"


def test_student_id_from_the_configured_phone_map(fake_store, ingest) -> None:
    [sid] = log(fake_store, call("jacob_m", CALL_START + minutes(1)))
    settings = MatchSettings(phone_map={"+1 (617) 555-0187": "jacob_m"})
    result = ingest(vapi_body(phone="+16175550187"), settings=settings)
    assert (result.session_id, result.strategy) == (sid, "student_id")
    assert export(fake_store, sid).matching["source"] == "phone_map"


def test_student_id_extracted_from_the_opening_turns_with_a_configured_pattern(fake_store, ingest) -> None:
    [sid] = log(fake_store, call("ava_j", CALL_START + minutes(1)))
    transcript = "AI: Hello! Who am I talking to?\nUser: it's me, learner code ava_j.\nAI: Great."
    settings = MatchSettings(student_id_patterns=[r"learner code (?P<student_id>[a-z_]+)"])
    result = ingest(vapi_body(transcript=transcript), settings=settings)
    assert (result.session_id, result.strategy) == (sid, "student_id")
    assert export(fake_store, sid).matching["source"] == "transcript"


def test_default_pattern_reads_a_spoken_student_id_but_only_in_the_opening_turns() -> None:
    opening = event(vapi_body(transcript="AI: Hi\nUser: my student id is noah_p."))
    assert extract_student_id(opening, SETTINGS) == ("noah_p", "transcript")
    late = event(vapi_body(transcript="\n".join(["AI: hi"] * 6 + ["User: student id: noah_p"])))
    assert extract_student_id(late, SETTINGS) == (None, None)


def test_student_id_from_the_conversations_tool_call_arguments(fake_store, ingest) -> None:
    body = copy.deepcopy(vapi_sample("end-of-call-report.full"))
    overrides = body["message"]["call"]["assistantOverrides"]
    overrides["metadata"].pop("session_id")
    overrides["variableValues"].pop("student_id")
    [sid] = log(fake_store, call("emma_smith", datetime(2026, 1, 17, 14, 30, 13, tzinfo=UTC)))
    result = ingest(body, now=datetime(2026, 1, 17, 14, 32, tzinfo=UTC))
    assert (result.session_id, result.strategy) == (sid, "student_id")
    assert export(fake_store, sid).matching["source"] == "transcript_tool_call"


def test_time_window_matches_a_session_of_that_student_just_outside_the_call(fake_store, ingest) -> None:
    [sid] = log(fake_store, call("mia_w", CALL_START - minutes(4)))
    result = ingest(vapi_body(student_id="mia_w"))
    assert (result.session_id, result.strategy) == (sid, "time_window")


def test_out_of_window_call_gets_a_new_session_for_the_known_student(fake_store, ingest) -> None:
    [old] = log(fake_store, call("mia_w", CALL_START - minutes(20)))
    result = ingest(vapi_body(student_id="mia_w"))
    assert (result.outcome, result.strategy, result.status) == ("created", "student_id", "completed")
    assert result.session_id == "mia_w_20260302_1500" != old
    out = export(fake_store, result.session_id)
    assert (out.start_time, out.end_time, out.mcp_interactions) == (CALL_START, CALL_END, [])


def test_match_window_is_configurable(fake_store, ingest) -> None:
    [sid] = log(fake_store, call("mia_w", CALL_START - minutes(20)))
    result = ingest(vapi_body(student_id="mia_w"), settings=MatchSettings(match_window=minutes(30)))
    assert (result.session_id, result.strategy) == (sid, "time_window")


def test_unknown_student_matches_exactly_one_active_session_in_the_window(fake_store, ingest) -> None:
    [sid] = log(fake_store, call("zoe_k", CALL_START + minutes(3)))
    log(fake_store, call("old_timer", CALL_START - minutes(40)))  # active but far from the call
    result = ingest(vapi_body())
    assert (result.outcome, result.session_id, result.strategy) == ("merged", sid, "time_window")
    assert export(fake_store, sid).matching["source"] == "single_active_session"


def test_unknown_student_with_two_candidate_sessions_is_unmatched_and_kept(fake_store, ingest) -> None:
    log(fake_store, call("zoe_k", CALL_START + minutes(3)), call("max_r", CALL_START + minutes(2)))
    result = ingest(vapi_body())
    assert (result.outcome, result.strategy, result.status) == ("created", "none", "unmatched")
    out = export(fake_store, result.session_id)
    assert (out.student_id, out.status) == (UNKNOWN_STUDENT, "unmatched")
    assert out.conversation["transcript"] == "AI: Hi! Ready?\nUser: Yes, let's go."
    assert "2 active sessions" in out.matching["reason"]


def test_unmatched_report_is_kept_and_listed_for_the_unknown_student(fake_store, ingest) -> None:
    result = ingest(vapi_body())
    assert (result.strategy, result.status, result.session_id) == ("none", "unmatched", "unknown_20260302_1500")
    listed, _ = fake_store.list_student_sessions(UNKNOWN_STUDENT, start=CALL_START - minutes(60), end=NOW)
    assert [m.session_id for m in listed] == [result.session_id]


# ------------------------------------------------------------- report before MCP
def test_report_before_any_mcp_call_yields_a_session_later_calls_join_by_call_id(fake_store, ingest) -> None:
    created = ingest(vapi_body("call-9", student_id="noah_p"))
    assert created.outcome == "created"
    late = call("noah_p", CALL_END + minutes(30), call_id="call-9")  # logged late, after the call ended
    assert log(fake_store, late) == [created.session_id]
    assert len(export(fake_store, created.session_id).mcp_interactions) == 1


def test_report_before_mcp_calls_that_happened_during_the_call_joins_them(fake_store, ingest) -> None:
    created = ingest(vapi_body("call-9", student_id="noah_p"))
    assert log(fake_store, call("noah_p", CALL_START + minutes(2))) == [created.session_id]


def test_a_call_after_the_reported_end_starts_a_new_session(fake_store, ingest) -> None:
    [sid] = log(fake_store, call("noah_p", CALL_START + minutes(1)))
    ingest(vapi_body(student_id="noah_p"))
    assert fake_store.get_head("noah_p").ended_at == CALL_END
    [after] = log(fake_store, call("noah_p", CALL_END + minutes(2)))
    assert after != sid


def test_joining_the_current_session_stays_two_requests_after_a_report(moto_store, ingest) -> None:
    ingest(vapi_body("call-9", student_id="noah_p"))
    log(moto_store, call("noah_p", CALL_START + minutes(1), call_id="call-9"))
    with count_requests(moto_store.client) as counts:
        log(moto_store, call("noah_p", CALL_START + minutes(2), call_id="call-9"))
    assert sum(counts.values()) == 2


# -------------------------------------------------------------------- late data
def test_late_report_merges_into_the_closed_session_by_event_time(moto_store, ingest) -> None:
    [early] = log(moto_store, call("liam_b", CALL_START + minutes(1)))
    moto_store.client.update_item(
        TableName=moto_store.table_name,
        Key=serialize(session_key(early)),
        UpdateExpression="SET #s = :closed REMOVE gsi2pk, gsi2sk",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=serialize({":closed": "closed"}),
    )
    [current] = log(moto_store, call("liam_b", CALL_START + timedelta(hours=3)))  # active now
    result = ingest(vapi_body(student_id="liam_b"), now=CALL_START + timedelta(hours=5))
    assert (result.session_id, result.status) == (early, "completed")
    assert export(moto_store, current).conversation is None
    item = raw_meta(moto_store, early)
    assert item["pending_analysis"] is True and item["content_updated_at"]


def test_data_later_than_late_data_hours_is_kept_as_an_unmatched_session(fake_store, ingest) -> None:
    [early] = log(fake_store, call("liam_b", CALL_START + minutes(1)))
    ingest(vapi_body("call-1", student_id="liam_b"))
    result = ingest(
        vapi_body("call-1", student_id="liam_b", message_type="status-update"), now=NOW + timedelta(hours=30)
    )
    assert (result.outcome, result.status, result.strategy) == ("created", "unmatched", "none")
    assert result.session_id != early
    assert export(fake_store, result.session_id).matching["candidate_session_id"] == early


def test_a_report_for_back_filled_calls_merges_into_the_session_closed_just_now(fake_store, ingest) -> None:
    """The calls carry old timestamps, but the idle closer closed the session a minute ago:
    late data is counted from when the session was closed, not from its event times."""
    from session_tracker.lifecycle import close_idle_sessions

    [sid] = log(fake_store, call("liam_b", CALL_START + minutes(1)))
    wall = CALL_START + timedelta(days=40)
    assert close_idle_sessions(store=fake_store, now=wall, timeout=TIMEOUT, request_analysis=False, workers=1).closed
    result = ingest(vapi_body("call-1", student_id="liam_b"), now=wall + minutes(1))
    assert (result.outcome, result.session_id, result.status) == ("merged", sid, "completed")


def test_late_data_hours_is_configurable(fake_store, ingest) -> None:
    [early] = log(fake_store, call("liam_b", CALL_START + minutes(1)))
    ingest(vapi_body("call-1", student_id="liam_b"))
    settings = MatchSettings(late_data=timedelta(hours=48))
    body = vapi_body("call-1", student_id="liam_b", message_type="status-update")
    assert ingest(body, now=NOW + timedelta(hours=30), settings=settings).session_id == early


# ------------------------------------------------------------------------ merge
def test_merge_completes_the_session_and_requests_analysis(moto_store, ingest) -> None:
    [sid] = log(moto_store, call("liam_b", CALL_START + minutes(1)))
    assert "gsi2pk" in raw_meta(moto_store, sid)
    ingest(vapi_body(student_id="liam_b"))
    item = raw_meta(moto_store, sid)
    assert item["status"] == "completed" and "recheck_after" in item  # storage v2: re-checked by the closer
    assert item["pending_analysis"] is True and item["content_updated_at"] == "2026-03-02T15:09:10.000000Z"
    assert item["end_time"] == "2026-03-02T15:08:10.000000Z"


def test_the_same_delivery_twice_changes_nothing(moto_store, ingest) -> None:
    [sid] = log(moto_store, call("liam_b", CALL_START + minutes(1)))
    first = ingest(vapi_body(student_id="liam_b"))
    before = raw_meta(moto_store, sid)
    again = ingest(vapi_body(student_id="liam_b"), now=NOW + minutes(5))
    assert (first.outcome, again.outcome, again.session_id) == ("merged", "duplicate", sid)
    assert raw_meta(moto_store, sid) == before


def test_status_update_ended_marks_the_call_ended_when_no_report_follows(fake_store, ingest) -> None:
    """Sample status-update.ended-abnormal: the worker died, no report will come."""
    at = datetime(2026, 1, 24, 10, 41, 50, tzinfo=UTC)
    [sid] = log(fake_store, call("mia_wilson", datetime(2026, 1, 24, 10, 41, 33, tzinfo=UTC)))
    result = ingest(vapi_sample("status-update.ended-abnormal"), now=at)
    assert (result.outcome, result.session_id, result.status) == ("merged", sid, "completed")
    out = export(fake_store, sid)
    assert out.vapi_metadata["ended_reason"] == "call.in-progress.error-vapifault-worker-died"
    assert out.conversation["partial"] is True
    assert out.conversation["transcript"].endswith("User: Three hundred forty.")
    assert fake_store.get_head("mia_wilson").ended_at == datetime(2026, 1, 24, 10, 41, 45, 660000, tzinfo=UTC)


def test_report_after_status_ended_replaces_the_partial_transcript(fake_store, ingest) -> None:
    [sid] = log(fake_store, call("liam_b", CALL_START + minutes(1)))
    ingest(vapi_body(student_id="liam_b", message_type="status-update", transcript="AI: Hi"))
    result = ingest(vapi_body(student_id="liam_b", transcript="AI: Hi\nUser: the whole thing"))
    assert (result.outcome, result.session_id) == ("merged", sid)
    conversation = export(fake_store, sid).conversation
    assert conversation["transcript"] == "AI: Hi\nUser: the whole thing" and "partial" not in conversation


def test_report_naming_the_student_claims_the_unmatched_session_of_its_call(fake_store, ingest) -> None:
    """A status-update without a student made an unmatched session; the report names the student."""
    first = ingest(vapi_body("call-u", student_id=None, message_type="status-update", transcript="AI: Hi"))
    assert (first.outcome, first.status) == ("created", "unmatched")
    result = ingest(vapi_body("call-u", student_id="noah_k", transcript="AI: Hi\nUser: I'm Noah"))
    assert (result.outcome, result.session_id, result.status) == ("merged", first.session_id, "completed")
    out = export(fake_store, first.session_id)
    assert (out.student_id, out.status) == ("noah_k", "completed")
    assert out.conversation["transcript"] == "AI: Hi\nUser: I'm Noah"
    assert [m.session_id for m in fake_store.student_sessions_before("noah_k", NOW + timedelta(days=1))] == [
        first.session_id
    ]


def test_status_ended_after_the_report_keeps_the_report(fake_store, ingest) -> None:
    [sid] = log(fake_store, call("liam_b", CALL_START + minutes(1)))
    ingest(vapi_body(student_id="liam_b", transcript="AI: full report"))
    result = ingest(vapi_body(student_id="liam_b", message_type="status-update", transcript="AI: partial"))
    assert (result.outcome, result.session_id) == ("merged", sid)
    assert export(fake_store, sid).conversation["transcript"] == "AI: full report"


def test_a_second_call_in_the_same_session_is_appended(fake_store, ingest) -> None:
    sid, same = log(fake_store, call("liam_b", CALL_START + minutes(1)), call("liam_b", CALL_START + minutes(9)))
    assert same == sid
    ingest(vapi_body("call-a", CALL_START, CALL_START + minutes(5), student_id="liam_b", transcript="AI: one"))
    ingest(
        vapi_body(
            "call-b", CALL_START + minutes(8), CALL_START + minutes(14), student_id="liam_b", transcript="AI: two"
        )
    )
    out = export(fake_store, sid)
    assert out.conversation["transcript"] == "AI: one\n\nAI: two"
    assert out.conversation["call_ids"] == ["call-a", "call-b"]
    assert out.conversation["call_duration"] == 660
    assert out.vapi_metadata["cost"] == 0.1 and [c["call_id"] for c in out.vapi_metadata["calls"]] == [
        "call-a",
        "call-b",
    ]


def test_duration_comes_from_started_and_ended_at_without_an_explicit_field(fake_store, ingest) -> None:
    result = ingest(vapi_body(student_id="liam_b"))
    assert export(fake_store, result.session_id).conversation["call_duration"] == 480
    later = CALL_START + timedelta(hours=2)
    body = vapi_body("call-2", later, later + minutes(8), student_id="liam_b")
    body["message"]["durationSeconds"] = 470.5
    other = ingest(body, now=NOW + timedelta(hours=3))
    assert other.session_id != result.session_id
    assert export(fake_store, other.session_id).conversation["call_duration"] == 470.5


def test_unicode_transcripts_survive_unchanged(fake_store, ingest) -> None:
    text = "AI: ¿Cuánto es 7×8? 🤔\nUser: 五十六 — fifty-six\nAI: Ça marche ✅"  # noqa: RUF001
    result = ingest(vapi_body(student_id="lucía.g", transcript=text))
    assert export(fake_store, result.session_id).conversation["transcript"] == text


def test_huge_transcripts_go_to_the_blob_store_and_come_back_whole(moto_store, ingest, blobs) -> None:
    text = "\n".join(f"User: line {i} — ünïcødé {'x' * 80}" for i in range(20_000))  # ~2 MB
    [sid] = log(moto_store, call("liam_b", CALL_START + minutes(1)))
    ingest(vapi_body(student_id="liam_b", transcript=text))
    stored = raw_meta(moto_store, sid)["conversation"]
    assert "transcript" not in stored and stored["transcript_blob"]["bytes"] == len(text.encode())
    assert export(moto_store, sid, blobs).conversation["transcript"] == text


def test_missing_fields_still_keep_the_report(fake_store, ingest) -> None:
    result = ingest({"message": {"type": "end-of-call-report"}})
    assert (result.outcome, result.status) == ("created", "unmatched")
    out = export(fake_store, result.session_id)
    assert (out.start_time, out.conversation["transcript"], out.vapi_metadata["cost"]) == (NOW, "", None)


def test_ignored_types_write_nothing(moto_store, ingest) -> None:
    with count_requests(moto_store.client) as counts:
        result = ingest(vapi_sample("conversation-update"))
    assert (result.outcome, sum(counts.values())) == ("ignored", 0)


def test_generic_platform_data_is_matched_the_same_way(moto_store, ingest) -> None:
    [sid] = log(moto_store, call("emma_smith", CALL_START + minutes(1)))
    body = {
        "platform": "generic",
        "student_id": "emma_smith",
        "started_at": CALL_START.isoformat(),
        "ended_at": CALL_END.isoformat(),
        "transcript": [{"role": "assistant", "text": "Hi"}, {"role": "user", "text": "Hello"}],
        "metadata": {"room": "7"},
    }
    result = ingest(body)
    assert (result.session_id, result.strategy) == (sid, "student_id")
    out = export(moto_store, sid)
    assert out.conversation["source"] == "generic" and out.conversation["transcript"] == "AI: Hi\nUser: Hello"
    assert out.vapi_metadata is None
    assert raw_meta(moto_store, sid)["platform_metadata"]["metadata"] == {"room": "7"}
    assert out.platform_metadata is not None and out.platform_metadata["metadata"] == {"room": "7"}


def test_unmatched_report_is_claimed_by_the_first_mcp_call_carrying_its_call_id(fake_store, ingest) -> None:
    """The report came first and named no student; the MCP server later logs calls with VAPI's call id."""
    created = ingest(vapi_body("call-77"))
    assert (created.status, created.strategy) == ("unmatched", "none")
    joined = log(fake_store, call("kai_t", CALL_START + minutes(1), call_id="call-77"))
    assert joined == [created.session_id]
    out = export(fake_store, created.session_id)
    assert (out.student_id, out.status, out.matching["strategy"], out.matching["source"]) == (
        "kai_t",
        "completed",
        "explicit",
        "call_id",
    )
    assert log(fake_store, call("kai_t", CALL_START + minutes(2), call_id="call-77")) == [created.session_id]
    listed, _ = fake_store.list_student_sessions("kai_t", start=CALL_START - minutes(5), end=NOW)
    assert [m.session_id for m in listed] == [created.session_id]


def test_a_session_of_another_known_student_is_not_claimed(fake_store, ingest) -> None:
    created = ingest(vapi_body("call-78", student_id="noah_p"))
    [other] = log(fake_store, call("kai_t", CALL_START + minutes(1), call_id="call-78"))
    assert other != created.session_id


def test_deeply_nested_analysis_and_non_finite_numbers_are_stored_not_500(fake_store, ingest) -> None:
    nested: dict[str, Any] = {"leaf": 1}
    for _ in range(60):
        nested = {"down": nested}
    body = vapi_body(student_id="liam_b")
    body["message"]["analysis"] = {"summary": "deep", "structuredData": nested}
    body["message"]["costs"] = [{"type": "vapi", "cost": float("inf")}, {"type": "x", "cost": 1e308}]
    result = ingest(body)
    out = export(fake_store, result.session_id)
    assert out.conversation["platform_analysis"]["summary"] == "deep"
    # free-form numbers DynamoDB cannot hold: non-finite ones become null, huge ones text
    assert out.vapi_metadata["costs"] == [{"type": "vapi", "cost": None}, {"type": "x", "cost": "1e+308"}]
    assert "leaf" in json.dumps(out.conversation["platform_analysis"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cost", float("nan")),
        ("cost", float("inf")),
        ("cost", 1e40),
        ("durationSeconds", 1e308),
        ("durationSeconds", -1),
        ("durationMs", float("inf")),
    ],
)
def test_non_finite_or_out_of_range_report_numbers_are_422_naming_the_field(field, value, fake_store, ingest) -> None:
    from session_tracker.platforms import PayloadInvalid

    body = vapi_body(student_id="liam_b")
    body["message"][field] = value
    with pytest.raises(PayloadInvalid) as caught:
        ingest(body)
    assert caught.value.status == 422 and caught.value.field == f"message.{field}"


def test_explicit_session_id_that_does_not_exist_yet_is_created_and_mcp_calls_join_it(fake_store, ingest) -> None:
    """The real full report arriving before the MCP server logged anything."""
    result = ingest(vapi_sample("end-of-call-report.full"), now=datetime(2026, 1, 17, 14, 32, tzinfo=UTC))
    assert (result.outcome, result.session_id, result.strategy) == ("created", "emma_smith_20260117_1430", "explicit")
    during = call("emma_smith", datetime(2026, 1, 17, 14, 30, 13, tzinfo=UTC))
    explicit = call("emma_smith", datetime(2026, 1, 17, 14, 31, 0, tzinfo=UTC), session_id="emma_smith_20260117_1430")
    assert log(fake_store, during, explicit) == ["emma_smith_20260117_1430"] * 2
    out = export(fake_store, "emma_smith_20260117_1430")
    assert (out.status, len(out.mcp_interactions)) == ("completed", 2)


def test_huge_transcripts_go_to_s3_behind_the_same_interface(moto_store) -> None:
    import boto3

    from session_tracker.blobs import S3BlobStore

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="transcripts-test")
    store_blobs = S3BlobStore("transcripts-test", client=s3)
    text = "User: " + "palabra " * 20_000
    parsed = event(vapi_body(student_id="liam_b", transcript=text))
    result = ingest_platform_event(parsed, store=moto_store, blobs=store_blobs, now=NOW, settings=SETTINGS)
    pointer = raw_meta(moto_store, result.session_id)["conversation"]["transcript_blob"]
    assert pointer["uri"] == f"s3://transcripts-test/{pointer['key']}"
    assert s3.get_object(Bucket="transcripts-test", Key=pointer["key"])["Body"].read().decode() == text
    assert export(moto_store, result.session_id, store_blobs).conversation["transcript"] == text


# ------------------------------------------------------------- foreign session ids (issue 13 item 4)
def test_report_naming_another_students_session_is_matched_as_if_it_named_none(moto_store, ingest) -> None:
    """An intruder's report names Alice's session but states student Bob: Alice's session is untouched."""
    [alice] = log(moto_store, call("alice", CALL_START + minutes(1)))
    result = ingest(vapi_body(session_id=alice, student_id="bob", transcript="User: intruder text"))
    assert result.session_id != alice
    assert result.session_id.startswith("bob_") and result.strategy == "student_id"
    victim = export(moto_store, alice)
    assert (victim.status, victim.conversation) == ("active", None)
    assert raw_meta(moto_store, alice).get("pending_analysis") is None
    # Alice's next call still joins her own session (no ``_2`` split).
    assert log(moto_store, call("alice", CALL_START + minutes(3))) == [alice]


def test_report_naming_a_new_session_id_of_another_student_does_not_create_it(moto_store, ingest) -> None:
    squatted = f"alice_{CALL_START:%Y%m%d_%H%M}"
    result = ingest(vapi_body(session_id=squatted, student_id="bob"))
    assert result.session_id != squatted and result.session_id.startswith("bob_")
    assert moto_store.get_session(squatted) is None
    assert log(moto_store, call("alice", CALL_START)) == [squatted]


def test_report_naming_its_own_students_session_is_still_explicit(moto_store, ingest) -> None:
    [sid] = log(moto_store, call("alice", CALL_START + minutes(1)))
    result = ingest(vapi_body(session_id=sid, student_id="alice"))
    assert (result.outcome, result.session_id, result.strategy) == ("merged", sid, "explicit")


def test_report_times_beyond_the_clock_skew_are_ignored_not_stored(moto_store, ingest) -> None:
    """A report dated 2199 (broken platform clock) is kept at receive time, not as a session that never ends."""
    body = vapi_body(
        student_id="liam_b", start=datetime(2199, 1, 1, tzinfo=UTC), end=datetime(2199, 1, 1, 0, 5, tzinfo=UTC)
    )
    body["message"]["timestamp"] = int(datetime(2199, 1, 1, 0, 6, tzinfo=UTC).timestamp() * 1000)
    body["message"]["call"].pop("createdAt")
    result = ingest(body)
    out = export(moto_store, result.session_id)
    assert out.start_time <= NOW + timedelta(days=1) and out.end_time is not None and out.end_time.year < 2199
