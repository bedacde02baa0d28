"""Realistic sessions for the reading tests (read API, CLI, session pages).

Tool calls go in through the real domain path (``log_interactions``); the platform
side (conversation, VAPI metadata, analysis) is merged onto the session record the
way the webhook and analysis functions leave it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from session_tracker.models import InteractionIn, iso
from session_tracker.sessions import log_interactions
from session_tracker.store import DynamoStore, _values, serialize, session_key

TRANSCRIPT = """AI: Hi Emma! Ready to practise some fractions today?
User: Yeah. We're doing adding fractions in class and I kind of don't get it.
AI: No problem. Let's start with one half plus one third. Can we add the tops right away?
User: Um, no? Because the bottoms are different.
AI: Exactly. The bottoms are the denominators. What number can both 2 and 3 go into?
User: Six.
AI: Great. So one half is how many sixths?
User: Three sixths. And one third is two sixths. So it's five sixths!
AI: Yes! Want to try a harder one? Two fifths plus one quarter.
User: Twenty is the common one... eight twentieths plus five twentieths is thirteen twentieths.
AI: Perfect. Last one: three quarters plus one sixth.
User: Eleven twelfths?
AI: That's right. You found every common denominator yourself today."""

# (seconds after the first call, function, data provided, subjects, arguments, duration ms, bytes, error)
CALLS: list[tuple[int, str, list[str], list[str], dict[str, Any], float, int, bool]] = [
    (0, "get_student_context", ["profile", "progress"], ["mathematics"], {"student_id": "emma_smith"}, 42, 1834, False),
    (35, "get_lesson_plan", ["lesson_plan"], ["mathematics"], {"topic": "adding fractions"}, 61, 2410, False),
    (
        190,
        "check_answer",
        ["answer_feedback"],
        ["mathematics"],
        {"problem": "1/2+1/3", "answer": "5/6"},
        18,
        312,
        False,
    ),
    (355, "get_practice_problems", ["practice_set"], ["mathematics"], {"level": 2, "count": 3}, 75, 1290, False),
    (
        470,
        "check_answer",
        ["answer_feedback"],
        ["mathematics"],
        {"problem": "2/5+1/4", "answer": "13/20"},
        16,
        298,
        False,
    ),
    (600, "get_hint", [], ["mathematics"], {"problem": "3/4+1/6"}, 2500, 0, True),
    (
        690,
        "update_progress",
        ["progress"],
        ["mathematics"],
        {"skill": "unlike_denominators", "delta": 0.1},
        33,
        120,
        False,
    ),
]


def log_calls(store: DynamoStore, student: str, start: datetime, calls: list[tuple] | None = None) -> str:
    """Log ``calls`` for ``student`` from ``start``; the session id they landed in."""
    items = [
        InteractionIn(
            student_id=student,
            function=function,
            timestamp=start + timedelta(seconds=offset),
            data_provided=provided,
            subjects=subjects,
            arguments=arguments,
            duration_ms=duration,
            response_size=size,
            is_error=error,
            platform="vapi",
            interaction_id=f"{student}-{int(start.timestamp())}-{index}",
        )
        for index, (offset, function, provided, subjects, arguments, duration, size, error) in enumerate(calls or CALLS)
    ]
    results = log_interactions(items, store=store, now=start, timeout=timedelta(minutes=10))
    return results[0].session_id


def merge_platform(
    store: DynamoStore,
    session_id: str,
    *,
    start: datetime,
    end: datetime,
    transcript: str = TRANSCRIPT,
    cost: float = 0.1977,
    ended_reason: str = "customer-ended-call",
    analysis: dict[str, Any] | None = None,
) -> None:
    """Leave the session as a merged VAPI end-of-call report (and optional analysis) would."""
    values = {
        "conversation": {
            "transcript": transcript,
            "source": "vapi",
            "word_count": len(transcript.split()),
            "call_duration": (end - start).total_seconds(),
            "started_at": iso(start),
            "ended_at": iso(end),
            "call_ids": ["53077b4f-8470-4ae4-b473-ec0b2be99634"],
        },
        "vapi": {"call_id": "53077b4f-8470-4ae4-b473-ec0b2be99634", "cost": cost, "ended_reason": ended_reason},
        "matching": {"strategy": "student_id", "source": "variableValues.student_id"},
        "status": "completed",
        "end": iso(end),
        "platform": "vapi",
    }
    sets = "conversation = :conversation, vapi_metadata = :vapi, matching = :matching, #s = :status, end_time = :end"
    sets += ", platform = :platform"
    # as the v2 platform merge leaves it: the counters derived from the calls at completion
    found = store.read_session(session_id)
    if found is not None:
        values["count"] = len(found[1])
        sets += ", interaction_count = :count"
    if analysis is not None:
        values["analysis"] = analysis
        sets += ", analysis = :analysis"
    store.client.update_item(
        TableName=store.table_name,
        Key=serialize(session_key(session_id)),
        UpdateExpression=f"SET {sets} REMOVE gsi2pk, gsi2sk",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=_values(**values),
    )


ANALYSIS = {
    "session_summary": "Emma practised adding fractions with unlike denominators and solved three of four "
    "problems on the first try.",
    "progress_update": "Finding common denominators is now reliable; improper fractions still need review.",
    "learning_insights": "Responds well to short guided questions; benefits from saying each step aloud.",
    "model": "gpt-4o-mini",
    "analyzed_at": "2026-01-17T14:46:30.000000Z",
}


def seed_emma(store: DynamoStore, start: datetime, *, student: str = "emma_smith", analysed: bool = True) -> str:
    """A completed, analysed session with seven MCP calls and a transcript; its id."""
    session_id = log_calls(store, student, start)
    merge_platform(
        store,
        session_id,
        start=start + timedelta(seconds=7),
        end=start + timedelta(minutes=12, seconds=40),
        analysis=ANALYSIS if analysed else None,
    )
    return session_id
