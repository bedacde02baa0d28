"""Shared fixtures: DynamoDB Local (started once per test session), moto, the local stack."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# Never talk to a real AWS account from tests.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "SESSION_CONFIG": str(ROOT / "session_config.yaml"),
    }
)
os.environ.pop("AWS_SESSION_TOKEN", None)
os.environ.pop("AWS_PROFILE", None)
os.environ.setdefault("INGEST_TOKEN", "test-ingest-token")
os.environ.setdefault("READ_TOKEN", "test-read-token")
os.environ.setdefault("ADMIN_TOKEN", "test-admin-token")
os.environ.setdefault("VAPI_WEBHOOK_SECRET", "test-vapi-secret")
os.environ.setdefault("RETELL_API_KEY", "test-retell-api-key")
os.environ.setdefault("ELEVENLABS_WEBHOOK_SECRET", "test-elevenlabs-secret")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def template():
    from session_tracker_local.cfn import Template

    return Template.load(ROOT / "template.yaml")


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[str | None]:
    """Endpoint of a DynamoDB Local shared by the session, or None (moto) without java."""
    from session_tracker_local.dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable, java_available

    if not java_available():
        print("\nNOTICE: java not found - integration tests run against moto instead of DynamoDB Local")
        yield None
        return
    ddb = DynamoDBLocal(cache_dir=ROOT / ".cache" / "dynamodb-local")
    try:
        ddb.start()
    except DynamoDBLocalUnavailable as exc:
        print(f"\nNOTICE: DynamoDB Local unavailable ({exc}) - integration tests run against moto")
        yield None
        return
    try:
        yield ddb.endpoint
    finally:
        ddb.stop()


def _make_table(client, template) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    client.create_table(**template.create_table_request(name))
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    return name


@pytest.fixture
def moto_client(template, monkeypatch) -> Iterator[object]:
    """A moto-backed DynamoDB client (unit tests)."""
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)

    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def moto_store(moto_client, template):
    from session_tracker.store import DynamoStore

    return DynamoStore(_make_table(moto_client, template), client=moto_client, retention_days=365)


@pytest.fixture
def fake_store():
    """The in-memory store (same behaviour as DynamoStore; no AWS, no moto)."""
    from session_tracker.store.fake import InMemoryStore

    return InMemoryStore(retention_days=365)


@pytest.fixture
def ddb_client(dynamodb_local, template) -> Iterator[object]:
    """A client for DynamoDB Local (or moto when java is missing)."""
    if dynamodb_local is None:
        from moto import mock_aws

        with mock_aws():
            yield boto3.client("dynamodb", region_name="us-east-1")
        return
    yield boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)


@pytest.fixture
def ddb_store(ddb_client, template):
    """A DynamoStore on a fresh table in DynamoDB Local."""
    from session_tracker.store import DynamoStore

    return DynamoStore(_make_table(ddb_client, template), client=ddb_client, retention_days=365)


@pytest.fixture
def wire():
    """``wire(name, store, blobs=None, function_name=..., timeout=...)``: ``functions/<name>`` loaded
    afresh with ``deps()`` on that store (tests/helpers.py ``Handler``); the runtime's cached config
    and clients are reset around the test, so environment set before wiring is what it reads."""
    from helpers import Handler

    from session_tracker import runtime

    runtime.reset()
    yield Handler
    runtime.reset()


@pytest.fixture(scope="session")
def openai_server() -> Iterator[object]:
    """A fake OpenAI-compatible HTTP server on 127.0.0.1 (tests/fakes/openai_server.py)."""
    from fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_openai(openai_server, monkeypatch) -> object:
    """The fake OpenAI server, reset, with the openai SDK pointed at it (OPENAI_BASE_URL)."""
    openai_server.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-test")
    return openai_server


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory, openai_server) -> Iterator[object]:
    """The local stack (what `make run` serves), started once for the e2e tests (credentials:
    tests/e2e_helpers.py)."""
    import e2e_helpers as e2e

    from session_tracker_local.stack import LocalStack, StackOptions

    options = StackOptions(
        root=ROOT,
        port=0,
        data_dir=None,
        ingest_token=e2e.INGEST_TOKEN,
        read_token=e2e.READ_TOKEN,
        admin_token=e2e.ADMIN_TOKEN,
        vapi_secret=e2e.VAPI_SECRET,
        retell_api_key=e2e.RETELL_API_KEY,
        elevenlabs_secret=e2e.ELEVENLABS_SECRET,
        schedule_interval=2.0,
        # analysis runs against the fake OpenAI server, never the real API
        extra_env={"OPENAI_BASE_URL": openai_server.url, "OPENAI_API_KEY": "sk-fake-e2e"},
    )
    stack = LocalStack(options).start()
    try:
        yield stack
    finally:
        stack.stop()
