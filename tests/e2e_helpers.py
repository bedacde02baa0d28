"""Helpers the end-to-end tests share: the local stack's credentials (tests/conftest.py starts it
with these), request headers, timestamps as clients send them, and waits on what the stack does
in the background (analyses, sessions filling up)."""

from __future__ import annotations

import copy
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from samples import vapi_sample

from session_tracker.models import SessionExport
from session_tracker.sessions import read_export

INGEST_TOKEN = "e2e-ingest-token"
READ_TOKEN = "e2e-read-token"
ADMIN_TOKEN = "e2e-admin-token"
VAPI_SECRET = "e2e-vapi-secret"
RETELL_API_KEY = "e2e-retell-api-key"
ELEVENLABS_SECRET = "e2e-elevenlabs-secret"

INGEST = {"Authorization": f"Bearer {INGEST_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VAPI = {"Authorization": f"Bearer {VAPI_SECRET}"}
VAPI_ROUTE = "/webhook/vapi/session-complete"


def z(at: datetime) -> str:
    """A UTC time as clients send it: milliseconds and a ``Z``."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def wait_for_analysis(http: httpx.Client, session_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The session (read over the API) once its analysis has finished, ok or failed."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = http.get(f"/sessions/{session_id}", headers=READ)
        if response.status_code == 200:
            body = response.json()
            if (body.get("analysis") or {}).get("status") in ("ok", "failed"):
                return body
        time.sleep(0.25)
    raise AssertionError(f"no analysis for {session_id} within {timeout}s: {body.get('status')} {body.get('analysis')}")


def vapi_report(student: str, call_id: str, session_id: str, started: datetime) -> dict[str, Any]:
    """The shared full VAPI end-of-call report, re-keyed to a test's student, call, session and
    start (the call lasts six minutes)."""
    body = copy.deepcopy(vapi_sample("end-of-call-report.full"))
    message = body["message"]
    message["call"]["id"] = call_id
    overrides = message["call"].setdefault("assistantOverrides", {})
    overrides.setdefault("variableValues", {})["student_id"] = student
    overrides.setdefault("metadata", {})["session_id"] = session_id
    ended = started + timedelta(minutes=6)
    message["startedAt"], message["endedAt"] = z(started), z(ended)
    message["timestamp"] = int(ended.timestamp() * 1000)
    return body


def current_session(store: Any, student: str, calls: int, timeout: float = 20) -> SessionExport:
    """The student's current session once it holds ``calls`` tool calls."""
    deadline = time.monotonic() + timeout
    seen: SessionExport | None = None
    while time.monotonic() < deadline:
        head = store.get_head(student)
        if head is not None:
            seen = read_export(head.session_id, store=store)
            if seen is not None and len(seen.mcp_interactions) >= calls:
                return seen
        time.sleep(0.2)
    raise AssertionError(f"{student}: expected {calls} logged calls, found {seen}")


def session_with(store: Any, session_id: str, calls: int, timeout: float = 20) -> SessionExport:
    """The session once it holds ``calls`` tool calls."""
    deadline = time.monotonic() + timeout
    seen: SessionExport | None = None
    while time.monotonic() < deadline:
        seen = read_export(session_id, store=store)
        if seen is not None and len(seen.mcp_interactions) >= calls:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{session_id}: expected {calls} calls, found {seen}")


BODY_METHODS = {"POST", "PUT", "PATCH"}


def body_routes(template) -> list[tuple[str, str]]:
    """(method, path) of every HttpApi event in template.yaml that takes a body."""
    routes = set()
    for function in template.functions():
        for event in function.events:
            method = str(event.properties.get("Method", "ANY")).upper()
            if event.type == "HttpApi" and method in BODY_METHODS | {"ANY"}:
                routes.add(("POST" if method == "ANY" else method, str(event.properties["Path"])))
    return sorted(routes)
