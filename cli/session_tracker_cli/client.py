"""Where the CLI reads sessions from: the HTTP API (local stack or deployed) or, for
operators, the DynamoDB table directly.

Both sources answer with the same models (:class:`SessionExport`, :class:`SessionListItem`,
:class:`SessionRef`) and go through the same read path as the API
(:mod:`session_tracker.reading`), so ``export`` writes identical files either way.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from session_tracker.models import SessionExport, SessionRef, iso
from session_tracker.reading import SessionListItem, SessionPage, SessionRefPage
from session_tracker_cli import DEFAULT_URL


class SourceError(Exception):
    """A read failed; the message is meant for the terminal."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SessionNotFound(SourceError):
    """There is no session with that id."""


class SessionSource(Protocol):
    """What the CLI needs to read sessions."""

    def describe(self) -> str: ...

    def get_session(self, session_id: str) -> SessionExport: ...

    def student_sessions(
        self, student_id: str, *, start: datetime | None = None, end: datetime | None = None, page_size: int = 100
    ) -> Iterator[SessionListItem]: ...

    def all_sessions(self, *, start: datetime, end: datetime, page_size: int = 100) -> Iterator[SessionRef]: ...

    def full_range(self) -> tuple[datetime, datetime]:
        """The start-time range holding every kept session (from the deployment's retention)."""
        ...

    def analyze(self, session_id: str) -> dict[str, Any]: ...

    def usage(self, day: str) -> dict[str, Any]: ...

    def assign(self, session_id: str, *, student_id: str | None, target: str | None) -> dict[str, Any]: ...


# ------------------------------------------------------------------------------ API
class ApiSource:
    """The read API over HTTP with a bearer token."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0, transport: Any = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def describe(self) -> str:
        return f"API {self.url}"

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _api_error(response)
        return response.json()

    def get_session(self, session_id: str) -> SessionExport:
        try:
            return SessionExport.model_validate(self._request("GET", f"/sessions/{quote(session_id, safe='')}"))
        except SourceError as exc:
            if exc.status == 404:
                raise SessionNotFound(f"no session {session_id!r}", status=404) from exc
            raise

    def student_sessions(
        self, student_id: str, *, start: datetime | None = None, end: datetime | None = None, page_size: int = 100
    ) -> Iterator[SessionListItem]:
        params: dict[str, Any] = {"limit": page_size}
        if start:
            params["from"] = iso(start)
        if end:
            params["to"] = iso(end)
        while True:
            page = SessionPage.model_validate(
                self._request("GET", f"/students/{quote(student_id, safe='')}/sessions", params=params)
            )
            yield from page.sessions
            if not page.next_cursor:
                return
            params["cursor"] = page.next_cursor

    def full_range(self) -> tuple[datetime, datetime]:
        from session_tracker.reading import EARLIEST, FUTURE_MARGIN

        page = SessionRefPage.model_validate(self._request("GET", "/sessions", params={"limit": 1}))
        return page.kept_since or EARLIEST, datetime.now(UTC) + FUTURE_MARGIN

    def all_sessions(self, *, start: datetime, end: datetime, page_size: int = 100) -> Iterator[SessionRef]:
        params: dict[str, Any] = {"from": iso(start), "to": iso(end), "limit": page_size}
        while True:
            page = SessionRefPage.model_validate(self._request("GET", "/sessions", params=params))
            yield from page.sessions
            if not page.next_cursor:
                return
            params["cursor"] = page.next_cursor

    def usage(self, day: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/usage", params={"date": day})
        return result

    def analyze(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/sessions/{quote(session_id, safe='')}/analyze")
        return result

    def assign(self, session_id: str, *, student_id: str | None, target: str | None) -> dict[str, Any]:
        body = {k: v for k, v in {"student_id": student_id, "session_id": target}.items() if v}
        result: dict[str, Any] = self._request("POST", f"/sessions/{quote(session_id, safe='')}/assign", json=body)
        return result


def _api_error(response: httpx.Response) -> SourceError:
    try:
        body = response.json()
        detail = body.get("detail") or body.get("message") or response.text
    except ValueError:
        detail = response.text[:200]
    hints = {
        401: " (check --token / SESSION_TRACKER_TOKEN / READ_TOKEN)",
        403: " (this credential's scope is too low: reading needs a read or admin key; INGEST_TOKEN cannot read)",
    }
    hint = hints.get(response.status_code, "")
    return SourceError(f"{response.status_code} {response.reason_phrase}: {detail}{hint}", status=response.status_code)


# ---------------------------------------------------------------------------- table
@contextmanager
def _table_errors(table: str) -> Iterator[None]:
    """Domain errors keep their HTTP status; AWS errors become one readable line."""
    from botocore.exceptions import BotoCoreError, ClientError

    from session_tracker.errors import DomainError

    try:
        yield
    except DomainError as exc:
        raise SourceError(f"{exc.status} {exc.title}: {exc.detail}", status=exc.status) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise SourceError(f"table {table}: {error.get('Code')}: {error.get('Message')}") from exc
    except BotoCoreError as exc:
        raise SourceError(f"table {table}: {exc}") from exc


LOCAL_REGION = "us-east-1"


TABLE_EXTRA = "pip install 'session-tracker-cli[table]'"


def table_store(table: str, endpoint_url: str | None = None) -> Any:
    """The :class:`~session_tracker.store.DynamoStore` of ``--table``; a :class:`SourceError`
    naming the ``table`` extra when boto3 is not installed (the CLI installs without it)."""
    try:
        import botocore  # noqa: F401

        from session_tracker.store import DynamoStore
    except ImportError as exc:
        raise SourceError(
            f"--table reads the DynamoDB table with boto3, which is not installed: {TABLE_EXTRA}"
        ) from exc
    return DynamoStore(table, client=dynamodb_client(endpoint_url))


def dynamodb_client(endpoint_url: str | None = None) -> Any:
    """A DynamoDB client for ``--table`` reads.

    Against an explicit endpoint (``--endpoint-url`` or ``AWS_ENDPOINT_URL_DYNAMODB``: DynamoDB
    Local, as ``make run`` prints it) no AWS setup is needed: a missing region becomes
    ``us-east-1`` and missing credentials placeholders (DynamoDB Local accepts any). Against AWS
    the region and credentials come from the environment as usual; a missing region is a clear
    error, not a ``NoRegionError`` traceback.
    """
    import boto3
    from botocore.config import Config

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
    session = boto3.session.Session()
    kwargs: dict[str, Any] = {"config": Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3)}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
        if session.region_name is None:
            kwargs["region_name"] = LOCAL_REGION
        if session.get_credentials() is None:
            kwargs["aws_access_key_id"] = "local"
            kwargs["aws_secret_access_key"] = "local"  # noqa: S105 - DynamoDB Local ignores credentials
    elif session.region_name is None:
        raise SourceError(
            "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or pass --endpoint-url / "
            "AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local"
        )
    return session.client("dynamodb", **kwargs)


def table_actor() -> str:
    """Who works on the table directly: ``table:<os user>`` in audit entries."""
    import getpass

    try:
        return f"table:{getpass.getuser()}"
    except Exception:  # no user name (some containers)
        return "table:unknown"


class TableSource:
    """The DynamoDB table directly (operators; AWS credentials from the environment)."""

    def __init__(self, table: str, *, store: Any = None, blobs: Any = None, endpoint_url: str | None = None) -> None:
        from session_tracker.blobs import blob_store_from_env

        self.table = table
        self.store = store or table_store(table, endpoint_url)
        self.blobs = blobs if blobs is not None else blob_store_from_env()

    def describe(self) -> str:
        return f"table {self.table}"

    def _audit(self, action: str, *, student_id: str | None, session_id: str | None = None) -> None:
        """Reads on the table are audited like the API's (actor ``table:<os user>``, scope ``admin``)."""
        self._audit_many([(action, student_id, session_id)])

    def _audit_many(self, shown: list[tuple[str, str | None, str | None]]) -> None:
        """One entry per ``(action, student_id, session_id)``, in one write the CLI waits on at most once."""
        from session_tracker.audit import AuditEntry, Auditor

        at, actor = datetime.now(UTC), table_actor()
        entries = [
            AuditEntry(at=at, actor=actor, scope="admin", action=a, student_id=st, session_id=se)
            for a, st, se in dict.fromkeys(shown)
        ]
        Auditor(lambda: self.store).record_many(entries)

    def get_session(self, session_id: str) -> SessionExport:
        from session_tracker import reading
        from session_tracker.errors import NotFound

        try:
            with _table_errors(self.table):
                export = reading.get_session(session_id, store=self.store, blobs=self.blobs)
            self._audit("read_session", student_id=export.student_id, session_id=session_id)
            return export
        except SourceError as exc:
            if exc.status == NotFound.status:
                raise SessionNotFound(f"no session {session_id!r}", status=404) from exc
            raise

    def student_sessions(
        self, student_id: str, *, start: datetime | None = None, end: datetime | None = None, page_size: int = 100
    ) -> Iterator[SessionListItem]:
        from session_tracker import reading

        cursor: str | None = None
        while True:
            with _table_errors(self.table):
                page = reading.student_sessions(
                    student_id, store=self.store, start=start, end=end, limit=page_size, cursor=cursor
                )
            if cursor is None:
                self._audit("list_sessions", student_id=student_id)
            yield from page.sessions
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def full_range(self) -> tuple[datetime, datetime]:
        from session_tracker import reading
        from session_tracker.config import get_config

        return reading.full_range(datetime.now(UTC), get_config().session_tracking.retention)

    def all_sessions(self, *, start: datetime, end: datetime, page_size: int = 100) -> Iterator[SessionRef]:
        from session_tracker import reading

        cursor: str | None = None
        shown: set[str] = set()
        while True:
            with _table_errors(self.table):
                page = reading.sessions_between(
                    store=self.store, now=datetime.now(UTC), start=start, end=end, limit=page_size, cursor=cursor
                )
            fresh = [r.student_id for r in page.sessions if r.student_id not in shown]
            shown.update(fresh)
            if fresh:  # each student once per listing, however many pages they span
                self._audit_many([("list_sessions", s, None) for s in dict.fromkeys(fresh)])
            yield from page.sessions
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def usage(self, day: str) -> dict[str, Any]:
        from session_tracker.analysis import daily_usage
        from session_tracker.config import get_config

        with _table_errors(self.table):
            found: dict[str, Any] = daily_usage(self.store, day, config=get_config().analysis).model_dump(mode="json")
        return found

    def analyze(self, session_id: str) -> dict[str, Any]:
        try:
            analysis = importlib.import_module("session_tracker.analysis")
        except ImportError as exc:
            raise SourceError("on-request analysis is not available in this installation") from exc
        with _table_errors(self.table):
            config = importlib.import_module("session_tracker.config").get_config().analysis
            result = analysis.request_analysis(session_id, store=self.store, now=datetime.now(UTC), config=config)
        if hasattr(result, "model_dump"):
            dumped: dict[str, Any] = result.model_dump(mode="json")
            return dumped
        return dict(result) if isinstance(result, dict) else {"result": str(result)}

    def assign(self, session_id: str, *, student_id: str | None, target: str | None) -> dict[str, Any]:
        from session_tracker import review
        from session_tracker.config import get_config

        with _table_errors(self.table):
            request = review.AssignRequest(student_id=student_id, session_id=target)
            result = review.assign_session(
                session_id,
                request,
                store=self.store,
                blobs=self.blobs,
                now=datetime.now(UTC),
                match_window=get_config().session_tracking.match_window,
                actor=table_actor(),
                audit=lambda done: self._audit_many([("assign", done.student_id, done.session_id)]),
            )
        dumped: dict[str, Any] = result.model_dump(mode="json")
        return dumped


def open_source(*, url: str | None, token: str | None, table: str | None) -> SessionSource:
    """``--table`` wins (direct, operators); else the API at ``--url`` with ``--token``."""
    if table:
        return TableSource(table)
    return ApiSource(url or DEFAULT_URL, token)
