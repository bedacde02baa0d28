"""A JSON array body is a 422 problem naming ``body`` on every body route of template.yaml (#15).

Powertools' resolver validates only the first element of an array against a body that is not
a sequence: ``POST /keys`` with ``[{...}, {...}]`` created the first key and answered 201,
``POST /sessions/{id}/assign`` assigned by the first element. Each route here gets an array
whose first element is a valid body; nothing may be stored. The form routes of ``/ui`` read
forms, and a JSON array is no form: they refuse it too.
"""

from __future__ import annotations

import json

import e2e_helpers as e2e
from e2e_helpers import body_routes
from platform_signing import signed_headers

STUDENT = "array_ava"
VALID: dict[str, object] = {
    "/interactions": {"student_id": STUDENT, "function": "get_student_context"},
    "/sessions/{session_id}/analyze": {},
    "/sessions/{session_id}/assign": {"student_id": STUDENT},
    "/keys": {"name": "array-key", "scope": "read"},
    "/webhook/session-data": {"platform": "generic", "student_id": STUDENT, "call_id": "array-g", "transcript": "hi"},
    "/webhook/vapi/session-complete": {
        "message": {
            "type": "end-of-call-report",
            "call": {"id": "array-v", "assistantOverrides": {"variableValues": {"student_id": STUDENT}}},
            "artifact": {"transcript": "AI: hi"},
        }
    },
    "/webhook/retell": {
        "event": "call_ended",
        "call": {"call_id": "array-r", "metadata": {"student_id": STUDENT}, "transcript": "Agent: hi"},
    },
    "/webhook/elevenlabs": {
        "type": "post_call_transcription",
        "data": {
            "conversation_id": "array-e",
            "conversation_initiation_client_data": {"dynamic_variables": {"student_id": STUDENT}},
            "transcript": [{"role": "agent", "message": "hi"}],
        },
    },
}
FORMS = {"/ui/sign-in", "/ui/review/{session_id}/assign"}


def _headers(path: str, body: bytes) -> dict[str, str]:
    signed = signed_headers(path, body)
    if signed is not None:
        return {**signed, "Content-Type": "application/json"}
    if path.startswith("/webhook/vapi"):
        return {"X-Vapi-Secret": e2e.VAPI_SECRET, "Content-Type": "application/json"}
    return {"Authorization": f"Bearer {e2e.ADMIN_TOKEN}", "Content-Type": "application/json"}


def test_every_body_route_refuses_a_json_array_naming_body(http, store, template) -> None:
    routes = body_routes(template)
    assert {p for _, p in routes} == set(VALID) | FORMS, "a new body route: add a valid body for it here"
    unmatched = "unknown_20260101_1000"
    failures = []
    for method, pattern in routes:
        path = pattern.replace("{session_id}", unmatched)
        element = VALID.get(pattern, {"student_id": STUDENT})
        for sent in ([element, element], [element], [element, {"other": 1}]):
            body = json.dumps(sent).encode()
            response = http.request(method, path, content=body, headers=_headers(pattern, body))
            if pattern in FORMS:
                if response.status_code < 400:
                    failures.append(f"{pattern}: {response.status_code}")
                continue
            problem = response.json() if "json" in response.headers.get("content-type", "") else {}
            if (
                response.status_code != 422
                or "problem+json" not in response.headers.get("content-type", "")
                or "body" not in problem.get("detail", "")
            ):
                failures.append(f"{pattern} {sent!r:.60}: {response.status_code} {response.text[:200]}")
    assert failures == []
    # nothing of any array was stored
    assert store.get_head(STUDENT) is None
    keys = http.get("/keys", headers={"Authorization": f"Bearer {e2e.ADMIN_TOKEN}"})
    assert keys.status_code == 200 and "array-key" not in keys.text
