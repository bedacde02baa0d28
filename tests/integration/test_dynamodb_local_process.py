"""DynamoDB Local never outlives the process that started it, however that process ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from session_tracker_local.dynamodb_local import java_available

ROOT = Path(__file__).resolve().parents[2]

_STARTER = """
import os, sys, time
from pathlib import Path
from session_tracker_local.dynamodb_local import DynamoDBLocal
ddb = DynamoDBLocal(cache_dir=Path({cache!r})).start()
print(ddb.process.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead too
        return fh.read().split()[2] != "Z"


@pytest.mark.skipif(not java_available() or not sys.platform.startswith("linux"), reason="needs java on Linux")
def test_the_jvm_dies_when_its_parent_is_killed_outright() -> None:
    code = _STARTER.format(cache=str(ROOT / ".cache" / "dynamodb-local"))
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    java_pid = int(parent.stdout.readline())
    assert _alive(java_pid)
    parent.send_signal(signal.SIGKILL)  # no atexit, no cleanup: only the kernel can help
    parent.wait(timeout=10)
    deadline = time.monotonic() + 15
    while _alive(java_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(java_pid), "DynamoDB Local outlived its parent"
