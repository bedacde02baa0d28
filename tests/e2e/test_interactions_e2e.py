"""The local stack over real HTTP: what `make run` serves."""

from __future__ import annotations

import json
import re

import pytest

TOKEN = "e2e-ingest-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def post(http, body, headers=AUTH):
    return http.post("/interactions", content=json.dumps(body), headers=headers)


def test_health_and_openapi_are_public(http) -> None:
    assert http.get("/health").json()["status"] == "ok"
    document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/interactions" in document["paths"]


def test_eleven_minute_gap_starts_a_new_session(http) -> None:
    first = post(
        http, {"student_id": "e2e_emma", "function": "get_student_context", "timestamp": "2026-01-17T14:30:05Z"}
    )
    second = post(http, {"student_id": "e2e_emma", "function": "get_progress", "timestamp": "2026-01-17T14:35:05Z"})
    third = post(http, {"student_id": "e2e_emma", "function": "get_progress", "timestamp": "2026-01-17T14:46:06Z"})
    assert [r.status_code for r in (first, second, third)] == [202, 202, 202]
    assert first.json()["session_id"] == second.json()["session_id"] == "e2e_emma_20260117_1430"
    assert third.json() | {"interaction_id": None} == {
        "session_id": "e2e_emma_20260117_1446",
        "interaction_id": None,
        "new_session": True,
        "duplicate": False,
    }


def test_form_encoded_curl_body_is_read_as_json(http) -> None:
    response = http.post(
        "/interactions",
        content='{"student_id": "e2e_curl", "function": "f"}',
        headers=AUTH | {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 202


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "probe_1", path)


TOKENS = {"ingest": TOKEN, "read": "e2e-read-token", "admin": "e2e-admin-token"}
RANK = {"ingest": 1, "read": 2, "admin": 3}

# The contract's scope table (CONTRACT.md v2, "Identity and access"), route by route. A route
# added to template.yaml must be added here: a GET defaults to `read` (the contract's "every GET
# of the read API and /ui"); any other new route fails until its scope is written down.
ROUTE_SCOPES: dict[str, str | None] = {
    "GET /health": None,
    "GET /openapi.json": None,
    "POST /interactions": "ingest",
    "POST /webhook/session-data": "ingest",
    "POST /sessions/{session_id}/analyze": "read",
    "POST /ui/sign-in": "read",
    "DELETE /students/{student_id}": "admin",
    "POST /sessions/{session_id}/assign": "admin",
    "POST /ui/review/{session_id}/assign": "admin",  # the review queue's form post
    "GET /audit": "admin",
    "GET /keys": "admin",
    "POST /keys": "admin",
    "DELETE /keys/{name}": "admin",
}
OWN_SECRET = ("/webhook/vapi/", "/webhook/retell", "/webhook/elevenlabs")
"""Platform webhooks keep their own secrets: no scope token opens them."""


def _expected_scope(method: str, path: str) -> str | None:
    key = f"{method} {path}"
    if key in ROUTE_SCOPES:
        return ROUTE_SCOPES[key]
    assert method == "GET", f"{key}: a new route - add its scope (contract table) to ROUTE_SCOPES"
    return "admin" if path.startswith(("/audit", "/keys")) else "read"


def test_every_route_needs_exactly_its_contract_scope(local_stack, http) -> None:
    """Driven by template.yaml: each route without a credential, with a wrong one, and with each scope."""
    routes = local_stack.router.routes
    assert len(routes) >= 3
    for route in routes:
        method = "POST" if route.method == "ANY" else route.method
        path = _concrete(route.path)
        response = http.request(method, path, content="{}")
        if route.path in ("/health", "/openapi.json"):
            assert response.status_code == 200, route.route_key
            continue
        assert response.status_code == 401, (route.route_key, response.status_code, response.text)
        if route.path != "/ui/sign-in":  # a browser form post answers the form again
            assert response.headers["content-type"] == "application/problem+json"
        wrong = http.request(method, path, content="{}", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401, route.route_key
        if route.path.startswith(OWN_SECRET):
            for scope, token in TOKENS.items():
                answer = http.request(method, path, content="{}", headers={"Authorization": f"Bearer {token}"})
                assert answer.status_code == 401, (route.route_key, scope, "a scope token is not a webhook secret")
            continue
        needed = _expected_scope(method, route.path)
        assert needed is not None
        for scope, token in TOKENS.items():
            answer = http.request(method, path, content="{}", headers={"Authorization": f"Bearer {token}"})
            if RANK[scope] < RANK[needed]:
                assert answer.status_code == 403, (route.route_key, scope, answer.status_code, answer.text)
                problem = answer.json()
                assert answer.headers["content-type"] == "application/problem+json"
                assert problem["required_scope"] == needed and f"'{needed}'" in problem["detail"]
            else:
                assert answer.status_code not in (401, 403), (route.route_key, scope, answer.status_code, answer.text)


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ("{", 400),
        ("\x00\x01", 400),
        ('{"student_id": "x"}', 422),
        ('{"student_id": 5, "function": "f"}', 422),
        ('{"student_id": "x", "function": "f", "is_error": "maybe"}', 422),
        ('{"student_id": "\u00e9l\u00e8ve", "function": "f"}', 422),
        ('{"student_id": "x", "function": "f", "arguments": ' + "[" * 5000 + "]" * 5000 + "}", 422),
        ('{"student_id": "x", "function": "f", "arguments": {"note": "caf\u00e9 \\u0000 \u2603"}}', 202),
        ("null", 422),
        ("", 422),
    ],
)
def test_bad_input_gets_a_4xx_problem_never_a_5xx(http, content, status) -> None:
    response = http.post("/interactions", content=content.encode("utf-8"), headers=AUTH)
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert {"type", "title", "status", "detail"} <= set(response.json())


def test_oversized_bodies_are_413(http) -> None:
    over_limit = json.dumps({"student_id": "x", "function": "f", "arguments": {"a": "x" * (1024 * 1024 + 10)}})
    assert post(http, json.loads(over_limit)).status_code == 413
    huge = b"x" * (6 * 1024 * 1024 + 1)
    assert http.post("/interactions", content=huge, headers=AUTH).status_code == 413
