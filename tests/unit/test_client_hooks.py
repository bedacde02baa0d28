"""The one-line hooks for the official ``mcp`` SDK and ``fastmcp``, driven in-process by each
SDK's own client, against local endpoints that work, fail, hang or are gone."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from client_endpoints import endpoint, refused_url

from session_tracker_client import SenderOptions, Tracker

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

from tutoring_server import fastmcp_server, server  # noqa: E402

FAST = SenderOptions(flush_interval=0.02, backoff_base=0.01, backoff_max=0.05, timeout=1.0)

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_student_context", {"student_id": "emma_smith"}),
    ("get_progress", {"student_id": "emma_smith", "subject": "mathematics"}),
    ("get_curriculum", {"subject": "science", "grade": 7}),
    ("record_answer", {"student_id": "emma_smith", "question_id": "math_frac_1", "answer": "2/3"}),
    ("get_progress", {"student_id": "nobody"}),
]


async def drive_mcp(srv: Any) -> list[dict[str, Any]]:
    from mcp import Client

    out = []
    async with Client(srv) as client:
        await client.list_tools()
        await client.list_resource_templates()
        await client.get_prompt("lesson_plan", {"student_id": "emma_smith", "subject": "reading"})
        for name, args in CALLS:
            result = await client.call_tool(name, args)
            out.append(result.model_dump(exclude={"meta"}))
    return out


def test_mcp_sdk_middleware_logs_every_tool_call_and_changes_no_result() -> None:
    with endpoint() as ep:
        tracker = Tracker(ep.url, "tok", options=FAST)
        logged = asyncio.run(drive_mcp(server.build_server(tracker)))
        plain = asyncio.run(drive_mcp(server.build_server(logging=False)))
        assert tracker.flush(5)
        tracker.close()
    assert logged == plain
    rows = [(i["function"], i["student_id"], i["is_error"]) for i in ep.accepted]
    assert rows == [
        ("get_student_context", "emma_smith", False),
        ("get_progress", "emma_smith", False),
        ("record_answer", "emma_smith", False),
        ("get_progress", "nobody", True),
    ]  # get_curriculum carries no student id: skipped, and counted
    assert tracker.stats["skipped"] == 1
    context, progress, answer = ep.accepted[:3]
    assert context["data_provided"] == ["profile", "progress", "recent_activity"]
    assert context["subjects"] == ["mathematics", "reading"]
    assert context["response_size"] > 1000 and context["duration_ms"] > 0
    assert progress["subjects"] == ["mathematics"]
    assert answer["data_provided"] == ["answer_check"] and answer["subjects"] == ["mathematics"]


def test_fastmcp_middleware_logs_every_tool_call_and_keeps_tool_errors() -> None:
    from fastmcp import Client
    from fastmcp.exceptions import ToolError

    async def drive(srv: Any) -> None:
        async with Client(srv) as client:
            result = await client.call_tool("get_student_context", {"student_id": "liam_jones"})
            assert result.data["profile"]["name"] == "Liam Jones"
            with pytest.raises(ToolError, match="unknown student"):
                await client.call_tool("get_progress", {"student_id": "nobody"})

    with endpoint() as ep:
        tracker = Tracker(ep.url, "tok", options=FAST, redact=["answer"])
        srv = fastmcp_server.build_server(tracker)
        asyncio.run(drive(srv))
        assert tracker.flush(5)
        tracker.close()
    assert [(i["function"], i["student_id"], i["is_error"]) for i in ep.accepted] == [
        ("get_student_context", "liam_jones", False),
        ("get_progress", "nobody", True),
    ]
    assert ep.accepted[0]["subjects"] == ["mathematics", "science"]


def test_instrument_adds_the_middleware_to_an_existing_server() -> None:
    from mcp.server.mcpserver import MCPServer

    from session_tracker_client.mcp_middleware import SessionTrackerMiddleware, instrument

    srv = MCPServer("x")
    tracker = instrument(srv, Tracker("http://127.0.0.1:9"))
    assert isinstance(srv.middleware[-1], SessionTrackerMiddleware)
    assert srv.middleware[-1].tracker is tracker
    tracker.close(0)


async def _timed_calls(plain: Any, tracked: Any, n: int) -> tuple[list[float], list[float], list[bool]]:
    """Alternate calls on a server without and with logging, so load hits both alike."""
    from mcp import Client

    base, times, ok = [], [], []
    async with Client(plain) as without, Client(tracked) as with_logging:
        for client in (without, with_logging) * 3:
            await client.call_tool("get_student_context", {"student_id": "emma_smith"})
        for _ in range(n):
            for client, into in ((without, base), (with_logging, times)):
                t0 = time.perf_counter()
                result = await client.call_tool("get_student_context", {"student_id": "emma_smith"})
                into.append(time.perf_counter() - t0)
                ok.append(result.structured_content["profile"]["name"] == "Emma Smith")
    return base, times, ok


@pytest.mark.parametrize("mode", ["refused", "500", "hangs beyond the timeout"])
def test_tool_calls_stay_correct_and_fast_when_the_endpoint_is_unusable(mode: str) -> None:
    n = 150
    with endpoint(500, hang=mode.startswith("hangs")) as ep:
        url = refused_url() if mode == "refused" else ep.url
        tracker = Tracker(
            url, "tok", options=SenderOptions(max_queue=50, timeout=0.3, backoff_base=0.01, flush_interval=0.01)
        )
        baseline, times, ok = asyncio.run(
            _timed_calls(server.build_server(logging=False), server.build_server(tracker), n)
        )
        deadline = time.monotonic() + 10
        while tracker.stats["failed_attempts"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # the worker has met the failure at least once
        stats = tracker.stats
        t0 = time.perf_counter()
        tracker.close(timeout=0.3)
        closing = time.perf_counter() - t0
    assert all(ok)
    assert stats["failed_attempts"] >= 1 and stats["sent"] == 0
    assert stats["dropped"] > 0  # the queue stayed at its bound of 50
    assert max(times) < 0.25, "a tool call waited on the logging endpoint"
    assert statistics.median(times) < statistics.median(baseline) * 2 + 0.002
    assert closing < 1.0
