"""Superinterface (superinterface.ai): what it can really send, and how to get it here.

Superinterface has **no outbound webhooks** and no end-of-conversation event (checked
in its repository and docs, see ``docs/platforms.md``). What it does offer:

- its messages API, ``GET /api/cloud/messages?publicApiKey=&assistantId=&threadId=``
  (paginated), which returns a thread's messages; and
- ``REQUEST`` function handlers, which make Superinterface call a URL during a run.

So a small job (or the MCP server's wrap-up tool) pulls a finished thread's
messages and posts them here as ``{"platform": "superinterface", "thread_id": ...,
"assistant_id": ..., "student_id": ..., "messages": [...]}``. The messages are taken
as the messages API returns them (``role``, ``content`` as a string or as
OpenAI-style parts ``[{"type": "text", "text": {"value": ...}}]``, ``createdAt``).
The thread id is the conversation key (``call_id``). Start and end come from the
first and last message unless ``started_at``/``ended_at`` are given; there is no
cost, ended reason or platform analysis to report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from session_tracker.models import LazyModel, StudentId, UtcDatetime
from session_tracker.platforms.base import (
    LenientTime,
    PlatformAdapter,
    PlatformEvent,
    ToolCall,
    Turn,
    fingerprint,
    parse_arguments,
    parse_time,
    student_ids_of,
    turns_to_text,
)
from session_tracker.platforms.generic import CallId, SessionIdField, event_from, normalize_role


def _text(content: Any) -> str:
    """Plain text of a message's ``content`` (string, or OpenAI-style content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, dict):
                    text = text.get("value")
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(p for p in parts if p)
    return ""


class SuperinterfaceMessage(LazyModel):
    """One message as the messages API lists it (unknown fields ignored)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    role: Annotated[str, Field(min_length=1, max_length=64)]
    content: Any = ""
    created_at: LenientTime = Field(None, alias="createdAt")
    runSteps: list[Any] | None = None
    """The run's steps (OpenAI run-step objects): ``tool_calls`` steps list the functions it called."""


def _tool_calls(messages: list[SuperinterfaceMessage]) -> list[ToolCall]:
    """Function calls of the messages' run steps (``step_details.tool_calls[].function``)."""
    found: list[ToolCall] = []
    for message in messages:
        for step in message.runSteps or []:
            details = step.get("step_details") if isinstance(step, dict) else None
            calls = details.get("tool_calls") if isinstance(details, dict) else None
            for call in calls if isinstance(calls, list) else []:
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict) or not isinstance(step, dict):
                    continue
                name = function.get("name")
                if not isinstance(name, str) or not name.strip():
                    continue
                found.append(
                    ToolCall(
                        name=name,
                        arguments=parse_arguments(function.get("arguments")),
                        time=parse_time(step.get("created_at")),
                        tool_call_id=call.get("id") if isinstance(call.get("id"), str) else None,
                    )
                )
    return sorted(found, key=lambda c: (c.time is None, c.time.timestamp() if c.time else 0.0))


MAX_PAGES = 100


def session_data_from_pages(
    pages: Sequence[Mapping[str, Any]], *, thread_id: str, assistant_id: str | None, student_id: str | None
) -> dict[str, Any]:
    """The ``POST /webhook/session-data`` body for a thread, from its messages API pages
    (``{"data": [message, ...], "hasNextPage", "lastId"}``, newest first)."""
    messages = [m for page in pages for m in (page.get("data") or []) if isinstance(m, dict)]
    body: dict[str, Any] = {
        "platform": "superinterface",
        "thread_id": thread_id,
        "assistant_id": assistant_id,
        "student_id": student_id,
        "messages": messages,
    }
    ids = [m.get("id") for m in messages if isinstance(m.get("id"), str)]
    if ids:  # the same thread pulled again with nothing new is the same delivery
        body["delivery_id"] = f"pull-{fingerprint({'thread': thread_id, 'ids': sorted(ids)})}"
    return {k: v for k, v in body.items() if v is not None}


class SuperinterfaceSessionData(LazyModel):
    """``POST /webhook/session-data`` with ``platform: superinterface``."""

    model_config = ConfigDict(extra="ignore")

    platform: Literal["superinterface"] = "superinterface"
    thread_id: CallId
    assistant_id: str | None = None
    student_id: StudentId | None = None
    session_id: SessionIdField | None = None
    messages: list[SuperinterfaceMessage] = Field(min_length=1)
    started_at: UtcDatetime | None = None
    ended_at: UtcDatetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    delivery_id: CallId | None = None

    @model_validator(mode="after")
    def _times_known(self) -> SuperinterfaceSessionData:
        times = [m.created_at for m in self.messages if m.created_at]
        if self.started_at is None and not times:
            raise ValueError("started_at is required when the messages carry no createdAt")
        return self


class _AsGeneric(LazyModel):
    """The fields :func:`event_from` reads."""

    student_id: str | None
    session_id: str | None
    call_id: str
    started_at: datetime
    ended_at: datetime
    metadata: dict[str, Any]
    cost: None = None
    ended_reason: None = None
    analysis: None = None
    delivery_id: str | None


class SuperinterfaceAdapter(PlatformAdapter):
    """A Superinterface thread's messages, pulled from its API and posted here."""

    name = "superinterface"

    def _parse(self, body: Mapping[str, Any]) -> PlatformEvent:
        data = SuperinterfaceSessionData.model_validate(body)
        ordered = sorted(
            data.messages, key=lambda m: (m.created_at is None, m.created_at.timestamp() if m.created_at else 0.0)
        )
        turns = [
            Turn(role=normalize_role(m.role), text=_text(m.content), time=m.created_at)
            for m in ordered
            if _text(m.content).strip()
        ]
        times = [m.created_at for m in data.messages if m.created_at]
        start = data.started_at or min(times)
        end = data.ended_at or (max(times) if times else start)
        generic = _AsGeneric(
            student_id=data.student_id,
            session_id=data.session_id,
            call_id=data.thread_id,
            started_at=start,
            ended_at=max(end, start),
            metadata=data.metadata,
            delivery_id=data.delivery_id,
        )
        details = {"thread_id": data.thread_id, "assistant_id": data.assistant_id}
        event = event_from(
            generic,
            platform=self.name,
            turns=turns,
            transcript=turns_to_text(turns),
            raw=body,
            details={k: v for k, v in details.items() if v},
        )
        tool_calls = _tool_calls(data.messages)
        return event.model_copy(update={"tool_calls": tool_calls, "tool_student_ids": student_ids_of(tool_calls)})


adapter = SuperinterfaceAdapter()
