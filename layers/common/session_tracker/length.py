"""How long a session lasted: one definition, computed here and shown everywhere.

A session's length is the time from its **first to its last activity**, where activity
is a logged MCP call or the voice conversation (the platform's call start and end).
It is not the sum of the platform's call durations: two overlapping reports merged into
one session (a reconnect, a second device) would otherwise count the shared minutes
twice (a 6-minute lesson shown as "8 minutes", and a timeline running past any data).

Every reader goes through :func:`activity_span`: the export's
``session_summary.duration_estimated`` and ``duration_seconds``, the idle closer's summary,
the session page and its timeline, list lines (``SessionListItem.length_seconds``), the
student page's charts and the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from session_tracker.models import parse_iso


def conversation_window(conversation: Mapping[str, Any] | None) -> tuple[datetime | None, datetime | None]:
    """The voice call's ``started_at``/``ended_at`` as merged from the platform (either may be missing)."""
    if not conversation:
        return None, None
    bounds: list[datetime | None] = []
    for key in ("started_at", "ended_at"):
        raw = conversation.get(key)
        try:
            bounds.append(parse_iso(raw) if isinstance(raw, str) and raw else None)
        except (ValueError, OverflowError):
            bounds.append(None)
    return bounds[0], bounds[1]


def activity_span(
    *,
    start_time: datetime,
    last_activity: datetime | None = None,
    end_time: datetime | None = None,
    conversation: Mapping[str, Any] | None = None,
    call_times: Iterable[datetime] = (),
) -> tuple[datetime, datetime]:
    """First and last activity of a session (calls and conversation).

    ``end_time`` counts as activity: it is the last call of an idle-closed session or the
    end of the platform call of a completed one (never later than either).
    """
    started, ended = conversation_window(conversation)
    firsts = [start_time, *call_times]
    if started is not None:
        firsts.append(started)
    first = min(firsts)
    lasts = [first, *firsts, *(t for t in (last_activity, end_time, ended) if t is not None)]
    return first, max(lasts)


def session_length(
    *,
    start_time: datetime,
    last_activity: datetime | None = None,
    end_time: datetime | None = None,
    conversation: Mapping[str, Any] | None = None,
    call_times: Iterable[datetime] = (),
) -> timedelta:
    """``last activity - first activity`` (see :func:`activity_span`)."""
    first, last = activity_span(
        start_time=start_time,
        last_activity=last_activity,
        end_time=end_time,
        conversation=conversation,
        call_times=call_times,
    )
    return last - first


def format_duration(span: timedelta) -> str:
    """Human estimate of a session's length: ``"15 minutes"``, ``"under a minute"``."""
    minutes = round(span.total_seconds() / 60)
    if span.total_seconds() < 60:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def format_clock(span: timedelta | float) -> str:
    """``m:ss`` or ``h:mm:ss`` (list columns, the timeline axis)."""
    seconds = abs(round(span.total_seconds() if isinstance(span, timedelta) else span))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
