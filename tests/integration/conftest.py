"""Run the storage-backed scenarios against both moto and DynamoDB Local."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["moto", "dynamodb-local"])
def store(request: pytest.FixtureRequest):
    return request.getfixturevalue("moto_store" if request.param == "moto" else "ddb_store")
