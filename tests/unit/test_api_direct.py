"""The direct JSON routes (session_tracker.api): the same answers as the Powertools resolver
(that the functions do not import it is checked in tests/tools/test_coldstart.py)."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Discriminator, Tag

from session_tracker.api import Api
from session_tracker.errors import NotFound, Unprocessable
from session_tracker.http import guarded
from session_tracker.models import IngestBatchResult, IngestResult, InteractionBatch, InteractionIn

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "tests" / "events" / "post_interaction.json").read_text())
Body = Annotated[
    Annotated[InteractionIn, Tag("single")] | Annotated[InteractionBatch, Tag("batch")],
    Discriminator(lambda v: "batch" if isinstance(v, dict) and "interactions" in v else "single"),
]


def _api(seen: list[Any] | None = None) -> Api:
    api = Api()

    @api.post("/interactions", body=Body, returns=IngestResult | IngestBatchResult, status_code=202, summary="x")
    def post(body: Any, raw: Any) -> IngestResult | IngestBatchResult:
        items = body.interactions if isinstance(body, InteractionBatch) else [body]
        if items[0].function == "boom":
            raise RuntimeError("unexpected")
        if items[0].function == "missing":
            raise NotFound("no such thing")
        if items[0].function == "bad":
            raise Unprocessable("not like this", field="function")
        if items[0].function == "wrong-result":
            return {"nope": 1}  # type: ignore[return-value]
        results = [
            IngestResult(session_id=f"{i.student_id}_s", interaction_id=i.interaction_id or "gen", new_session=True)
            for i in items
        ]
        if seen is not None:
            seen.append(raw)
        return IngestBatchResult(results=results) if isinstance(body, InteractionBatch) else results[0]

    return api


GOOD = json.loads(EVENT["body"])
BODIES: list[str | None] = [
    EVENT["body"],
    json.dumps({"interactions": [GOOD, {**GOOD, "interaction_id": "b"}]}),
    json.dumps({**GOOD, "extra": [1, 2]}),
    json.dumps({**GOOD, "function": "boom"}),
    json.dumps({**GOOD, "function": "missing"}),
    json.dumps({**GOOD, "function": "bad"}),
    json.dumps({**GOOD, "function": "wrong-result"}),
    json.dumps({**GOOD, "student_id": "bad id"}),
    json.dumps({"interactions": [GOOD, {"student_id": 3}]}),
    "{not json",
    "",
    None,
    "null",
    "7",
    "[" * 3000 + "]" * 3000,
]


def _event(body: str | None, *, path: str = "/interactions", method: str = "POST", b64: bool = False) -> dict:
    event = copy.deepcopy(EVENT)
    event["body"] = body
    if body is None:
        event.pop("body")
    if b64 and body is not None:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body.encode()).decode(), True
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    return event


CASES = [_event(b) for b in BODIES] + [
    _event(EVENT["body"], b64=True),
    _event(EVENT["body"], path="/interactions/"),
    _event(EVENT["body"], method="PUT"),
    _event(EVENT["body"], path="/other"),
]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_direct_answers_equal_the_powertools_resolver(index: int) -> None:
    from helpers import lambda_context

    event = CASES[index]
    context = lambda_context("LogInteractionFunction")
    direct = guarded(_api(), copy.deepcopy(event), context, gate=None, max_body=lambda: 1 << 20)
    reference = _api()
    powertools = guarded(reference.resolver, copy.deepcopy(event), context, gate=None, max_body=lambda: 1 << 20)
    assert direct == powertools


def test_the_valid_request_is_answered_without_the_resolver() -> None:
    from helpers import lambda_context

    seen: list[Any] = []
    api = _api(seen)
    response = api.resolve(_event(EVENT["body"]), lambda_context("LogInteractionFunction"))
    assert response["statusCode"] == 202
    assert seen == [GOOD]  # the route gets the parsed JSON as well as the validated body
    assert api._resolver is None  # nothing built: the valid request never needs Powertools


@pytest.mark.parametrize("body", ["[]", json.dumps([GOOD, {**GOOD, "interaction_id": "b"}])])
def test_a_json_array_is_refused_where_powertools_would_take_its_first_element(body: str) -> None:
    """Powertools validates a JSON array's first element against a body that is not a sequence
    (the rest dropped with a 2xx); the direct path answers 422 naming ``body`` and runs nothing."""
    from helpers import lambda_context

    seen: list[Any] = []
    response = guarded(
        _api(seen), _event(body), lambda_context("LogInteractionFunction"), gate=None, max_body=lambda: 1 << 20
    )
    assert response["statusCode"] == 422
    assert json.loads(response["body"])["errors"][0]["field"] == "body"
    assert seen == []
