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
MERGED_PREFIX = "MERGED#"
"""``gsi1pk`` of a ``merged`` session record: off the student's listing, still found by erasure."""
OPEN_INDEX_LAG = timedelta(hours=1)
"""How far an open session's GSI2 key may trail its newest call (v2 calls never move it; the
closer re-buckets it once it looks due): readers of open sessions widen their range by this.
Sessions with a timeout longer than this can be missed by ``open_sessions_since`` until re-bucketed."""
RECHECK_AFTER = timedelta(seconds=60)
"""A closed session stays in the closer's index this long: a call that was in flight while it
closed (longer than any request runs) is counted by the re-check, which re-closes it."""
DELIVERY_TTL = timedelta(days=7)
ASSIGN_PREFIX = "assign:"
"""``DELIVERY#assign:{session_id}`` remembers where an assigned unmatched session's data went."""
USAGE_TTL = timedelta(days=400)


def session_key(session_id: str) -> dict[str, str]:
    return {"PK": f"SESSION#{session_id}", "SK": "META"}


def interaction_key(session_id: str, timestamp: datetime, interaction_id: str) -> dict[str, str]:
    """A v1 call (under its session's partition): read until the table is migrated."""
    return {"PK": f"SESSION#{session_id}", "SK": f"I#{iso(timestamp)}#{interaction_id}"}


def v1_head_key(student_id: str) -> dict[str, str]:
    """The v1 HEAD (read while a table is not migrated; never written by v2 code)."""
    return {"PK": f"STUDENT#{student_id}", "SK": "HEAD"}


def head_key(student_id: str) -> dict[str, str]:
    """The student's HEAD: the v2 item at ``SK=I~HEAD`` (see :func:`v2_head_key`)."""
    return v2_head_key(student_id)


def marker_key(student_id: str, interaction_id: str) -> dict[str, str]:
    """Idempotency marker of a client-supplied interaction id: scoped to its student."""
    return {"PK": f"IID#{student_id}#{interaction_id}", "SK": "IID"}


# ------------------------------------------------------------------ layout v2 (issue #14)
LAYOUT_VERSION = 2
"""Session records written by the v2 code carry ``layout = 2``: their calls live in the
student's partition (:func:`student_call_key`), not under ``SESSION#{id}``. A record without
``layout`` is a v1 record (calls at :func:`interaction_key`), read until migrated."""

V2_HEAD_SK = "I~HEAD"
"""SK of the v2 HEAD: ``~`` (0x7E) sorts after every ``I#...`` call key, so a Query of the
student's partition newest first returns HEAD and then the newest calls."""

CALL_SK_PREFIX = "I#"


def student_pk(student_id: str) -> str:
    return f"STUDENT#{student_id}"


def call_sk(timestamp: datetime, interaction_id: str) -> str:
    return f"{CALL_SK_PREFIX}{iso(timestamp)}#{interaction_id}"


def student_call_key(student_id: str, timestamp: datetime, interaction_id: str) -> dict[str, str]:
    """A logged call (v2): ``PK=STUDENT#{student_id}``, ``SK=I#{iso timestamp}#{interaction_id}``.

    Item: ``entity="interaction"``, ``session_id`` (the session it belongs to; no index
    keys on calls), ``interaction_id``, ``student_id``, ``function``, ``timestamp``,
    ``received_at``, ``arguments_json`` | ``arguments_blob``, ``data_provided`` (L),
    ``subjects`` (L), ``response_size``, ``duration_ms``, ``is_error``, ``platform``,
    ``call_id``, ``expires_at``. Written with one ``PutItem`` conditioned on
    ``attribute_not_exists(SK)`` (a failed condition = a retry: the stored ``session_id``
    is the answer). ``iso`` is fixed-width UTC with microseconds, so SK order is time order.
    """
    return {"PK": student_pk(student_id), "SK": call_sk(timestamp, interaction_id)}


def v2_head_key(student_id: str) -> dict[str, str]:
    """The student's HEAD (v2): ``PK=STUDENT#{student_id}``, ``SK=I~HEAD``.

    Item: ``entity="head"``, ``student_id``, ``session_id`` (current session),
    ``session_start``, ``version`` (N, +1 on every boundary write: conditions are on it),
    ``last_activity`` (as of the last boundary write only: the newest call's timestamp is
    read from the calls), ``ended_at`` (platform end), ``closed_at`` (idle close),
    ``call_id``, ``expires_at``. Written only at boundaries (open, reopen, close, end,
    merge), never per call.
    """
    return {"PK": student_pk(student_id), "SK": V2_HEAD_SK}


def student_calls_between(start: datetime, end: datetime) -> tuple[str, str]:
    """SK bounds (inclusive) of the calls with timestamps in ``[start, end]``."""
    return f"{CALL_SK_PREFIX}{iso(start)}", f"{CALL_SK_PREFIX}{iso(end)}#\uffff"


def call_key(call_id: str) -> dict[str, str]:
    return {"PK": f"CALL#{call_id}", "SK": "CALL"}


def delivery_key(delivery_id: str) -> dict[str, str]:
    return {"PK": f"DELIVERY#{delivery_id}", "SK": "DELIVERY"}


OPEN_BUCKET = timedelta(minutes=5)
"""Granularity of the open-session index key: a call moves ``gsi2sk`` only into a new bucket."""


def open_bucket(last_activity: datetime) -> str:
    """``gsi2sk`` of an open session: its last activity floored to :data:`OPEN_BUCKET`.

    Most calls land in the bucket of the call before, so they do not rewrite the GSI2 entry
    (2 index writes each). The key is at most 5 minutes older than the real last activity:
    the closer finds a session up to that much early and skips it after reading the record,
    and matching widens its window by a bucket.
    """
    at = to_utc(last_activity)
    step = int(OPEN_BUCKET.total_seconds())
    return iso(datetime.fromtimestamp(int(at.timestamp()) // step * step, tz=at.tzinfo))


def open_shard(session_id: str) -> str:
    return f"OPEN#{zlib.crc32(session_id.encode()) % OPEN_SHARDS}"


def day_index_keys(start_time: datetime, session_id: str) -> dict[str, str]:
    """GSI3 keys of a session record: its UTC start day and start time."""
    return {"gsi3pk": f"DAY#{to_utc(start_time):%Y-%m-%d}", "gsi3sk": f"{iso(start_time)}#{session_id}"}


def usage_key(day: str) -> dict[str, str]:
    return {"PK": f"USAGE#{day}", "SK": "USAGE"}


API_KEYS_PK = "APIKEYS"
"""Every named API key's record lives in this one partition: ``keys list`` is one Query, no Scan."""


def api_key_key(name: str) -> dict[str, str]:
    """The record of a named API key (name, scope, hash, created, last used, revoked)."""
    return {"PK": API_KEYS_PK, "SK": f"KEY#{name}"}


def key_hash_key(key_hash: str) -> dict[str, str]:
    """The lookup item of an active key by its SHA-256: what authentication reads (one GetItem)."""
    return {"PK": f"KEYHASH#{key_hash}", "SK": "KEYHASH"}


def audit_key(at: datetime, entry_id: str) -> dict[str, str]:
    """An audit entry: in the partition of its UTC day, by time (every student's entries, newest first)."""
    return {"PK": f"AUDIT#{to_utc(at):%Y-%m-%d}", "SK": f"{iso(at)}#{entry_id}"}


def audit_student_keys(student_id: str, at: datetime, entry_id: str) -> dict[str, str]:
    """GSI1 keys of an audit entry about a student (one student's entries, newest first)."""
    return {"gsi1pk": f"AUDIT#{student_id}", "gsi1sk": f"{iso(at)}#{entry_id}"}
