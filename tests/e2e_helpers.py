"""Helpers the end-to-end tests share: the local stack's credentials (tests/conftest.py starts it
with these), request headers, timestamps as clients send them, and waits on what the stack does
in the background (analyses, sessions filling up)."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
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


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def cmdline(pid: int) -> bytes:
    """The command line of ``pid`` (empty when it is gone)."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait until the ``session-tracker serve`` process ``proc`` answers ``GET /health`` with 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "session-tracker serve exited"
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the stack did not become healthy")


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started with ``start_new_session=True`` and its group (TERM, then KILL)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def concurrent_batch_mismatches(url: str, auth: dict[str, str], *, prefix: str, per_worker: int) -> list[str]:
    """8 clients at once, each posting ``per_worker`` batches of 5 calls for a new student: the
    answers whose session ids are not that student's one session."""
    mismatches: list[str] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for i in range(per_worker):
                student = f"{prefix}_{w}_{i}"
                calls = [
                    {"student_id": student, "function": "get_progress", "timestamp": f"2026-02-01T10:00:0{k}Z"}
                    for k in range(5)
                ]
                answer = http.post("/interactions", json={"interactions": calls}, headers=auth).json()
                sessions = {r.get("session_id") for r in answer.get("results", [])}
                if sessions != {f"{student}_20260201_1000"}:
                    with lock:
                        mismatches.append(f"{student} -> {sessions}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    return mismatches


def burst_outcomes(url: str, auth: dict[str, str], *, prefix: str, connections: int = 100) -> list[str]:
    """``connections`` raw-socket clients connect in the same instant and each posts one call
    (``Connection: close``): the status code each got, or the error it met. Raw sockets, all
    connected before any sends, so the listen backlog and the accept loop are what is tested."""
    parts = urllib.parse.urlsplit(url)
    barrier = threading.Barrier(connections)
    outcomes: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        body = json.dumps(
            {"student_id": f"{prefix}_{n}", "function": "get_progress", "timestamp": "2026-02-02T10:00:00Z"}
        ).encode()
        request = (
            f"POST /interactions HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: {auth['Authorization']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        try:
            barrier.wait(30)
            with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
                sock.sendall(request)
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else f"bad: {answer[:60]!r}"
        except OSError as exc:
            status = f"{type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(status)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return outcomes
