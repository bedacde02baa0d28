"""Ingest hot path: the log_interaction handler in-process vs a raw boto3 put_item.

Both hit the same DynamoDB Local table in the same run, interleaved, so machine
noise affects both alike. Also counts DynamoDB requests per logged call in
steady state and at a session boundary.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.stats import ratio, summary

ROOT = Path(__file__).resolve().parents[1]


def _event(body: dict[str, Any], token: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /interactions",
        "rawPath": "/interactions",
        "rawQueryString": "",
        "headers": {"authorization": f"Bearer {token}", "content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/interactions", "sourceIp": "127.0.0.1"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "POST /interactions",
            "stage": "$default",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def run(quick: bool = False) -> dict[str, Any]:
    from session_tracker_local.dynamodb_local import DynamoDBLocal

    with DynamoDBLocal(cache_dir=ROOT / ".cache" / "dynamodb-local") as ddb:
        return measure(ddb.endpoint, n=100 if quick else 400)


def measure(endpoint: str, *, n: int, table: str = "bench") -> dict[str, Any]:
    """The ingest figures against the DynamoDB Local at ``endpoint`` (the storage bench runs
    it on its own DynamoDB Local, so its latency ratio comes from the same run)."""
    import boto3

    from session_tracker_local.cfn import Template
    from session_tracker_local.lambda_host import FakeContext, load_handler

    template = Template.load(ROOT / "template.yaml")
    token = "bench-token"
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
            "TABLE_NAME": table,
            "INGEST_TOKEN": token,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "SESSION_CONFIG": str(ROOT / "session_config.yaml"),
        }
    )
    client = boto3.client("dynamodb")
    client.create_table(**template.create_table_request(table))
    client.get_waiter("table_exists").wait(TableName=table)
    spec = next(f for f in template.functions() if f.logical_id == "LogInteractionFunction")
    from session_tracker import runtime
    from session_tracker.store import DynamoStore

    runtime.reset()
    _, handler = load_handler(spec)
    store = runtime.deps().store
    assert isinstance(store, DynamoStore), type(store)
    store_client = store.client
    counts: Counter[str] = Counter()
    capacity: defaultdict[str, float] = defaultdict(float)
    store_client.meta.events.register("before-call.dynamodb", lambda model, **_: counts.update([model.name]))

    def ask_capacity(params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params["ReturnConsumedCapacity"] = "INDEXES"

    def add_capacity(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity") or []
        for entry in consumed if isinstance(consumed, list) else [consumed]:
            capacity[model.name] += float(entry.get("CapacityUnits") or 0)
            capacity[f"{model.name}.table"] += float((entry.get("Table") or {}).get("CapacityUnits") or 0)
            capacity[f"{model.name}.indexes"] += sum(
                float(v.get("CapacityUnits") or 0) for v in (entry.get("GlobalSecondaryIndexes") or {}).values()
            )

    store_client.meta.events.register("provide-client-params.dynamodb", ask_capacity)
    store_client.meta.events.register("after-call.dynamodb", add_capacity)

    # Timestamps at the wall clock, as live traffic has them (the handler's ``now`` is the real
    # time): a fixed date in the past would measure back-dated traffic, which pays an extra read.
    t0 = datetime.now(UTC).replace(microsecond=0)
    body = {
        "student_id": "bench_student",
        "function": "get_student_context",
        "arguments": {"student_id": "bench_student"},
        "data_provided": ["profile", "progress"],
        "subjects": ["mathematics"],
        "response_size": 1834,
        "duration_ms": 42,
    }
    raw_item = {k: {"S": json.dumps(v) if not isinstance(v, str) else v} for k, v in body.items()}

    def handler_call(i: int) -> float:
        event = _event(body | {"timestamp": (t0 + timedelta(seconds=i)).isoformat(), "interaction_id": f"h{i}"}, token)
        start = time.perf_counter()
        response = handler(event, FakeContext(function_name="bench"))
        elapsed = time.perf_counter() - start
        assert response["statusCode"] == 202, response
        return elapsed

    def raw_get_transact(i: int) -> float:
        """The minimum DynamoDB work for a consistent, idempotent log: read a pointer, then one
        transaction (put the call, update the pointer) - without any of our code around it."""
        start = time.perf_counter()
        client.get_item(TableName=table, Key={"PK": {"S": "RAWHEAD"}, "SK": {"S": "HEAD"}}, ConsistentRead=True)
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": raw_item | {"PK": {"S": f"RAWT#{i}"}, "SK": {"S": "RAW"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"PK": {"S": "RAWHEAD"}, "SK": {"S": "HEAD"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"PK": {"S": "RAWMETA"}, "SK": {"S": "META"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )
        return time.perf_counter() - start

    def raw_put(i: int) -> float:
        item = raw_item | {"PK": {"S": f"RAW#{i}"}, "SK": {"S": "RAW"}}
        start = time.perf_counter()
        client.put_item(TableName=table, Item=item)
        return time.perf_counter() - start

    handler_call(-1)  # opens the session (boundary) and warms everything
    for i in range(20):
        raw_put(-100 - i)
        raw_get_transact(-100 - i)
        handler_call(-100 + i)
    counts.clear()
    capacity.clear()
    handler_times, raw_times, tx_times = [], [], []
    for i in range(n):
        raw_times.append(raw_put(i))
        tx_times.append(raw_get_transact(i))
        handler_times.append(handler_call(i))
    steady = dict(counts)
    steady_per_call = sum(counts.values()) / n
    steady_capacity = {k: round(v / n, 3) for k, v in capacity.items()}

    counts.clear()
    capacity.clear()
    boundaries = 20
    for j in range(boundaries):  # each call 11 minutes after the previous: a new session every time
        event = _event(
            body | {"student_id": "bench_boundary", "timestamp": (t0 + timedelta(minutes=11 * j)).isoformat()},
            token,
        )
        assert handler(event, FakeContext(function_name="bench"))["statusCode"] == 202
    boundary_per_call = sum(counts.values()) / boundaries
    boundary_ops = {k: v / boundaries for k, v in counts.items()}
    boundary_capacity = {k: round(v / boundaries, 3) for k, v in capacity.items()}

    counts.clear()
    batch = {"interactions": [body | {"timestamp": (t0 + timedelta(seconds=n + k)).isoformat()} for k in range(25)]}
    assert handler(_event(batch, token), FakeContext(function_name="bench"))["statusCode"] == 202
    batch_requests = sum(counts.values())

    h, r, tx = summary(handler_times), summary(raw_times), summary(tx_times)
    from bench.cost import aws_write_units

    def aws_units(cap: dict[str, float]) -> dict[str, float]:
        single = sum(cap.get(op, 0) for op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"))
        transaction = aws_write_units(
            cap.get("TransactWriteItems.table", 0), cap.get("TransactWriteItems.indexes", 0), transactional=True
        )
        return {
            "write_units": round(transaction + single, 3),
            "read_units": round(sum(cap.get(op, 0) for op in ("GetItem", "Query", "BatchGetItem")), 3),
        }

    return {
        "name": "ingest",
        "description": "log_interaction handler in-process vs raw boto3 put_item, same DynamoDB Local table",
        "handler": h,
        "raw_put_item": r,
        "raw_get_plus_transaction": tx,
        "ratio_handler_to_raw": ratio(h, r),
        "ratio_handler_to_raw_get_plus_transaction": ratio(h, tx),
        "ratio_raw_get_plus_transaction_to_raw": ratio(tx, r),
        "dynamodb_requests_per_call": {
            "steady_state": round(steady_per_call, 3),
            "steady_state_ops": {k: round(v / n, 3) for k, v in steady.items()},
            "boundary": round(boundary_per_call, 3),
            "boundary_ops": boundary_ops,
            "batch_of_25_same_student": batch_requests,
        },
        "consumed_capacity_per_call": {
            "note": "as DynamoDB Local reports it (ReturnConsumedCapacity=INDEXES); AWS bills transactional "
            "writes at 2 write units per item-KB, see docs/deploy.md",
            "steady_state": steady_capacity,
            "boundary": boundary_capacity,
            "aws_steady_state": aws_units(steady_capacity),
            "aws_boundary": aws_units(boundary_capacity),
        },
    }
