"""Admin operations of the CLI (named keys; audit and erasure build on it): over the API with
an admin credential, or (operators, ``--table``) on the DynamoDB table directly.

Both sides go through the same domain functions as the API (:mod:`session_tracker.apikeys`),
so a key made with ``--table`` is the same item a ``POST /keys`` makes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from session_tracker_cli.client import ApiSource, SourceError, _table_errors, table_store


class AdminSource(Protocol):
    def describe(self) -> str: ...

    def create_key(self, name: str, scope: str) -> dict[str, Any]: ...

    def list_keys(self) -> list[dict[str, Any]]: ...

    def revoke_key(self, name: str) -> dict[str, Any]: ...

    def audit(
        self, *, student_id: str | None, start: str | None, end: str | None, limit: int
    ) -> list[dict[str, Any]]: ...

    def erase_step(self, student_id: str) -> dict[str, Any]:
        """One bounded erasure step: its counts and ``complete`` (repeat until true)."""
        ...


class AdminApi(ApiSource):
    """The admin routes over HTTP (``POST/GET /keys``, ``DELETE /keys/{name}`` ...)."""

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return super()._request(method, path, **kwargs)
        except SourceError as exc:
            if exc.status == 403:
                message = str(exc).split(" (this credential", 1)[0]
                raise SourceError(
                    f"{message} (this needs an admin credential: ADMIN_TOKEN or an admin key)", status=403
                ) from exc
            raise

    def create_key(self, name: str, scope: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", "/keys", json={"name": name, "scope": scope})
        return result

    def list_keys(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._request("GET", "/keys")["keys"]
        return found

    def revoke_key(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("DELETE", f"/keys/{quote(name, safe='')}")
        return result

    def audit(self, *, student_id: str | None, start: str | None, end: str | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": min(limit, 500)}
        params.update({k: v for k, v in {"student_id": student_id, "from": start, "to": end}.items() if v})
        found: list[dict[str, Any]] = []
        while len(found) < limit:
            page = self._request("GET", "/audit", params=params)
            found += page["entries"]
            if not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
        return found[:limit]

    def erase_step(self, student_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("DELETE", f"/students/{quote(student_id, safe='')}")
        return result


class AdminTable:
    """The table directly (operators; AWS credentials from the environment)."""

    def __init__(self, table: str, *, store: Any = None, blobs: Any = None, endpoint_url: str | None = None) -> None:
        from session_tracker.blobs import blob_store_from_env

        self.table = table
        self.store = store or table_store(table, endpoint_url)
        self.blobs = blobs if blobs is not None else blob_store_from_env()

    def describe(self) -> str:
        return f"table {self.table}"

    def create_key(self, name: str, scope: str) -> dict[str, Any]:
        from pydantic import ValidationError

        from session_tracker import apikeys

        try:
            body = apikeys.KeyCreate.model_validate({"name": name, "scope": scope})
        except ValidationError as exc:
            field = ".".join(str(p) for p in exc.errors()[0].get("loc", ())) or "name"
            raise SourceError(f"422 {field}: {exc.errors()[0].get('msg')}", status=422) from exc
        with _table_errors(self.table):
            created = apikeys.create_key(body, store=self.store, now=datetime.now(UTC))
        return created.model_dump(mode="json")

    def list_keys(self) -> list[dict[str, Any]]:
        from session_tracker import apikeys

        with _table_errors(self.table):
            found = apikeys.list_keys(store=self.store)
        return [k.model_dump(mode="json") for k in found.keys]

    def revoke_key(self, name: str) -> dict[str, Any]:
        from session_tracker import apikeys

        with _table_errors(self.table):
            revoked = apikeys.revoke_key(name, store=self.store, now=datetime.now(UTC))
        return revoked.model_dump(mode="json")

    def audit(self, *, student_id: str | None, start: str | None, end: str | None, limit: int) -> list[dict[str, Any]]:
        from session_tracker import audit, reading
        from session_tracker.config import get_config

        low, high = reading.full_range(datetime.now(UTC), get_config().session_tracking.retention)
        with _table_errors(self.table):
            first = reading.parse_bound(start, field="from") or low
            last = reading.parse_bound(end, field="to", end=True) or high
            reading.time_range(first, last)
            found: list[dict[str, Any]] = []
            cursor: str | None = None
            while len(found) < limit:
                page = audit.list_entries(
                    store=self.store, student_id=student_id, start=first, end=last, limit=min(limit, 500), cursor=cursor
                )
                found += [e.model_dump(mode="json") for e in page.entries]
                if not page.next_cursor:
                    break
                cursor = page.next_cursor
        return found[:limit]

    def erase_step(self, student_id: str) -> dict[str, Any]:
        """The same bounded step the API takes, on the table and the blob store directly
        (``BLOB_BUCKET`` or ``BLOB_DIR`` must name the deployment's blobs), audited as
        ``table:<os user>``."""
        import re

        from session_tracker import erasure
        from session_tracker.audit import AuditEntry, Auditor
        from session_tracker.models import ID_PATTERN
        from session_tracker_cli.client import table_actor

        if not re.match(ID_PATTERN, student_id):
            raise SourceError("422 student_id: not a valid student id", status=422)
        if self.blobs is None:
            raise SourceError(
                "no blob store: set BLOB_BUCKET (the stack's BlobBucket) or BLOB_DIR (the local stack's "
                "blob directory), so the student's transcripts and arguments are erased too"
            )
        with _table_errors(self.table):
            result = erasure.erase_student(
                student_id,
                store=self.store,
                blobs=self.blobs,  # type: ignore[arg-type]
                now=datetime.now(UTC),
            )
        entry = AuditEntry(
            at=datetime.now(UTC),
            actor=table_actor(),
            scope="admin",
            action="erase",
            student_id=student_id,
            counts=result.counts(),
        )
        Auditor(lambda: self.store).record(entry)
        return result.model_dump(mode="json")


def open_admin(
    *, url: str, token: str | None, table: str | None, endpoint_url: str | None = None, transport: Any = None
) -> AdminSource:
    """``--table`` wins (operators); else the API at ``--url`` with an admin ``--token``."""
    if table:
        return AdminTable(table, endpoint_url=endpoint_url)
    return AdminApi(url, token, transport=transport)
