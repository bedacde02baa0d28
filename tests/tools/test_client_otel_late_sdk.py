"""OpenTelemetry on the client's hot path: with no SDK set up the span emitter returns at once
(the API's spans would be no-ops), and an SDK set up later, after the tracker was built, still
gets every call's span. A fresh interpreter: the global provider can be set once per process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_spans_start_when_an_sdk_is_configured_after_the_tracker() -> None:
    probe = textwrap.dedent(
        """
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from session_tracker_client import Tracker

        tracker = Tracker(enabled=False, otel=True)
        tracker.record("get_progress", {"student_id": "before"}, {"ok": 1}, started_at=1.0, duration_s=0.01)
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        tracker.record("get_progress", {"student_id": "after"}, {"ok": 1}, started_at=2.0, duration_s=0.01)
        print(json.dumps([[s.name, s.attributes.get("enduser.id")] for s in exporter.get_finished_spans()]))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [["tools/call get_progress", "after"]]
