"""The webhooks on the local stack over real HTTP (what `make run` serves), read back through the read API."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
from samples import vapi_sample, vapi_sample_names

VAPI = "/webhook/vapi/session-complete"
SECRET = "e2e-vapi-secret"
READ = {"Authorization": "Bearer e2e-read-token"}


def send(http: httpx.Client, body: dict, headers: dict[str, str] | None = None) -> httpx.Response:
    return http.post(VAPI, content=json.dumps(body), headers=headers or {"Authorization": f"Bearer {SECRET}"})


def session(http: httpx.Client, session_id: str) -> dict:
    response = http.get(f"/sessions/{session_id}", headers=READ)
    assert response.status_code == 200, response.text
    return response.json()


def renamed(name: str, prefix: str) -> dict:
    """A sample with its ids made unique to this test (the stack is shared by the e2e suite)."""
    body = copy.deepcopy(vapi_sample(name))
    message = body["message"]
    call = message.get("call") or {}
    if "id" in call:
        call["id"] = f"{prefix}-{call['id']}"
    overrides = call.get("assistantOverrides") or {}
    for values in (overrides.get("variableValues") or {}, overrides.get("metadata") or {}):
        for key in ("student_id", "session_id"):
            if key in values:
                values[key] = f"{prefix}_{values[key]}"
    return body


def test_every_sample_posted_to_the_local_stack_gives_its_result(http) -> None:
    """Each real sample over HTTP: 200, the expected outcome, and (for the end-of-call data) a readable session."""
    prefix = "e2eall"
    mcp = {
        "student_id": f"{prefix}_emma_smith",
        "function": "get_student_context",
        "timestamp": "2026-01-17T14:30:05Z",
        "call_id": f"{prefix}-53077b4f-8470-4ae4-b473-ec0b2be99634",
    }
    assert http.post("/interactions", content=json.dumps(mcp), headers=READ).status_code == 202
    expected = {
        "conversation-update": "ignored",
        "tool-calls": "ignored",
        "transcript.final": "ignored",
        "status-update.in-progress": "ignored",
        "end-of-call-report.full": "merged",
        "end-of-call-report.short-no-analysis": "created",
        "end-of-call-report.empty-conversation": "created",
        "status-update.ended-abnormal": "created",
    }
    assert set(vapi_sample_names()) == set(expected)
    for name, outcome in sorted(expected.items()):
        response = send(http, renamed(name, prefix))
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        assert body["outcome"] == outcome, (name, body)
        if outcome != "ignored":
            stored = session(http, body["session_id"])
            assert stored["status"] == "completed"
            assert stored["vapi_metadata"]["call_id"].startswith(prefix)
            assert stored["conversation"]["source"] == "vapi"
    full = session(http, f"{prefix}_emma_smith_20260117_1430")
    assert full["matching"]["strategy"] == "explicit"
    assert len(full["mcp_interactions"]) == 1
    assert full["conversation"]["word_count"] == 209 and full["conversation"]["call_duration"] == 92
    again = send(http, renamed("end-of-call-report.full", prefix))
    assert again.json()["outcome"] == "duplicate"


def test_unmatched_report_is_kept_and_visible_in_the_read_api(http) -> None:
    body = renamed("end-of-call-report.empty-conversation", "e2eunm")
    del body["message"]["call"]["assistantOverrides"]
    answer = send(http, body).json()
    assert (answer["outcome"], answer["status"], answer["strategy"]) == ("created", "unmatched", "none")
    assert session(http, answer["session_id"])["student_id"] == "unknown"
    listed = http.get(
        "/students/unknown/sessions",
        params={"from": "2026-01-22T00:00:00Z", "to": "2026-01-23T00:00:00Z"},
        headers=READ,
    )
    assert listed.status_code == 200
    assert answer["session_id"] in json.dumps(listed.json())


def test_hmac_signed_delivery_over_http(http) -> None:
    raw = json.dumps(renamed("end-of-call-report.short-no-analysis", "e2ehmac")).encode()
    stamp = str(int(time.time() * 1000))
    signature = hmac.new(SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    headers = {"x-signature": signature, "x-timestamp": stamp, "content-type": "application/json"}
    assert http.post(VAPI, content=raw, headers=headers).status_code == 200
    tampered = http.post(VAPI, content=raw.replace(b"silence", b"SILENCE"), headers=headers)
    assert tampered.status_code == 401
    assert tampered.headers["content-type"] == "application/problem+json"


def test_wrong_secret_is_401_over_http(http) -> None:
    response = send(http, vapi_sample("end-of-call-report.full"), {"X-Vapi-Secret": "nope"})
    assert response.status_code == 401 and response.json()["status"] == 401


def test_huge_transcript_goes_to_the_local_bucket_and_comes_back_whole(local_stack, http) -> None:
    body = renamed("end-of-call-report.short-no-analysis", "e2ehuge")
    text = "\n".join(f"User: sentence {i} with ünïcödé ✓ {'and more words ' * 12}" for i in range(15_000))
    body["message"]["artifact"]["transcript"] = text
    answer = send(http, body).json()
    assert answer["outcome"] == "created"
    assert session(http, answer["session_id"])["conversation"]["transcript"] == text
    [bucket] = local_stack.bucket_dirs.values()
    assert any(p.name.endswith(".txt") for p in bucket.rglob("*")), "the transcript was not stored in the bucket dir"


def test_late_report_merges_into_the_earlier_session_not_the_active_one(http) -> None:
    now = datetime.now(UTC)
    early, current = now - timedelta(hours=3), now - timedelta(minutes=1)
    for at in (early, current):
        mcp = {"student_id": "e2e_late", "function": "get_progress", "timestamp": at.isoformat()}
        assert http.post("/interactions", content=json.dumps(mcp), headers=READ).status_code == 202
    body = renamed("end-of-call-report.short-no-analysis", "e2elate")
    message = body["message"]
    message["call"]["assistantOverrides"]["variableValues"]["student_id"] = "e2e_late"
    message["startedAt"] = (early - timedelta(seconds=30)).isoformat()
    message["endedAt"] = (early + timedelta(minutes=2)).isoformat()
    answer = send(http, body).json()
    assert answer["session_id"] == f"e2e_late_{early:%Y%m%d_%H%M}"
    assert session(http, f"e2e_late_{current:%Y%m%d_%H%M}")["conversation"] is None


def test_generic_endpoint_over_http(http) -> None:
    body = {
        "platform": "generic",
        "student_id": "e2e_generic",
        "started_at": "2026-02-03T09:00:00Z",
        "ended_at": "2026-02-03T09:10:00Z",
        "transcript": [{"role": "assistant", "text": "Bonjour"}, {"role": "user", "text": "Salut"}],
    }
    response = http.post("/webhook/session-data", content=json.dumps(body), headers=READ)
    assert response.status_code == 200, response.text
    stored = session(http, response.json()["session_id"])
    assert stored["conversation"]["transcript"] == "AI: Bonjour\nUser: Salut"
    bad = http.post("/webhook/session-data", content=json.dumps(body | {"platform": "nope"}), headers=READ)
    assert bad.status_code == 422 and bad.json()["field"] == "platform"
