"""The stdio proxy as a process: byte-for-byte relay in both directions, tool calls logged, the
token kept out of the process list (the pairing logic in-process: tests/unit/test_client_proxy.py)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from client_endpoints import endpoint, refused_url
from client_endpoints import jsonrpc_request as request

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "session_tracker_cli.cli"]
ENTRY_POINTS = {
    "session-tracker mcp-proxy": [*CLI, "mcp-proxy"],
    "python -m session_tracker_client.proxy": [sys.executable, "-m", "session_tracker_client.proxy"],
}
PROXY_LOGGING = ["--student-id", "default_kid", "--redact", "pin"]

# A stand-in stdio server: answers tools/call (isError when asked), errors on unknown methods,
# sends a notification and a non-JSON line, and echoes each request it got, so the test can
# see the proxy forwarded it unchanged.
FAKE_SERVER = r"""
import sys, json
out = sys.stdout.buffer
for raw in sys.stdin.buffer:
    msg = json.loads(raw)
    if "id" not in msg:
        continue
    if msg.get("method") == "tools/call":
        args = msg["params"].get("arguments", {})
        result = {"content": [{"type": "text", "text": json.dumps({"subject": "mathematics", "big": "x" * args.get("size", 0)})}],
                  "isError": bool(args.get("fail")), "echo": raw.decode()}
        out.write(b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n')
        out.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode() + b"\n")
    else:
        out.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "nope"}, "echo": raw.decode()}).encode() + b"\n")
    out.flush()
sys.exit(3)
"""


def _run(cmd: list[str], stdin: bytes, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, input=stdin, capture_output=True, env=env, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_proxy_relays_bytes_unchanged_and_logs_tool_calls(tmp_path: Path, entry: str) -> None:
    server = tmp_path / "server.py"
    server.write_text(FAKE_SERVER)
    stdin = b"".join(
        [
            request(1, name="get_progress", arguments={"student_id": "emma", "pin": "1234"}),
            request(2, method="prompts/get", name="p"),
            request(3, name="get_curriculum", arguments={"subject": "math", "size": 2_000_000}),
            request(4, name="record_answer", arguments={"learner": "liam", "fail": True}),
        ]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SESSION_TRACKER_URL", "INGEST_TOKEN")}
    direct = _run([sys.executable, str(server)], stdin, env)
    with endpoint() as ep:
        proxied = _run(
            [*ENTRY_POINTS[entry], "--url", ep.url, *PROXY_LOGGING, "--", sys.executable, str(server)],
            stdin,
            env | {"INGEST_TOKEN": "tok"},
        )
    assert proxied.returncode == direct.returncode == 3
    assert proxied.stdout == direct.stdout
    assert len(proxied.stdout) > 2_000_000
    echoed = [json.loads(line).get("result", {}).get("echo") for line in proxied.stdout.splitlines()]
    assert [e.encode() for e in echoed if e] == [
        request(1, name="get_progress", arguments={"student_id": "emma", "pin": "1234"}),
        request(3, name="get_curriculum", arguments={"subject": "math", "size": 2_000_000}),
        request(4, name="record_answer", arguments={"learner": "liam", "fail": True}),
    ]
    logged = {i["function"]: i for i in ep.accepted}
    assert set(logged) == {"get_progress", "get_curriculum", "record_answer"}
    assert logged["get_progress"]["student_id"] == "emma"
    assert logged["get_progress"]["arguments"] == {"student_id": "emma", "pin": "[redacted]"}
    assert logged["get_progress"]["subjects"] == ["mathematics"]
    assert logged["get_curriculum"]["student_id"] == "default_kid"
    assert logged["get_curriculum"]["response_size"] > 2_000_000
    assert logged["record_answer"]["is_error"] is True
    assert {h["Authorization"] for h in ep.headers} == {"Bearer tok"}


def test_proxy_keeps_relaying_when_the_endpoint_is_down(tmp_path: Path) -> None:
    server = tmp_path / "server.py"
    server.write_text(FAKE_SERVER)
    stdin = b"".join(request(i, name="t", arguments={"student_id": "s"}) for i in range(50))
    direct = _run([sys.executable, str(server)], stdin, dict(os.environ))
    proxied = _run(
        [*CLI, "mcp-proxy", "--url", refused_url(), "--flush-timeout", "0.3", "--", sys.executable, str(server)],
        stdin,
        dict(os.environ),
    )
    assert proxied.stdout == direct.stdout
    assert b"50 dropped" in proxied.stderr


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_proxy_without_a_command_is_a_usage_error(entry: str) -> None:
    out = _run([*ENTRY_POINTS[entry], "--url", "http://127.0.0.1:9", "--"], b"", dict(os.environ))
    assert out.returncode == 2
    assert b"server command" in out.stderr


def test_proxy_reports_a_server_that_cannot_start() -> None:
    missing = "/no/such/server-binary"
    out = _run([*CLI, "mcp-proxy", "--url", "http://127.0.0.1:9", "--", missing], b"", dict(os.environ))
    assert out.returncode == 127
    assert b"cannot start" in out.stderr


# A server that echoes whatever bytes it reads, as soon as it reads them (no lines).
ECHO_SERVER = r"""
import os
while True:
    data = os.read(0, 65536)
    if not data:
        break
    os.write(1, data)
"""


@pytest.mark.parametrize("logging_on", [True, False])
def test_bytes_are_forwarded_as_they_are_read_not_when_a_line_is_complete(tmp_path: Path, logging_on: bool) -> None:
    server = tmp_path / "echo.py"
    server.write_text(ECHO_SERVER)
    env = dict(os.environ) | {"INGEST_TOKEN": "tok"}
    url = ["--url", refused_url(), "--flush-timeout", "0.1"] if logging_on else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "session_tracker_client.proxy", *url, "--", sys.executable, str(server)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        bufsize=0,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        half = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","argu'
        proc.stdin.write(half)  # no newline: a line-based relay would hold this back
        got = b""
        deadline = time.monotonic() + 20
        while len(got) < len(half) and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                got += os.read(proc.stdout.fileno(), 65536)
        assert got == half
        proc.stdin.write(b'ments":{}}}\n')
        proc.stdin.close()
        assert proc.stdout.read() == b'ments":{}}}\n'
    finally:
        proc.wait(20)


def test_the_token_comes_from_the_environment_and_never_shows_in_the_process_list(tmp_path: Path) -> None:
    server = tmp_path / "server.py"
    server.write_text(FAKE_SERVER + "\n")
    secret = "s3cret-ingest-token-for-ps-test"
    env = {k: v for k, v in os.environ.items() if k != "INGEST_TOKEN"} | {"INGEST_TOKEN": secret}
    with endpoint() as ep:
        proc = subprocess.Popen(
            [*CLI, "mcp-proxy", "--url", ep.url, "--student-id", "kid", "--", sys.executable, str(server)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(request(1, name="t", arguments={}))
        proc.stdin.flush()
        proc.stdout.readline()
        proc.stdout.readline()  # the notification and the response: the server runs
        listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        cmdlines = [p.read_bytes() for p in Path("/proc").glob("[0-9]*/cmdline") if _readable(p)]
        _, stderr = proc.communicate(timeout=30)
    assert "mcp-proxy" in listing and secret not in listing
    assert not [c for c in cmdlines if secret.encode() in c]
    assert {h["Authorization"] for h in ep.headers} == {f"Bearer {secret}"}
    assert b"--token" not in stderr


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_token_on_the_command_line_still_works_but_the_proxy_warns_it_is_visible(tmp_path: Path, entry: str) -> None:
    server = tmp_path / "server.py"
    server.write_text(FAKE_SERVER)
    env = {k: v for k, v in os.environ.items() if k != "INGEST_TOKEN"}
    with endpoint() as ep:
        out = _run(
            [
                *ENTRY_POINTS[entry],
                "--url",
                ep.url,
                "--token",
                "cli-tok",
                "--student-id",
                "k",
                "--",
                sys.executable,
                str(server),
            ],
            request(1, name="t", arguments={}),
            env,
        )
    assert out.returncode == 3
    assert b"process list" in out.stderr
    assert {h["Authorization"] for h in ep.headers} == {"Bearer cli-tok"}


def test_token_env_names_another_variable(tmp_path: Path) -> None:
    server = tmp_path / "server.py"
    server.write_text(FAKE_SERVER)
    env = {k: v for k, v in os.environ.items() if k != "INGEST_TOKEN"} | {"SCHOOL_TOKEN": "school-tok"}
    with endpoint() as ep:
        out = _run(
            [
                *ENTRY_POINTS["python -m session_tracker_client.proxy"],
                "--url",
                ep.url,
                "--token-env",
                "SCHOOL_TOKEN",
                "--student-id",
                "k",
                "--",
                sys.executable,
                str(server),
            ],
            request(1, name="t", arguments={}),
            env,
        )
    assert out.returncode == 3
    assert {h["Authorization"] for h in ep.headers} == {"Bearer school-tok"}
