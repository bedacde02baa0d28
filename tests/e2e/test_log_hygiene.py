"""What the functions log: structured lines with correlation ids, and never a token,
a transcript or the values of tool-call arguments."""

from __future__ import annotations

import json
import logging

import pytest
from e2e_helpers import INGEST_TOKEN as TOKEN
from e2e_helpers import VAPI_ROUTE, VAPI_SECRET
from samples import vapi_sample

ARGUMENT_SECRET = "ARG-VALUE-5c1b9e"
TRANSCRIPT_SECRET = "TRANSCRIPT-PHRASE-77aa01"


def _formatted(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Each captured record rendered by the Powertools JSON formatter the functions use."""
    service = logging.getLogger("tutor-session-tracker")
    formatter = next(h.formatter for h in service.handlers if h.formatter is not None)
    return [formatter.format(record) for record in caplog.records]


def test_logs_never_contain_tokens_arguments_or_transcripts(local_stack, http, caplog) -> None:
    caplog.set_level(logging.INFO)  # the deployed level (POWERTOOLS_LOG_LEVEL in template.yaml)
    response = http.post(
        "/interactions",
        json={
            "student_id": "log_hygiene",
            "function": "record_answer",
            "arguments": {"student_id": "log_hygiene", "answer": ARGUMENT_SECRET},
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 202
    bad = http.post("/interactions", json={"student_id": "x"}, headers={"Authorization": f"Bearer {TOKEN}x"})
    assert bad.status_code == 401
    checked = [TOKEN, ARGUMENT_SECRET]
    assert any(r.path == VAPI_ROUTE for r in local_stack.router.routes), f"{VAPI_ROUTE} is not served"
    body = vapi_sample("end-of-call-report.full")
    body["message"]["artifact"]["transcript"] = f"AI: hello\nUser: {TRANSCRIPT_SECRET} is my answer"
    for message in body["message"]["artifact"].get("messages", []):
        if message.get("role") == "user":
            message["message"] = TRANSCRIPT_SECRET
    body["message"]["call"]["id"] = "log-hygiene-call"
    resp = http.post(VAPI_ROUTE, json=body, headers={"X-Vapi-Secret": VAPI_SECRET})
    assert resp.status_code < 300, resp.text
    checked += [VAPI_SECRET, TRANSCRIPT_SECRET]
    rendered = _formatted(caplog)
    logged = "\n".join(rendered)
    assert "interactions logged" in logged, "expected the handler's structured log line to be captured"
    for secret in checked:
        assert secret not in logged, f"{secret!r} appeared in the logs"
    lines = [json.loads(line) for line in rendered]
    handler_lines = [line for line in lines if line.get("function_name")]
    assert handler_lines and all(line.get("correlation_id") for line in handler_lines)
