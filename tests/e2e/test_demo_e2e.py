"""`make demo` (``python -m session_tracker_local.demo``) seeds a stack of its own through the public
routes: a new user sees several students with weeks of sessions and VAPI reports, the review queue
and a lesson running now. Run as a subprocess, as `make demo` runs it: a second stack inside the
test process would share (and, on stop, break) the e2e stack's environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import httpx


def _wait_for_link(log: Path, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        found = re.search(r"Open (http://\S+)/ui\?token=(\S+)", text)
        if found:
            return found.group(1), unquote(found.group(2))
        assert proc.poll() is None, f"the demo exited early:\n{text[-3000:]}"
        time.sleep(0.25)
    raise AssertionError(f"the demo printed no sign-in link within {timeout}s")


def test_make_demo_serves_weeks_of_sessions_the_review_queue_and_a_live_lesson(root, tmp_path) -> None:
    from session_tracker_local.demo import STUDENTS

    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "session_tracker_local.demo", "--port", "0"],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"},
        )
    try:
        url, token = _wait_for_link(log, proc)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            for student in STUDENTS:
                listed = http.get(f"/students/{student.student_id}/sessions", params={"from": "2000-01-01T00:00:00Z"})
                assert listed.status_code == 200, listed.text
                assert len(listed.json()["sessions"]) >= 2, f"{student.student_id} has weeks of sessions"
                page = http.get(f"/ui/students/{student.student_id}")
                assert page.status_code == 200 and "<svg" in page.text, "the student page draws its charts"
            review = http.get("/ui/review")
            assert review.status_code == 200 and "unmatched" in review.text
            assert http.get("/ui/live/data").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=60)
