"""Who may see ``/ui``: the bearer token, once, then a signed HttpOnly cookie.

A browser cannot send ``Authorization`` on a plain navigation, so ``/ui?token=<INGEST_TOKEN>``
signs it in: the gate checks the token (constant time), the page answers with a
cookie ``st_ui = {expiry}.{HMAC-SHA256(token, expiry)}`` (HttpOnly, SameSite=Strict,
``Path=/ui``, ``Secure`` behind HTTPS) and reloads itself without the token in the URL.
The cookie is accepted on ``/ui`` paths only (never on the JSON API), expires after
12 hours, and stops working when the token is rotated. Everything else under ``/ui``
without the cookie or a bearer header is a 401 like every other route.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from session_tracker.config import SecretRef
from session_tracker.errors import ServiceUnavailable, Unauthorized
from session_tracker.http import PUBLIC_PATHS, Gate, check_bearer, header, request_path, tokens_equal

COOKIE = "st_ui"
LIFETIME = timedelta(hours=12)
LOGIN_PARAM = "token"


def is_ui_path(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


def _mac(token: str, expires: int) -> str:
    message = f"tutor-session-tracker ui session {expires}".encode()
    return hmac.new(token.encode("utf-8", "surrogatepass"), message, hashlib.sha256).hexdigest()


def cookie_value(token: str, *, now: datetime) -> str:
    """A signed, expiring cookie value derived from the token (never the token itself)."""
    expires = int((now + LIFETIME).timestamp())
    return f"{expires}.{_mac(token, expires)}"


def cookie_valid(value: str, token: str, *, now: datetime) -> bool:
    """True when ``value`` was made from ``token`` and has not expired."""
    expires_text, _, mac = value.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or not mac:
        return False
    expires = int(expires_text)
    if expires < now.timestamp():
        return False
    return tokens_equal(mac, _mac(token, expires))


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


def access_gate(secret: Callable[[], SecretRef], *, clock: Callable[[], datetime]) -> Gate:
    """The read API's gate: bearer everywhere; on ``/ui`` also the login token or the cookie."""

    def gate(event: dict[str, Any]) -> None:
        path = request_path(event)
        if path in PUBLIC_PATHS:
            return
        ref = secret()
        if not is_ui_path(path) or header(event, "authorization"):
            check_bearer(event, ref)
            return
        expected = ref.get()
        if not expected:
            raise ServiceUnavailable("the ingest token is not configured on the server")
        given = login_token(event)
        if given is not None:
            if tokens_equal(given, expected):
                return
            raise Unauthorized("invalid token")
        cookie = read_cookie(event, COOKIE)
        if cookie and cookie_valid(cookie, expected, now=clock()):
            return
        raise Unauthorized("sign in once with /ui?token=<INGEST_TOKEN>, or send Authorization: Bearer <token>")

    return gate
