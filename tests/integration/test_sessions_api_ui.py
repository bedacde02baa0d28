"""The session pages under /ui: sign-in with the token once, the cookie, and what the pages show."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from helpers import http_event
from seed_sessions import CALLS, log_calls, seed_emma

from session_tracker.access import Principal, Scope, token_hash
from session_tracker.store import DynamoStore
from session_tracker.ui.auth import COOKIE, cookie_value

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-read+key/with=plus"
INGEST = "test-ingest-token"
T0 = datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)


@pytest.fixture
def ui(ddb_store: DynamoStore, monkeypatch: pytest.MonkeyPatch, wire):
    monkeypatch.setenv("INGEST_TOKEN", INGEST)
    monkeypatch.setenv("READ_TOKEN", TOKEN)
    handler = wire("sessions_api", ddb_store, function_name="SessionsApiFunction")

    def get(
        path: str,
        query: dict[str, str] | None = None,
        *,
        headers: dict[str, str] | None = None,
        cookies: list[str] | None = None,
        method: str = "GET",
        body: str | None = None,
    ) -> dict[str, Any]:
        # As a browser sends them: no content-type unless the test gives one.
        event = http_event(method, path, query=query, cookies=cookies)
        event["headers"] = headers or {}
        event["body"] = body
        return handler(event)

    return get


def signed_in(ui) -> list[str]:
    out = ui("/ui", {"token": TOKEN})
    return [c.split(";")[0] for c in out["cookies"]]


BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_an_api_client_without_a_credential_gets_a_401_problem(ui) -> None:
    for path in ("/ui", "/ui/students/emma_smith", "/ui/sessions/emma_smith_20260117_1430", "/ui/anything"):
        out = ui(path)
        assert out["statusCode"] == 401, path
        assert out["headers"]["Content-Type"] == "application/problem+json"


def test_a_browser_without_a_credential_gets_a_sign_in_form_not_json(ui) -> None:
    out = ui("/ui/students/emma_smith", {"from": "2026-01-01"}, headers=BROWSER)
    assert out["statusCode"] == 401
    assert out["headers"]["Content-Type"].startswith("text/html")
    html = out["body"]
    assert '<form method="post" action="/ui/sign-in">' in html
    assert 'type="password" id="token" name="token"' in html
    assert 'name="next" value="/ui/students/emma_smith?from=2026-01-01"' in html


def _form(**fields: str) -> str:
    return urlencode(fields)


def test_pasting_a_read_key_into_the_form_signs_in_and_returns_to_the_page(ui) -> None:
    out = ui("/ui/sign-in", method="POST", body=_form(token=TOKEN, next="/ui/students/emma_smith"), headers=BROWSER)
    assert out["statusCode"] == 303
    assert out["headers"]["Location"] == "/ui/students/emma_smith"
    (cookie,) = out["cookies"]
    assert cookie.startswith(f"{COOKIE}=") and TOKEN not in cookie
    page = ui("/ui/students/emma_smith", cookies=[cookie.split(";")[0]])
    assert page["statusCode"] == 200


def test_the_form_refuses_a_wrong_key_or_the_ingest_token_with_the_form_again(ui) -> None:
    wrong = ui("/ui/sign-in", method="POST", body=_form(token="guess", next="/ui"))
    assert wrong["statusCode"] == 401 and "unknown credential" in wrong["body"]
    ingest = ui("/ui/sign-in", method="POST", body=_form(token=INGEST, next="/ui"))
    assert ingest["statusCode"] == 403 and "&#x27;read&#x27;" in ingest["body"]
    assert not wrong.get("cookies") and not ingest.get("cookies")


def test_the_form_never_sends_the_browser_to_another_site(ui) -> None:
    out = ui("/ui/sign-in", method="POST", body=_form(token=TOKEN, next="https://evil.example/"))
    assert out["headers"]["Location"] == "/ui"


def test_a_wrong_token_does_not_sign_in(ui) -> None:
    out = ui("/ui", {"token": "guess"})
    assert out["statusCode"] == 401
    assert "cookies" not in out or not out["cookies"]


def test_the_ingest_token_in_the_url_is_403_naming_the_read_scope(ui) -> None:
    out = ui("/ui", {"token": INGEST})
    assert out["statusCode"] == 403
    assert json.loads(out["body"])["required_scope"] == "read"


def test_the_token_in_the_url_sets_an_httponly_strict_cookie_and_a_redirect_drops_it(ui) -> None:
    # the `+` survives: the query is URL-encoded as the banner's link is
    out = ui("/ui/students/emma_smith", {"token": TOKEN, "from": "2026-01-01"})
    assert out["statusCode"] == 303
    assert out["headers"]["Location"] == "/ui/students/emma_smith?from=2026-01-01"
    (cookie,) = out["cookies"]
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert cookie.startswith(f"{COOKIE}=")
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in cookie and "Path=/ui" in cookie
    assert TOKEN not in cookie
    assert out["headers"]["Referrer-Policy"] == "no-referrer"


def test_the_cookie_is_secure_behind_https(ui) -> None:
    out = ui("/ui", {"token": TOKEN}, headers={"x-forwarded-proto": "https"})
    assert "; Secure" in out["cookies"][0]


def test_the_cookie_opens_the_pages_but_not_the_json_api(ui, ddb_store) -> None:
    session_id = seed_emma(ddb_store, T0)
    cookies = signed_in(ui)
    assert ui(f"/ui/sessions/{session_id}", cookies=cookies)["statusCode"] == 200
    assert ui(f"/sessions/{session_id}", cookies=cookies)["statusCode"] == 401


def _read(token: str) -> Principal:
    return Principal(actor="env:read", scope=Scope.READ, credential_hash=token_hash(token))


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        cookie_value(_read(TOKEN), now=datetime.now(UTC) - timedelta(hours=13)),
        cookie_value(_read("an-old-rotated-token"), now=datetime.now(UTC)),
        "99999999999.env:read.deadbeef",
    ],
    ids=["garbage", "expired", "other-token", "forged"],
)
def test_an_expired_forged_or_stale_cookie_is_refused(ui, value) -> None:
    assert ui("/ui", cookies=[f"{COOKIE}={value}"])["statusCode"] == 401


def test_the_bearer_header_opens_the_pages_too(ui) -> None:
    out = ui("/ui", headers={"authorization": f"Bearer {TOKEN}"})
    assert out["statusCode"] == 200
    assert out["headers"]["Content-Type"].startswith("text/html")


def test_the_session_page_shows_calls_transcript_cost_and_analysis(ui, ddb_store) -> None:
    session_id = seed_emma(ddb_store, T0)
    out = ui(f"/ui/sessions/{session_id}", cookies=signed_in(ui))
    html = out["body"]
    assert out["statusCode"] == 200
    for function in {c[1] for c in CALLS}:
        assert f'<span class="label">{function}<small>' in html
    assert html.count('class="marker') == len(CALLS)
    assert "practise some fractions today?" in html
    assert "$0.1977" in html and "customer-ended-call" in html
    assert "solved three of four" in html
    assert "voice call 14:30:12 to 14:42:45" in html
    assert '<span class="chip data">lesson_plan</span>' in html


def test_the_pages_carry_a_strict_csp_whose_nonce_is_the_scripts(ui, ddb_store) -> None:
    session_id = seed_emma(ddb_store, T0)
    out = ui(f"/ui/sessions/{session_id}", cookies=signed_in(ui))
    csp = out["headers"]["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<script nonce="{nonce}">' in out["body"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert out["headers"]["Cache-Control"] == "no-store"


def test_stored_text_is_escaped_in_the_page(ui, ddb_store) -> None:
    evil = [(0, "<script>alert(1)</script>", ["<img src=x onerror=alert(1)>"], [], {"q": "</pre><b>"}, 1, 1, False)]
    session_id = log_calls(ddb_store, "mallory", T0, evil)
    html = ui(f"/ui/sessions/{session_id}", cookies=signed_in(ui))["body"]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_an_unknown_session_page_is_an_html_404(ui) -> None:
    out = ui("/ui/sessions/nobody_20260117_1430", cookies=signed_in(ui))
    assert out["statusCode"] == 404
    assert "No session" in out["body"]


def _table_links(html: str) -> list[str]:
    table = re.search(r'<table class="list sessions">.*?</table>', html, re.S)
    return re.findall(r'href="/ui/sessions/([^"]+)"', table.group(0)) if table else []


def test_the_student_page_lists_sessions_newest_first_with_an_older_link(ui, ddb_store) -> None:
    ids = [log_calls(ddb_store, "pat", T0 + timedelta(hours=h), CALLS[:1]) for h in range(25)]
    cookies = signed_in(ui)
    html = ui("/ui/students/pat", cookies=cookies)["body"]
    assert _table_links(html) == list(reversed(ids))[:20]
    older = re.search(r'href="(/ui/students/pat\?[^"]+)"', html).group(1).replace("&amp;", "&")
    path, _, query = older.partition("?")
    rest = ui(path, dict(p.split("=", 1) for p in query.split("&")), cookies=cookies)["body"]
    assert _table_links(rest) == list(reversed(ids))[20:]


def test_the_find_forms_redirect_to_the_student_or_session(ui) -> None:
    cookies = signed_in(ui)
    student = ui("/ui", {"find": "emma_smith"}, cookies=cookies)
    session = ui("/ui", {"session": "emma_smith_20260117_1430"}, cookies=cookies)
    assert (student["statusCode"], student["headers"]["Location"]) == (303, "/ui/students/emma_smith")
    assert (session["statusCode"], session["headers"]["Location"]) == (303, "/ui/sessions/emma_smith_20260117_1430")
    assert ui("/ui", {"find": "not/a/student"}, cookies=cookies)["statusCode"] == 422


def test_the_start_page_lists_recent_sessions_of_every_student(ui, ddb_store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    ids = [log_calls(ddb_store, s, now - timedelta(hours=3), CALLS[:1]) for s in ("ana", "ben")]
    html = ui("/ui", cookies=signed_in(ui))["body"]
    assert set(re.findall(r'href="/ui/sessions/([^"]+)"', html)) == set(ids)


def test_signing_out_expires_the_cookie(ui) -> None:
    out = ui("/ui/logout", cookies=signed_in(ui))
    assert out["statusCode"] == 200
    assert "Max-Age=0" in out["cookies"][0]
