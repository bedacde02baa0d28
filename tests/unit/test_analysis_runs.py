"""The analyzer end to end on a moto store, against the fake OpenAI-compatible HTTP server.

The openai SDK is real (pointed at the fake with OPENAI_BASE_URL); nothing is mocked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from helpers import T0, call, minutes

from session_tracker.analysis import analyze_session, daily_usage, openai_model_factory, request_analysis
from session_tracker.config import AnalysisConfig
from session_tracker.errors import Conflict, NotFound
from session_tracker.lifecycle import close_idle_sessions
from session_tracker.models import PlatformWrite, iso
from session_tracker.sessions import log_interactions
from session_tracker.store import _values, serialize, session_key

PROMPTS = {
    "session_summary": "PROMPT-S: summarise the session for the teacher.",
    "progress_update": "PROMPT-P: describe progress against previous sessions.",
    "learning_insights": "PROMPT-L: how does this student learn?",
    "parent_note": "PROMPT-N: a short note for the parents.",
}
NOW = T0 + timedelta(hours=2)


class Clock:
    """Injected clock; ``sleep`` advances it and applies writes scheduled by then."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.scheduled: list[tuple[datetime, object]] = []
        self.slept = 0.0

    def __call__(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.at += timedelta(seconds=seconds)
        due = [(t, f) for t, f in self.scheduled if t <= self.at]
        self.scheduled = [(t, f) for t, f in self.scheduled if t > self.at]
        for _, fn in due:
            fn()


def cfg(**kw) -> AnalysisConfig:
    kw.setdefault("prompts", PROMPTS)
    kw.setdefault("max_retries", 1)
    kw.setdefault("timeout_seconds", 5)
    return AnalysisConfig(**kw)


def new_session(store, student="emma_smith", at=T0) -> str:
    items = [
        call(student, at=at, subjects=["mathematics"], data_provided=["profile"]),
        call(student, at=at + minutes(3), function="check_answer", arguments={"problem": "1/2+1/3"}),
    ]
    return log_interactions(items, store=store, now=at + minutes(3), timeout=minutes(10))[0].session_id


def platform_data(store, session_id: str, transcript: str, at: datetime, status: str = "completed") -> None:
    """What the webhook leaves: status, conversation, and the analysis trigger flags."""
    meta, version = store.get_session_versioned(session_id)
    store.write_platform_data(
        PlatformWrite(
            session_id=session_id,
            student_id=meta.student_id,
            delivery_id=f"test-{session_id}-{iso(at)}",
            platform="vapi",
            status=status,
            end_time=at,
            conversation={"transcript": transcript, "source": "vapi", "word_count": 4},
            expected_version=version,
            now=at,
        )
    )


def run(store, session_id: str, config: AnalysisConfig, clock: Clock):
    return analyze_session(
        session_id,
        store=store,
        blobs=None,
        config=config,
        model_factory=openai_model_factory(config),
        clock=clock,
        sleep=clock.sleep,
    )


def test_completing_a_session_produces_one_analysis_with_the_configured_prompts(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: What is 1/2 + 1/3?\nUser: Five sixths!", NOW)
    outcome = run(fake_store, sid, cfg(), Clock(NOW))
    assert outcome.action == "analysed"
    (request,) = fake_openai.completions()
    for text in PROMPTS.values():
        assert text in request.text
    assert "Five sixths!" in request.text and "check_answer" in request.text
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["response_format"]["type"] == "json_schema"
    assert request.body["response_format"]["json_schema"]["strict"] is True
    assert set(request.schema["properties"]) == set(PROMPTS)
    assert request.headers["authorization"] == "Bearer sk-fake-test"
    analysis = fake_store.get_analysis_state(sid).analysis
    assert analysis["status"] == "ok"
    assert analysis["parent_note"] == "fake parent_note for gpt-4o-mini"
    assert analysis["model"] == "gpt-4o-mini" and analysis["model_version"] == "gpt-4o-mini-fake"
    assert set(analysis["prompt_versions"]) == set(PROMPTS) and len(analysis["input_hash"]) == 64
    assert analysis["tokens"]["input"] > 0 and analysis["tokens"]["total"] > analysis["tokens"]["input"]
    assert analysis["cost_usd"] > 0 and analysis["truncated"] is False
    assert analysis["analyzed_at"] == iso(NOW)
    assert not fake_store.get_analysis_state(sid).pending


def test_a_second_record_for_the_same_content_makes_no_model_call(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: hi", NOW)
    run(fake_store, sid, cfg(), Clock(NOW))
    assert run(fake_store, sid, cfg(), Clock(NOW)).action == "not_pending"
    request_analysis(sid, store=fake_store, now=NOW + minutes(1), config=cfg())
    assert run(fake_store, sid, cfg(), Clock(NOW + minutes(1))).action == "unchanged"
    assert len(fake_openai.completions()) == 1
    assert not fake_store.get_analysis_state(sid).pending


def test_a_changed_prompt_re_analyses(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: hi", NOW)
    run(fake_store, sid, cfg(), Clock(NOW))
    first = fake_store.get_analysis_state(sid).analysis
    changed = cfg(prompts={**PROMPTS, "parent_note": "PROMPT-N2: a note for the parents, in French."})
    request_analysis(sid, store=fake_store, now=NOW + minutes(1), config=changed)
    assert run(fake_store, sid, changed, Clock(NOW + minutes(1))).action == "analysed"
    second = fake_store.get_analysis_state(sid).analysis
    assert len(fake_openai.completions()) == 2
    assert "PROMPT-N2" in fake_openai.completions()[1].text
    assert second["prompt_versions"]["parent_note"] != first["prompt_versions"]["parent_note"]
    assert second["prompt_versions"]["session_summary"] == first["prompt_versions"]["session_summary"]


def test_disabled_analysis_makes_no_call_and_clears_the_flag(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: hi", NOW)
    outcome = run(fake_store, sid, cfg(enabled=False), Clock(NOW))
    assert outcome.action == "disabled"
    assert fake_openai.requests == []
    state = fake_store.get_analysis_state(sid)
    assert not state.pending and state.analysis["status"] == "skipped"


def test_a_trigger_missing_from_the_config_makes_no_call(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: hi", NOW)
    assert run(fake_store, sid, cfg(triggers=["on_request"]), Clock(NOW)).action == "not_triggered"
    assert fake_openai.requests == []


def test_a_failing_endpoint_marks_the_session_failed_and_a_request_retries_it(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: hi", NOW)
    fake_openai.fail_always(500)
    outcome = run(fake_store, sid, cfg(max_retries=2), Clock(NOW))
    assert outcome.action == "failed"
    assert len(fake_openai.completions()) == 3  # the SDK retried twice, with backoff
    state = fake_store.get_analysis_state(sid)
    assert not state.pending
    assert state.analysis["status"] == "failed" and "HTTP 500" in state.analysis["error"]
    assert state.analysis["attempts"] == 1
    assert daily_usage(fake_store, NOW.date().isoformat(), config=cfg()).failures == 1

    fake_openai.recover()
    request_analysis(sid, store=fake_store, now=NOW + minutes(5), config=cfg())
    assert run(fake_store, sid, cfg(), Clock(NOW + minutes(5))).action == "analysed"
    assert fake_store.get_analysis_state(sid).analysis["status"] == "ok"


def test_a_slow_endpoint_times_out_and_is_marked_failed(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: hi", NOW)
    fake_openai.set_delay(1.5)
    outcome = run(fake_store, sid, cfg(timeout_seconds=0.3, max_retries=0), Clock(NOW))
    assert outcome.action == "failed" and "timed out" in outcome.detail


def test_an_answer_that_does_not_match_the_schema_is_a_failure(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: hi", NOW)
    fake_openai.reply_with(lambda body: {"session_summary": "only one field"})
    outcome = run(fake_store, sid, cfg(), Clock(NOW))
    assert outcome.action == "failed"
    assert "schema" in fake_store.get_analysis_state(sid).analysis["error"]


def test_a_missing_api_key_is_a_recorded_failure_without_a_call(fake_store, fake_openai, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: hi", NOW)
    assert run(fake_store, sid, cfg(), Clock(NOW)).action == "failed"
    assert "API key is not configured" in fake_store.get_analysis_state(sid).analysis["error"]
    assert fake_openai.requests == []


def test_the_daily_budget_stops_analysis_when_exhausted(fake_store, fake_openai) -> None:
    first = new_session(fake_store, "amy")
    second = new_session(fake_store, "bob")
    for sid in (first, second):
        platform_data(fake_store, sid, "AI: hi", NOW)
    budget = cfg(max_sessions_per_day=1)
    assert run(fake_store, first, budget, Clock(NOW)).action == "analysed"
    assert run(fake_store, second, budget, Clock(NOW)).action == "budget"
    assert len(fake_openai.completions()) == 1
    skipped = fake_store.get_analysis_state(second).analysis
    assert skipped["status"] == "skipped" and "max_sessions_per_day=1" in skipped["reason"]
    usage = daily_usage(fake_store, NOW.date().isoformat(), config=budget)
    assert usage.sessions == 1 and usage.analyses == 1 and usage.max_sessions_per_day == 1
    assert usage.input_tokens > 0 and usage.cost_usd > 0
    # the next day has a fresh budget
    request_analysis(second, store=fake_store, now=NOW + timedelta(days=1), config=budget)
    assert run(fake_store, second, budget, Clock(NOW + timedelta(days=1))).action == "analysed"


def test_a_zero_budget_makes_no_call(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: hi", NOW)
    assert run(fake_store, sid, cfg(max_sessions_per_day=0), Clock(NOW)).action == "budget"
    assert fake_openai.requests == []


def test_a_burst_of_late_data_yields_one_re_analysis(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: first version", NOW)
    run(fake_store, sid, cfg(), Clock(NOW))
    clock = Clock(NOW + minutes(30))
    platform_data(fake_store, sid, "AI: late 1", clock.at)
    for n in range(2, 6):
        at = clock.at + timedelta(seconds=2 * n)
        clock.scheduled.append((at, lambda n=n, at=at: platform_data(fake_store, sid, f"AI: late {n}", at)))
    assert run(fake_store, sid, cfg(debounce_seconds=5), clock).action == "analysed"
    assert len(fake_openai.completions()) == 2
    assert "AI: late 5" in fake_openai.completions()[1].text
    assert clock.slept >= 5
    assert not fake_store.get_analysis_state(sid).pending


def test_content_arriving_during_the_model_call_is_analysed_too(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    platform_data(fake_store, sid, "AI: before", NOW)
    writes = iter([lambda: platform_data(fake_store, sid, "AI: arrived meanwhile", NOW + timedelta(seconds=1))])

    def reply(body):
        next(writes, lambda: None)()
        return {name: f"answer {name}" for name in PROMPTS}

    fake_openai.reply_with(reply)
    outcome = run(fake_store, sid, cfg(), Clock(NOW + timedelta(seconds=1)))
    assert outcome.action == "analysed" and outcome.rounds == 2
    assert "AI: arrived meanwhile" in fake_openai.completions()[1].text
    assert not fake_store.get_analysis_state(sid).pending


def test_previous_sessions_feed_the_next_analysis(fake_store, fake_openai) -> None:
    first = new_session(fake_store, at=T0)
    platform_data(fake_store, first, "AI: session one", NOW)
    run(fake_store, first, cfg(), Clock(NOW))
    second = new_session(fake_store, at=T0 + timedelta(days=1))
    platform_data(fake_store, second, "AI: session two", NOW + timedelta(days=1))
    run(fake_store, second, cfg(), Clock(NOW + timedelta(days=1)))
    text = fake_openai.completions()[1].text
    assert first in text and "fake progress_update for gpt-4o-mini" in text
    assert fake_store.get_analysis_state(second).analysis["context_sessions"] == [first]


def test_a_session_closed_by_the_idle_closer_is_analysed(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    close_idle_sessions(store=fake_store, now=NOW, timeout=minutes(10), request_analysis=True, workers=1)
    assert run(fake_store, sid, cfg(), Clock(NOW)).action == "analysed"
    assert "status: closed" in fake_openai.completions()[0].text


def test_an_active_session_is_not_analysed_on_completion_trigger(moto_store, fake_openai) -> None:
    sid = new_session(moto_store)
    moto_store.client.update_item(
        TableName=moto_store.table_name,
        Key=serialize(session_key(sid)),
        UpdateExpression="SET pending_analysis = :t, content_updated_at = :at",
        ExpressionAttributeValues=_values(t=True, at=iso(NOW)),
    )
    assert run(moto_store, sid, cfg(), Clock(NOW)).action == "not_triggered"
    assert fake_openai.requests == []


def test_request_analysis_answers_404_and_409(fake_store) -> None:
    with pytest.raises(NotFound):
        request_analysis("nobody_20260101_0000", store=fake_store, now=NOW, config=cfg())
    sid = new_session(fake_store)
    with pytest.raises(Conflict, match="disabled"):
        request_analysis(sid, store=fake_store, now=NOW, config=cfg(enabled=False))
    with pytest.raises(Conflict, match="on_request"):
        request_analysis(sid, store=fake_store, now=NOW, config=cfg(triggers=["on_session_complete"]))
    accepted = request_analysis(sid, store=fake_store, now=NOW, config=cfg())
    assert accepted.status == "queued" and fake_store.get_analysis_state(sid).trigger == "on_request"


def test_on_request_analyses_an_active_session(fake_store, fake_openai) -> None:
    sid = new_session(fake_store)
    request_analysis(sid, store=fake_store, now=NOW, config=cfg())
    assert run(fake_store, sid, cfg(), Clock(NOW)).action == "analysed"
    assert fake_store.get_analysis_state(sid).analysis["trigger"] == "on_request"


def test_the_usage_command_prints_the_days_totals(moto_store, fake_openai) -> None:
    import json

    from typer.testing import CliRunner

    from session_tracker_cli.cli import app

    sid = new_session(moto_store)
    platform_data(moto_store, sid, "AI: hi", NOW)
    run(moto_store, sid, cfg(), Clock(NOW))
    runner = CliRunner()
    result = runner.invoke(app, ["usage", "--date", NOW.date().isoformat(), "--table", moto_store.table_name])
    assert result.exit_code == 0, result.output
    usage = json.loads(result.output)
    assert usage["sessions"] == 1 and usage["analyses"] == 1 and usage["cost_usd"] > 0
    bad = runner.invoke(app, ["usage", "--date", "yesterday", "--table", moto_store.table_name])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
