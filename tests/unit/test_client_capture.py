"""What a tool call becomes: student id, redaction, data_provided/subjects, sizes, and the
decorator / context-manager hooks for servers on no particular framework."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from client_endpoints import endpoint

from session_tracker_client import SenderOptions, ToolCall, Tracker, default_extract, plain_result

FAST = SenderOptions(flush_interval=0.02, backoff_base=0.01, backoff_max=0.05, timeout=1.0)


def build(tracker: Tracker, tool: str = "get_progress", arguments: dict[str, Any] | None = None, **kw: Any):
    args = {"student_id": "emma_smith"} if arguments is None else arguments
    call = ToolCall(
        tool=tool,
        arguments=args,
        student_id=tracker._student(tool, args),
        started_at=kw.pop("started_at", 1768660205.5),
        duration_s=kw.pop("duration_s", 0.042),
        **kw,
    )
    return tracker.build(call)


@pytest.fixture
def tracker() -> Tracker:
    return Tracker("http://127.0.0.1:9", "t")


def test_a_call_becomes_the_documented_interaction_body(tracker: Tracker) -> None:
    body = build(tracker, result={"student_id": "emma_smith", "profile": {"grade": 5}, "subjects": ["mathematics"]})
    assert body is not None
    assert body.pop("response_size") == len(
        json.dumps(
            {"student_id": "emma_smith", "profile": {"grade": 5}, "subjects": ["mathematics"]}, separators=(",", ":")
        )
    )
    assert body == {
        "student_id": "emma_smith",
        "function": "get_progress",
        "timestamp": "2026-01-17T14:30:05.500000Z",
        "arguments": {"student_id": "emma_smith"},
        "data_provided": ["profile"],
        "subjects": ["mathematics"],
        "duration_ms": 42.0,
        "is_error": False,
    }


def test_student_id_comes_from_the_configured_argument_then_resolver_then_default() -> None:
    by_arg = Tracker("http://x", student_id_arg="learner", student_id="fallback")
    assert by_arg._student("t", {"learner": "liam"}) == "liam"
    assert by_arg._student("t", {"student_id": "ignored"}) == "fallback"
    resolved = Tracker("http://x", resolve_student=lambda tool, args: f"{tool}-{args['n']}", student_id="fallback")
    assert resolved._student("quiz", {"n": 3}) == "quiz-3"
    broken = Tracker("http://x", resolve_student=lambda tool, args: 1 / 0, student_id="fallback")
    assert broken._student("quiz", {}) == "fallback"
    assert broken.resolver_errors == 1


def test_a_call_without_any_student_id_is_skipped(tracker: Tracker) -> None:
    assert build(tracker, arguments={"subject": "math"}) is None


def test_redacted_fields_are_hidden_at_any_depth_case_insensitively() -> None:
    tracker = Tracker("http://x", redact=["password", "Notes"])
    body = build(
        tracker,
        arguments={"student_id": "emma", "PASSWORD": "hunter2", "profile": {"notes": "private", "grade": 5}},
    )
    assert body is not None
    assert body["arguments"] == {
        "student_id": "emma",
        "PASSWORD": "[redacted]",
        "profile": {"notes": "[redacted]", "grade": 5},
    }


def test_default_extractor_reads_keys_and_subjects_of_dict_results() -> None:
    result = {
        "student_id": "emma",
        "progress": [{"subject": "mathematics", "mastery": 0.6}, {"subject": "reading"}],
        "empty": None,
    }
    assert default_extract("get_progress", result) == {
        "data_provided": ["progress"],
        "subjects": ["mathematics", "reading"],
    }
    assert default_extract("x", {"data_provided": ["answer_check"], "subject": "science"}) == {
        "data_provided": ["answer_check"],
        "subjects": ["science"],
    }
    assert default_extract("x", "plain text") == {"data_provided": [], "subjects": []}


def test_mcp_results_are_read_from_structured_content_or_json_text() -> None:
    structured = {"content": [{"type": "text", "text": "ignored"}], "structuredContent": {"profile": {}}}
    assert plain_result(structured) == {"profile": {}}
    assert plain_result({"content": [{"type": "text", "text": '{"a": 1}'}]}) == {"a": 1}
    assert plain_result({"content": [{"type": "text", "text": "hello"}]}) == "hello"
    assert plain_result({"content": [], "structuredContent": {"result": 5}}) == 5


def test_a_custom_extractor_is_used_and_its_failure_only_costs_the_fields() -> None:
    custom = Tracker("http://x", extract=lambda tool, value: {"data_provided": [tool], "subjects": value["s"]})
    body = build(custom, result={"s": ["art"]})
    assert body is not None and body["data_provided"] == ["get_progress"] and body["subjects"] == ["art"]
    failing = Tracker("http://x", extract=lambda tool, value: value["missing"])
    body = build(failing, result={"s": 1})
    assert body is not None and body["data_provided"] == [] and body["function"] == "get_progress"


def test_platform_and_call_id_are_sent_for_session_matching() -> None:
    tracker = Tracker("http://x", platform="vapi")
    body = build(tracker, arguments={"student_id": "emma", "call_id": "call-123"})
    assert body is not None and body["platform"] == "vapi" and body["call_id"] == "call-123"
    odd = build(tracker, arguments={"student_id": "emma", "call_id": "not a call id"})
    assert odd is not None and "call_id" not in odd  # left out rather than have the call refused


def test_decorator_and_context_manager_log_calls_and_leave_results_and_errors_alone() -> None:
    with endpoint() as ep:
        tracker = Tracker(ep.url, "tok", options=FAST)

        @tracker.tool
        def get_progress(student_id: str, subject: str = "all") -> dict[str, Any]:
            return {"progress": {"subject": subject}}

        @tracker.tool(name="record_answer")
        async def answer(student_id: str, correct: bool) -> dict[str, Any]:
            if not correct:
                raise ValueError("wrong")
            return {"correct": True}

        assert get_progress("emma", subject="mathematics") == {"progress": {"subject": "mathematics"}}
        assert asyncio.run(answer(student_id="emma", correct=True)) == {"correct": True}
        with pytest.raises(ValueError, match="wrong"):
            asyncio.run(answer("emma", False))
        with tracker.call("get_curriculum", {"student_id": "emma", "subject": "science"}) as call:
            call.result = {"units": [1], "subject": "science"}
        with pytest.raises(KeyError), tracker.call("get_curriculum", {"student_id": "emma"}):
            raise KeyError("x")
        assert tracker.flush(5)
        tracker.close()
    got = [(i["function"], i["arguments"], i["is_error"], i["subjects"]) for i in ep.accepted]
    assert got == [
        ("get_progress", {"student_id": "emma", "subject": "mathematics"}, False, ["mathematics"]),
        ("record_answer", {"student_id": "emma", "correct": True}, False, []),
        ("record_answer", {"student_id": "emma", "correct": False}, True, []),
        ("get_curriculum", {"student_id": "emma", "subject": "science"}, False, ["science"]),
        ("get_curriculum", {"student_id": "emma"}, True, []),
    ]


def test_without_a_url_the_tracker_is_a_silent_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSION_TRACKER_URL", raising=False)
    tracker = Tracker()
    assert tracker.enabled is False
    tracker.record("x", {"student_id": "a"}, started_at=0, duration_s=0)
    assert tracker.stats == {}
    assert tracker.flush() is True
