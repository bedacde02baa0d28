"""Scopes, credentials, the route → scope rule and the /ui sign-in cookie."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from session_tracker.access import Authenticator, KeyRecord, Principal, Scope, required_scope, token_hash
from session_tracker.config import SecretRef
from session_tracker.errors import Forbidden, Unauthorized
from session_tracker.ui.auth import cookie_value, principal_from_cookie, read_cookie, safe_next
from session_tracker_local.tokens import resolve_tokens

T0 = datetime(2026, 1, 17, 14, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _auth(clock=None, keys=None, **tokens: str) -> Authenticator:
    env = {
        Scope.INGEST: [SecretRef(value=tokens.get("ingest", "ing"))],
        Scope.READ: [SecretRef(value=tokens.get("read", "rd"))],
        Scope.ADMIN: [SecretRef(value=tokens.get("admin", "adm"))],
    }
    return Authenticator(env, keys=(lambda: keys) if keys else None, clock=clock or Clock())


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/health", None),
        ("GET", "/openapi.json", None),
        ("POST", "/interactions", Scope.INGEST),
        ("POST", "/webhook/session-data", Scope.INGEST),
        ("GET", "/sessions/emma_20260117_1430", Scope.READ),
        ("GET", "/students/emma/sessions", Scope.READ),
        ("GET", "/sessions", Scope.READ),
        ("GET", "/ui", Scope.READ),
        ("GET", "/ui/students/emma", Scope.READ),
        ("POST", "/ui/sign-in", Scope.READ),
        ("POST", "/sessions/emma_20260117_1430/analyze", Scope.READ),
        ("DELETE", "/students/emma", Scope.ADMIN),
        ("POST", "/sessions/emma_20260117_1430/assign", Scope.ADMIN),
        ("GET", "/audit", Scope.ADMIN),
        ("GET", "/keys", Scope.ADMIN),
        ("POST", "/keys", Scope.ADMIN),
        ("POST", "/some/new/route", Scope.ADMIN),
    ],
)
def test_each_route_needs_the_least_scope_of_the_contract_and_unknown_writes_need_admin(method, path, scope) -> None:
    assert required_scope(method, path) == scope


def test_a_higher_scope_may_do_what_a_lower_one_may() -> None:
    assert Scope.ADMIN.allows(Scope.READ) and Scope.ADMIN.allows(Scope.INGEST) and Scope.READ.allows(Scope.INGEST)
    assert not Scope.INGEST.allows(Scope.READ) and not Scope.READ.allows(Scope.ADMIN)


def test_env_tokens_authenticate_as_env_scope_actors() -> None:
    auth = _auth()
    assert auth.require("rd", Scope.READ).actor == "env:read"
    assert auth.require("adm", Scope.READ).actor == "env:admin"
    assert auth.require("ing", Scope.INGEST).scope is Scope.INGEST


def test_the_ingest_token_cannot_read_and_the_403_names_the_missing_scope() -> None:
    with pytest.raises(Forbidden) as caught:
        _auth().require("ing", Scope.READ)
    assert caught.value.status == 403
    assert caught.value.extra == {"required_scope": "read"}
    assert "'read'" in caught.value.detail


@pytest.mark.parametrize("token", [None, "", "nope", "rd ", "stk_unknown"])
def test_missing_or_unknown_credentials_are_401(token) -> None:
    with pytest.raises(Unauthorized):
        _auth().require(token, Scope.INGEST)


class Keys:
    def __init__(self) -> None:
        self.records: dict[str, KeyRecord] = {}
        self.lookups = 0
        self.touches: list[tuple[str, datetime]] = []

    def add(self, token: str, name: str, scope: Scope) -> None:
        self.records[token_hash(token)] = KeyRecord(name=name, scope=scope, key_hash=token_hash(token))

    def find_key(self, key_hash: str) -> KeyRecord | None:
        self.lookups += 1
        return self.records.get(key_hash)

    def find_key_by_name(self, name: str) -> KeyRecord | None:
        self.lookups += 1
        return next((r for r in self.records.values() if r.name == name), None)

    def touch_key(self, name: str, *, at: datetime) -> None:
        self.touches.append((name, at))

    def revoke(self, name: str) -> None:
        for digest, record in list(self.records.items()):
            if record.name == name:
                self.records[digest] = KeyRecord(name, record.scope, record.key_hash, revoked=True)


def test_a_named_key_is_cached_and_its_revocation_is_seen_within_a_minute() -> None:
    clock, keys = Clock(), Keys()
    keys.add("stk_tutor1", "tutor1", Scope.READ)
    auth = _auth(clock, keys)
    assert auth.require("stk_tutor1", Scope.READ).actor == "tutor1"
    auth.require("stk_tutor1", Scope.READ)
    assert keys.lookups == 1, "a warm process does not read the table per request"
    keys.revoke("tutor1")
    clock.now += timedelta(seconds=59)
    with pytest.raises(Unauthorized):
        auth.require("stk_tutor1", Scope.READ)


def test_last_used_is_written_at_most_once_per_few_minutes() -> None:
    clock, keys = Clock(), Keys()
    keys.add("stk_mcp", "mcp-server", Scope.INGEST)
    auth = _auth(clock, keys)
    for _ in range(50):
        auth.require("stk_mcp", Scope.INGEST)
        clock.now += timedelta(seconds=10)
    # 500 s of requests: one write at the start, one after five minutes
    assert [name for name, _ in keys.touches] == ["mcp-server", "mcp-server"]


def test_a_bearer_that_is_not_a_key_never_reaches_the_table() -> None:
    keys = Keys()
    with pytest.raises(Unauthorized):
        _auth(keys=keys).require("random-garbage", Scope.READ)
    assert keys.lookups == 0


def _env_principal(auth: Authenticator, token: str) -> Principal:
    principal = auth.authenticate(token)
    assert principal is not None
    return principal


def test_the_cookie_is_bound_to_the_credential_and_expires() -> None:
    auth = _auth()
    value = cookie_value(_env_principal(auth, "rd"), now=T0)
    assert "rd" not in value.split(".")[-1]
    found = principal_from_cookie(value, auth, now=T0 + timedelta(hours=11))
    assert found is not None and found.actor == "env:read"
    assert principal_from_cookie(value, auth, now=T0 + timedelta(hours=13)) is None
    assert principal_from_cookie(value.replace(".", ".0", 1), auth, now=T0) is None
    assert principal_from_cookie(value, _auth(read="rotated"), now=T0) is None, "rotating the token ends it"


def test_revoking_the_key_ends_its_browser_sign_in() -> None:
    clock, keys = Clock(), Keys()
    keys.add("stk_tutor2", "tutor2", Scope.READ)
    auth = _auth(clock, keys)
    value = cookie_value(_env_principal(auth, "stk_tutor2"), now=T0)
    assert principal_from_cookie(value, auth, now=T0) is not None
    keys.revoke("tutor2")
    clock.now += timedelta(seconds=31)
    assert principal_from_cookie(value, auth, now=clock.now) is None


def test_cookies_are_read_from_the_event_list_or_the_header() -> None:
    assert read_cookie({"cookies": ["a=1", "st_ui=v1"]}, "st_ui") == "v1"
    assert read_cookie({"headers": {"Cookie": "a=1; st_ui=v2"}}, "st_ui") == "v2"
    assert read_cookie({"headers": {}}, "st_ui") is None


@pytest.mark.parametrize(
    ("given", "target"),
    [
        ("/ui/students/emma?from=2026-01-01", "/ui/students/emma?from=2026-01-01"),
        ("https://evil.example/ui", "/ui"),
        ("//evil.example/ui", "/ui"),
        ("/uix", "/ui"),
        ("/ui/sign-in", "/ui"),
        (None, "/ui"),
    ],
)
def test_after_sign_in_the_browser_only_goes_to_a_page_of_this_site(given, target) -> None:
    assert safe_next(given) == target


def test_generated_local_tokens_are_kept_with_the_data_readable_by_the_owner_only(tmp_path) -> None:
    first = resolve_tokens({}, env={}, data_dir=tmp_path)
    again = resolve_tokens({}, env={}, data_dir=tmp_path)
    assert again.values == first.values
    assert set(again.sources.values()) == {"file"}
    assert stat.S_IMODE(os.stat(tmp_path / "tokens.json").st_mode) == 0o600


def test_a_token_from_the_environment_wins_and_is_not_written(tmp_path) -> None:
    resolve_tokens({}, env={}, data_dir=tmp_path)
    tokens = resolve_tokens({}, env={"READ_TOKEN": "mine+/="}, data_dir=tmp_path)
    assert tokens.values["READ_TOKEN"] == "mine+/="
    assert tokens.sources["READ_TOKEN"] == "env"
    assert "mine+/=" not in (tmp_path / "tokens.json").read_text()
