"""Session files (auto_save) fed by DynamoDB Local's stream, wired as template.yaml declares it.

The poller applies the SessionFilesFunction event's FilterCriteria, batching and failure
handling; the function is the real handler writing into a directory (SESSION_FILES_DIR).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import call, drain, minutes, stream_poller

from session_tracker import runtime
from session_tracker.lifecycle import close_idle_sessions
from session_tracker.models import iso
from session_tracker.sessions import log_interactions, read_export
from session_tracker.store import DynamoStore, _values, serialize, session_key

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = minutes(10)
AT = datetime(2026, 1, 17, 14, 30, tzinfo=UTC)


@pytest.fixture
def wired(ddb_store: DynamoStore, dynamodb_local, monkeypatch, tmp_path):
    """A poller + the SessionFilesFunction pool on the test table, files under tmp_path/files."""
    monkeypatch.setenv("SESSION_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.delenv("SESSION_FILES_BUCKET", raising=False)
    poller = stream_poller("SessionFilesFunction", ddb_store, dynamodb_local, monkeypatch)
    yield poller, tmp_path / "files"
    runtime.reset()


def file_of(root: Path, sid: str, day: str = "2026-01-17") -> Path:
    return root / "sessions" / f"date={day}" / f"{sid}.json"


def exported(store: DynamoStore, sid: str) -> dict:
    found = read_export(sid, store=store)
    assert found is not None
    return json.loads(found.model_dump_json())


def log(store: DynamoStore, *items) -> str:
    return log_interactions(list(items), store=store, now=max(i.timestamp for i in items), timeout=TIMEOUT)[
        0
    ].session_id


def close(store: DynamoStore, now: datetime) -> None:
    close_idle_sessions(store=store, now=now, timeout=TIMEOUT, request_analysis=True, workers=1)


def update(store: DynamoStore, sid: str, expression: str, **values) -> None:
    names = {"ExpressionAttributeNames": {"#s": "status"}} if "#s" in expression else {}
    store.client.update_item(
        TableName=store.table_name,
        Key=serialize(session_key(sid)),
        UpdateExpression=expression,
        ExpressionAttributeValues=_values(**values),
        **names,  # type: ignore[arg-type]
    )


def test_a_closed_session_becomes_its_export_under_its_start_day(wired, ddb_store) -> None:
    poller, root = wired
    sid = log(ddb_store, call(at=AT, subjects=["mathematics"]), call(at=AT + minutes(3), function="check_answer"))
    assert not file_of(root, sid).exists()
    close(ddb_store, AT + minutes(30))
    drain(poller, lambda: file_of(root, sid).exists())
    assert json.loads(file_of(root, sid).read_text()) == exported(ddb_store, sid)
    assert poller.dead_letters == []


def test_an_active_session_has_no_file_and_its_calls_never_reach_the_function(wired, ddb_store) -> None:
    poller, root = wired
    log(ddb_store, call(at=AT))
    log(ddb_store, call(at=AT + minutes(1)))
    drain(poller, lambda: poller.records_seen >= 4)
    assert poller.delivery.invocations == 0
    assert not (root / "sessions").exists()


def test_late_data_and_an_analysis_rewrite_the_file(wired, ddb_store) -> None:
    poller, root = wired
    sid = log(ddb_store, call(at=AT))
    close(ddb_store, AT + minutes(30))
    drain(poller, lambda: file_of(root, sid).exists())
    # a platform report merges: the session completes with a conversation
    update(ddb_store, sid, "SET #s = :c, conversation = :conv", c="completed", conv={"transcript": "AI: hi"})
    drain(poller, lambda: json.loads(file_of(root, sid).read_text())["status"] == "completed")
    # a late logged call into the finished session
    log(ddb_store, call(at=AT + minutes(2), function="get_hint", session_id=sid))
    drain(poller, lambda: len(json.loads(file_of(root, sid).read_text())["mcp_interactions"]) == 2)
    # the analysis lands
    update(ddb_store, sid, "SET analysis = :a", a={"status": "ok", "session_summary": "Fractions."})
    drain(poller, lambda: (json.loads(file_of(root, sid).read_text()).get("analysis") or {}).get("status") == "ok")
    assert json.loads(file_of(root, sid).read_text()) == exported(ddb_store, sid)


def test_a_deleted_session_loses_its_file(wired, ddb_store) -> None:
    poller, root = wired
    sid = log(ddb_store, call(at=AT))
    close(ddb_store, AT + minutes(30))
    drain(poller, lambda: file_of(root, sid).exists())
    ddb_store.client.delete_item(TableName=ddb_store.table_name, Key=serialize(session_key(sid)))
    drain(poller, lambda: not file_of(root, sid).exists())


def test_a_reopened_session_loses_its_file_until_it_closes_again(wired, ddb_store) -> None:
    poller, root = wired
    sid = log(ddb_store, call(at=AT))
    close(ddb_store, AT + minutes(11))
    drain(poller, lambda: file_of(root, sid).exists())
    log(ddb_store, call(at=AT + minutes(9)))  # within the timeout of the last call: reopens it
    assert ddb_store.get_session(sid).status == "active"
    drain(poller, lambda: not file_of(root, sid).exists())
    close(ddb_store, AT + minutes(40))
    drain(poller, lambda: file_of(root, sid).exists())
    assert len(json.loads(file_of(root, sid).read_text())["mcp_interactions"]) == 2


def test_a_session_moved_to_an_earlier_day_leaves_no_file_behind(wired, ddb_store) -> None:
    poller, root = wired
    midnight = datetime(2026, 1, 18, 0, 1, tzinfo=UTC)
    sid = log(ddb_store, call(at=midnight))
    close(ddb_store, midnight + minutes(30))
    drain(poller, lambda: file_of(root, sid, "2026-01-18").exists())
    earlier = midnight - timedelta(minutes=3)  # a late call from before midnight moves the start time
    update(
        ddb_store,
        sid,
        "SET start_time = :s, gsi1sk = :g, gsi3sk = :g",
        s=iso(earlier),
        g=f"{iso(earlier)}#{sid}",
    )
    drain(poller, lambda: file_of(root, sid, "2026-01-17").exists())
    assert not file_of(root, sid, "2026-01-18").exists()


def test_with_auto_save_off_nothing_is_written(wired, ddb_store, tmp_path, monkeypatch) -> None:
    poller, root = wired
    text = (ROOT / "session_config.yaml").read_text().replace("auto_save: true", "auto_save: false")
    assert "auto_save: false" in text
    (tmp_path / "off.yaml").write_text(text)
    monkeypatch.setenv("SESSION_CONFIG", str(tmp_path / "off.yaml"))
    runtime.reset()
    sid = log(ddb_store, call(at=AT))
    close(ddb_store, AT + minutes(30))
    drain(poller, lambda: poller.delivery.invocations >= 1)
    assert not file_of(root, sid).exists()
    assert poller.dead_letters == []


def test_a_write_that_keeps_failing_is_retried_then_dead_lettered(wired, ddb_store, tmp_path, monkeypatch) -> None:
    poller, _ = wired
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the folder should be: every write fails")
    monkeypatch.setenv("SESSION_FILES_DIR", str(blocked))
    runtime.reset()  # no instance is loaded yet: the first one makes its sink from this place
    sid = log(ddb_store, call(at=AT))
    close(ddb_store, AT + minutes(30))
    drain(poller, lambda: bool(poller.dead_letters), timeout=60)
    (dead,) = poller.dead_letters
    assert dead["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert [r["Keys"]["PK"]["S"] for r in dead["records"]] == [f"SESSION#{sid}"]
    assert poller.delivery.invocations == 6  # the first try and MaximumRetryAttempts: 5
