"""POST /webhook/session-data: platform-agnostic session data, dispatched on ``platform``."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from session_tracker import coldstart
from session_tracker.access import Authenticator
from session_tracker.api import Api
from session_tracker.errors import NotFound
from session_tracker.http import BEARER_SCHEME, guarded, scope_gate
from session_tracker.matching import MatchSettings, WebhookResult, ingest_platform_event
from session_tracker.observability import count_platform_delivery, logger, metrics, tracer
from session_tracker.platforms import adapters, parse_session_data
from session_tracker.runtime import authenticator_for, deps, table_keys

app = Api()


@app.post(
    "/webhook/session-data",
    body=dict[str, Any],
    returns=WebhookResult,
    status_code=200,
    summary="Platform-agnostic session data",
    description=(
        "A finished conversation from any platform, dispatched on 'platform' "
        f"({', '.join(sorted(adapters()))}). generic: {{student_id?, session_id?, call_id?, started_at, "
        "ended_at, transcript (string or [{role, text, time}]), metadata}}; superinterface: {thread_id, "
        "messages (as its messages API returns them), student_id?}; vapi: {message: <VAPI server message>}. "
        "Matched to a session like VAPI reports; a retried delivery is stored once."
    ),
    security=[BEARER_SCHEME],
    tags=["webhooks"],
    responses={200: {"description": "Accepted (merged, created or duplicate)"}},
)
def session_data(body: dict[str, Any], raw: Any) -> WebhookResult:
    event = parse_session_data(body)
    result = ingest_platform_event(
        event,
        store=deps().store,
        blobs=deps().blobs,
        now=datetime.now(UTC),
        settings=MatchSettings.from_config(deps().config),
    )
    count_platform_delivery(result, received_metric="SessionDatas")
    logger.info(
        "session data",
        extra={
            "platform": event.platform,
            "outcome": result.outcome,
            "session_id": result.session_id,
            "strategy": result.strategy,
            "call_id": event.call_id,
        },
    )
    return result


@cache
def _authenticator() -> Authenticator:
    """Scope credentials; ``webhooks.generic.auth_token``, when it differs, is one more ingest token."""
    config = deps().config
    return authenticator_for(config, keys=table_keys, extra_ingest=(config.webhooks.generic.auth_token,))


_bearer = scope_gate(_authenticator)


def _gate(event: dict[str, Any]) -> dict[str, Any] | None:
    if not deps().config.webhooks.generic.enabled:
        raise NotFound("the session-data webhook is disabled (webhooks.generic.enabled)")
    return _bearer(event)


@coldstart.handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return guarded(app, event, context, gate=_gate, max_body=lambda: deps().config.webhooks.generic.max_body_bytes)


__all__ = ["app", "lambda_handler"]
