"""Erasing a student (#15) on every backend (fake, moto, DynamoDB Local) and through the read API
handler: every item and blob of the student goes, in bounded resumable steps; another student
with the same interaction ids, the same day and the same kinds of data keeps everything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from session_tracker.audit import AuditEntry
from session_tracker.blobs import DirBlobStore
from session_tracker.config import load_config
from session_tracker.erasure import erase_student
from session_tracker.matching import MatchSettings, ingest_platform_event
from session_tracker.models import InteractionIn
from session_tracker.platforms.generic import adapter
from session_tracker.sessions import log_interactions

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
TIMEOUT = timedelta(minutes=10)
BIG = 70 * 1024  # over the 64 KB inline limit: goes to the blob store
ADMIN = "test-admin-token"
READ = "test-read-token"


@pytest.fixture
def blobs(tmp_path: Path) -> DirBlobStore:
    return DirBlobStore(tmp_path / "blobs")


def _seed(store, blobs: DirBlobStore, student: str, *, sessions: int = 2) -> list[str]:
    """``sessions`` sessions of ``student``, each with client ids req-{n}-a/b (the same for every
    student), a call id, a large argument, and a platform report with a large transcript."""
    settings = MatchSettings.from_config(load_config())
    ids = []
    for n in range(sessions):
        at = NOW + timedelta(minutes=30 * n)
        call_id = f"call-{student}-{n}"
        calls = [
            InteractionIn(
                student_id=student,
                function="save_essay",
                timestamp=at + timedelta(seconds=i),
                interaction_id=f"req-{n}-{i}",
                call_id=call_id,
                arguments={"essay": f"{student} {n} " + "x" * BIG} if i == 0 else {"q": "fractions"},
            )
            for i in range(2)
        ]
        results = log_interactions(calls, store=store, now=at + timedelta(seconds=5), timeout=TIMEOUT, blobs=blobs)
        session_id = results[0].session_id
        body = {
            "platform": "generic",
            "student_id": student,
            "call_id": call_id,
            "delivery_id": f"d-{student}-{n}",
            "started_at": (at - timedelta(seconds=30)).isoformat(),
            "ended_at": (at + timedelta(minutes=5)).isoformat(),
            "transcript": f"{student} says " + "y" * BIG,
        }
        result = ingest_platform_event(
            adapter.parse(body), store=store, blobs=blobs, now=at + timedelta(minutes=6), settings=settings
        )
        assert result.session_id == session_id, result
        ids.append(session_id)
    store.append_audit(AuditEntry(at=NOW, actor="tutor", scope="read", action="read_session", student_id=student))
    return ids


def _files(blobs: DirBlobStore, text: str) -> list[str]:
    return [str(p.relative_to(blobs.root)) for p in blobs.root.rglob("*") if p.is_file() and text in str(p)]


def _everything_of(store, blobs: DirBlobStore, student: str, session_ids: list[str]) -> dict[str, Any]:
    window = {"start": NOW - timedelta(days=2), "end": NOW + timedelta(days=2)}
    return {
        "sessions": [s for s in session_ids if store.get_session(s) is not None],
        "head": store.get_head(student),
        "links": [n for n in range(len(session_ids)) if store.get_call_link(f"call-{student}-{n}")],
        "deliveries": [n for n in range(len(session_ids)) if store.get_delivery(f"generic:d-{student}-{n}")],
        "audit": [e.action for e in store.list_audit(student_id=student, **window)[0]],
        "blobs": sorted(set(_files(blobs, student) + [f for s in session_ids for f in _files(blobs, s)])),
    }


def test_erasure_removes_every_item_and_blob_of_the_student_and_nothing_of_another(store, blobs) -> None:
    emma = _seed(store, blobs, "erase_emma", sessions=3)
    liam = _seed(store, blobs, "erase_liam", sessions=2)
    before = _everything_of(store, blobs, "erase_emma", emma)
    assert len(before["sessions"]) == 3 and before["head"] and len(before["links"]) == 3
    assert len(before["deliveries"]) == 3 and before["audit"] and len(before["blobs"]) == 6
    liam_before = _everything_of(store, blobs, "erase_liam", liam)

    pages = []
    for _ in range(10):  # one session per request: bounded, carried on by the next request
        pages.append(erase_student("erase_emma", store=store, blobs=blobs, now=NOW, max_sessions=1))
        if pages[-1].complete:
            break
    assert [p.complete for p in pages] == [False, False, False, True] or [p.complete for p in pages] == [
        False,
        False,
        True,
    ]
    assert sum(p.sessions_deleted for p in pages) == 3
    assert sum(p.interactions_deleted for p in pages) == 6
    assert sum(p.blobs_deleted for p in pages) == 6  # 3 transcripts + 3 arguments
    after = _everything_of(store, blobs, "erase_emma", emma)
    assert after == {"sessions": [], "head": None, "links": [], "deliveries": [], "audit": [], "blobs": []}
    assert _everything_of(store, blobs, "erase_liam", liam) == liam_before

    again = erase_student("erase_emma", store=store, blobs=blobs, now=NOW)
    assert again.complete and again.counts() == {"sessions_deleted": 0, "interactions_deleted": 0, "blobs_deleted": 0}
    # the idempotency markers went too: the same client ids are new calls now, not retries
    redo = log_interactions(
        [InteractionIn(student_id="erase_emma", function="f", timestamp=NOW, interaction_id="req-0-0")],
        store=store,
        now=NOW,
        timeout=TIMEOUT,
    )
    assert not redo[0].duplicate
    liam_retry = log_interactions(
        [InteractionIn(student_id="erase_liam", function="f", timestamp=NOW, interaction_id="req-0-0")],
        store=store,
        now=NOW,
        timeout=TIMEOUT,
    )
    assert liam_retry[0].duplicate and liam_retry[0].session_id == liam[0]


class _Crashing:
    """A blob store that fails once, after the first deletes: an erasure interrupted midway."""

    def __init__(self, inner: DirBlobStore, after: int) -> None:
        self.inner, self.left = inner, after

    def delete_prefix(self, prefix: str) -> int:
        if self.left == 0:
            self.left = -1
            raise ConnectionError("the blob store went away")
        self.left -= 1
        return self.inner.delete_prefix(prefix)


def test_an_interrupted_or_timed_out_erasure_finishes_on_retry(store, blobs) -> None:
    emma = _seed(store, blobs, "erase_emma", sessions=2)
    with pytest.raises(ConnectionError):
        erase_student("erase_emma", store=store, blobs=_Crashing(blobs, after=1), now=NOW)
    ticks = iter(range(100))
    partial = erase_student("erase_emma", store=store, blobs=blobs, now=NOW, deadline=0.5, clock=lambda: next(ticks))
    assert not partial.complete and partial.sessions_deleted == 1  # the deadline passed after one session
    done = erase_student("erase_emma", store=store, blobs=blobs, now=NOW)
    assert done.complete
    assert partial.sessions_deleted + done.sessions_deleted == 2
    after = _everything_of(store, blobs, "erase_emma", emma)
    assert after == {"sessions": [], "head": None, "links": [], "deliveries": [], "audit": [], "blobs": []}


def test_no_item_naming_the_student_is_left_in_the_table(dynamo_store, blobs) -> None:
    _seed(dynamo_store, blobs, "erase_emma", sessions=2)
    liam = _seed(dynamo_store, blobs, "erase_liam", sessions=1)
    assert erase_student("erase_emma", store=dynamo_store, blobs=blobs, now=NOW).complete
    items = dynamo_store.client.scan(TableName=dynamo_store.table_name)["Items"]  # test only: the code never scans
    assert "erase_emma" not in json.dumps(items)
    assert liam[0] in json.dumps(items) and "erase_liam" in json.dumps(items)


# --------------------------------------------------------------- assigned unmatched platform data
def _unmatched(store, blobs: DirBlobStore, call_id: str, at: datetime, secret: str) -> str:
    """An unmatched platform report (no student) whose transcript and metadata are blobs under its own id."""
    body = {
        "platform": "generic",
        "call_id": call_id,
        "delivery_id": f"d-{call_id}",
        "started_at": (at - timedelta(seconds=30)).isoformat(),
        "ended_at": (at + timedelta(minutes=5)).isoformat(),
        "transcript": f"{secret} " + "u" * BIG,
        "metadata": {"notes": f"{secret} " + "m" * (20 * 1024)},
    }
    result = ingest_platform_event(
        adapter.parse(body),
        store=store,
        blobs=blobs,
        now=at + timedelta(minutes=6),
        settings=MatchSettings.from_config(load_config()),
    )
    assert result.status == "unmatched" and result.session_id, result
    return result.session_id


def _blobs_holding(blobs: DirBlobStore, text: str) -> list[str]:
    return sorted(
        str(p.relative_to(blobs.root)) for p in blobs.root.rglob("*") if p.is_file() and text in p.read_text()
    )


@pytest.mark.parametrize("outcome", ["created", "merged"])
def test_erasure_removes_the_blobs_and_markers_of_unmatched_data_assigned_to_the_student(
    store, blobs, outcome: str
) -> None:
    from session_tracker.review import AssignRequest, assign_session

    settings = MatchSettings.from_config(load_config())
    liam = _seed(store, blobs, "erase_liam", sessions=1)
    at = NOW + timedelta(days=1) if outcome == "created" else NOW  # merged: lands on emma's first session
    emma = _seed(store, blobs, "erase_emma", sessions=1)
    source = _unmatched(store, blobs, f"conv-{outcome}", at, "EMMA-UNMATCHED-SECRET")
    other = _unmatched(store, blobs, "conv-other", NOW + timedelta(days=3), "NOBODY-SECRET")
    assert _blobs_holding(blobs, "EMMA-UNMATCHED-SECRET")  # transcripts/{source}/ and platform/{source}/
    result = assign_session(
        source,
        AssignRequest(student_id="erase_emma"),
        store=store,
        blobs=blobs,
        now=at + timedelta(minutes=10),
        match_window=settings.match_window,
    )
    assert result.outcome == outcome
    assert store.get_assignment(source) == result.session_id
    liam_before = _everything_of(store, blobs, "erase_liam", liam)
    other_blobs = _blobs_holding(blobs, "NOBODY-SECRET")
    assert other_blobs

    done = erase_student("erase_emma", store=store, blobs=blobs, now=NOW)
    assert done.complete and done.sessions_deleted == len({*emma, result.session_id})

    assert _blobs_holding(blobs, "EMMA-UNMATCHED-SECRET") == []
    assert _files(blobs, source) == []
    assert store.get_assignment(source) is None  # DELIVERY#assign:{source}
    assert store.get_delivery(f"generic:d-conv-{outcome}") is None  # the source's own delivery marker
    assert store.get_call_link(f"conv-{outcome}") is None
    assert store.get_session(result.session_id) is None
    # another student and unmatched data nobody was given keep everything
    assert _everything_of(store, blobs, "erase_liam", liam) == liam_before
    assert _blobs_holding(blobs, "NOBODY-SECRET") == other_blobs
    assert store.get_session(other) is not None and store.get_delivery("generic:d-conv-other") == other
    if hasattr(store, "client"):  # the table: nothing names the source session any more
        items = json.dumps(store.client.scan(TableName=store.table_name)["Items"])  # test only
        assert source not in items and "erase_emma" not in items
