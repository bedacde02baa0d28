"""Erasure (#15): requests and billed capacity per erased session, on DynamoDB Local.

Seeds one student with ``n`` sessions (each: 5 logged calls with client interaction ids and a
call id, one platform report with a delivery id, one transcript large enough for the blob
store), then erases the student with the same bounded steps ``DELETE /students/{id}`` takes,
metering every DynamoDB request (``ReturnConsumedCapacity=INDEXES``, billed with AWS's rules
as in ``bench/storage.py``) and counting blob-store requests. Run:
``.venv/bin/python -m bench.erasure`` (prints JSON).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.storage import ROOT, Meter

CALLS = 5
TIMEOUT = timedelta(minutes=10)


class CountingBlobs:
    """A local blob directory that counts the S3 requests the same calls would make."""

    def __init__(self, root: Path) -> None:
        from session_tracker.blobs import DirBlobStore

        self.inner = DirBlobStore(root)
        self.requests = {"ListObjectsV2": 0, "DeleteObjects": 0}

    def put(self, key: str, data: bytes, *, content_type: str = "application/json") -> str:
        return self.inner.put(key, data, content_type=content_type)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def delete_prefix(self, prefix: str) -> int:
        deleted = self.inner.delete_prefix(prefix)
        self.requests["ListObjectsV2"] += 2 if deleted else 1  # S3: list, delete, list again (empty)
        self.requests["DeleteObjects"] += 1 if deleted else 0
        return deleted


def run(sessions: int = 20) -> dict[str, Any]:
    import boto3

    from session_tracker.config import load_config
    from session_tracker.erasure import erase_student
    from session_tracker.matching import MatchSettings, ingest_platform_event
    from session_tracker.models import InteractionIn
    from session_tracker.platforms.generic import adapter
    from session_tracker.sessions import log_interactions
    from session_tracker.store.dynamo import DynamoStore
    from session_tracker_local.cfn import Template
    from session_tracker_local.dynamodb_local import DynamoDBLocal

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = Template.load(ROOT / "template.yaml")
    settings = MatchSettings.from_config(load_config())
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    with DynamoDBLocal(cache_dir=ROOT / ".cache" / "dynamodb-local") as ddb, tempfile.TemporaryDirectory() as tmp:
        meter = Meter(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=ddb.endpoint))
        client = meter.watch(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=ddb.endpoint))
        name = f"bench-erasure-{time.monotonic_ns()}"
        client.create_table(**template.create_table_request(name))
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        store = DynamoStore(name, client=client)
        blobs = CountingBlobs(Path(tmp))
        for n in range(sessions):
            at = t0 + timedelta(minutes=30 * n)
            calls = [
                InteractionIn(
                    student_id="bench_erase",
                    function="get_student_context",
                    timestamp=at + timedelta(seconds=i),
                    interaction_id=f"req-{n}-{i}",
                    call_id=f"call-{n}",
                    arguments={"topic": "fractions"},
                )
                for i in range(CALLS)
            ]
            log_interactions(calls, store=store, now=at + timedelta(seconds=10), timeout=TIMEOUT)
            body = {
                "platform": "generic",
                "student_id": "bench_erase",
                "call_id": f"call-{n}",
                "delivery_id": f"d-{n}",
                "started_at": (at - timedelta(seconds=20)).isoformat(),
                "ended_at": (at + timedelta(minutes=5)).isoformat(),
                "transcript": "we talked about fractions " + "y" * 70 * 1024,
            }
            ingest_platform_event(
                adapter.parse(body), store=store, blobs=blobs, now=at + timedelta(minutes=6), settings=settings
            )
        steps = []
        with meter.measure() as total:
            while True:
                step = erase_student("bench_erase", store=store, blobs=blobs, now=datetime.now(UTC))
                steps.append(step.counts() | {"complete": step.complete})
                if step.complete:
                    break
        left = client.scan(TableName=name)["Items"]  # a check of the bench only: the code never scans
    per = {k: round(total[k] / sessions, 2) for k in ("requests", "wru", "rru")}
    return {
        "name": "erasure",
        "sessions": sessions,
        "calls_per_session": CALLS,
        "dynamodb": total,
        "per_session": per,
        "blob_requests": blobs.requests,
        "blob_requests_per_session": round(sum(blobs.requests.values()) / sessions, 2),
        "steps": steps,
        "items_left": len(left),
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "local"))
    json.dump(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20), sys.stdout, indent=2)
    sys.stdout.write("\n")
