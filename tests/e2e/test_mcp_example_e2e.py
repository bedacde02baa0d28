"""The example tutoring server, wired with the middleware, driven by the official ``mcp`` client
over stdio and streamable HTTP against the local stack; the calls are read back as sessions."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_helpers import current_session, session_with
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from session_tracker.store import DynamoStore
from session_tracker_client import SenderOptions, Tracker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TOKEN = "e2e-ingest-token"
sys.path.insert(0, str(EXAMPLES))

from tutoring_server.server import build_server  # noqa: E402

pytestmark = pytest.mark.e2e


def server_env(local_stack) -> dict[str, str]:
    return {"SESSION_TRACKER_URL": local_stack.url, "INGEST_TOKEN": TOKEN, "PYTHONPATH": str(EXAMPLES)}


async def tutoring_calls(client: Client) -> dict[str, Any]:
    """One tutoring conversation for emma and one for liam, interleaved."""
    results = {}
    for name, args in [
        ("get_student_context", {"student_id": "emma_smith"}),
        ("get_student_context", {"student_id": "liam_jones"}),
        ("get_curriculum", {"subject": "mathematics", "grade": 5}),
        ("get_progress", {"student_id": "emma_smith", "subject": "mathematics"}),
        ("record_answer", {"student_id": "emma_smith", "question_id": "math_frac_2", "answer": "3/4"}),
        ("record_answer", {"student_id": "liam_jones", "question_id": "no_such_question", "answer": "4"}),
        ("get_progress", {"student_id": "liam_jones"}),
    ]:
        result = await client.call_tool(name, args)
        results[f"{name}:{args.get('student_id')}"] = result
    return results


def assert_emma_and_liam_sessions(store: DynamoStore) -> None:
    emma = current_session(store, "emma_smith", 3)
    liam = current_session(store, "liam_jones", 3)
    for session, student in ((emma, "emma_smith"), (liam, "liam_jones")):
        first = session.mcp_interactions[0].timestamp
        assert session.session_id == f"{student}_{first:%Y%m%d_%H%M}"
        assert session.student_id == student and session.status == "active"
    assert [i.function for i in emma.mcp_interactions] == ["get_student_context", "get_progress", "record_answer"]
    assert [i.function for i in liam.mcp_interactions] == ["get_student_context", "record_answer", "get_progress"]
    context = emma.mcp_interactions[0]
    assert context.data_provided == ["profile", "progress", "recent_activity"]
    assert context.subjects == ["mathematics", "reading"]
    assert context.arguments == {"student_id": "emma_smith"}
    assert context.response_size > 1000 and context.duration_ms > 0
    assert emma.mcp_interactions[2].subjects == ["mathematics"] and not emma.mcp_interactions[2].is_error
    assert liam.mcp_interactions[1].is_error is True
    assert emma.session_summary.data_requests == 3
    assert "mathematics" in emma.session_summary.subjects_accessed


def test_stdio_example_server_calls_are_grouped_into_each_students_session(local_stack, store) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "tutoring_server"], cwd=EXAMPLES, env=server_env(local_stack)
    )

    async def drive() -> None:
        async with Client(params) as client:
            results = await tutoring_calls(client)
        assert results["get_student_context:emma_smith"].structured_content["profile"]["name"] == "Emma Smith"
        assert results["record_answer:liam_jones"].is_error is True

    asyncio.run(drive())
    assert_emma_and_liam_sessions(store)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server(local_stack) -> Iterator[str]:
    """The example server as its own process on streamable HTTP."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tutoring_server", "--transport", "streamable-http", "--port", str(port)],
        cwd=EXAMPLES,
        env=os.environ | server_env(local_stack),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("example server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def test_streamable_http_example_server_logs_into_the_right_session(local_stack, store, http_server) -> None:
    async def drive() -> None:
        async with Client(http_server) as client:
            for name, args in [
                ("get_student_context", {"student_id": "sofia_garcia"}),
                ("get_progress", {"student_id": "sofia_garcia"}),
                ("record_answer", {"student_id": "sofia_garcia", "question_id": "math_mult_1", "answer": "56"}),
            ]:
                result = await client.call_tool(name, args)
                assert not result.is_error

    asyncio.run(drive())
    sofia = current_session(store, "sofia_garcia", 3)
    assert [i.function for i in sofia.mcp_interactions] == ["get_student_context", "get_progress", "record_answer"]
    assert sofia.session_id == f"sofia_garcia_{sofia.mcp_interactions[0].timestamp:%Y%m%d_%H%M}"
    assert sofia.mcp_interactions[2].data_provided == ["answer_check"]


class SteppingClock:
    """Wall clock for the tracker: each call is at the next of the given times."""

    def __init__(self, times: list[datetime]) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0).timestamp()


def test_a_gap_over_the_timeout_starts_a_new_session_over_streamable_http(local_stack, store) -> None:
    import uvicorn

    t0 = datetime(2026, 1, 10, 16, 0, 7, tzinfo=UTC)
    times = [t0, t0 + timedelta(minutes=4), t0 + timedelta(minutes=9), t0 + timedelta(minutes=25)]
    tracker = Tracker(local_stack.url, TOKEN, clock=SteppingClock(times), options=SenderOptions(flush_interval=0.05))
    app = build_server(tracker).streamable_http_app()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)

        async def drive() -> None:
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                for tool in ("get_student_context", "get_progress", "get_progress", "get_student_context"):
                    await client.call_tool(tool, {"student_id": "ava_chen"})

        asyncio.run(drive())
        assert tracker.flush(10)
    finally:
        server.should_exit = True
        thread.join(10)
        tracker.close(1)
    first = session_with(store, "ava_chen_20260110_1600", 3)
    second = session_with(store, "ava_chen_20260110_1625", 1)
    assert [i.timestamp for i in first.mcp_interactions] == times[:3]
    assert [i.function for i in first.mcp_interactions] == ["get_student_context", "get_progress", "get_progress"]
    assert [i.function for i in second.mcp_interactions] == ["get_student_context"]
    assert first.session_summary.duration_estimated != second.session_summary.duration_estimated


@pytest.fixture
def lossy_relay(local_stack) -> Iterator[tuple[str, list[int], list[Any]]]:
    """Forwards POST /interactions to the stack, but answers the first attempt 502 (response lost)."""
    statuses: list[int] = []
    answers: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            upstream = httpx.post(
                local_stack.url + self.path,
                content=body,
                headers={"Authorization": self.headers["Authorization"], "Content-Type": "application/json"},
                timeout=30,
            )
            statuses.append(upstream.status_code)
            answers.append(upstream.json())
            answer = 502 if len(statuses) == 1 else upstream.status_code
            self.send_response(answer)
            self.send_header("Content-Length", str(len(upstream.content)))
            self.end_headers()
            self.wfile.write(upstream.content)

    relay = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{relay.server_address[1]}", statuses, answers
    finally:
        relay.shutdown()
        relay.server_close()


def test_a_retry_after_a_lost_response_is_stored_once(local_stack, store, lossy_relay) -> None:
    url, statuses, answers = lossy_relay
    student = f"e2e_retry_{os.getpid()}"
    tracker = Tracker(url, TOKEN, options=SenderOptions(flush_interval=0.05, backoff_base=0.05))
    for tool in ("get_student_context", "get_progress", "record_answer"):
        with tracker.call(tool, {"student_id": student}) as call:
            call.result = {"profile": {"subject": "mathematics"}}
    assert tracker.flush(15)
    tracker.close()
    assert statuses[:2] == [202, 202]  # stored, answer lost, retried
    assert [r["duplicate"] for r in answers[0]["results"]] == [False, False, False]
    assert [r["duplicate"] for r in answers[1]["results"]] == [True, True, True]
    session = current_session(store, student, 3)
    assert [i.function for i in session.mcp_interactions] == ["get_student_context", "get_progress", "record_answer"]
    assert len({i.interaction_id for i in session.mcp_interactions}) == 3
    assert tracker.stats["sent"] == 3 and tracker.stats["retries"] >= 1
    assert json.loads(session.model_dump_json())["mcp_interactions"][0]["subjects"] == ["mathematics"]
