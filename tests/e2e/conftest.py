"""Fixtures of the end-to-end tests (the local stack itself is tests/conftest.py's ``local_stack``)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import httpx
import pytest

from session_tracker.store import DynamoStore


@pytest.fixture(scope="module")
def http(local_stack) -> Iterator[httpx.Client]:
    """An HTTP client on the local stack (no credentials: each request sends its own)."""
    with httpx.Client(base_url=local_stack.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def store(local_stack) -> DynamoStore:
    """The local stack's table, read directly."""
    return DynamoStore(local_stack.options.table_name, client=boto3.client("dynamodb"))
