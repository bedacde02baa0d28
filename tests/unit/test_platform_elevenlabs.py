"""The ElevenLabs adapter and signature check, against the real samples and the ElevenLabs SDK."""

from __future__ import annotations

import copy
import hmac
import time
from datetime import UTC, datetime, timedelta

import pytest
from samples import platform_sample, platform_sample_names, platform_sample_raw

from session_tracker.errors import ServiceUnavailable, Unauthorized
from session_tracker.platforms import PayloadInvalid, elevenlabs, get_adapter

SECRET = "wsec_test_elevenlabs"
NAMES = platform_sample_names("elevenlabs")


def parse(name: str):
    return get_adapter("elevenlabs").parse(platform_sample("elevenlabs", name))


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("post_call_transcription")])
def test_transcription_samples_are_valid_sdk_conversations(name: str) -> None:
    from elevenlabs.types import GetConversationResponseModel

    GetConversationResponseModel.model_validate(platform_sample("elevenlabs", name)["data"], strict=True)


def test_a_transcription_reads_student_fiat_cost_reason_times_and_tool_calls() -> None:
    event = parse("post_call_transcription.full")
    assert (event.kind, event.platform, event.call_id) == ("report", "elevenlabs", "conv_7mq8q7pcze9jfkm0d48h11xs52w2")
    assert (event.student_id, event.student_id_source) == ("emma_smith", "dynamic_variables")
    assert event.cost == pytest.approx(0.099909)  # cost_fiat (USD), not the 523 credits
    assert event.details["cost_credits"] == 523
    assert event.ended_reason == "end_call tool was called."
    assert event.started_at == datetime.fromtimestamp(1773333002, tz=UTC)
    assert event.ended_at == event.started_at + timedelta(seconds=70)
    assert [(c.name, c.offset, c.builtin) for c in event.tool_calls] == [
        ("get_student_context", 7.0, False),
        ("save_practice_result", 60.0, False),
        ("end_call", 67.0, True),
    ]
    assert event.tool_calls[0].arguments == {"student_id": "emma_smith"}
    assert event.transcript is not None and event.transcript.startswith("AI: Hi Emma!")


def test_user_id_names_the_student_when_dynamic_variables_do_not() -> None:
    body = platform_sample("elevenlabs", "post_call_transcription.full")
    del body["data"]["conversation_initiation_client_data"]["dynamic_variables"]["student_id"]
    event = get_adapter("elevenlabs").parse(body)
    assert (event.student_id, event.student_id_source) == ("emma_smith", "user_id")


def test_credits_are_never_taken_for_dollars() -> None:
    body = platform_sample("elevenlabs", "post_call_transcription.full")
    del body["data"]["metadata"]["cost_fiat"]
    event = get_adapter("elevenlabs").parse(body)
    charging = body["data"]["metadata"]["charging"]
    assert event.cost == pytest.approx(charging["llm_price"] + charging["platform_price"])
    del body["data"]["metadata"]["charging"]
    assert get_adapter("elevenlabs").parse(body).cost is None


@pytest.mark.parametrize("name", ["post_call_audio", "call_initiation_failure.sip", "call_initiation_failure.twilio"])
def test_audio_and_initiation_failures_are_acknowledged_not_stored(name: str) -> None:
    assert parse(name).kind == "ignored"


def test_an_initiation_failure_keeps_its_reason_for_the_log() -> None:
    assert parse("call_initiation_failure.sip").ended_reason == "busy"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.pop("type"), "type"),
        (lambda b: b.pop("data"), "data"),
        (lambda b: b["data"].pop("conversation_id"), "data.conversation_id"),
        (lambda b: b["data"].update(transcript={"not": "a list"}), "data.transcript"),
        (lambda b: b["data"]["metadata"].update(cost_fiat="free"), "data.metadata.cost_fiat"),
    ],
)
def test_malformed_bodies_name_the_field(change, field: str) -> None:
    body = copy.deepcopy(platform_sample("elevenlabs", "post_call_transcription.full"))
    change(body)
    with pytest.raises(PayloadInvalid) as err:
        get_adapter("elevenlabs").parse(body)
    assert err.value.field == field


# ------------------------------------------------------------------ signatures
def sdk_accepts(body: bytes, header: str) -> bool:
    """The SDK's construct_event (it checks against the real clock)."""
    from elevenlabs.client import ElevenLabs
    from elevenlabs.errors import BadRequestError

    try:
        ElevenLabs(api_key="unused").webhooks.construct_event(rawBody=body.decode(), sig_header=header, secret=SECRET)
    except BadRequestError:
        return False
    return True


def check(body: bytes, header: str, now: datetime | None = None) -> None:
    elevenlabs.verify_signature({"elevenlabs-signature": header}, body, secret=SECRET, now=now or datetime.now(UTC))


@pytest.mark.parametrize("name", NAMES)
def test_a_header_the_sdk_accepts_is_accepted(name: str) -> None:
    body = platform_sample_raw("elevenlabs", name)
    header = elevenlabs.sign(body, SECRET, int(time.time()) - 60)
    assert sdk_accepts(body, header)
    check(body, header)


def test_v0_before_t_is_read_like_the_sdk() -> None:
    body = platform_sample_raw("elevenlabs", "post_call_audio")
    header = ",".join(reversed(elevenlabs.sign(body, SECRET, int(time.time())).split(",")))
    assert sdk_accepts(body, header)
    check(body, header)


@pytest.mark.parametrize(("age_minutes", "accepted"), [(29, True), (31, False)])
def test_signatures_older_than_thirty_minutes_are_refused_like_the_sdk(age_minutes: int, accepted: bool) -> None:
    body = platform_sample_raw("elevenlabs", "post_call_audio")
    header = elevenlabs.sign(body, SECRET, int(time.time()) - age_minutes * 60)
    assert sdk_accepts(body, header) is accepted
    if accepted:
        check(body, header)
    else:
        with pytest.raises(Unauthorized, match="window"):
            check(body, header)


def test_a_timestamp_far_in_the_future_is_refused_too() -> None:
    """Deliberately stricter than the SDK (no upper bound there): ±30 min, as the contract says."""
    body = platform_sample_raw("elevenlabs", "post_call_audio")
    header = elevenlabs.sign(body, SECRET, int(time.time()) + 3600)
    assert sdk_accepts(body, header)
    with pytest.raises(Unauthorized, match="window"):
        check(body, header)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda body, header: (body + b" ", header),
        lambda body, header: (body, header.replace("v0=", "v0=00")),
        lambda body, header: (body, header.split(",")[0]),
        lambda body, header: (body, elevenlabs.sign(body, "other-secret", int(time.time()))),
    ],
    ids=["tampered body", "wrong digest", "no v0", "wrong secret"],
)
def test_what_the_sdk_rejects_is_401(mutate) -> None:
    body = platform_sample_raw("elevenlabs", "post_call_transcription.phone_twilio")
    body2, header = mutate(body, elevenlabs.sign(body, SECRET, int(time.time())))
    assert not sdk_accepts(body2, header)
    with pytest.raises(Unauthorized):
        check(body2, header)


def test_a_bearer_token_is_not_a_signature() -> None:
    with pytest.raises(Unauthorized, match="missing"):
        elevenlabs.verify_signature({"authorization": f"Bearer {SECRET}"}, b"{}", secret=SECRET, now=datetime.now(UTC))


def test_no_configured_secret_is_503() -> None:
    with pytest.raises(ServiceUnavailable):
        elevenlabs.verify_signature({"elevenlabs-signature": "t=1,v0=00"}, b"{}", secret=None, now=datetime.now(UTC))


def test_the_digest_is_compared_in_constant_time(monkeypatch) -> None:
    calls: list[object] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(a) or real(a, b))
    body = b"{}"
    check(body, elevenlabs.sign(body, SECRET, int(time.time())))
    assert calls
