"""Read API: health, the OpenAPI document, and (bearer-authenticated) session reads."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

import session_tracker
from session_tracker import analysis, apikeys, audit, coldstart, erasure, reading, review
from session_tracker.access import KEY_NAME_PATTERN, caller
from session_tracker.http import BEARER_SCHEME, RETRY_AFTER_SECONDS, guarded, is_store_outage, make_app
from session_tracker.models import ID_PATTERN, AnalysisUsage, Health, Problem, SessionExport
from session_tracker.observability import logger, metrics, tracer
from session_tracker.reading import MAX_PAGE, SESSION_ID_PATTERN, SessionPage, SessionRefPage
from session_tracker.runtime import authenticator, deps
from session_tracker.store import MAX_CURSOR_CHARS
from session_tracker.ui import views
from session_tracker.ui.auth import ui_gate

app = make_app()


@cache
def _openapi_document() -> str:
    return resources.files("session_tracker").joinpath("openapi.json").read_text(encoding="utf-8")


_health = reading.HealthCheck(version=session_tracker.__version__)


@app.get(
    "/health",
    summary="Liveness and the database's state",
    description="200 with `store: ok`, or 503 (with Retry-After) and `store: unreachable` while the "
    "database cannot be reached. Public; checks the database at most every 10 s.",
    tags=["meta"],
    responses={
        200: {"description": "Up, database reachable", "content": {"application/json": {"model": Health}}},
        503: {"description": "The database is unreachable", "content": {"application/json": {"model": Health}}},
    },
)
def health() -> Response[str]:
    state = _health(store=deps().store, now=datetime.now(UTC), is_outage=is_store_outage)
    if state.status == "ok":
        return Response(200, "application/json", state.model_dump_json())
    return Response(503, "application/json", state.model_dump_json(), headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@app.get("/openapi.json", summary="OpenAPI 3 document of every route", tags=["meta"])
def openapi() -> Response[Any]:
    return Response(200, "application/json", _openapi_document())


# ------------------------------------------------------------------ the access audit
_auditor = audit.Auditor(lambda: deps().store)


def _audit(
    action: audit.AuditAction,
    *,
    student_id: str | None,
    session_id: str | None = None,
    detail: dict[str, str] | None = None,
    counts: dict[str, int] | None = None,
) -> None:
    """Record who read (or assigned, or erased) what; never fails or holds up the request for long."""
    actor, scope = caller(app.current_event.raw_event) or ("unknown", "unknown")
    entry = audit.AuditEntry(
        at=datetime.now(UTC),
        actor=actor,
        scope=scope,
        action=action,
        student_id=student_id,
        session_id=session_id,
        detail=detail,
        counts=counts,
    )
    _auditor.record(entry)


_live_repeats = audit.Repeats()


def _audit_shown(shown: list[tuple[audit.AuditAction, str, str | None]], *, polled: bool = False) -> None:
    """One entry per (action, student, session) a page showed, in one background write that the
    request waits on at most once; a polled view (``polled``) repeats a student only after
    ``audit.REPEAT_AFTER`` for the same reader."""
    actor, scope = caller(app.current_event.raw_event) or ("unknown", "unknown")
    now = datetime.now(UTC)
    wanted = list(dict.fromkeys(shown))
    if polled:
        fresh = set(_live_repeats.fresh([(actor, *(x or "" for x in w)) for w in wanted], now))
        wanted = [w for w in wanted if (actor, *(x or "" for x in w)) in fresh]
    _auditor.record_many(
        audit.AuditEntry(at=now, actor=actor, scope=scope, action=action, student_id=student, session_id=session)
        for action, student, session in wanted
    )


# ------------------------------------------------------------------ reading sessions
SessionIdPath = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="The session id.")]
StudentIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="The student id.")]
FromQuery = Annotated[
    str | None,
    Query(alias="from", max_length=40, description="Sessions that started at or after (ISO 8601 date or date-time)."),
]
ToQuery = Annotated[
    str | None,
    Query(alias="to", max_length=40, description="Sessions that started at or before (a date means its last instant)."),
]
CursorQuery = Annotated[
    str | None, Query(max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the previous page.")
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Sessions per page.")]


@app.get(
    "/sessions/<session_id>",
    summary="One session in the export format",
    description="Interactions in time order, the whole conversation (also when kept in S3), platform "
    "metadata, matching strategy, session summary and analysis. 404 when there is no such session.",
    tags=["sessions"],
    security=[BEARER_SCHEME],
    responses={404: {"description": "No such session"}},
)
def get_session(session_id: SessionIdPath) -> SessionExport:
    export = reading.get_session(session_id, store=deps().store, blobs=deps().blobs)
    _audit("read_session", student_id=export.student_id, session_id=session_id)
    return export


@app.get(
    "/students/<student_id>/sessions",
    summary="A student's sessions, newest first",
    description="Sessions that started in [from, to], newest first. Paginated: pass `next_cursor` back "
    "as `cursor` (with the same from/to) for the next page; a cursor from another query is a 422.",
    tags=["sessions"],
    security=[BEARER_SCHEME],
)
def list_student_sessions(
    student_id: StudentIdPath,
    start: FromQuery = None,
    end: ToQuery = None,
    limit: LimitQuery = reading.DEFAULT_PAGE,
    cursor: CursorQuery = None,
) -> SessionPage:
    page = reading.student_sessions(
        student_id,
        store=deps().store,
        start=reading.parse_bound(start, field="from"),
        end=reading.parse_bound(end, field="to", end=True),
        limit=limit,
        cursor=cursor,
    )
    _audit("list_sessions", student_id=student_id)
    return page


@app.get(
    "/sessions",
    summary="Every student's sessions in a time range, newest first",
    description="For operators' exports: sessions that started in [from, to] (default: the last 7 days), "
    "read one start day at a time. A page may be short and still have a `next_cursor`; pass it back "
    "with the `start`/`end` of the response as from/to.",
    tags=["sessions"],
    security=[BEARER_SCHEME],
)
def list_sessions(
    start: FromQuery = None,
    end: ToQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Sessions per page.")] = 50,
    cursor: CursorQuery = None,
) -> SessionRefPage:
    page = reading.sessions_between(
        store=deps().store,
        now=datetime.now(UTC),
        start=reading.parse_bound(start, field="from"),
        end=reading.parse_bound(end, field="to", end=True),
        limit=limit,
        cursor=cursor,
        retention=deps().config.session_tracking.retention,
    )
    _audit_shown([("list_sessions", s, None) for s in audit.distinct(r.student_id for r in page.sessions)])
    return page


# ------------------------------------------------------------------------ analysis
@app.post(
    "/sessions/<session_id>/analyze",
    status_code=202,
    summary="Analyse a session (asynchronously)",
    description="Queues an analysis with the prompts of session_config.yaml; it runs within seconds and "
    "appears as `analysis` on the session. A session whose input and prompts did not change keeps its "
    "analysis (no new model call); a failed analysis is retried. 404 when there is no such session, "
    "409 when analysis is disabled or `on_request` is not among `analysis.triggers`.",
    tags=["analysis"],
    security=[BEARER_SCHEME],
    responses={
        202: {"description": "Queued", "content": {"application/json": {"model": analysis.AnalysisRequested}}},
        404: {"description": "No such session", "content": {"application/problem+json": {"model": Problem}}},
        409: {
            "description": "Analysis is disabled, or not allowed on request",
            "content": {"application/problem+json": {"model": Problem}},
        },
    },
)
def request_session_analysis(session_id: SessionIdPath) -> analysis.AnalysisRequested:
    return analysis.request_analysis(
        session_id, store=deps().store, now=datetime.now(UTC), config=deps().config.analysis
    )


@app.get(
    "/usage",
    summary="One day's analysis spend",
    description="Sessions analysed that UTC day against `max_sessions_per_day`, analyses, failures, "
    "tokens and estimated cost in USD (`session-tracker usage`). `date` defaults to today (UTC).",
    tags=["analysis"],
    security=[BEARER_SCHEME],
)
def analysis_usage(
    date: Annotated[
        str | None,
        Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day, YYYY-MM-DD (default: today)."),
    ] = None,
) -> AnalysisUsage:
    day = date or datetime.now(UTC).date().isoformat()
    return analysis.daily_usage(deps().store, day, config=deps().config.analysis)


# ------------------------------------------------------------------- unmatched review
def _audit_assignment(entry: review.AssignmentAudit) -> None:
    logger.info("session assigned", extra={"audit": entry.model_dump(mode="json")})
    detail = {"assigned_from": entry.assigned_from, "outcome": entry.outcome}
    _audit("assign", student_id=entry.student_id, session_id=entry.session_id, detail=detail)


@app.post(
    "/sessions/<session_id>/assign",
    summary="Assign an unmatched session",
    description="Moves an `unmatched` session's platform data to the student's session that its call time "
    'matches (`{"student_id": S}`), to a named session (`{"session_id": TARGET}`), or makes it a new '
    "session of S when none matches. `matching.strategy` becomes `manual`; the assignment is audited. "
    "404 when there is no such session, 409 when it is not unmatched (or was assigned already), "
    "422 for a bad body or an unknown target.",
    tags=["sessions"],
    security=[BEARER_SCHEME],
    responses={
        404: {"description": "No such session", "content": {"application/problem+json": {"model": Problem}}},
        409: {"description": "Not unmatched", "content": {"application/problem+json": {"model": Problem}}},
    },
)
def assign_session(session_id: SessionIdPath, body: Annotated[review.AssignRequest, Body()]) -> review.AssignResult:
    return review.assign_session(
        session_id,
        body,
        store=deps().store,
        blobs=deps().blobs,
        now=datetime.now(UTC),
        match_window=deps().config.session_tracking.match_window,
        audit=_audit_assignment,
    )


# ------------------------------------------------------------------------ erasure
ERASE_BUDGET_SECONDS = 5.0
"""An erasure request starts no new session after this long (the function's timeout is 10 s)."""


@app.delete(
    "/students/<student_id>",
    summary="Erase everything stored about a student",
    description="Deletes the student's sessions, calls, transcripts and other blobs, idempotency, call "
    "and delivery markers, HEAD and older audit entries; other students are untouched. 200 "
    "`{student_id, sessions_deleted, interactions_deleted, blobs_deleted, erased_at, complete: true}`; "
    "a repeat answers 200 with zeros. Bounded: one request erases at most 25 sessions (about 5 s); "
    "when more remain it answers 202 with this request's counts and `complete: false` - repeat the "
    "request until 200 (`session-tracker forget` does). The erasure's own audit entry (counts, time, "
    "actor) is kept.",
    tags=["students"],
    security=[BEARER_SCHEME],
    responses={
        200: {"description": "Erased", "content": {"application/json": {"model": erasure.Erasure}}},
        202: {"description": "Partly erased: repeat", "content": {"application/json": {"model": erasure.Erasure}}},
    },
)
def erase_student(student_id: StudentIdPath) -> Response[str]:
    import time

    blobs = deps().blobs
    deleter = blobs if blobs is not None and hasattr(blobs, "delete_prefix") else None
    result = erasure.erase_student(
        student_id,
        store=deps().store,
        blobs=deleter,  # type: ignore[arg-type]
        now=datetime.now(UTC),
        deadline=time.monotonic() + ERASE_BUDGET_SECONDS,
    )
    _audit("erase", student_id=student_id, counts=result.counts())
    status = 200 if result.complete else 202
    return Response(status, "application/json", result.model_dump_json(), headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------------ the audit
@app.get(
    "/audit",
    summary="The access audit, newest first",
    description="Who read a session or a student's session list (API, /ui, CLI), who erased or assigned "
    "what: `{at, actor, scope, action, student_id, session_id}` (actor: the key's name or `env:<scope>`; "
    "an erasure adds its counts). `from`/`to` bound `at` (default: everything kept). Paginated: pass "
    "`next_cursor` back as `cursor` with the same query; without `student_id` a page reads at most 32 "
    "days, so it may be short and still have a `next_cursor`.",
    tags=["audit"],
    security=[BEARER_SCHEME],
)
def list_audit(
    student_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="Only entries about this student.")] = None,
    start: Annotated[str | None, Query(alias="from", max_length=40, description="Entries at or after.")] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40, description="Entries at or before.")] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE, description="Entries per page.")] = audit.DEFAULT_PAGE,
    cursor: CursorQuery = None,
) -> audit.AuditPage:
    low, high = reading.full_range(datetime.now(UTC), deps().config.session_tracking.retention)
    first = reading.parse_bound(start, field="from") or low
    last = reading.parse_bound(end, field="to", end=True) or high
    reading.time_range(first, last)  # 422 naming `from` when it is after `to`
    return audit.list_entries(
        store=deps().store, student_id=student_id, start=first, end=last, limit=limit, cursor=cursor
    )


# ------------------------------------------------------------------------ API keys
KeyNamePath = Annotated[str, Path(pattern=KEY_NAME_PATTERN, description="The key's name.")]


@app.post(
    "/keys",
    status_code=201,
    summary="Create a named API key",
    description="A new bearer credential of the given scope (ingest, read or admin), e.g. one per tutor "
    "or per MCP server. The answer holds the key this once; the table keeps only its SHA-256. "
    "409 when an active key has that name.",
    tags=["keys"],
    security=[BEARER_SCHEME],
    responses={
        201: {"description": "Created", "content": {"application/json": {"model": apikeys.KeyCreated}}},
        409: {"description": "The name is taken", "content": {"application/problem+json": {"model": Problem}}},
    },
)
def create_api_key(body: Annotated[apikeys.KeyCreate, Body()]) -> Response[str]:
    created = apikeys.create_key(body, store=deps().store, now=datetime.now(UTC), cache=authenticator())
    return Response(201, "application/json", created.model_dump_json(), headers={"Cache-Control": "no-store"})


@app.get(
    "/keys",
    summary="List the named API keys",
    description="Name, scope, created, last used and revoked time of every key - never the key. "
    "`last_used` is written at most once per key per 5 minutes per running function.",
    tags=["keys"],
    security=[BEARER_SCHEME],
)
def list_api_keys() -> apikeys.KeyList:
    return apikeys.list_keys(store=deps().store)


@app.delete(
    "/keys/<name>",
    summary="Revoke a named API key",
    description="The key is refused at once by the function that revoked it and within 60 s by every "
    "other (named keys are cached 30 s per warm function). 404 when no active key has that name.",
    tags=["keys"],
    security=[BEARER_SCHEME],
    responses={404: {"description": "No such active key", "content": {"application/problem+json": {"model": Problem}}}},
)
def revoke_api_key(name: KeyNamePath) -> apikeys.KeyRevoked:
    return apikeys.revoke_key(name, store=deps().store, now=datetime.now(UTC), cache=authenticator())


# ------------------------------------------------------------------- session pages (/ui)
TextQuery = Annotated[str | None, Query(max_length=200)]


@app.get("/ui", include_in_schema=False)
def ui_index(
    find: TextQuery = None,
    session: Annotated[str | None, Query(max_length=250)] = None,
    student: TextQuery = None,
    status: TextQuery = None,
    platform: TextQuery = None,
    subject: TextQuery = None,
    tool: TextQuery = None,
    cursor: CursorQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Response[str]:
    return views.index(
        app.current_event.raw_event,
        reader=deps().store,
        now=datetime.now(UTC),
        filters=views.list_filters(
            student=student, status=status, platform=platform, subject=subject, tool=tool, start=start, end=end
        ),
        find=find,
        session=session,
        cursor=cursor,
        seen=_audit_shown,
    )


@app.get("/ui/review", include_in_schema=False)
def ui_review(
    session: Annotated[str | None, Query(max_length=250)] = None,
    student: TextQuery = None,
    done: Annotated[str | None, Query(max_length=250, pattern=SESSION_ID_PATTERN)] = None,
    cursor: CursorQuery = None,
) -> Response[str]:
    return views.review(
        app.current_event.raw_event,
        reader=deps().store,
        sessions=deps().store.get_session,
        now=datetime.now(UTC),
        window=deps().config.session_tracking.match_window,
        session=session,
        student=student,
        cursor=cursor,
        done=done,
        seen=_audit_shown,
    )


@app.post("/ui/review/<session_id>/assign", include_in_schema=False)
def ui_assign(session_id: SessionIdPath) -> Response[str]:
    """The review page's form: the same domain function as ``POST /sessions/{id}/assign``."""
    form = dict(parse_qsl(app.current_event.decoded_body or "", keep_blank_values=True))
    return views.assign(
        app.current_event.raw_event,
        session_id,
        form=form,
        perform=lambda request: review.assign_session(
            session_id,
            request,
            store=deps().store,
            blobs=deps().blobs,
            now=datetime.now(UTC),
            match_window=deps().config.session_tracking.match_window,
            audit=_audit_assignment,
        ),
    )


@app.get("/ui/live", include_in_schema=False)
def ui_live() -> Response[str]:
    return views.live(app.current_event.raw_event, reader=deps().store, now=datetime.now(UTC), seen=_audit_shown)


@app.get("/ui/live/data", include_in_schema=False)
def ui_live_data() -> Response[str]:
    return views.live_data(
        app.current_event.raw_event,
        reader=deps().store,
        now=datetime.now(UTC),
        seen=lambda shown: _audit_shown(shown, polled=True),
    )


@app.get("/ui/students/<student_id>", include_in_schema=False)
def ui_student(
    student_id: StudentIdPath,
    start: FromQuery = None,
    end: ToQuery = None,
    cursor: CursorQuery = None,
) -> Response[str]:
    page = views.student(
        app.current_event.raw_event,
        student_id,
        reader=deps().store,
        now=datetime.now(UTC),
        start=start,
        end=end,
        cursor=cursor,
    )
    if page.status_code == 200:
        _audit("list_sessions", student_id=student_id)
    return page


@app.get("/ui/sessions/<session_id>", include_in_schema=False)
def ui_session(session_id: SessionIdPath) -> Response[str]:
    page = views.session(
        app.current_event.raw_event,
        session_id,
        store=deps().store,
        blobs=deps().blobs,
        now=datetime.now(UTC),
    )
    if page.status_code == 200:
        _audit("read_session", student_id=audit.student_of(session_id), session_id=session_id)
    return page


@app.get("/ui/logout", include_in_schema=False)
def ui_logout() -> Response[str]:
    return views.sign_out(app.current_event.raw_event)


@app.post("/ui/sign-in", include_in_schema=False)
def ui_sign_in() -> Response[str]:
    """Browsers sign in at the gate (form post); a bearer client that posts here is simply sent to /ui."""
    return views.redirect("/ui")


_gate = ui_gate(authenticator, clock=lambda: datetime.now(UTC))


@coldstart.handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return guarded(app, event, context, gate=_gate, max_body=lambda: 64 * 1024)


__all__ = ["app", "lambda_handler"]
