"""``session-tracker assign`` as a subprocess against the local stack (POST /sessions/{id}/assign)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx

TOKEN = "e2e-admin-token"
CLI = [sys.executable, "-m", "session_tracker_cli.cli"]
START = datetime(2025, 5, 6, 11, 0, 0, tzinfo=UTC)


def run(local_stack, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("INGEST_TOKEN", "SESSION_TRACKER_TOKEN", "READ_TOKEN", "ADMIN_TOKEN", "SESSION_TRACKER_URL")
    }
    environ.update({"SESSION_TRACKER_URL": local_stack.url, "ADMIN_TOKEN": TOKEN, "NO_COLOR": "1"})
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, env=environ, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _unmatched(local_stack, call_id: str) -> str:
    body = {
        "platform": "generic",
        "call_id": call_id,
        "started_at": START.isoformat(),
        "ended_at": (START + timedelta(minutes=4)).isoformat(),
        "transcript": "AI: Who is this?\nUser: Guess!",
    }
    with httpx.Client(base_url=local_stack.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        answer = http.post("/webhook/session-data", json=body).json()
    assert answer["status"] == "unmatched", answer
    return str(answer["session_id"])


def test_assign_gives_an_unmatched_session_to_a_student_and_refuses_a_second_time(local_stack) -> None:
    source = _unmatched(local_stack, "cli-assign-call-1")

    out = run(local_stack, "assign", source, "--student", "cli_assign_ava")

    result = json.loads(out.stdout)
    assert result["session_id"] == "cli_assign_ava_20250506_1100"
    assert result["outcome"] == "created"
    shown = json.loads(run(local_stack, "show", result["session_id"], "--json").stdout)
    assert shown["matching"]["strategy"] == "manual"
    assert shown["conversation"]["transcript"] == "AI: Who is this?\nUser: Guess!"
    again = run(local_stack, "assign", source, "--student", "cli_assign_ava", check=False)
    assert again.returncode == 1 and "already assigned" in again.stderr


def test_assign_needs_a_student_or_a_target(local_stack) -> None:
    result = run(local_stack, "assign", "unknown_20250506_1100", check=False)
    assert result.returncode == 2 and "--student or --to" in result.stderr
