"""The ``/ui`` responses: read through :mod:`session_tracker.reading`, render with :mod:`.pages`.

Every page is ``text/html`` with a strict Content-Security-Policy (scripts only with
the per-response nonce, no external loads), ``no-store`` caching and no referrer, so
neither the token nor session data leaks into caches or other sites.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.shared.cookies import Cookie, SameSite

from session_tracker import reading
from session_tracker.blobs import BlobStore
from session_tracker.errors import Unprocessable
from session_tracker.models import ID_PATTERN
from session_tracker.progress import StudentHistoryReader, student_view
from session_tracker.sessions import read_export
from session_tracker.store.ports import SessionReader
from session_tracker.ui import pages, student_page
from session_tracker.ui.auth import COOKIE, is_https

HTML = "text/html; charset=utf-8"
RECENT_PAGE = 25


def _headers(nonce: str | None = None) -> dict[str, str]:
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; script-src {script}; img-src data:; "
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


def index(
    event: dict[str, Any],
    *,
    store: SessionReader,
    now: datetime,
    student: str | None = None,
    session: str | None = None,
    cursor: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> Response[str]:
    """The start page: find a student or session, and the sessions started lately."""
    if student is not None:
        if not re.match(ID_PATTERN, student.strip()):
            raise Unprocessable("not a student id", field="student")
        return redirect(f"/ui/students/{quote(student.strip(), safe='')}")
    if session is not None:
        if not re.match(reading.SESSION_ID_PATTERN, session.strip()):
            raise Unprocessable("not a session id", field="session")
        return redirect(f"/ui/sessions/{quote(session.strip(), safe='')}")
    recent = reading.sessions_between(
        store=store,
        now=now,
        start=reading.parse_bound(start, field="from"),
        end=reading.parse_bound(end, field="to", end=True),
        limit=RECENT_PAGE,
        cursor=cursor,
    )
    return _page(lambda nonce: pages.index_page(recent, nonce=nonce))


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
