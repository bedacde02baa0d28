"""The ``session-tracker`` CLI starts light: ``--help`` and ``mcp-proxy`` (which starts in front
of every MCP server) load no AWS SDK, moto, Powertools or openai. Each probe runs in a fresh
interpreter, so modules another test imported cannot hide (or fake) a heavy import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "moto", "aws_lambda_powertools", "openai", "session_tracker.store.dynamo")

_PROBE = """
import json, sys
sys.argv = ["session-tracker", *{argv!r}]
from session_tracker_cli.cli import main
code = 0
if sys.argv[1:]:
    try:
        main()
    except SystemExit as exc:
        code = exc.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


def _probe(*argv: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=list(argv), heavy=HEAVY)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        # Nothing may reach AWS: a command that does talk to DynamoDB meets a closed local port.
        env={**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([], id="import-only"),
        pytest.param(["--help"], id="help"),
        pytest.param(["sessions", "--help"], id="sessions-help"),
        pytest.param(
            ["mcp-proxy", "--url", "http://127.0.0.1:9", "--", sys.executable, "-c", "pass"],
            id="mcp-proxy",
        ),
    ],
)
def test_cli_startup_imports_no_aws_sdk_moto_powertools_or_openai(argv: list[str]) -> None:
    result = _probe(*argv)
    assert result["code"] == 0, result
    assert result["heavy"] == [], f"session-tracker {' '.join(argv)} imported {result['heavy']} at startup"


def test_reading_commands_still_load_the_read_path_when_they_run() -> None:
    """The probe can fail: a command that reads sessions does import the store (boto3) - lazily."""
    result = _probe("sessions", "--student", "emma_smith", "--table", "no-such-table-probe")
    heavy = result["heavy"]
    assert isinstance(heavy, list)
    assert "session_tracker.store.dynamo" in heavy


def test_cli_module_import_time_is_small() -> None:
    """``python -X importtime``: importing the CLI module costs well under the ~1 s it did with boto3."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import session_tracker_cli.cli"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line.split("|") for line in out.stderr.splitlines() if line.startswith("import time:")]
    cumulative_us = {parts[2].strip(): int(parts[1].strip()) for parts in lines if parts[1].strip().isdigit()}
    assert "boto3" not in cumulative_us
    # Generous for a loaded 2-core machine; boto3 + pydantic models alone took ~1 s here.
    assert cumulative_us["session_tracker_cli.cli"] < 400_000, cumulative_us["session_tracker_cli.cli"]


def test_reading_over_the_api_loads_no_aws_sdk() -> None:
    """Over the API the CLI needs no boto3 (``session-tracker-cli`` without the ``table`` extra):
    the read path reaches the (closed) port and fails cleanly without importing the store."""
    result = _probe("sessions", "--student", "emma_smith", "--url", "http://127.0.0.1:9")
    assert result["code"] == 1, result
    assert result["heavy"] == [], result
