"""Analysis on the local stack (what `make run` serves): stream -> analyze and the idle-close
schedule run as template.yaml declares them; OpenAI is the fake server (tests/conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2e_helpers import READ as AUTH
from e2e_helpers import VAPI_ROUTE, vapi_report, wait_for_analysis, z

from session_tracker.config import load_config

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = load_config(ROOT / "session_config.yaml").analysis.prompts


def requests_about(openai_server, session_id: str) -> list:
    return [r for r in openai_server.completions() if session_id in r.text]


def test_logged_calls_and_a_vapi_report_give_an_analysis_within_seconds(local_stack, http, openai_server) -> None:
    assert any(r.path == VAPI_ROUTE for r in local_stack.router.routes), f"{VAPI_ROUTE} is not served"
    student = f"e2e_an_{uuid.uuid4().hex[:8]}"
    call_id = f"call-{uuid.uuid4()}"
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=6)
    session_id = f"{student}_{started:%Y%m%d_%H%M}"
    for n, function in enumerate(["get_student_context", "get_lesson_plan", "check_answer"]):
        response = http.post(
            "/interactions",
            json={
                "student_id": student,
                "function": function,
                "timestamp": z(started + timedelta(minutes=n)),
                "subjects": ["mathematics"],
                "call_id": call_id,
                "platform": "vapi",
            },
            headers=AUTH,
        )
        assert response.status_code == 202 and response.json()["session_id"] == session_id
    report = vapi_report(student, call_id, session_id, started)
    posted = time.monotonic()
    response = http.post(VAPI_ROUTE, content=json.dumps(report), headers={"Authorization": "Bearer e2e-vapi-secret"})
    assert response.status_code == 200, response.text
    print(f"webhook answered in {time.monotonic() - posted:.1f}s")

    body = wait_for_analysis(http, session_id, timeout=20)
    took = time.monotonic() - posted
    analysis = body["analysis"]
    assert body["status"] == "completed"
    assert analysis["status"] == "ok", analysis
    assert analysis["session_summary"] == "fake session_summary for gpt-4o-mini"
    assert analysis["model"] == "gpt-4o-mini" and set(analysis["prompt_versions"]) == set(PROMPTS)
    print(f"analysis visible {took:.1f}s after the report")
    assert took < 15, f"analysis took {took:.1f}s"
    (request,) = requests_about(openai_server, session_id)
    for text in PROMPTS.values():
        assert text.strip() in request.text
    assert "Ready to practice some fractions" in request.text  # the VAPI transcript
    assert "get_lesson_plan" in request.text  # the MCP interaction pattern

    # On request: 202; the input did not change, so no second model call.
    queued = http.post(f"/sessions/{session_id}/analyze", headers=AUTH)
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    time.sleep(4)
    assert len(requests_about(openai_server, session_id)) == 1
    assert http.get(f"/sessions/{session_id}", headers=AUTH).json()["analysis"]["input_hash"] == analysis["input_hash"]


def test_an_idle_session_is_closed_and_analysed(http, openai_server) -> None:
    """The schedule (every 2 s in tests) closes a session idle past timeout_minutes; the stream analyses it."""
    student = f"e2e_idle_{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC) - timedelta(minutes=30)
    response = http.post(
        "/interactions",
        json={"student_id": student, "function": "get_student_context", "timestamp": z(at)},
        headers=AUTH,
    )
    session_id = response.json()["session_id"]
    body = wait_for_analysis(http, session_id, timeout=25)
    assert body["status"] == "closed"
    assert body["session_summary"]["data_requests"] == 1
    assert body["analysis"]["status"] == "ok"
    assert len(requests_about(openai_server, session_id)) == 1


def test_analyze_route_answers_404_for_an_unknown_session(http) -> None:
    response = http.post("/sessions/nobody_20200101_0000/analyze", headers=AUTH)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_the_daily_usage_is_readable_from_the_cli(local_stack, http, openai_server) -> None:
    if local_stack.backend != "dynamodb-local":
        pytest.skip("the CLI reads the table over DynamoDB Local's endpoint (moto is in-process only)")
    test_an_idle_session_is_closed_and_analysed(http, openai_server)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "session_tracker_cli.cli",
            "usage",
            "--table",
            local_stack.options.table_name,
            "--endpoint-url",
            local_stack.dynamodb_endpoint,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    usage = json.loads(out.stdout)
    assert usage["date"] == datetime.now(UTC).date().isoformat()
    assert usage["analyses"] >= 1 and usage["input_tokens"] > 0 and usage["cost_usd"] > 0
    assert usage["max_sessions_per_day"] == 500
