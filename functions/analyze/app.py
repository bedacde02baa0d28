"""Table stream (filtered to sessions whose ``pending_analysis`` was just set): analyse them.

Records are processed one by one with Powertools' batch utility: a record that raises is
reported as a batch item failure (the stream retries it, bisecting, then sends it to the
on-failure queue); a failing model endpoint is not an error here, it is recorded on the
session as ``analysis.status: failed`` and retried on request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from session_tracker import analysis, coldstart
from session_tracker.observability import MetricUnit, count, logger, metrics, tracer
from session_tracker.runtime import deps

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _now() -> datetime:
    return datetime.now(UTC)


def record_handler(record: DynamoDBRecord, lambda_context: LambdaContext | None = None) -> None:
    session_id = str(record.dynamodb.keys["PK"] if record.dynamodb else "").removeprefix("SESSION#")
    logger.set_correlation_id(session_id)
    cfg = deps().config.analysis
    needed = cfg.timeout_seconds * (cfg.max_retries + 1) + cfg.debounce_seconds * 6 + 10
    if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < needed * 1000:
        raise TimeoutError(f"not enough time left to analyse {session_id}; the stream retries it")
    outcome = analysis.analyze_session(
        session_id,
        store=deps().store,
        blobs=deps().blobs,
        config=cfg,
        model_factory=analysis.openai_model_factory(cfg),
        clock=_now,
    )
    if outcome.action in ("analysed", "failed"):
        count("AnalysisRuns")
    if outcome.action == "failed":
        count("AnalysisFailures")
    if outcome.action in ("budget", "disabled", "not_triggered"):
        count("AnalysisSkipped")
    if outcome.tokens:
        count("AnalysisTokens", outcome.tokens)
    if outcome.cost_usd:
        count("AnalysisCostUSD", outcome.cost_usd, MetricUnit.NoUnit)
    logger.info(
        "analysis",
        extra={"session_id": session_id, "action": outcome.action, "detail": outcome.detail, "rounds": outcome.rounds},
    )


@coldstart.handler
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
