"""Read API: health, the OpenAPI document, and (bearer-authenticated) session reads."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

import session_tracker
from session_tracker.http import bearer_gate, guarded, make_app
from session_tracker.models import Health
from session_tracker.observability import logger, metrics, tracer
from session_tracker.runtime import deps

app = make_app()


@cache
def _openapi_document() -> str:
    return resources.files("session_tracker").joinpath("openapi.json").read_text(encoding="utf-8")


@app.get("/health", summary="Liveness", tags=["meta"])
def health() -> Health:
    return Health(version=session_tracker.__version__)


@app.get("/openapi.json", summary="OpenAPI 3 document of every route", tags=["meta"])
def openapi() -> Response[Any]:
    return Response(200, "application/json", _openapi_document())


_gate = bearer_gate(lambda: deps().config.api.auth_token)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return guarded(app, event, context, gate=_gate, max_body=lambda: 64 * 1024)


__all__ = ["app", "lambda_handler"]
