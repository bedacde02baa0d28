"""POST /webhook/retell and /webhook/elevenlabs handlers (signed API Gateway events), on DynamoDB Local."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import body_of, call, http_event
from samples import platform_sample, platform_sample_raw

from session_tracker import sessions
from session_tracker.blobs import DirBlobStore
from session_tracker.platforms import elevenlabs, retell
from session_tracker.store import DynamoStore

RETELL_KEY = "test-retell-api-key"
ELEVEN_SECRET = "test-elevenlabs-secret"
TIMEOUT = timedelta(minutes=10)


@pytest.fixture
def handlers(ddb_store: DynamoStore, blobs: DirBlobStore, monkeypatch: pytest.MonkeyPatch, wire):
    monkeypatch.setenv("RETELL_API_KEY", RETELL_KEY)
    monkeypatch.setenv("ELEVENLABS_WEBHOOK_SECRET", ELEVEN_SECRET)
    monkeypatch.setenv("INGEST_TOKEN", "test-ingest-token")
    loaded = {
        name: wire(name, ddb_store, blobs=blobs, function_name="WebhookFunction", timeout=20)
        for name in ("webhook_retell", "webhook_elevenlabs")
    }

    def send(name: str, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        event = http_event("POST", path, body=raw.decode("utf-8"), headers=headers, source_ip="100.20.5.228")
        out = loaded[name](event)
        return out["statusCode"], body_of(out)

    return send


def retell_post(handlers, raw: bytes, *, header: str | None = None, headers: dict[str, str] | None = None):
    sig = header if header is not None else retell.sign(raw, RETELL_KEY, int(time.time() * 1000))
    return handlers(
        "webhook_retell", "/webhook/retell", raw, headers if headers is not None else {"x-retell-signature": sig}
    )


def eleven_post(handlers, raw: bytes, *, header: str | None = None, headers: dict[str, str] | None = None):
    sig = header if header is not None else elevenlabs.sign(raw, ELEVEN_SECRET, int(time.time()))
    return handlers(
        "webhook_elevenlabs",
        "/webhook/elevenlabs",
        raw,
        headers if headers is not None else {"elevenlabs-signature": sig},
    )


def mcp_session(store: DynamoStore, student: str, at: datetime, *functions: tuple[str, dict[str, Any], float]) -> str:
    """Log the MCP calls of one session (name, arguments, seconds after ``at``)."""
    calls = [call(student, at + timedelta(seconds=s), function=f, arguments=a) for f, a, s in functions]
    results = sessions.log_interactions(calls, store=store, now=at, timeout=TIMEOUT)
    return results[0].session_id


RETELL_START = datetime(2026, 3, 10, 16, 0, 5, 412000, tzinfo=UTC)
ELEVEN_START = datetime.fromtimestamp(1773333002, tz=UTC)


# -------------------------------------------------------------------- Retell samples
RETELL_RESULTS = {
    "call_started": ("ignored", None),
    "call_ended.dial_no_answer": ("ignored", None),
    "call_ended.full": ("merged", "emma_smith_20260310_1600"),
    "call_analyzed": ("merged", "emma_smith_20260310_1600"),
    "call_analyzed.phone_inbound": ("created", "emma_smith_20260317_1745"),
}


def test_every_retell_sample_posted_signed_gives_its_outcome(handlers, ddb_store, blobs) -> None:
    sid = mcp_session(
        ddb_store,
        "emma_smith",
        RETELL_START + timedelta(seconds=7),
        ("get_student_context", {"student_id": "emma_smith"}, 0.5),
    )
    for name in (
        "call_started",
        "call_ended.full",
        "call_analyzed",
        "call_analyzed.phone_inbound",
        "call_ended.dial_no_answer",
    ):
        status, body = retell_post(handlers, platform_sample_raw("retell", name))
        assert status == 200, (name, body)
        assert (body["outcome"], body.get("session_id")) == RETELL_RESULTS[name], name
    stored = sessions.read_export(sid, store=ddb_store, blobs=blobs)
    assert stored is not None and stored.conversation is not None
    assert stored.platform == "retell" and stored.conversation["source"] == "retell"
    assert stored.conversation["platform_analysis"]["call_successful"] is True  # call_analyzed added it
    assert stored.conversation["transcript"] == platform_sample("retell", "call_ended.full")["call"]["transcript"]
    assert stored.conversation["call_ids"] == ["call_45802f38266558e95adfd946609"]  # merged once, not twice
    assert stored.platform_metadata is not None
    assert {k: stored.platform_metadata[k] for k in ("platform", "call_id", "ended_reason")} == {
        "platform": "retell",
        "call_id": "call_45802f38266558e95adfd946609",
        "ended_reason": "user_hangup",
    }
    assert stored.platform_metadata["cost_usd"] == pytest.approx(0.1813)
    assert stored.vapi_metadata is None
    assert any(t.get("words") for t in stored.conversation["turns"])
    assert [t["name"] for t in stored.conversation["turns"] if t["role"] == "tool_call"] == [
        "get_student_context",
        "save_practice_result",
    ]


def test_call_analyzed_before_call_ended_keeps_the_analysis(handlers, ddb_store, blobs) -> None:
    status, first = retell_post(handlers, platform_sample_raw("retell", "call_analyzed"))
    status2, second = retell_post(handlers, platform_sample_raw("retell", "call_ended.full"))
    assert (status, status2) == (200, 200)
    assert second["session_id"] == first["session_id"]
    stored = sessions.read_export(first["session_id"], store=ddb_store, blobs=blobs)
    assert stored is not None and stored.conversation is not None
    assert stored.conversation["platform_analysis"]["call_successful"] is True
    assert stored.conversation["call_ids"] == ["call_45802f38266558e95adfd946609"]


def test_list_lines_show_the_cost_of_retell_and_elevenlabs_sessions(handlers, ddb_store) -> None:
    from session_tracker import reading

    retell_post(handlers, platform_sample_raw("retell", "call_analyzed.phone_inbound"))
    eleven_post(handlers, platform_sample_raw("elevenlabs", "post_call_transcription.phone_twilio"))
    page = reading.student_sessions("emma_smith", store=ddb_store)
    costs = {item.platform: (item.cost, item.ended_reason) for item in page.sessions}
    assert costs["retell"] == (pytest.approx(0.054267), "agent_hangup")
    assert costs["elevenlabs"] == (pytest.approx(0.035566), "Call ended by remote party")


def test_a_retell_redelivery_is_stored_once(handlers, ddb_store) -> None:
    raw = platform_sample_raw("retell", "call_analyzed.phone_inbound")
    _, first = retell_post(handlers, raw)
    status, again = retell_post(handlers, raw)
    assert status == 200 and (again["outcome"], again["session_id"]) == ("duplicate", first["session_id"])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer test-ingest-token"},
        {"x-retell-signature": "v=1,d=" + "0" * 64},
    ],
    ids=["none", "ingest scope token", "stale"],
)
def test_retell_without_a_valid_signature_is_401_and_stores_nothing(handlers, ddb_store, headers) -> None:
    raw = platform_sample_raw("retell", "call_analyzed.phone_inbound")
    status, body = retell_post(handlers, raw, headers=headers)
    assert status == 401, body
    assert ddb_store.get_session("emma_smith_20260317_1745") is None
    assert ddb_store.get_delivery("retell:call_3cf1bd8c762371f36fae7b79541:call_analyzed") is None


def test_a_retell_signature_for_other_bytes_is_401(handlers, ddb_store) -> None:
    raw = platform_sample_raw("retell", "call_analyzed.phone_inbound")
    header = retell.sign(raw, RETELL_KEY, int(time.time() * 1000))
    status, _ = retell_post(handlers, raw.replace(b"emma_smith", b"liam_jones"), header=header)
    assert status == 401


def test_a_retell_transcript_over_400_kb_is_kept_whole(handlers, ddb_store, blobs) -> None:
    body = copy.deepcopy(platform_sample("retell", "call_analyzed.phone_inbound"))
    lines = [f"User: sentence {i} " + "fraction " * 30 for i in range(2000)]
    body["call"]["transcript"] = "\n".join(lines)
    body["call"]["transcript_with_tool_calls"] = [
        {"role": "user", "content": line[6:], "words": [{"word": "fraction", "start": i, "end": i + 0.5}]}
        for i, line in enumerate(lines)
    ]
    raw = json.dumps(body).encode()
    assert len(raw) > 400 * 1024
    status, answer = retell_post(handlers, raw)
    assert status == 200, answer
    stored = sessions.read_export(answer["session_id"], store=ddb_store, blobs=blobs)
    assert stored is not None and stored.conversation is not None
    assert stored.conversation["transcript"] == body["call"]["transcript"]
    assert len(stored.conversation["turns"]) == 2000


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        (b'{"event": "call_ended"}', 422, "call"),
        (b'{"event": "call_ended", "call": {"call_id": 7}}', 422, "call.call_id"),
        (b'{"call": {}}', 422, "event"),
        (b"{not json", 400, None),
    ],
)
def test_malformed_retell_bodies_are_4xx_naming_the_field(handlers, raw: bytes, status: int, field: str | None) -> None:
    got, body = retell_post(handlers, raw)
    assert got == status, body
    if field:
        assert field in body["detail"]


# ---------------------------------------------------------------- ElevenLabs samples
ELEVEN_RESULTS = {
    "post_call_transcription.full": ("merged", "emma_smith_20260312_1630"),
    "post_call_transcription.phone_twilio": ("created", "emma_smith_20260319_1705"),
    "post_call_audio": ("ignored", None),
    "call_initiation_failure.sip": ("ignored", None),
    "call_initiation_failure.twilio": ("ignored", None),
}


def test_every_elevenlabs_sample_posted_signed_gives_its_outcome(handlers, ddb_store, blobs) -> None:
    sid = mcp_session(
        ddb_store,
        "emma_smith",
        ELEVEN_START + timedelta(seconds=6),
        ("get_student_context", {"student_id": "emma_smith"}, 1),
    )
    for name, expected in ELEVEN_RESULTS.items():
        status, body = eleven_post(handlers, platform_sample_raw("elevenlabs", name))
        assert status == 200, (name, body)
        assert (body["outcome"], body.get("session_id")) == expected, name
    stored = sessions.read_export(sid, store=ddb_store, blobs=blobs)
    assert stored is not None and stored.conversation is not None
    assert stored.platform == "elevenlabs" and stored.conversation["source"] == "elevenlabs"
    assert stored.platform_metadata is not None
    assert stored.platform_metadata["cost_usd"] == pytest.approx(0.099909)
    assert stored.platform_metadata["ended_reason"] == "end_call tool was called."
    assert stored.platform_metadata["cost_credits"] == 523
    assert stored.conversation["platform_analysis"]["call_successful"] == "success"


def test_an_elevenlabs_redelivery_is_stored_once(handlers) -> None:
    raw = platform_sample_raw("elevenlabs", "post_call_transcription.phone_twilio")
    _, first = eleven_post(handlers, raw)
    status, again = eleven_post(handlers, raw)
    assert status == 200 and (again["outcome"], again["session_id"]) == ("duplicate", first["session_id"])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer test-ingest-token"},
        {"elevenlabs-signature": f"t={int(time.time()) - 31 * 60},v0=00"},
    ],
    ids=["none", "ingest scope token", "stale"],
)
def test_elevenlabs_without_a_valid_signature_is_401_and_stores_nothing(handlers, ddb_store, headers) -> None:
    raw = platform_sample_raw("elevenlabs", "post_call_transcription.phone_twilio")
    status, _ = eleven_post(handlers, raw, headers=headers)
    assert status == 401
    assert ddb_store.get_session("emma_smith_20260319_1705") is None


def test_a_stale_but_correct_elevenlabs_signature_is_401(handlers, ddb_store) -> None:
    raw = platform_sample_raw("elevenlabs", "post_call_transcription.phone_twilio")
    status, _ = eleven_post(handlers, raw, header=elevenlabs.sign(raw, ELEVEN_SECRET, int(time.time()) - 31 * 60))
    assert status == 401
    assert ddb_store.get_session("emma_smith_20260319_1705") is None


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"type": "post_call_transcription", "data": {}}', "data.conversation_id"),
        (b'{"type": "post_call_transcription"}', "data"),
        (b'{"type": 5}', "type"),
    ],
)
def test_malformed_elevenlabs_bodies_are_422_naming_the_field(handlers, raw: bytes, field: str) -> None:
    status, body = eleven_post(handlers, raw)
    assert status == 422, body
    assert field in body["detail"]
