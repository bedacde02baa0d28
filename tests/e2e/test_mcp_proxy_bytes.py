"""Behind ``mcp-proxy`` every message a real MCP server writes reaches the client byte for byte.

Three unmodified servers - ``mcp-server-time`` and ``mcp-server-git`` from PyPI and the example
tutoring server with its own logging off - are driven in lock step by a raw JSON-RPC client
(one request, then every line up to its response), once directly and once behind the proxy;
the two byte transcripts must be identical, message for message, and every ``tools/call``
must reach the logging endpoint.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from client_endpoints import endpoint

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROXY = [sys.executable, "-m", "session_tracker_client.proxy"]

pytestmark = pytest.mark.e2e


def _rpc(i: int | None, method: str, **params: Any) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if i is not None:
        message["id"] = i
    if params:
        message["params"] = params
    return json.dumps(message).encode() + b"\n"


def _session(calls: list[tuple[str, dict[str, Any]]], extra: list[bytes] = ()) -> list[bytes]:  # type: ignore[assignment]
    init = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bytes-test", "version": "1"},
    }
    messages = [_rpc(0, "initialize", **init), _rpc(None, "notifications/initialized"), _rpc(1, "tools/list")]
    messages += [_rpc(10 + n, "tools/call", name=name, arguments=args) for n, (name, args) in enumerate(calls)]
    messages += [_rpc(90, "tools/call", name="no_such_tool", arguments={}), _rpc(91, "ping"), *extra]
    return messages


def transcript(command: list[str], messages: list[bytes], env: dict[str, str], cwd: Path) -> list[bytes]:
    """Every line the server wrote, raw, sending each request only after the previous one was answered."""
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=cwd, bufsize=0)
    assert process.stdin is not None and process.stdout is not None
    out: list[bytes] = []
    buf = b""
    try:
        for message in messages:
            process.stdin.write(message)
            wanted = json.loads(message).get("id")
            if wanted is None:
                continue
            deadline = time.monotonic() + 30
            answered = False
            while not answered:
                ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
                assert ready, f"no answer to {message!r}"
                chunk = os.read(process.stdout.fileno(), 1 << 16)
                assert chunk, f"server closed its stdout before answering {message!r}"
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    out.append(line + b"\n")
                    parsed = json.loads(line)
                    if parsed.get("id") == wanted and "method" not in parsed:
                        answered = True
        process.stdin.close()
        rest = process.stdout.read()
        out += [line + b"\n" for line in (buf + rest).split(b"\n") if line]
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return out


def compare(server: list[str], messages: list[bytes], env: dict[str, str], cwd: Path, tools: int) -> list[bytes]:
    direct = transcript(server, messages, env, cwd)
    with endpoint() as ep:
        proxied = transcript(
            [*PROXY, "--url", ep.url, "--student-id", "bytes_kid", "--flush-timeout", "5", "--", *server],
            messages,
            env | {"INGEST_TOKEN": "bytes-token"},
            cwd,
        )
    assert len(proxied) == len(direct)
    for ours, theirs in zip(proxied, direct, strict=True):
        assert ours == theirs
    assert len(ep.accepted) == tools
    assert {h["Authorization"] for h in ep.headers} == {"Bearer bytes-token"}
    return direct


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("SESSION_TRACKER_URL", "INGEST_TOKEN")}


def test_mcp_server_time_answers_byte_for_byte_behind_the_proxy(tmp_path: Path) -> None:
    calls = [
        ("convert_time", {"source_timezone": "Europe/London", "time": "14:30", "target_timezone": "Asia/Tokyo"}),
        ("convert_time", {"source_timezone": "Not/AZone", "time": "09:05", "target_timezone": "UTC"}),
    ]
    server = [str(BIN / "mcp-server-time"), "--local-timezone", "UTC"]
    lines = compare(server, _session(calls), _env(), tmp_path, tools=3)
    assert b"Asia/Tokyo" in b"".join(lines)


def test_mcp_server_git_answers_byte_for_byte_behind_the_proxy(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git_env = _env() | {
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z",
        "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z",
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=git_env)
    (repo / "lesson.md").write_text("fractions\n" * 2000)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True, env=git_env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "first lesson"], check=True, env=git_env)
    (repo / "lesson.md").write_text("decimals\n" * 3000)  # a large diff: a response of many pipe reads
    calls = [
        ("git_status", {"repo_path": str(repo)}),
        ("git_log", {"repo_path": str(repo), "max_count": 5}),
        ("git_diff_unstaged", {"repo_path": str(repo)}),
        ("git_show", {"repo_path": str(repo), "revision": "HEAD"}),
    ]
    server = [str(BIN / "mcp-server-git"), "--repository", str(repo)]
    lines = compare(server, _session(calls), git_env, tmp_path, tools=5)
    assert sum(len(line) for line in lines) > 50_000
    assert b"first lesson" in b"".join(lines)


def test_example_server_answers_byte_for_byte_behind_the_proxy(tmp_path: Path) -> None:
    calls = [
        ("get_student_context", {"student_id": "emma_smith"}),
        ("get_progress", {"student_id": "liam_jones", "subject": "mathematics"}),
        ("get_curriculum", {"subject": "history", "grade": 5}),
    ]
    extra = [
        _rpc(92, "resources/templates/list"),
        _rpc(93, "resources/read", uri="curriculum://science"),
        _rpc(94, "prompts/list"),
        _rpc(95, "prompts/get", name="lesson_plan", arguments={"student_id": "ava_chen", "subject": "mathematics"}),
    ]
    env = _env() | {"PYTHONPATH": str(ROOT / "examples"), "SESSION_TRACKER_URL": ""}
    server = [sys.executable, "-m", "tutoring_server", "--no-logging"]
    lines = compare(server, _session(calls, extra), env, tmp_path, tools=4)
    assert b"science" in b"".join(lines)
