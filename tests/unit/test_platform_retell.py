"""The Retell adapter and signature check, against the real samples and Retell's own SDK."""

from __future__ import annotations

import copy
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from samples import platform_sample, platform_sample_names, platform_sample_raw

from session_tracker.errors import ServiceUnavailable, Unauthorized
from session_tracker.platforms import PayloadInvalid, get_adapter, retell

KEY = "key_test_retell"
NAMES = platform_sample_names("retell")


def parse(name: str):
    return get_adapter("retell").parse(platform_sample("retell", name))


@pytest.mark.parametrize("name", NAMES)
def test_every_sample_is_a_valid_retell_sdk_call(name: str) -> None:
    from retell.types import PhoneCallResponse, WebCallResponse

    call = platform_sample("retell", name)["call"]
    model = WebCallResponse if call["call_type"] == "web_call" else PhoneCallResponse
    model.model_validate(call, strict=True)


def test_call_ended_reads_student_cost_in_usd_reason_and_tool_calls() -> None:
    event = parse("call_ended.full")
    assert (event.kind, event.platform, event.call_id) == ("ended", "retell", "call_45802f38266558e95adfd946609")
    assert (event.student_id, event.student_id_source) == ("emma_smith", "metadata")
    assert event.cost == pytest.approx(0.1813)  # combined_cost 18.13 cents
    assert event.ended_reason == "user_hangup"
    assert event.call_duration == pytest.approx(146.535)
    assert event.started_at == datetime(2026, 3, 10, 16, 0, 5, 412000, tzinfo=UTC)
    assert [(c.name, c.arguments) for c in event.tool_calls] == [
        ("get_student_context", {"student_id": "emma_smith"}),
        (
            "save_practice_result",
            {"student_id": "emma_smith", "skill": "add_unlike_denominators", "attempted": 4, "correct": 3},
        ),
    ]
    first = event.tool_calls[0]
    assert first.offset == pytest.approx(7.548)  # the end of the utterance before it
    assert first.time == event.started_at + timedelta(seconds=7.548)


def test_word_timings_and_tool_entries_are_kept_as_turns() -> None:
    event = parse("call_ended.full")
    roles = [t.role for t in event.turns]
    assert roles[:4] == ["assistant", "tool_call", "tool_result", "assistant"]
    assert event.turns[0].words and event.turns[0].words[0] == {"word": "Hi", "start": 0.62, "end": 0.825}
    assert event.turns[2].name == "get_student_context" and event.turns[2].successful is True
    assert event.word_count == sum(len(t.text.split()) for t in event.turns if t.role in ("assistant", "user"))


def test_call_analyzed_is_the_report_with_retells_analysis() -> None:
    event = parse("call_analyzed")
    assert event.kind == "report"
    assert event.analysis is not None and event.analysis["call_successful"] is True
    assert event.delivery_id != parse("call_ended.full").delivery_id


def test_a_session_id_in_metadata_is_offered_as_a_handoff() -> None:
    assert parse("call_ended.full").session_id == "sess_2026-03-10_emma_smith_1600"


def test_dynamic_variables_name_the_student_when_metadata_does_not() -> None:
    body = platform_sample("retell", "call_analyzed.phone_inbound")
    del body["call"]["metadata"]
    event = get_adapter("retell").parse(body)
    assert (event.student_id, event.student_id_source) == ("emma_smith", "retell_llm_dynamic_variables")
    assert event.phone_number == "+447700900123"


@pytest.mark.parametrize(("name", "kind"), [("call_started", "ignored"), ("call_ended.dial_no_answer", "ignored")])
def test_events_without_a_conversation_are_acknowledged_not_stored(name: str, kind: str) -> None:
    assert parse(name).kind == kind


def test_the_deprecated_data_key_is_read_like_call() -> None:
    body = platform_sample("retell", "call_analyzed")
    body["data"] = body.pop("call")
    assert get_adapter("retell").parse(body).call_id == "call_45802f38266558e95adfd946609"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.pop("event"), "event"),
        (lambda b: b.pop("call"), "call"),
        (lambda b: b["call"].pop("call_id"), "call.call_id"),
        (lambda b: b["call"].update(transcript_with_tool_calls="nope"), "call.transcript_with_tool_calls"),
        (lambda b: b["call"].update(call_cost={"combined_cost": "lots"}), "call.call_cost.combined_cost"),
    ],
)
def test_malformed_bodies_name_the_field(change, field: str) -> None:
    body = copy.deepcopy(platform_sample("retell", "call_ended.full"))
    change(body)
    with pytest.raises(PayloadInvalid) as err:
        get_adapter("retell").parse(body)
    assert err.value.field == field


# ------------------------------------------------------------------ signatures
NOW = datetime(2026, 3, 10, 16, 3, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def sdk_verify(body: bytes, header: str, now_ms: int) -> bool:
    from retell.lib import webhook_auth

    return bool(webhook_auth.symmetric["verify"](body.decode(), KEY, header, {"timestamp": now_ms}))


def check(body: bytes, header: str, now: datetime = NOW) -> None:
    retell.verify_signature({"x-retell-signature": header}, body, api_key=KEY, now=now)


def test_our_signature_is_the_sdk_test_vector() -> None:
    want = "v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e"
    assert retell.sign(b'{"event":"call_ended"}', "test-api-key", 1_700_000_000_000) == want


@pytest.mark.parametrize("name", NAMES)
def test_a_header_the_sdk_accepts_is_accepted(name: str) -> None:
    body = platform_sample_raw("retell", name)
    header = retell.sign(body, KEY, NOW_MS - 1000)
    assert sdk_verify(body, header, NOW_MS)
    check(body, header)


@pytest.mark.parametrize(
    ("offset_ms", "accepted"), [(300_000, True), (-300_000, True), (300_001, False), (-300_001, False)]
)
def test_the_window_is_five_minutes_both_ways_like_the_sdk(offset_ms: int, accepted: bool) -> None:
    body = platform_sample_raw("retell", "call_started")
    header = retell.sign(body, KEY, NOW_MS - offset_ms)
    assert sdk_verify(body, header, NOW_MS) is accepted
    if accepted:
        check(body, header)
    else:
        with pytest.raises(Unauthorized, match="window"):
            check(body, header)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda body, header: (body + b" ", header),
        lambda body, header: (body, header.upper().replace("V=", "v=").replace(",D=", ",d=")),
        lambda body, header: (body, header.replace("d=", "d=0")),
        lambda body, header: (body, "sha256=" + header),
        lambda body, header: (body, retell.sign(body, "another-key", NOW_MS)),
    ],
    ids=["tampered body", "uppercase hex", "long digest", "prefixed", "wrong key"],
)
def test_what_the_sdk_rejects_is_401(mutate) -> None:
    body = platform_sample_raw("retell", "call_analyzed")
    body2, header = mutate(body, retell.sign(body, KEY, NOW_MS))
    assert not sdk_verify(body2, header, NOW_MS)
    with pytest.raises(Unauthorized):
        check(body2, header)


def test_a_missing_header_or_a_bearer_token_is_401() -> None:
    with pytest.raises(Unauthorized, match="missing"):
        retell.verify_signature({"authorization": f"Bearer {KEY}"}, b"{}", api_key=KEY, now=NOW)


def test_no_configured_key_is_503_not_an_open_door() -> None:
    with pytest.raises(ServiceUnavailable):
        retell.verify_signature({"x-retell-signature": "v=1,d=" + "0" * 64}, b"{}", api_key=None, now=NOW)


def test_the_digest_is_compared_in_constant_time(monkeypatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    body = b'{"event":"call_ended"}'
    check(body, retell.sign(body, KEY, NOW_MS))
    assert seen
