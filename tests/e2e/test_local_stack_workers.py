"""`make run` serves HTTP from worker processes sharing one listening socket
(session_tracker_local.workers): `session-tracker serve` as a process answers a class's burst and
concurrent batches, keeps streams and schedules in its own process, and Ctrl-C leaves no process
behind (no worker, no DynamoDB Local JVM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_helpers import burst_outcomes, child_pids, cmdline, concurrent_batch_mismatches, stop_group, wait_healthy

from session_tracker_local.dynamodb_local import free_port, java_available

pytestmark = pytest.mark.skipif(not java_available(), reason="needs java for DynamoDB Local")

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "workers-ingest-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORKERS = 2
SERVE = [sys.executable, "-m", "session_tracker_cli", "serve", "--backend", "dynamodb-local"]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that is gone counts as gone: nothing runs)."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "BLOB_", "TABLE_NAME"))}
    env |= {"INGEST_TOKEN": TOKEN, "READ_TOKEN": "workers-read-token", "ADMIN_TOKEN": "workers-admin-token"}
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*SERVE, "--port", str(port), "--in-memory", "--workers", str(WORKERS), "--no-access-log"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=180)
        yield url, proc
    finally:
        stop_group(proc)  # the serve process we started, and its group
        log.close()


def test_workers_serve_the_port_and_the_runners_stay_in_the_main_process(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = served
    children = child_pids(proc.pid)
    workers = [c for c in children if b"session_tracker_local.workers" in cmdline(c)]
    assert len(workers) == WORKERS, [cmdline(c) for c in children]
    # Each worker answers on the shared socket: keep opening connections until both have served one.
    seen: set[str] = set()
    for _ in range(200):
        with httpx.Client(base_url=url, timeout=30) as http:  # a new connection each time
            answer = http.get("/health")
            assert answer.status_code == 200
        seen.add(answer.headers.get("x-local-worker-pid", ""))
        if len(seen) == WORKERS:
            break
    assert seen == {str(w) for w in workers}


def test_concurrent_batches_each_get_their_own_answer(served: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = served
    mismatches = concurrent_batch_mismatches(url, AUTH, prefix="wconc", per_worker=6)
    assert not mismatches, mismatches[:5]


def test_a_burst_of_100_simultaneous_connections_is_served_by_the_workers(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, _ = served
    outcomes = burst_outcomes(url, AUTH, prefix="wburst")
    assert sorted(set(outcomes)) == ["202"], {o: outcomes.count(o) for o in set(outcomes)}


def test_ctrl_c_stops_every_process_of_the_stack(served: tuple[str, subprocess.Popen[bytes]]) -> None:
    """Last in this module: Ctrl-C (SIGINT to the foreground process group) ends serve, its HTTP
    workers and its DynamoDB Local; nothing is left running."""
    url, proc = served
    children = child_pids(proc.pid)
    assert any(b"DynamoDBLocal.jar" in cmdline(c) for c in children)
    assert sum(b"session_tracker_local.workers" in cmdline(c) for c in children) == WORKERS
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [c for c in children if _alive(c)] == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)
