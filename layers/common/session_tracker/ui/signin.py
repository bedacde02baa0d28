"""The ``/ui`` sign-in form and the responses of signing in.

These are raw API Gateway v2 responses: the gate answers them before routing (a
browser without a credential never reaches a page handler).
"""

from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Any

from session_tracker.access import SIGN_IN_PATH

HTML = "text/html; charset=utf-8"
_HEADERS = {
    "Content-Type": HTML,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'none'; img-src data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;background:#f6f7f9;color:#111;margin:0}"
    "main{max-width:28rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:12px;"
    "box-shadow:0 1px 3px #0002}h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;font-weight:600}"
    "input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;font:inherit;margin:.4rem 0 1rem;"
    "border:1px solid #bbb;border-radius:6px}button{padding:.6rem 1.2rem;font:inherit;border:0;"
    "border-radius:6px;background:#2563eb;color:#fff;cursor:pointer}.error{color:#b91c1c}"
    ".hint{color:#555;font-size:.9rem}"
)


def form_page(target: str, *, error: str | None = None) -> str:
    """Paste a read (or admin) key; it is posted, never put in the address bar."""
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - tutor-session-tracker</title><style>{_STYLE}</style></head>
<body><main>
<h1>tutor-session-tracker: sign in</h1>
{message}
<form method="post" action="{SIGN_IN_PATH}">
<label for="token">Read key</label>
<input type="password" id="token" name="token" autocomplete="current-password" required autofocus
 spellcheck="false" autocapitalize="off">
<input type="hidden" name="next" value="{escape(target, quote=True)}">
<button type="submit">Sign in</button>
</form>
<p class="hint">Paste a key with the <code>read</code> or <code>admin</code> scope: <code>READ_TOKEN</code>
(printed by <code>make run</code>) or a key from <code>session-tracker keys create --scope read</code>.
The sign-in lasts 12 hours, ends when the key is revoked, and <a href="/ui/logout">Sign out</a> ends it now.</p>
</main></body></html>
"""


def form_response(target: str, *, error: str | None = None, status: int = 401) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": dict(_HEADERS),
        "body": form_page(target, error=error),
        "isBase64Encoded": False,
    }


def signed_in(target: str, cookie: str, *, secure: bool, max_age: timedelta) -> dict[str, Any]:
    """303 to ``target`` (which never holds the key), setting the sign-in cookie."""
    attributes = [
        f"st_ui={cookie}",
        "Path=/ui",
        f"Max-Age={int(max_age.total_seconds())}",
        "HttpOnly",
        "SameSite=Strict",
    ]
    if secure:
        attributes.append("Secure")
    return {
        "statusCode": 303,
        "headers": {**_HEADERS, "Location": target},
        "cookies": ["; ".join(attributes)],
        "body": "",
        "isBase64Encoded": False,
    }
