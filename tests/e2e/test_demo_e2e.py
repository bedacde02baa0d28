"""`make demo` seeds a stack through its public routes: a new user sees several students with
weeks of sessions and VAPI reports, the review queue and a lesson running now."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

READ = {"Authorization": "Bearer demo-read-token"}


@pytest.fixture
def demo_stack(root) -> Iterator[object]:
    """A stack of its own: the demo's students (emma_smith, ...) must not meet other e2e tests' data."""
    from session_tracker_local.stack import LocalStack, StackOptions

    stack = LocalStack(
        StackOptions(
            root=root,
            port=0,
            data_dir=None,
            ingest_token="demo-ingest-token",
            read_token="demo-read-token",
            admin_token="demo-admin-token",
            vapi_secret="demo-vapi-secret",
            run_schedules=False,
            run_streams=False,
            extra_env={"POWERTOOLS_LOG_LEVEL": "WARNING"},
        )
    ).start()
    try:
        yield stack
    finally:
        stack.stop()


def test_the_demo_seeds_weeks_of_sessions_the_review_queue_and_a_live_lesson(demo_stack) -> None:
    from session_tracker_local.demo import STUDENTS, seed

    now = datetime.now(UTC)
    said: list[str] = []
    demo = seed(
        demo_stack.url, ingest_token="demo-ingest-token", vapi_secret="demo-vapi-secret", now=now, say=said.append
    )
    assert len(said) == 3 and demo.sessions >= 3 * len(STUDENTS)

    with httpx.Client(base_url=demo_stack.url, headers=READ, timeout=30) as http:
        seen = 0
        for student in STUDENTS:
            listed = http.get(f"/students/{student.student_id}/sessions", params={"from": "2000-01-01T00:00:00Z"})
            assert listed.status_code == 200, listed.text
            sessions = listed.json()["sessions"]
            assert len(sessions) >= 2, f"{student.student_id} has weeks of sessions"
            seen += len(sessions)
            page = http.get(f"/ui/students/{student.student_id}")
            assert page.status_code == 200 and "<svg" in page.text, "the student page draws its charts"
        assert seen >= demo.sessions, "every planned session is there (plus the live lesson)"

        review = http.get("/ui/review")
        assert review.status_code == 200
        assert review.text.count("unmatched") >= 1, "the review queue holds the demo's unmatched calls"
        live = http.get("/ui/live/data")
        assert live.status_code == 200, live.text
