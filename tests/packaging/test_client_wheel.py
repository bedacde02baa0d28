"""``session-tracker-client`` as a user gets it: build the wheel from ``clients/``, install it into
a fresh venv with nothing else, and run the example tutoring server through its
``session-tracker-proxy``; the tool calls reach a stand-in ``POST /interactions``.

The venv's ``pip list`` is printed (``-s`` shows it): httpx and its own dependencies only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from client_endpoints import endpoint
from packaging_helpers import pip_list, venv_with

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HTTPX_AND_ITS_DEPENDENCIES = {"httpx", "httpcore", "h11", "anyio", "idna", "certifi", "sniffio", "typing-extensions"}

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("client-wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(ROOT / "clients")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (work / "dist").glob("session_tracker_client-*.whl")
    return venv_with(work / "venv", [str(wheel)])


def test_the_wheel_installs_with_httpx_as_its_only_third_party_dependency(clean_venv: Path) -> None:
    installed = pip_list(clean_venv)
    print("\npip list of the clean client venv:")
    for name, version in sorted(installed.items()):
        print(f"  {name:<24} {version}")
    third_party = set(installed) - {"pip", "setuptools", "session-tracker-client"}
    assert third_party <= HTTPX_AND_ITS_DEPENDENCIES, third_party - HTTPX_AND_ITS_DEPENDENCIES
    assert "httpx" in third_party
    assert not {"pydantic", "pyyaml", "boto3", "opentelemetry-api", "mcp", "fastmcp"} & set(installed)
    probe = "import session_tracker_client, session_tracker_client.proxy, session_tracker_client.otel; print('ok')"
    out = subprocess.run([str(clean_venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


REQUESTS: list[dict[str, Any]] = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "wheel-test", "version": "1"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "get_student_context", "arguments": {"student_id": "emma_smith"}},
    },
    {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "get_progress", "arguments": {"student_id": "no_such_student"}},
    },
]
LOGGED = [("get_student_context", "emma_smith", False), ("get_progress", "no_such_student", True)]


def _talk(command: list[str], env: dict[str, str]) -> tuple[dict[int, dict[str, Any]], str]:
    """Send :data:`REQUESTS` over stdio to ``command``; its answers by id, and its stderr."""
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=EXAMPLES
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    answers: dict[int, dict[str, Any]] = {}
    try:
        for message in REQUESTS:
            proc.stdin.write(json.dumps(message).encode() + b"\n")
            proc.stdin.flush()
            if "id" in message:
                while True:
                    line = proc.stdout.readline()
                    assert line, proc.stderr.read().decode()[-2000:]
                    answer = json.loads(line)
                    if answer.get("id") == message["id"]:
                        answers[int(answer["id"])] = answer
                        break
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read().decode()
    assert "emma_smith" in json.dumps(answers[2]["result"])
    assert answers[3]["result"]["isError"] is True
    return answers, stderr


def test_the_example_server_runs_behind_the_installed_proxy_and_its_calls_are_logged(clean_venv: Path) -> None:
    # The server runs in the project's interpreter (it needs the mcp SDK); the proxy in the clean venv.
    server = [sys.executable, "-m", "tutoring_server", "--no-logging"]
    with endpoint(202) as api:
        env = {**os.environ, "PYTHONPATH": str(EXAMPLES), "INGEST_TOKEN": "wheel-token"}
        _talk([str(clean_venv / "bin" / "session-tracker-proxy"), "--url", api.url, "--", *server], env)
        logged = [(call["function"], call["student_id"], call["is_error"]) for call in api.accepted]
    assert logged == LOGGED
    assert all(h.get("Authorization") == "Bearer wheel-token" for h in api.headers)


_SERVER_WITH_THE_INSTALLED_CLIENT = """
import sys
import session_tracker_client
print("session_tracker_client from", session_tracker_client.__file__, file=sys.stderr, flush=True)
from tutoring_server.server import main
main([])
"""


def test_the_example_server_logs_through_the_installed_middleware(clean_venv: Path) -> None:
    """The one-line middleware (``SessionTrackerMiddleware``) as the wheel installed it: the MCP
    server developer's interpreter brings the mcp SDK, the client and httpx come from the clean venv."""
    (site,) = (clean_venv / "lib").glob("python3*/site-packages")
    with endpoint(202) as api:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), str(EXAMPLES)]),
            "SESSION_TRACKER_URL": api.url,
            "INGEST_TOKEN": "wheel-token",
        }
        _, stderr = _talk([sys.executable, "-c", _SERVER_WITH_THE_INSTALLED_CLIENT], env)
        logged = [(call["function"], call["student_id"], call["is_error"]) for call in api.accepted]
    assert f"session_tracker_client from {site}" in stderr, stderr[-2000:]
    assert logged == LOGGED
    assert all(h.get("Authorization") == "Bearer wheel-token" for h in api.headers)
