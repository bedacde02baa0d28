"""MCP tool-call latency: no logging vs our middleware vs our stdio proxy vs a peer SDK (agentcat).

The example tutoring server (examples/tutoring_server) runs four times as its own
stdio process - plain, with our ``SessionTrackerMiddleware``, plain behind
``session-tracker mcp-proxy``, and with ``agentcat.track`` (the SDK formerly published
as ``mcpcat``) - and the official ``mcp`` client calls tools on all four in the same
run, interleaved in a shuffled order each round so machine noise hits every row alike.
Logging goes to a local sink that accepts everything (202), so the figures are the
cost on the tool-call path, not the ingest API's. Also measures the in-process cost
of queueing one call (``Tracker.record``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import sys
import threading
import time
from contextlib import AsyncExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.stats import ratio, summary

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
TOKEN = "bench-token"
STUDENT = "bench_student"
"""Student id for calls without a ``student_id`` argument (get_curriculum), so every call is logged."""
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_student_context", {"student_id": "emma_smith"}),
    ("get_progress", {"student_id": "liam_jones", "subject": "mathematics"}),
    ("get_curriculum", {"subject": "mathematics", "grade": 5}),
]


class Sink:
    """A local HTTP endpoint answering 202 to everything; counts what arrives per path."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.interactions = 0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._lock:
                    sink.counts[self.path] = sink.counts.get(self.path, 0) + 1
                    if self.path == "/interactions":
                        sink.interactions += len(json.loads(body).get("interactions", [None]))
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_PUT = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- server side (subprocess)
def serve(mode: str, sink: str) -> None:
    """Run the example server on stdio: ``none``, ``middleware`` or ``agentcat``."""
    sys.path.insert(0, str(EXAMPLES))
    from tutoring_server.server import build_server

    from session_tracker_client import Tracker

    if mode == "middleware":
        server = build_server(Tracker(sink, TOKEN, student_id=STUDENT))
    else:
        server = build_server(logging=False)
    if mode == "agentcat":
        import agentcat

        agentcat.track(
            server,
            "proj_bench",
            agentcat.AgentCatOptions(
                api_base_url=sink,
                disable_diagnostics=True,
                enable_tool_call_context=False,
                enable_report_missing=False,
            ),
        )
    server.run("stdio")


# --------------------------------------------------------------------------- client side
def _params(command: list[str]) -> Any:
    from mcp.client.stdio import StdioServerParameters

    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLES)]), "DISABLE_DIAGNOSTICS": "true"}
    return StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=ROOT)


def _server(mode: str, sink: str) -> list[str]:
    return [sys.executable, "-m", "bench.mcp_overhead", "--serve", mode, "--sink", sink]


async def _measure(configs: dict[str, list[str]], n: int, warmup: int) -> dict[str, list[float]]:
    from mcp import Client

    samples: dict[str, list[float]] = {name: [] for name in configs}
    rng = random.Random(7)
    async with AsyncExitStack() as stack:
        clients = {name: await stack.enter_async_context(Client(_params(cmd))) for name, cmd in configs.items()}
        for name, client in clients.items():
            for i in range(warmup):
                tool, args = CALLS[i % len(CALLS)]
                result = await client.call_tool(tool, args)
                assert not result.is_error, (name, result)
        order = list(clients)
        for i in range(n):
            rng.shuffle(order)
            tool, args = CALLS[i % len(CALLS)]
            for name in order:
                t0 = time.perf_counter()
                result = await clients[name].call_tool(tool, args)
                samples[name].append(time.perf_counter() - t0)
                assert not result.is_error, (name, result)
    return samples


def _record_cost(sink: str, bursts: int, burst: int = 1000) -> dict[str, float]:
    """Microseconds per ``Tracker.record`` (the hot path of every hook), with the sender running.

    Bursts of ``burst`` calls (well under the queue bound, so nothing is dropped), each
    followed by a flush; the figure is the median and p99 of the per-burst mean.
    """
    import statistics

    from bench.stats import percentile
    from session_tracker_client import Tracker

    tracker = Tracker(sink, TOKEN)
    args = {"student_id": "emma_smith", "subject": "mathematics"}
    result = {"profile": {"grade": 5}, "progress": {"mathematics": {"mastery": 0.6}}}
    per_call: list[float] = []
    for _ in range(bursts):
        t0 = time.perf_counter()
        for _ in range(burst):
            tracker.record("get_progress", args, result, started_at=t0, duration_s=0.001)
        per_call.append((time.perf_counter() - t0) / burst * 1e6)
        tracker.flush(30)
    tracker.close(5)
    return {
        "calls": bursts * burst,
        "median_us": round(statistics.median(per_call), 3),
        "p99_us": round(percentile(per_call, 99), 3),
        "dropped": tracker.stats["dropped"],
    }


def run(quick: bool = False) -> dict[str, Any]:
    n = 200 if quick else 1000
    warmup = 20
    sink = Sink()
    try:
        agentcat_available = importlib.util.find_spec("agentcat") is not None
        proxy = [
            str(BIN / "session-tracker"),
            "mcp-proxy",
            "--url",
            sink.url,
            "--token",
            TOKEN,
            "--student-id",
            STUDENT,
        ]
        configs = {
            "no logging": _server("none", sink.url),
            "our middleware": _server("middleware", sink.url),
            "our mcp-proxy": [*proxy, "--", *_server("none", sink.url)],
        }
        if agentcat_available:
            configs["agentcat (peer SDK)"] = _server("agentcat", sink.url)
        samples = asyncio.run(_measure(configs, n, warmup))
        expected = 2 * (n + warmup)  # middleware + proxy; the servers flushed at exit
        deadline = time.monotonic() + 10
        while sink.interactions < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        counts = dict(sink.counts)
        interactions = sink.interactions
        record = _record_cost(sink.url, 5 if quick else 30)
    finally:
        sink.close()
    rows = {name: summary(values) for name, values in samples.items()}
    base = rows["no logging"]
    ratios = {name: ratio(row, base) for name, row in rows.items()}
    agentcat_requests = sum(v for k, v in counts.items() if k != "/interactions")
    lines = [
        "## MCP tool-call overhead",
        "",
        f"The example tutoring server over stdio, called {n} times per row by the official `mcp` client, "
        f"rows interleaved in shuffled order each round (after {warmup} warm-up calls each); logging goes to a "
        "local sink answering 202. Ratios are against the same server with no logging, measured in the same run.",
        "",
        "| path | n | median ms | p99 ms | median ratio | p99 ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['n']} | {row['median_ms']:.3f} | {row['p99_ms']:.3f} | "
            f"{ratios[name]['median']} | {ratios[name]['p99']} |"
        )
    if not agentcat_available:
        lines.append("| agentcat (peer SDK) | - | not installed | | | |")
    lines += [
        "",
        f"Queueing one call in-process (`Tracker.record`, the hot path of every hook, sender running): "
        f"median **{record['median_us']:.2f} µs**, p99 {record['p99_us']:.2f} µs over {record['calls']} calls. "
        f"Tool calls the sink received from our middleware and proxy: {interactions} of {expected} "
        f"({'all delivered' if interactions == expected else 'SOME MISSING'}); "
        f"agentcat sent {agentcat_requests} requests.",
    ]
    return {
        "description": "MCP tool-call latency over stdio: no logging vs our middleware, our proxy and agentcat",
        "n": n,
        "rows": rows,
        "ratios_to_no_logging": ratios,
        "record_us": record,
        "agentcat_installed": agentcat_available,
        "sink_requests": counts,
        "sink_interactions": interactions,
        "expected_interactions": expected,
        "markdown": "\n".join(lines),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=["none", "middleware", "agentcat"])
    parser.add_argument("--sink", default="")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.sink)
    else:
        print(json.dumps(run(quick=args.quick), indent=2))


if __name__ == "__main__":
    main()
