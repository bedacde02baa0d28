"""Pre-forked HTTP workers for the local stack: one listening socket, N processes serving it.

One Python process serves every route with one GIL: on a machine where DynamoDB Local, the
handlers and the clients share the cores, the handlers' Python (routing, validation,
serialisation, botocore) queues behind itself. With ``StackOptions.workers = N`` the parent
process (:class:`~session_tracker_local.stack.LocalStack`) binds and listens once, then starts N
worker processes (``python -m session_tracker_local.workers``) that inherit the listening socket
and each ``accept`` on it with their own handler instances and their own GIL. The parent keeps
everything that must run exactly once: DynamoDB Local, the table, the stream pollers and the
schedules. ``template.yaml`` stays the only routing table: every worker builds its router from
it, as the in-process server does.

No orphans: a worker exits when its stdin (a pipe from the parent) reaches end of file - the
parent closing it in :meth:`WorkerSet.stop`, or the parent dying however it dies - and on Linux it
also gets SIGTERM when the parent dies (``PR_SET_PDEATHSIG``). Ctrl-C reaches the whole
foreground process group: workers ignore SIGINT and let the parent stop them.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

READY = b"ready\n"


def _die_with_parent() -> Any:
    from session_tracker_local.dynamodb_local import _die_with_parent as preexec

    return preexec()


class WorkerSet:
    """The worker processes serving one listening socket."""

    def __init__(self, sock: socket.socket, count: int, config: dict[str, Any]) -> None:
        self.sock = sock
        self.count = count
        self.config = config
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, timeout: float = 120) -> None:
        env = dict(os.environ)
        # The workers import the handlers from the project as the parent does.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        fd = self.sock.fileno()
        config = json.dumps({**self.config, "fd": fd}).encode() + b"\n"
        for _ in range(self.count):
            process = subprocess.Popen(
                [sys.executable, "-m", "session_tracker_local.workers"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                pass_fds=(fd,),
                preexec_fn=_die_with_parent(),  # only calls prctl, bound in the parent
            )
            assert process.stdin is not None
            process.stdin.write(config)
            process.stdin.flush()
            self.processes.append(process)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            assert process.stdout is not None
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([process.stdout], [], [], left)
            line = process.stdout.readline() if ready else b""
            if line != READY:
                self.stop()
                raise RuntimeError(f"local stack worker {process.pid} did not start (exit code {process.poll()})")

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.processes)

    def stop(self, timeout: float = 10) -> None:
        for process in self.processes:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()  # end of file: the worker shuts down
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        self.processes = []


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux ``/proc``), in MB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _serve(config: dict[str, Any]) -> None:
    from session_tracker import runtime
    from session_tracker_local.apigw import LocalHttpApi
    from session_tracker_local.cfn import Template
    from session_tracker_local.stack import build_router

    template = Template.load(Path(config["root"]) / "template.yaml")
    runtime.reset()
    router, pools = build_router(template, config["refs"], max_concurrency=int(config["max_concurrency"]))
    for pool in pools.values():
        if any(route.pool is pool for route in router.routes):
            pool.warm()
    listener = socket.socket(fileno=int(config["fd"]))
    listener.setblocking(False)  # another worker may win the accept: no blocking in accept()
    server = LocalHttpApi.on_socket(listener, router, access_log=bool(config.get("access_log")))
    server.start()
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    # The lifeline: stdin reaches end of file when the parent closes it or dies.
    while sys.stdin.buffer.read(65536):
        pass
    server.shutdown()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    config = json.loads(sys.stdin.buffer.readline())
    _serve(config)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the handlers' daemon threads (senders, pools) do not hold the exit


if __name__ == "__main__":
    main()
