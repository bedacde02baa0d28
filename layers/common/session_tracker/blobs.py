"""Blob storage for bodies too large for a DynamoDB item (transcripts, raw webhook bodies).

One small interface, two backends: S3 in AWS (``BLOB_BUCKET``), a directory locally
(``BLOB_DIR``, what the local stack uses). Keys are relative paths such as
``transcripts/{session_id}/{sha256}.json``; callers never build S3 URLs themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
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
        try:
            out = self.client.get_object(Bucket=self.bucket, Key=self.prefix + check_key(key))
        except self.client.exceptions.NoSuchKey as exc:
            raise BlobMissing(key) from exc
        return out["Body"].read()

    def delete(self, key: str) -> None:
        # S3 answers 204 for a key that does not exist: deleting twice is not an error.
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + check_key(key))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (a ``ListObjectsV2`` page, then one
        ``DeleteObjects`` of up to 1,000 keys, until none is left); how many were deleted."""
        full = self.prefix + check_key(prefix.rstrip("/")) + "/"
        deleted = 0
        while True:
            out = self.client.list_objects_v2(Bucket=self.bucket, Prefix=full, MaxKeys=1000)
            keys: list[Any] = [{"Key": obj["Key"]} for obj in out.get("Contents", [])]
            if not keys:
                return deleted
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
            if answer.get("Errors"):
                raise ServiceUnavailable("the blob store refused to delete some objects; retry the erasure")
            deleted += len(keys)


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
        try:
            return (self.root / check_key(key)).read_bytes()
        except FileNotFoundError as exc:
            raise BlobMissing(key) from exc

    def delete(self, key: str) -> None:
        (self.root / check_key(key)).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every file under the directory ``prefix``; how many were deleted."""
        folder = self.root / check_key(prefix.rstrip("/"))
        if not folder.is_dir():
            return 0
        deleted = 0
        for path in sorted(folder.rglob("*"), reverse=True):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
                deleted += 1
        folder.rmdir()
        return deleted


def blob_store_from_env() -> BlobStore | None:
    """``BLOB_BUCKET`` (S3) or ``BLOB_DIR`` (a directory); ``None`` when neither is set."""
    if os.environ.get("BLOB_BUCKET"):
        return S3BlobStore(os.environ["BLOB_BUCKET"])
    if os.environ.get("BLOB_DIR"):
        return DirBlobStore(os.environ["BLOB_DIR"])
    return None


# ------------------------------------------------------------------- offloading fields
INLINE_LIMIT = 64 * 1024
"""A field larger than this many bytes (as stored) lives in the blob store, not in the item:
DynamoDB items hold at most 400 KB, and a session record carries several such fields."""
MISSING = "missing_blobs"
"""Key listing the offloaded fields whose blob is gone (expired or deleted), on read."""


class BlobMissing(LookupError):
    """The blob a pointer names is not in the store (expired by the lifecycle, or deleted)."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _encoded(value: Any) -> tuple[bytes, str]:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass"), "text"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"), "json"


def store_blob(blobs: BlobStore | None, prefix: str, data: bytes, fmt: str) -> dict[str, Any]:
    """Put ``data`` under ``{prefix}/{sha256}`` (content-addressed: a retry writes the same
    object) and return the pointer a record keeps instead of the data."""
    if blobs is None:
        raise ServiceUnavailable("a field too large for the database arrived but no blob storage is configured")
    ext, content_type = ("txt", "text/plain") if fmt == "text" else ("json", "application/json")
    key = f"{prefix}/{digest(data)}.{ext}"
    uri = blobs.put(key, data, content_type=f"{content_type}; charset=utf-8")
    return {"key": key, "uri": uri, "bytes": len(data), "sha256": digest(data), "format": fmt}


def offload(
    record: dict[str, Any], fields: Iterable[str], *, prefix: str, blobs: BlobStore | None, limit: int = INLINE_LIMIT
) -> dict[str, Any]:
    """``record`` with each of ``fields`` larger than ``limit`` bytes moved to the blob store:
    the field is replaced by ``<field>_blob`` (a pointer); :func:`hydrate` puts it back whole.
    One mechanism for every large field: call arguments, transcripts, platform analyses and
    platform metadata."""
    out = dict(record)
    for name in fields:
        value = out.get(name)
        if value is None:
            continue
        data, fmt = _encoded(value)
        if len(data) > limit:
            out[f"{name}_blob"] = store_blob(blobs, prefix, data, fmt)
            del out[name]
    return out


def offloaded(record: dict[str, Any] | None) -> bool:
    """Whether ``record`` holds a pointer to an offloaded field."""
    return bool(record) and any(k.endswith("_blob") and isinstance(v, dict) for k, v in record.items())  # type: ignore[union-attr]


def read_blob(blobs: BlobStore | None, pointer: dict[str, Any], *, text: bool) -> Any:
    """The value behind a pointer (:class:`BlobMissing` when it is gone)."""
    if blobs is None:
        raise ServiceUnavailable(
            "this session has data in blob storage, which is not configured (BLOB_BUCKET/BLOB_DIR)"
        )
    data = blobs.get(pointer["key"])
    return data.decode("utf-8", "surrogatepass") if text else json.loads(data)


def hydrate(record: dict[str, Any] | None, blobs: BlobStore | None) -> dict[str, Any] | None:
    """``record`` with every ``<field>_blob`` pointer read back into ``<field>``, whole.

    A blob that is gone (retention ran out before the record's, or it was deleted) leaves
    the field empty and is listed under ``missing_blobs`` - the record is still answered.
    """
    if not offloaded(record):
        return record
    assert record is not None
    out = dict(record)
    missing: list[dict[str, Any]] = list(out.pop(MISSING, None) or [])
    for key in [k for k, v in record.items() if k.endswith("_blob") and isinstance(v, dict)]:
        name, pointer = key.removesuffix("_blob"), out.pop(key)
        text = pointer.get("format", "text" if name == "transcript" else "json") == "text"
        try:
            out[name] = read_blob(blobs, pointer, text=text)
        except BlobMissing:
            out[name] = "" if text else None
            missing.append({"field": name, "key": pointer.get("key"), "bytes": pointer.get("bytes")})
    if missing:
        out[MISSING] = missing
    return out


def hydrate_conversation(conversation: dict[str, Any] | None, blobs: BlobStore | None) -> dict[str, Any] | None:
    """The conversation with offloaded parts (transcript, platform analysis) read back whole."""
    return hydrate(conversation, blobs)
