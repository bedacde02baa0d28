"""What ``session-tracker migrate`` writes for each v1 item (pure: no AWS imports, no I/O).

Storage v2 (issue #14) keeps calls in the student's partition and the HEAD at ``I~HEAD``
(see :mod:`session_tracker.store.keys`). A table filled by the v1 code holds:

======================================  =============================================
v1 item                                 what the migration does
======================================  =============================================
``SESSION#{sid}`` / ``I#{ts}#{iid}``    moved with its session (below); skipped alone
``SESSION#{sid}`` / ``META`` (no        the session step: copy each call to
``layout``)                             ``STUDENT#{student}`` / ``I#{ts}#{iid}`` (same
                                        attributes), delete the old call items, then
                                        ``SET layout = 2`` (last: the flag means done)
``STUDENT#{s}`` / ``HEAD``              put ``I~HEAD`` (same attributes, ``version = 1``)
                                        unless v2 wrote one already, delete ``HEAD``
``IID#{s}#{iid}`` / ``IID``             deleted (v2 detects retries by the call's key)
anything else (``layout = 2`` records,  left as it is: v2 reads them as they are
call links, deliveries, usage, keys,
audit, v2 calls and HEADs)
======================================  =============================================

Every step is idempotent: rerunning after an interruption at any point repeats the copies
(identical items), finds the deleted items gone, and a record that has ``layout = 2`` is done.
Items are DynamoDB JSON (``{"PK": {"S": ...}, ...}``, as ``Scan`` returns them) and are copied
attribute for attribute, never through a model (sets stay sets, numbers keep their digits);
the module is plain Python, unit-tested without AWS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from session_tracker.store.keys import CALL_SK_PREFIX, LAYOUT_VERSION, V2_HEAD_SK, student_pk

CHECKPOINT_KEY = {"PK": {"S": "MIGRATION#storage-v2"}, "SK": {"S": "CHECKPOINT"}}
"""The migration's own item: the scan cursor and the running totals (resume from it)."""

V1_HEAD_SK = "HEAD"
V1_MARKER_SK = "IID"


@dataclass(frozen=True)
class Put:
    """Write ``item``; with ``if_absent`` only when no item has its key (else leave that one)."""

    item: dict[str, Any]
    if_absent: bool = False


@dataclass(frozen=True)
class Delete:
    key: dict[str, Any]


@dataclass(frozen=True)
class MarkMigrated:
    """``SET layout = 2, migrated_at = now`` on a session record that has no ``layout`` yet."""

    key: dict[str, Any]
    calls: int


Write = Put | Delete | MarkMigrated
Kind = Literal["session", "v1_call", "head", "marker", "checkpoint", "keep"]


@dataclass(frozen=True)
class ItemPlan:
    """What one scanned item asks for: ``writes`` now, or (``session``) the session step,
    which needs the session's calls first (:func:`plan_session`)."""

    kind: Kind
    writes: tuple[Write, ...] = ()
    session_id: str | None = None


@dataclass
class Totals:
    """Counts of one run (or of every run so far, in the checkpoint)."""

    scanned: int = 0
    sessions: int = 0
    calls: int = 0
    heads: int = 0
    markers: int = 0
    kept: int = 0
    writes: int = 0

    def add(self, other: Totals) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class SessionPlan:
    writes: list[Write] = field(default_factory=list)
    calls: int = 0


Item = Mapping[str, Any]
"""An item in DynamoDB JSON."""


def text(item: Item, name: str) -> str:
    """The string attribute ``name`` of ``item`` ('' when absent or not a string)."""
    value = item.get(name)
    return str(value.get("S", "")) if isinstance(value, Mapping) else ""


def key_of(item: Item) -> dict[str, Any]:
    return {"PK": item["PK"], "SK": item["SK"]}


def is_v1_session_record(item: Item) -> bool:
    return text(item, "PK").startswith("SESSION#") and text(item, "SK") == "META" and "layout" not in item


def plan_item(item: Item) -> ItemPlan:
    """The plan for one scanned item."""
    pk, sk = text(item, "PK"), text(item, "SK")
    if pk == CHECKPOINT_KEY["PK"]["S"]:
        return ItemPlan("checkpoint")
    if pk.startswith("SESSION#"):
        if sk == "META":
            if "layout" in item:
                return ItemPlan("keep")
            return ItemPlan("session", session_id=pk.removeprefix("SESSION#"))
        if sk.startswith(CALL_SK_PREFIX):
            return ItemPlan("v1_call", session_id=pk.removeprefix("SESSION#"))
        return ItemPlan("keep")
    if pk.startswith("STUDENT#") and sk == V1_HEAD_SK:
        head = {**dict(item), "SK": {"S": V2_HEAD_SK}, "version": {"N": "1"}}
        return ItemPlan("head", (Put(head, if_absent=True), Delete(key_of(item))))
    if pk.startswith("IID#") and sk == V1_MARKER_SK:
        return ItemPlan("marker", (Delete(key_of(item)),))
    return ItemPlan("keep")


def v2_call(call: Item, meta: Item) -> dict[str, Any]:
    """A v1 call item at its v2 key: same attributes, in its student's partition."""
    session_id = text(meta, "PK").removeprefix("SESSION#")
    student = text(call, "student_id") or text(meta, "student_id")
    return {
        **dict(call),
        "PK": {"S": student_pk(student)},
        "session_id": {"S": text(call, "session_id") or session_id},
        "student_id": {"S": student},
    }


def plan_session(meta: Item, calls: Sequence[Item]) -> SessionPlan:
    """Move a v1 session's calls (``calls``: every ``I#`` item under its ``SESSION#`` key).

    Order matters and is kept by the executor: every copy is written before any old item is
    deleted, and the record is marked last, so a reader in between finds each call (the v1
    read looks at both places) and a rerun after an interruption finishes the job.
    """
    if not is_v1_session_record(meta):
        return SessionPlan()
    plan = SessionPlan(calls=len(calls))
    plan.writes += [Put(v2_call(c, meta)) for c in calls]
    plan.writes += [Delete(key_of(c)) for c in calls]
    plan.writes.append(MarkMigrated(key_of(meta), calls=len(calls)))
    return plan


__all__ = [
    "CHECKPOINT_KEY",
    "LAYOUT_VERSION",
    "Delete",
    "ItemPlan",
    "MarkMigrated",
    "Put",
    "SessionPlan",
    "Totals",
    "Write",
    "is_v1_session_record",
    "key_of",
    "plan_item",
    "plan_session",
    "text",
    "v2_call",
]
