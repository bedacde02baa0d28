"""Redaction before storage: the detectors, arguments, platform events, the config."""

from __future__ import annotations

import pytest

from session_tracker.config import ConfigError, parse_config
from session_tracker.models import InteractionIn
from session_tracker.platforms.base import PlatformEvent, Turn
from session_tracker.privacy import Redactor, redact_event
from session_tracker.sessions import to_record

REDACT = Redactor(["email", "phone"])

PHONES = [
    "+44 20 7946 0958",
    "+1 (555) 123-4567",
    "(555) 123-4567",
    "555-123-4567",
    "555.123.4567",
    "020 7946 0958",
    "07700 900123",
    "07700900123",
    "+49 30 1234567",
    "+33 1 23 45 67 89",
    "01 23 45 67 89",
    "+61 2 9876 5432",
    "0044 20 7946 0958",
    "+919876543210",
]
NOT_PHONES = [
    "14:30",
    "at 14:30 on 2026-01-17",
    "2026-01-17T14:30:05Z",
    "2026-01-17 14:30:05",
    "17.01.2026",
    "$12.50",
    "€1,250.00",
    "1,234,567",
    "score 97.5%",
    "3.14159265358",
    "1/2 + 1/3 = 5/6",
    "12 15 18 21 24",
    "1 2 3 4 5 6 7 8 9 10",
    "100 200 3000",
    "emma_smith",
    "emma_smith_20260117_1430",
    "call-7f3a",
    "order 4829104823",
    "version 1.2.3.4567890",
]


@pytest.mark.parametrize("phone", PHONES)
def test_international_and_national_phone_numbers_become_phone(phone) -> None:
    assert REDACT.text(f"call me on {phone} please") == "call me on [PHONE] please"


@pytest.mark.parametrize("text", NOT_PHONES)
def test_times_dates_prices_ids_and_number_runs_are_left_alone(text) -> None:
    assert REDACT.text(text) == text


@pytest.mark.parametrize("email", ["emma.smith@example.com", "parent+school@mail.co.uk", "a.b@sub.domain.org"])
def test_email_addresses_become_email(email) -> None:
    assert REDACT.text(f"write to {email}.") == "write to [EMAIL]."


@pytest.mark.parametrize("text", ["emma_smith", "@mention", "a@b", "user@localhost"])
def test_things_that_are_not_email_addresses_are_left_alone(text) -> None:
    assert REDACT.text(text) == text


def test_extra_patterns_become_redacted_and_no_detectors_change_nothing() -> None:
    assert Redactor([], [r"\bSSN-\d{3}\b"]).text("id SSN-123, mail a@b.co") == "id [REDACTED], mail a@b.co"
    assert Redactor().text("mail a@b.co, +44 20 7946 0958") == "mail a@b.co, +44 20 7946 0958"


def test_arguments_keep_their_names_and_the_student_id_and_lose_contact_details() -> None:
    args = {"student_id": "emma_smith", "note": {"parent": ["mum@example.com", "+44 20 7946 0958"]}, "n": 3}
    assert REDACT.arguments(args, student_id="emma_smith") == {
        "student_id": "emma_smith",
        "note": {"parent": ["[EMAIL]", "[PHONE]"]},
        "n": 3,
    }


def test_store_arguments_false_keeps_names_and_drops_values() -> None:
    redactor = Redactor(["email"], store_arguments=False)
    assert redactor.arguments({"student_id": "emma", "answer": "5/6"}, student_id="emma") == {
        "student_id": None,
        "answer": None,
    }


def test_a_logged_call_is_stored_redacted() -> None:
    from datetime import UTC, datetime

    item = InteractionIn(student_id="emma_smith", function="save", arguments={"email": "mum@example.com"})
    record = to_record(item, now=datetime(2026, 1, 17, tzinfo=UTC), new_id=lambda: "i1", redactor=REDACT)
    assert record.arguments == {"email": "[EMAIL]"}


def test_a_platform_event_loses_contact_details_in_text_turns_and_metadata_but_keeps_ids() -> None:
    event = PlatformEvent(
        platform="vapi",
        kind="report",
        message_type="end-of-call-report",
        delivery_id="d1",
        call_id="call-1",
        student_id="emma_smith",
        phone_number="+44 20 7946 0958",
        transcript="User: my email is mum@example.com and my phone is +44 20 7946 0958",
        turns=[Turn(role="user", text="my phone is +44 20 7946 0958")],
        analysis={"summary": "shared mum@example.com"},
        details={"recording_note": "call back on 020 7946 0958"},
        word_count=99,
    )
    redacted = redact_event(event, REDACT)
    assert redacted.transcript == "User: my email is [EMAIL] and my phone is [PHONE]"
    assert redacted.turns[0].text == "my phone is [PHONE]"
    assert redacted.analysis == {"summary": "shared [EMAIL]"}
    assert redacted.details == {"recording_note": "call back on [PHONE]"}
    assert redacted.word_count == 4, "word counts are of the stored (redacted) text"
    assert (redacted.call_id, redacted.student_id, redacted.phone_number) == (
        "call-1",
        "emma_smith",
        event.phone_number,
    )


def test_the_privacy_section_is_validated_naming_the_key() -> None:
    config = parse_config("privacy:\n  redact: [email]\n  redact_patterns: ['\\\\d{9}']\n  store_arguments: false\n")
    assert config.privacy.redact == ["email"] and not config.privacy.store_arguments
    assert parse_config("").privacy.redact == ["email", "phone"]
    with pytest.raises(ConfigError, match=r"privacy\.redact"):
        parse_config("privacy:\n  redact: [postcode]\n")
    with pytest.raises(ConfigError, match=r"privacy\.redact_patterns"):
        parse_config("privacy:\n  redact_patterns: ['(']\n")
