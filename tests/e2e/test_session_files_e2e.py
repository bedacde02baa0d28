"""Session files on the local stack (what `make run` serves): a session that closes and one that
completes each appear as `<data>/sessions/date=YYYY-MM-DD/{id}.json` within seconds, equal to
GET /sessions/{id}; late data rewrites the file."""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from e2e_helpers import ADMIN, VAPI, VAPI_ROUTE, vapi_report, z
from e2e_helpers import READ as AUTH


def file_for(local_stack, session_id: str, started: datetime) -> Path:
    return Path(local_stack.session_files_dir) / f"date={started:%Y-%m-%d}" / f"{session_id}.json"


def wait_for_file_equal_to_api(http: httpx.Client, path: Path, session_id: str, *, until=None, timeout=15.0) -> dict:
    """Poll until the file exists and holds exactly what GET /sessions/{id} answers (and ``until``)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if path.exists():
            api = http.get(f"/sessions/{session_id}", headers=AUTH).json()
            on_disk = json.loads(path.read_text(encoding="utf-8"))
            if on_disk == api and (until is None or until(on_disk)):
                return on_disk
            last = {"file": on_disk.get("status"), "api": api.get("status")}
        time.sleep(0.2)
    raise AssertionError(f"{path} did not match GET /sessions/{session_id} within {timeout}s: {last}")


def log(http: httpx.Client, student: str, at: datetime, function: str = "get_student_context", **extra) -> str:
    body = {"student_id": student, "function": function, "timestamp": z(at), "subjects": ["mathematics"]} | extra
    response = http.post("/interactions", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    return str(response.json()["session_id"])


def test_a_session_that_closes_appears_as_its_file_and_a_late_report_rewrites_it(local_stack, http) -> None:
    student = f"e2e_files_{uuid.uuid4().hex[:8]}"
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    session_id = log(http, student, started, call_id=f"call-{uuid.uuid4()}")
    log(http, student, started + timedelta(minutes=2), "check_answer")
    path = file_for(local_stack, session_id, started)
    closed = wait_for_file_equal_to_api(http, path, session_id, until=lambda d: d["status"] == "closed")
    assert len(closed["mcp_interactions"]) == 2 and closed["conversation"] is None

    response = http.post(
        VAPI_ROUTE, content=json.dumps(vapi_report(student, "late-call", session_id, started)), headers=VAPI
    )
    assert response.status_code == 200, response.text
    rewritten = wait_for_file_equal_to_api(http, path, session_id, until=lambda d: d["conversation"] is not None)
    assert "fractions" in rewritten["conversation"]["transcript"]
    assert list(path.parent.glob(f"{session_id}*")) == [path]


def test_a_session_that_completes_appears_as_its_file(local_stack, http) -> None:
    student = f"e2e_filesc_{uuid.uuid4().hex[:8]}"
    call_id = f"call-{uuid.uuid4()}"
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=6)
    session_id = log(http, student, started, call_id=call_id, platform="vapi")
    log(http, student, started + timedelta(minutes=1), "get_lesson_plan", call_id=call_id, platform="vapi")
    path = file_for(local_stack, session_id, started)
    assert not path.exists()  # still active: no file
    posted = time.monotonic()
    response = http.post(
        VAPI_ROUTE, content=json.dumps(vapi_report(student, call_id, session_id, started)), headers=VAPI
    )
    assert response.status_code == 200, response.text
    done = wait_for_file_equal_to_api(http, path, session_id, until=lambda d: d["status"] == "completed")
    print(f"file written {time.monotonic() - posted:.1f}s after the report")
    assert done["vapi_metadata"]["call_id"] == call_id
    # the analysis that follows rewrites it too
    analysed = wait_for_file_equal_to_api(
        http, path, session_id, until=lambda d: (d.get("analysis") or {}).get("status") in ("ok", "failed"), timeout=25
    )
    assert analysed["analysis"]["status"] == "ok"


def documented(title: str) -> str:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "session-files.md").read_text(encoding="utf-8")
    section = doc.split(f"### {title}\n", 1)[1]
    return section.split("```sql\n", 1)[1].split("```", 1)[0]


def query(local_stack, sql: str) -> list[list[str]]:
    """``session-tracker query SQL --format csv`` over the stack's files, as rows (header first)."""
    import csv
    import shutil
    import subprocess

    exe = shutil.which("session-tracker") or str(Path(sys.executable).parent / "session-tracker")
    done = subprocess.run(
        [exe, "query", sql, "--source", str(local_stack.session_files_dir), "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return list(csv.reader(done.stdout.splitlines()))


def test_session_tracker_query_answers_the_three_documented_queries(local_stack, http, openai_server) -> None:
    student = f"e2e_q_{uuid.uuid4().hex[:8]}"
    subject = f"astronomy_{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC).replace(microsecond=0)
    finished = {}
    for started in (now - timedelta(days=14), now - timedelta(minutes=40)):
        sid = log(http, student, started, "get_star_chart", subjects=[subject], data_provided=["star_chart"])
        log(http, student, started + timedelta(minutes=5), "check_answer", subjects=[subject], data_provided=["answer"])
        finished[sid] = started
    for sid, started in finished.items():
        wait_for_file_equal_to_api(
            http,
            file_for(local_stack, sid, started),
            sid,
            until=lambda d: (d.get("analysis") or {}).get("status"),
            timeout=30,
        )
    openai_server.fail_always(401)
    try:
        started = now - timedelta(days=3)
        failing = log(http, student, started, "get_star_chart", subjects=[subject], data_provided=["star_chart"])
        # two calls, the second providing no data (the data counts below stay): a one-call session
        # lasts 0 minutes, and Monday to Wednesday this one (3 days back) is alone in its week
        log(http, student, started + timedelta(minutes=5), "check_answer", subjects=[subject])
        wait_for_file_equal_to_api(
            http,
            file_for(local_stack, failing, started),
            failing,
            until=lambda d: (d.get("analysis") or {}).get("status") == "failed",
            timeout=40,
        )
    finally:
        openai_server.recover()

    weeks = query(local_stack, documented("Minutes per student per week"))
    assert weeks[0] == ["student_id", "week", "sessions", "minutes"]
    mine = [r for r in weeks if r[0] == student]
    assert sum(int(r[2]) for r in mine) == 3 and len(mine) >= 2
    assert all(float(r[3]) > 0 for r in mine)

    top = query(local_stack, documented("Most-requested data by subject"))
    assert top[0] == ["subject", "data", "requests"] and 1 < len(top) <= 11
    unlimited = documented("Most-requested data by subject").replace("LIMIT 10", "")
    by_subject = query(local_stack, f"SELECT * FROM ({unlimited}) WHERE subject = '{subject}'")
    assert by_subject[1:] == [[subject, "star_chart", "3"], [subject, "answer", "2"]]

    failed = query(local_stack, documented("Sessions whose analysis failed"))
    assert failed[0] == ["session_id", "student_id", "started", "analysis_error"]
    (row,) = [r for r in failed if r[0] == failing]
    assert row[1] == student and "401" in row[3]


def unmatched_report(http: httpx.Client, call_id: str, started: datetime) -> str:
    body = {
        "platform": "generic",
        "call_id": call_id,
        "started_at": z(started),
        "ended_at": z(started + timedelta(minutes=4)),
        "transcript": "AI: Who is this?\nUser: Guess!",
    }
    answer = http.post("/webhook/session-data", json=body, headers=AUTH).json()
    assert answer["status"] == "unmatched", answer
    return str(answer["session_id"])


def test_an_assignment_rewrites_the_file_of_the_session_it_lands_in(local_stack, http) -> None:
    student = f"e2e_fa_{uuid.uuid4().hex[:8]}"
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    session_id = log(http, student, started)
    path = file_for(local_stack, session_id, started)
    wait_for_file_equal_to_api(http, path, session_id, until=lambda d: d["status"] == "closed")
    source = unmatched_report(http, f"call-{uuid.uuid4()}", started + timedelta(seconds=30))
    assert not any(Path(local_stack.session_files_dir).rglob(f"{source}.json"))  # unmatched: no file

    answer = http.post(f"/sessions/{source}/assign", json={"student_id": student}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert answer.json()["session_id"] == session_id
    moved = wait_for_file_equal_to_api(http, path, session_id, until=lambda d: d["conversation"] is not None)
    assert moved["matching"]["strategy"] == "manual"
    assert "Who is this?" in moved["conversation"]["transcript"]
