"""The webhook Lambda handlers, invoked with API Gateway v2 events, on DynamoDB Local."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import call, problem, sample_event
from samples import vapi_sample

from session_tracker import runtime, sessions
from session_tracker.blobs import DirBlobStore
from session_tracker.store import DynamoStore

ROOT = Path(__file__).resolve().parents[2]
VAPI_EVENT = json.loads((ROOT / "tests/events/webhook_vapi_end_of_call_report.json").read_text())
GENERIC_EVENT = json.loads((ROOT / "tests/events/webhook_session_data_generic.json").read_text())
SECRET = "test-vapi-secret"


@pytest.fixture
def handlers(ddb_store: DynamoStore, blobs: DirBlobStore, monkeypatch: pytest.MonkeyPatch, wire):
    monkeypatch.setenv("INGEST_TOKEN", "test-ingest-token")
    monkeypatch.setenv("VAPI_WEBHOOK_SECRET", SECRET)
    return {
        name: wire(name, ddb_store, blobs=blobs, function_name="WebhookFunction", timeout=20)
        for name in ("webhook_vapi", "webhook_generic")
    }


@pytest.fixture
def vapi(handlers):
    return handlers["webhook_vapi"]


@pytest.fixture
def generic(handlers):
    return handlers["webhook_generic"]


def vapi_event(body: Any = None, **kw: Any) -> dict[str, Any]:
    return sample_event(VAPI_EVENT, body, **kw)


def answer(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200, response
    body: dict[str, Any] = json.loads(response["body"])
    return body


# ---------------------------------------------------------------- every sample
SAMPLE_RESULTS = {
    "conversation-update": ("ignored", None, None),
    "tool-calls": ("ignored", None, None),
    "transcript.final": ("ignored", None, None),
    "status-update.in-progress": ("ignored", None, None),
    "end-of-call-report.full": ("merged", "emma_smith_20260117_1430", "explicit"),
    "end-of-call-report.short-no-analysis": ("created", "jacob_miller_20260120_1605", "student_id"),
    "end-of-call-report.empty-conversation": ("created", "ava_johnson_20260122_1912", "student_id"),
    "status-update.ended-abnormal": ("created", "mia_wilson_20260124_1041", "student_id"),
}


@pytest.mark.parametrize("name", sorted(SAMPLE_RESULTS))
def test_each_real_vapi_sample_gives_its_expected_result(vapi, ddb_store, name: str) -> None:
    sessions.log_interactions(
        [
            call(
                "emma_smith",
                datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC),
                call_id="53077b4f-8470-4ae4-b473-ec0b2be99634",
            )
        ],
        store=ddb_store,
        now=datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC),
        timeout=runtime.get_config().session_tracking.timeout,
    )
    body = answer(vapi(vapi_event(vapi_sample(name))))
    outcome, session_id, strategy = SAMPLE_RESULTS[name]
    assert (body["outcome"], body.get("session_id"), body.get("strategy")) == (outcome, session_id, strategy)
    assert body["received"] == vapi_sample(name)["message"]["type"]
    if session_id:
        stored = sessions.read_export(session_id, store=ddb_store)
        assert stored is not None and stored.status == "completed"
        assert stored.vapi_metadata["call_id"] == vapi_sample(name)["message"]["call"]["id"]


def test_the_stored_event_is_accepted(vapi, ddb_store) -> None:
    body = answer(vapi(VAPI_EVENT))
    assert (body["outcome"], body["session_id"]) == ("created", "jacob_miller_20260120_1605")


def test_a_redelivered_report_is_200_duplicate_and_stored_once(vapi, ddb_store) -> None:
    first = answer(vapi(VAPI_EVENT))
    again = answer(vapi(VAPI_EVENT))
    assert (again["outcome"], again["session_id"]) == ("duplicate", first["session_id"])


def test_concurrent_redeliveries_are_stored_once(vapi, ddb_store) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        barrier.wait()
        outcomes.append(answer(vapi(VAPI_EVENT))["outcome"])

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created"] + ["duplicate"] * 5
    listed, _ = ddb_store.list_student_sessions(
        "jacob_miller", start=datetime(2026, 1, 20, tzinfo=UTC), end=datetime(2026, 1, 21, tzinfo=UTC)
    )
    assert len(listed) == 1


def test_concurrent_reports_of_two_calls_in_one_session_are_both_kept(vapi, ddb_store) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    [logged] = sessions.log_interactions(
        [call("emma_smith", start)], store=ddb_store, now=start, timeout=runtime.get_config().session_tracking.timeout
    )
    bodies = []
    for n in range(2):
        body = copy.deepcopy(vapi_sample("end-of-call-report.full"))
        message = body["message"]
        message["call"]["id"] = f"parallel-call-{n}"
        message["call"]["assistantOverrides"]["metadata"]["session_id"] = logged.session_id
        message["artifact"]["transcript"] = f"AI: call number {n}"
        message["startedAt"] = (start + timedelta(minutes=n * 4)).isoformat()
        message["endedAt"] = (start + timedelta(minutes=n * 4 + 3)).isoformat()
        bodies.append(body)
    barrier = threading.Barrier(2)
    results: list[dict[str, Any]] = []

    def deliver(body: dict[str, Any]) -> None:
        barrier.wait()
        results.append(answer(vapi(vapi_event(body))))

    threads = [threading.Thread(target=deliver, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r["outcome"] for r in results} == {"merged"}
    conversation = sessions.read_export(logged.session_id, store=ddb_store).conversation
    assert sorted(conversation["call_ids"]) == ["parallel-call-0", "parallel-call-1"]
    assert "AI: call number 0" in conversation["transcript"] and "AI: call number 1" in conversation["transcript"]


# ---------------------------------------------------------------- authentication
def _hmac_headers(body: bytes, *, stamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = str(stamp if stamp is not None else int(time.time()))
    signature = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "x-signature": signature, "x-timestamp": ts}


@pytest.mark.parametrize(
    "headers",
    [{"authorization": f"Bearer {SECRET}"}, {"x-vapi-secret": SECRET}, {"X-Vapi-Signature": SECRET}],
    ids=["bearer", "x-vapi-secret", "x-vapi-signature"],
)
def test_every_shared_secret_header_is_accepted(vapi, headers) -> None:
    assert vapi(vapi_event(headers=headers))["statusCode"] == 200


def test_hmac_over_the_raw_body_is_accepted(vapi) -> None:
    raw = VAPI_EVENT["body"]
    assert vapi(vapi_event(headers=_hmac_headers(raw.encode())))["statusCode"] == 200


def test_hmac_is_checked_against_the_raw_bytes_of_a_base64_body(vapi) -> None:
    raw = VAPI_EVENT["body"]
    assert vapi(vapi_event(headers=_hmac_headers(raw.encode()), b64=True))["statusCode"] == 200


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing credentials"),
        ({"authorization": "Bearer not-the-secret"}, "invalid bearer token"),
        ({"x-vapi-secret": "not-the-secret"}, "invalid x-vapi-secret"),
        ({"authorization": "Bearer test-ingest-token"}, "invalid bearer token"),
    ],
)
def test_wrong_or_missing_secret_is_401_problem(vapi, headers, detail) -> None:
    response = vapi(vapi_event(headers=headers))
    assert response["statusCode"] == 401
    assert detail in problem(response)["detail"]
    assert "WWW-Authenticate" in response["headers"]


def test_a_replayed_hmac_signature_is_401(vapi) -> None:
    raw = VAPI_EVENT["body"].encode()
    response = vapi(vapi_event(headers=_hmac_headers(raw, stamp=int(time.time()) - 3600)))
    assert response["statusCode"] == 401 and "replay window" in problem(response)["detail"]


def test_auth_is_checked_before_the_body_is_parsed(vapi) -> None:
    assert vapi(vapi_event(raw="{not json", headers={}))["statusCode"] == 401


# ------------------------------------------------------------------- bad input
def test_malformed_json_is_400(vapi) -> None:
    response = vapi(vapi_event(raw='{"message": '))
    assert response["statusCode"] == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [({"message": {}}, "message.type"), ({"msg": {}}, "message"), ([1, 2], "body")],
)
def test_schema_violations_are_422_naming_the_field(vapi, body, field) -> None:
    response = vapi(vapi_event(body))
    assert response["statusCode"] == 422
    assert field in problem(response)["detail"]


def test_a_body_over_six_megabytes_is_413(vapi) -> None:
    response = vapi(vapi_event(raw=" " * (6 * 1024 * 1024 + 1)))
    assert response["statusCode"] == 413


def test_a_five_megabyte_transcript_is_accepted_and_read_back_whole(vapi, ddb_store, blobs) -> None:
    body = json.loads(VAPI_EVENT["body"])
    text = "\n".join(f"User: {i} {'ü' * 40} {'word ' * 40}" for i in range(20_000))
    body["message"]["artifact"]["transcript"] = text
    raw = json.dumps(body, ensure_ascii=False)
    assert 4 * 1024 * 1024 < len(raw.encode()) < 6 * 1024 * 1024
    result = answer(vapi(vapi_event(raw=raw)))
    stored = sessions.read_export(result["session_id"], store=ddb_store, blobs=blobs)
    assert stored.conversation["transcript"] == text
    assert stored.conversation["word_count"] == len(text.split()) - 20_000  # without the "User:" labels


# --------------------------------------------------------------------- generic
def test_generic_session_data_is_stored(generic, ddb_store) -> None:
    body = answer(generic(GENERIC_EVENT))
    assert (body["outcome"], body["session_id"], body["strategy"]) == (
        "created",
        "emma_smith_20260117_1430",
        "student_id",
    )
    stored = sessions.read_export(body["session_id"], store=ddb_store)
    assert stored.conversation["transcript"] == "AI: Hi Emma! Fractions today?\nUser: Yes please."
    assert stored.conversation["source"] == "generic" and stored.conversation["call_duration"] == 840


def test_generic_endpoint_needs_the_ingest_token_not_the_vapi_secret(generic) -> None:
    event = copy.deepcopy(GENERIC_EVENT) | {"headers": {"authorization": f"Bearer {SECRET}"}}
    assert generic(event)["statusCode"] == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [({"platform": "zoom"}, "platform"), ({"started_at": "soon"}, "started_at"), ({"platform": None}, "platform")],
)
def test_generic_bad_bodies_are_422_naming_the_field(generic, change, field) -> None:
    body = {k: v for k, v in (json.loads(GENERIC_EVENT["body"]) | change).items() if v is not None}
    response = generic(copy.deepcopy(GENERIC_EVENT) | {"body": json.dumps(body)})
    assert response["statusCode"] == 422
    assert problem(response)["field"] == field
