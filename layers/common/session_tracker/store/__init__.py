"""Storage: ports (per-caller protocols), the DynamoDB store and an in-memory fake.

- :mod:`.ports` - what each caller needs (no AWS imports); domain modules import these.
- :mod:`.keys`, :mod:`.codec`, :mod:`.cursors` - key formats, item shapes, page tokens.
- ``dynamo_*`` - one module per access pattern, composed in :mod:`.dynamo`.
- :mod:`.fake` - :class:`InMemoryStore`, the same behaviour in memory (tests).

Importing this package imports neither boto3 nor the DynamoDB modules: the names below
that need them (``DynamoStore``, ``serialize`` ...) load on first use, so the names other
code has always imported from ``session_tracker.store`` keep working.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from session_tracker.store.cursors import MAX_CURSOR_CHARS, InvalidCursor, decode_cursor, encode_cursor
from session_tracker.store.keys import (
    DELIVERY_TTL,
    GSI1,
    GSI2,
    GSI3,
    MARKER_TTL,
    OPEN_SHARDS,
    call_key,
    day_index_keys,
    delivery_key,
    head_key,
    interaction_key,
    marker_key,
    open_shard,
    session_key,
    usage_key,
)
from session_tracker.store.ports import (
    AnalysisStore,
    CloserStore,
    IngestStore,
    PlatformStore,
    SessionFilesStore,
    SessionReader,
    SessionStore,
)
from session_tracker.store.settings import StoreSettings

if TYPE_CHECKING:
    from session_tracker.store.codec import (
        _values,
        deserialize,
        interaction_to_item,
        item_to_head,
        item_to_interaction,
        item_to_meta,
        meta_to_item,
        serialize,
    )
    from session_tracker.store.dynamo import DynamoStore
    from session_tracker.store.fake import InMemoryStore

_LAZY = {
    "DynamoStore": "session_tracker.store.dynamo",
    "InMemoryStore": "session_tracker.store.fake",
    "serialize": "session_tracker.store.codec",
    "deserialize": "session_tracker.store.codec",
    "meta_to_item": "session_tracker.store.codec",
    "item_to_meta": "session_tracker.store.codec",
    "item_to_head": "session_tracker.store.codec",
    "item_to_interaction": "session_tracker.store.codec",
    "interaction_to_item": "session_tracker.store.codec",
    "_values": "session_tracker.store.codec",
}

__all__ = [
    "DELIVERY_TTL",
    "GSI1",
    "GSI2",
    "GSI3",
    "MARKER_TTL",
    "MAX_CURSOR_CHARS",
    "OPEN_SHARDS",
    "AnalysisStore",
    "CloserStore",
    "DynamoStore",
    "InMemoryStore",
    "IngestStore",
    "InvalidCursor",
    "PlatformStore",
    "SessionFilesStore",
    "SessionReader",
    "SessionStore",
    "StoreSettings",
    "_values",
    "call_key",
    "day_index_keys",
    "decode_cursor",
    "delivery_key",
    "deserialize",
    "encode_cursor",
    "head_key",
    "interaction_key",
    "interaction_to_item",
    "item_to_head",
    "item_to_interaction",
    "item_to_meta",
    "marker_key",
    "meta_to_item",
    "open_shard",
    "serialize",
    "session_key",
    "usage_key",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
