"""Every key format and index name of the table (no AWS imports).

See ``docs/architecture.md`` for the item types, indexes and access patterns.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from session_tracker.models import iso, to_utc

OPEN_SHARDS = 4
GSI1 = "GSI1"
GSI2 = "GSI2"
GSI3 = "GSI3"
MARKER_TTL = timedelta(days=7)
DELIVERY_TTL = timedelta(days=7)
ASSIGN_PREFIX = "assign:"
"""``DELIVERY#assign:{session_id}`` remembers where an assigned unmatched session's data went."""
USAGE_TTL = timedelta(days=400)


def session_key(session_id: str) -> dict[str, str]:
    return {"PK": f"SESSION#{session_id}", "SK": "META"}


def interaction_key(session_id: str, timestamp: datetime, interaction_id: str) -> dict[str, str]:
    return {"PK": f"SESSION#{session_id}", "SK": f"I#{iso(timestamp)}#{interaction_id}"}


def head_key(student_id: str) -> dict[str, str]:
    return {"PK": f"STUDENT#{student_id}", "SK": "HEAD"}


def marker_key(student_id: str, interaction_id: str) -> dict[str, str]:
    """Idempotency marker of a client-supplied interaction id: scoped to its student."""
    return {"PK": f"IID#{student_id}#{interaction_id}", "SK": "IID"}


def call_key(call_id: str) -> dict[str, str]:
    return {"PK": f"CALL#{call_id}", "SK": "CALL"}


def delivery_key(delivery_id: str) -> dict[str, str]:
    return {"PK": f"DELIVERY#{delivery_id}", "SK": "DELIVERY"}


def open_shard(session_id: str) -> str:
    return f"OPEN#{zlib.crc32(session_id.encode()) % OPEN_SHARDS}"


def day_index_keys(start_time: datetime, session_id: str) -> dict[str, str]:
    """GSI3 keys of a session record: its UTC start day and start time."""
    return {"gsi3pk": f"DAY#{to_utc(start_time):%Y-%m-%d}", "gsi3sk": f"{iso(start_time)}#{session_id}"}


def usage_key(day: str) -> dict[str, str]:
    return {"PK": f"USAGE#{day}", "SK": "USAGE"}
