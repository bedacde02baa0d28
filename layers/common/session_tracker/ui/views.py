"""The ``/ui`` responses: read through :mod:`session_tracker.reading`, render with :mod:`.pages`.

Every page is ``text/html`` with a strict Content-Security-Policy (scripts only with
the per-response nonce, no external loads), ``no-store`` caching and no referrer, so
neither the token nor session data leaks into caches or other sites.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from pydantic import ValidationError

from session_tracker import audit, reading
from session_tracker.blobs import BlobStore
from session_tracker.errors import DomainError, Unprocessable
from session_tracker.http import header
from session_tracker.listing import STATUSES, ListFilters, ListingReader, list_sessions, review_candidates, review_queue
from session_tracker.live import LiveReader, live_sessions
from session_tracker.models import ID_PATTERN, SessionMeta
from session_tracker.progress import StudentHistoryReader, student_view
from session_tracker.review import AssignRequest, AssignResult
from session_tracker.sessions import read_export
from session_tracker.store.ports import SessionReader
from session_tracker.ui import list_page, pages, student_page
from session_tracker.ui.auth import COOKIE, is_https, read_cookie

HTML = "text/html; charset=utf-8"

Seen = Callable[[list[tuple[audit.AuditAction, str, str | None]]], None]
"""The access-audit hook of a page: the ``(action, student_id, session_id)`` it showed, one
``list_sessions`` per distinct student of a list (the API appends them without waiting long)."""


def _shown(seen: Seen | None, students: Iterable[str | None]) -> None:
    if seen is not None and (distinct := audit.distinct(students)):
        seen([("list_sessions", s, None) for s in distinct])


class FormExpired(DomainError):
    """A signed-in browser's form POST without this sign-in's form token (cross-site or stale)."""

    status = 403
    title = "Forbidden"


def _headers(nonce: str | None = None) -> dict[str, str]:
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; script-src {script}; img-src data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        ),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


def _page(render: Any, status: int = 200) -> Response[str]:
    nonce = secrets.token_urlsafe(16)
    return Response(status, HTML, render(nonce), headers=_headers(nonce))


def redirect(location: str) -> Response[str]:
    return Response(303, HTML, "", headers={**_headers(), "Location": location})


def sign_out(event: dict[str, Any]) -> Response[str]:
    """Forget the cookie."""
    cookie = Cookie(
        name=COOKIE,
        value="",
        path="/ui",
        secure=is_https(event),
        http_only=True,
        max_age=0,
        same_site=SameSite.STRICT_MODE,
    )
    return Response(200, HTML, pages.signed_out_page(), headers=_headers(), cookies=[cookie])


def _clean(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def list_filters(
    *,
    student: str | None = None,
    status: str | None = None,
    platform: str | None = None,
    subject: str | None = None,
    tool: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> ListFilters:
    """The list's form values as filters: empty controls mean "any"; a bad value is a 422 naming it."""
    student, status = _clean(student), _clean(status)
    if student is not None and not re.match(ID_PATTERN, student):
        raise Unprocessable("`student` is not a student id", field="student")
    if status is not None and status not in STATUSES:
        raise Unprocessable(f"`status` must be one of {', '.join(STATUSES)}", field="status")
    return ListFilters(
        student=student,
        status=status,
        platform=_clean(platform),
        subject=_clean(subject),
        tool=_clean(tool),
        start=reading.parse_bound(start, field="from"),
        end=reading.parse_bound(end, field="to", end=True),
    )


def index(
    event: dict[str, Any],
    *,
    reader: ListingReader,
    now: datetime,
    filters: ListFilters,
    find: str | None = None,
    session: str | None = None,
    cursor: str | None = None,
    seen: Seen | None = None,
) -> Response[str]:
    """The session list: every session newest first, or those the filter form asks for."""
    if find is not None:
        if not re.match(ID_PATTERN, find.strip()):
            raise Unprocessable("not a student id", field="find")
        return redirect(f"/ui/students/{quote(find.strip(), safe='')}")
    if session is not None:
        if not re.match(reading.SESSION_ID_PATTERN, session.strip()):
            raise Unprocessable("not a session id", field="session")
        return redirect(f"/ui/sessions/{quote(session.strip(), safe='')}")
    page = list_sessions(filters, reader=reader, now=now, cursor=cursor)
    _shown(seen, (i.student_id for i in page.sessions))
    return _page(lambda nonce: list_page.list_page(page, filters, nonce=nonce))


def csrf_token(event: dict[str, Any]) -> str:
    """A form token derived from this browser's sign-in cookie (empty without one: bearer callers need none).

    The cookie is HttpOnly: another site can neither read it nor compute this token, and the
    cookie itself is SameSite=Strict, so a forged form post carries neither.
    """
    cookie = read_cookie(event, COOKIE) or ""
    if not cookie:
        return ""
    return hmac.new(cookie.encode(), b"tutor-session-tracker ui form", hashlib.sha256).hexdigest()[:40]


def review(
    event: dict[str, Any],
    *,
    reader: ListingReader,
    sessions: Callable[[str], SessionMeta | None],
    now: datetime,
    window: timedelta,
    session: str | None = None,
    student: str | None = None,
    cursor: str | None = None,
    done: str | None = None,
    seen: Seen | None = None,
) -> Response[str]:
    """The unmatched review queue; with ``session`` (and ``student``) the candidates for it."""
    queue = review_queue(reader=reader, cursor=cursor)
    selected = sessions(session) if session else None
    if session and selected is None:
        return _page(lambda nonce: pages.not_found_page(f"No session {session!r}.", nonce=nonce), status=404)
    student = _clean(student)
    if student is not None and not re.match(ID_PATTERN, student):
        raise Unprocessable("`student` is not a student id", field="student")
    candidates = None
    if selected is not None and student and selected.status == "unmatched":
        candidates = review_candidates(selected, student, reader=reader, window=window)
    excerpt = list_page.excerpt_of((selected.conversation or {}).get("transcript")) if selected else None
    _shown(seen, [*(i.student_id for i in queue.sessions), *(c.session.student_id for c in candidates or ())])
    if seen is not None and selected is not None:
        seen([("read_session", selected.student_id, selected.session_id)])
    csrf = csrf_token(event)
    message = None
    if done:
        message = f'Assigned. The call is now part of <a href="/ui/sessions/{quote(done, safe="")}">{escape(done)}</a>.'
    return _page(
        lambda nonce: list_page.review_page(
            queue,
            nonce=nonce,
            csrf=csrf,
            selected=selected,
            student=student,
            candidates=candidates,
            excerpt=excerpt,
            done=message,
        )
    )


def assign(
    event: dict[str, Any],
    session_id: str,
    *,
    form: dict[str, str],
    perform: Callable[[AssignRequest], AssignResult],
) -> Response[str]:
    """The review form's POST: check the form token, assign through the API's domain function, go back."""
    expected = csrf_token(event)
    if expected and not hmac.compare_digest(expected, form.get("csrf", "")):
        raise FormExpired("the form expired or came from another site; reload the review page", field="csrf")
    fields = {k: v.strip() for k, v in form.items() if k in ("student_id", "session_id") and v.strip()}
    try:
        request = AssignRequest.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first.get("loc") else "student_id"
        raise Unprocessable(f"{name}: {first['msg']}", field=name) from exc
    result = perform(request)
    return redirect(f"/ui/review?{urlencode({'done': result.session_id})}")


def student(
    event: dict[str, Any],
    student_id: str,
    *,
    reader: StudentHistoryReader,
    now: datetime,
    start: str | None = None,
    end: str | None = None,
    cursor: str | None = None,
) -> Response[str]:
    """A student's progress: charts over the range, the newest sessions, the progress feed."""
    view = student_view(
        student_id,
        reader=reader,
        start=reading.parse_bound(start, field="from"),
        end=reading.parse_bound(end, field="to", end=True),
        cursor=cursor,
    )
    return _page(lambda nonce: student_page.student_page(view, nonce=nonce))


def session(
    event: dict[str, Any],
    session_id: str,
    *,
    store: SessionReader,
    blobs: BlobStore | None,
    now: datetime,
) -> Response[str]:
    """One session's timeline (an HTML 404 page when there is no such session)."""
    export = read_export(session_id, store=store, blobs=blobs)
    if export is None:
        return _page(lambda nonce: pages.not_found_page(f"No session {session_id!r}.", nonce=nonce), status=404)
    return _page(lambda nonce: pages.session_page(export, nonce=nonce))


LIVE_INTERVAL_MS = 2000


def _etag(body: str) -> str:
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def _live_students(view: Any) -> list[str]:
    return [i.student_id for i in (*view.active, *view.ended)]


def live(event: dict[str, Any], *, reader: LiveReader, now: datetime, seen: Seen | None = None) -> Response[str]:
    """The live view (the first fragment rendered in; ``page.js`` keeps it fresh)."""
    view = live_sessions(reader=reader, now=now)
    _shown(seen, _live_students(view))
    etag = _etag(list_page.live_fragment(view))
    return _page(lambda nonce: list_page.live_page(view, nonce=nonce, etag=etag, interval_ms=LIVE_INTERVAL_MS))


def live_data(event: dict[str, Any], *, reader: LiveReader, now: datetime, seen: Seen | None = None) -> Response[str]:
    """The live fragment; ``304`` without a body when it is what the browser has (``If-None-Match``);
    ``seen`` hears of the students only when the fragment is sent."""
    view = live_sessions(reader=reader, now=now)
    fragment = list_page.live_fragment(view)
    etag = _etag(fragment)
    headers = {**_headers(), "ETag": etag}
    cached = {t.strip() for t in (header(event, "if-none-match") or "").split(",")}
    if etag in cached:
        return Response(304, HTML, "", headers=headers)
    _shown(seen, _live_students(view))
    return Response(200, HTML, fragment, headers=headers)
