"""MCP tool-call latency: no logging vs our middleware vs our stdio proxy vs a peer SDK (agentcat),
with the logging endpoint healthy, slow and down, beside the floor for any proxy (a minimal byte relay).

The example tutoring server (examples/tutoring_server) runs as its own stdio process -
plain, with our ``SessionTrackerMiddleware``, plain behind ``session-tracker mcp-proxy``,
plain behind a minimal ``select``/``os.read``/``os.write`` relay (bench/relay_floor.py),
and with ``agentcat.track`` (the SDK formerly published as ``mcpcat``) - and the official
``mcp`` client calls tools on all of them. The run has three phases, one per state of
the logging endpoint; each phase starts fresh processes (a no-logging baseline and the
three logging paths) and interleaves their calls in a shuffled order each round, so
machine noise hits every row alike and every ratio is against a baseline measured in
the same phase of the same run.

Endpoints (all on 127.0.0.1, one per logging process so deliveries can be counted per path):

- healthy: answers 202 at once;
- slow: accepts the connection and holds every request until the phase ends - longer than
  our client's request timeout (5 s) and agentcat's (10 s);
- down: a port where nothing listens (connections are refused).

Also measures the in-process cost of queueing one call (``Tracker.record``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any, TextIO

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
BASELINE = "no logging"
MIDDLEWARE = "our middleware"
PROXY = "our mcp-proxy"
RELAY = "minimal byte relay (floor)"
AGENTCAT = "agentcat (peer SDK)"
PHASES = ("healthy", "slow", "down")
FLUSH_AT_EXIT = 0.5
"""Seconds each of our logging paths may spend sending what is left when its server exits.

Kept short because the ``mcp`` client stops a stdio server that has not exited 2 s after its
stdin closes; with a slow endpoint a longer flush would be cut off before its report is written.
"""
CALL_TIMEOUT = 30.0
"""No single tool call may take longer than this (the bench fails instead of hanging)."""
DELIVERY_WAIT = 10.0
"""Healthy phase: at most this long for every logged call to reach its endpoint."""
STATS_MARK = "BENCH_STATS "
PROXY_REPORT = re.compile(r"tool calls not logged: (\d+) dropped, (\d+) refused, (\d+) without a student id")


def _endpoints() -> Any:
    """The local misbehaving endpoints shared with the client tests (tests/client_endpoints.py)."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import client_endpoints

    return client_endpoints


# --------------------------------------------------------------------------- server side (subprocess)
def _report(**fields: Any) -> None:
    print(STATS_MARK + json.dumps(fields), file=sys.stderr, flush=True)


def serve(mode: str, sink: str) -> None:
    """Run the example server on stdio: ``none``, ``middleware`` or ``agentcat``.

    When the client disconnects, the logging modes write what their client reports to
    stderr (one ``BENCH_STATS`` JSON line at disconnect, one after the exit flush).
    """
    sys.path.insert(0, str(EXAMPLES))
    from tutoring_server.server import build_server

    from session_tracker_client import Tracker

    tracker = Tracker(sink, TOKEN, student_id=STUDENT) if mode == "middleware" else None
    server = build_server(tracker) if tracker else build_server(logging=False)
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
    if tracker is not None:
        _report(when="disconnect", **tracker.stats, pending=tracker.sender.pending() if tracker.sender else 0)
        tracker.close(FLUSH_AT_EXIT)
        _report(when="exit", **tracker.stats)
    elif mode == "agentcat":
        from agentcat.modules.event_queue import event_queue

        _report(when="disconnect", **event_queue.get_stats())


# --------------------------------------------------------------------------- client side
def _params(command: list[str]) -> Any:
    from mcp.client.stdio import StdioServerParameters

    env = {
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLES)]),
        "DISABLE_DIAGNOSTICS": "true",
        "INGEST_TOKEN": TOKEN,
    }
    return StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=ROOT)


def _server(mode: str, sink: str) -> list[str]:
    return [sys.executable, "-m", "bench.mcp_overhead", "--serve", mode, "--sink", sink]


def _relay() -> list[str]:
    return [sys.executable, "-m", "bench.relay_floor", "--", *_server("none", "")]


def _proxy(sink: str) -> list[str]:
    # The token comes from INGEST_TOKEN in the environment (see _params), as documented.
    return [
        str(BIN / "session-tracker"),
        "mcp-proxy",
        "--url",
        sink,
        "--student-id",
        STUDENT,
        "--flush-timeout",
        str(FLUSH_AT_EXIT),
        "--",
        *_server("none", sink),
    ]


async def _measure(
    configs: dict[str, list[str]],
    errlogs: Mapping[str, TextIO],
    n: int,
    warmup: int,
    delivered: Any = None,
) -> tuple[dict[str, list[float]], float]:
    """Interleaved tool calls on every config; returns the samples and the seconds spent shutting down.

    ``delivered`` (healthy phase) is polled, while the servers still run, until it is true or
    :data:`DELIVERY_WAIT` passes, so the exit flush does not decide what arrives.
    """
    import anyio
    from mcp import Client
    from mcp.client.stdio import stdio_client

    samples: dict[str, list[float]] = {name: [] for name in configs}
    rng = random.Random(7)
    stack = AsyncExitStack()
    async with stack:
        clients = {
            name: await stack.enter_async_context(Client(stdio_client(_params(cmd), errlog=errlogs[name])))
            for name, cmd in configs.items()
        }
        for name, client in clients.items():
            for i in range(warmup):
                tool, args = CALLS[i % len(CALLS)]
                with anyio.fail_after(CALL_TIMEOUT):
                    result = await client.call_tool(tool, args)
                assert not result.is_error, (name, result)
        order = list(clients)
        for i in range(n):
            rng.shuffle(order)
            tool, args = CALLS[i % len(CALLS)]
            for name in order:
                t0 = time.perf_counter()
                with anyio.fail_after(CALL_TIMEOUT):
                    result = await clients[name].call_tool(tool, args)
                samples[name].append(time.perf_counter() - t0)
                assert not result.is_error, (name, result)
        if delivered is not None:
            deadline = time.monotonic() + DELIVERY_WAIT
            while not delivered() and time.monotonic() < deadline:
                await anyio.sleep(0.1)
        closing = time.monotonic()
    return samples, time.monotonic() - closing


def _client_reports(text: str) -> dict[str, Any]:
    """What a logging process wrote to stderr: ``BENCH_STATS`` lines and the proxy's exit summary."""
    reports: dict[str, Any] = {}
    for line in text.splitlines():
        if line.startswith(STATS_MARK):
            with contextlib.suppress(ValueError):
                data = json.loads(line[len(STATS_MARK) :])
                reports[data.pop("when", "?")] = data
        elif match := PROXY_REPORT.search(line):
            dropped, refused, skipped = (int(g) for g in match.groups())
            reports["exit"] = {"dropped": dropped, "rejected": refused, "skipped": skipped}
    return reports


@contextlib.contextmanager
def _phase_endpoints(phase: str, names: list[str]) -> Iterator[dict[str, Any]]:
    """One endpoint per logging path: ``{name: Endpoint or None (down)}`` plus ``{name: url}``."""
    ep = _endpoints()
    with ExitStack() as stack:
        out: dict[str, Any] = {}
        for name in names:
            if phase == "down":
                out[name] = (None, ep.refused_url())
            else:
                endpoint = stack.enter_context(ep.endpoint(202, hang=phase == "slow"))
                out[name] = (endpoint, endpoint.url)
        yield out


def _run_phase(phase: str, n: int, warmup: int, agentcat_available: bool) -> dict[str, Any]:
    logging_rows = [MIDDLEWARE, PROXY] + ([AGENTCAT] if agentcat_available else [])
    calls = n + warmup
    started = time.monotonic()
    with _phase_endpoints(phase, logging_rows) as eps, tempfile.TemporaryDirectory() as tmp:
        urls = {name: url for name, (_, url) in eps.items()}
        configs = {
            BASELINE: _server("none", urls[MIDDLEWARE]),  # never logs; the URL is unused
            MIDDLEWARE: _server("middleware", urls[MIDDLEWARE]),
            RELAY: _relay(),
            PROXY: _proxy(urls[PROXY]),
        }
        if agentcat_available:
            configs[AGENTCAT] = _server("agentcat", urls[AGENTCAT])
        with ExitStack() as files:
            errlogs = {
                name: files.enter_context(open(Path(tmp) / f"{i}.log", "w+", encoding="utf-8"))
                for i, name in enumerate(configs)
            }

            def delivered() -> bool:
                return all(_delivered(name, eps[name][0]) >= calls for name in logging_rows)

            samples, shutdown_s = asyncio.run(
                _measure(configs, errlogs, n, warmup, delivered if phase == "healthy" else None)
            )
            stderr = {}
            for name, f in errlogs.items():
                f.flush()
                f.seek(0)
                stderr[name] = f.read()
        delivery: dict[str, Any] = {}
        for name in logging_rows:
            endpoint = eps[name][0]
            received = 0 if endpoint is None else len(endpoint.requests)
            entry: dict[str, Any] = {"calls": calls, "requests_received": received}
            # A slow endpoint never answers and a refused one never connects: nothing is delivered.
            entry["delivered"] = _delivered(name, endpoint) if endpoint is not None and phase == "healthy" else 0
            entry["client_report"] = _client_reports(stderr[name])
            delivery[name] = entry
    rows = {name: summary(values) for name, values in samples.items()}
    base = rows[BASELINE]
    return {
        "n": n,
        "warmup": warmup,
        "rows": rows,
        "ratios_to_no_logging": {name: ratio(row, base) for name, row in rows.items()},
        "delivery": delivery,
        "shutdown_seconds": round(shutdown_s, 2),
        "seconds": round(time.monotonic() - started, 1),
    }


def _delivered(name: str, endpoint: Any) -> int:
    """Tool calls an endpoint accepted from one path (agentcat sends one event per request)."""
    with endpoint.lock:
        if name == AGENTCAT:
            return sum(1 for event in endpoint.accepted if event.get("event_type") == "mcp:tools/call")
        return len(endpoint.accepted)


OTEL_MODES = ("off", "otel-api-only", "otel-sdk")
"""``Tracker.record`` with spans off (``otel=False``), with ``opentelemetry-api`` but no SDK
(its no-op spans), and with the SDK recording every span (batch processor, exporter that drops)."""


def _record_cost(sink: str, bursts: int, burst: int = 1000) -> dict[str, Any]:
    """Microseconds per ``Tracker.record`` (the hot path of every hook), with the sender running,
    for each of :data:`OTEL_MODES`.

    Bursts of ``burst`` calls (well under the queue bound, so nothing is dropped), each
    followed by a flush, the modes' bursts interleaved in a shuffled order each round. The
    figure is the caller's latency: median and p99 of every call, each timed on its own. The
    mean over a burst (``burst_mean_us``) is reported too: back to back, it also carries the
    sender thread's work on the same calls (building and posting the batches holds the GIL
    while the caller waits), i.e. the whole CPU cost per call, not what a tool call waits for.
    """
    import random
    import statistics

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from bench.stats import percentile
    from session_tracker_client import Tracker

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trackers = {
        "off": Tracker(sink, TOKEN, otel=False),
        "otel-api-only": Tracker(sink, TOKEN, otel=True),  # no SDK configured globally: no-op spans
        "otel-sdk": Tracker(sink, TOKEN, otel=True, otel_tracer_provider=provider),
    }
    args = {"student_id": "emma_smith", "subject": "mathematics"}
    result = {"profile": {"grade": 5}, "progress": {"mathematics": {"mastery": 0.6}}}
    per_call: dict[str, list[float]] = {mode: [] for mode in OTEL_MODES}
    latencies: dict[str, list[float]] = {mode: [] for mode in OTEL_MODES}
    clock = time.perf_counter_ns
    rng = random.Random(19)
    for _ in range(bursts):
        order = list(OTEL_MODES)
        rng.shuffle(order)
        for mode in order:
            tracker = trackers[mode]
            seen = latencies[mode]
            t0 = time.perf_counter()
            for _ in range(burst):
                before = clock()
                tracker.record("get_progress", args, result, started_at=t0, duration_s=0.001)
                seen.append((clock() - before) / 1e3)
            per_call[mode].append((time.perf_counter() - t0) / burst * 1e6)
            tracker.flush(30)
    out: dict[str, dict[str, float]] = {}
    for mode, tracker in trackers.items():
        tracker.close(5)
        out[mode] = {
            "calls": bursts * burst,
            "median_us": round(statistics.median(latencies[mode]), 3),
            "p99_us": round(percentile(latencies[mode], 99), 3),
            "burst_mean_us": round(statistics.median(per_call[mode]), 3),
            "dropped": tracker.stats["dropped"],
        }
    provider.shutdown()
    # Top level: the default client (spans off; the byte-bounded queue is always on), as before.
    return {**out["off"], "features": ["byte-bounded queue"], "modes": out}


def _delivery_cell(phase: str, name: str, entry: dict[str, Any]) -> tuple[str, str]:
    """(delivered, what the client reports) for one row of the table."""
    report = entry["client_report"]
    calls = entry["calls"]
    delivered = f"{entry['delivered']} of {calls}"
    if name == AGENTCAT:
        queue = report.get("disconnect", {}).get("queueLength")
        if not queue:
            return delivered, "no delivery counters"
        return delivered, f"no delivery counters; {queue} events queued at disconnect, not sent at exit"
    final = report.get("exit")
    if final is None and name == PROXY and entry["delivered"] == calls:
        # The proxy prints a summary at exit only when calls went unlogged; here all arrived.
        final = {"dropped": 0, "rejected": 0, "skipped": 0}
    if final is None:
        at = report.get("disconnect")
        if at is None:
            return delivered, "no report (process stopped before writing it)"
        return delivered, f"at disconnect: sent {at['sent']}, {at['pending']} queued; exit report cut off"
    unaccounted = calls - entry["delivered"] - final["dropped"] - final["rejected"] - final["skipped"]
    parts = [f"dropped {final['dropped']}"]
    if final["rejected"] or final["skipped"]:
        parts.append(f"refused {final['rejected']}, skipped {final['skipped']}")
    if unaccounted > 0 and phase != "healthy":
        parts.append(f"{unaccounted} in flight at exit")
    return delivered, ", ".join(parts)


def run(quick: bool = False) -> dict[str, Any]:
    """Run all three phases and the ``Tracker.record`` cost; returns the results and their markdown."""
    reps = {"healthy": 200, "slow": 100, "down": 100} if quick else {"healthy": 1000, "slow": 600, "down": 600}
    warmup = 20
    agentcat_available = importlib.util.find_spec("agentcat") is not None
    phases = {phase: _run_phase(phase, reps[phase], warmup, agentcat_available) for phase in PHASES}
    with _endpoints().endpoint(202) as sink:
        record = _record_cost(sink.url, 5 if quick else 20)
    result: dict[str, Any] = {
        "description": "MCP tool-call latency over stdio with the logging endpoint healthy, slow and down: "
        "no logging vs our middleware, our proxy and agentcat",
        "reps": reps,
        "warmup": warmup,
        "phases": phases,
        "record_us": record,
        "agentcat_installed": agentcat_available,
        "flush_at_exit_seconds": FLUSH_AT_EXIT,
    }
    result["markdown"] = _markdown(result)
    return result


def rerun_record(bursts: int = 20) -> dict[str, Any]:
    """Only the ``Tracker.record`` section, merged into the stored results (the stdio phases kept as they are)."""
    from bench.__main__ import RESULTS

    stored = RESULTS / "mcp_overhead.json"
    result: dict[str, Any] = json.loads(stored.read_text())
    with _endpoints().endpoint(202) as sink:
        result["record_us"] = _record_cost(sink.url, bursts)
    result["record_us"]["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["record_us"]["load_average"] = [round(x, 2) for x in os.getloadavg()]
    result["markdown"] = _markdown(result)
    stored.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _markdown(result: dict[str, Any]) -> str:
    phases, record, reps = result["phases"], result["record_us"], result["reps"]
    warmup, agentcat_available = result["warmup"], result["agentcat_installed"]
    modes = record["modes"]
    lines = [
        "## MCP tool-call overhead",
        "",
        "The example tutoring server over stdio, called by the official `mcp` client. Three phases, one per "
        "state of the logging endpoint; each starts fresh processes for every row and interleaves their calls "
        f"in a shuffled order each round (after {warmup} warm-up calls each), and every ratio is against the "
        "no-logging server of the same phase. Calls per row: "
        + ", ".join(f"{phase} {reps[phase]}" for phase in PHASES)
        + ". Every logging process has its own endpoint on 127.0.0.1: **healthy** answers 202, **slow** holds "
        "every request until the phase ends (longer than our client's 5 s request timeout and agentcat's 10 s), "
        "**down** refuses connections. agentcat is pointed at these endpoints with its `api_base_url` option. "
        "The minimal byte relay (a `select` loop of `os.read`/`os.write`, no parsing, no logging) is the floor "
        "for any stdio proxy; the proxy gets its token from `INGEST_TOKEN` in its environment.",
        "",
        "| endpoint | path | n | median ms | p99 ms | median ratio | p99 ratio | delivered | client reports |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for phase, result in phases.items():
        for name, row in result["rows"].items():
            r = result["ratios_to_no_logging"][name]
            delivered, report = ("-", "-")
            if name in result["delivery"]:
                delivered, report = _delivery_cell(phase, name, result["delivery"][name])
            lines.append(
                f"| {phase} | {name} | {row['n']} | {row['median_ms']:.3f} | {row['p99_ms']:.3f} | "
                f"{r['median']} | {r['p99']} | {delivered} | {report} |"
            )
        if not agentcat_available:
            lines.append(f"| {phase} | {AGENTCAT} | - | not installed | | | | | |")
    lines += [
        "",
        "Delivered = tool calls that path's endpoint accepted (calls include the warm-up). With the endpoint slow or "
        f"down nothing can be delivered; our paths keep the calls queued (bounded) and retry, and when the "
        f"server exits they get {FLUSH_AT_EXIT} s to flush, after which what is queued is counted as dropped "
        "(the batch still waiting on a slow endpoint at that moment is 'in flight'). agentcat reports no counters; "
        "its queue length is read at disconnect, and its exit hook stops its sender without sending "
        "(as its source says). Phase durations "
        "(start, calls, shutdown): "
        + ", ".join(f"{phase} {result['seconds']} s" for phase, result in phases.items())
        + ".",
        "",
        "Queueing one call in-process (`Tracker.record`, the hot path of every hook, sender running), with "
        "the OpenTelemetry span off, with `opentelemetry-api` but no SDK (no-op spans), and with the SDK "
        "recording every span (batch processor); bursts of 1000 interleaved, every call timed on its own "
        "(median, p99), ratio against spans off. The burst mean, back to back, also carries the sender "
        "thread's work on the same calls (it holds the GIL building and posting batches): the whole CPU "
        "per call, not what a tool call waits for.",
        "",
        "| OpenTelemetry | median µs | p99 µs | median ratio | burst mean µs | calls |",
        "|---|---|---|---|---|---|",
        *(
            f"| {mode} | {modes[mode]['median_us']:.2f} | {modes[mode]['p99_us']:.2f} | "
            f"{modes[mode]['median_us'] / modes['off']['median_us']:.2f} | "
            f"{modes[mode].get('burst_mean_us', 0):.2f} | {modes[mode]['calls']} |"
            for mode in OTEL_MODES
        ),
    ]
    if record.get("measured_at"):
        lines += [
            "",
            f"(This table rerun on its own at {record['measured_at']}, load average {record.get('load_average')}: "
            "`python -m bench.mcp_overhead --record-only`.)",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=["none", "middleware", "agentcat"])
    parser.add_argument("--sink", default="")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--record-only", action="store_true", help="rerun only the Tracker.record table and regenerate the docs"
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.sink)
    elif args.record_only:
        from bench.__main__ import write_docs

        result = rerun_record(5 if args.quick else 20)
        print(json.dumps(result["record_us"], indent=2))
        write_docs({"mcp_overhead": result})
    else:
        print(json.dumps(run(quick=args.quick), indent=2))


if __name__ == "__main__":
    main()
