"""POST /webhook/retell: Retell AI post-call webhooks (call_ended / call_analyzed merged)."""

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
from session_tracker.platforms import retell
from session_tracker.runtime import deps
from session_tracker.webhooks import receive

app = Api()


@app.post(
    "/webhook/retell",
    body=retell.RetellEnvelope,
    returns=WebhookResult,
    status_code=200,
    summary="Retell AI webhooks",
    description=(
        "Any Retell webhook event. call_ended and call_analyzed (both carry the final transcript) are "
        "merged into the matching session, call_analyzed adding Retell's call_analysis; every other event, "
        "and calls that never connected, are acknowledged and not stored. Signed by Retell: "
        "X-Retell-Signature v=<unix ms>,d=<hex HMAC-SHA256(RETELL_API_KEY, raw body + ms)>, 5 minute "
        "window. Redeliveries answer outcome 'duplicate' and change nothing."
    ),
    tags=["webhooks"],
    responses={200: {"description": "Accepted (merged, created, ignored or duplicate)"}},
)
def retell_event(body: retell.RetellEnvelope, raw: Any) -> WebhookResult:
    event = retell.adapter.parse(raw)
    return receive(event, deps=deps(), now=datetime.now(UTC), received_metric="RetellEvents")


def _gate(event: dict[str, Any]) -> None:
    settings = deps().config.webhooks.retell
    if not settings.enabled:
        raise NotFound("the Retell webhook is disabled (webhooks.retell.enabled)")
    retell.verify_signature(
        {k.lower(): v for k, v in (event.get("headers") or {}).items()},
        body_bytes(event),
        api_key=settings.api_key.get(),
        now=datetime.now(UTC),
        tolerance=timedelta(seconds=settings.tolerance_seconds),
    )


@coldstart.handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return guarded(app, event, context, gate=_gate, max_body=lambda: deps().config.webhooks.retell.max_body_bytes)


__all__ = ["app", "lambda_handler"]
