"""OpenTelemetry out: the example tutoring server (official ``mcp`` SDK, the one-line middleware)
driven by the ``mcp`` client; every tools/call becomes one span in the SDK's in-memory exporter,
with the MCP semantic-convention attributes, while the call is still logged to the API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from session_tracker_client import Tracker
from session_tracker_client.proxy import ToolCallLog

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

from tutoring_server.server import build_server  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


class Api:
    """A stand-in ``POST /interactions`` that keeps what the tracker sent."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.calls += body.get("interactions", [body])
        return httpx.Response(201, json={"results": []})


def _tracker(provider: TracerProvider, api: Api, **options: Any) -> Tracker:
    options.setdefault("otel", True)
    return Tracker(
        "http://tracker.test",
        "token",
        otel_tracer_provider=provider,
        transport=httpx.MockTransport(api),
        **options,
    )


def _drive(tracker: Tracker, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    async def run() -> list[Any]:
        async with Client(build_server(tracker)) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    results = asyncio.run(run())
    tracker.flush(10)
    return results


def _by_tool(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {str((span.attributes or {})["gen_ai.tool.name"]): span for span in spans}


def test_each_tool_call_is_one_server_span_with_the_mcp_attributes(provider, exporter) -> None:
    api = Api()
    tracker = _tracker(provider, api)
    results = _drive(
        tracker,
        [
            ("get_student_context", {"student_id": "emma_smith"}),
            ("get_progress", {"student_id": "no_such_student"}),
        ],
    )
    assert results[1].is_error is True
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    ok, failed = _by_tool(spans)["get_student_context"], _by_tool(spans)["get_progress"]

    assert ok.name == "tools/call get_student_context"
    assert ok.kind is SpanKind.SERVER
    assert dict(ok.attributes or {}) == {
        "mcp.method.name": "tools/call",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_student_context",
        "jsonrpc.request.id": (ok.attributes or {})["jsonrpc.request.id"],
        "enduser.id": "emma_smith",
    }
    assert str((ok.attributes or {})["jsonrpc.request.id"]).isdigit()
    assert ok.status.status_code is StatusCode.UNSET
    assert ok.end_time is not None and ok.start_time is not None and ok.end_time >= ok.start_time

    assert failed.name == "tools/call get_progress"
    assert (failed.attributes or {})["error.type"] == "tool_error"
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["jsonrpc.request.id"] != (ok.attributes or {})["jsonrpc.request.id"]
    # No argument or result values without the opt-in.
    assert not any(key.startswith("gen_ai.tool.call.") for span in spans for key in (span.attributes or {}))
    # The same calls still reached the session tracker.
    assert [call["function"] for call in api.calls] == ["get_student_context", "get_progress"]


def test_argument_and_result_values_only_on_opt_in_and_redacted(provider, exporter) -> None:
    tracker = _tracker(provider, Api(), otel_content=True, redact=["answer"])
    _drive(
        tracker,
        [
            ("get_student_context", {"student_id": "emma_smith"}),
            ("record_answer", {"student_id": "emma_smith", "question_id": "q1", "answer": "secret 42"}),
        ],
    )
    spans = _by_tool(exporter.get_finished_spans())
    context = spans["get_student_context"].attributes or {}
    assert json.loads(str(context["gen_ai.tool.call.arguments"])) == {"student_id": "emma_smith"}
    assert "emma_smith" in str(context["gen_ai.tool.call.result"])
    answer = spans["record_answer"].attributes or {}
    assert "secret 42" not in str(answer["gen_ai.tool.call.arguments"])
    assert json.loads(str(answer["gen_ai.tool.call.arguments"]))["answer"] == "[redacted]"


def test_the_stdio_proxy_spans_carry_the_request_id_and_the_pipe_transport(provider, exporter) -> None:
    tracker = Tracker(
        "http://tracker.test",
        "token",
        otel_tracer_provider=provider,
        network_transport="pipe",
        transport=httpx.MockTransport(Api()),
    )
    log = ToolCallLog(tracker)
    call = {"jsonrpc": "2.0", "id": "req-7", "method": "tools/call", "params": {"name": "get_progress"}}
    call["params"]["arguments"] = {"student_id": "emma_smith"}
    log.client_line(json.dumps(call).encode() + b"\n")
    log.server_line(json.dumps({"jsonrpc": "2.0", "id": "req-7", "result": {"isError": True}}).encode() + b"\n")
    tracker.close(5)
    (span,) = exporter.get_finished_spans()
    attributes = span.attributes or {}
    assert attributes["jsonrpc.request.id"] == "req-7"
    assert attributes["network.transport"] == "pipe"
    assert attributes["error.type"] == "tool_error"
    assert attributes["enduser.id"] == "emma_smith"


def test_spans_can_be_switched_off(provider, exporter) -> None:
    _drive(_tracker(provider, Api(), otel=False), [("get_curriculum", {"subject": "mathematics"})])
    assert exporter.get_finished_spans() == ()


def test_without_opentelemetry_installed_the_client_imports_and_records_nothing_more() -> None:
    """A fresh interpreter where ``opentelemetry`` cannot be imported: no emitter, calls still logged."""
    probe = textwrap.dedent(
        """
        import importlib.abc, json, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ModuleNotFoundError(name)
                return None
        sys.meta_path.insert(0, Block())
        import httpx
        from session_tracker_client import Tracker
        sent = []
        tracker = Tracker("http://tracker.test", "t", transport=httpx.MockTransport(
            lambda r: sent.append(r) or httpx.Response(201, json={"results": []})))
        tracker.record("get_progress", {"student_id": "emma_smith"}, {"ok": 1}, started_at=0.0, duration_s=0.01)
        tracker.close(5)
        print(json.dumps({"spans": tracker.spans is not None, "sent": len(sent),
                          "otel": sorted(m for m in sys.modules if m.startswith("opentelemetry"))}))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"spans": False, "sent": 1, "otel": []}


def test_with_the_sdk_globally_configured_the_mcp_servers_own_span_gets_our_attributes() -> None:
    """The ``mcp`` 2.x SDK makes its own ``tools/call`` server span once OpenTelemetry is configured:
    the tracker adds the student (and tool_error) to it rather than a second span (the conventions'
    "SHOULD NOT create a separate span"). A fresh interpreter: the global provider is set once."""
    probe = textwrap.dedent(
        """
        import asyncio, json, sys
        from mcp import Client
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        sys.path.insert(0, "examples")
        from tutoring_server.server import build_server
        from session_tracker_client import Tracker

        async def main():
            async with Client(build_server(Tracker(enabled=False))) as client:
                await client.call_tool("get_progress", {"student_id": "emma_smith"})
                await client.call_tool("get_progress", {"student_id": "no_such_student"})

        asyncio.run(main())
        print(json.dumps([
            {"name": s.name, "attributes": dict(s.attributes), "status": s.status.status_code.name}
            for s in exporter.get_finished_spans() if s.name.startswith("tools/call")
        ]))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    spans = json.loads(out.stdout.strip().splitlines()[-1])
    assert [span["name"] for span in spans] == ["tools/call get_progress", "tools/call get_progress"]
    ok, failed = spans
    assert ok["attributes"]["enduser.id"] == "emma_smith"
    assert ok["attributes"]["gen_ai.operation.name"] == "execute_tool"
    assert "error.type" not in ok["attributes"]
    assert failed["attributes"]["enduser.id"] == "no_such_student"
    assert failed["attributes"]["error.type"] == "tool_error"
    assert failed["status"] == "ERROR"
