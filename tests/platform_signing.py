"""Sign a body for the signed platform webhooks of the e2e local stack (conftest's secrets)."""

from __future__ import annotations

import time

RETELL_API_KEY = "e2e-retell-api-key"
ELEVENLABS_SECRET = "e2e-elevenlabs-secret"


def signed_headers(path: str, body: bytes) -> dict[str, str] | None:
    """The signature header Retell / ElevenLabs would send with ``body`` to ``path`` (else ``None``)."""
    from session_tracker.platforms import elevenlabs, retell

    if path == "/webhook/retell":
        return {"X-Retell-Signature": retell.sign(body, RETELL_API_KEY, int(time.time() * 1000))}
    if path == "/webhook/elevenlabs":
        return {"ElevenLabs-Signature": elevenlabs.sign(body, ELEVENLABS_SECRET, int(time.time()))}
    return None
