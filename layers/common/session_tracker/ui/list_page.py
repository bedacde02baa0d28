"""The session list (``/ui``) with its filter form, the review queue (``/ui/review``) and the live view.

Pure functions from :mod:`session_tracker.listing` models to HTML; every value from storage
is escaped. Filters are ordinary form controls (GET), so every filtered view is a link.
"""

from __future__ import annotations

from urllib.parse import urlencode

from session_tracker.length import format_clock
from session_tracker.listing import STATUSES, Candidate, ListFilters, ListPage
from session_tracker.live import LiveView
from session_tracker.models import SessionMeta
from session_tracker.reading import SessionListItem, session_cost
from session_tracker.ui.pages import _cost, _date_value, _e, _seg, _status, _when, layout
from session_tracker.ui.student_page import session_table

PLATFORMS = ("vapi", "retell", "elevenlabs", "superinterface", "generic")


def tabs(current: str, *, queue: int | None = None) -> str:
    """The three views of every session: the list, live, the review queue."""
    links = [("list", "/ui", "All sessions"), ("live", "/ui/live", "Live"), ("review", "/ui/review", "Review queue")]
    out = []
    for key, href, label in links:
        count = f' <span class="count">{queue}</span>' if key == "review" and queue else ""
        cls = ' class="on" aria-current="page"' if key == current else ""
        out.append(f'<a href="{href}"{cls}>{_e(label)}{count}</a>')
    return f'<nav class="tabs" aria-label="Views">{"".join(out)}</nav>'


def find_forms() -> str:
    return """
  <form method="get" action="/ui" class="row" role="search" aria-label="Find a student">
    <label>Student id <input name="find" required pattern="[A-Za-z0-9][A-Za-z0-9_.@+\\-]{0,127}"
      placeholder="emma_smith" autocomplete="off"></label>
    <button type="submit">Open student</button>
  </form>
  <form method="get" action="/ui" class="row" aria-label="Open a session">
    <label>Session id <input name="session" required placeholder="emma_smith_20260117_1430" autocomplete="off"></label>
    <button type="submit">Open session</button>
  </form>"""


def _option(value: str, label: str, selected: str | None) -> str:
    sel = " selected" if (selected or "") == value else ""
    return f'<option value="{_e(value)}"{sel}>{_e(label)}</option>'


def filter_form(filters: ListFilters, *, students: list[str]) -> str:
    statuses = "".join(
        _option(s, "unmatched (review queue)" if s == "unmatched" else s, filters.status) for s in STATUSES
    )
    platforms = "".join(_option(p, p, filters.platform) for p in PLATFORMS)
    known = "".join(f'<option value="{_e(s)}">' for s in students)
    clear = ' <a href="/ui">Clear filters</a>' if filters.active() or filters.start or filters.end else ""
    return f"""
<form method="get" action="/ui" class="filters" aria-label="Filter sessions">
  <label>Student <input name="student" list="known-students" value="{_e(filters.student or "")}" placeholder="any"
    pattern="[A-Za-z0-9][A-Za-z0-9_.@+\\-]{{0,127}}" autocomplete="off"></label>
  <datalist id="known-students">{known}</datalist>
  <label>Status <select name="status"><option value="">any</option>{statuses}</select></label>
  <label>Platform <select name="platform"><option value="">any</option>{platforms}</select></label>
  <label>Subject <input name="subject" value="{_e(filters.subject or "")}" placeholder="any" maxlength="200"></label>
  <label>Tool <input name="tool" value="{_e(filters.tool or "")}" placeholder="any" maxlength="200"></label>
  <label>From <input type="date" name="from" value="{_e(_date_value(filters.start))}"></label>
  <label>To <input type="date" name="to" value="{_e(_date_value(filters.end))}"></label>
  <button type="submit">Filter</button>{clear}
</form>"""


def filter_query(filters: ListFilters) -> dict[str, str]:
    """The filters as query parameters (for the next-page link)."""
    values = {
        "student": filters.student,
        "status": filters.status,
        "platform": filters.platform,
        "subject": filters.subject,
        "tool": filters.tool,
        "from": _date_value(filters.start),
        "to": _date_value(filters.end),
    }
    return {k: v for k, v in values.items() if v}


def list_page(page: ListPage, filters: ListFilters, *, nonce: str, queue: int | None = None) -> str:
    """Every session (newest first) or those matching the filters, paginated."""
    students = sorted({s.student_id for s in page.sessions})
    query = filter_query(filters)
    pager = ""
    if page.next_cursor:
        note = (
            f'<span class="muted">Looked at {page.examined} sessions, back to {_e(_when(page.searched_to))}; '
            "there may be more further back.</span> "
            if page.searched_to
            else ""
        )
        pager = f'<p class="pager">{note}<a href="/ui?{_e(urlencode({**query, "cursor": page.next_cursor}))}">Older sessions →</a></p>'
    what = "matching the filters" if filters.active() else "every session"
    body = f"""
<section class="card find">
  <div class="title-row"><h1>Sessions</h1>{tabs("list", queue=queue)}</div>
  <div class="row-wrap">{find_forms()}</div>
</section>
<section class="card">
  {filter_form(filters, students=students)}
</section>
<section class="card">
  <h2>Newest first <span class="muted">({_e(what)})</span></h2>
  {session_table(page.sessions, show_student=True, empty="No sessions match." if filters.active() else "No sessions in this range yet.")}
  {pager}
</section>"""
    return layout("Sessions", body, nonce=nonce)


# -------------------------------------------------------------------------- review
def _call_facts(item: SessionListItem) -> str:
    return (
        f"{_e(_when(item.start_time))} · {_e(format_clock(item.length_seconds))} · {_e(item.platform or '—')} · "
        f"{_e(_cost(item.cost))} · {_e(item.ended_reason or '—')}"
    )


def review_page(
    queue: ListPage,
    *,
    nonce: str,
    csrf: str,
    selected: SessionMeta | None = None,
    student: str | None = None,
    candidates: list[Candidate] | None = None,
    excerpt: str | None = None,
    done: str | None = None,
) -> str:
    """The unmatched review queue; a chosen entry shows the student's sessions near its call."""
    rows = []
    for item in queue.sessions:
        is_selected = selected is not None and selected.session_id == item.session_id
        pick = f"/ui/review?{_e(urlencode({'session': item.session_id}))}"
        rows.append(
            f'<li class="queue-item{" on" if is_selected else ""}"><a href="{pick}">{_e(item.session_id)}</a> '
            f'<span class="muted">{_call_facts(item)}</span></li>'
        )
    queue_html = (
        f'<ol class="queue">{"".join(rows)}</ol>'
        if rows
        else '<p class="empty">Nothing to review: every platform call found its session.</p>'
    )
    more = (
        f'<p class="pager"><a href="/ui/review?{_e(urlencode({"cursor": queue.next_cursor}))}">Older →</a></p>'
        if queue.next_cursor
        else ""
    )
    notice = f'<p class="notice" role="status">{done}</p>' if done else ""
    detail = _review_detail(selected, student=student, candidates=candidates, excerpt=excerpt, csrf=csrf)
    body = f"""
<section class="card">
  <div class="title-row"><h1>Review unmatched calls</h1>{tabs("review", queue=len(queue.sessions) or None)}</div>
  <p class="muted">Platform calls that matched no session (no student id, no session near the call).
  Pick one, enter the student it belongs to, and assign it to one of that student's sessions near the call
  (or let it become a session of its own).</p>{notice}
</section>
<div class="columns">
  <section class="card"><h2>Queue <span class="muted">(newest first)</span></h2>{queue_html}{more}</section>
  {detail}
</div>"""
    return layout("Review queue", body, nonce=nonce, crumbs=[("Review queue", None)])


def _assign_form(session_id: str, *, csrf: str, field: str, value: str, label: str) -> str:
    return (
        f'<form method="post" action="/ui/review/{_seg(session_id)}/assign" class="assign">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        f'<input type="hidden" name="{_e(field)}" value="{_e(value)}">'
        f'<button type="submit">{_e(label)}</button></form>'
    )


def _review_detail(
    selected: SessionMeta | None,
    *,
    student: str | None,
    candidates: list[Candidate] | None,
    excerpt: str | None,
    csrf: str,
) -> str:
    if selected is None:
        return '<section class="card"><p class="empty">Pick a call from the queue.</p></section>'
    cost, reason = session_cost(selected)
    facts = (
        f"<dl class='facts'><div><dt>Call</dt><dd>{_e(_when(selected.start_time))}</dd></div>"
        f"<div><dt>Platform</dt><dd>{_e(selected.platform or '—')}</dd></div>"
        f"<div><dt>Cost</dt><dd>{_e(_cost(cost))}</dd></div><div><dt>Ended</dt><dd>{_e(reason or '—')}</dd></div></dl>"
    )
    heard = f'<blockquote class="excerpt">{_e(excerpt)}</blockquote>' if excerpt else ""
    find = f"""
<form method="get" action="/ui/review" class="row" aria-label="Whose call is this">
  <input type="hidden" name="session" value="{_e(selected.session_id)}">
  <label>Student id <input name="student" required value="{_e(student or "")}" pattern="[A-Za-z0-9][A-Za-z0-9_.@+\\-]{{0,127}}" autocomplete="off"></label>
  <button type="submit">Show that student's sessions near the call</button>
</form>"""
    offered = ""
    if student and candidates is not None:
        items = []
        for c in candidates:
            where = "overlaps the call" if c.gap_seconds == 0 else f"{format_clock(c.gap_seconds)} from the call"
            mark = ' <span class="badge">nearest: assigning to the student picks this one</span>' if c.nearest else ""
            items.append(
                f'<li><a href="/ui/sessions/{_seg(c.session.session_id)}">{_e(c.session.session_id)}</a> '
                f'<span class="muted">{_e(where)} · {c.session.interaction_count} calls · {_status(c.session.status)}</span>{mark}'
                f"{_assign_form(selected.session_id, csrf=csrf, field='session_id', value=c.session.session_id, label='Assign to this session')}</li>"
            )
        listed = (
            f'<ol class="candidates">{"".join(items)}</ol>'
            if items
            else f'<p class="empty">{_e(student)} has no sessions within 12 hours of the call.</p>'
        )
        offered = f"""
<h3>Sessions of {_e(student)} near the call</h3>{listed}
<p>{_assign_form(selected.session_id, csrf=csrf, field="student_id", value=student, label=f"Assign to {student} (nearest session in the match window, else a new session)")}</p>"""
    return f"""
<section class="card review-detail" aria-label="Selected call">
  <h2>{_e(selected.session_id)}</h2>{facts}{heard}{find}{offered}
</section>"""


def excerpt_of(transcript: object, limit: int = 280) -> str | None:
    """The start of a transcript, to recognise whose call it is."""
    if not isinstance(transcript, str) or not transcript.strip():
        return None
    text = " ".join(transcript.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------- live
def live_fragment(view: LiveView) -> str:
    """The part of the live page that polling replaces (no "now"-relative text: an unchanged
    view renders the same bytes, so its ETag matches and the poll is a 304)."""
    active = session_table(view.active, show_student=True, empty="No session is running right now.")
    ended = session_table(view.ended, show_student=True, empty="None in the last 30 minutes.")
    return (
        f'<section class="card"><h2>Running now <span class="count live-count">{len(view.active)}</span></h2>{active}</section>'
        f'<section class="card"><h2>Ended in the last 30 minutes</h2>{ended}</section>'
    )


def live_page(view: LiveView, *, nonce: str, etag: str, interval_ms: int) -> str:
    """The live view: the fragment, refreshed in place by ``page.js`` while the page is visible."""
    body = f"""
<section class="card">
  <div class="title-row"><h1>Live</h1>{tabs("live")}
  <span class="live-state" id="live-state" role="status" aria-live="polite"><span class="dot"></span>
  <span class="text">Live updates need JavaScript: <a href="/ui/live">reload</a></span></span></div>
  <p class="muted">Sessions appear here as their first call arrives and update as calls and platform reports come in.</p>
</section>
<div id="live" data-src="/ui/live/data" data-etag="{_e(etag)}" data-interval="{interval_ms}">{live_fragment(view)}</div>"""
    return layout("Live", body, nonce=nonce, crumbs=[("Live", None)])
