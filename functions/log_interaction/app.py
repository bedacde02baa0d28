"""POST /interactions: log one MCP tool call, or a batch of up to 25."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Discriminator, Tag

from session_tracker import coldstart, sessions
from session_tracker.api import Api
from session_tracker.http import BEARER_SCHEME, guarded, scope_gate
from session_tracker.models import IngestBatchResult, IngestResult, InteractionBatch, InteractionIn
from session_tracker.observability import count, logger, metrics, tracer
from session_tracker.runtime import authenticator, deps, redactor

app = Api()

IngestBody = Annotated[
    Annotated[InteractionIn, Tag("single")] | Annotated[InteractionBatch, Tag("batch")],
    Discriminator(lambda v: "batch" if isinstance(v, dict) and "interactions" in v else "single"),
]


@app.post(
    "/interactions",
    body=IngestBody,
    returns=IngestResult | IngestBatchResult,
    status_code=202,
    summary="Log MCP tool calls",
    description="One call, or {'interactions': [...]} with up to 25. Retried interaction_id values are stored once.",
    security=[BEARER_SCHEME],
    tags=["ingest"],
    responses={
        202: {"description": "Accepted", "content": {"application/json": {"model": IngestResult | IngestBatchResult}}},
    },
)
def post_interactions(body: IngestBody, raw: Any) -> IngestResult | IngestBatchResult:
    items = body.interactions if isinstance(body, InteractionBatch) else [body]
    tracking = deps().config.session_tracking
    results = sessions.log_interactions(
        items,
        store=deps().store,
        now=datetime.now(UTC),
        timeout=tracking.timeout,
        clock_skew=tracking.clock_skew,
        field_prefix="interactions." if isinstance(body, InteractionBatch) else "",
        blobs=deps().blobs,
        redactor=redactor(),
    )
    stored = [r for r in results if not r.duplicate]
    count("InteractionsLogged", len(stored))
    count("SessionsOpened", sum(r.new_session for r in results))
    if len(stored) != len(results):
        count("DuplicateInteractions", len(results) - len(stored))
    logger.info(
        "interactions logged",
        extra={
            "count": len(results),
            "sessions": sorted({r.session_id for r in results}),
            "functions": sorted({i.function for i in items}),
        },
    )
    return IngestBatchResult(results=results) if isinstance(body, InteractionBatch) else results[0]


_gate = scope_gate(authenticator)


@coldstart.handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return guarded(app, event, context, gate=_gate, max_body=lambda: deps().config.api.max_body_bytes)
