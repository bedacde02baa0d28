"""HTTP plumbing shared by the API functions: problem+json errors, auth and size gates.

Authentication and body limits run before Powertools parses the body, so an
unauthenticated request never learns whether its body was valid, and a huge body
is refused before it is parsed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

from session_tracker.access import Authenticator, attach, required_scope, secrets_equal
from session_tracker.errors import (
    BadRequest,
    DomainError,
    PayloadTooLarge,
    Unprocessable,
)
from session_tracker.models import Problem
from session_tracker.observability import logger

if TYPE_CHECKING:  # Powertools' event handler is imported only where a resolver is built (see api.py)
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
    from aws_lambda_powertools.utilities.typing import LambdaContext

PROBLEM_JSON = "application/problem+json"
BEARER_SCHEME: dict[str, list[str]] = {"bearerAuth": []}


def problem(status: int, title: str, detail: str, **extra: Any) -> Problem:
    return Problem(title=title, status=status, detail=detail, **extra)


def problem_response(body: Problem, headers: dict[str, str] | None = None) -> Response[str]:
    from aws_lambda_powertools.event_handler import Response

    return Response(body.status, PROBLEM_JSON, body.model_dump_json(exclude_none=True), headers=headers)


def problem_event_response(body: Problem, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A raw API Gateway v2 response for rejections that happen before routing."""
    return {
        "statusCode": body.status,
        "headers": {"Content-Type": PROBLEM_JSON, **(headers or {})},
        "body": body.model_dump_json(exclude_none=True),
        "isBase64Encoded": False,
    }


def _loc(err: dict[str, Any]) -> str:
    parts = [str(p) for p in err.get("loc", ()) if p not in ("body", "single", "batch", "query", "path")]
    return ".".join(parts) or "body"


def _describe_validation(errors: Iterable[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    items = []
    for err in errors:
        where = _loc(err)
        msg = err.get("msg") or err.get("type", "invalid")
        if err.get("type") == "missing":
            msg = "field required"
        items.append({"field": where, "message": msg, "type": err.get("type")})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in items[:10])
    return detail or "the request does not match the schema", items


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    """Map every error to RFC 9457 problem+json; never leak tracebacks."""
    from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

    @app.exception_handler(DomainError)
    def _domain(ex: DomainError) -> Response[str]:
        return problem_response(
            problem(ex.status, ex.title, ex.detail, field=ex.field, **ex.extra), error_headers(ex.status)
        )

    @app.exception_handler(RequestValidationError)
    def _validation(ex: RequestValidationError) -> Response[str]:
        errors = list(ex.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem_response(problem(400, "Malformed JSON", "the request body is not valid JSON"))
        detail, items = _describe_validation(errors)
        return problem_response(problem(422, "Validation failed", detail, errors=items))

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return problem_response(problem(404, "Not found", f"no route for {app.current_event.path}"))

    @app.exception_handler(Exception)
    def _unexpected(ex: Exception) -> Response[str]:
        if is_store_outage(ex):
            return problem_response(store_outage_problem(ex), error_headers(503))
        logger.exception("unhandled error", extra={"error_type": type(ex).__name__})
        return problem_response(problem(500, "Internal error", "unexpected error; it has been logged"))


RETRY_AFTER_SECONDS = 5
"""``Retry-After`` of every 503: long enough for DynamoDB Local to restart, short for AWS throttling."""
_OUTAGE_CODES = frozenset(
    {
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
    }
)


def error_headers(status: int) -> dict[str, str] | None:
    if status == 401:
        return {"WWW-Authenticate": 'Bearer realm="tutor-session-tracker"'}
    if status == 503:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return None


def is_store_outage(ex: BaseException) -> bool:
    """The database could not be reached or refused for load (not a bug, not bad input):
    no connection, a timeout, throttling or a service-side error of DynamoDB."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(ex, (BotoConnectionError, HTTPClientError)):
        return True
    return isinstance(ex, ClientError) and ex.response.get("Error", {}).get("Code") in _OUTAGE_CODES


def store_outage_problem(ex: BaseException) -> Problem:
    """503 problem for a database outage: logged (as a warning: nothing is lost, the caller retries)."""
    logger.warning("store unavailable", extra={"error_type": type(ex).__name__})
    return problem(503, "Service unavailable", "the database is unreachable right now; retry after a few seconds")


def loads_json(text: str | bytes) -> Any:
    """``json.loads`` that turns pathological nesting into a 422 instead of a crash."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise Unprocessable("the JSON body is nested too deeply", field="body") from exc


def make_app() -> APIGatewayHttpResolver:
    """A resolver with validation (OpenAPI) and our error mapping."""
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=loads_json)
    register_error_handlers(app)
    return app


def body_bytes(event: dict[str, Any]) -> bytes:
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(raw)
        except ValueError:
            return b""
    return raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)


def header(event: dict[str, Any], name: str) -> str | None:
    """Case-insensitive header lookup on an API Gateway v2 event."""
    wanted = name.lower()
    headers: dict[str, str] = event.get("headers") or {}
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets."""
    return secrets_equal(given, expected)


def request_path(event: dict[str, Any]) -> str:
    return event.get("rawPath") or event.get("requestContext", {}).get("http", {}).get("path") or "/"


def request_method(event: dict[str, Any]) -> str:
    return str(event.get("requestContext", {}).get("http", {}).get("method") or "GET").upper()


def bearer_token(event: dict[str, Any]) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or ``None``."""
    value = header(event, "authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


Gate = Callable[[dict[str, Any]], "dict[str, Any] | None"]
"""Runs before routing: raises a :class:`DomainError`, or returns a response that ends the request."""


def scope_gate(authenticator: Callable[[], Authenticator]) -> Gate:
    """Every route but the public ones needs a bearer credential with the route's scope."""

    def gate(event: dict[str, Any]) -> dict[str, Any] | None:
        needed = required_scope(request_method(event), request_path(event))
        if needed is None:
            return None
        principal = authenticator().require(bearer_token(event), needed)
        attach(event, principal)
        return None

    return gate


class Resolver(Protocol):
    """A Powertools resolver, or an :class:`~session_tracker.api.Api` (same ``resolve``)."""

    def resolve(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]: ...


def guarded(
    app: Resolver,
    event: dict[str, Any],
    context: LambdaContext,
    *,
    gate: Gate | None,
    max_body: Callable[[], int],
) -> dict[str, Any]:
    """Run the size and auth gates, then the resolver."""
    try:
        limit = max_body()
        raw = body_bytes(event)
        if len(raw) > limit:
            raise PayloadTooLarge(f"request body is {len(raw)} bytes; the limit is {limit}", field="body")
        if gate is not None:
            answer = gate(event)
            if answer is not None:
                return answer
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"the request body is not valid UTF-8 (byte {exc.start})", field="body") from exc
        if _is_json_array(raw):
            return problem_event_response(array_body_problem(), error_headers(422))
    except DomainError as ex:
        return problem_event_response(
            problem(ex.status, ex.title, ex.detail, field=ex.field, **ex.extra), error_headers(ex.status)
        )
    except Exception as ex:  # a gate that reads the store (named keys) during an outage
        if not is_store_outage(ex):
            raise
        return problem_event_response(store_outage_problem(ex), error_headers(503))
    return app.resolve(_as_json(event), context)


def _is_json_array(raw: bytes) -> bool:
    """A body that is a JSON array. No route takes one, and Powertools validates only the first
    element of an array against a body that is not a sequence (the rest would be dropped)."""
    start = 0
    while start < len(raw) and raw[start] in b" \t\r\n":  # no copy of a large body
        start += 1
    if raw[start : start + 1] != b"[":
        return False
    try:
        return isinstance(loads_json(raw), list)
    except ValueError:
        return False  # not JSON: the route's own parsing answers it


def array_body_problem() -> Problem:
    """The 422 of a JSON array body, naming ``body`` (as the direct routes answer it)."""
    errors = [{"loc": ("body",), "msg": "Input should be a JSON object, not an array", "type": "model_type"}]
    detail, items = _describe_validation(errors)
    return problem(422, "Validation failed", detail, errors=items)


def _as_json(event: dict[str, Any]) -> dict[str, Any]:
    """Every route takes JSON: read the body as JSON whatever Content-Type the client sent
    (``curl -d`` sends form encoding), so a body is never silently parsed as a form."""
    if not event.get("body"):
        return event
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    headers["content-type"] = "application/json"
    return {**event, "headers": headers}


def json_body(event: dict[str, Any]) -> Any:
    """Parse a JSON body or raise a 400-mapped error."""
    from session_tracker.errors import BadRequest

    try:
        return loads_json(body_bytes(event) or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("the request body is not valid JSON") from exc


__all__ = [
    "BEARER_SCHEME",
    "PROBLEM_JSON",
    "HTTPStatus",
    "array_body_problem",
    "bearer_token",
    "guarded",
    "header",
    "json_body",
    "make_app",
    "problem",
    "problem_event_response",
    "problem_response",
    "scope_gate",
    "tokens_equal",
]
