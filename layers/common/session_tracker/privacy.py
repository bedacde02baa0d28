"""Redaction before storage (CONTRACT v2, "Student data rights"; ``privacy:`` in the config).

Applied once, at ingestion, to everything free-form that arrives: tool-call arguments
(``POST /interactions``) and, for platform data, the transcript, the turns, the
platform's own analysis and its metadata. What is stored is the redacted text, so
exports, pages, session files, the analysis prompt and logs only ever see that.

Built-in detectors:

- ``email``: ``local@domain.tld``  ->  ``[EMAIL]``
- ``phone``: international numbers (``+44 20 7946 0958``, ``0044 ...``, ``+1 (555) 123-4567``,
  ``+919876543210``), national numbers with a trunk ``0`` (``020 7946 0958``,
  ``07700 900123``, ``01 23 45 67 89``) and North American ones (``(555) 123-4567``,
  ``555-123-4567``)  ->  ``[PHONE]``. Deliberately not: times (``14:30``), dates,
  prices and decimals, ids such as ``emma_smith`` or ``emma_smith_20260117_1430``, and
  runs of small numbers (``12 15 18 21 24``), which a maths lesson is full of. A bare
  run of digits counts only with a ``+``/``00``/``0`` prefix (an order number is not a phone).
- ``redact_patterns``: each match  ->  ``[REDACTED]``.

Identifiers are not redacted (they are keys: the student id, session id, call id, the
caller's phone number used by ``phone_map``), and neither is an argument whose value is
the interaction's own student id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

EMAIL_MARK, PHONE_MARK, PATTERN_MARK = "[EMAIL]", "[PHONE]", "[REDACTED]"

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
)
# A candidate: optional +, digits with single spaces/dots/dashes/brackets between them.
_PHONE_CANDIDATE = re.compile(
    r"(?<![\w$€£¥.,:/@+#%-])(?:\+|\()?\d(?:[ \u00a0.\-]?\(?\d\)?){6,18}(?![\w$€£¥%@/:-]|[.,]\d)"
)
_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}\b|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}\b")
_NANP = re.compile(r"(?:1[ .\-]?)?(?:\([2-9]\d{2}\)|[2-9]\d{2})[ .\-]?\d{3}[ .\-]\d{4}")
_DOUBLE_SEPARATOR = re.compile(r"[ \u00a0.\-]{2,}")


def is_phone(candidate: str) -> bool:
    """Whether a digit run found in text is a phone number (see the module docstring)."""
    text = candidate.strip()
    digits = sum(ch.isdigit() for ch in text)
    if _DOUBLE_SEPARATOR.search(text.replace(") ", ")").replace(" (", "(")) or _DATE.match(text):
        return False
    if text.startswith("+"):
        return 8 <= digits <= 15
    if text.startswith("00"):
        return 10 <= digits <= 17
    if not 10 <= digits <= 11:
        return False
    if text.startswith("0"):
        return True
    return bool(_NANP.fullmatch(text))


class Redactor:
    """The configured detectors; ``Redactor()`` (nothing enabled) leaves text unchanged."""

    def __init__(
        self, detectors: Iterable[str] = (), patterns: Iterable[str] = (), *, store_arguments: bool = True
    ) -> None:
        self.detectors = frozenset(detectors)
        unknown = self.detectors - {"email", "phone"}
        if unknown:
            raise ValueError(f"unknown detectors: {sorted(unknown)}")
        self.patterns = [re.compile(p) for p in patterns]
        self.store_arguments = store_arguments

    @classmethod
    def from_config(cls, privacy: Any) -> Redactor:
        """From the ``privacy:`` section (:class:`session_tracker.config.PrivacyConfig`)."""
        return cls(privacy.redact, privacy.redact_patterns, store_arguments=privacy.store_arguments)

    @property
    def active(self) -> bool:
        return bool(self.detectors or self.patterns)

    def text(self, value: str) -> str:
        """``value`` with every match replaced by its mark."""
        if not value:
            return value
        if "email" in self.detectors and "@" in value:
            value = _EMAIL.sub(EMAIL_MARK, value)
        if "phone" in self.detectors:
            value = _PHONE_CANDIDATE.sub(lambda m: PHONE_MARK if is_phone(m.group(0)) else m.group(0), value)
        for pattern in self.patterns:
            value = pattern.sub(PATTERN_MARK, value)
        return value

    def value(self, value: Any) -> Any:
        """Every string inside ``value`` (dicts, lists, pydantic models) redacted; keys kept."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        from pydantic import BaseModel

        if isinstance(value, BaseModel):
            return value.model_copy(update={k: self.value(getattr(value, k)) for k in type(value).model_fields})
        return value

    def arguments(self, arguments: Mapping[str, Any] | None, *, student_id: str | None = None) -> dict[str, Any]:
        """Tool-call arguments as stored: names kept; values redacted, or dropped (``store_arguments: false``)."""
        if not arguments:
            return dict(arguments or {})
        if not self.store_arguments:
            return {name: None for name in arguments}
        if not self.active:
            return dict(arguments)
        return {k: v if student_id is not None and v == student_id else self.value(v) for k, v in arguments.items()}


PLATFORM_IDENTIFIERS = frozenset(
    {
        "platform",
        "kind",
        "message_type",
        "delivery_id",
        "call_id",
        "session_id",
        "student_id",
        "student_id_source",
        "phone_number",
        "tool_student_ids",
        "started_at",
        "ended_at",
        "event_time",
        "call_duration",
        "word_count",
        "cost",
    }
)
"""Fields of a platform event that are identifiers or numbers, never free text."""


def redact_event(event: Any, redactor: Redactor) -> Any:
    """A platform event with its free text (transcript, turns, analysis, metadata) redacted.

    Every field not in :data:`PLATFORM_IDENTIFIERS` is redacted, so a field an adapter adds
    later is covered without a change here. The word count is recounted from the redacted text.
    """
    if not redactor.active:
        return event
    from session_tracker.platforms.base import word_count

    fields = type(event).model_fields
    update = {name: redactor.value(getattr(event, name)) for name in fields if name not in PLATFORM_IDENTIFIERS}
    redacted = event.model_copy(update=update)
    if (redacted.transcript or redacted.turns) and "word_count" in fields:
        redacted = redacted.model_copy(update={"word_count": word_count(redacted.transcript, redacted.turns)})
    return redacted


__all__ = ["EMAIL_MARK", "PATTERN_MARK", "PHONE_MARK", "Redactor", "is_phone", "redact_event"]
