"""POST /webhook/vapi/session-complete: every VAPI server message (end-of-call data merged)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from session_tracker import coldstart
from session_tracker.api import Api
from session_tracker.errors import NotFound
from session_tracker.http import BEARER_SCHEME, body_bytes, guarded
from session_tracker.matching import MatchSettings, WebhookResult, ingest_platform_event
from session_tracker.observability import count_platform_delivery, logger, metrics, tracer
from session_tracker.platforms import vapi
from session_tracker.runtime import deps

app = Api()


@app.post(
    "/webhook/vapi/session-complete",
    body=vapi.VapiEnvelope,
    returns=WebhookResult,
    status_code=200,
    summary="VAPI server messages",
    description=(
        "Any VAPI server message. end-of-call-report is merged into the matching session; "
        "status-update with status 'ended' marks the call ended; every other type is acknowledged "
        "and ignored. Authenticate with Authorization: Bearer <VAPI_WEBHOOK_SECRET>, X-Vapi-Secret, "
        "or an HMAC-SHA256 x-signature over '{x-timestamp}.{raw body}'. Redeliveries answer "
        "outcome 'duplicate' and change nothing."
    ),
    security=[BEARER_SCHEME],
    tags=["webhooks"],
    responses={200: {"description": "Accepted (merged, created, ignored or duplicate)"}},
)
def vapi_message(body: vapi.VapiEnvelope, raw: Any) -> WebhookResult:
    event = vapi.adapter.parse(raw)
    result = ingest_platform_event(
        event,
        store=deps().store,
        blobs=deps().blobs,
        now=datetime.now(UTC),
        settings=MatchSettings.from_config(deps().config),
    )
    count_platform_delivery(result, received_metric="VapiMessages")
    logger.info(
        "vapi message",
        extra={
            "message_type": body.message.type,
            "outcome": result.outcome,
            "session_id": result.session_id,
            "strategy": result.strategy,
            "call_id": event.call_id,
        },
    )
    return result


def _gate(event: dict[str, Any]) -> None:
    settings = deps().config.webhooks.vapi
    if not settings.enabled:
        raise NotFound("the VAPI webhook is disabled (webhooks.vapi.enabled)")
    vapi.authenticate(
        {k.lower(): v for k, v in (event.get("headers") or {}).items()},
        body_bytes(event),
        secret=settings.auth_token.get(),
        hmac_secret=settings.hmac_secret.get() if settings.hmac_secret else None,
        signature_header=settings.signature_header,
        timestamp_header=settings.timestamp_header,
        replay_window=timedelta(seconds=settings.replay_window_seconds),
        now=datetime.now(UTC),
    )


@coldstart.handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return guarded(app, event, context, gate=_gate, max_body=lambda: deps().config.webhooks.vapi.max_body_bytes)


__all__ = ["app", "lambda_handler"]
