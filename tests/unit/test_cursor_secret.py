"""The page-token key is a real secret (issue 13 item 12): the per-stack Secrets Manager secret,
or CURSOR_SECRET, or a random key per process - never derived from the table name."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from session_tracker.store.cursors import InvalidCursor, encode_cursor, fingerprint
from session_tracker.store.dynamo import DynamoStore
from session_tracker.store.settings import StoreSettings

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


def _forged(table: str, student: str) -> str:
    """A cursor made with the old, guessable key ``cursor:{table}``."""
    query = fingerprint(
        "student", student, START.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), END.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    key = {"PK": "SESSION#x", "SK": "META", "gsi1pk": f"STUDENT#{student}", "gsi1sk": "2026-01-02#x"}
    return encode_cursor(key, query, secret=f"cursor:{table}".encode())


def test_a_cursor_forged_with_the_table_name_is_refused(moto_store: DynamoStore) -> None:
    with pytest.raises(InvalidCursor):
        moto_store.list_student_sessions("emma", start=START, end=END, cursor=_forged(moto_store.table_name, "emma"))


def test_the_key_comes_from_the_stacks_secret(monkeypatch) -> None:
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="cursor-key", SecretString="generated-per-stack-0123456789"
        )["ARN"]
        settings = StoreSettings.from_env({"TABLE_NAME": "sessions", "CURSOR_SECRET_ARN": arn})
        store = DynamoStore.from_settings(settings, client=boto3.client("dynamodb", region_name="us-east-1"))
        assert store.cursor_secret == b"generated-per-stack-0123456789"


def test_without_a_configured_key_each_process_has_a_random_one() -> None:
    settings = StoreSettings.from_env({"TABLE_NAME": "sessions", "CURSOR_SECRET_ARN": "CursorSecret"})
    assert settings.cursor_secret_arn is None  # the local stack's unresolved logical id is ignored
    store = DynamoStore.from_settings(settings, client=boto3.client("dynamodb", region_name="us-east-1"))
    assert store.cursor_secret != b"cursor:sessions" and len(store.cursor_secret) >= 32
