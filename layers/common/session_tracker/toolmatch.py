"""Matching by tool calls: the calls a voice platform reports are the calls the MCP server logged.

Pure rule (no storage, no clock). A platform report lists the tool calls its assistant
made (:class:`~session_tracker.platforms.base.ToolCall`: name, arguments, time in the
call); the MCP server logged :class:`~session_tracker.models.Interaction` records (function,
arguments, timestamp). The rule, in order:

1. **Which reported calls count.** The platform's own tools (end the call, transfer,
   ElevenLabs ``system`` tools: ``builtin``) are dropped: no MCP server logs them.
2. **Agreement of one call with one logged interaction.**
   - *name*: equal after :func:`normalise_name` (case-folded, surrounding space removed,
     and a platform's namespace prefix ignored: ``mcp:server:get_lesson``,
     ``tutor.get_lesson`` and ``tutor__get_lesson`` are ``get_lesson``);
   - *arguments*: equal after :func:`normalise_arguments` (keys as sent; strings stripped
     and case-folded; numbers compared as numbers, and a number sent as a string, as
     Retell's dynamic variables and ElevenLabs' MCP parameters are, equals the number;
     ``null`` / empty-string values dropped; nested objects and lists compared the same
     way). A report whose arguments could not be parsed agrees with nothing;
   - *time*: the reported call's wall-clock time (the platform's own, else call start +
     offset) is within ``tolerance`` of the logged timestamp (default 90 s: clock skew
     between the platform and the MCP host, plus the platforms' coarse offsets; Retell's
     tool entries have no time and take the end of the utterance before them). A reported
     call with no time at all only has to fall inside the call (the read window).
3. **Counting when calls repeat.** Calls are paired one to one: each reported call takes
   the nearest-in-time unused interaction that agrees with it, so a tool the platform
   reports three times but the server logged once counts once (and the reverse).
4. **Enough.** A session is a candidate when its agreeing calls are at least
   ``min_fraction`` (default half, rounded up) of the counted reported calls, and either
   two or more agree or the one that agrees carries arguments (an argument-less
   ``get_time {}`` at the same minute is no evidence of whose call it was).
5. **Ties.** The candidate with the most agreeing calls wins only when it is strictly
   ahead of the runner-up; a tie (several students doing the same thing at the same
   time) picks nothing, and matching goes on with ``student_id`` / ``time_window``,
   ending in ``unmatched`` (the safe failure) rather than a guess.

The matched session's ``matching`` records ``agreeing_calls`` and ``reported_calls``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from session_tracker.models import Interaction, SessionMeta
from session_tracker.platforms.base import ToolCall

DEFAULT_TOLERANCE = timedelta(seconds=90)
_PREFIX = re.compile(r"^.*(?:::|:|/|\.|__)")


@dataclass(frozen=True)
class ToolMatchRules:
    """The rule's parameters (``session_tracking.tool_call_tolerance_seconds`` sets the tolerance)."""

    tolerance: timedelta = DEFAULT_TOLERANCE
    min_fraction: float = 0.5


@dataclass(frozen=True)
class ToolMatch:
    """The session the reported calls identify."""

    session: SessionMeta
    agreeing: int
    reported: int
    runner_up: int


def normalise_name(name: str) -> str:
    """A tool name without case, surrounding space or a namespace prefix."""
    return _PREFIX.sub("", name.strip()).strip().casefold()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(float(value)) else str(value)
    if isinstance(value, str):
        text = value.strip()
        number = _number(text) if text else None
        return number if number is not None else text.casefold()
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    return str(value)


def normalise_arguments(arguments: dict[str, Any] | None) -> str | None:
    """Canonical text of a call's arguments (``None``: unknown, agrees with nothing)."""
    if arguments is None:
        return None
    return json.dumps(_value(arguments), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def counted(calls: Sequence[ToolCall]) -> list[ToolCall]:
    """The reported calls an MCP server could have logged (the platform's own tools dropped)."""
    return [c for c in calls if not c.builtin and normalise_name(c.name)]


def _when(call: ToolCall, call_start: datetime | None) -> datetime | None:
    if call.time is not None:
        return call.time
    if call_start is not None and call.offset is not None:
        return call_start + timedelta(seconds=call.offset)
    return None


def agreeing_calls(
    reported: Sequence[ToolCall],
    logged: Sequence[Interaction],
    *,
    call_start: datetime | None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> tuple[int, int]:
    """``(agreeing, agreeing_with_arguments)``: reported calls paired one to one with logged ones."""
    keyed = [(normalise_name(i.function), normalise_arguments(i.arguments), i.timestamp) for i in logged]
    used: set[int] = set()
    agree = with_args = 0
    for call in counted(reported):
        name, args = normalise_name(call.name), normalise_arguments(call.arguments)
        if args is None:
            continue
        at = _when(call, call_start)
        best: tuple[float, int] | None = None
        for index, (lname, largs, ltime) in enumerate(keyed):
            if index in used or lname != name or largs != args:
                continue
            distance = abs((ltime - at).total_seconds()) if at is not None else 0.0
            if at is not None and distance > tolerance.total_seconds():
                continue
            if best is None or distance < best[0]:
                best = (distance, index)
        if best is not None:
            used.add(best[1])
            agree += 1
            with_args += args != "{}"
    return agree, with_args


def match_tool_calls(
    reported: Sequence[ToolCall],
    candidates: Sequence[tuple[SessionMeta, Sequence[Interaction]]],
    *,
    call_start: datetime | None,
    rules: ToolMatchRules = ToolMatchRules(),
) -> ToolMatch | None:
    """The one session whose logged calls are the reported calls, or ``None`` (see the module docstring)."""
    usable = counted(reported)
    if not usable:
        return None
    needed = max(1, math.ceil(rules.min_fraction * len(usable)))
    scored: list[tuple[int, SessionMeta]] = []
    for meta, logged in candidates:
        agree, with_args = agreeing_calls(usable, logged, call_start=call_start, tolerance=rules.tolerance)
        if agree >= needed and (agree >= 2 or with_args >= 1):
            scored.append((agree, meta))
        elif agree:
            scored.append((-agree, meta))  # some agreement, not enough: still blocks a weaker winner below
    if not scored:
        return None
    scored.sort(key=lambda t: abs(t[0]), reverse=True)
    best_count, best = scored[0]
    runner_up = abs(scored[1][0]) if len(scored) > 1 else 0
    if best_count <= 0 or best_count <= runner_up:
        return None
    return ToolMatch(session=best, agreeing=best_count, reported=len(usable), runner_up=runner_up)
