"""Server-rendered session pages: plain HTML with inline CSS and a few lines of JS.

Pure functions from the read models (``SessionExport``, ``SessionPage``,
``SessionRefPage``) to HTML text; every value from storage goes through
:func:`html.escape`. The CSS and JS live next to this module and are inlined, so a
page is one response that works the same in Lambda and in the local stack.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from html import escape
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

from session_tracker import callmeta
from session_tracker.length import activity_span, conversation_window
from session_tracker.models import ExportInteraction, SessionExport, iso, parse_iso
from session_tracker.reading import EARLIEST, LATEST, SessionRefPage

PALETTE = ("#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#dc2626")
TICK_STEPS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)
LANES = 4
_SPEAKERS = {
    "user": "Student",
    "customer": "Student",
    "bot": "Tutor",
    "assistant": "Tutor",
    "ai": "Tutor",
    "agent": "Tutor",
}


@cache
def _asset(name: str) -> str:
    return resources.files("session_tracker.ui").joinpath(name).read_text(encoding="utf-8")


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _seg(value: str) -> str:
    """A path segment for a link (ids are URL-safe already; this keeps it so)."""
    return quote(value, safe="")


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(value: datetime) -> str:
    return value.strftime("%H:%M:%S")


def _offset(seconds: float) -> str:
    sign = "-" if seconds < 0 else "+"
    seconds = abs(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}" if hours else f"{sign}{minutes}:{secs:02d}"


def _color(name: str) -> str:
    return PALETTE[int(hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest(), 16) % len(PALETTE)]


def _chips(values: list[str], cls: str = "chip") -> str:
    return "".join(f'<span class="{cls}">{_e(v)}</span>' for v in values)


def _status(status: str) -> str:
    return f'<span class="status status-{_e(status)}">{_e(status)}</span>'


def _cost(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"${value:.4f}".rstrip("0").rstrip(".") if value else "$0"
    return "—"


def layout(title: str, body: str, *, nonce: str, crumbs: list[tuple[str, str | None]] | None = None) -> str:
    """A whole page: header with breadcrumbs, the body, inline CSS and (nonce'd) JS."""
    trail = " <span class='sep'>/</span> ".join(
        f'<a href="{_e(href)}">{_e(label)}</a>' if href else f"<span>{_e(label)}</span>"
        for label, href in [("Sessions", "/ui"), *(crumbs or [])]
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{_e(title)} · tutor-session-tracker</title>
<style>{_asset("page.css")}</style>
</head>
<body>
<header class="top"><div class="wrap"><span class="brand">tutor-session-tracker</span><nav>{trail}</nav>
<a class="signout" href="/ui/logout">Sign out</a></div></header>
<main class="wrap">
{body}
</main>
<script nonce="{_e(nonce)}">{_asset("page.js")}</script>
</body>
</html>
"""


def not_found_page(what: str, *, nonce: str) -> str:
    body = f'<section class="card"><h1>Not found</h1><p class="empty">{_e(what)}</p></section>'
    return layout("Not found", body, nonce=nonce)


def signed_out_page() -> str:
    return """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signed out</title></head>
<body><p>Signed out. <a href="/ui">Sign in again</a>.</p></body></html>
"""


# ------------------------------------------------------------------------- index
def index_page(recent: SessionRefPage, *, nonce: str) -> str:
    """Find a student or a session; the sessions started recently across all students."""
    rows = "".join(
        f'<tr><td><a href="/ui/sessions/{_seg(r.session_id)}">{_e(r.session_id)}</a></td>'
        f'<td><a href="/ui/students/{_seg(r.student_id)}">{_e(r.student_id)}</a></td>'
        f"<td>{_e(_when(r.start_time))}</td></tr>"
        for r in recent.sessions
    )
    table = (
        f'<table class="list"><thead><tr><th>Session</th><th>Student</th><th>Started</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        if rows
        else '<p class="empty">No sessions started in this period.</p>'
    )
    query = {"from": iso(recent.start), "to": iso(recent.end), "cursor": recent.next_cursor or ""}
    more = f'<p class="pager"><a href="/ui?{_e(urlencode(query))}">Older →</a></p>' if recent.next_cursor else ""
    body = f"""
<section class="card find">
  <h1>Reading sessions</h1>
  <form method="get" action="/ui" class="row">
    <label>Student id <input name="student" required pattern="[A-Za-z0-9][A-Za-z0-9_.@+\\-]{{0,127}}"
      placeholder="emma_smith" autocomplete="off"></label>
    <button type="submit">Show sessions</button>
  </form>
  <form method="get" action="/ui" class="row">
    <label>Session id <input name="session" required placeholder="emma_smith_20260117_1430" autocomplete="off"></label>
    <button type="submit">Open session</button>
  </form>
</section>
<section class="card">
  <h2>Sessions started {_e(_when(recent.start))} to {_e(_when(recent.end))}</h2>
  {table}{more}
</section>"""
    return layout("Sessions", body, nonce=nonce)


# ----------------------------------------------------------------------- student
def _date_value(value: datetime | None) -> str:
    if value is None or value in (EARLIEST, LATEST):
        return ""
    return value.strftime("%Y-%m-%d")


# ----------------------------------------------------------------------- session
@dataclass(frozen=True)
class Turn:
    """One line of the conversation: who spoke, what, and when (if known)."""

    speaker: str
    text: str
    at: datetime | None = None


def conversation_turns(conversation: dict[str, Any] | None, *, start: datetime) -> list[Turn]:
    """Turns from ``conversation.turns``/``messages`` (with times) or else the transcript text."""
    if not conversation:
        return []
    messages = conversation.get("turns") or conversation.get("messages")
    turns: list[Turn] = []
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict):
                continue
            role = str(message.get("role") or "").lower()
            text = message.get("text") or message.get("message") or message.get("content")
            if role not in _SPEAKERS or not isinstance(text, str) or not text.strip():
                continue
            turns.append(Turn(_SPEAKERS[role], text.strip(), _message_time(message, start)))
    if turns:
        return turns
    transcript = conversation.get("transcript")
    if not isinstance(transcript, str):
        return []
    for line in transcript.splitlines():
        if not line.strip():
            continue
        match = re.match(r"^\s*([A-Za-z][\w .'-]{0,30}):\s?(.*)$", line)
        if match:
            who = match.group(1).strip()
            turns.append(Turn(_SPEAKERS.get(who.lower(), who), match.group(2).strip()))
        elif turns:
            last = turns[-1]
            turns[-1] = Turn(last.speaker, f"{last.text} {line.strip()}", last.at)
        else:
            turns.append(Turn("", line.strip()))
    return turns


def _message_time(message: dict[str, Any], start: datetime) -> datetime | None:
    raw = message.get("time")
    try:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return datetime.fromtimestamp(raw / 1000 if raw > 1e11 else raw, tz=UTC)
        if isinstance(raw, str):
            return parse_iso(raw)
        seconds = message.get("secondsFromStart")
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            return start + timedelta(seconds=float(seconds))
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _call_window(conversation: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """When the voice call ran (``started_at``/``ended_at`` merged from the platform)."""
    started, ended = conversation_window(conversation)
    return (started, ended) if started and ended and started <= ended else None


def _span(export: SessionExport, turns: list[Turn]) -> tuple[datetime, datetime]:
    """The timeline's axis: the session's activity span (:mod:`session_tracker.length`), at least a minute.

    Timed transcript turns are drawn too; they lie within the platform's call window.
    """
    start, end = activity_span(
        start_time=export.start_time,
        last_activity=export.last_activity,
        end_time=export.end_time,
        conversation=export.conversation,
        call_times=[*(c.timestamp for c in export.mcp_interactions), *(t.at for t in turns if t.at)],
    )
    return start, max(end, start + timedelta(seconds=60))


def _tick_positions(start: datetime, end: datetime) -> list[tuple[float, int]]:
    """(percent from the left, seconds from the start) of each axis tick: at most ~10."""
    total = (end - start).total_seconds()
    step = next((s for s in TICK_STEPS if total / s <= 10), TICK_STEPS[-1])
    return [(n * step / total * 100, n * step) for n in range(int(total // step) + 1)]


def _ticks(start: datetime, end: datetime) -> str:
    return "".join(
        f'<span class="tick" style="left:{left:.3f}%"><i></i>{_offset(seconds).lstrip("+")}</span>'
        for left, seconds in _tick_positions(start, end)
    )


def _gridlines(start: datetime, end: datetime) -> str:
    return "".join(f'<span class="grid" style="left:{left:.3f}%"></span>' for left, _ in _tick_positions(start, end))


FLIP_AT = 82.0
"""Markers right of this (percent) put their label on the left of the dot."""


def _provided(call: ExportInteraction) -> str:
    return ", ".join(call.data_provided) or ("error" if call.is_error else "no data")


def _label_span(x: float, call: ExportInteraction) -> tuple[float, float]:
    """Horizontal extent of a marker's label in percent of the axis (~1200 px wide)."""
    width = (max(len(call.function) * 7.2, len(_provided(call)) * 6.2) + 34) / 1200 * 100
    return (x - width, x + 1) if x > FLIP_AT else (x - 1, x + width)


def _lanes(spans: list[tuple[float, float]]) -> list[int]:
    """Spread labels over ``LANES`` rows so that labels in one row do not overlap."""
    taken: list[list[tuple[float, float]]] = [[] for _ in range(LANES)]
    lanes = []
    for low, high in spans:
        free = [i for i in range(LANES) if all(high <= a or low >= b for a, b in taken[i])]
        lane = free[0] if free else min(range(LANES), key=lambda i: len(taken[i]))
        taken[lane].append((low, high))
        lanes.append(lane)
    return lanes


def _call_title(call: ExportInteraction, offset: float) -> str:
    provided = ", ".join(call.data_provided) or "nothing listed"
    return f"{_offset(offset)} {call.function} — data: {provided}" + (" — ERROR" if call.is_error else "")


def _timeline(export: SessionExport, turns: list[Turn], start: datetime, end: datetime) -> str:
    total = (end - start).total_seconds()
    pos = [(c.timestamp - start).total_seconds() / total * 100 for c in export.mcp_interactions]
    lanes = _lanes([_label_span(x, c) for x, c in zip(pos, export.mcp_interactions, strict=True)])
    markers = []
    for index, (call, x, lane) in enumerate(zip(export.mcp_interactions, pos, lanes, strict=True)):
        offset = (call.timestamp - start).total_seconds()
        err = " error" if call.is_error else ""
        flip = " flip" if x > FLIP_AT else ""
        markers.append(
            f'<a class="marker{err}{flip}" href="#call-{index}" data-call="{index}" '
            f'style="left:{x:.3f}%;--lane:{lane};--c:{_color(call.function)}" title="{_e(_call_title(call, offset))}">'
            f'<span class="dot"></span><span class="label">{_e(call.function)}<small>{_e(_provided(call))}</small></span></a>'
        )
    speech = []
    for index, turn in enumerate(turns):
        if turn.at is None:
            continue
        x = (turn.at - start).total_seconds() / total * 100
        who = "student" if turn.speaker == "Student" else "tutor"
        speech.append(
            f'<a class="speech {who}" href="#turn-{index}" data-turn="{index}" style="left:{x:.3f}%" '
            f'title="{_e(_offset((turn.at - start).total_seconds()))} {_e(turn.speaker)}: {_e(turn.text[:140])}"></a>'
        )
    window = _call_window(export.conversation or {})
    call_bar = ""
    if window:
        left = (window[0] - start).total_seconds() / total * 100
        width = max((window[1] - window[0]).total_seconds() / total * 100, 0.5)
        length = _offset((window[1] - window[0]).total_seconds()).lstrip("+")
        call_bar = (
            f'<span class="call-bar" style="left:{left:.3f}%;width:{width:.3f}%" '
            f'title="voice call {_e(_clock(window[0]))} to {_e(_clock(window[1]))}">'
            f"voice call {_e(_clock(window[0]))} to {_e(_clock(window[1]))} ({_e(length)})</span>"
        )
    speech_lane = (
        f'<div class="lane-name">Conversation</div><div class="speech-lane">{call_bar}{"".join(speech)}</div>'
        if speech or call_bar
        else ""
    )
    return f"""
<section class="card timeline" aria-label="Timeline">
  <div class="timeline-head"><h2>Timeline</h2>
  <span class="muted">{_e(_when(start))} → {_e(_clock(end))} · {len(export.mcp_interactions)} MCP calls</span></div>
  <div class="lane-name">MCP calls</div>
  <div class="axis-area" style="--lanes:{max(lanes, default=0) + 1}">{_gridlines(start, end)}{"".join(markers)}</div>
  {speech_lane}
  <div class="axis">{_ticks(start, end)}</div>
</section>"""


def _call_card(index: int, call: ExportInteraction, start: datetime) -> str:
    offset = (call.timestamp - start).total_seconds()
    args = json.dumps(call.arguments, indent=2, ensure_ascii=False, sort_keys=True)
    facts = [
        f"{call.duration_ms:g} ms" if call.duration_ms else None,
        f"{call.response_size:,} B" if call.response_size else None,
    ]
    provided = (
        _chips(call.data_provided, "chip data") if call.data_provided else '<span class="muted">no data listed</span>'
    )
    return f"""
<li class="call{" error" if call.is_error else ""}" id="call-{index}" data-call="{index}" style="--c:{_color(call.function)}">
  <div class="call-head"><span class="t">{_e(_offset(offset))}</span><span class="fn">{_e(call.function)}</span>
  {'<span class="badge err">error</span>' if call.is_error else ""}
  <span class="muted right">{_e(_clock(call.timestamp))}{"".join(f" · {_e(f)}" for f in facts if f)}</span></div>
  <div class="provided">{provided}{_chips(call.subjects, "chip subject")}</div>
  {f"<details><summary>arguments</summary><pre>{_e(args)}</pre></details>" if call.arguments else ""}
</li>"""


def _turn_row(index: int, turn: Turn, start: datetime) -> str:
    who = "student" if turn.speaker == "Student" else "tutor"
    when = (
        f'<span class="t">{_e(_offset((turn.at - start).total_seconds()))}</span>'
        if turn.at
        else '<span class="t"></span>'
    )
    return (
        f'<li class="turn {who}" id="turn-{index}" data-turn="{index}">{when}'
        f'<span class="who">{_e(turn.speaker)}</span><p>{_e(turn.text)}</p></li>'
    )


def _analysis(export: SessionExport) -> str:
    analysis = export.analysis or {}
    parts = [
        (label, analysis.get(key))
        for key, label in (
            ("session_summary", "Summary"),
            ("progress_update", "Progress"),
            ("learning_insights", "Learning insights"),
        )
    ]
    platform = (export.conversation or {}).get("platform_analysis")
    if isinstance(platform, dict) and platform.get("summary"):
        parts.append((f"{export.platform or 'platform'} call summary", platform["summary"]))
    blocks = "".join(
        f"<div><h3>{_e(label)}</h3>{_text_block(value)}</div>" for label, value in parts if value not in (None, "")
    )
    if not any(analysis.get(k) for k in ("session_summary", "progress_update", "learning_insights")):
        status = analysis.get("status") if isinstance(analysis.get("status"), str) else None
        why = analysis.get("error") or analysis.get("reason")
        command = f"<code>session-tracker analyze {_e(export.session_id)}</code>"
        if status == "failed":
            blocks += f'<p class="empty">Analysis failed: {_e(str(why or "unknown error"))}. Retry with {command}.</p>'
        elif status == "skipped":
            blocks += f'<p class="empty">Analysis skipped: {_e(str(why or ""))}. Request it with {command}.</p>'
        else:
            blocks += f'<p class="empty">Not analysed yet. Run {command} to request it.</p>'
    meta = " · ".join(_e(v) for v in (analysis.get("model"), analysis.get("analyzed_at")) if isinstance(v, str) and v)
    return f"""
<section class="card analysis"><div class="timeline-head"><h2>Analysis</h2><span class="muted">{meta}</span></div>
<div class="analysis-grid">{blocks}</div></section>"""


def _text_block(value: Any) -> str:
    if isinstance(value, str):
        return "".join(f"<p>{_e(p)}</p>" for p in value.split("\n\n") if p.strip())
    if isinstance(value, list):
        return "<ul>" + "".join(f"<li>{_e(v)}</li>" for v in value) + "</ul>"
    return f"<pre>{_e(json.dumps(value, indent=2, ensure_ascii=False))}</pre>"


def session_page(export: SessionExport, *, nonce: str) -> str:
    """The session timeline: header facts, MCP calls on a time axis, transcript beside, analysis."""
    conversation = export.conversation or {}
    turns = conversation_turns(conversation, start=export.start_time)
    start, end = _span(export, turns)
    call_meta = export.platform_metadata or export.vapi_metadata or {}
    summary = export.session_summary
    facts = [
        ("Student", f'<a href="/ui/students/{_seg(export.student_id)}">{_e(export.student_id)}</a>'),
        ("Started", _e(_when(export.start_time))),
        ("Ended", _e(_when(export.end_time))),
        ("Length", _e(summary.duration_estimated)),
        ("Platform", _e(export.platform or "—")),
        ("Cost", _e(_cost(callmeta.session_cost_usd(export.platform_metadata, export.vapi_metadata)))),
        ("Ended reason", _e(call_meta.get("ended_reason") or "—")),
        ("Matched by", _e(export.matching.get("strategy", "none"))),
        ("Data requests", str(summary.data_requests)),
    ]
    fact_html = "".join(f"<div><dt>{label}</dt><dd>{value}</dd></div>" for label, value in facts)
    calls = "".join(_call_card(i, c, start) for i, c in enumerate(export.mcp_interactions))
    transcript = "".join(_turn_row(i, t, start) for i, t in enumerate(turns))
    words = conversation.get("word_count")
    timed = "" if any(t.at for t in turns) else " untimed"
    body = f"""
<section class="card head">
  <div class="title-row"><h1>{_e(export.session_id)}</h1>{_status(export.status)}</div>
  <dl class="facts">{fact_html}</dl>
  <div class="subjects">{_chips(summary.subjects_accessed, "chip subject")}</div>
</section>
{_timeline(export, turns, start, end)}
<div class="columns">
  <section class="card"><h2>MCP calls <span class="muted">({len(export.mcp_interactions)})</span></h2>
    {f'<ol class="calls">{calls}</ol>' if calls else '<p class="empty">No MCP calls were logged.</p>'}</section>
  <section class="card"><h2>Transcript {f'<span class="muted">({_e(words)} words)</span>' if words else ""}</h2>
    {f'<ol class="transcript{timed}">{transcript}</ol>' if transcript else '<p class="empty">No transcript (no platform data merged yet).</p>'}</section>
</div>
{_analysis(export)}"""
    return layout(
        export.session_id,
        body,
        nonce=nonce,
        crumbs=[(export.student_id, f"/ui/students/{_seg(export.student_id)}"), (export.session_id, None)],
    )
