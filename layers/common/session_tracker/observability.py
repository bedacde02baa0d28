"""Powertools Logger, Metrics and Tracer shared by every function."""

from __future__ import annotations

import os
import warnings
from typing import Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "tutor-session-tracker")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TutorSessionTracker")

# An API call that records no metric (e.g. /health) is normal, not a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """Record a metric (EMF). A no-op when metrics are disabled (locally, in tests), where
    Powertools would otherwise keep accumulating values it never flushes."""
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("1", "true"):
        return
    metrics.add_metric(name=name, unit=unit, value=value)


class _PlatformOutcome(Protocol):
    @property
    def outcome(self) -> str: ...

    @property
    def status(self) -> str | None: ...

    @property
    def strategy(self) -> str | None: ...


def count_platform_delivery(result: _PlatformOutcome, *, received_metric: str) -> None:
    """Metrics of one webhook delivery: received, duplicates, completions, unmatched, and
    matches by strategy (one metric name per strategy, so no dimension explosion)."""
    count(received_metric)
    if result.outcome == "duplicate":
        count("DuplicateDeliveries")
        return
    if result.outcome == "ignored":
        return
    if result.status == "completed":
        count("SessionsCompleted")
    if result.outcome == "created" and result.status == "unmatched":
        count("UnmatchedReports")
    if result.strategy == "explicit":
        count("MatchesExplicit")
    elif result.strategy == "tool_calls":
        count("MatchesToolCalls")
    elif result.strategy == "student_id":
        count("MatchesStudentId")
    elif result.strategy == "time_window":
        count("MatchesTimeWindow")
    elif result.strategy == "none":
        count("MatchesNone")


__all__ = [
    "NAMESPACE",
    "SERVICE",
    "MetricUnit",
    "count",
    "count_platform_delivery",
    "logger",
    "metrics",
    "tracer",
]
