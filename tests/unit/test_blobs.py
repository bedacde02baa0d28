"""Blob storage: no S3 client is made until a blob is actually written or read."""

from __future__ import annotations

import boto3
import pytest

from session_tracker.blobs import DirBlobStore, S3BlobStore, blob_store_from_env


def test_the_s3_client_is_made_on_first_use_not_at_cold_start(monkeypatch) -> None:
    made: list[str] = []
    monkeypatch.setattr(boto3, "client", lambda name, **_: made.append(name) or object())
    monkeypatch.setenv("BLOB_BUCKET", "transcripts")
    store = blob_store_from_env()
    assert isinstance(store, S3BlobStore) and made == []
    assert store.client is store.client
    assert made == ["s3"]


def test_keys_cannot_escape_the_directory(tmp_path) -> None:
    store = DirBlobStore(tmp_path)
    store.put("transcripts/s1/a.json", b"{}")
    assert store.get("transcripts/s1/a.json") == b"{}"
    for key in ("../x", "a/../../x", "/etc/passwd", "a//b"):
        with pytest.raises(ValueError, match="unsafe blob key"):
            store.put(key, b"")
