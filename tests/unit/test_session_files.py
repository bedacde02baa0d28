"""Session files (session_tracker.session_files): idempotent, ordered, one write per session per
batch, failures reported for the stream to retry. Moto-backed store, a recording sink."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from helpers import call, minutes

from session_tracker.lifecycle import close_idle_sessions
from session_tracker.models import SessionMeta
from session_tracker.session_files import (
    SessionChange,
    SessionKeptChanging,
    file_body,
    file_key,
    sync_batch,
    sync_session,
)
from session_tracker.sessions import log_interactions, read_export
from session_tracker.store import _values, meta_to_item, serialize, session_key
from session_tracker.store.dynamo_stream import session_change as change_from_record

TIMEOUT = minutes(10)
AT = datetime(2026, 1, 17, 14, 30, tzinfo=UTC)


class Sink:
    """Keeps objects in memory and every operation in order."""

    def __init__(self, fail_for: str | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.ops: list[tuple[str, str]] = []
        self.fail_for = fail_for

    def put(self, key: str, data: bytes, *, content_type: str = "application/json") -> str:
        if self.fail_for and self.fail_for in key:
            raise ConnectionError("S3 is down")
        self.ops.append(("put", key))
        self.objects[key] = data
        return key

    def delete(self, key: str) -> None:
        self.ops.append(("delete", key))
        self.objects.pop(key, None)

    def doc(self, key: str) -> dict[str, Any]:
        return json.loads(self.objects[key])


def closed(store, student: str = "emma_smith", at: datetime = AT) -> str:
    sid = log_interactions([call(student, at=at)], store=store, now=at, timeout=TIMEOUT)[0].session_id
    close_idle_sessions(store=store, now=at + minutes(30), timeout=TIMEOUT, request_analysis=False, workers=1)
    return sid


def image(store, sid: str) -> dict[str, Any]:
    out = store.client.get_item(TableName=store.table_name, Key=serialize(session_key(sid)), ConsistentRead=True)
    return out["Item"]


def record(sid: str, seq: str, new: dict | None, old: dict | None = None) -> dict[str, Any]:
    ddb: dict[str, Any] = {"Keys": serialize(session_key(sid)), "SequenceNumber": seq}
    if new is not None:
        ddb["NewImage"] = new
    if old is not None:
        ddb["OldImage"] = old
    return {"eventName": "MODIFY", "dynamodb": ddb}


def set_analysis(store, sid: str, analysis: dict[str, Any]) -> None:
    store.client.update_item(
        TableName=store.table_name,
        Key=serialize(session_key(sid)),
        UpdateExpression="SET analysis = :a",
        ExpressionAttributeValues=_values(a=analysis),
    )


def test_the_file_is_the_export_as_one_line_under_the_utc_start_day(moto_store) -> None:
    sid = closed(moto_store)
    sink = Sink()
    assert sync_session(sid, store=moto_store, blobs=None, sink=sink) == "written"
    key = f"sessions/date=2026-01-17/{sid}.json"
    assert list(sink.objects) == [key]
    assert sink.objects[key].count(b"\n") == 1 and sink.objects[key].endswith(b"\n")
    assert sink.doc(key) == json.loads(read_export(sid, store=moto_store).model_dump_json())


def test_the_day_is_the_utc_day_of_the_start_time() -> None:
    late_evening = datetime.fromisoformat("2026-01-17T23:59:00-05:00")
    assert file_key("s", late_evening) == "sessions/date=2026-01-18/s.json"


def test_syncing_again_writes_the_same_object(moto_store) -> None:
    sid = closed(moto_store)
    first, second = Sink(), Sink()
    sync_session(sid, store=moto_store, blobs=None, sink=first)
    sync_session(sid, store=moto_store, blobs=None, sink=second)
    assert first.objects == second.objects


def test_an_older_record_processed_last_does_not_bring_back_an_older_version(moto_store) -> None:
    sid = closed(moto_store)
    old_image = image(moto_store, sid)
    set_analysis(moto_store, sid, {"status": "ok", "session_summary": "Fractions."})
    new_image = image(moto_store, sid)
    sink = Sink()
    newer = change_from_record(record(sid, "200", new_image, old_image))
    older = change_from_record(record(sid, "100", old_image, None))
    # the newer change first, then a retried / redriven older one
    sync_batch([newer], store=moto_store, blobs=None, sink=sink)
    sync_batch([older], store=moto_store, blobs=None, sink=sink)
    assert sink.doc(f"sessions/date=2026-01-17/{sid}.json")["analysis"]["status"] == "ok"


def test_a_change_landing_between_the_read_and_the_write_is_written_too(moto_store) -> None:
    sid = closed(moto_store)

    class Racing(Sink):
        """Another writer changes the session while this one is writing the version it read."""

        raced = False

        def put(self, key: str, data: bytes, *, content_type: str = "application/json") -> str:
            out = super().put(key, data, content_type=content_type)
            if not self.raced:
                self.raced = True
                set_analysis(moto_store, sid, {"status": "ok", "session_summary": "newer"})
            return out

    sink = Racing()
    assert sync_session(sid, store=moto_store, blobs=None, sink=sink) == "written"
    assert [op for op, _ in sink.ops] == ["put", "put"]
    assert sink.doc(f"sessions/date=2026-01-17/{sid}.json")["analysis"]["session_summary"] == "newer"


def test_a_session_that_never_stops_changing_is_left_to_the_streams_retry(moto_store) -> None:
    sid = closed(moto_store)

    class Churning(Sink):
        n = 0

        def put(self, key: str, data: bytes, *, content_type: str = "application/json") -> str:
            self.n += 1
            set_analysis(moto_store, sid, {"status": "ok", "session_summary": f"v{self.n}"})
            return super().put(key, data, content_type=content_type)

    with pytest.raises(SessionKeptChanging):
        sync_session(sid, store=moto_store, blobs=None, sink=Churning())


def test_several_records_of_a_session_in_one_batch_are_one_write(moto_store) -> None:
    sid = closed(moto_store)
    first = image(moto_store, sid)
    set_analysis(moto_store, sid, {"status": "failed", "error": "timeout"})
    second = image(moto_store, sid)
    set_analysis(moto_store, sid, {"status": "ok"})
    third = image(moto_store, sid)
    sink = Sink()
    changes = [
        change_from_record(record(sid, "1", first)),
        change_from_record(record(sid, "2", second, first)),
        change_from_record(record(sid, "3", third, second)),
    ]
    outcome = sync_batch(changes, store=moto_store, blobs=None, sink=sink)
    assert outcome.puts == 1 and outcome.written == [sid]
    assert sink.doc(f"sessions/date=2026-01-17/{sid}.json")["analysis"] == {"status": "ok"}


def test_a_change_of_bookkeeping_flags_only_writes_nothing(moto_store) -> None:
    sid = closed(moto_store)
    before = image(moto_store, sid)
    after = {**before, "pending_analysis": {"BOOL": True}, "updated_at": {"S": "2026-01-17T15:30:00.000000Z"}}
    sink = Sink()
    outcome = sync_batch([change_from_record(record(sid, "9", after, before))], store=moto_store, blobs=None, sink=sink)
    assert sink.ops == [] and outcome.unchanged == [sid]


def test_a_failing_write_reports_the_sessions_first_record_and_the_others_are_still_written(moto_store) -> None:
    bad = closed(moto_store, "ada")
    good = closed(moto_store, "grace")
    sink = Sink(fail_for=bad)
    changes = [
        change_from_record(record(bad, "10", image(moto_store, bad))),
        change_from_record(record(good, "11", image(moto_store, good))),
        change_from_record(record(bad, "12", image(moto_store, bad))),
    ]
    errors: list[str] = []
    outcome = sync_batch(changes, store=moto_store, blobs=None, sink=sink, on_error=lambda s, e: errors.append(s))
    assert outcome.failed == ["10"]
    assert errors == [bad]
    assert list(sink.objects) == [f"sessions/date=2026-01-17/{good}.json"]


def test_a_removed_session_deletes_its_file_under_every_day_it_had(moto_store) -> None:
    gone = SessionMeta(
        session_id="ada_20260117_2359", student_id="ada", start_time=AT, last_activity=AT, status="closed"
    )
    item = serialize(meta_to_item(gone, expires_at=None))
    sink = Sink()
    sink.objects[f"sessions/date=2026-01-17/{gone.session_id}.json"] = b"{}\n"
    removed = change_from_record({"eventName": "REMOVE", "dynamodb": {"SequenceNumber": "5", "OldImage": item}})
    outcome = sync_batch([removed], store=moto_store, blobs=None, sink=sink)
    assert outcome.deleted == [gone.session_id] and sink.objects == {}


def test_a_record_with_an_unreadable_image_is_still_synced_by_its_key(moto_store) -> None:
    sid = closed(moto_store)
    change = change_from_record(record(sid, "1", {"status": {"S": "closed"}}))
    assert change == SessionChange(session_id=sid, sequence="1", old=None, new=None)
    sink = Sink()
    sync_batch([change], store=moto_store, blobs=None, sink=sink)
    assert list(sink.objects) == [f"sessions/date=2026-01-17/{sid}.json"]


def test_file_body_is_exactly_the_read_api_json(moto_store) -> None:
    sid = closed(moto_store)
    export = read_export(sid, store=moto_store)
    assert json.loads(file_body(export)) == json.loads(export.model_dump_json())
