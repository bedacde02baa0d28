"""Named API keys: create (shown once), list (never the key), revoke, scopes, revocation across warm processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from session_tracker import apikeys
from session_tracker.access import Authenticator, Scope, token_hash
from session_tracker.config import SecretRef
from session_tracker.errors import Conflict, Forbidden, NotFound, Unauthorized
from session_tracker.store.fake import InMemoryStore

T0 = datetime(2026, 12, 4, 18, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _auth(store: InMemoryStore, clock: Clock) -> Authenticator:
    env = {Scope.ADMIN: [SecretRef(value="adm")]}
    return Authenticator(env, keys=lambda: store, clock=clock)


def _create(store: InMemoryStore, name: str, scope: str, **kw) -> apikeys.KeyCreated:
    return apikeys.create_key(apikeys.KeyCreate(name=name, scope=scope), store=store, now=T0, **kw)


def test_a_created_key_is_shown_once_and_only_its_hash_is_stored() -> None:
    store = InMemoryStore()
    created = _create(store, "tutor-anna", "read")
    assert created.key.startswith("stk_") and len(created.key) >= 40
    (record,) = store.list_keys()
    assert record.key_hash == token_hash(created.key)
    assert created.key not in repr(store.__dict__)
    listed = apikeys.list_keys(store=store).model_dump(mode="json")
    assert listed == {
        "keys": [
            {
                "name": "tutor-anna",
                "scope": "read",
                "created_at": "2026-12-04T18:30:00Z",
                "last_used": None,
                "revoked_at": None,
            }
        ]
    }
    assert created.key not in str(listed) and record.key_hash not in str(listed)


def test_named_keys_carry_their_scope() -> None:
    store, clock = InMemoryStore(), Clock()
    auth = _auth(store, clock)
    ingest, read, admin = (_create(store, f"k-{s}", s).key for s in ("ingest", "read", "admin"))
    assert auth.require(ingest, Scope.INGEST).actor == "k-ingest"
    with pytest.raises(Forbidden) as caught:
        auth.require(ingest, Scope.READ)
    assert caught.value.extra == {"required_scope": "read"}
    assert auth.require(read, Scope.READ).scope is Scope.READ
    with pytest.raises(Forbidden):
        auth.require(read, Scope.ADMIN)
    principal = auth.require(admin, Scope.ADMIN)
    assert (principal.actor, principal.key_name) == ("k-admin", "k-admin")
    assert auth.require(admin, Scope.INGEST).scope is Scope.ADMIN


def test_a_revoked_key_is_refused_at_once_where_revoked_and_within_60_s_in_every_warm_process() -> None:
    store, clock = InMemoryStore(), Clock()
    revoking, other = _auth(store, clock), _auth(store, clock)
    key = _create(store, "mcp-server-1", "ingest").key
    assert revoking.require(key, Scope.INGEST).actor == "mcp-server-1"
    assert other.require(key, Scope.INGEST).actor == "mcp-server-1"  # cached now

    apikeys.revoke_key("mcp-server-1", store=store, now=clock(), cache=revoking)
    with pytest.raises(Unauthorized):
        revoking.require(key, Scope.INGEST)
    # another warm process may still hold the key for its cache lifetime (30 s), never 60 s
    refused_after = None
    for second in range(0, 61):
        clock.now = T0 + timedelta(seconds=second)
        try:
            other.require(key, Scope.INGEST)
        except Unauthorized:
            refused_after = second
            break
    assert refused_after is not None and refused_after <= 30


def test_revoking_an_unknown_or_revoked_key_is_404_and_a_revoked_name_can_be_given_again() -> None:
    store, clock = InMemoryStore(), Clock()
    with pytest.raises(NotFound):
        apikeys.revoke_key("nobody", store=store, now=T0)
    first = _create(store, "tutor-ben", "read").key
    with pytest.raises(Conflict):
        _create(store, "tutor-ben", "admin")
    apikeys.revoke_key("tutor-ben", store=store, now=T0)
    with pytest.raises(NotFound):
        apikeys.revoke_key("tutor-ben", store=store, now=T0)
    second = _create(store, "tutor-ben", "read").key
    auth = _auth(store, clock)
    with pytest.raises(Unauthorized):
        auth.require(first, Scope.READ)
    assert auth.require(second, Scope.READ).actor == "tutor-ben"


def test_a_key_created_after_a_failed_lookup_by_name_is_seen_by_the_creating_process() -> None:
    store, clock = InMemoryStore(), Clock()
    auth = _auth(store, clock)
    assert auth.key_by_name("late") is None  # cached as unknown
    _create(store, "late", "read", cache=auth)
    record = auth.key_by_name("late")
    assert record is not None and record.scope is Scope.READ


def test_last_used_is_kept_without_a_write_per_request() -> None:
    store, clock = InMemoryStore(), Clock()
    writes: list[datetime] = []
    touch = store.touch_key

    def counting(name: str, *, at: datetime) -> None:
        writes.append(at)
        touch(name, at=at)

    store.touch_key = counting  # type: ignore[method-assign]
    auth = _auth(store, clock)
    key = _create(store, "tutor-cy", "read").key
    for _ in range(120):  # 20 minutes of a request every 10 s
        auth.require(key, Scope.READ)
        clock.now += timedelta(seconds=10)
    assert len(writes) == 4
    (listed,) = apikeys.list_keys(store=store).keys
    assert listed.last_used == T0 + timedelta(minutes=15)


@pytest.mark.parametrize("name", ["", "has space", "dot.name", "#hash", "x" * 65, "-lead"])
def test_key_names_that_could_break_keys_or_cookies_are_refused(name: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        apikeys.KeyCreate(name=name, scope=Scope.READ)
