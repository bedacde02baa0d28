"""Analysis input: prompts and their versions, the combined input, hashing, truncation, cost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import T0, minutes
from pydantic import ValidationError

from session_tracker.analysis import (
    build_input,
    cost_usd,
    output_model,
    prompt_version,
    prompts_of,
    transcript_text,
)
from session_tracker.config import AnalysisConfig
from session_tracker.models import ExportInteraction, SessionExport, SessionMeta, SessionSummary

PROMPTS = {
    "session_summary": "Summarise the session in two sentences.",
    "progress_update": "Describe the progress since the previous sessions.",
    "learning_insights": "List insights about how the student learns.",
    "parent_note": "Write a friendly note for the parents.",
}


def cfg(**kw) -> AnalysisConfig:
    return AnalysisConfig(prompts=PROMPTS, **kw)


def export(transcript: str = "AI: Hello\nUser: Hi", calls: int = 3, **kw) -> SessionExport:
    return SessionExport(
        session_id="emma_smith_20260117_1430",
        student_id="emma_smith",
        start_time=T0,
        end_time=T0 + minutes(calls),
        status="completed",
        platform="vapi",
        mcp_interactions=[
            ExportInteraction(
                timestamp=T0 + minutes(n),
                function="check_answer" if n else "get_student_context",
                data_provided=["answer_feedback"],
                arguments={"problem": f"{n}/2+1/3"},
                subjects=["mathematics"],
            )
            for n in range(calls)
        ],
        conversation={"transcript": transcript, "source": "vapi"},
        session_summary=SessionSummary(
            duration_estimated="3 minutes", data_requests=calls, subjects_accessed=["mathematics"]
        ),
        **kw,
    )


def previous(n: int) -> list[SessionMeta]:
    return [
        SessionMeta(
            session_id=f"emma_smith_2026011{n - i}_1000",
            student_id="emma_smith",
            start_time=T0 - timedelta(days=i + 1),
            last_activity=T0 - timedelta(days=i + 1) + minutes(20),
            status="completed",
            session_summary={"duration_estimated": "20 minutes", "data_requests": 5, "subjects_accessed": ["maths"]},
            analysis={
                "status": "ok",
                "session_summary": f"Session {i}: practised fractions.",
                "progress_update": f"Progress {i}: adds unlike denominators.",
            },
        )
        for i in range(n)
    ]


def test_prompt_version_is_stable_and_changes_with_the_text() -> None:
    assert prompt_version("a prompt") == prompt_version("a prompt")
    assert prompt_version("a prompt") != prompt_version("a prompt.")
    assert len(prompt_version("x")) == 16


def test_defaults_are_used_only_when_no_prompt_is_configured() -> None:
    assert set(prompts_of(AnalysisConfig())) == {"session_summary", "progress_update", "learning_insights"}
    assert prompts_of(cfg()) == PROMPTS


def test_the_input_combines_prompts_pattern_transcript_and_student_context() -> None:
    inp = build_input(export("AI: What is 1/2 + 1/3?\nUser: Five sixths"), previous(2), cfg())
    for text in PROMPTS.values():
        assert text in inp.system
    assert "get_student_context" in inp.user and 'args={"problem":"1/2+1/3"}' in inp.user
    assert "Five sixths" in inp.user
    assert "Progress 0: adds unlike denominators." in inp.user and "Session 1: practised fractions." in inp.user
    assert inp.prompt_versions == {name: prompt_version(text) for name, text in PROMPTS.items()}
    assert inp.context_sessions == [m.session_id for m in previous(2)]
    assert not inp.truncated


def test_the_input_hash_follows_content_prompts_and_model() -> None:
    base = build_input(export(), [], cfg()).input_hash
    assert build_input(export(), [], cfg()).input_hash == base
    assert build_input(export("AI: Hello\nUser: Bye"), [], cfg()).input_hash != base
    assert build_input(export(), previous(1), cfg()).input_hash != base
    assert build_input(export(), [], AnalysisConfig(prompts={**PROMPTS, "parent_note": "Other."})).input_hash != base
    assert build_input(export(), [], cfg(model="gpt-4.1-mini")).input_hash != base


def test_a_long_transcript_is_cut_in_the_middle_and_the_input_says_so() -> None:
    transcript = "START of the call. " + ("User: I think it is seven. AI: Let's check. " * 4000) + "END of the call."
    inp = build_input(export(transcript), previous(3), cfg(max_input_tokens=2000))
    assert inp.truncated
    assert any(note.startswith("transcript: kept") for note in inp.truncation)
    assert "START of the call." in inp.user and "END of the call." in inp.user
    assert "characters omitted to fit the token budget" in inp.user
    assert "shortened to fit the token budget" in inp.user
    assert inp.estimated_tokens <= 2000 * 1.05


def test_many_tool_calls_keep_the_first_and_last() -> None:
    inp = build_input(export(calls=2000), [], cfg(max_input_tokens=3000))
    assert inp.truncated and any("tool calls omitted" in note for note in inp.truncation)
    assert "+0.0 min get_student_context" in inp.user and "+1999.0 min check_answer" in inp.user
    assert inp.estimated_tokens <= 3000 * 1.05


def test_a_small_session_is_not_truncated() -> None:
    inp = build_input(export(), previous(3), cfg(max_input_tokens=4000))
    assert not inp.truncated and inp.truncation == []


def test_the_output_model_has_a_field_per_prompt_and_rejects_extras() -> None:
    model = output_model(PROMPTS)
    schema = model.model_json_schema()
    assert set(schema["properties"]) == set(PROMPTS)
    assert schema["properties"]["parent_note"]["description"] == PROMPTS["parent_note"]
    with pytest.raises(ValidationError):
        model.model_validate({**dict.fromkeys(PROMPTS, "x"), "extra": "y"})
    with pytest.raises(ValidationError):
        model.model_validate({"session_summary": "x"})


def test_transcript_as_a_list_of_turns_is_rendered_as_lines() -> None:
    turns = [{"role": "assistant", "message": "Hi"}, {"role": "user", "message": "Hello"}]
    assert transcript_text({"transcript": turns}) == "assistant: Hi\nuser: Hello"
    assert transcript_text(None) == ""


def test_cost_uses_the_configured_price_per_million_tokens() -> None:
    assert cost_usd(cfg(), 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert cost_usd(cfg(model="my-local-model"), 100, 100) is None
    custom = AnalysisConfig.model_validate(
        {"model": "my-local-model", "pricing": {"my-local-model": {"input_per_million": 1, "output_per_million": 2}}}
    )
    assert cost_usd(custom, 1000, 500) == pytest.approx(0.002)
    assert "gpt-4o-mini" in custom.pricing
