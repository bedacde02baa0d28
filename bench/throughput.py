"""Throughput: the local stack under a bounded concurrent load of realistic traffic.

Traffic: many students, each with several sessions of tool calls (gaps of
20-150 s inside a session, 15-90 min between sessions, explicit timestamps),
sent over HTTP by ``WORKERS`` concurrent clients (each student's calls in order,
some as single posts, some as batches), with ~3 % of requests retried as-is (the
client's interaction ids must make them no-ops) and, when the stack serves the
VAPI webhook, an end-of-call report per session. Baseline, same run, same
concurrency: raw boto3 ``put_item`` to the same DynamoDB Local.

Afterwards every interaction is counted back from the table: none may be lost or
duplicated, and the sessions must be exactly the ones the session rules predict.
"""

from __future__ import annotations

import copy
import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples" / "vapi"
TOKEN = "bench-token"
VAPI_SECRET = "bench-vapi-secret"
FUNCTIONS = ["get_student_context", "get_progress", "get_curriculum", "record_answer"]
SUBJECTS = ["mathematics", "reading", "science"]


def _plan(students: int, sessions: int, calls: int, seed: int = 7) -> dict[str, list[list[dict[str, Any]]]]:
    """Per student, a list of sessions, each a list of interaction bodies (explicit time and id)."""
    rng = random.Random(seed)
    base = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    plan: dict[str, list[list[dict[str, Any]]]] = {}
    for s in range(students):
        student = f"bench_s{s:05d}"
        at = base + timedelta(seconds=rng.randint(0, 3600))
        runs = []
        for _ in range(sessions):
            run = []
            for _ in range(calls):
                run.append(
                    {
                        "student_id": student,
                        "function": rng.choice(FUNCTIONS),
                        "timestamp": at.isoformat().replace("+00:00", "Z"),
                        "interaction_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                        "arguments": {"student_id": student, "topic": rng.choice(SUBJECTS)},
                        "data_provided": rng.sample(["profile", "progress", "curriculum", "answers"], 2),
                        "subjects": [rng.choice(SUBJECTS)],
                        "response_size": rng.randint(200, 5000),
                        "duration_ms": round(rng.uniform(5, 80), 2),
                    }
                )
                at += timedelta(seconds=rng.randint(20, 150))
            runs.append(run)
            at += timedelta(minutes=rng.randint(15, 90))
        plan[student] = runs
    return plan


def _vapi_report(template: dict[str, Any], student: str, run: list[dict[str, Any]], n: int) -> dict[str, Any]:
    body = copy.deepcopy(template)
    msg = body["message"]
    start = datetime.fromisoformat(run[0]["timestamp"].replace("Z", "+00:00")) - timedelta(seconds=20)
    end = datetime.fromisoformat(run[-1]["timestamp"].replace("Z", "+00:00")) + timedelta(seconds=30)
    call_id = f"bench-call-{student}-{n}"
    msg["startedAt"] = start.isoformat().replace("+00:00", "Z")
    msg["endedAt"] = end.isoformat().replace("+00:00", "Z")
    msg["timestamp"] = int(end.timestamp() * 1000)
    call = msg.setdefault("call", {})
    call["id"] = call_id
    overrides = call.setdefault("assistantOverrides", {})
    overrides.setdefault("variableValues", {})["student_id"] = student
    overrides.setdefault("metadata", {}).pop("session_id", None)
    overrides["variableValues"].pop("session_id", None)
    return body


def _stack(clients: int) -> Any:
    """The local stack as `make run` serves it (HTTP worker processes), DynamoDB Local in memory."""
    from session_tracker_local.stack import LocalStack, StackOptions, default_workers

    return LocalStack(
        StackOptions(
            root=ROOT,
            port=0,
            data_dir=None,
            backend="dynamodb-local",
            ingest_token=TOKEN,
            vapi_secret=VAPI_SECRET,
            run_schedules=False,
            run_streams=False,
            max_concurrency=clients,
            workers=default_workers(),
            extra_env={"POWERTOOLS_LOG_LEVEL": "WARNING"},
        )
    ).start()


def run(quick: bool = False) -> dict[str, Any]:
    import boto3
    import httpx

    from bench.stats import percentile
    from session_tracker import sessions as rules
    from session_tracker.store import DynamoStore

    students, per_student, calls = (40, 3, 5) if quick else (100, 3, 6)
    workers = 8
    plan = _plan(students, per_student, calls)
    total = sum(len(r) for runs in plan.values() for r in runs)
    stack = _stack(workers)
    try:
        vapi_route = any(r.path == "/webhook/vapi/session-complete" for r in stack.router.routes)
        report_template = None
        if vapi_route and (SAMPLES / "end-of-call-report.full.json").is_file():
            report_template = json.loads((SAMPLES / "end-of-call-report.full.json").read_text())
        rng = random.Random(11)
        latencies: list[float] = []
        lat_lock = threading.Lock()
        status_counts: Counter[int] = Counter()
        retries = 0
        reports = 0
        false_duplicates: list[str] = []
        responses: dict[str, list[str]] = {}

        def student_worker(student: str) -> tuple[int, int]:
            local_retries = local_reports = 0
            r = random.Random(student)
            with httpx.Client(base_url=stack.url, timeout=60) as http:
                for n, session_calls in enumerate(plan[student]):
                    i = 0
                    while i < len(session_calls):
                        size = r.choice([1, 1, 1, 3, 5])
                        chunk = session_calls[i : i + size]
                        body = chunk[0] if len(chunk) == 1 else {"interactions": chunk}
                        sends = 2 if r.random() < 0.03 else 1
                        for _ in range(sends):
                            t = time.perf_counter()
                            resp = http.post("/interactions", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
                            with lat_lock:
                                latencies.append(time.perf_counter() - t)
                                status_counts[resp.status_code] += 1
                                if sends == 1 and '"duplicate":true' in resp.text:
                                    false_duplicates.append(resp.text[:500])
                                for entry in body.get("interactions") or [body]:
                                    responses.setdefault(entry["interaction_id"], []).append(
                                        f"{resp.status_code} {resp.text[:300]}"
                                    )
                        local_retries += sends - 1
                        i += len(chunk)
                    if report_template is not None:
                        resp = http.post(
                            "/webhook/vapi/session-complete",
                            json=_vapi_report(report_template, student, session_calls, n),
                            headers={"X-Vapi-Secret": VAPI_SECRET},
                        )
                        with lat_lock:
                            status_counts[resp.status_code] += 1
                        local_reports += 1
            return local_retries, local_reports

        order = list(plan)
        rng.shuffle(order)
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            for r_, p_ in pool.map(student_worker, order):
                retries += r_
                reports += p_
        elapsed = time.perf_counter() - started

        # Baseline: raw put_item at the same concurrency against the same DynamoDB Local.
        client = boto3.client("dynamodb")
        table = stack.options.table_name
        raw_n = total

        def raw_worker(k: int) -> None:
            c = boto3.client("dynamodb")
            for i in range(k, raw_n, workers):
                c.put_item(
                    TableName=table,
                    Item={"PK": {"S": f"RAW#{i}"}, "SK": {"S": "RAW"}, "body": {"S": json.dumps(plan[order[0]][0][0])}},
                )

        raw_started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(raw_worker, range(workers)))
        raw_elapsed = time.perf_counter() - raw_started

        phases = _load_phases(stack, workers, quick)
        phases["load_average"] = [round(x, 2) for x in os.getloadavg()]

        # Count everything back and compare with what the session rules predict.
        store = DynamoStore(table, client=client)
        timeout = timedelta(minutes=10)
        lost = duplicated = wrong_session = 0
        lost_examples: list[dict[str, Any]] = []
        stored_total = 0
        for student, runs in plan.items():
            for run_calls in runs:
                first = datetime.fromisoformat(run_calls[0]["timestamp"].replace("Z", "+00:00"))
                expected_id = rules.session_id_for(student, first)
                found = store.read_session(expected_id)
                ids = Counter(r.interaction_id for r in found[1]) if found else Counter()
                stored_total += sum(ids.values())
                for call in run_calls:
                    if ids[call["interaction_id"]] == 0:
                        lost += 1
                        if len(lost_examples) < 5:
                            lost_examples.append(
                                {
                                    "expected_session": expected_id,
                                    "interaction_id": call["interaction_id"],
                                    "timestamp": call["timestamp"],
                                    "marker_session": store.lookup_marker(call["student_id"], call["interaction_id"]),
                                    "responses": responses.get(call["interaction_id"]),
                                }
                            )
                duplicated += sum(v - 1 for v in ids.values() if v > 1)
                wrong_session += sum(1 for i in ids if i not in {c["interaction_id"] for c in run_calls})
        del timeout
    finally:
        stack.stop()

    ms = sorted(x * 1000 for x in latencies)
    rate = total / elapsed
    raw_rate = raw_n / raw_elapsed
    result = {
        "description": "local stack over HTTP, concurrent realistic traffic vs raw put_item at the same concurrency",
        "students": students,
        "sessions": students * per_student,
        "interactions": total,
        "http_requests": sum(status_counts.values()),
        "retried_requests": retries,
        "vapi_reports": reports,
        "statuses": dict(status_counts),
        "workers": workers,
        "seconds": round(elapsed, 2),
        "interactions_per_s": round(rate, 1),
        "raw_put_item_per_s": round(raw_rate, 1),
        "ratio_to_raw": round(rate / raw_rate, 3),
        "request_median_ms": round(percentile(ms, 50), 2),
        "request_p99_ms": round(percentile(ms, 99), 2),
        "stored_interactions": stored_total,
        "lost": lost,
        "duplicated": duplicated,
        "in_wrong_session": wrong_session,
        "lost_examples": lost_examples,
        "false_duplicates": false_duplicates[:5],
    }
    result.update(phases)
    result["markdown"] = "\n".join(
        [
            "## Throughput",
            "",
            f"{students} students x {per_student} sessions x {calls} calls = {total} interactions over HTTP "
            f"by {workers} concurrent clients (batches of 1-5, {retries} requests retried as-is, "
            f"{reports} VAPI end-of-call reports); baseline: raw `put_item` at the same concurrency, same DynamoDB Local.",
            "",
            "| path | items/s | ratio |",
            "|---|---|---|",
            f"| raw boto3 put_item (baseline) | {result['raw_put_item_per_s']} | 1.0 |",
            f"| local stack POST /interactions | {result['interactions_per_s']} | {result['ratio_to_raw']} |",
            "",
            f"Request latency median {result['request_median_ms']} ms, p99 {result['request_p99_ms']} ms; "
            f"statuses {dict(sorted(status_counts.items()))}. Counted back from the table: "
            f"**{stored_total}** stored of {total} sent, **{lost} lost, {duplicated} duplicated, "
            f"{wrong_session} in a wrong session**.",
            "",
            *_phase_markdown(phases, workers),
        ]
    )
    return result


CLIENT_BATCH = 25
"""The MCP-side client's default batch (``SenderOptions.batch_size``)."""


def _bodies(prefix: str, clients: int, per_client: int, batch: int, students_per_client: int = 5) -> list[list[Any]]:
    """Per client, its request bodies: ``batch`` calls each (one call = a single POST), fresh ids."""
    base = datetime(2026, 4, 6, 8, 0, tzinfo=UTC)
    out: list[list[Any]] = []
    for c in range(clients):
        bodies: list[Any] = []
        n = 0
        for _ in range(per_client):
            calls = []
            for _ in range(batch):
                student = f"{prefix}_c{c}_s{n % students_per_client}"
                at = base + timedelta(seconds=30 * (n // students_per_client))
                calls.append(
                    {
                        "student_id": student,
                        "function": FUNCTIONS[n % len(FUNCTIONS)],
                        "timestamp": at.isoformat().replace("+00:00", "Z"),
                        "interaction_id": uuid.uuid4().hex,
                        "arguments": {"student_id": student, "topic": SUBJECTS[n % len(SUBJECTS)]},
                        "data_provided": ["profile", "progress"],
                        "subjects": [SUBJECTS[n % len(SUBJECTS)]],
                        "response_size": 1200,
                        "duration_ms": 12.5,
                    }
                )
                n += 1
            bodies.append(calls[0] if batch == 1 else {"interactions": calls})
        out.append(bodies)
    return out


def _drive(url: str, per_client: list[list[Any]]) -> tuple[float, Counter[int]]:
    """Every client posts its bodies in order over one keep-alive connection; returns (seconds, statuses)."""
    import httpx

    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def client(bodies: list[Any]) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for body in bodies:
                code = http.post("/interactions", json=body, headers={"Authorization": f"Bearer {TOKEN}"}).status_code
                with lock:
                    statuses[code] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(len(per_client)) as pool:
        list(pool.map(client, per_client))
    return time.perf_counter() - started, statuses


def _raw_put_rate(table: str, workers: int, n: int) -> float:
    import boto3

    def worker(k: int) -> None:
        c = boto3.client("dynamodb")
        for i in range(k, n, workers):
            c.put_item(
                TableName=table, Item={"PK": {"S": f"RAWP#{uuid.uuid4().hex}"}, "SK": {"S": "RAW"}, "n": {"N": str(i)}}
            )

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(worker, range(workers)))
    return n / (time.perf_counter() - started)


def _cpu(stack: Any) -> dict[str, float]:
    """CPU seconds used so far by DynamoDB Local, this process and the stack's HTTP workers."""

    def used(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    ddb = getattr(stack, "_ddb", None)
    pids = stack.pids()
    out = {"dynamodb_local": used(ddb.process.pid) if ddb is not None and ddb.process else 0.0}
    out["bench_and_parent"] = used(pids[0])
    out["http_workers"] = sum(used(pid) for pid in pids[1:])
    return out


def _ceiling(
    stack: Any,
    recorded: dict[int, list[tuple[str, dict[str, Any]]]],
    calls: int,
    workers: int,
    rename: tuple[str, str],
) -> dict[str, Any]:
    """Replay, raw and at the same concurrency, exactly the DynamoDB requests the handler made for ``calls``
    calls (per client, in order), on the same table with the students renamed (``rename``: recorded prefix ->
    a fresh one of the same length, so every item is new, as the stack's were, and of the same size): the
    no-Python ceiling. (A fresh copy of the table, as this bench first did, cost DynamoDB Local ~5x the CPU
    per request on this machine: not the stack's conditions.)"""
    import boto3
    from botocore import xform_name

    old, new = rename
    assert len(old) == len(new), rename
    # One stream per client, in order; spread over `workers` clients made beforehand.
    streams: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in range(workers)]
    for n, ops in enumerate(recorded.values()):
        streams[n % workers] += [(op, json.loads(json.dumps(params).replace(old, new))) for op, params in ops]
    clients = [boto3.client("dynamodb") for _ in streams]
    errors: Counter[str] = Counter()
    retried = [0]
    lock = threading.Lock()

    def replay(k: int) -> None:
        c, ops = clients[k], streams[k]
        for op, params in ops:
            try:
                answer = getattr(c, xform_name(op))(**params)
            except c.exceptions.ClientError as exc:  # the same conditional failures the stack met
                answer = exc.response
                with lock:
                    errors[exc.response["Error"]["Code"]] += 1
            with lock:
                retried[0] += int(answer.get("ResponseMetadata", {}).get("RetryAttempts", 0))

    cpu_before = _cpu(stack)
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(replay, range(workers)))
    elapsed = time.perf_counter() - started
    cpu = {k: round(v - cpu_before[k], 2) for k, v in _cpu(stack).items()}
    requests = sum(len(ops) for ops in streams)
    ops_seen = Counter(op for ops in streams for op, _ in ops)
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "calls_per_s": round(calls / elapsed, 1),
        "requests": requests,
        "requests_per_call": round(requests / max(calls, 1), 2),
        "connections": len(recorded),
        "operations": dict(ops_seen),
        "conditional_failures": dict(errors),
        "sdk_retries": retried[0],
    }


def _burst(url: str, connections: int = 100) -> dict[str, int]:
    """``connections`` clients connect in the same instant and each posts one call (Connection: close)."""
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    barrier = threading.Barrier(connections)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    run_id = uuid.uuid4().hex[:8]

    def client(n: int) -> None:
        body = json.dumps(
            {"student_id": f"burst_{run_id}_{n}", "function": "get_progress", "timestamp": "2026-04-07T10:00:00Z"}
        ).encode()
        head = (
            f"POST /interactions HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            barrier.wait(30)
            with socket.create_connection((parts.hostname, parts.port), timeout=120) as sock:
                sock.sendall(head.encode() + body)
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            outcome = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "garbled"
        except OSError as exc:
            outcome = type(exc).__name__
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return dict(outcomes)


def _record(stack: Any, per_client: list[list[Any]]) -> dict[int, list[tuple[str, dict[str, Any]]]]:
    """The DynamoDB requests the ingest handler makes for these bodies, per client in order.

    Untimed: the handler runs in this process (the stack's pool of LogInteractionFunction, whatever
    serves HTTP), one thread per client, each request's DynamoDB calls recorded as botocore builds them.
    """
    from session_tracker import runtime
    from session_tracker.store import DynamoStore
    from session_tracker_local.apigw import build_event

    route = next(r for r in stack.router.routes if r.method == "POST" and r.path == "/interactions")
    recorded: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    owner: dict[int, int] = {}

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        recorded.setdefault(owner[threading.get_ident()], []).append((model.name, copy.deepcopy(params)))

    def client(k: int) -> None:
        owner[threading.get_ident()] = k
        for body in per_client[k]:
            data = json.dumps(body).encode()
            headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
            event = build_event(route, "POST", "/interactions", "", headers, data, {}, "127.0.0.1")
            answer = route.pool.invoke(event)
            assert answer["statusCode"] == 202, answer

    route.pool.warm()
    store = runtime.deps().store
    assert isinstance(store, DynamoStore), type(store)
    events = store.client.meta.events
    events.register("before-parameter-build.dynamodb", record, unique_id="bench-ceiling")
    try:
        with ThreadPoolExecutor(len(per_client)) as pool:
            list(pool.map(client, range(len(per_client))))
    finally:
        events.unregister("before-parameter-build.dynamodb", unique_id="bench-ceiling")
    return recorded


def _rss_total(stack: Any) -> dict[str, float]:
    """RSS (MB) of the stack's processes: this one (streams, schedules, load) and each HTTP worker."""
    from session_tracker_local.workers import rss_mb

    pids = stack.pids()
    out = {"parent": rss_mb(pids[0])}
    out.update({f"worker{n}": rss_mb(pid) for n, pid in enumerate(pids[1:], 1)})
    out["total"] = round(sum(out.values()), 1)
    return out


ROUNDS = 2
"""Each load phase runs in rounds, the stack, raw ``put_item`` and the ceiling interleaved (machine noise
hits each alike); rates are totals over the rounds."""


def _phase(stack: Any, prefix: str, workers: int, per_client: int, batch: int, raw: bool) -> dict[str, Any]:
    """One load phase: per round, the stack over HTTP, raw ``put_item`` (``raw``) and the ceiling (the handler's
    DynamoDB requests for the same traffic, recorded untimed, replayed raw)."""
    table = stack.options.table_name
    calls_per_round = workers * per_client * batch
    stack_s = raw_s = ceiling_s = 0.0
    statuses: Counter[int] = Counter()
    ceilings: list[dict[str, Any]] = []
    stack_cpu: Counter[str] = Counter()
    for r in range(ROUNDS):
        before = _cpu(stack)
        seconds, st = _drive(stack.url, _bodies(f"{prefix}{r}", workers, per_client, batch))
        stack_cpu.update({k: v - before[k] for k, v in _cpu(stack).items()})
        stack_s += seconds
        statuses.update(st)
        if raw:
            raw_s += calls_per_round / _raw_put_rate(table, workers, calls_per_round)
        recorded = _record(stack, _bodies(f"{prefix}_rec{r}", workers, per_client, batch))
        ceiling = _ceiling(stack, recorded, 1, workers, (f"{prefix}_rec{r}_", f"{prefix}_cel{r}_"))
        ceiling_s += ceiling["seconds"]
        ceilings.append(ceiling)
    calls = calls_per_round * ROUNDS
    merged = dict(ceilings[0])
    merged["calls_per_s"] = round(calls / ceiling_s, 1)
    merged["requests"] = sum(c["requests"] for c in ceilings)
    merged["requests_per_call"] = round(merged["requests"] / calls, 2)
    merged["operations"] = dict(sum((Counter(c["operations"]) for c in ceilings), Counter()))
    merged["conditional_failures"] = dict(sum((Counter(c["conditional_failures"]) for c in ceilings), Counter()))
    merged["sdk_retries"] = sum(c["sdk_retries"] for c in ceilings)
    merged.pop("seconds", None)
    merged["cpu_seconds"] = {
        k: round(sum(c["cpu_seconds"][k] for c in ceilings), 2) for k in ceilings[0]["cpu_seconds"]
    }
    out: dict[str, Any] = {
        "calls": calls,
        "rounds": ROUNDS,
        "interactions_per_s": round(calls / stack_s, 1),
        "ceiling": merged,
        "ratio_to_ceiling": round(ceiling_s / stack_s, 3),
        "cpu_seconds": {k: round(v, 2) for k, v in stack_cpu.items()},
        "seconds": round(stack_s, 2),
        "ceiling_seconds": round(ceiling_s, 2),
        "statuses": dict(statuses),
    }
    if raw:
        out["raw_put_item_per_s"] = round(calls / raw_s, 1)
        out["ratio_to_raw"] = round(raw_s / stack_s, 3)
        out["ceiling_to_raw"] = round(raw_s / ceiling_s, 3)
    return out


def _load_phases(stack: Any, workers: int, quick: bool) -> dict[str, Any]:
    """Default client batches and single calls, each beside raw put_item and/or its no-Python ceiling
    (the same DynamoDB requests replayed raw), and a burst of 100 connections."""
    batches = _phase(stack, "tp_batch", workers, 2 if quick else 4, CLIENT_BATCH, raw=True)
    batches["batch"] = CLIENT_BATCH
    singles = _phase(stack, "tp_single", workers, 12 if quick else 30, 1, raw=False)
    burst = _burst(stack.url, 100)
    return {
        "http_workers": len(stack.pids()) - 1,
        "default_batches": batches,
        "single_calls": singles,
        "burst_100_connections": burst,
    }


def soak(seconds: float, workers: int = 8) -> dict[str, Any]:
    """Default client batches for ``seconds`` against a fresh local stack; RSS of every process of the
    stack (parent and HTTP workers) after a warm-up round, every minute, and at the end."""
    import gc

    stack = _stack(workers)
    try:
        _drive(stack.url, _bodies("soak_warm", workers, 4, CLIENT_BATCH))
        gc.collect()
        start = _rss_total(stack)
        samples = [{"at_s": 0.0, **start}]
        calls = rounds = 0
        statuses: Counter[int] = Counter()
        began = time.monotonic()
        next_sample = began + 60
        while time.monotonic() - began < seconds:
            _, st = _drive(stack.url, _bodies(f"soak{rounds}", workers, 4, CLIENT_BATCH))
            statuses.update(st)
            calls += workers * 4 * CLIENT_BATCH
            rounds += 1
            if time.monotonic() >= next_sample:
                samples.append({"at_s": round(time.monotonic() - began, 1), **_rss_total(stack)})
                next_sample += 60
        elapsed = time.monotonic() - began
        gc.collect()
        end = _rss_total(stack)
        samples.append({"at_s": round(elapsed, 1), **end})
    finally:
        stack.stop()
    growth = round(end["total"] - start["total"], 1)
    result: dict[str, Any] = {
        "description": "memory soak: the client's default batches from 8 clients against the local stack",
        "seconds": round(elapsed, 1),
        "calls": calls,
        "calls_per_s": round(calls / elapsed, 1),
        "statuses": dict(statuses),
        "rss_start_mb": start,
        "rss_end_mb": end,
        "rss_growth_mb": growth,
        "samples": samples,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    result["markdown"] = "\n".join(
        [
            "## Memory soak",
            "",
            f"`make soak`: {result['seconds']:g} s of the client's default batches ({CLIENT_BATCH} calls per POST) "
            f"from {workers} clients on the local stack ({calls} calls, {result['calls_per_s']} calls/s, statuses "
            f"{dict(sorted(statuses.items()))}); load average at the end {result['load_average']}.",
            "",
            "| at s | " + " | ".join(k for k in start) + " |",
            "|---|" + "---|" * len(start),
            *(f"| {x['at_s']:g} | " + " | ".join(f"{x[k]} MB" for k in start) + " |" for x in samples),
            "",
            f"RSS of the stack's processes: **{start['total']} MB at the start, {end['total']} MB at the end** "
            f"({growth:+g} MB).",
        ]
    )
    return result


def _phase_markdown(phases: dict[str, Any], workers: int) -> list[str]:
    b, s = phases["default_batches"], phases["single_calls"]
    bc, c = b["ceiling"], s["ceiling"]
    return [
        f"Load phases, {workers} concurrent clients on keep-alive connections; the stack serves HTTP from "
        f"{phases['http_workers'] or 'no'} worker processes (`session_tracker_local.workers`). Ceiling = the "
        "DynamoDB requests the handler makes for the same traffic (recorded in-process, untimed), replayed raw "
        "at the same concurrency on the same table (students renamed: every item new, same sizes) by boto3 clients "
        "in the bench's process: what DynamoDB Local allows with none of our Python. Each phase runs in "
        f"{ROUNDS} rounds, stack, raw `put_item` and ceiling interleaved. CPU seconds (DynamoDB Local / bench "
        f"process and stack parent / HTTP workers): batches stack {b['cpu_seconds']}, ceiling "
        f"{bc.get('cpu_seconds')}; single calls stack {s['cpu_seconds']}, ceiling {c.get('cpu_seconds')}.",
        "",
        "| phase | calls | items/s | baseline (same run) | baseline items/s | ratio |",
        "|---|---|---|---|---|---|",
        f"| client default batches ({b['batch']} calls per POST) | {b['calls']} | {b['interactions_per_s']} | "
        f"raw `put_item`, {workers} clients | {b['raw_put_item_per_s']} | {b['ratio_to_raw']} |",
        f"| client default batches ({b['batch']} calls per POST) | {b['calls']} | {b['interactions_per_s']} | "
        f"ceiling: their DynamoDB requests replayed raw ({bc['requests_per_call']} per call: {bc['operations']}) | "
        f"{bc['calls_per_s']} | {b['ratio_to_ceiling']} |",
        f"| ceiling of the default batches | | {bc['calls_per_s']} | raw `put_item`, {workers} clients | "
        f"{b['raw_put_item_per_s']} | {b['ceiling_to_raw']} |",
        f"| single calls (1 per POST) | {s['calls']} | {s['interactions_per_s']} | ceiling: their DynamoDB requests "
        f"replayed raw ({c['requests_per_call']} per call: {c['operations']}) | {c['calls_per_s']} | "
        f"{s['ratio_to_ceiling']} |",
        "",
        f"Statuses: batches {b['statuses']}, single calls {s['statuses']}; 100 connections opened in the same "
        f"instant, one call each: {phases['burst_100_connections']}. Load average after the phases: "
        f"{phases.get('load_average')}. Memory over a 10-minute soak: `make soak` (section below when run).",
    ]


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
