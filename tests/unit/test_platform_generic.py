"""The generic and Superinterface adapters, and dispatch on ``platform``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from session_tracker.platforms import PayloadInvalid, UnknownPlatform, adapters, parse_session_data

BASE = {
    "platform": "generic",
    "student_id": "emma_smith",
    "call_id": "conv-1",
    "started_at": "2026-01-17T14:30:00Z",
    "ended_at": "2026-01-17T14:45:00Z",
    "transcript": "AI: Hi Emma!\nUser: Hello there",
}


def test_every_platform_module_is_registered() -> None:
    assert set(adapters()) == {"vapi", "superinterface", "generic", "retell", "elevenlabs"}


def test_generic_string_transcript() -> None:
    event = parse_session_data(BASE)
    assert (event.platform, event.kind, event.student_id, event.call_id) == (
        "generic",
        "report",
        "emma_smith",
        "conv-1",
    )
    assert event.transcript == BASE["transcript"]
    assert (event.word_count, event.call_duration) == (4, 900.0)
    assert event.started_at == datetime(2026, 1, 17, 14, 30, tzinfo=UTC)


def test_generic_turns_become_labelled_lines_with_normalized_roles() -> None:
    body = BASE | {
        "transcript": [
            {"role": "tutor", "text": "¿Listo? 準備はいい？", "time": "2026-01-17T14:30:01Z"},  # noqa: RUF001
            {"role": "Student", "text": "Sí 👍"},
            {"role": "system", "text": "note"},
        ]
    }
    event = parse_session_data(body)
    assert event.transcript == "AI: ¿Listo? 準備はいい？\nUser: Sí 👍\nSystem: note"  # noqa: RUF001
    assert [t.role for t in event.turns] == ["assistant", "user", "system"]
    assert event.word_count == 4  # spoken turns only


def test_generic_metadata_and_extras_are_kept() -> None:
    event = parse_session_data(BASE | {"metadata": {"room": "b"}, "cost": 0.5, "ended_reason": "done"})
    assert event.details == {"metadata": {"room": "b"}}
    assert (event.cost, event.ended_reason) == (0.5, "done")


def test_same_body_twice_is_the_same_delivery_and_a_client_delivery_id_wins() -> None:
    assert parse_session_data(BASE).delivery_id == parse_session_data(dict(BASE)).delivery_id
    assert parse_session_data(BASE | {"transcript": "x"}).delivery_id != parse_session_data(BASE).delivery_id
    assert parse_session_data(BASE | {"delivery_id": "d-1"}).delivery_id == "generic:d-1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"started_at": None}, "started_at"),
        ({"ended_at": "not a time"}, "ended_at"),
        ({"ended_at": "2026-01-17T14:00:00Z"}, "ended_at"),
        ({"student_id": "has space"}, "student_id"),
        ({"call_id": "a#b"}, "call_id"),
        ({"transcript": [{"role": "user"}]}, "transcript"),
        ({"cost": -1}, "cost"),
    ],
)
def test_generic_schema_violations_name_the_field(change: dict, field: str) -> None:
    body = {k: v for k, v in (BASE | change).items() if v is not None}
    with pytest.raises(PayloadInvalid) as caught:
        parse_session_data(body)
    assert caught.value.field is not None and caught.value.field.startswith(field)


@pytest.mark.parametrize("platform", ["zoom", 3, None])
def test_unknown_platform_is_422_naming_platform(platform: object) -> None:
    with pytest.raises(UnknownPlatform) as caught:
        parse_session_data(BASE | {"platform": platform})
    assert (caught.value.status, caught.value.field) == (422, "platform")


def test_missing_platform_is_422_naming_platform() -> None:
    with pytest.raises(PayloadInvalid) as caught:
        parse_session_data({k: v for k, v in BASE.items() if k != "platform"})
    assert caught.value.field == "platform"


def test_vapi_messages_can_come_through_the_generic_endpoint() -> None:
    event = parse_session_data({"platform": "vapi", "message": {"type": "end-of-call-report", "call": {"id": "c1"}}})
    assert (event.platform, event.kind, event.call_id) == ("vapi", "report", "c1")


# ------------------------------------------------------------------ superinterface
THREAD = {
    "platform": "superinterface",
    "thread_id": "thr_123",
    "assistant_id": "asst_9",
    "student_id": "noah_p",
    "messages": [
        {"role": "user", "content": "Can we do spelling?", "createdAt": "2026-02-01T10:00:05Z"},
        {
            "id": "m0",
            "role": "assistant",
            "content": [{"type": "text", "text": {"value": "Sure! Spell 'because'.", "annotations": []}}],
            "createdAt": "2026-02-01T10:00:00Z",
            "runId": "run_1",
        },
        {"role": "assistant", "content": [{"type": "image_file"}], "createdAt": "2026-02-01T10:00:09Z"},
    ],
}


def test_superinterface_thread_messages_become_a_report_keyed_by_thread() -> None:
    event = parse_session_data(THREAD)
    assert (event.platform, event.call_id, event.student_id) == ("superinterface", "thr_123", "noah_p")
    assert event.transcript == "AI: Sure! Spell 'because'.\nUser: Can we do spelling?"  # ordered by createdAt
    assert event.started_at == datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
    assert event.ended_at == datetime(2026, 2, 1, 10, 0, 9, tzinfo=UTC)
    assert event.details == {"thread_id": "thr_123", "assistant_id": "asst_9"}
    assert event.cost is None and event.analysis is None


@pytest.mark.parametrize(
    ("change", "field"),
    [({"messages": []}, "messages"), ({"thread_id": None}, "thread_id"), ({"student_id": "a/b"}, "student_id")],
)
def test_superinterface_schema_violations_name_the_field(change: dict, field: str) -> None:
    body = {k: v for k, v in (THREAD | change).items() if v is not None}
    with pytest.raises(PayloadInvalid) as caught:
        parse_session_data(body)
    assert caught.value.field is not None and caught.value.field.startswith(field)


def test_superinterface_messages_without_times_need_started_at() -> None:
    body = THREAD | {"messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(PayloadInvalid, match="started_at"):
        parse_session_data(body)
    event = parse_session_data(body | {"started_at": "2026-02-01T10:00:00Z"})
    assert event.started_at == event.ended_at == datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
