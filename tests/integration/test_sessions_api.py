"""The read API handler (GET /sessions/{id}, /students/{id}/sessions, /sessions) on DynamoDB Local."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import count_requests, http_event
from seed_sessions import CALLS, TRANSCRIPT, log_calls, seed_emma

from session_tracker.blobs import DirBlobStore
from session_tracker.models import SessionExport
from session_tracker.reading import SessionPage, SessionRefPage
from session_tracker.store import DynamoStore, _values, serialize, session_key

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-read-token"
INGEST = "test-ingest-token"
T0 = datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)


def event(path: str, query: dict[str, Any] | None = None, *, token: str | None = TOKEN, method: str = "GET") -> dict:
    return http_event(method, path, query=query, token=token)


@pytest.fixture
def api(ddb_store: DynamoStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, wire):
    monkeypatch.setenv("INGEST_TOKEN", INGEST)
    monkeypatch.setenv("READ_TOKEN", TOKEN)
    blobs = DirBlobStore(tmp_path / "blobs")
    handler = wire("sessions_api", ddb_store, blobs=blobs, function_name="SessionsApiFunction")

    def call(path: str, query: dict[str, Any] | None = None, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        out = handler(event(path, query, **kw))
        body = out.get("body") or ""
        ctype = (out.get("headers") or {}).get("Content-Type", "")
        return out["statusCode"], json.loads(body) if "json" in ctype and body else body, out.get("headers") or {}

    return call


def test_a_session_reads_back_in_the_export_shape(api, ddb_store) -> None:
    session_id = seed_emma(ddb_store, T0)
    status, body, _ = api(f"/sessions/{session_id}")
    assert status == 200
    export = SessionExport.model_validate(body)
    assert [c.function for c in export.mcp_interactions] == [c[1] for c in CALLS]
    assert [c.timestamp for c in export.mcp_interactions] == sorted(c.timestamp for c in export.mcp_interactions)
    assert export.conversation["transcript"].startswith("AI: Hi Emma!")
    assert export.vapi_metadata == {
        "call_id": "53077b4f-8470-4ae4-b473-ec0b2be99634",
        "cost": 0.1977,
        "ended_reason": "customer-ended-call",
    }
    assert export.matching["strategy"] == "student_id"
    assert export.session_summary.data_requests == len(CALLS)
    assert export.session_summary.subjects_accessed == ["mathematics"]
    assert export.analysis["model"] == "gpt-4o-mini"
    assert export.status == "completed"


def test_reading_a_session_is_one_query_and_never_a_scan(api, ddb_store) -> None:
    session_id = seed_emma(ddb_store, T0)
    with count_requests(ddb_store.client) as counts:
        assert api(f"/sessions/{session_id}")[0] == 200
        assert api("/students/emma_smith/sessions")[0] == 200
        assert api("/sessions", {"from": "2026-01-17", "to": "2026-01-17"})[0] == 200
    # plus one audit entry (PutItem) per read of a session or of a student's list, and one per
    # distinct student on the page of everyone's sessions (emma only)
    assert counts.pop("PutItem", 0) <= 3
    # storage v2: the session is its record (GetItem) and its calls (a Query of the student's partition)
    assert counts == {"GetItem": 1, "Query": 3}


def test_an_unknown_session_is_a_404_problem(api) -> None:
    status, body, headers = api("/sessions/nobody_20260117_1430")
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"
    assert body["field"] == "session_id"


@pytest.mark.parametrize("bad", ["a" * 201, "bad%23id", "-leading-dash"])
def test_a_malformed_session_id_is_a_422_naming_it(api, bad) -> None:
    status, body, _ = api(f"/sessions/{bad}")
    assert status == 422
    assert "session_id" in body["detail"]


def test_reads_need_a_read_credential(api, ddb_store) -> None:
    session_id = seed_emma(ddb_store, T0)
    assert api(f"/sessions/{session_id}", token=None)[0] == 401
    assert api(f"/sessions/{session_id}", token="wrong")[0] == 401
    assert api("/students/emma_smith/sessions", token=None)[0] == 401
    assert api(f"/sessions/{session_id}", token="test-admin-token")[0] == 200


def test_the_ingest_token_no_longer_reads_403_naming_the_read_scope(api, ddb_store) -> None:
    session_id = seed_emma(ddb_store, T0)
    for path in (f"/sessions/{session_id}", "/students/emma_smith/sessions", "/sessions"):
        status, body, headers = api(path, token=INGEST)
        assert status == 403, path
        assert headers["Content-Type"] == "application/problem+json"
        assert body["required_scope"] == "read" and "'read'" in body["detail"]


def _five_sessions(store: DynamoStore) -> list[str]:
    """Five sessions of one student, an hour apart; ids oldest first."""
    return [log_calls(store, "pat", T0 + timedelta(hours=h), CALLS[:2]) for h in range(5)]


def test_a_students_sessions_come_newest_first_in_pages(api, ddb_store) -> None:
    ids = _five_sessions(ddb_store)
    seen: list[str] = []
    query: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        status, body, _ = api("/students/pat/sessions", query)
        assert status == 200
        page = SessionPage.model_validate(body)
        pages += 1
        seen += [s.session_id for s in page.sessions]
        if not page.next_cursor:
            break
        query["cursor"] = page.next_cursor
    assert seen == list(reversed(ids))
    assert pages == 3


def test_a_page_that_ends_exactly_at_the_last_session_has_no_cursor(api, ddb_store) -> None:
    _five_sessions(ddb_store)
    status, body, _ = api("/students/pat/sessions", {"limit": 5})
    assert status == 200
    assert len(body["sessions"]) == 5
    assert body["next_cursor"] is None


def test_list_lines_carry_cost_status_and_ended_reason(api, ddb_store) -> None:
    session_id = seed_emma(ddb_store, T0)
    line = api("/students/emma_smith/sessions")[1]["sessions"][0]
    assert line["session_id"] == session_id
    assert (line["status"], line["cost"], line["ended_reason"]) == ("completed", 0.1977, "customer-ended-call")
    assert line["interaction_count"] == len(CALLS)
    assert "conversation" not in line


def test_from_and_to_select_by_start_time_and_a_date_covers_its_whole_day(api, ddb_store) -> None:
    ids = _five_sessions(ddb_store)  # 14:30, 15:30, 16:30, 17:30, 18:30 on 2026-01-17
    body = api("/students/pat/sessions", {"from": "2026-01-17T15:00:00Z", "to": "2026-01-17T17:45:00Z"})[1]
    assert [s["session_id"] for s in body["sessions"]] == [ids[3], ids[2], ids[1]]
    whole_day = api("/students/pat/sessions", {"from": "2026-01-17", "to": "2026-01-17"})[1]
    assert len(whole_day["sessions"]) == 5
    assert api("/students/pat/sessions", {"to": "2026-01-16"})[1]["sessions"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-45"}, "to"),
        ({"from": "2026-01-18", "to": "2026-01-17"}, "from"),
        ({"from": "1900-01-01"}, "from"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "x" * 3000}, "cursor"),
    ],
)
def test_bad_range_or_cursor_is_a_422_naming_the_field(api, ddb_store, query, field) -> None:
    status, body, _ = api("/students/pat/sessions", query)
    assert status == 422, body
    assert field in (body.get("field") or body["detail"])


@pytest.mark.parametrize("limit", [0, 101, "many"])
def test_limit_outside_1_to_100_is_a_422(api, limit) -> None:
    status, body, _ = api("/students/pat/sessions", {"limit": limit})
    assert status == 422
    assert "limit" in body["detail"]


def test_a_cursor_only_works_for_the_query_that_made_it(api, ddb_store) -> None:
    _five_sessions(ddb_store)
    log_calls(ddb_store, "sam", T0, CALLS[:1])
    log_calls(ddb_store, "sam", T0 + timedelta(hours=1), CALLS[:1])
    cursor = api("/students/pat/sessions", {"limit": 2})[1]["next_cursor"]
    other_student = api("/students/sam/sessions", {"limit": 1, "cursor": cursor})
    other_range = api("/students/pat/sessions", {"limit": 2, "cursor": cursor, "from": "2026-01-01"})
    assert (other_student[0], other_student[1]["field"]) == (422, "cursor")
    assert (other_range[0], other_range[1]["field"]) == (422, "cursor")


def test_an_altered_cursor_is_refused(api, ddb_store) -> None:
    _five_sessions(ddb_store)
    cursor = api("/students/pat/sessions", {"limit": 2})[1]["next_cursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    forged = raw.replace(b"T17:30", b"T12:30")
    assert forged != raw
    token = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    status, body, _ = api("/students/pat/sessions", {"limit": 2, "cursor": token})
    assert (status, body["field"]) == (422, "cursor")


def test_every_students_sessions_by_start_day_page_across_days(api, ddb_store) -> None:
    expected = []
    for day in range(4):
        for student in ("ana", "ben"):
            expected.append(log_calls(ddb_store, student, T0 + timedelta(days=day, minutes=day * 7), CALLS[:1]))
    query: dict[str, Any] = {"from": "2026-01-16", "to": "2026-01-21", "limit": 3}
    seen: list[str] = []
    while True:
        status, body, _ = api("/sessions", query)
        assert status == 200, body
        page = SessionRefPage.model_validate(body)
        seen += [r.session_id for r in page.sessions]
        if not page.next_cursor:
            break
        query["cursor"] = page.next_cursor
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen)) == 8
    starts = [api(f"/sessions/{s}")[1]["start_time"] for s in seen]
    assert starts == sorted(starts, reverse=True)


def test_the_all_students_list_defaults_to_the_last_seven_days(api, ddb_store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    recent = log_calls(ddb_store, "cleo", now - timedelta(days=2), CALLS[:1])
    log_calls(ddb_store, "cleo", now - timedelta(days=30), CALLS[:1])
    status, body, _ = api("/sessions")
    assert status == 200
    assert [r["session_id"] for r in body["sessions"]] == [recent]


def test_a_session_moved_earlier_by_a_late_call_moves_in_the_day_index(ddb_store) -> None:
    from session_tracker import reading

    first = T0.replace(hour=0, minute=2)
    session_id = log_calls(ddb_store, "dora", first, CALLS[:1])
    log_calls(ddb_store, "dora", first - timedelta(minutes=4), CALLS[:1])  # 23:58 the day before: same session
    previous_day = reading.sessions_between(
        store=ddb_store, now=T0, start=datetime(2026, 1, 16, tzinfo=UTC), end=datetime(2026, 1, 16, 23, 59, tzinfo=UTC)
    )
    assert [r.session_id for r in previous_day.sessions] == [session_id]
    assert previous_day.sessions[0].start_time == first - timedelta(minutes=4)


def test_a_transcript_kept_in_blob_storage_is_returned_whole(api, ddb_store, tmp_path) -> None:
    session_id = seed_emma(ddb_store, T0)
    long_transcript = TRANSCRIPT + "\n" + "\n".join(f"User: line {i} " + "x" * 200 for i in range(3000))
    key = f"transcripts/{session_id}/abc.txt"
    DirBlobStore(tmp_path / "blobs").put(key, long_transcript.encode(), content_type="text/plain")
    conversation = {"source": "vapi", "word_count": 9000, "transcript_blob": {"key": key}}
    ddb_store.client.update_item(
        TableName=ddb_store.table_name,
        Key=serialize(session_key(session_id)),
        UpdateExpression="SET conversation = :c",
        ExpressionAttributeValues=_values(c=conversation),
    )
    status, body, _ = api(f"/sessions/{session_id}")
    assert status == 200
    assert body["conversation"]["transcript"] == long_transcript
    assert "transcript_blob" not in body["conversation"]
    page = api(f"/ui/sessions/{session_id}")[1]
    assert "line 2999 " in page
