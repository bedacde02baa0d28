"""The access audit end to end: reads over the API, the pages and the CLI (API and --table) are
recorded with the key that made them, and listed by ``session-tracker audit`` / ``GET /audit``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from test_cli_keys import run


def _log(local_stack, student: str) -> str:
    body = {"student_id": student, "function": "get_student_context", "timestamp": datetime.now(UTC).isoformat()}
    with httpx.Client(base_url=local_stack.url, headers={"Authorization": "Bearer e2e-ingest-token"}) as http:
        answer = http.post("/interactions", json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["session_id"])


def _entries(local_stack, student: str, expected: int) -> list[dict]:
    for _ in range(50):
        found = json.loads(run(local_stack, "audit", "--student", student, "--json").stdout)
        if len(found) >= expected:
            return found
        time.sleep(0.1)
    return found


def test_reads_by_a_named_key_over_api_pages_and_cli_are_audited(local_stack) -> None:
    session_id = _log(local_stack, "e2e_audit_mia")
    key = run(local_stack, "keys", "create", "--scope", "read", "--name", "e2e-audit-tutor").stdout.strip()
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=local_stack.url, headers=headers) as http:
        assert http.get(f"/sessions/{session_id}").status_code == 200
        assert http.get("/students/e2e_audit_mia/sessions").status_code == 200
        assert http.get(f"/ui/sessions/{session_id}").status_code == 200
    run(local_stack, "show", session_id, "--json", "--token", key)

    found = _entries(local_stack, "e2e_audit_mia", 4)
    assert [(e["actor"], e["scope"], e["action"]) for e in found] == [
        ("e2e-audit-tutor", "read", "read_session"),  # the CLI's show
        ("e2e-audit-tutor", "read", "read_session"),  # the page
        ("e2e-audit-tutor", "read", "list_sessions"),
        ("e2e-audit-tutor", "read", "read_session"),
    ]
    assert all(e["student_id"] == "e2e_audit_mia" for e in found)
    table = run(local_stack, "audit", "--student", "e2e_audit_mia").stdout
    assert table.splitlines()[0].split() == ["AT", "ACTOR", "SCOPE", "ACTION", "STUDENT", "SESSION"]
    assert session_id in table and "e2e-audit-tutor" in table
    refused = run(local_stack, "audit", token="e2e-read-token", check=False)
    assert refused.returncode == 1 and "admin" in refused.stderr


def test_reads_on_the_table_are_audited_as_the_operator(local_stack) -> None:
    if not local_stack.dynamodb_endpoint:
        pytest.skip("the local stack runs on in-process moto: --table needs DynamoDB Local")
    session_id = _log(local_stack, "e2e_audit_noah")
    table = ["--table", local_stack.options.table_name]
    env_endpoint = {"AWS_ENDPOINT_URL_DYNAMODB": local_stack.dynamodb_endpoint}
    run(local_stack, "show", session_id, "--json", *table, token=None, extra_env=env_endpoint)
    found = json.loads(
        run(
            local_stack, "audit", "--student", "e2e_audit_noah", "--json", *table, token=None, extra_env=env_endpoint
        ).stdout
    )
    assert [(e["action"], e["scope"]) for e in found] == [("read_session", "admin")]
    assert found[0]["actor"].startswith("table:")
