"""DynamoDB stream records of session records, decoded for the stream consumers.

A Lambda ``DynamoDB`` event record carries the item before and after the change
(``NEW_AND_OLD_IMAGES``) as typed attribute values; this turns one into a
:class:`session_tracker.session_files.SessionChange` (the images as session models).
"""

from __future__ import annotations

from typing import Any

from session_tracker.models import SessionMeta
from session_tracker.session_files import SessionChange
from session_tracker.store.codec import deserialize, item_to_meta


def _image(raw: dict[str, Any] | None) -> SessionMeta | None:
    if not raw:
        return None
    try:
        return item_to_meta(deserialize(raw))
    except (ValueError, TypeError):
        return None  # unreadable image: the session is still synced from the table (by its key)


def session_change(record: dict[str, Any]) -> SessionChange:
    """One Lambda DynamoDB stream record of a session record as a :class:`SessionChange`."""
    ddb = record.get("dynamodb") or {}
    old, new = _image(ddb.get("OldImage")), _image(ddb.get("NewImage"))
    found = new or old
    if found is not None:
        session_id = found.session_id
    else:  # no readable image: the id is in the key
        session_id = str((ddb.get("Keys") or {}).get("PK", {}).get("S", "")).removeprefix("SESSION#")
    return SessionChange(session_id=session_id, sequence=str(ddb.get("SequenceNumber") or ""), old=old, new=new)
