"""Redaction before storage, end to end on the local stack (``privacy: redact: [email, phone]``).

A tool call with an e-mail address and a phone number in its arguments, and a VAPI report
whose (large, so offloaded to the blob store) transcript carries both: afterwards neither
the table, the blob store (transcripts and session files), the analysis request the fake
OpenAI server received, the API answer nor the logs hold them.
"""

from __future__ import annotations

import copy
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import httpx
from e2e_helpers import INGEST, wait_for_analysis, z
from samples import vapi_sample

EMAIL = "emma.parent+tutoring@example.org"
PHONE = "+44 20 7946 0958"
PHONE_DIGITS = "2079460958"


def _table_dump(table: str) -> str:
    client = boto3.client("dynamodb")
    items: list[dict] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items += page["Items"]
    return json.dumps(items, ensure_ascii=False)


def _files_dump(root: Path) -> tuple[str, int]:
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in root.rglob("*") if p.is_file()]
    return "\n".join(texts), len(texts)


def _never_holds(text: str, where: str) -> None:
    assert EMAIL not in text, f"{where} holds the e-mail address"
    assert "example.org" not in text, f"{where} holds the e-mail domain"
    assert PHONE not in text and PHONE_DIGITS not in text.replace(" ", ""), f"{where} holds the phone number"


def test_an_email_and_a_phone_number_are_never_stored_sent_or_logged(local_stack, openai_server, caplog) -> None:
    caplog.set_level(logging.INFO)
    student = f"e2e_redact_{uuid.uuid4().hex[:8]}"
    call_id = f"call-{uuid.uuid4()}"
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=6)
    session_id = f"{student}_{started:%Y%m%d_%H%M}"
    with httpx.Client(base_url=local_stack.url, timeout=30) as http:
        logged = http.post(
            "/interactions",
            json={
                "student_id": student,
                "function": "save_contact",
                "timestamp": z(started),
                "arguments": {"student_id": student, "note": f"parent: {EMAIL}, {PHONE}", "time": "14:30"},
                "call_id": call_id,
                "platform": "vapi",
            },
            headers=INGEST,
        )
        assert logged.status_code == 202 and logged.json()["session_id"] == session_id

        body = copy.deepcopy(vapi_sample("end-of-call-report.full"))
        message = body["message"]
        message["call"]["id"] = call_id
        message["call"].setdefault("assistantOverrides", {}).setdefault("variableValues", {})["student_id"] = student
        ended = started + timedelta(minutes=6)
        message["startedAt"], message["endedAt"] = z(started), z(ended)
        message["timestamp"] = int(ended.timestamp() * 1000)
        filler = "AI: Let's add fractions: one half plus one third is five sixths at 14:30.\n" * 1200
        spoken = f"User: my mum's email is {EMAIL} and her phone is {PHONE}"
        message["artifact"]["transcript"] = f"{filler}{spoken}\nAI: Thanks!"
        for turn in message["artifact"].get("messages", []):
            if turn.get("role") == "user":
                turn["message"] = spoken
        message.setdefault("analysis", {})["summary"] = f"The student shared {EMAIL} and {PHONE}."
        answer = http.post(
            "/webhook/vapi/session-complete", json=body, headers={"Authorization": "Bearer e2e-vapi-secret"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["session_id"] == session_id

        export = wait_for_analysis(http, session_id)

    # the stored text is the redacted text, and it is what every reader sees
    assert "[EMAIL]" in export["conversation"]["transcript"] and "[PHONE]" in export["conversation"]["transcript"]
    assert "14:30" in export["conversation"]["transcript"], "times are not phone numbers"
    (call,) = export["mcp_interactions"]
    assert call["arguments"] == {"student_id": student, "note": "parent: [EMAIL], [PHONE]", "time": "14:30"}
    _never_holds(json.dumps(export), "the API's export")

    _never_holds(_table_dump(local_stack.options.table_name), "the table")
    blobs, count = _files_dump(local_stack.bucket_dirs["BlobBucket"])
    assert count >= 1, "the large transcript was offloaded to the blob store"
    assert "[EMAIL]" in blobs
    _never_holds(blobs, "the blob store")

    # auto_save: the completed session's file is written from the stored (redacted) session
    session_file = Path(local_stack.session_files_dir) / f"date={started:%Y-%m-%d}" / f"{session_id}.json"
    deadline = time.monotonic() + 30
    while not session_file.exists() and time.monotonic() < deadline:
        time.sleep(0.25)
    assert session_file.exists(), "the completed session was saved as a file"
    saved = session_file.read_text(encoding="utf-8")
    assert "[EMAIL]" in saved
    _never_holds(saved, "the session file")

    asked = [r for r in openai_server.completions() if session_id in r.text or student in r.text]
    assert asked, "the analysis request reached the fake OpenAI server"
    for request in asked:
        _never_holds(json.dumps(request.body), "the analysis request sent to OpenAI")
    _never_holds("\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records), "the logs")
