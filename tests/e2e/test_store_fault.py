"""Bounded fault test (issue 13): an MCP-side client streams calls while the local stack's
DynamoDB Local is killed and restarted. Afterwards every call is stored exactly once, the
client's counters add up, and no request was answered 500.

The stack runs as ``session-tracker serve`` in a subprocess with its data on disk (the
shared in-process stack keeps its data in memory, and the other tests need it), so killing
its JVM touches nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_helpers import child_pids, cmdline, stop_group, wait_healthy

from session_tracker_client.sender import Sender, SenderOptions
from session_tracker_local.dynamodb_local import free_port, java_available

pytestmark = pytest.mark.skipif(not java_available(), reason="needs java for DynamoDB Local")

ROOT = Path(__file__).resolve().parents[2]
CALLS = 120
KILL_AT = 40
SERVE = [sys.executable, "-m", "session_tracker_cli", "serve", "--schedule-seconds", "3600"]
TOKENS = {"INGEST_TOKEN": "fault-ingest-token", "READ_TOKEN": "fault-read-token", "ADMIN_TOKEN": "fault-admin-token"}


class Recording(httpx.HTTPTransport):
    """The client's transport, recording every status the API answered."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []
        self.errors = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = super().handle_request(request)
        except httpx.HTTPError:
            self.errors += 1
            raise
        self.statuses.append(response.status_code)
        return response


def _jvm_of(pid: int) -> int:
    """The DynamoDB Local JVM the serve process started (its child running DynamoDBLocal.jar)."""
    for child in child_pids(pid):
        if b"DynamoDBLocal.jar" in cmdline(child):
            return child
    raise AssertionError("the stack's DynamoDB Local process was not found")


@pytest.fixture
def served(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "BLOB_", "TABLE_NAME"))}
    env |= TOKENS | {"PORT": str(port)}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*SERVE, "--port", str(port), "--data-dir", str(tmp_path / "data"), "--no-access-log"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url, proc, tmp_path / "serve.log"
    finally:
        stop_group(proc)  # our own process group: the serve process we started
        log.close()


def _stored(url: str) -> list[str]:
    headers = {"Authorization": f"Bearer {TOKENS['READ_TOKEN']}"}
    listing = httpx.get(f"{url}/students/fault_kid/sessions", params={"limit": 100}, headers=headers, timeout=30)
    assert listing.status_code == 200, listing.text
    ids: list[str] = []
    for session in listing.json()["sessions"]:
        export = httpx.get(f"{url}/sessions/{session['session_id']}", headers=headers, timeout=30)
        assert export.status_code == 200, export.text
        ids += [call["interaction_id"] for call in export.json()["mcp_interactions"]]
    return ids


def test_calls_streamed_through_a_dynamodb_restart_are_stored_exactly_once(served) -> None:
    url, proc, log_path = served
    transport = Recording()
    options = SenderOptions(batch_size=5, flush_interval=0.05, timeout=10, backoff_base=0.1, backoff_max=1.0)
    sender = Sender(url, TOKENS["INGEST_TOKEN"], options, transport=transport)
    sent_ids = [f"fault-{i:04d}" for i in range(CALLS)]
    for i, iid in enumerate(sent_ids):
        body: dict[str, Any] = {"student_id": "fault_kid", "function": f"tool_{i % 4}", "interaction_id": iid}
        sender.submit(lambda body=body: dict(body))
        if i == KILL_AT:
            os.kill(_jvm_of(proc.pid), signal.SIGKILL)  # the JVM dies mid-stream
        time.sleep(0.02)
    assert sender.flush(180), f"calls still pending: {sender.pending()}"
    sender.close()

    stats = sender.stats
    assert "restarted" in log_path.read_text(errors="replace")  # the stack brought DynamoDB Local back
    assert 500 not in transport.statuses  # an outage is a 503 (retried), never a 500
    assert 503 in transport.statuses or transport.errors > 0  # the outage was seen
    assert (stats.submitted, stats.sent) == (CALLS, CALLS)
    assert stats.dropped == stats.rejected == stats.failed == stats.skipped == 0
    stored = _stored(url)
    assert sorted(stored) == sorted(sent_ids)  # every call stored, and exactly once
    print(
        f"\nfault test: {CALLS} calls, statuses {sorted(set(transport.statuses))}, "
        f"503s {transport.statuses.count(503)}, connection errors {transport.errors}, retries {stats.retries}, "
        f"requeued {stats.requeued}, stored {len(stored)}"
    )
