"""The student page with 500 sessions: time on the local stack, items read, page weight.

A student with ``SESSIONS`` sessions (4 calls each, analysed) and a student with one are
seeded into DynamoDB Local through the domain path. Then, over HTTP against the local
stack (what ``make run`` serves), ``GET /ui/students/{id}`` is timed for both, with two
baselines measured in the same run: ``GET /health`` (the HTTP + Lambda-host floor) and a
raw boto3 ``Query`` of the student's index partition (the least DynamoDB work that lists
500 sessions). Items and requests are counted on the same read path in-process
(``progress.student_view`` with a counting DynamoDB client).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-ui-token"
READ_TOKEN = "bench-ui-read-token"  # pages need the read scope; the ingest token no longer reads
SESSIONS = 500
STUDENT = "bench_ui_many"
SINGLE = "bench_ui_one"
TARGET_SECONDS = 1.0


def _seed(store: Any, student: str, sessions: int) -> None:
    from session_tracker.models import InteractionIn
    from session_tracker.sessions import log_interactions

    now = datetime.now(UTC)
    start = (now - timedelta(days=400)).replace(hour=16, minute=0, second=0, microsecond=0)
    functions = ["get_student_context", "get_lesson_plan", "check_answer", "update_progress"]
    subjects = ["mathematics", "reading", "science"]
    items = []
    for n in range(sessions):
        at = start + timedelta(hours=17 * n)
        for k, function in enumerate(functions[: 2 + n % 3]):
            items.append(
                InteractionIn(
                    student_id=student,
                    function=function,
                    timestamp=at + timedelta(minutes=4 * k + n % 7),
                    subjects=[subjects[n % 3]],
                    data_provided=[function.removeprefix("get_")],
                    interaction_id=f"{student}-{n}-{k}",
                )
            )
    for i in range(0, len(items), 25):
        log_interactions(items[i : i + 25], store=store, now=now, timeout=timedelta(minutes=10))
    metas = store.student_history(
        student, start=start - timedelta(days=1), end=start + timedelta(days=3650), limit=sessions
    )
    for n, meta in enumerate(metas):
        store.save_analysis(
            meta.session_id,
            {
                "status": "ok",
                "session_summary": f"Lesson {n}.",
                "progress_update": f"Progress note {n}: steady on {meta.subjects[0] if meta.subjects else 'the topic'}.",
                "learning_insights": "Short problem sets keep the student engaged.",
                "model": "bench",
            },
            content_updated_at=None,
            clear_pending=False,
        )


def _counting(client: Any) -> dict[str, int]:
    counts = {"requests": 0, "items": 0}

    def after(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        counts["requests"] += 1
        counts["items"] += len(parsed.get("Items", []))
        counts["items"] += sum(len(v) for v in parsed.get("Responses", {}).values())

    client.meta.events.register("after-call.dynamodb", after)
    return counts


def _time(fn: Any, reps: int) -> list[float]:
    fn()  # warm
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def run(quick: bool = False) -> dict[str, Any]:
    import boto3
    import httpx

    from bench.stats import ratio, summary
    from session_tracker.progress import student_view
    from session_tracker.store import DynamoStore
    from session_tracker_local.stack import LocalStack, StackOptions

    reps = 5 if quick else 15
    stack = LocalStack(
        StackOptions(
            root=ROOT,
            port=0,
            data_dir=None,
            backend="dynamodb-local",
            ingest_token=TOKEN,
            read_token=READ_TOKEN,
            vapi_secret="bench-vapi",
            run_schedules=False,
            run_streams=False,
            extra_env={"POWERTOOLS_LOG_LEVEL": "WARNING"},
        )
    ).start()
    try:
        client = boto3.client(
            "dynamodb",
            endpoint_url=stack.dynamodb_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        store = DynamoStore(stack.options.table_name, client=client)
        t0 = time.monotonic()
        _seed(store, STUDENT, SESSIONS)
        _seed(store, SINGLE, 1)
        seeded_s = round(time.monotonic() - t0, 1)
        http = httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {READ_TOKEN}"}, timeout=60)
        page = http.get(f"/ui/students/{STUDENT}")
        page.raise_for_status()
        assert page.text.count('<rect class="bar') >= SESSIONS, "every session is a bar"

        def raw_query() -> None:
            kwargs: dict[str, Any] = {
                "TableName": stack.options.table_name,
                "IndexName": "GSI1",
                "KeyConditionExpression": "gsi1pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"STUDENT#{STUDENT}"}},
                "ScanIndexForward": False,
            }
            while True:
                out = client.query(**kwargs)
                if "LastEvaluatedKey" not in out:
                    return
                kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

        many = summary(_time(lambda: http.get(f"/ui/students/{STUDENT}").raise_for_status(), reps))
        one = summary(_time(lambda: http.get(f"/ui/students/{SINGLE}").raise_for_status(), reps))
        health = summary(_time(lambda: http.get("/health").raise_for_status(), reps))
        query = summary(_time(raw_query, reps))
        counts = _counting(client)
        view = student_view(STUDENT, reader=store)
        reads = dict(counts)
        counts.update(requests=0, items=0)
        student_view(SINGLE, reader=store)
        reads_one = dict(counts)
        http.close()
    finally:
        stack.stop()
    result: dict[str, Any] = {
        "description": f"GET /ui/students/{{id}} on the local stack for a student with {SESSIONS} analysed sessions "
        f"and for one with a single session; {reps} repetitions after a warm-up",
        "sessions": SESSIONS,
        "charted_sessions": view.overview.sessions,
        "seed_seconds": seeded_s,
        "page_500": many,
        "page_1": one,
        "health": health,
        "raw_query_500": query,
        "ratio_page_500_to_health": ratio(many, health),
        "ratio_page_500_to_raw_query": ratio(many, query),
        "ratio_page_500_to_page_1": ratio(many, one),
        "page_bytes_500": len(page.content),
        "reads_500": reads,
        "reads_1": reads_one,
        "target_seconds": TARGET_SECONDS,
        "meets_target": many["median_ms"] / 1000 < TARGET_SECONDS and many["p99_ms"] / 1000 < TARGET_SECONDS,
    }
    result["markdown"] = "\n".join(render(result))
    return result


def render(ui: dict[str, Any]) -> list[str]:
    """The docs/benchmarks.md section."""

    def row(name: str, s: dict[str, Any]) -> str:
        return f"| {name} | {s['n']} | {s['median_ms']} | {s['p99_ms']} |"

    r500, r1 = ui["reads_500"], ui["reads_1"]
    return [
        "## Student page",
        "",
        ui["description"] + ".",
        "",
        "| request | n | median ms | p99 ms |",
        "|---|---|---|---|",
        row(f"GET /ui/students/{{id}}, {ui['sessions']} sessions", ui["page_500"]),
        row("GET /ui/students/{id}, 1 session", ui["page_1"]),
        row("GET /health (baseline: HTTP + Lambda host)", ui["health"]),
        row(f"raw boto3 Query of the {ui['sessions']} sessions (baseline: least DynamoDB work)", ui["raw_query_500"]),
        "",
        f"Ratios (median): page / health **{ui['ratio_page_500_to_health']['median']}**, page / raw query "
        f"**{ui['ratio_page_500_to_raw_query']['median']}**, 500 sessions / 1 session "
        f"**{ui['ratio_page_500_to_page_1']['median']}**. Target: under {ui['target_seconds']} s on the local stack "
        f"(median and p99): **{'met' if ui['meets_target'] else 'missed'}**.",
        "",
        f"Reads per page view: {ui['sessions']} sessions **{r500['items']} items in {r500['requests']} requests** "
        f"(one projected history query for the charts, one page of the list, one batch read of that page's "
        f"analysis texts); 1 session {r1['items']} items in {r1['requests']} requests. The history read is capped "
        f"at 1,000 sessions per range. Page weight with {ui['sessions']} sessions: "
        f"{ui['page_bytes_500'] / 1024:.0f} KiB of HTML with inline SVG (no other requests).",
        "",
    ]
