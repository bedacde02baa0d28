"""The local stack serves concurrent requests like separate Lambda instances:
no request ever sees another one's event (Powertools keeps the current event on
a class attribute, which the local stack makes thread-local)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

AUTH = {"Authorization": "Bearer e2e-ingest-token"}


def test_concurrent_requests_each_get_their_own_answer(local_stack) -> None:
    mismatches: list[str] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        with httpx.Client(base_url=local_stack.url, timeout=60) as http:
            for i in range(12):
                student = f"conc_{w}_{i}"
                calls = [
                    {"student_id": student, "function": "get_progress", "timestamp": f"2026-02-01T10:00:0{k}Z"}
                    for k in range(5)
                ]
                answer = http.post("/interactions", json={"interactions": calls}, headers=AUTH).json()
                sessions = {r.get("session_id") for r in answer.get("results", [])}
                if sessions != {f"{student}_20260201_1000"}:
                    with lock:
                        mismatches.append(f"{student} -> {sessions}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    assert not mismatches, mismatches[:5]


def test_router_state_is_thread_local() -> None:
    from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver, BaseRouter

    from session_tracker_local.lambda_host import isolate_router_state

    isolate_router_state()
    app = APIGatewayHttpResolver()
    BaseRouter.current_event = "main"  # type: ignore[assignment]
    seen: list[object] = []

    def other() -> None:
        BaseRouter.current_event = "other"  # type: ignore[assignment]
        seen.append(app.current_event)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == ["other"]
    assert app.current_event == "main"
