"""``session-tracker mcp-proxy`` in front of unmodified MCP servers (``mcp-server-time`` from
PyPI, and the example server with its middleware switched off), driven by the official ``mcp``
client: every answer is identical to a direct connection and every tools/call is logged."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import current_session
from mcp import Client
from mcp.client.stdio import StdioServerParameters

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
TOKEN = "e2e-ingest-token"
TIME_SERVER = [str(BIN / "mcp-server-time"), "--local-timezone", "UTC"]

pytestmark = pytest.mark.e2e


def proxied(local_stack, server: list[str], *options: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=str(BIN / "session-tracker"),
        args=["mcp-proxy", "--url", local_stack.url, *options, "--", *server],
        env=(env or {}) | {"INGEST_TOKEN": TOKEN},  # the token from the environment, as documented
    )


def direct(server: list[str], env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(command=server[0], args=server[1:], env=env)


def dump(value: Any) -> Any:
    """A result without the transport-specific ``_meta``; errors as their message."""
    if isinstance(value, Exception):
        return f"{type(value).__name__}: {value}"
    return value.model_dump(exclude={"meta"}, by_alias=True)


TIME_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("convert_time", {"source_timezone": "Europe/London", "time": "14:30", "target_timezone": "Asia/Tokyo"}),
    ("convert_time", {"source_timezone": "America/New_York", "time": "09:05", "target_timezone": "UTC"}),
    ("convert_time", {"source_timezone": "Not/AZone", "time": "09:05", "target_timezone": "UTC"}),
    ("get_current_time", {"timezone": "Europe/Paris"}),
]


async def time_session(params: StdioServerParameters) -> dict[str, Any]:
    async with Client(params) as client:
        out: dict[str, Any] = {
            "server": client.server_info.name if client.server_info else None,
            "protocol": client.protocol_version,
            "tools": dump(await client.list_tools()),
        }
        for i, (name, args) in enumerate(TIME_CALLS):
            result = await client.call_tool(name, args)
            if name == "get_current_time":  # the time moves on between the two runs: compare its shape
                out[f"call{i}"] = (result.is_error, sorted(result.structured_content or {}))
            else:
                out[f"call{i}"] = dump(result)
        try:
            out["unknown_tool"] = dump(await client.call_tool("no_such_tool", {}))
        except Exception as exc:
            out["unknown_tool"] = dump(exc)
    return out


def test_mcp_server_time_behind_the_proxy_answers_identically_and_is_logged(local_stack, store) -> None:
    student = f"e2e_time_{uuid.uuid4().hex[:8]}"
    plain = asyncio.run(time_session(direct(TIME_SERVER)))
    logged = asyncio.run(time_session(proxied(local_stack, TIME_SERVER, "--student-id", student)))
    assert plain == logged
    assert plain["server"] == "mcp-time"
    assert plain["call2"]["isError"] is True
    session = current_session(store, student, 5)
    assert [i.function for i in session.mcp_interactions] == [
        "convert_time",
        "convert_time",
        "convert_time",
        "get_current_time",
        "no_such_tool",
    ]
    assert [i.is_error for i in session.mcp_interactions] == [False, False, True, False, True]
    first = session.mcp_interactions[0]
    assert first.arguments == TIME_CALLS[0][1]
    assert first.data_provided == ["source", "target", "time_difference"]
    assert first.response_size > 100 and first.duration_ms > 0
    assert session.session_id == f"{student}_{first.timestamp:%Y%m%d_%H%M}"


async def example_session(params: StdioServerParameters) -> dict[str, Any]:
    async with Client(params) as client:
        return {
            "tools": dump(await client.list_tools()),
            "templates": dump(await client.list_resource_templates()),
            "resource": dump(await client.read_resource("curriculum://science")),
            "prompts": dump(await client.list_prompts()),
            "prompt": dump(
                await client.get_prompt("lesson_plan", {"student_id": "ava_chen", "subject": "mathematics"})
            ),
            "call": dump(await client.call_tool("get_curriculum", {"subject": "reading", "learner": "noah_b"})),
            "bad": dump(await client.call_tool("get_curriculum", {"subject": "history", "learner": "noah_b"})),
        }


def test_resources_and_prompts_pass_through_and_the_student_arg_is_configurable(local_stack, store) -> None:
    student = f"e2e_noah_{uuid.uuid4().hex[:8]}"
    server = [sys.executable, "-m", "tutoring_server", "--no-logging"]
    env = {"PYTHONPATH": str(EXAMPLES), "SESSION_TRACKER_URL": ""}
    plain = asyncio.run(example_session(direct(server, env)))
    logged = asyncio.run(
        example_session(proxied(local_stack, server, "--student-id-arg", "learner", "--student-id", student, env=env))
    )
    assert plain == logged
    assert "science" in str(plain["resource"])
    session = current_session(store, "noah_b", 2)
    assert [(i.function, i.is_error) for i in session.mcp_interactions] == [
        ("get_curriculum", False),
        ("get_curriculum", True),
    ]
    assert session.mcp_interactions[0].subjects == ["reading"]
    assert store.get_head(student) is None  # no call lacked the learner argument


def test_proxy_answers_stay_identical_when_the_endpoint_is_down(local_stack) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SESSION_TRACKER_URL"}
    down = StdioServerParameters(
        command=str(BIN / "session-tracker"),
        args=[
            "mcp-proxy",
            "--url",
            "http://127.0.0.1:9",
            "--student-id",
            "x",
            "--flush-timeout",
            "0.2",
            "--",
            *TIME_SERVER,
        ],
        env=env,
    )
    t0 = time.perf_counter()
    logged = asyncio.run(time_session(down))
    elapsed = time.perf_counter() - t0
    assert logged == asyncio.run(time_session(direct(TIME_SERVER)))
    assert elapsed < 15
