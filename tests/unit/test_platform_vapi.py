"""The VAPI adapter: every real sample, both report shapes, unknown types, and authentication."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from samples import vapi_sample, vapi_sample_names

from session_tracker.errors import ServiceUnavailable, Unauthorized
from session_tracker.platforms import PayloadInvalid, get_adapter
from session_tracker.platforms.vapi import authenticate

vapi = get_adapter("vapi")

EXPECTED_KIND = {
    "conversation-update": "ignored",
    "end-of-call-report.empty-conversation": "report",
    "end-of-call-report.full": "report",
    "end-of-call-report.short-no-analysis": "report",
    "status-update.ended-abnormal": "ended",
    "status-update.in-progress": "ignored",
    "tool-calls": "ignored",
    "transcript.final": "ignored",
}


def test_every_sample_is_covered_by_the_expectations() -> None:
    assert set(vapi_sample_names()) == set(EXPECTED_KIND)


@pytest.mark.parametrize("name", sorted(EXPECTED_KIND))
def test_each_sample_parses_to_the_expected_kind(name: str) -> None:
    assert vapi.parse(vapi_sample(name)).kind == EXPECTED_KIND[name]


def test_full_report_carries_ids_times_cost_and_analysis() -> None:
    event = vapi.parse(vapi_sample("end-of-call-report.full"))
    assert event.call_id == "53077b4f-8470-4ae4-b473-ec0b2be99634"
    assert (event.session_id, event.student_id, event.student_id_source) == (
        "emma_smith_20260117_1430",
        "emma_smith",
        "variableValues",
    )
    assert event.started_at == datetime(2026, 1, 17, 14, 30, 12, 418000, tzinfo=UTC)
    assert event.ended_at == datetime(2026, 1, 17, 14, 31, 44, 418000, tzinfo=UTC)
    assert event.event_time == datetime(2026, 1, 17, 14, 31, 48, 618000, tzinfo=UTC)  # epoch ms
    assert event.duration_seconds() == 92.0
    assert (event.cost, event.ended_reason) == (0.1977, "customer-ended-call")
    assert event.analysis is not None and event.analysis["successEvaluation"] == "true"
    assert event.transcript is not None and event.transcript.startswith("AI: Hi Emma!")
    assert event.tool_student_ids == ["emma_smith"]
    assert len(event.details["costs"]) == 8
    assert event.delivery_id == "53077b4f-8470-4ae4-b473-ec0b2be99634:end-of-call-report"


def test_word_count_counts_spoken_words_not_role_labels() -> None:
    event = vapi.parse(vapi_sample("end-of-call-report.short-no-analysis"))
    spoken = "Hi Jacob! Let's read together. Can you read the first sentence of chapter three for me? "
    spoken += "The fox ran across the, um, frozen river. Nice reading! What do you think frozen means?"
    assert event.word_count == len(spoken.split())


def test_empty_analysis_and_empty_conversation_are_kept_as_empty() -> None:
    event = vapi.parse(vapi_sample("end-of-call-report.empty-conversation"))
    assert (event.analysis, event.transcript, event.word_count) == (None, "", 0)
    assert event.duration_seconds() == 2.4


def test_phone_number_comes_from_the_customer() -> None:
    assert vapi.parse(vapi_sample("end-of-call-report.short-no-analysis")).phone_number == "+16175550187"


def test_abnormal_end_keeps_the_open_ended_reason_and_partial_transcript() -> None:
    event = vapi.parse(vapi_sample("status-update.ended-abnormal"))
    assert event.ended_reason == "call.in-progress.error-vapifault-worker-died"
    assert event.transcript is not None and event.transcript.endswith("User: Three hundred forty.")
    assert event.delivery_id.endswith(":status-update:ended")


def test_the_2024_report_shape_is_read_from_top_level_fields() -> None:
    body = {
        "message": {
            "type": "end-of-call-report",
            "timestamp": "2024-10-10T12:00:30.000Z",
            "endedReason": "hangup",
            "transcript": "AI: Hello Noah\nUser: hi",
            "summary": "A short greeting.",
            "recordingUrl": "https://storage.vapi.ai/x.wav",
            "messages": [{"role": "bot", "message": "Hello Noah", "time": 1728561601000}],
            "costBreakdown": {"transport": 0.01, "stt": 0.02, "llm": 0.03, "tts": 0.01, "vapi": 0.05, "total": 0.12},
            "call": {"id": "legacy-call-1", "startedAt": "2024-10-10T12:00:00.000Z"},
        }
    }
    event = vapi.parse(body)
    assert event.kind == "report"
    assert event.transcript == "AI: Hello Noah\nUser: hi"
    assert event.analysis == {"summary": "A short greeting."}
    assert event.event_time == datetime(2024, 10, 10, 12, 0, 30, tzinfo=UTC)
    assert event.call_end == event.event_time  # no endedAt: the message time
    assert event.details["cost_breakdown"]["total"] == 0.12
    assert event.details["recording_url"] == "https://storage.vapi.ai/x.wav"


@pytest.mark.parametrize("message_type", ["assistant.speechStarted", "call.artifact.upload", "a-type-from-2030"])
def test_unknown_and_unused_types_are_ignored(message_type: str) -> None:
    assert vapi.parse({"message": {"type": message_type, "whatever": [1, 2]}}).kind == "ignored"


def test_unknown_fields_anywhere_are_tolerated() -> None:
    body = copy.deepcopy(vapi_sample("end-of-call-report.full"))
    body["message"]["brandNewField"] = {"nested": True}
    body["message"]["call"]["anotherNewField"] = 1
    body["message"]["artifact"]["messages"][3]["newTurnField"] = "x"
    assert vapi.parse(body).transcript == vapi.parse(vapi_sample("end-of-call-report.full")).transcript


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": {}}, "message.type"),
        ({"message": {"type": ""}}, "message.type"),
        ({"message": "end-of-call-report"}, "message"),
        ({"message": {"type": "status-update"}}, "status"),
        ({"message": {"type": "end-of-call-report", "cost": "a lot"}}, "cost"),
    ],
)
def test_malformed_messages_are_422_naming_the_field(body: dict, field: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        vapi.parse(body)
    assert caught.value.status == 422
    assert caught.value.field is not None and caught.value.field.endswith(field)


def test_unusable_timestamps_are_tolerated_not_fatal() -> None:
    body = copy.deepcopy(vapi_sample("end-of-call-report.short-no-analysis"))
    body["message"]["startedAt"] = "yesterday-ish"
    body["message"]["call"]["startedAt"] = None
    body["message"]["timestamp"] = 10**20
    event = vapi.parse(body)
    assert event.started_at is None and event.event_time is None
    assert event.call_start is not None  # the first turn's time


def test_a_student_id_unusable_as_a_key_is_ignored() -> None:
    body = copy.deepcopy(vapi_sample("end-of-call-report.empty-conversation"))
    body["message"]["call"]["assistantOverrides"]["variableValues"]["student_id"] = "STUDENT#1 / x"
    assert vapi.parse(body).student_id is None


def test_tool_call_arguments_as_string_object_or_flat_form_all_give_the_student() -> None:
    for call in (
        {"function": {"name": "f", "arguments": '{"student_id": "liam_b"}'}},
        {"function": {"name": "f", "arguments": {"student_id": "liam_b"}}},
        {"name": "f", "parameters": {"student_id": "liam_b"}},
    ):
        body = {
            "message": {
                "type": "end-of-call-report",
                "artifact": {"messages": [{"role": "tool_calls", "toolCalls": [call]}]},
            }
        }
        assert vapi.parse(body).tool_student_ids == ["liam_b"]


def test_without_a_call_id_redeliveries_still_share_a_delivery_id() -> None:
    body = {"message": {"type": "end-of-call-report", "artifact": {"transcript": "AI: hi"}}}
    assert vapi.parse(body).delivery_id == vapi.parse(copy.deepcopy(body)).delivery_id
    other = {"message": {"type": "end-of-call-report", "artifact": {"transcript": "AI: bye"}}}
    assert vapi.parse(body).delivery_id != vapi.parse(other).delivery_id


# ------------------------------------------------------------------ authentication
SECRET = "s3cret-value"
NOW = datetime(2026, 1, 17, 14, 32, tzinfo=UTC)
BODY = b'{"message": {"type": "end-of-call-report"}}'


def _sign(body: bytes, stamp: str, secret: str = SECRET, *, b64: bool = False, prefix: str = "") -> str:
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).digest()
    return prefix + (base64.b64encode(digest).decode() if b64 else digest.hex())


def auth(headers: dict[str, str], body: bytes = BODY, **kwargs) -> str:
    options = {"secret": SECRET, "hmac_secret": None, "now": NOW} | kwargs
    return authenticate({k.lower(): v for k, v in headers.items()}, body, **options)


def test_bearer_token_authenticates() -> None:
    assert auth({"Authorization": f"Bearer {SECRET}"}) == "bearer"


@pytest.mark.parametrize("name", ["X-Vapi-Secret", "X-Vapi-Signature"])
def test_legacy_raw_secret_headers_authenticate(name: str) -> None:
    assert auth({name: SECRET}) == "x-vapi-secret"


@pytest.mark.parametrize(
    "stamp", [str(int(NOW.timestamp())), str(int(NOW.timestamp() * 1000))], ids=["seconds", "milliseconds"]
)
def test_hmac_over_timestamp_and_raw_body_authenticates(stamp: str) -> None:
    assert auth({"x-signature": _sign(BODY, stamp), "x-timestamp": stamp}) == "hmac"


def test_hmac_in_base64_with_a_prefix_authenticates() -> None:
    stamp = str(int(NOW.timestamp()))
    signature = _sign(BODY, stamp, b64=True, prefix="sha256=")
    assert auth({"x-signature": signature, "x-timestamp": stamp}) == "hmac"


def test_hmac_header_names_are_configurable() -> None:
    stamp = str(int(NOW.timestamp()))
    headers = {"X-Tutor-Sig": _sign(BODY, stamp), "X-Tutor-Time": stamp}
    assert auth(headers, signature_header="X-Tutor-Sig", timestamp_header="X-Tutor-Time") == "hmac"


def test_a_separate_hmac_secret_is_used_for_signatures() -> None:
    stamp = str(int(NOW.timestamp()))
    assert auth({"x-signature": _sign(BODY, stamp, "other"), "x-timestamp": stamp}, hmac_secret="other") == "hmac"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing credentials"),
        ({"Authorization": "Bearer wrong"}, "invalid bearer"),
        ({"Authorization": f"Basic {SECRET}"}, "invalid bearer"),
        ({"X-Vapi-Secret": "wrong"}, "invalid x-vapi-secret"),
        ({"x-signature": "00" * 32, "x-timestamp": str(int(NOW.timestamp()))}, "invalid x-signature"),
        ({"x-signature": "00" * 32}, "x-timestamp header missing"),
    ],
)
def test_bad_or_missing_credentials_are_401(headers: dict[str, str], message: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        auth(headers)
    assert message in str(caught.value)


def test_a_signature_over_a_different_body_is_401() -> None:
    stamp = str(int(NOW.timestamp()))
    with pytest.raises(Unauthorized):
        auth({"x-signature": _sign(BODY, stamp), "x-timestamp": stamp}, body=BODY + b" ")


@pytest.mark.parametrize("age", [timedelta(minutes=6), timedelta(minutes=-6)], ids=["old", "future"])
def test_a_signature_outside_the_replay_window_is_401(age: timedelta) -> None:
    stamp = str(int((NOW - age).timestamp()))
    with pytest.raises(Unauthorized, match="replay window"):
        auth({"x-signature": _sign(BODY, stamp), "x-timestamp": stamp}, replay_window=timedelta(minutes=5))


def test_without_a_configured_secret_the_webhook_is_unavailable() -> None:
    with pytest.raises(ServiceUnavailable):
        auth({"Authorization": "Bearer x"}, secret=None)
