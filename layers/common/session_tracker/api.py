"""JSON routes served without the Powertools resolver on their cold path.

Importing Powertools' event handler (every resolver, its OpenAPI models and validation,
asyncio) is ~40% of the ingest and webhook functions' cold start. An :class:`Api` holds a
function's POST routes and serves a request that parses and validates directly: the body
is parsed with :func:`~session_tracker.http.loads_json`, validated with a pydantic
``TypeAdapter`` of the route's body type, the route runs, and its result is serialized as
Powertools serializes it (``by_alias``, JSON mode, compact separators) into the same
API Gateway v2 response. Everything else - another method or path, a body that is not
JSON, fails validation or is nested too deeply - goes to the Powertools resolver, built on
first need with the same routes, so every error answer (400, 404, 405, 422 naming the
field) is Powertools' own, byte for byte. Nothing has happened yet when a request falls
back: parsing and validation have no side effects.

The resolver (:attr:`Api.resolver`) also produces the OpenAPI document (``make openapi``),
so the document is the one the routes always had.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from session_tracker.errors import DomainError
from session_tracker.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from pydantic import TypeAdapter

RouteFn = Callable[[Any, Any], Any]
"""A route: ``fn(body, raw)`` - the validated body and the parsed JSON it came from."""


@dataclass
class JsonRoute:
    method: str
    path: str
    fn: RouteFn
    body: Any
    """The body's type (a model, a union, ``dict[str, Any]``)."""
    returns: Any
    """The return type, as Powertools would read it from the annotation."""
    status_code: int
    openapi: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def body_adapter(self) -> TypeAdapter[Any]:
        from pydantic import TypeAdapter

        return TypeAdapter(self.body)

    @functools.cached_property
    def return_adapter(self) -> TypeAdapter[Any]:
        from pydantic import TypeAdapter

        return TypeAdapter(self.returns)


class _Fallback(Exception):
    """The request is not for the direct path: let the resolver answer it."""


class Api:
    """The JSON POST routes of one function (see the module doc)."""

    def __init__(self) -> None:
        self.routes: list[JsonRoute] = []
        self._resolver: APIGatewayHttpResolver | None = None

    def post(
        self, path: str, *, body: Any, returns: Any, status_code: int = 200, **openapi: Any
    ) -> Callable[[RouteFn], RouteFn]:
        """Register ``fn(body, raw)`` for ``POST path``; ``openapi`` options go to Powertools' route."""

        def register(fn: RouteFn) -> RouteFn:
            if self._resolver is not None:
                raise RuntimeError("routes must be registered before the resolver is built")
            self.routes.append(JsonRoute("POST", path, fn, body, returns, status_code, dict(openapi)))
            return fn

        return register

    @property
    def resolver(self) -> APIGatewayHttpResolver:
        """The Powertools resolver of these routes (built, and Powertools imported, on first use)."""
        if self._resolver is None:
            from session_tracker.http import make_app

            app = make_app()
            for route in self.routes:
                _register(app, route)
            self._resolver = app
        return self._resolver

    def get_openapi_json_schema(self, **options: Any) -> str:
        return self.resolver.get_openapi_json_schema(**options)

    def resolve(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Answer ``event`` directly when it is a valid request for one of the routes, else via the resolver."""
        try:
            return self._direct(event)
        except _Fallback:
            return self.resolver.resolve(event, context)

    def _direct(self, event: dict[str, Any]) -> dict[str, Any]:
        from session_tracker.http import body_bytes, loads_json, request_method

        route = self._match(request_method(event), _routed_path(event))
        try:
            raw = loads_json(body_bytes(event).decode("utf-8"))
        except Exception as exc:  # not JSON, nested too deeply: the resolver's answer
            raise _Fallback from exc
        if raw is None:  # Powertools: a missing body
            raise _Fallback
        if isinstance(raw, list):
            # Powertools validates only the first element of a JSON array against a body that is
            # not a sequence (the rest would be dropped with a 2xx): refuse the array instead.
            return _body_not_an_object()
        from pydantic import ValidationError

        try:
            body = route.body_adapter.validate_python(raw, from_attributes=True)
        except ValidationError as exc:  # 422 naming the field, as Powertools words it
            raise _Fallback from exc
        try:
            result = route.fn(body, raw)
        except Exception as exc:
            return _error_response(exc)
        try:
            value = route.return_adapter.validate_python(result, from_attributes=True)
        except ValidationError as exc:  # Powertools' response validation: a 422 at ``response``
            return _response_invalid(exc)
        content = route.return_adapter.dump_python(value, mode="json", by_alias=True)
        return _response(route.status_code, "application/json", _dumps(content))

    def _match(self, method: str, path: str | None) -> JsonRoute:
        for route in self.routes:
            if route.method == method and route.path == path:
                return route
        raise _Fallback


def _routed_path(event: dict[str, Any]) -> str | None:
    """The path Powertools routes on (an HTTP API event's ``rawPath`` without a named stage)."""
    raw = event.get("rawPath")
    stage = (event.get("requestContext") or {}).get("stage")
    if not isinstance(raw, str) or not isinstance(stage, str):
        return None
    return raw if stage == "$default" else raw[len("/" + stage) :]


def _dumps(content: Any) -> str:
    """Powertools' serializer: compact JSON."""
    return json.dumps(content, separators=(",", ":"))


def _response(status: int, content_type: str, body: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The API Gateway v2 (HTTP API) response, as Powertools' ``APIGatewayHttpResolver`` builds it."""
    return {
        "statusCode": status,
        "body": body,
        "isBase64Encoded": False,
        "headers": {"Content-Type": content_type, **(headers or {})},
        "cookies": [],
    }


def _error_response(ex: Exception) -> dict[str, Any]:
    """The exception handlers of :func:`session_tracker.http.register_error_handlers`."""
    from session_tracker.http import (
        PROBLEM_JSON,
        error_headers,
        is_store_outage,
        problem,
        store_outage_problem,
    )

    if isinstance(ex, DomainError):
        body = problem(ex.status, ex.title, ex.detail, field=ex.field, **ex.extra)
        headers = error_headers(ex.status)
    elif is_store_outage(ex):
        body, headers = store_outage_problem(ex), error_headers(503)
    else:
        logger.exception("unhandled error", extra={"error_type": type(ex).__name__})
        body, headers = problem(500, "Internal error", "unexpected error; it has been logged"), None
    return _response(body.status, PROBLEM_JSON, body.model_dump_json(exclude_none=True), headers)


def _body_not_an_object() -> dict[str, Any]:
    from session_tracker.http import PROBLEM_JSON, _describe_validation, problem

    errors = [{"loc": ("body",), "msg": "Input should be a JSON object, not an array", "type": "model_type"}]
    detail, items = _describe_validation(errors)
    body = problem(422, "Validation failed", detail, errors=items)
    return _response(422, PROBLEM_JSON, body.model_dump_json(exclude_none=True))


def _response_invalid(exc: Any) -> dict[str, Any]:
    from session_tracker.http import PROBLEM_JSON, _describe_validation, problem

    errors = [{**e, "loc": ("response", *e["loc"])} for e in exc.errors(include_url=False)]
    detail, items = _describe_validation(errors)
    body = problem(422, "Validation failed", detail, errors=items)
    return _response(422, PROBLEM_JSON, body.model_dump_json(exclude_none=True))


def _register(app: APIGatewayHttpResolver, route: JsonRoute) -> None:
    """Register ``route`` on the Powertools resolver with the signature its validation reads."""
    from aws_lambda_powertools.event_handler.openapi.params import Body

    fn = route.fn

    def endpoint(body: Any) -> Any:
        return fn(body, app.current_event.json_body)

    endpoint.__name__ = fn.__name__
    endpoint.__qualname__ = fn.__qualname__
    endpoint.__module__ = fn.__module__
    endpoint.__doc__ = fn.__doc__
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[route.body, Body()])],
        return_annotation=route.returns,
    )
    app.route(route.path, route.method, status_code=route.status_code, **route.openapi)(endpoint)


__all__ = ["Api", "JsonRoute"]
