"""``session-tracker sessions / show / export / analyze`` as a subprocess against the local stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from seed_sessions import CALLS, log_calls, seed_emma

from session_tracker.models import SessionExport
from session_tracker.store import DynamoStore

TOKEN = "e2e-read-token"
TOKEN_VARS = ("INGEST_TOKEN", "SESSION_TRACKER_TOKEN", "READ_TOKEN", "ADMIN_TOKEN")
T0 = datetime(2025, 3, 4, 9, 15, 0, tzinfo=UTC)
CLI = [sys.executable, "-m", "session_tracker_cli.cli"]


@pytest.fixture(scope="module")
def seeded(local_stack) -> dict[str, list[str]]:
    """cli_emma: one full session + two short ones; cli_noah: two sessions another day."""
    store = DynamoStore(local_stack.options.table_name)
    emma = [
        seed_emma(store, T0, student="cli_emma"),
        log_calls(store, "cli_emma", T0 + timedelta(hours=2), CALLS[:2]),
        log_calls(store, "cli_emma", T0 + timedelta(hours=5), CALLS[:3]),
    ]
    noah = [log_calls(store, "cli_noah", T0 + timedelta(days=1, hours=h), CALLS[:1]) for h in (1, 3)]
    return {"cli_emma": emma, "cli_noah": noah}


def run(local_stack, *args: str, token: str | None = TOKEN, env: dict[str, str] | None = None, check: bool = True):
    environ = {
        k: v for k, v in os.environ.items() if k not in (*TOKEN_VARS, "SESSION_TRACKER_URL", "SESSION_TRACKER_TABLE")
    }
    environ.update({"SESSION_TRACKER_URL": local_stack.url, "COLUMNS": "160", "NO_COLOR": "1", **(env or {})})
    if token:
        environ["READ_TOKEN"] = token
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, env=environ, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("command", ["sessions", "show", "export", "analyze"])
def test_every_reading_command_explains_itself(local_stack, command) -> None:
    out = run(local_stack, command, "--help").stdout
    assert "--url" in out and "--token" in out and "--table" in out
    assert "SESSION_TRACKER_URL" in out


def test_sessions_lists_a_students_sessions_newest_first(local_stack, seeded) -> None:
    out = run(local_stack, "sessions", "--student", "cli_emma").stdout
    positions = [out.index(s) for s in seeded["cli_emma"]]
    assert positions == sorted(positions, reverse=True)
    assert "completed" in out and "$0.1977" in out


def test_sessions_json_lines_honour_the_range_and_limit(local_stack, seeded) -> None:
    out = run(local_stack, "sessions", "-s", "cli_emma", "--json", "--since", "2025-03-04T10:00:00Z").stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["session_id"] for x in lines] == [seeded["cli_emma"][2], seeded["cli_emma"][1]]
    limited = run(local_stack, "sessions", "-s", "cli_emma", "--json", "--limit", "1").stdout
    assert len(limited.splitlines()) == 1


def test_show_prints_calls_transcript_cost_and_analysis(local_stack, seeded) -> None:
    out = run(local_stack, "show", seeded["cli_emma"][0]).stdout
    for function in {c[1] for c in CALLS}:
        assert function in out
    assert "Ready to practise some fractions today?" in out
    assert "$0.1977" in out and "customer-ended-call" in out
    assert "solved three of four" in out


def test_show_json_is_the_export_shape(local_stack, seeded) -> None:
    out = run(local_stack, "show", seeded["cli_emma"][0], "--json").stdout
    export = SessionExport.model_validate_json(out)
    assert len(export.mcp_interactions) == len(CALLS)


def test_show_of_an_unknown_session_fails_clearly(local_stack) -> None:
    result = run(local_stack, "show", "cli_nobody_20250304_0915", check=False)
    assert result.returncode == 2
    assert "no session 'cli_nobody_20250304_0915'" in result.stderr


def test_a_wrong_token_is_reported_not_a_traceback(local_stack, seeded) -> None:
    result = run(local_stack, "sessions", "-s", "cli_emma", token="wrong", check=False)
    assert result.returncode == 1
    assert "401" in result.stderr and "--token" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_ingest_token_cannot_read_and_the_cli_says_which_scope_it_needs(local_stack, seeded) -> None:
    result = run(
        local_stack, "sessions", "-s", "cli_emma", token=None, env={"INGEST_TOKEN": "e2e-ingest-token"}, check=False
    )
    assert result.returncode == 1
    assert "401" in result.stderr, "reading commands never fall back to INGEST_TOKEN"
    passed = run(local_stack, "sessions", "-s", "cli_emma", "--token", "e2e-ingest-token", token=None, check=False)
    assert passed.returncode == 1
    assert "403" in passed.stderr and "'read'" in passed.stderr and "Traceback" not in passed.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"SESSION_TRACKER_TOKEN": TOKEN, "READ_TOKEN": "wrong", "ADMIN_TOKEN": "wrong"},
        {"READ_TOKEN": TOKEN, "ADMIN_TOKEN": "wrong"},
        {"ADMIN_TOKEN": "e2e-admin-token"},
    ],
    ids=["SESSION_TRACKER_TOKEN-first", "then-READ_TOKEN", "then-ADMIN_TOKEN"],
)
def test_reading_commands_take_their_token_from_the_documented_variables_in_order(local_stack, seeded, env) -> None:
    out = run(local_stack, "sessions", "-s", "cli_emma", token=None, env=env).stdout
    assert seeded["cli_emma"][0] in out


def test_an_unreachable_api_is_reported_not_a_traceback(local_stack) -> None:
    result = run(local_stack, "show", "x_1", "--url", "http://127.0.0.1:9", check=False)
    assert result.returncode == 1
    assert "cannot reach http://127.0.0.1:9" in result.stderr


def _files(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.json"))}


def test_export_round_trips_every_file_through_the_export_model(local_stack, seeded, tmp_path) -> None:
    out = run(local_stack, "export", "--out", str(tmp_path / "emma"), "--student", "cli_emma").stdout
    files = _files(tmp_path / "emma")
    assert sorted(files) == sorted(f"{s}.json" for s in seeded["cli_emma"])
    assert "exported 3 sessions" in out
    with httpx.Client(base_url=local_stack.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for name, text in files.items():
            export = SessionExport.model_validate_json(text)
            assert name == f"{export.session_id}.json"
            api = SessionExport.model_validate(http.get(f"/sessions/{export.session_id}").json())
            assert export == api
            assert list(json.loads(text)) == list(SessionExport.model_fields)
            assert text.startswith('{\n  "session_id"')


def test_export_is_byte_for_byte_stable(local_stack, seeded, tmp_path) -> None:
    run(local_stack, "export", "-o", str(tmp_path / "a"), "-s", "cli_emma")
    run(local_stack, "export", "-o", str(tmp_path / "b"), "-s", "cli_emma")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_export_without_a_student_covers_every_student_in_the_range(local_stack, seeded, tmp_path) -> None:
    run(local_stack, "export", "-o", str(tmp_path), "--since", "2025-03-04", "--until", "2025-03-05")
    names = set(_files(tmp_path))
    assert {f"{s}.json" for s in seeded["cli_emma"] + seeded["cli_noah"]} <= names


def test_export_straight_from_the_table_matches_the_api(local_stack, seeded, tmp_path) -> None:
    if not local_stack.dynamodb_endpoint:
        pytest.skip("the local stack runs on in-process moto (no java): a subprocess cannot reach its table")
    env = {
        "AWS_ENDPOINT_URL_DYNAMODB": local_stack.dynamodb_endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    table = local_stack.options.table_name
    run(local_stack, "export", "-o", str(tmp_path / "api"), "-s", "cli_emma")
    run(local_stack, "export", "-o", str(tmp_path / "table"), "-s", "cli_emma", "--table", table, token=None, env=env)
    assert _files(tmp_path / "table") == _files(tmp_path / "api")
    listed = run(local_stack, "sessions", "-s", "cli_noah", "--table", table, "--json", token=None, env=env).stdout
    assert [json.loads(line)["session_id"] for line in listed.splitlines()] == list(reversed(seeded["cli_noah"]))


def test_export_of_a_student_without_sessions_writes_nothing(local_stack, tmp_path) -> None:
    out = run(local_stack, "export", "-o", str(tmp_path), "-s", "cli_nobody").stdout
    assert "exported 0 sessions" in out
    assert _files(tmp_path) == {}


def test_analyze_posts_to_the_analyze_route(local_stack, seeded) -> None:
    assert any(r.path == "/sessions/{session_id}/analyze" for r in local_stack.router.routes), "analyze route missing"
    result = run(local_stack, "analyze", seeded["cli_emma"][1], check=False)
    assert result.returncode == 0, result.stderr
    assert f"analysis requested for {seeded['cli_emma'][1]}" in result.stdout
    missing = run(local_stack, "analyze", "cli_nobody_20250304_0915", check=False)
    assert missing.returncode == 2
    assert "no session" in missing.stderr
