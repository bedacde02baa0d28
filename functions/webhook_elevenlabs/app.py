"""POST /webhook/elevenlabs: ElevenLabs Agents post-call webhooks (post_call_transcription merged)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from session_tracker import coldstart
from session_tracker.api import Api
from session_tracker.errors import NotFound
from session_tracker.http import body_bytes, guarded
from session_tracker.matching import WebhookResult
from session_tracker.observability import logger, metrics, tracer
from session_tracker.platforms import elevenlabs
from session_tracker.runtime import deps
from session_tracker.webhooks import receive

app = Api()


@app.post(
    "/webhook/elevenlabs",
    body=elevenlabs.ElevenEnvelope,
    returns=WebhookResult,
    status_code=200,
    summary="ElevenLabs Agents post-call webhooks",
    description=(
        "Any ElevenLabs post-call webhook. post_call_transcription is merged into the matching session; "
        "post_call_audio and call_initiation_failure (a call that never connected) are acknowledged and "
        "not stored. Signed by ElevenLabs: ElevenLabs-Signature t=<unix s>,v0=<hex HMAC-SHA256("
        "ELEVENLABS_WEBHOOK_SECRET, '{t}.{raw body}')>, 30 minute window. Redeliveries answer outcome "
        "'duplicate' and change nothing."
    ),
    tags=["webhooks"],
    responses={200: {"description": "Accepted (merged, created, ignored or duplicate)"}},
)
def elevenlabs_event(body: elevenlabs.ElevenEnvelope, raw: Any) -> WebhookResult:
    event = elevenlabs.adapter.parse(raw)
    return receive(event, deps=deps(), now=datetime.now(UTC), received_metric="ElevenLabsEvents")


def _gate(event: dict[str, Any]) -> None:
    settings = deps().config.webhooks.elevenlabs
    if not settings.enabled:
        raise NotFound("the ElevenLabs webhook is disabled (webhooks.elevenlabs.enabled)")
    elevenlabs.verify_signature(
        {k.lower(): v for k, v in (event.get("headers") or {}).items()},
        body_bytes(event),
        secret=settings.webhook_secret.get(),
        now=datetime.now(UTC),
        tolerance=timedelta(seconds=settings.tolerance_seconds),
    )


@coldstart.handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return guarded(app, event, context, gate=_gate, max_body=lambda: deps().config.webhooks.elevenlabs.max_body_bytes)


__all__ = ["app", "lambda_handler"]
