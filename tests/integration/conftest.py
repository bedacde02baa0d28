"""Run the storage-backed scenarios against the in-memory fake, moto and DynamoDB Local.

``store`` runs a scenario on all three; ``dynamo_store`` only on the two DynamoDB
backends, for scenarios that look at items, request counts or consumed capacity.
"""

from __future__ import annotations

import pytest

_BACKENDS = {"fake": "fake_store", "moto": "moto_store", "dynamodb-local": "ddb_store"}


@pytest.fixture(params=list(_BACKENDS))
def store(request: pytest.FixtureRequest):
    return request.getfixturevalue(_BACKENDS[request.param])


@pytest.fixture(params=["moto", "dynamodb-local"])
def dynamo_store(request: pytest.FixtureRequest):
    return request.getfixturevalue(_BACKENDS[request.param])


@pytest.fixture(params=["fake", "dynamodb-local"])
def racing_store(request: pytest.FixtureRequest):
    """Backends that take real concurrent writers (moto is not thread-safe)."""
    return request.getfixturevalue(_BACKENDS[request.param])


@pytest.fixture
def blobs(tmp_path):
    """A directory standing in for the transcript bucket (the handlers' BlobStore)."""
    from session_tracker.blobs import DirBlobStore

    return DirBlobStore(tmp_path / "bucket")
