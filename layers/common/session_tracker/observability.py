"""Powertools Logger, Metrics and Tracer shared by every function.

The tracer is :class:`LazyTracer`: with tracing off (``POWERTOOLS_TRACE_DISABLED``, or
outside Lambda, as Powertools decides) it never imports the X-Ray SDK and its decorators
return the function unchanged - zero cost. With tracing on (``Tracing: Active`` in AWS) it
builds the Powertools ``Tracer`` when the first handler is decorated, patching only
``botocore`` (every DynamoDB, S3 and SSM call becomes a subsegment) instead of every library
the X-Ray SDK knows, and without capturing responses or errors into trace metadata
(transcripts and exports must not land in X-Ray).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "tutor-session-tracker")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TutorSessionTracker")

# An API call that records no metric (e.g. /health) is normal, not a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

F = TypeVar("F", bound=Callable[..., Any])
TRACED_MODULES = ("botocore",)
"""What X-Ray patches when tracing is on: the AWS SDK (DynamoDB, S3, SSM calls)."""


def tracing_enabled(env: dict[str, str] | None = None) -> bool:
    """Powertools' rule: on in Lambda unless ``POWERTOOLS_TRACE_DISABLED``; off in SAM local/Chalice."""
    env = dict(os.environ) if env is None else env
    if env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on", "y", "t"):
        return False
    in_lambda = bool(env.get("LAMBDA_TASK_ROOT"))
    return in_lambda and not env.get("AWS_SAM_LOCAL") and not env.get("AWS_CHALICE_CLI_MODE")


class LazyTracer:
    """The Powertools ``Tracer`` API we use, free when tracing is off (see the module doc)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._tracer: Tracer | None = None

    @property
    def enabled(self) -> bool:
        return tracing_enabled()

    @property
    def real(self) -> Tracer:
        """The Powertools tracer (built, and the X-Ray SDK imported, on first use)."""
        if self._tracer is None:
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer(service=self.service, patch_modules=TRACED_MODULES)
        return self._tracer

    def capture_lambda_handler(self, fn: F | None = None, **options: Any) -> Any:
        """``@tracer.capture_lambda_handler`` (bare or with Powertools' options)."""
        if fn is None:
            return lambda f: self.capture_lambda_handler(f, **options)
        if not self.enabled:
            return fn
        options.setdefault("capture_response", False)
        options.setdefault("capture_error", False)
        return self.real.capture_lambda_handler(fn, **options)

    def capture_method(self, fn: F | None = None, **options: Any) -> Any:
        """``@tracer.capture_method`` (bare or with Powertools' options)."""
        if fn is None:
            return lambda f: self.capture_method(f, **options)
        if not self.enabled:
            return fn
        options.setdefault("capture_response", False)
        options.setdefault("capture_error", False)
        return self.real.capture_method(fn, **options)

    def put_annotation(self, key: str, value: Any) -> None:
        if self.enabled:
            self.real.put_annotation(key, value)

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        if self.enabled:
            self.real.put_metadata(key, value, namespace)


logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = LazyTracer(SERVICE)


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
    "TRACED_MODULES",
    "LazyTracer",
    "MetricUnit",
    "count",
    "count_platform_delivery",
    "logger",
    "metrics",
    "tracer",
    "tracing_enabled",
]
