"""Scale: a simulated school day for 10,000 students, with an injected clock.

Each student has 1-3 sessions between 08:00 and 20:00 UTC (2-6 tool calls, 20-120 s
apart). The day is replayed minute by minute against DynamoDB Local: sessions that
start in a minute are stored (each with its calls, their real timestamps, and the
student's HEAD, in one transaction, as logging leaves them),
then the idle closer runs with ``now`` = the end of that minute, exactly as the
scheduled function would. Every DynamoDB request the closer makes is counted, with
the read units DynamoDB Local reports, so the closer's reads per run can be set
against the number of sessions due, the number open, and the size of the table.
The cost model of docs/deploy.md (``bench/cost.py``) is then applied to the day.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAY = datetime(2026, 3, 3, tzinfo=UTC)
TIMEOUT = timedelta(minutes=10)


def _sessions(students: int, seed: int = 5) -> list[tuple[datetime, list[dict[str, Any]]]]:
    rng = random.Random(seed)
    out: list[tuple[datetime, list[dict[str, Any]]]] = []
    for s in range(students):
        student = f"day_s{s:05d}"
        starts = sorted(rng.sample(range(8 * 60, 19 * 60 + 30), rng.choice([1, 1, 2, 2, 3])))
        for minute in starts:
            at = DAY + timedelta(minutes=minute, seconds=rng.randint(0, 59))
            calls: list[dict[str, Any]] = []
            for _ in range(rng.randint(2, 6)):
                calls.append(
                    {
                        "student_id": student,
                        "function": rng.choice(
                            ["get_student_context", "get_progress", "get_curriculum", "record_answer"]
                        ),
                        "timestamp": at,
                        "data_provided": ["progress"],
                        "subjects": [rng.choice(["mathematics", "reading", "science"])],
                        "response_size": rng.randint(200, 4000),
                        "duration_ms": 20.0,
                    }
                )
                at += timedelta(seconds=rng.randint(20, 120))
            out.append((calls[0]["timestamp"], calls))
    out.sort(key=lambda x: x[0])
    # Two sessions of one student must be more than the timeout apart to be two sessions.
    return out


def _open_sessions(client: Any) -> int:
    """Sessions still open: the size of the sparse open-session index (not counted as closer reads)."""
    from session_tracker.store import OPEN_SHARDS

    total = 0
    for shard in range(OPEN_SHARDS):
        kwargs: dict[str, Any] = {
            "TableName": "day",
            "IndexName": "GSI2",
            "KeyConditionExpression": "gsi2pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"OPEN#{shard}"}},
            "Select": "COUNT",
        }
        while True:
            out = client.query(**kwargs)
            total += out["Count"]
            if "LastEvaluatedKey" not in out:
                break
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
    return total


def run(quick: bool = False) -> dict[str, Any]:
    import boto3

    from bench.cost import LOG_CALL_LAMBDA_MS, LOG_CALL_READ_UNITS, LOG_CALL_WRITE_UNITS, RequestWork
    from session_tracker import lifecycle, sessions
    from session_tracker.errors import HeadChanged
    from session_tracker.models import InteractionIn
    from session_tracker.store import DynamoStore
    from session_tracker_local.cfn import Template
    from session_tracker_local.dynamodb_local import DynamoDBLocal

    students = 2000 if quick else 10000
    plan = _sessions(students)
    template = Template.load(ROOT / "template.yaml")
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    with DynamoDBLocal(cache_dir=ROOT / ".cache" / "dynamodb-local") as ddb:
        log_client = boto3.client("dynamodb", endpoint_url=ddb.endpoint)
        closer_client = boto3.client("dynamodb", endpoint_url=ddb.endpoint)
        log_client.create_table(**template.create_table_request("day"))
        log_client.get_waiter("table_exists").wait(TableName="day")
        log_store = DynamoStore("day", client=log_client)
        closer_store = DynamoStore("day", client=closer_client)

        requests: Counter[str] = Counter()
        read_units: defaultdict[str, float] = defaultdict(float)
        write_units: defaultdict[str, float] = defaultdict(float)

        def ask(params: dict[str, Any], model: Any, **_: Any) -> None:
            if "ReturnConsumedCapacity" in model.input_shape.members:
                params["ReturnConsumedCapacity"] = "TOTAL"

        def seen(parsed: dict[str, Any], model: Any, **_: Any) -> None:
            requests[model.name] += 1
            consumed = parsed.get("ConsumedCapacity") or []
            units = sum(
                float(c.get("CapacityUnits") or 0) for c in (consumed if isinstance(consumed, list) else [consumed])
            )
            (write_units if model.name in ("UpdateItem", "PutItem", "TransactWriteItems") else read_units)[
                model.name
            ] += units

        closer_client.meta.events.register("provide-client-params.dynamodb", ask)
        closer_client.meta.events.register("after-call.dynamodb", seen)

        def log(calls: list[dict[str, Any]]) -> int:
            """Store one session with all its calls in one transaction (what logging them leaves
            behind: the session record, the calls, the HEAD); the closer's work is what is measured."""
            at = calls[-1]["timestamp"]
            records = [
                sessions.to_record(InteractionIn.model_validate(c), now=at, new_id=lambda: uuid.uuid4().hex)
                for c in calls
            ]
            sid = sessions.session_id_for(calls[0]["student_id"], calls[0]["timestamp"])
            meta = sessions.new_meta(sid, records[0], now=at).model_copy(
                update={
                    "last_activity": records[-1].timestamp,
                    "interaction_count": len(records),
                    "subjects": sorted({s for r in records for s in r.subjects}),
                }
            )
            try:
                log_store.create_session(meta, records, move_head=True)
            except HeadChanged:  # the student's HEAD already points at a later session: leave it
                log_store.create_session(meta, records, move_head=False)
            return len(records)

        runs: list[dict[str, Any]] = []
        open_now = 0
        total_calls = table_items = 0
        started = time.perf_counter()
        cursor = 0
        minute = DAY + timedelta(hours=8)
        end = DAY + timedelta(hours=20, minutes=30)
        log_seconds = close_seconds = 0.0
        with ThreadPoolExecutor(8) as pool:
            while minute < end:
                nxt = minute + timedelta(minutes=1)
                batch = []
                while cursor < len(plan) and plan[cursor][0] < nxt:
                    batch.append(plan[cursor][1])
                    cursor += 1
                t0 = time.perf_counter()
                for n in pool.map(log, batch):
                    total_calls += n
                    table_items += n + 1
                log_seconds += time.perf_counter() - t0
                requests.clear()
                read_units.clear()
                write_units.clear()
                t0 = time.perf_counter()
                report = lifecycle.close_idle_sessions(
                    store=closer_store, now=nxt, timeout=TIMEOUT, request_analysis=True
                )
                close_seconds += time.perf_counter() - t0
                if len(runs) % 10 == 0 or nxt >= end:  # sampled: counting the index is not the closer's work
                    open_now = _open_sessions(log_client)
                runs.append(
                    {
                        "minute": nxt.strftime("%H:%M"),
                        "due": report.due,
                        "closed": len(report.closed),
                        "open_after": open_now,
                        "table_items": table_items,
                        "requests": dict(requests),
                        "read_requests": sum(
                            v for k, v in requests.items() if k in ("Query", "BatchGetItem", "GetItem")
                        ),
                        "read_units": round(sum(read_units.values()), 1),
                        "write_units": round(sum(write_units.values()), 1),
                    }
                )
                minute = nxt
        elapsed = time.perf_counter() - started
        leftover = open_now

    # Proportionality: reads per run against sessions due (and not against table size).
    busy = [r for r in runs if r["due"] > 0]
    idle = [r for r in runs if r["due"] == 0]
    per_due = [r["read_units"] / r["due"] for r in busy]
    first_half = [r for r in busy if r["table_items"] <= runs[-1]["table_items"] / 2]
    second_half = [r for r in busy if r["table_items"] > runs[-1]["table_items"] / 2]

    def avg(values: list[float]) -> float:
        return round(sum(values) / len(values), 3) if values else 0.0

    closed_total = sum(r["closed"] for r in runs)
    # Logging, per call: the storage bench's whole 4-call session (the day's mix: open, calls,
    # close and analysis trigger, divided by its calls) when it has run, else steady state.
    units = _session_units(ROOT / "bench" / "results" / "storage.json")
    work = RequestWork(
        lambda_ms=LOG_CALL_LAMBDA_MS,
        write_units=units[0] if units else LOG_CALL_WRITE_UNITS,
        read_units=units[1] if units else LOG_CALL_READ_UNITS,
    )
    log_cost = {k: v * total_calls for k, v in work.cost().items()}
    closer_runs_per_day = 24 * 60
    closer_cost = {
        k: v * closer_runs_per_day
        for k, v in RequestWork(lambda_ms=50, via_api=False, read_units=4 * 0.5, log_bytes=600).cost().items()
    }
    # the closes themselves are in the whole-session figure above; without it, a few WRU each
    closes = RequestWork(
        lambda_ms=0, via_api=False, write_units=0 if units else 4, read_units=0 if units else 1, log_bytes=0
    ).cost()
    close_cost = {k: v * closed_total for k, v in closes.items()}
    total = {k: round(log_cost[k] + closer_cost[k] + close_cost[k], 4) for k in log_cost}
    result = {
        "description": "simulated day, injected clock, DynamoDB Local; idle closer reads per run vs sessions due",
        "students": students,
        "sessions": len(plan),
        "calls": total_calls,
        "closer_runs": len(runs),
        "sessions_closed": closed_total,
        "left_open_at_end": leftover,
        "seconds": round(elapsed, 1),
        "seconds_logging": round(log_seconds, 1),
        "seconds_closing": round(close_seconds, 1),
        "max_open_sampled": max(r["open_after"] for r in runs),
        "max_due_in_a_run": max(r["due"] for r in runs),
        "read_units_per_due_session": {"mean": avg(per_due), "min": min(per_due), "max": max(per_due)},
        "read_units_per_idle_run": avg([r["read_units"] for r in idle]),
        "read_requests_per_idle_run": avg([r["read_requests"] for r in idle]),
        "read_units_per_due_first_half_of_day": avg([r["read_units"] / r["due"] for r in first_half]),
        "read_units_per_due_second_half_of_day": avg([r["read_units"] / r["due"] for r in second_half]),
        "final_table_items": runs[-1]["table_items"],
        # A session can be due more than once (found up to a bucket early and re-bucketed, or
        # re-checked after closing): the closer's whole work divided by the sessions it closed.
        "closer_read_units_per_closed_session": round(sum(r["read_units"] for r in runs) / max(1, closed_total), 3),
        "closer_write_units_per_closed_session": round(sum(r["write_units"] for r in runs) / max(1, closed_total), 3),
        "due_entries_per_closed_session": round(sum(r["due"] for r in runs) / max(1, closed_total), 3),
        "cost_usd_for_the_day": total | {"total": round(sum(total.values()), 4)},
        "runs_sample": runs[::60],  # every 60th run: the open count is taken every 10th
    }
    peak = max(runs, key=lambda r: r["due"])
    result["markdown"] = "\n".join(
        [
            "## Scale: a simulated day",
            "",
            f"{students:,} students, {len(plan):,} sessions, {total_calls:,} calls between 08:00 and 20:00, replayed "
            f"minute by minute on DynamoDB Local ({result['seconds']} s); the idle closer ran {len(runs)} times with the "
            f"injected clock and closed {closed_total:,} sessions ({leftover} still open at the end).",
            "",
            "| closer run | sessions due | open after | table items | read requests | read units |",
            "|---|---|---|---|---|---|",
            *[
                f"| {r['minute']} | {r['due']} | {r['open_after']} | {r['table_items']:,} | {r['read_requests']} | {r['read_units']} |"
                for r in result["runs_sample"]
            ],
            "",
            f"Busiest run: {peak['minute']}, {peak['due']} sessions due, {peak['read_requests']} read requests, "
            f"{peak['read_units']} read units.",
            "",
            f"Read units per due session: mean **{result['read_units_per_due_session']['mean']}** "
            f"(min {result['read_units_per_due_session']['min']:.2f}, max {result['read_units_per_due_session']['max']:.2f}); "
            f"first half of the day {result['read_units_per_due_first_half_of_day']}, second half "
            f"{result['read_units_per_due_second_half_of_day']} while the table grew to {runs[-1]['table_items']:,} items; "
            f"a run with nothing due costs {result['read_requests_per_idle_run']} read requests "
            f"({result['read_units_per_idle_run']} units), whatever the table size. Over the day the closer read "
            f"**{result['closer_read_units_per_closed_session']} read units per session it closed** and wrote "
            f"{result['closer_write_units_per_closed_session']} write units (as DynamoDB Local reports them) per "
            f"closed session; a session was due {result['due_entries_per_closed_session']} times on average "
            "(found up to a bucket early and re-bucketed, or re-checked after closing).",
            "",
            "Cost of the day with the cost model of docs/deploy.md (USD): "
            + ", ".join(f"{k} {v}" for k, v in result["cost_usd_for_the_day"].items())
            + " (analysis excluded: OpenAI is priced per session in docs/deploy.md).",
        ]
    )
    return result


def _session_units(stored: Path) -> tuple[float, float] | None:
    """(WRU, RRU) per call of the storage bench's whole 4-call session, if it has run."""
    if not stored.is_file():
        return None
    session = json.loads(stored.read_text()).get("session_of_4")
    if not session:
        return None
    return float(session["wru_per_call"]), float(session["rru"]) / float(session["calls"])


if __name__ == "__main__":
    print(json.dumps({k: v for k, v in run(quick=True).items() if k != "runs_sample"}, indent=2))
