"""Scheduled (EventBridge, every minute): close sessions idle longer than ``timeout_minutes``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from session_tracker import coldstart, lifecycle
from session_tracker.observability import count, logger, metrics, tracer
from session_tracker.runtime import deps

# Stop starting new batches when less than this is left of the invocation.
SAFETY_SECONDS = 8.0


@coldstart.handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = deps().config
    analysis = config.analysis
    report = lifecycle.close_idle_sessions(
        store=deps().store,
        now=datetime.now(UTC),
        timeout=config.session_tracking.timeout,
        request_analysis=analysis.enabled and "on_session_complete" in analysis.triggers,
        max_sessions=config.session_tracking.close_max_per_run,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        min_seconds=SAFETY_SECONDS,
    )
    count("SessionsClosed", len(report.closed))
    if report.raced:
        count("SessionCloseRaced", len(report.raced))
    logger.info(
        "idle sessions closed",
        extra={
            "due": report.due,
            "closed": len(report.closed),
            "raced": len(report.raced),
            "stopped_early": report.stopped_early,
        },
    )
    return report.model_dump(mode="json", include={"due", "closed", "raced", "missing", "stopped_early"})
