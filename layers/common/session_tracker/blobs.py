"""Blob storage for bodies too large for a DynamoDB item (transcripts, raw webhook bodies).

One small interface, two backends: S3 in AWS (``BLOB_BUCKET``), a directory locally
(``BLOB_DIR``, what the local stack uses). Keys are relative paths such as
``transcripts/{session_id}/{sha256}.json``; callers never build S3 URLs themselves.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from session_tracker.errors import ServiceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+=/-]{0,1000}$")


def check_key(key: str) -> str:
    """Reject keys that could escape the bucket prefix or the local directory."""
    if not _SAFE_KEY.match(key) or ".." in key.split("/") or "//" in key:
        raise ValueError(f"unsafe blob key: {key!r}")
    return key


class BlobStore(Protocol):
    """Where large bodies live; ``uri`` is what a stored pointer records."""

    def put(self, key: str, data: bytes, *, content_type: str = "application/json") -> str: ...

    def get(self, key: str) -> bytes: ...


class S3BlobStore:
    """Objects in one S3 bucket (SSE by bucket default; lifecycle by retention)."""

    def __init__(self, bucket: str, *, client: S3Client | None = None, prefix: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._client = client

    @property
    def client(self) -> S3Client:
        """Made on first use: most invocations (every logged call) never touch S3, so
        creating the client at cold start would be paid for nothing."""
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def put(self, key: str, data: bytes, *, content_type: str = "application/json") -> str:
        full = self.prefix + check_key(key)
        self.client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentType=content_type)
        return f"s3://{self.bucket}/{full}"

    def get(self, key: str) -> bytes:
        out = self.client.get_object(Bucket=self.bucket, Key=self.prefix + check_key(key))
        return out["Body"].read()

    def delete(self, key: str) -> None:
        # S3 answers 204 for a key that does not exist: deleting twice is not an error.
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + check_key(key))


class DirBlobStore:
    """Files under one directory (the local stack; tests)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def put(self, key: str, data: bytes, *, content_type: str = "application/json") -> str:
        path = self.root / check_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path.resolve().as_uri()

    def get(self, key: str) -> bytes:
        return (self.root / check_key(key)).read_bytes()

    def delete(self, key: str) -> None:
        (self.root / check_key(key)).unlink(missing_ok=True)


def blob_store_from_env() -> BlobStore | None:
    """``BLOB_BUCKET`` (S3) or ``BLOB_DIR`` (a directory); ``None`` when neither is set."""
    if os.environ.get("BLOB_BUCKET"):
        return S3BlobStore(os.environ["BLOB_BUCKET"])
    if os.environ.get("BLOB_DIR"):
        return DirBlobStore(os.environ["BLOB_DIR"])
    return None


def hydrate_conversation(conversation: dict[str, Any] | None, blobs: BlobStore | None) -> dict[str, Any] | None:
    """The conversation with offloaded parts read back from the blob store (whole)."""
    if not conversation or not ({"transcript_blob", "platform_analysis_blob", "turns_blob"} & conversation.keys()):
        return conversation
    if blobs is None:
        raise ServiceUnavailable("this transcript is in blob storage, which is not configured (BLOB_BUCKET/BLOB_DIR)")
    out = dict(conversation)
    pointer = out.pop("transcript_blob", None)
    if pointer:
        out["transcript"] = blobs.get(pointer["key"]).decode("utf-8", "surrogatepass")
    pointer = out.pop("platform_analysis_blob", None)
    if pointer:
        out["platform_analysis"] = json.loads(blobs.get(pointer["key"]))
    pointer = out.pop("turns_blob", None)
    if pointer:
        out["turns"] = json.loads(blobs.get(pointer["key"]))
    return out
