"""Storage cost per logged call on DynamoDB Local, billed with AWS's rules.

Every request of the store goes through clients whose calls ask for
``ReturnConsumedCapacity=INDEXES``. For single-item writes, reads and queries DynamoDB
Local's figures are AWS's (1 WRU per item-KB written, each index write 1 WRU per KB of
its projection; 1 RRU per 4 KB consistent read). For ``TransactWriteItems`` DynamoDB
Local reports only the largest item (x2), so the table part is billed here from the
items themselves: 2 WRU per KB of each item written (a ``Put``'s item, an ``Update``'s
item as stored afterwards, read back with an unmetered client), 2 for a
``ConditionCheck`` or ``Delete``; index writes as DynamoDB Local reports them.

Scenarios (same table, same run): a steady-state call joining an open session; a
batch of 25 calls; whole sessions of 20 and of 4 calls including the idle closer
and its analysis trigger; 30 racing first calls of one student; and two calls of one
student arriving at the same time 9:59 and 10:01 after a call at 9:50 (they must
share a session: the 10:01 call is within the timeout of the 9:59 one).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = timedelta(minutes=10)
T0 = datetime(2026, 1, 17, 14, 0, tzinfo=UTC)


class Meter:
    """Requests and billed capacity of every call made through the clients it watches."""

    def __init__(self, sizer: Any = None) -> None:
        self.sizer = sizer  # an unmetered client: sizes of items a transaction updated
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.wru = 0.0
        self.rru = 0.0

    def watch(self, client: Any) -> Any:
        def ask(params: dict[str, Any], model: Any, **_: Any) -> None:
            if "ReturnConsumedCapacity" in model.input_shape.members:
                params["ReturnConsumedCapacity"] = "INDEXES"

        def count(model: Any, **_: Any) -> None:
            with self.lock:
                self.requests[model.name] += 1

        pending = threading.local()

        def keep(params: dict[str, Any], model: Any, **_: Any) -> None:
            if model.name == "TransactWriteItems":
                pending.items = params.get("TransactItems") or []

        def add(parsed: dict[str, Any], model: Any, **_: Any) -> None:
            consumed = parsed.get("ConsumedCapacity") or []
            entries = consumed if isinstance(consumed, list) else [consumed]
            if model.name == "TransactWriteItems" and "Error" not in parsed:
                w = self.transaction_units(getattr(pending, "items", []))
                w += sum(_index_units(e) for e in entries)
                r = 0.0
            else:
                w, r = billed_units(model.name, entries)
            with self.lock:
                self.wru += w
                self.rru += r

        client.meta.events.register("provide-client-params.dynamodb", ask)
        client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", keep)
        client.meta.events.register("before-call.dynamodb", count)
        client.meta.events.register("after-call.dynamodb", add)
        return client

    @contextmanager
    def measure(self) -> Iterator[dict[str, Any]]:
        with self.lock:
            start = (Counter(self.requests), self.wru, self.rru)
        out: dict[str, Any] = {}
        yield out
        with self.lock:
            requests = self.requests - start[0]
            out.update(
                requests=sum(requests.values()),
                ops=dict(requests),
                wru=round(self.wru - start[1], 3),
                rru=round(self.rru - start[2], 3),
            )

    def transaction_units(self, items: list[dict[str, Any]]) -> float:
        """AWS's table units of a committed transaction: 2 per item-KB of every item it wrote."""
        units = 0.0
        for op in items:
            kind, body = next(iter(op.items()))
            if kind == "Put":
                size = item_size(body["Item"])
            elif kind == "Update" and self.sizer is not None:
                out = self.sizer.get_item(TableName=body["TableName"], Key=body["Key"], ConsistentRead=True)
                size = item_size(out.get("Item") or body["Key"])
            else:  # ConditionCheck, Delete
                size = 1
            units += 2 * max(1, -(-size // 1024))
        return units


def item_size(item: dict[str, Any]) -> int:
    """Approximate DynamoDB item size in bytes (attribute names plus values, AWS's rules)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    kind, v = next(iter(value.items()))
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return (len(v.replace("-", "").replace(".", "").lstrip("0")) + 1) // 2 + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: x}) for x in v) + 3
    if kind == "L":
        return 3 + sum(1 + _value_size(x) for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_size(x) for k, x in v.items())
    return 0


def _index_units(entry: dict[str, Any]) -> float:
    return sum(float(v.get("CapacityUnits") or 0) for v in (entry.get("GlobalSecondaryIndexes") or {}).values())


WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def billed_units(operation: str, entries: list[dict[str, Any]]) -> tuple[float, float]:
    """(billed WRU, RRU) of one response's ``ConsumedCapacity`` under AWS's rules."""
    wru = rru = 0.0
    for entry in entries:
        table = float((entry.get("Table") or {}).get("CapacityUnits") or 0)
        indexes = _index_units(entry)
        if not table and not indexes:
            table = float(entry.get("CapacityUnits") or 0)
        if operation in WRITES:
            wru += table * (2 if operation == "TransactWriteItems" else 1) + indexes
        else:
            rru += table + indexes
    return wru, rru


def _call(student: str, at: datetime, i: int, **extra: Any) -> Any:
    from session_tracker.models import InteractionIn

    return InteractionIn(
        student_id=student,
        function="get_student_context",
        timestamp=at,
        arguments={"student_id": student, "topic": "fractions"},
        data_provided=["profile", "progress"],
        subjects=["mathematics"],
        response_size=1834,
        duration_ms=42,
        interaction_id=f"{student}-{i}",
        **extra,
    )


def _session(
    store: Any, meter: Meter, student: str, calls: int, gap: timedelta, per_request: int = 1
) -> dict[str, Any]:
    """One whole session: ``calls`` calls in requests of ``per_request``, then the closer run that closes it."""
    from session_tracker.lifecycle import close_idle_sessions
    from session_tracker.sessions import log_interactions

    with meter.measure() as cost:
        for first in range(0, calls, per_request):
            batch = [_call(student, T0 + gap * i, i) for i in range(first, min(calls, first + per_request))]
            at = T0 + gap * (first + len(batch) - 1)
            log_interactions(batch, store=store, now=at, timeout=TIMEOUT)
        last = T0 + gap * (calls - 1)
        report = close_idle_sessions(
            store=store, now=last + TIMEOUT + timedelta(minutes=1), timeout=TIMEOUT, request_analysis=True, workers=1
        )
    assert report.closed, report
    return cost | {"calls": calls, "wru_per_call": round(cost["wru"] / calls, 3)}


def run(quick: bool = False) -> dict[str, Any]:
    import boto3

    from session_tracker.lifecycle import close_idle_sessions
    from session_tracker.sessions import log_interactions
    from session_tracker.store.dynamo import DynamoStore
    from session_tracker_local.cfn import Template
    from session_tracker_local.dynamodb_local import DynamoDBLocal

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = Template.load(ROOT / "template.yaml")
    n = 50 if quick else 100
    trials = 20 if quick else 40
    out: dict[str, Any] = {"name": "storage", "schema": _schema_version()}
    with DynamoDBLocal(cache_dir=ROOT / ".cache" / "dynamodb-local") as ddb:
        meter = Meter(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=ddb.endpoint))

        def new_store() -> Any:
            client = meter.watch(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=ddb.endpoint))
            name = f"bench-{time.monotonic_ns()}"
            client.create_table(**template.create_table_request(name))
            client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
            return DynamoStore(name, client=client)

        def same_table(store: Any) -> Any:
            client = meter.watch(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=ddb.endpoint))
            return DynamoStore(store.table_name, client=client)

        store = new_store()
        # steady state: one call per request joining the open session
        log_interactions([_call("steady", T0, -1)], store=store, now=T0, timeout=TIMEOUT)
        with meter.measure() as steady:
            for i in range(n):
                at = T0 + timedelta(seconds=2 * (i + 1))
                log_interactions([_call("steady", at, i)], store=store, now=at, timeout=TIMEOUT)
        out["steady_state"] = _per_call(steady, n)
        # a boundary: each call 11 minutes after the previous one opens a new session
        with meter.measure() as boundary:
            for i in range(20):
                at = T0 + timedelta(minutes=11 * i)
                log_interactions([_call("bounds", at, i)], store=store, now=at, timeout=TIMEOUT)
        out["boundary"] = _per_call(boundary, 20)
        # a batch of 25 calls of one student in its open session
        start = T0 + timedelta(seconds=2 * (n + 1))
        batch = [_call("steady", start + timedelta(seconds=i), 10_000 + i) for i in range(25)]
        with meter.measure() as batched:
            log_interactions(batch, store=store, now=start + timedelta(seconds=30), timeout=TIMEOUT)
        out["batch_of_25"] = batched | {"wru_per_call": round(batched["wru"] / 25, 3)}
        # whole sessions including the closer (each on a table of its own: the closer sees only it)
        out["session_of_20"] = _session(new_store(), meter, "twenty", 20, timedelta(minutes=1))
        out["session_of_4"] = _session(new_store(), meter, "four", 4, timedelta(minutes=2))
        out["session_of_20_in_batches_of_5"] = _session(
            new_store(), meter, "batched", 20, timedelta(minutes=1), per_request=CALLS_PER_REQUEST
        )
        # 30 racing first calls of one student
        race_store = new_store()
        stores = [same_table(race_store) for _ in range(30)]
        barrier = threading.Barrier(30)
        ids: list[str] = []
        errors: list[BaseException] = []

        def racer(i: int) -> None:
            barrier.wait()
            try:
                [r] = log_interactions(
                    [_call("racer", T0 + timedelta(milliseconds=i), i)], store=stores[i], now=T0, timeout=TIMEOUT
                )
                ids.append(r.session_id)
            except BaseException as exc:
                errors.append(exc)

        _threads(30, racer)
        listed, _ = race_store.list_student_sessions("racer", start=T0 - TIMEOUT, end=T0 + TIMEOUT)
        found = race_store.read_session(ids[0]) if ids else None
        out["race_30"] = {
            "sessions": len(listed),
            "distinct_answers": len(set(ids)),
            "calls_stored": len(found[1]) if found else 0,
            "errors": len(errors),
        }
        # 9:59 / 10:01 concurrent arrival after a call at 9:50
        split = 0
        arrival_store = new_store()
        pair = [same_table(arrival_store) for _ in range(2)]
        for t in range(trials):
            student = f"pair{t}"
            base = T0 + timedelta(hours=t)
            log_interactions([_call(student, base, 0)], store=arrival_store, now=base, timeout=TIMEOUT)
            go = threading.Barrier(2)

            def arrive(k: int, student: str = student, base: datetime = base, go: threading.Barrier = go) -> None:
                at = base + timedelta(minutes=9 if k == 0 else 11)
                go.wait()
                log_interactions([_call(student, at, k + 1)], store=pair[k], now=at, timeout=TIMEOUT)

            _threads(2, arrive)
            listed, _ = arrival_store.list_student_sessions(student, start=base - TIMEOUT, end=base + TIMEOUT * 3)
            split += len(listed) > 1
        out["concurrent_arrival"] = {"trials": trials, "split": split}
        close_idle_sessions(store=store, now=T0 + timedelta(days=2), timeout=TIMEOUT, request_analysis=False)
        out["ingest_latency"] = _ingest_latency(ddb.endpoint, n=100 if quick else 300)
    out["cost_per_million"] = cost_per_million(out)
    out["markdown"] = render(out)
    return out


CALLS_PER_REQUEST = 5
"""The batched client's mix in the cost model (docs/deploy.md): 5 calls per request."""


def cost_per_million(out: dict[str, Any]) -> dict[str, Any]:
    """USD per 1 M logged calls: API Gateway + Lambda + logs per request (5 calls each), DynamoDB per
    call at the whole-session figure of a 20-call session sent in requests of 5 (every write of the
    session, its close and its analysis trigger, divided by its calls)."""
    from bench.cost import LOG_CALL_LAMBDA_MS, RequestWork

    session = out["session_of_20_in_batches_of_5"]
    wru, rru = session["wru"] / session["calls"], session["rru"] / session["calls"]
    request = RequestWork(lambda_ms=LOG_CALL_LAMBDA_MS, log_bytes=1200.0).cost()
    per_request = {k: v * 1e6 / CALLS_PER_REQUEST for k, v in request.items() if k != "dynamodb"}
    lines = {k: round(v, 3) for k, v in per_request.items() if v}
    lines["dynamodb_writes"] = round(wru * 0.625, 3)
    lines["dynamodb_reads"] = round(rru * 0.125, 3)
    return {
        "calls_per_request": CALLS_PER_REQUEST,
        "wru_per_call": round(wru, 3),
        "rru_per_call": round(rru, 3),
        "lines": lines,
        "total_usd": round(sum(lines.values()), 2),
    }


def _ingest_latency(endpoint: str, *, n: int) -> dict[str, Any]:
    """The log_interaction handler in-process vs a raw ``put_item``, interleaved, on this run's
    DynamoDB Local (bench/ingest.py's measurement; the environment it sets is restored)."""
    from bench import ingest

    saved = dict(os.environ)
    try:
        measured = ingest.measure(endpoint, n=n, table=f"bench-ingest-{time.monotonic_ns()}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {
        "n": n,
        "handler_median_ms": measured["handler"]["median_ms"],
        "raw_put_item_median_ms": measured["raw_put_item"]["median_ms"],
        "ratio_median": measured["ratio_handler_to_raw"]["median"],
        "ratio_p99": measured["ratio_handler_to_raw"]["p99"],
        "requests_per_call": measured["dynamodb_requests_per_call"]["steady_state"],
    }


def _ingest_ratio(out: dict[str, Any] | None = None) -> float | None:
    import json

    if out and out.get("ingest_latency"):
        return float(out["ingest_latency"]["ratio_median"])
    stored = ROOT / "bench" / "results" / "ingest.json"
    if not stored.is_file():
        return None
    return float(json.loads(stored.read_text())["ratio_handler_to_raw"]["median"])


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


BASELINES = (
    ("v1 before #14 (main 2e293b5)", "storage_v1.json"),
    ("v1 just before v2 (main 178325b)", "storage_v1_178325b.json"),
)
"""The v1 write path's figures to show beside this run's: as it was before #14, and as it was
just before the v2 layout landed (5-minute GSI2 buckets; its ingest latency measured in the
same kind of run). Both are stored results of this bench (bench/results/)."""


def _baseline(name: str = "storage_v1.json") -> dict[str, Any] | None:
    """A stored result of this bench on the v1 write path (bench/results/)."""
    import json

    stored = ROOT / "bench" / "results" / name
    return json.loads(stored.read_text()) if stored.is_file() else None


def _figures(out: dict[str, Any]) -> list[tuple[str, str, Any, bool]]:
    steady, batch = out["steady_state"], out["batch_of_25"]
    s20, s4 = out["session_of_20"], out["session_of_4"]
    race, pair, cost = out["race_30"], out["concurrent_arrival"], out["cost_per_million"]
    batched = out.get("session_of_20_in_batches_of_5")
    rows: list[tuple[str, str, Any, bool]] = [
        (
            "billed WRU per logged call, steady state",
            "<= 1.5",
            float(steady["wru_per_call"]),
            steady["wru_per_call"] <= 1.5,
        ),
        ("billed RRU per logged call, steady state", "(report)", float(steady["rru_per_call"]), True),
        (
            "DynamoDB requests per logged call, steady state",
            "<= 2",
            float(steady["requests_per_call"]),
            steady["requests_per_call"] <= 2,
        ),
        ("DynamoDB requests for a batch of 25 calls", "<= 3", batch["requests"], batch["requests"] <= 3),
        ("billed WRU per call, batch of 25 calls", "(report)", float(batch["wru_per_call"]), True),
        (
            "billed WRU per call, whole 20-call session incl. close",
            "<= 2",
            float(s20["wru_per_call"]),
            s20["wru_per_call"] <= 2,
        ),
        ("billed WRU per call, whole 4-call session incl. close", "(report)", float(s4["wru_per_call"]), True),
    ]
    if batched:
        rows.append(
            (
                "billed WRU per call, 20-call session in requests of 5, incl. close",
                "(report)",
                float(batched["wru_per_call"]),
                True,
            )
        )
    rows += [
        ("billed WRU per call at a session boundary", "(report)", float(out["boundary"]["wru_per_call"]), True),
        (
            "cost per 1M logged calls",
            "<= $1.00",
            f"${cost['total_usd']:.2f}" + ("" if batched else " (DynamoDB at single-call requests)"),
            cost["total_usd"] <= 1.0,
        ),
        (
            "30 racing first calls of one student",
            "1 session",
            f"{race['sessions']} session(s), {race['calls_stored']} calls, {race['errors']} errors",
            race["sessions"] == 1 and race["calls_stored"] == 30,
        ),
        (
            "calls at 9:59 and 10:01 arriving together (after 9:50)",
            "0 splits",
            f"{pair['split']} of {pair['trials']} split",
            pair["split"] == 0,
        ),
    ]
    return rows


def _met(ok: bool, target: str, value: Any) -> str:
    """``yes``, or ``**no**`` with by how much a ``<= X`` target is missed."""
    if ok:
        return "yes"
    try:
        limit = float(target.removeprefix("<=").strip().lstrip("$"))
        measured = float(str(value).lstrip("$").split()[0])
    except (ValueError, IndexError):
        return "**no**"
    return f"**no** ({measured / limit:.1f}x the target)" if limit else "**no**"


def render(out: dict[str, Any]) -> str:
    steady, cost = out["steady_state"], out["cost_per_million"]
    baselines = [(title, _baseline(name)) for title, name in BASELINES]
    shown = [(title, b) for title, b in baselines if b is not None]
    before = [{label: value for label, _, value, _ in _figures(b)} for _, b in shown]
    ratio = _ingest_ratio(out)
    rows = [["figure", "target", *(title for title, _ in shown), "measured", "met"]]
    for label, target, value, ok in _figures(out):
        rows.append([label, target, *(_fmt(b.get(label, "-")) for b in before), _fmt(value), _met(ok, target, value)])
    ratios_before = [_ingest_ratio(b) if b.get("ingest_latency") else None for _, b in shown]
    rows.insert(
        5,
        [
            "ingest handler latency / raw put_item (median, same DynamoDB Local)",
            "<= 2.0",
            *(_fmt(r) if r is not None else "-" for r in ratios_before),
            _fmt(ratio) if ratio is not None else "not measured",
            _met(ratio is not None and ratio <= 2.0, "<= 2.0", ratio),
        ],
    )
    table = "\n".join(
        ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        + ["| " + " | ".join(r) + " |" for r in rows[1:]]
    )
    lines = ", ".join(f"{k} ${v}" for k, v in cost["lines"].items())
    return "\n".join(
        [
            "## Storage: billed capacity per logged call",
            "",
            f"Store schema v{out['schema']}, DynamoDB Local, `ReturnConsumedCapacity=INDEXES` billed with AWS's rules "
            "(1 WRU per item-KB, x2 inside a transaction, each index write; see `bench/storage.py`). "
            f"Steady state: {steady['calls']} single-call requests joining an open session "
            f"({steady['ops_per_call']} per call). Whole sessions: every request of the session plus the idle "
            "closer's run that closes it and sets its analysis trigger, divided by its calls.",
            "",
            table,
            "",
            f"Cost per 1 M logged calls ({cost['calls_per_request']} calls per request, DynamoDB at the figure of "
            f"a 20-call session sent in requests of {cost['calls_per_request']}, {cost['wru_per_call']} WRU + {cost['rru_per_call']} RRU per call): {lines}; "
            f"total **${cost['total_usd']:.2f}** (arithmetic in docs/deploy.md).",
        ]
    )


def _threads(n: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _per_call(cost: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "calls": n,
        "requests_per_call": round(cost["requests"] / n, 3),
        "ops_per_call": {k: round(v / n, 3) for k, v in cost["ops"].items()},
        "wru_per_call": round(cost["wru"] / n, 3),
        "rru_per_call": round(cost["rru"] / n, 3),
    }


def _schema_version() -> str:
    from session_tracker.store import keys

    return str(getattr(keys, "LAYOUT_VERSION", getattr(keys, "SCHEMA_VERSION", 1)))
