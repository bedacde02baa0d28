"""Session files: S3 writes per session on the local stack, against a writer without the filter.

A small school fortnight runs through the local stack (what ``make run`` serves, in
memory, DynamoDB Local when java is there): each student has sessions on four days,
each of 4-6 logged calls sent in one batch; half end by a VAPI end-of-call report
(``completed``), half by the idle closer (``closed``), a quarter get a late report after
that, and one more session's analysis fails (the fake OpenAI server refuses). Every session is analysed
(the fake server), so each file is written for the finish, the late data and the
analysis. When every file equals ``GET /sessions/{id}``, the writer's object writes
are counted (``PutObject``/``DeleteObject`` under ``sessions/``) and set against the
baseline measured in the same run: one write per change of a session record (every
logged call, close, merge, analysis flag), which is what a writer without the
template's filter and the one-write-per-batch rule would do. Finally the three
queries of ``docs/session-files.md`` run with ``session-tracker query`` over the files.
"""

from __future__ import annotations

import copy
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "samples" / "vapi" / "end-of-call-report.full.json"
INGEST = {"Authorization": "Bearer bench-ingest"}
READ = {"Authorization": "Bearer bench-read"}
VAPI = {"Authorization": "Bearer bench-vapi"}
WRITER_BILLED_MS = 100
"""Billed duration assumed per writer invocation in AWS (a consistent Query, a PutObject, a
GetItem, each ~10-20 ms there); the local figure is measured but runs on a shared machine."""
STUDENTS = ["ava_jones", "ben_okafor", "chloe_martin", "dev_patel", "emma_smith", "finn_murphy"]
SUBJECTS = {"ava_jones": "mathematics", "ben_okafor": "reading", "chloe_martin": "science"}
CALLS = [
    ("get_student_context", ["profile", "progress"]),
    ("get_lesson_plan", ["lesson_plan"]),
    ("check_answer", ["answer_feedback"]),
    ("get_practice_problems", ["practice_set"]),
    ("check_answer", ["answer_feedback"]),
    ("update_progress", ["progress"]),
]


def z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _tests_path() -> None:
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


@contextmanager
def counted_writes() -> Iterator[Counter[str]]:
    """Count object writes under ``sessions/`` (the local stack's bucket directory stands in for S3)."""
    from session_tracker.blobs import DirBlobStore

    counts: Counter[str] = Counter()
    put, delete = DirBlobStore.put, DirBlobStore.delete

    def counting_put(self: DirBlobStore, key: str, data: bytes, *, content_type: str = "application/json") -> str:
        if key.startswith("sessions/"):
            counts["put"] += 1
        return put(self, key, data, content_type=content_type)

    def counting_delete(self: DirBlobStore, key: str) -> None:
        if key.startswith("sessions/"):
            counts["delete"] += 1
        delete(self, key)

    DirBlobStore.put, DirBlobStore.delete = counting_put, counting_delete  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        DirBlobStore.put, DirBlobStore.delete = put, delete  # type: ignore[method-assign]


def _report(student: str, call_id: str, session_id: str, started: datetime, minutes: int) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text(encoding="utf-8")))
    message = body["message"]
    message["call"]["id"] = call_id
    overrides = message["call"].setdefault("assistantOverrides", {})
    overrides.setdefault("variableValues", {})["student_id"] = student
    overrides.setdefault("metadata", {})["session_id"] = session_id
    ended = started + timedelta(minutes=minutes)
    message["startedAt"], message["endedAt"] = z(started), z(ended)
    message["timestamp"] = int(ended.timestamp() * 1000)
    return body


def _meta_changes(stack: Any, session_ids: set[str]) -> int:
    """Stream records of the session records (SK = META) of these sessions, read from the start."""
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
    if not endpoint and stack.backend == "moto":
        endpoint = f"https://streams.dynamodb.{os.environ['AWS_DEFAULT_REGION']}.amazonaws.com"
    ddb = boto3.client("dynamodb")
    arn = ddb.describe_table(TableName=stack.options.table_name)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint)
    total = 0
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator: str | None = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        ).get("ShardIterator")
        while iterator:
            out = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in out.get("Records", []):
                keys = record["dynamodb"]["Keys"]
                if keys["SK"]["S"] == "META" and keys["PK"]["S"].removeprefix("SESSION#") in session_ids:
                    total += 1
            iterator = out.get("NextShardIterator") if out.get("Records") else None
    return total


def _wait_settled(http: Any, files: Path, expected: dict[str, datetime], timeout: float) -> None:
    """Until every session's file equals GET /sessions/{id} and its analysis has finished."""
    deadline = time.monotonic() + timeout
    pending = dict(expected)
    while pending and time.monotonic() < deadline:
        for sid, started in list(pending.items()):
            path = files / f"date={started:%Y-%m-%d}" / f"{sid}.json"
            if not path.exists():
                continue
            api = http.get(f"/sessions/{sid}", headers=READ).json()
            status = (api.get("analysis") or {}).get("status")
            if status in ("ok", "failed") and json.loads(path.read_text(encoding="utf-8")) == api:
                del pending[sid]
        time.sleep(0.3)
    if pending:
        raise RuntimeError(f"{len(pending)} session files did not settle: {sorted(pending)[:3]}")


def _quiet(fake: Any, *, seconds: float, timeout: float = 120) -> None:
    """Until the fake model endpoint has had no request for ``seconds``."""
    deadline = time.monotonic() + timeout
    seen, since = len(fake.completions()), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < seconds:
        time.sleep(0.5)
        now = len(fake.completions())
        if now != seen:
            seen, since = now, time.monotonic()


def _queries() -> list[tuple[str, str]]:
    doc = (ROOT / "docs" / "session-files.md").read_text(encoding="utf-8")
    out = []
    for title in ("Minutes per student per week", "Most-requested data by subject", "Sessions whose analysis failed"):
        section = doc.split(f"### {title}\n", 1)[1]
        match = re.search(r"```sql\n(.*?)```", section, flags=re.S)
        assert match, title
        out.append((title, match.group(1).strip()))
    return out


def run(quick: bool = False) -> dict[str, Any]:
    import httpx

    _tests_path()
    from fakes.openai_server import FakeOpenAI

    from session_tracker_local.stack import LocalStack, StackOptions
    from session_tracker_local.streams import StreamPoller

    students = STUDENTS[:4] if quick else STUDENTS
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    monday = (now - timedelta(days=now.weekday() + 14)).replace(hour=0, minute=0)
    days = [0, 2, 7, 9]
    with FakeOpenAI() as fake, counted_writes() as writes:
        options = StackOptions(
            root=ROOT,
            port=0,
            data_dir=None,
            ingest_token="bench-ingest",
            read_token="bench-read",
            vapi_secret="bench-vapi",
            schedule_interval=1.0,
            extra_env={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": "sk-fake-bench"},
        )
        with LocalStack(options) as stack, httpx.Client(base_url=stack.url, timeout=30) as http:
            poller = next(
                r
                for r in stack.runners
                if isinstance(r, StreamPoller) and r.pool.spec.logical_id == "SessionFilesFunction"
            )
            invoke, durations = poller.delivery.invoke, []

            def timed(event: dict[str, Any]) -> Any:
                began = time.perf_counter()
                try:
                    return invoke(event)
                finally:
                    durations.append((time.perf_counter() - began) * 1000)

            poller.delivery.invoke = timed
            sessions: dict[str, datetime] = {}
            kinds: Counter[str] = Counter()

            def one_session(student: str, subject: str, started: datetime, n: int, *, report: bool) -> str:
                call_id = f"call-{uuid.uuid4()}"
                calls = CALLS[: 4 + (n % 3)]
                batch = [
                    {
                        "student_id": student,
                        "function": function,
                        "timestamp": z(started + timedelta(minutes=2 * i)),
                        "data_provided": provided,
                        "subjects": [subject],
                        "call_id": call_id,
                        "platform": "vapi",
                        "interaction_id": f"{student}-{started:%Y%m%d%H%M}-{i}",
                    }
                    for i, (function, provided) in enumerate(calls)
                ]
                # one request, as the MCP-side client batches them (the closer cannot close in between)
                answer = http.post("/interactions", json={"interactions": batch}, headers=INGEST)
                answer.raise_for_status()
                sid = str(answer.json()["results"][0]["session_id"])
                sessions[sid] = started
                if report:
                    body = _report(student, call_id, sid, started, 2 * len(calls) + 1)
                    http.post("/webhook/vapi/session-complete", json=body, headers=VAPI).raise_for_status()
                    kinds["completed"] += 1
                else:
                    kinds["closed"] += 1  # the idle closer (every second) closes it
                return sid

            n = 0
            for s, student in enumerate(students):
                subject = SUBJECTS.get(student, ["mathematics", "reading", "science"][s % 3])
                for d in days:
                    started = monday + timedelta(days=d, hours=15 + s % 3, minutes=7 * s)
                    one_session(student, subject, started, n, report=n % 2 == 0)
                    n += 1
            files = Path(stack.session_files_dir)
            _wait_settled(http, files, sessions, timeout=180)
            # late data: a quarter of the sessions get a (second) report after they finished
            late = [sid for i, sid in enumerate(sessions) if i % 4 == 1]
            for sid in late:
                student = sid.rsplit("_", 2)[0]
                body = _report(student, f"late-{uuid.uuid4()}", sid, sessions[sid], 8)
                http.post("/webhook/vapi/session-complete", json=body, headers=VAPI).raise_for_status()
            time.sleep(3)
            _wait_settled(http, files, sessions, timeout=180)
            _quiet(fake, seconds=8)  # re-analyses after the late data (debounced) have run
            _wait_settled(http, files, sessions, timeout=180)
            # one more session whose analysis fails: the model endpoint refuses while it runs
            fake.fail_always(401)
            failed_sid = one_session(students[1], "reading", monday + timedelta(days=10, hours=16), n, report=True)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                got = http.get(f"/sessions/{failed_sid}", headers=READ).json().get("analysis") or {}
                if got.get("status") == "failed":
                    break
                time.sleep(0.3)
            fake.recover()
            _wait_settled(http, files, sessions, timeout=180)
            time.sleep(2)  # anything still in flight lands
            _wait_settled(http, files, sessions, timeout=180)
            meta_changes = _meta_changes(stack, set(sessions))
            delivered, invocations = poller.records_delivered, poller.delivery.invocations
            dead = len(poller.dead_letters)
            sizes = [p.stat().st_size for p in files.rglob("*.json")]
            env = {**os.environ, "SESSION_FILES": str(files)}
            outputs = []
            for title, sql in _queries():
                done = subprocess.run(
                    [str(Path(sys.executable).parent / "session-tracker"), "query", sql],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=True,
                )
                outputs.append({"title": title, "sql": sql, "output": done.stdout})
    count = len(sessions)
    puts, deletes = writes["put"], writes["delete"]
    result: dict[str, Any] = {
        "description": f"{len(students)} students x {len(days)} sessions over two weeks on the local stack "
        f"({kinds['completed']} completed by a VAPI report, {kinds['closed']} closed idle, {len(late)} with a late "
        "report afterwards, every session analysed by the fake OpenAI server, one more whose analysis fails)",
        "sessions": count,
        "late_reports": len(late),
        "failed_analysis": failed_sid,
        "puts": puts,
        "deletes": deletes,
        "writes_per_session": round(puts / count, 2),
        "baseline_session_record_changes": meta_changes,
        "baseline_writes_per_session": round(meta_changes / count, 2),
        "ratio_to_baseline": round(puts / meta_changes, 3) if meta_changes else None,
        "records_to_writer_per_session": round(delivered / count, 2),
        "writer_invocations_per_session": round(invocations / count, 2),
        "dead_letters": dead,
        "writer_invocation_ms": {"median": round(statistics.median(durations), 1), "n": len(durations)},
        "file_bytes": {"median": int(statistics.median(sizes)), "max": max(sizes)},
        "queries": outputs,
    }
    result["cost_per_1000_sessions_usd"] = cost_per_1000_sessions(result)
    result["markdown"] = markdown(result)
    return result


def reads_per_write(file_bytes: float) -> float:
    """Read units of one write: a consistent ``Query`` of the session's items (about the
    export's size, 1 unit per 4 KB) and a consistent ``GetItem`` of its record (1 unit)."""
    return max(1.0, -(-file_bytes // 4096)) + 1


def cost_per_1000_sessions(r: dict[str, Any]) -> dict[str, float]:
    """USD per 1,000 sessions of the writer's work as measured (bench/cost.py prices)."""
    from bench.cost import DDB_READ_PER_MILLION, S3_PUT_PER_THOUSAND, RequestWork

    per_invocation = RequestWork(lambda_ms=WRITER_BILLED_MS, via_api=False).cost()
    invocations = r["writer_invocations_per_session"] * 1000
    writes = r["writes_per_session"] * 1000
    reads = writes * reads_per_write(r["file_bytes"]["median"])
    out = {
        "s3_puts": writes * S3_PUT_PER_THOUSAND / 1000,
        "lambda": invocations * per_invocation["lambda"],
        "dynamodb_reads": reads * DDB_READ_PER_MILLION / 1e6,
        "logs": invocations * per_invocation["logs"],
    }
    out["total"] = sum(out.values())
    return {k: round(v, 4) for k, v in out.items()}


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "## Session files",
        "",
        r["description"] + ".",
        "",
        "| per session | measured |",
        "|---|---|",
        f"| S3 `PutObject` of the session file (**writes per session**) | **{r['writes_per_session']}** |",
        f"| baseline: one write per change of the session record | {r['baseline_writes_per_session']} |",
        f"| ratio writes / baseline | {r['ratio_to_baseline']} |",
        f"| stream records passed to the writer by the template's filter | {r['records_to_writer_per_session']} |",
        f"| writer invocations | {r['writer_invocations_per_session']} |",
        "",
        f"Writer invocation median {r['writer_invocation_ms']['median']} ms over {r['writer_invocation_ms']['n']} "
        f"(local: DynamoDB Local and the whole stack on {r.get('cpus', 2)} shared cores); file size median "
        f"{r['file_bytes']['median']} bytes, max {r['file_bytes']['max']}. Cost per 1,000 sessions with the prices "
        f"of `bench/cost.py`, billing {WRITER_BILLED_MS} ms per invocation at 512 MB and, per write, one consistent "
        "`Query` of the session (1 read unit per 4 KB) and one `GetItem` (USD): "
        + ", ".join(f"{k} {v}" for k, v in r["cost_per_1000_sessions_usd"].items())
        + ".",
        "",
        f"{r['puts']} writes and {r['deletes']} deletes for {r['sessions']} sessions; {r['dead_letters']} dead letters. "
        "A session is written when it finishes, again when its analysis lands, and again for each late report "
        "(and the re-analysis it triggers); the logged calls of active sessions never reach the writer.",
        "",
    ]
    for q in r["queries"]:
        lines += [f"`session-tracker query` — {q['title'].lower()}:", "", "```", q["output"].rstrip(), "```", ""]
    return "\n".join(lines).rstrip()
