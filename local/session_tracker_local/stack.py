"""The local stack: what ``make run`` / ``session-tracker serve`` starts.

Everything comes from ``template.yaml``: the table (created from its definition),
the functions (their handlers run in-process), and their event sources —
``HttpApi`` routes on a local HTTP server, ``Schedule``/``ScheduleV2`` timers, and
``DynamoDB`` stream pollers. Adding a function to the template adds it here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote

from session_tracker_local.apigw import LocalHttpApi, Router
from session_tracker_local.cfn import EventSource, FunctionSpec, Template, resolve
from session_tracker_local.dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable, java_available
from session_tracker_local.lambda_host import FunctionPool
from session_tracker_local.tokens import resolve_tokens

if TYPE_CHECKING:
    from session_tracker_local.workers import WorkerSet

log = logging.getLogger("session_tracker_local")

Backend = Literal["auto", "dynamodb-local", "moto"]
DATA_ROOT_BUCKET_VARS = frozenset({"SESSION_FILES_BUCKET"})
"""Bucket variables whose objects live at the top of the local data directory (see ``_function_env``)."""


class Runner(Protocol):
    """A local event source (schedule, stream poller) feeding one function."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def find_root(start: Path | None = None) -> Path:
    """The project root: the nearest directory holding ``template.yaml``."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "template.yaml").is_file():
            return candidate
    raise FileNotFoundError("template.yaml not found in this directory or any parent")


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")


def schedule_seconds(expression: str) -> float:
    """Seconds between runs for ``rate(...)``; ``cron(...)`` runs every minute locally."""
    m = _RATE.match(expression.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2).rstrip("s")
        return n * {"minute": 60, "hour": 3600, "day": 86400}[unit]
    if expression.strip().startswith("cron("):
        return 60.0
    raise ValueError(f"unsupported schedule expression: {expression!r}")


class ScheduleRunner:
    """Invokes a function with an EventBridge scheduled event at the declared rate."""

    def __init__(
        self, pool: FunctionPool, source: EventSource, refs: dict[str, Any], *, interval: float | None = None
    ) -> None:
        props = resolve(source.properties, refs)
        self.pool = pool
        self.name = source.name
        self.expression = str(props.get("Schedule") or props.get("ScheduleExpression") or "rate(1 minute)")
        self.interval = interval or schedule_seconds(self.expression)
        self.input = props.get("Input")
        self.enabled = props.get("Enabled", True) not in (False, "false", "False")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def event(self) -> dict[str, Any]:
        if self.input:
            import json

            return json.loads(self.input) if isinstance(self.input, str) else dict(self.input)
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "000000000000",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "resources": [f"arn:aws:events:local:000000000000:rule/{self.pool.spec.logical_id}-{self.name}"],
            "detail": {},
        }

    def run_once(self) -> Any:
        self.runs += 1
        return self.pool.invoke(self.event())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:
                log.exception("scheduled run of %s failed", self.pool.spec.logical_id)

    def start(self) -> None:
        if not self.enabled:
            return
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)


RunnerFactory = Callable[["LocalStack", FunctionPool, EventSource], Runner | None]


def _schedule_factory(stack: LocalStack, pool: FunctionPool, source: EventSource) -> Runner:
    return ScheduleRunner(pool, source, stack.refs, interval=stack.options.schedule_interval)


def _stream_factory(stack: LocalStack, pool: FunctionPool, source: EventSource) -> Runner | None:
    try:
        from session_tracker_local.streams import StreamPoller
    except ImportError:
        log.warning("%s: DynamoDB stream events are not supported by this local stack", pool.spec.logical_id)
        return None
    return StreamPoller(stack, pool, source)


EVENT_RUNNERS: dict[str, RunnerFactory] = {
    "Schedule": _schedule_factory,
    "ScheduleV2": _schedule_factory,
    "DynamoDB": _stream_factory,
}


def default_workers() -> int:
    """HTTP worker processes for ``make run``: one per core, at most 4 (DynamoDB Local needs cores too)."""
    return max(1, min(4, os.cpu_count() or 1))


def build_router(
    template: Template, refs: dict[str, Any], *, max_concurrency: int, warm: bool = True
) -> tuple[Router, dict[str, FunctionPool]]:
    """The HTTP routes of ``template.yaml`` (its ``HttpApi`` events) and a pool per function;
    ``warm`` loads one instance of every routed function now (import errors surface at start)."""
    router = Router()
    pools: dict[str, FunctionPool] = {}
    for spec in template.functions():
        pool = FunctionPool(spec, max_concurrency=max_concurrency)
        pools[spec.logical_id] = pool
        routed = False
        for source in spec.events:
            if source.type == "HttpApi":
                props = resolve(source.properties, refs)
                router.add(str(props.get("Method", "ANY")), str(props["Path"]), pool)
                routed = True
        if warm and routed:
            pool.warm()
    return router, pools


@dataclass
class StackOptions:
    root: Path
    host: str = "127.0.0.1"
    port: int = 3000
    data_dir: Path | None = None
    """Where DynamoDB Local keeps its files; ``None`` keeps data in memory."""
    backend: Backend = "auto"
    table_name: str = "tutor-session-tracker-local"
    ingest_token: str | None = None
    read_token: str | None = None
    admin_token: str | None = None
    vapi_secret: str | None = None
    retell_api_key: str | None = None
    elevenlabs_secret: str | None = None
    run_schedules: bool = True
    run_streams: bool = True
    schedule_interval: float | None = None
    """Override every schedule's interval (seconds); ``None`` uses the template's rate."""
    max_concurrency: int = 8
    """Handler instances per function (per worker process with ``workers``)."""
    workers: int = 0
    """HTTP worker processes sharing the listening socket (``session_tracker_local.workers``); 0 serves
    HTTP from threads of this process. Streams and schedules always run once, in this process."""
    access_log: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)


class LocalStack:
    """Start/stop the whole local stack; usable as a context manager."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.template = Template.load(options.root / "template.yaml")
        self.backend: str = ""
        self.notice: str | None = None
        self.dynamodb_endpoint: str | None = None
        self._ddb: DynamoDBLocal | None = None
        self._moto: Any = None
        self.server: LocalHttpApi | None = None
        self.workers: WorkerSet | None = None
        self._listener: socket.socket | None = None
        self._url: str | None = None
        self._router: Router | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.runners: list[Runner] = []
        self.refs: dict[str, Any] = {}
        self.tokens = resolve_tokens(
            {
                "INGEST_TOKEN": options.ingest_token,
                "READ_TOKEN": options.read_token,
                "ADMIN_TOKEN": options.admin_token,
                "VAPI_WEBHOOK_SECRET": options.vapi_secret,
                "RETELL_API_KEY": options.retell_api_key,
                "ELEVENLABS_WEBHOOK_SECRET": options.elevenlabs_secret,
            },
            data_dir=options.data_dir,
        )
        self.ingest_token = self.tokens.values["INGEST_TOKEN"]
        self.read_token = self.tokens.values["READ_TOKEN"]
        self.admin_token = self.tokens.values["ADMIN_TOKEN"]
        self.vapi_secret = self.tokens.values["VAPI_WEBHOOK_SECRET"]
        self.retell_api_key = self.tokens.values["RETELL_API_KEY"]
        self.elevenlabs_secret = self.tokens.values["ELEVENLABS_WEBHOOK_SECRET"]
        self._saved_env: dict[str, str | None] = {}
        self.bucket_dirs: dict[str, Path] = {}
        self._temp_blob_root: Path | None = None

    # --------------------------------------------------------------- backend
    def _start_backend(self) -> None:
        want = self.options.backend
        if want in ("auto", "dynamodb-local"):
            if java_available():
                try:
                    cache = Path(os.environ.get("SESSION_TRACKER_CACHE", self.options.root / ".cache"))
                    db_path = self.options.data_dir / "dynamodb" if self.options.data_dir else None
                    self._ddb = DynamoDBLocal(cache_dir=cache / "dynamodb-local", db_path=db_path).start()
                    self.backend = "dynamodb-local"
                    self.dynamodb_endpoint = self._ddb.endpoint
                    return
                except DynamoDBLocalUnavailable as exc:
                    if want == "dynamodb-local":
                        raise
                    self.notice = f"DynamoDB Local could not start ({exc}); using in-process moto instead."
            elif want == "dynamodb-local":
                raise DynamoDBLocalUnavailable("java is not installed")
            else:
                self.notice = "java not found: using in-process moto instead of DynamoDB Local (data is in memory)."
        from moto import mock_aws

        self._moto = mock_aws()
        self._moto.start()
        self.backend = "moto"

    def _set_env(self, key: str, value: str | None) -> None:
        if key not in self._saved_env:
            self._saved_env[key] = os.environ.get(key)
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

    def _configure_env(self) -> None:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": None,
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": self.dynamodb_endpoint,
            **self.tokens.values,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
            "POWERTOOLS_DEV": os.environ.get("POWERTOOLS_DEV", "false"),
            "SESSION_CONFIG": os.environ.get("SESSION_CONFIG", str(self.options.root / "session_config.yaml")),
            "SESSION_TRACKER_LOCAL": "1",
            **self.options.extra_env,
        }.items():
            self._set_env(key, value)

    def _build_refs(self) -> None:
        refs: dict[str, Any] = {k: v for k, v in self.template.parameter_defaults().items() if v is not None}
        refs.update(
            {
                "Stage": "local",
                "AWS::Region": os.environ["AWS_DEFAULT_REGION"],
                "AWS::AccountId": "000000000000",
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": "tutor-session-tracker-local",
            }
        )
        table_id, _ = self.template.table()
        refs[table_id] = self.options.table_name
        refs[f"{table_id}.Arn"] = f"arn:aws:dynamodb:local:000000000000:table/{self.options.table_name}"
        for logical_id in self.template.resources:
            refs.setdefault(logical_id, logical_id)
        self.refs = refs

    def _create_table(self) -> None:
        import boto3

        client = boto3.client("dynamodb")
        request = self.template.create_table_request(self.options.table_name)
        try:
            client.create_table(**request)
        except client.exceptions.ResourceInUseException:
            self._add_missing_indexes(client, request)
        client.get_waiter("table_exists").wait(
            TableName=self.options.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )

    def _add_missing_indexes(self, client: Any, request: dict[str, Any]) -> None:
        """A table kept in the data dir from an older template: add the indexes it lacks."""
        table = client.describe_table(TableName=self.options.table_name)["Table"]
        have = {g["IndexName"] for g in table.get("GlobalSecondaryIndexes", [])}
        wanted = {a["AttributeName"]: a for a in request["AttributeDefinitions"]}
        for index in request.get("GlobalSecondaryIndexes", []):
            if index["IndexName"] in have:
                continue
            log.warning("table %s has no index %s: adding it", self.options.table_name, index["IndexName"])
            client.update_table(
                TableName=self.options.table_name,
                AttributeDefinitions=[wanted[k["AttributeName"]] for k in index["KeySchema"]],
                GlobalSecondaryIndexUpdates=[{"Create": index}],
            )

    def _bucket_dir(self, logical_id: str) -> Path:
        """A local directory standing in for the template's S3 bucket ``logical_id``."""
        if logical_id not in self.bucket_dirs:
            root = self.options.data_dir / "buckets" if self.options.data_dir is not None else self.data_root()
            path = root / logical_id
            path.mkdir(parents=True, exist_ok=True)
            self.bucket_dirs[logical_id] = path
        return self.bucket_dirs[logical_id]

    def data_root(self) -> Path:
        """The local data directory (``.local-data``), or a temporary one with ``--in-memory``."""
        if self.options.data_dir is not None:
            self.options.data_dir.mkdir(parents=True, exist_ok=True)
            return self.options.data_dir
        if self._temp_blob_root is None:
            self._temp_blob_root = Path(tempfile.mkdtemp(prefix="session-tracker-buckets-"))
        return self._temp_blob_root

    @property
    def session_files_dir(self) -> Path:
        """Where the session files (``auto_save``) are written locally: ``<data>/sessions/``."""
        return self.data_root() / "sessions"

    def _function_env(self, spec: FunctionSpec) -> None:
        buckets = self.template.resources_of("AWS::S3::Bucket")
        for key, raw in spec.environment.items():
            if isinstance(raw, dict) and raw.get("Ref") in buckets:
                # An S3 bucket becomes a local directory: FOO_BUCKET -> FOO_DIR (FOO_BUCKET unset).
                # Session files are the exception: the contract puts them at the top of the data
                # directory (.local-data/sessions/), where people look, not under buckets/<id>/.
                self._set_env(key, None)
                where = self.data_root() if key in DATA_ROOT_BUCKET_VARS else self._bucket_dir(raw["Ref"])
                self._set_env(f"{key.removesuffix('_BUCKET')}_DIR", str(where))
                continue
            value = resolve(raw, self.refs)
            if key.endswith("_PARAM"):
                continue  # secrets come from the environment locally, not SSM
            if value in ("", None) or key in self.options.extra_env:
                continue  # nothing to set, or the caller chose the value
            current = os.environ.get(key)
            if key in self._saved_env and current is not None and current != str(value):
                log.warning("env %s differs between functions (%s vs %s); using %s", key, current, value, current)
                continue
            self._set_env(key, str(value))

    # ------------------------------------------------------------------ life
    def start(self) -> LocalStack:
        try:
            self._start_backend()
            self._configure_env()
            self._build_refs()
            self._create_table()
            if self._ddb is not None:  # a JVM that dies is restarted (the API answers 503 meanwhile)
                self._ddb.watch(on_restart=self._create_table)
            functions = self.template.functions()
            for spec in functions:
                self._function_env(spec)
            from session_tracker import runtime

            runtime.reset()
            workers = self._worker_count()
            router, self.pools = build_router(
                self.template, self.refs, max_concurrency=self.options.max_concurrency, warm=workers == 0
            )
            for spec in functions:
                pool = self.pools[spec.logical_id]
                for source in spec.events:
                    if source.type in EVENT_RUNNERS:
                        enabled = self.options.run_streams if source.type == "DynamoDB" else self.options.run_schedules
                        if enabled:
                            runner = EVENT_RUNNERS[source.type](self, pool, source)
                            if runner is not None:
                                self.runners.append(runner)
                                if workers:
                                    pool.warm()
                    elif source.type != "HttpApi":
                        log.warning("%s: event type %s is not emulated locally", spec.logical_id, source.type)
            self._router = router
            if workers:
                self._start_workers(workers)
            else:
                self.server = LocalHttpApi(
                    self.options.host, self.options.port, router, access_log=self.options.access_log
                )
                self.server.start()
                self._url = self.server.url
            for runner in self.runners:
                runner.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _worker_count(self) -> int:
        """HTTP worker processes: none with moto (its table lives in this process)."""
        if self.options.workers <= 0:
            return 0
        if self.backend != "dynamodb-local":
            self.notice = (self.notice + " " if self.notice else "") + "HTTP is served in-process (moto)."
            return 0
        return self.options.workers

    def _start_workers(self, count: int) -> None:
        from session_tracker_local.workers import WorkerSet

        sock = socket.create_server((self.options.host, self.options.port), backlog=1024)
        self._listener = sock
        host, port = sock.getsockname()[:2]
        self._url = f"http://{host!s}:{port}"
        self.workers = WorkerSet(
            sock,
            count,
            {
                "root": str(self.options.root),
                "refs": self.refs,
                "max_concurrency": self.options.max_concurrency,
                "access_log": self.options.access_log,
            },
        )
        self.workers.start()

    @property
    def url(self) -> str:
        assert self._url is not None, "the stack is not started"
        return self._url

    @property
    def router(self) -> Router:
        assert self._router is not None, "the stack is not started"
        return self._router

    def pids(self) -> list[int]:
        """This process and the HTTP workers (memory figures)."""
        return [os.getpid(), *(self.workers.pids if self.workers is not None else [])]

    def stop(self) -> None:
        for runner in self.runners:
            with contextlib.suppress(Exception):
                runner.stop()
        self.runners = []
        if self.workers is not None:
            self.workers.stop()
            self.workers = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._ddb is not None:
            self._ddb.stop()
            self._ddb = None
        if self._moto is not None:
            with contextlib.suppress(Exception):
                self._moto.stop()
            self._moto = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        if self._temp_blob_root is not None:
            shutil.rmtree(self._temp_blob_root, ignore_errors=True)
            self._temp_blob_root = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> str:
        """The banner printed by ``serve``: URL, tokens, data location, routes."""
        lines = [f"tutor-session-tracker local stack on {self.url}"]
        notes = {"option": "", "env": " (from the environment)", "file": " (kept from the last run)", "generated": ""}
        uses = {
            "RETELL_API_KEY": "  (signs /webhook/retell)",
            "ELEVENLABS_WEBHOOK_SECRET": "  (signs /webhook/elevenlabs)",
        }
        for name, value in self.tokens.values.items():
            lines.append(f"  {name}={value}{notes[self.tokens.sources[name]]}{uses.get(name, '')}")
        if self.tokens.path is not None and any(s in ("file", "generated") for s in self.tokens.sources.values()):
            lines.append(f"  generated tokens are kept in {self.tokens.path} (mode 0600); delete it for new ones")
        if any(r.path == "/ui" for r in self.router.routes):
            lines.append(f"  sessions page: {self.url}/ui?token={quote(self.read_token, safe='')}")
        if self.backend == "dynamodb-local":
            where = self.options.data_dir / "dynamodb" if self.options.data_dir else "memory (not kept)"
            lines.append(
                f"  data: DynamoDB Local at {self.dynamodb_endpoint}, table {self.options.table_name}, files in {where}"
            )
        else:
            lines.append(f"  data: in-process moto, table {self.options.table_name} (in memory, lost on exit)")
        for logical_id, path in self.bucket_dirs.items():
            kept = "" if self.options.data_dir is not None else " (temporary, removed on exit)"
            lines.append(f"  bucket {logical_id}: directory {path}{kept}")
        if os.environ.get("SESSION_FILES_DIR"):
            kept = "" if self.options.data_dir is not None else " (temporary, removed on exit)"
            lines.append(f"  session files: {self.session_files_dir}{kept}")
        if self.notice:
            lines.append(f"  NOTICE: {self.notice}")
        if self.workers is not None:
            lines.append(f"  HTTP: {self.workers.count} worker processes on one socket (pids {self.workers.pids})")
        lines.append("  routes:")
        lines += [f"    {r.method:6} {r.path:40} -> {r.pool.spec.logical_id}" for r in self.router.routes]
        for runner in self.runners:
            pool = getattr(runner, "pool", None)
            lines.append(f"  runner: {type(runner).__name__} -> {pool.spec.logical_id if pool else '?'}")
        return "\n".join(lines)
