"""Every Retell and ElevenLabs sample posted signed to the local stack (what `make run` serves)."""

from __future__ import annotations

import time

import httpx
import pytest
from platform_signing import ELEVENLABS_SECRET, RETELL_API_KEY, signed_headers
from samples import platform_sample_raw

from session_tracker.platforms import elevenlabs, retell

EXPECTED = {
    ("retell", "call_started"): "ignored",
    ("retell", "call_ended.dial_no_answer"): "ignored",
    ("retell", "call_ended.full"): "created",
    ("retell", "call_analyzed"): "merged",
    ("retell", "call_analyzed.phone_inbound"): "created",
    ("elevenlabs", "post_call_transcription.full"): "created",
    ("elevenlabs", "post_call_transcription.phone_twilio"): "created",
    ("elevenlabs", "post_call_audio"): "ignored",
    ("elevenlabs", "call_initiation_failure.sip"): "ignored",
    ("elevenlabs", "call_initiation_failure.twilio"): "ignored",
}


def post(http: httpx.Client, platform: str, raw: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    path = f"/webhook/{platform}"
    sent = headers if headers is not None else signed_headers(path, raw)
    return http.post(path, content=raw, headers={"Content-Type": "application/json", **(sent or {})})


def test_every_sample_gives_its_outcome_and_a_redelivery_is_a_duplicate(http) -> None:
    for (platform, name), outcome in EXPECTED.items():
        raw = platform_sample_raw(platform, name)
        response = post(http, platform, raw)
        assert response.status_code == 200, (name, response.text)
        assert response.json()["outcome"] == outcome, (name, response.json())
        if outcome != "ignored":
            again = post(http, platform, raw).json()
            assert again["outcome"] == "duplicate" and again["session_id"] == response.json()["session_id"]
    shown = http.get("/sessions/emma_smith_20260310_1600", headers={"Authorization": "Bearer e2e-read-token"}).json()
    assert shown["platform"] == "retell"
    assert shown["platform_metadata"]["cost_usd"] == pytest.approx(0.1813)
    assert shown["conversation"]["platform_analysis"]["call_successful"] is True


@pytest.mark.parametrize(
    ("platform", "headers"),
    [
        ("retell", {"Authorization": "Bearer e2e-ingest-token"}),
        ("retell", {"X-Retell-Signature": retell.sign(b"{}", RETELL_API_KEY, int(time.time() * 1000) - 301_000)}),
        ("elevenlabs", {"Authorization": "Bearer e2e-ingest-token"}),
        ("elevenlabs", {"ElevenLabs-Signature": elevenlabs.sign(b"{}", ELEVENLABS_SECRET, int(time.time()) - 1860)}),
    ],
    ids=["retell scope token", "retell stale", "elevenlabs scope token", "elevenlabs stale"],
)
def test_a_scope_token_or_a_stale_signature_is_401_problem(http, platform: str, headers: dict[str, str]) -> None:
    response = post(http, platform, b"{}", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_malformed_signed_body_is_422_naming_the_field(http) -> None:
    response = post(http, "retell", b'{"event": "call_analyzed", "call": {"call_id": ["x"]}}')
    assert response.status_code == 422
    assert "call.call_id" in response.json()["detail"]
