"""Erasure end to end on the local stack (#15): ``session-tracker forget`` (API and --table) removes
every item, blob and session file of a student, so nothing of theirs is readable through any
route, page, export or the CLI; another student with the same interaction ids on the same day
keeps everything."""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from test_cli_keys import run

INGEST = {"Authorization": "Bearer e2e-ingest-token"}
READ = {"Authorization": "Bearer e2e-read-token"}
ADMIN = {"Authorization": "Bearer e2e-admin-token"}
BIG = 70 * 1024  # over the 64 KB inline limit: arguments and transcript go to the blob store


def z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _seed(http: httpx.Client, student: str, start: datetime) -> str:
    """A session with client ids req-1/req-2 (the same for every student), a call id, a large
    argument and a platform report with a large transcript (so it completes: a session file)."""
    calls = [
        {
            "student_id": student,
            "function": "save_essay",
            "timestamp": z(start + timedelta(seconds=i)),
            "interaction_id": f"req-{i}",
            "call_id": f"call-{student}",
            "arguments": {"essay": f"{student} " + "x" * BIG} if i == 1 else {"topic": "fractions"},
        }
        for i in (1, 2)
    ]
    answer = http.post("/interactions", json={"interactions": calls}, headers=INGEST)
    assert answer.status_code == 202, answer.text
    session_id = str(answer.json()["results"][0]["session_id"])
    report = {
        "platform": "generic",
        "student_id": student,
        "call_id": f"call-{student}",
        "delivery_id": f"delivery-{student}",
        "started_at": z(start - timedelta(seconds=20)),
        "ended_at": z(start + timedelta(minutes=4)),
        "transcript": f"{student} talks about fractions " + "y" * BIG,
    }
    answer = http.post("/webhook/session-data", json=report, headers=INGEST)
    assert answer.status_code < 300 and answer.json()["session_id"] == session_id, answer.text
    return session_id


def _blobs(student: str, session_id: str) -> list[str]:
    root = Path(os.environ["BLOB_DIR"])
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and student in str(p))


def _session_file(local_stack, session_id: str) -> list[Path]:
    return list(Path(local_stack.session_files_dir).glob(f"date=*/{session_id}.json"))


def _wait(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _readable(local_stack, http: httpx.Client, student: str, session_id: str) -> dict[str, object]:
    """What any reader can still see of the student."""
    day = session_id.split("_")[-2]
    listing = http.get("/sessions", params={"from": f"{day[:4]}-{day[4:6]}-{day[6:]}"}, headers=READ).json()
    with tempfile.TemporaryDirectory() as out:
        run(local_stack, "export", "--student", student, "--out", out, token="e2e-read-token")
        run(local_stack, "export", "--since", f"{day[:4]}-{day[4:6]}-{day[6:]}", "--out", out, token="e2e-read-token")
        export = " ".join(p.name + p.read_text() for p in Path(out).rglob("*.json"))
    return {
        "api_session": http.get(f"/sessions/{session_id}", headers=READ).status_code,
        "api_student": [
            s["session_id"] for s in http.get(f"/students/{student}/sessions", headers=READ).json()["sessions"]
        ],
        "api_all": [s["session_id"] for s in listing["sessions"] if s.get("student_id") == student],
        "page_session": http.get(f"/ui/sessions/{session_id}", headers=READ).status_code,
        "page_student": student in http.get(f"/ui/students/{student}", headers=READ).text.split("<title>", 1)[-1]
        and session_id in http.get(f"/ui/students/{student}", headers=READ).text,
        "cli_show": run(local_stack, "show", session_id, check=False, token="e2e-read-token").returncode,
        "export": student in export,
        "file": bool(_session_file(local_stack, session_id)),
        "blobs": _blobs(student, session_id),
    }


def test_forget_erases_a_student_everywhere_and_leaves_another_untouched(local_stack) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    with httpx.Client(base_url=local_stack.url, timeout=30) as http:
        emma = _seed(http, "e2e_forget_emma", start)
        liam = _seed(http, "e2e_forget_liam", start + timedelta(minutes=1))  # same day, same interaction ids
        _wait(lambda: bool(_session_file(local_stack, emma)) and bool(_session_file(local_stack, liam)))
        assert http.get(f"/sessions/{emma}", headers=READ).status_code == 200  # an audited read
        before = _readable(local_stack, http, "e2e_forget_emma", emma)
        assert before["api_session"] == 200 and before["api_student"] == [emma] and before["file"]
        assert len(before["blobs"]) == 2, before["blobs"]  # the argument and the transcript
        liam_before = _readable(local_stack, http, "e2e_forget_liam", liam)

        refused = run(local_stack, "forget", "e2e_forget_emma", "--yes", token="e2e-read-token", check=False)
        assert refused.returncode == 1 and "admin" in refused.stderr
        unconfirmed = run(local_stack, "forget", "e2e_forget_emma", check=False)  # stdin closed: no
        assert unconfirmed.returncode != 0 and http.get(f"/sessions/{emma}", headers=READ).status_code == 200

        out = run(local_stack, "forget", "e2e_forget_emma", "--yes")
        assert "erased student e2e_forget_emma: 1 sessions, 2 interactions, 2 blobs" in out.stdout, out.stdout
        _wait(lambda: not _session_file(local_stack, emma))  # the stream removed the session file
        after = _readable(local_stack, http, "e2e_forget_emma", emma)
        assert after == {
            "api_session": 404,
            "api_student": [],
            "api_all": [],
            "page_session": 404,
            "page_student": False,
            "cli_show": 2,  # not found
            "export": False,
            "file": False,
            "blobs": [],
        }
        assert _readable(local_stack, http, "e2e_forget_liam", liam) == liam_before

        again = http.delete("/students/e2e_forget_emma", headers=ADMIN)
        assert again.status_code == 200
        body = again.json()
        assert {k: body[k] for k in ("sessions_deleted", "interactions_deleted", "blobs_deleted")} == dict.fromkeys(
            ("sessions_deleted", "interactions_deleted", "blobs_deleted"), 0
        )
        # the idempotency markers went: emma's req-1 is a new call now; liam's is still a retry
        redo = http.post(
            "/interactions",
            json={"student_id": "e2e_forget_liam", "function": "save_essay", "interaction_id": "req-1"},
            headers=INGEST,
        ).json()
        assert redo["session_id"] == liam and redo.get("duplicate") is True
        fresh = http.post(
            "/interactions",
            json={"student_id": "e2e_forget_emma", "function": "f", "interaction_id": "req-1"},
            headers=INGEST,
        ).json()
        assert fresh["session_id"] != emma and not fresh.get("duplicate")
        # the call link went too: a report for emma's old call no longer finds the erased session
        assert http.get(f"/sessions/{emma}", headers=READ).status_code == 404

    entries = json.loads(run(local_stack, "audit", "--student", "e2e_forget_emma", "--json").stdout)
    erases = [e for e in entries if e["action"] == "erase"]
    assert erases and erases[-1]["counts"] == {"sessions_deleted": 1, "interactions_deleted": 2, "blobs_deleted": 2}
    assert {e["action"] for e in entries} == {"erase"}  # the older read entries went with the student
    assert all("essay" not in json.dumps(e) for e in entries)


def test_forget_on_the_table_as_the_operator(local_stack) -> None:
    if not local_stack.dynamodb_endpoint:
        pytest.skip("the local stack runs on in-process moto: --table needs DynamoDB Local")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with httpx.Client(base_url=local_stack.url, timeout=30) as http:
        noah = _seed(http, "e2e_forget_noah", start)
        table = ["--table", local_stack.options.table_name]
        env = {"AWS_ENDPOINT_URL_DYNAMODB": local_stack.dynamodb_endpoint, "BLOB_DIR": os.environ["BLOB_DIR"]}
        out = run(local_stack, "forget", "e2e_forget_noah", "--yes", "--json", *table, token=None, extra_env=env)
        summary = json.loads(out.stdout)
        assert (summary["sessions_deleted"], summary["interactions_deleted"], summary["blobs_deleted"]) == (1, 2, 2)
        assert http.get(f"/sessions/{noah}", headers=READ).status_code == 404
        assert _blobs("e2e_forget_noah", noah) == []
    entries = json.loads(run(local_stack, "audit", "--student", "e2e_forget_noah", "--json").stdout)
    assert [(e["action"], e["actor"].split(":")[0]) for e in entries] == [("erase", "table")]
