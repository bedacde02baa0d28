"""Who may see ``/ui``: a read (or admin) credential, once, then a signed HttpOnly cookie.

A browser cannot send ``Authorization`` on a plain navigation, so an unauthenticated
browser gets a sign-in form (paste a read key; it is posted to ``POST /ui/sign-in``,
never put in a URL). ``/ui?token=<key>`` (the link ``make run`` prints) signs in too
and answers a 303 to the same page without the token, so it leaves the address bar
at once.

The cookie is ``st_ui = {expires}.{ref}.{HMAC-SHA256(key=sha256(credential), ref expires)}``
where ``ref`` names the credential (``env:read``, ``env:admin`` or the API key's name).
It is HttpOnly, SameSite=Strict, ``Path=/ui``, ``Secure`` behind HTTPS, accepted on
``/ui`` paths only (never on the JSON API) and expires after 12 hours. It is checked
against the credential on every request: rotating an env token or revoking the key
(within the key cache's 30 s) ends the sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from session_tracker.access import (
    KEY_NAME_PATTERN,
    SIGN_IN_PATH,
    Authenticator,
    Principal,
    Scope,
    attach,
    required_scope,
    secrets_equal,
)
from session_tracker.errors import DomainError, Forbidden, Unauthorized
from session_tracker.http import Gate, bearer_token, body_bytes, header, request_method, request_path, scope_gate
from session_tracker.ui import signin

COOKIE = "st_ui"
LIFETIME = timedelta(hours=12)
LOGIN_PARAM = "token"
_ENV_REF = "env:"


def is_ui_path(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


def _mac(credential_hash: str, ref: str, expires: int) -> str:
    message = f"tutor-session-tracker ui session {ref} {expires}".encode()
    return hmac.new(credential_hash.encode(), message, hashlib.sha256).hexdigest()


def credential_ref(principal: Principal) -> str:
    """What the cookie names: the key's name, or ``env:<scope>``."""
    return principal.key_name or f"{_ENV_REF}{principal.scope.value}"


def cookie_value(principal: Principal, *, now: datetime) -> str:
    """A signed, expiring cookie bound to the credential (never the credential itself)."""
    expires = int((now + LIFETIME).timestamp())
    ref = credential_ref(principal)
    return f"{expires}.{ref}.{_mac(principal.credential_hash, ref, expires)}"


def principal_from_cookie(value: str, auth: Authenticator, *, now: datetime) -> Principal | None:
    """The signed-in caller when ``value`` is a live cookie of a credential that still exists."""
    expires_text, _, rest = value.partition(".")
    ref, _, mac = rest.rpartition(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or not ref or not mac:
        return None
    expires = int(expires_text)
    if expires < now.timestamp():
        return None
    principal: Principal | None = None
    if ref.startswith(_ENV_REF):
        try:
            scope = Scope(ref.removeprefix(_ENV_REF))
        except ValueError:
            return None
        digest = auth.env_hash(scope)
        if digest is not None:
            principal = Principal(actor=f"env:{scope.value}", scope=scope, credential_hash=digest)
    else:
        if not re.match(KEY_NAME_PATTERN, ref):
            return None
        record = auth.key_by_name(ref)
        if record is not None:
            principal = Principal(
                actor=record.name, scope=record.scope, credential_hash=record.key_hash, key_name=record.name
            )
    if principal is None or not secrets_equal(mac, _mac(principal.credential_hash, ref, expires)):
        return None
    return principal


def read_cookie(event: dict[str, Any], name: str) -> str | None:
    """A cookie from an API Gateway v2 event (``cookies`` list, or the Cookie header)."""
    pairs: list[str] = list(event.get("cookies") or [])
    pairs += [p for p in (header(event, "cookie") or "").split(";") if p.strip()]
    for pair in pairs:
        key, _, value = pair.strip().partition("=")
        if key == name:
            return value
    return None


def login_token(event: dict[str, Any]) -> str | None:
    return (event.get("queryStringParameters") or {}).get(LOGIN_PARAM)


def is_https(event: dict[str, Any]) -> bool:
    return (header(event, "x-forwarded-proto") or "").lower() == "https"


def wants_html(event: dict[str, Any]) -> bool:
    """A browser navigation (``Accept: text/html``), as opposed to an API client."""
    return "text/html" in (header(event, "accept") or "").lower()


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a ``/ui`` path of this site, nothing else."""
    if not value or not is_ui_path(value.split("?", 1)[0]) or value.startswith("//") or "\\" in value:
        return "/ui"
    if any(ord(c) < 0x21 for c in value) or value.split("?", 1)[0] == SIGN_IN_PATH:
        return "/ui"
    return value


def _without_token(event: dict[str, Any]) -> str:
    rest = [(k, v) for k, v in parse_qsl(event.get("rawQueryString") or "", keep_blank_values=True) if k != LOGIN_PARAM]
    return request_path(event) + (f"?{urlencode(rest)}" if rest else "")


def _form(event: dict[str, Any]) -> dict[str, str]:
    try:
        text = body_bytes(event).decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return dict(parse_qsl(text, keep_blank_values=True))


def ui_gate(authenticator: Callable[[], Authenticator], *, clock: Callable[[], datetime]) -> Gate:
    """The read API's gate: bearer scopes everywhere; on ``/ui`` also sign-in and the cookie."""
    api_gate = scope_gate(authenticator)

    def gate(event: dict[str, Any]) -> dict[str, Any] | None:
        path = request_path(event)
        if not is_ui_path(path) or bearer_token(event) is not None:
            return api_gate(event)
        auth = authenticator()
        now = clock()
        secure = is_https(event)
        if path == SIGN_IN_PATH and request_method(event) == "POST":
            form = _form(event)
            target = safe_next(form.get("next"))
            try:
                principal = auth.require((form.get("token") or "").strip() or None, Scope.READ)
            except DomainError as ex:
                return signin.form_response(target, error=ex.detail, status=ex.status)
            return signin.signed_in(target, cookie_value(principal, now=now), secure=secure, max_age=LIFETIME)
        given = login_token(event)
        if given is not None:
            target = _without_token(event)
            try:
                principal = auth.require(given.strip() or None, Scope.READ)
            except DomainError as ex:
                if wants_html(event):
                    return signin.form_response(target, error=ex.detail, status=ex.status)
                raise
            return signin.signed_in(target, cookie_value(principal, now=now), secure=secure, max_age=LIFETIME)
        cookie = read_cookie(event, COOKIE)
        signed = principal_from_cookie(cookie, auth, now=now) if cookie else None
        if signed is not None:
            needed = required_scope(request_method(event), path) or Scope.READ
            if not signed.scope.allows(needed):
                raise Forbidden(
                    f"signed in as {signed.actor} (scope {signed.scope.value!r}); this page needs scope {needed.value!r}",
                    scope=needed.value,
                )
            attach(event, signed)
            return None
        if wants_html(event):
            expired = "your sign-in has expired or its key was revoked; sign in again" if cookie else None
            return signin.form_response(_without_token(event), error=expired, status=401)
        raise Unauthorized("sign in at /ui with a read key, or send Authorization: Bearer <token>")

    return gate
