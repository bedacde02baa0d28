"""The analyze function fed by DynamoDB Local's stream, wired as template.yaml declares it.

The stream poller applies the template's FilterCriteria, batching and failure handling;
the function is the real handler; OpenAI is the fake HTTP server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import call, drain, minutes, stream_poller

from session_tracker import runtime
from session_tracker.analysis import request_analysis
from session_tracker.lifecycle import close_idle_sessions
from session_tracker.models import iso
from session_tracker.sessions import log_interactions
from session_tracker.store import DynamoStore, _values, serialize, session_key

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = minutes(10)
CONFIG_PROMPTS = ("Summarize this tutoring session", "describe the progress made", "insights about how this student")


@pytest.fixture
def wired(ddb_store: DynamoStore, dynamodb_local, fake_openai, monkeypatch, tmp_path):
    """A poller + the AnalyzeFunction pool on the test table; ``configure(yaml)`` swaps the config."""
    poller = stream_poller("AnalyzeFunction", ddb_store, dynamodb_local, monkeypatch)

    def configure(text: str) -> None:
        path = tmp_path / "session_config.yaml"
        path.write_text(text)
        monkeypatch.setenv("SESSION_CONFIG", str(path))
        runtime.reset()

    yield poller, configure
    runtime.reset()


def closed_session(store: DynamoStore, student: str = "emma_smith") -> str:
    at = datetime(2026, 1, 17, 14, 30, tzinfo=UTC)
    sid = log_interactions(
        [call(student, at=at, subjects=["mathematics"]), call(student, at=at + minutes(2), function="check_answer")],
        store=store,
        now=at,
        timeout=TIMEOUT,
    )[0].session_id
    close_idle_sessions(store=store, now=at + minutes(30), timeout=TIMEOUT, request_analysis=True, workers=1)
    return sid


def analysis_of(store: DynamoStore, sid: str) -> dict[str, Any] | None:
    state = store.get_analysis_state(sid)
    return state.analysis if state else None


def test_closing_a_session_produces_exactly_one_analysis_with_the_configured_prompts(wired, ddb_store, fake_openai):
    poller, _ = wired
    sid = closed_session(ddb_store)
    drain(poller, lambda: analysis_of(ddb_store, sid) is not None)
    # more writes to the session while nothing is pending do not re-trigger
    ddb_store.client.update_item(
        TableName=ddb_store.table_name,
        Key=serialize(session_key(sid)),
        UpdateExpression="SET updated_at = :u",
        ExpressionAttributeValues=_values(u=iso(datetime.now(UTC))),
    )
    drain(poller, lambda: True)
    assert len(fake_openai.completions()) == 1
    text = fake_openai.completions()[0].text
    assert all(prompt in text for prompt in CONFIG_PROMPTS)
    analysis = analysis_of(ddb_store, sid)
    assert analysis["status"] == "ok" and analysis["model"] == "gpt-4o-mini"
    assert set(analysis["prompt_versions"]) == {"session_summary", "progress_update", "learning_insights"}
    assert poller.dead_letters == []


def test_only_the_flags_rising_edge_reaches_the_function(wired, ddb_store, fake_openai):
    poller, _ = wired
    sid = closed_session(ddb_store)
    before = poller.delivery.invocations
    # a burst of late platform data while the analysis is still pending: one invocation
    for n in range(5):
        ddb_store.client.update_item(
            TableName=ddb_store.table_name,
            Key=serialize(session_key(sid)),
            UpdateExpression="SET conversation = :c, pending_analysis = :t, content_updated_at = :at",
            ExpressionAttributeValues=_values(c={"transcript": f"AI: part {n}"}, t=True, at=iso(datetime.now(UTC))),
        )
    drain(poller, lambda: analysis_of(ddb_store, sid) is not None)
    assert poller.delivery.invocations - before == 1
    assert len(fake_openai.completions()) == 1
    assert "AI: part 4" in fake_openai.completions()[0].text


def test_disabled_analysis_makes_no_call(wired, ddb_store, fake_openai):
    poller, configure = wired
    configure("analysis:\n  enabled: false\n")
    sid = closed_session(ddb_store)
    drain(poller, lambda: not ddb_store.get_analysis_state(sid).pending)
    assert fake_openai.requests == []
    assert analysis_of(ddb_store, sid)["status"] == "skipped"


def test_a_failing_model_endpoint_marks_the_session_and_a_request_retries_it(wired, ddb_store, fake_openai):
    poller, configure = wired
    configure(
        "analysis:\n  max_retries: 1\n  prompts:\n    session_summary: Summarise it.\n    progress_update: Progress?\n"
    )
    fake_openai.fail_always(503)
    sid = closed_session(ddb_store)
    drain(poller, lambda: (analysis_of(ddb_store, sid) or {}).get("status") == "failed")
    failed = analysis_of(ddb_store, sid)
    assert "HTTP 503" in failed["error"] and poller.dead_letters == []
    assert len(fake_openai.completions()) == 2  # one try + one retry

    fake_openai.recover()
    request_analysis(sid, store=ddb_store, now=datetime.now(UTC), config=runtime.get_config().analysis)
    drain(poller, lambda: (analysis_of(ddb_store, sid) or {}).get("status") == "ok")
    assert analysis_of(ddb_store, sid)["session_summary"] == "fake session_summary for gpt-4o-mini"


def test_a_poison_record_fails_alone_and_lands_in_the_failure_destination(wired, ddb_store, fake_openai):
    poller, _ = wired
    good = closed_session(ddb_store, "good_student")
    # a session record the analyzer cannot read (status outside the model) with the flag set
    ddb_store.client.put_item(
        TableName=ddb_store.table_name,
        Item=serialize(
            {
                **session_key("poison_1"),
                "session_id": "poison_1",
                "student_id": "poison",
                "status": "exploded",
                "start_time": "2026-01-17T14:30:00.000000Z",
                "pending_analysis": True,
                "content_updated_at": iso(datetime.now(UTC)),
            }
        ),
    )
    other = closed_session(ddb_store, "other_student")
    drain(poller, lambda: bool(poller.dead_letters) and analysis_of(ddb_store, other) is not None, timeout=30)
    assert analysis_of(ddb_store, good)["status"] == "ok"
    assert analysis_of(ddb_store, other)["status"] == "ok"
    (dead,) = poller.dead_letters
    assert dead["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # retried from the failed record on (as Lambda does); the batch starts at the poison record
    assert dead["records"][0]["Keys"]["PK"] == {"S": "SESSION#poison_1"}
    assert dead["DDBStreamBatchInfo"]["startSequenceNumber"] == dead["records"][0]["SequenceNumber"]
