"""A database that cannot be reached answers 503 problem+json with Retry-After on every route, and
``/health`` says so (issue 13 item 9). The store points at a port where nothing listens."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from helpers import http_event, sample_event

from session_tracker.store import DynamoStore


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dead_store() -> DynamoStore:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=0.5, read_timeout=0.5),
    )
    return DynamoStore("unreachable", client=client)


@pytest.fixture
def invoke(dead_store, monkeypatch, wire):
    monkeypatch.setenv("INGEST_TOKEN", "test-ingest-token")
    monkeypatch.setenv("READ_TOKEN", "test-read-token")

    def run(function: str, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = wire(function, dead_store)(event)
        return response

    return run


def _event(name: str) -> dict[str, Any]:
    return sample_event(name)


def _get(path: str) -> dict[str, Any]:
    return http_event("GET", path, token="test-read-token")


@pytest.mark.parametrize(
    ("function", "event"),
    [
        ("log_interaction", "post_interaction.json"),
        ("webhook_generic", "webhook_session_data_generic.json"),
        ("sessions_api", "/sessions/emma_smith_20260117_1430"),
        ("sessions_api", "/students/emma_smith/sessions"),
    ],
)
def test_an_unreachable_database_is_503_problem_with_retry_after(invoke, function, event) -> None:
    response = invoke(function, _get(event) if event.startswith("/") else _event(event))
    assert response["statusCode"] == 503, response["body"]
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert response["headers"]["Retry-After"].isdigit()
    body = json.loads(response["body"])
    assert body["status"] == 503 and "retry" in body["detail"]


def test_health_reports_the_unreachable_database_without_auth_or_secrets(invoke) -> None:
    event = _get("/health")
    event["headers"] = {}
    response = invoke("sessions_api", event)
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"].isdigit()
    body = json.loads(response["body"])
    assert (body["status"], body["store"]) == ("unavailable", "unreachable")
    assert "unreachable" not in json.dumps({k: v for k, v in body.items() if k != "store"})  # no table name


def test_health_reports_a_reachable_database_as_ok(ddb_store, monkeypatch, wire) -> None:
    monkeypatch.setenv("INGEST_TOKEN", "test-ingest-token")
    response = wire("sessions_api", ddb_store)(http_event("GET", "/health"))
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["store"] == "ok"
