"""``make demo``: the product in one command, with no OpenAI key.

Starts the local stack (in memory unless ``--data-dir``) with the analyzer pointed at the
fake OpenAI server the tests use (``tests/fakes/openai_server.py``, answering with demo
texts), then seeds it **through the public HTTP routes**, exactly as an MCP server and VAPI
would: a few students with several weeks of sessions (``POST /interactions``), VAPI
end-of-call reports for most of them (``POST /webhook/vapi/session-complete``), two calls
nobody can place (the review queue) and one lesson running now (the live view). The
stack's stream → analyze wiring then analyses every finished session.

``seed()`` also works against any running stack (``session-tracker demo --url``).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

WEEKS = 6
SEED = 17


@dataclass(frozen=True)
class Student:
    student_id: str
    name: str
    subjects: tuple[str, ...]
    topics: tuple[str, ...]
    per_week: int
    hour: int


STUDENTS = (
    Student("emma_smith", "Emma", ("mathematics",), ("adding fractions", "equivalent fractions", "decimals"), 3, 16),
    Student("jacob_miller", "Jacob", ("reading", "phonics"), ("reading aloud", "vowel teams", "summarising"), 2, 15),
    Student("ava_chen", "Ava", ("science", "mathematics"), ("states of matter", "ratios", "food chains"), 2, 17),
)

# (function, data provided, subject index or None, error)
LESSON = (
    ("get_student_context", ["profile", "progress"], 0, False),
    ("get_lesson_plan", ["lesson_plan"], 0, False),
    ("get_practice_problems", ["practice_set"], 0, False),
    ("check_answer", ["answer_feedback"], 0, False),
    ("check_answer", ["answer_feedback"], 0, False),
    ("get_hint", ["hint"], -1, False),
    ("check_answer", ["answer_feedback"], 0, False),
    ("update_progress", ["progress"], 0, False),
)


@dataclass
class Plan:
    """What the demo will post, and the analysis texts the fake model answers with."""

    interactions: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    analyses: dict[str, dict[str, str]] = field(default_factory=dict)
    sessions: int = 0


def _transcript(student: Student, topic: str, rng: random.Random, solved: int, tried: int) -> str:
    lines = [
        f"AI: Hi {student.name}! Today we're working on {topic}. Ready?",
        "User: Yeah, I think so.",
        f"AI: Let's warm up. Tell me what you remember about {topic}.",
        rng.choice(["User: Um, a little bit.", "User: We did some in class.", "User: Not much, honestly."]),
    ]
    for n in range(tried):
        lines.append(f"AI: Problem {n + 1}. Take your time.")
        lines.append("User: " + ("I got it!" if n < solved else "I'm not sure... can I have a hint?"))
    lines.append(f"AI: Great work today, {student.name}. You solved {solved} of {tried}.")
    return "\n".join(lines)


def plan(now: datetime, *, weeks: int = WEEKS, seed: int = SEED) -> Plan:
    """The demo's calls, reports and analysis texts (deterministic for ``now`` and ``seed``)."""
    rng = random.Random(seed)
    out = Plan()
    first_monday = (now - timedelta(weeks=weeks)).date()
    first_monday -= timedelta(days=first_monday.weekday())
    for student in STUDENTS:
        skill = 0.35 + rng.random() * 0.2
        days = [first_monday + timedelta(days=d) for d in range(weeks * 7)]
        for day in days:
            if day.weekday() >= 5 or rng.random() > student.per_week / 5:
                continue
            start = datetime(day.year, day.month, day.day, student.hour, rng.randrange(0, 50), tzinfo=UTC)
            if start > now - timedelta(hours=2):
                continue
            topic = rng.choice(student.topics)
            subject = student.subjects[0 if rng.random() < 0.7 else -1]
            steps = list(LESSON[: rng.randint(5, len(LESSON))])
            minutes = rng.uniform(8, 26)
            at = start
            calls = []
            for index, (function, provided, sub, _err) in enumerate(steps):
                error = function == "get_hint" and rng.random() < 0.25
                calls.append(
                    {
                        "student_id": student.student_id,
                        "function": function,
                        "timestamp": at.isoformat().replace("+00:00", "Z"),
                        "arguments": {"student_id": student.student_id, "topic": topic},
                        "data_provided": [] if error else provided,
                        "subjects": [subject if sub == 0 else student.subjects[-1]],
                        "response_size": rng.randrange(200, 2400),
                        "duration_ms": rng.randrange(15, 90),
                        "is_error": error,
                        "platform": "vapi",
                        "interaction_id": hashlib.sha256(f"{student.student_id}{at}{index}".encode()).hexdigest()[:20],
                    }
                )
                at += timedelta(minutes=minutes / len(steps))
            session_id = f"{student.student_id}_{start:%Y%m%d_%H%M}"
            tried = sum(1 for c in calls if c["function"] == "check_answer")
            skill = min(0.95, skill + rng.uniform(0.0, 0.06))
            solved = min(tried, round(tried * skill + rng.uniform(-0.4, 0.4)))
            out.interactions += calls
            out.sessions += 1
            if rng.random() < 0.85:
                call_start = start - timedelta(seconds=rng.randrange(20, 70))
                call_end = at + timedelta(seconds=rng.randrange(10, 60))
                out.reports.append(
                    _report(
                        call_id=f"demo-{session_id}",
                        student_id=student.student_id,
                        started=call_start,
                        ended=call_end,
                        transcript=_transcript(student, topic, rng, solved, max(tried, 1)),
                        cost=round((call_end - call_start).total_seconds() / 60 * rng.uniform(0.07, 0.11), 4),
                        reason=rng.choice(["customer-ended-call", "assistant-ended-call", "silence-timed-out"]),
                    )
                )
            level = "steady" if solved * 2 >= tried else "still shaky"
            out.analyses[session_id] = {
                "session_summary": f"{student.name} worked on {topic} ({subject}) for about {minutes:.0f} minutes "
                f"and solved {solved} of {tried} problems.",
                "progress_update": f"{topic.capitalize()}: {solved}/{tried} correct, {level}. "
                + (
                    "Needed fewer hints than last time."
                    if rng.random() < 0.5
                    else "Asked for a hint on the harder problems."
                ),
                "learning_insights": rng.choice(
                    [
                        f"{student.name} explains steps aloud before answering: ask for the reasoning first.",
                        f"{student.name} does best with a worked example before practice.",
                        f"Short problem sets keep {student.name} engaged; after ~15 minutes accuracy drops.",
                        f"{student.name} responds well to visual models (number lines, diagrams).",
                    ]
                ),
            }
    # Two calls nobody can place (no student id, an unknown phone), far from every session so
    # no rule matches them: one the same day as an Emma lesson, three hours before it.
    emma = [c for c in out.interactions if c["student_id"] == "emma_smith"]
    lesson = datetime.fromisoformat(emma[len(emma) // 2]["timestamp"].replace("Z", "+00:00"))
    anchor = lesson.replace(hour=13, minute=5, second=0, microsecond=0)
    out.reports.append(
        _report(
            call_id="demo-unmatched-1",
            student_id=None,
            started=anchor,
            ended=anchor + timedelta(minutes=9),
            transcript="AI: Hi there! Who am I talking to today?\nUser: It's me, from maths club. Fractions again?\n"
            "AI: Sure. What is one half plus one quarter?\nUser: Three quarters!",
            cost=0.0931,
            reason="customer-ended-call",
        )
    )
    out.reports.append(
        _report(
            call_id="demo-unmatched-2",
            student_id=None,
            started=now - timedelta(days=3, hours=1),
            ended=now - timedelta(days=3, minutes=48),
            transcript="AI: Hello! What would you like to practise?\nUser: Uh, the water cycle I think.",
            cost=0.0412,
            reason="silence-timed-out",
        )
    )
    return out


def _report(
    *,
    call_id: str,
    student_id: str | None,
    started: datetime,
    ended: datetime,
    transcript: str,
    cost: float,
    reason: str,
) -> dict[str, Any]:
    variables: dict[str, Any] = {"student_id": student_id} if student_id else {}
    return {
        "message": {
            "type": "end-of-call-report",
            "timestamp": int(ended.timestamp() * 1000),
            "endedReason": reason,
            "cost": cost,
            "startedAt": started.isoformat().replace("+00:00", "Z"),
            "endedAt": ended.isoformat().replace("+00:00", "Z"),
            "artifact": {"transcript": transcript, "messages": []},
            "customer": {"number": "+15550100" + str(int(hashlib.sha256(call_id.encode()).hexdigest(), 16) % 1000)},
            "call": {
                "id": call_id,
                "type": "webCall",
                "assistantOverrides": {"variableValues": variables},
            },
        }
    }


def live_calls(now: datetime) -> list[dict[str, Any]]:
    """A lesson running now (shown by the live view until the idle closer ends it)."""
    return [
        {
            "student_id": "ava_chen",
            "function": function,
            "timestamp": (now - timedelta(minutes=3 - n)).isoformat().replace("+00:00", "Z"),
            "data_provided": provided,
            "subjects": ["science"],
            "platform": "vapi",
        }
        for n, (function, provided, _s, _e) in enumerate(LESSON[:3])
    ]


def seed(
    url: str,
    *,
    ingest_token: str,
    vapi_secret: str,
    now: datetime | None = None,
    say: Callable[[str], None] = print,
) -> Plan:
    """Post the demo data to the stack at ``url``; returns what was posted."""
    now = now or datetime.now(UTC)
    demo = plan(now)
    with httpx.Client(base_url=url.rstrip("/"), timeout=30) as http:
        ingest = {"Authorization": f"Bearer {ingest_token}"}
        by_student: dict[str, list[dict[str, Any]]] = {}
        for call in demo.interactions:
            by_student.setdefault(call["student_id"], []).append(call)
        for calls in by_student.values():
            for i in range(0, len(calls), 25):
                http.post("/interactions", json={"interactions": calls[i : i + 25]}, headers=ingest).raise_for_status()
        say(f"  {len(demo.interactions)} tool calls in {demo.sessions} sessions of {len(by_student)} students")
        for report in demo.reports:
            http.post(
                "/webhook/vapi/session-complete", json=report, headers={"X-Vapi-Secret": vapi_secret}
            ).raise_for_status()
        say(f"  {len(demo.reports)} VAPI end-of-call reports (2 that no session matches: the review queue)")
        http.post("/interactions", json={"interactions": live_calls(now)}, headers=ingest).raise_for_status()
        say("  1 lesson running now (the live view)")
    return demo


def demo_reply(analyses: dict[str, dict[str, str]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The fake model's answer: the demo's texts for the session named in the prompt."""

    def reply(body: dict[str, Any]) -> dict[str, Any]:
        text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        found = re.search(r"session_id: (\S+)", text)
        texts = analyses.get(found.group(1) if found else "", {})
        fmt = body.get("response_format") or {}
        props = ((fmt.get("json_schema") or {}).get("schema") or {}).get("properties") or {}
        answer: dict[str, Any] = {}
        for name, spec in props.items():
            kind = spec.get("type")
            if kind in ("integer", "number"):
                answer[name] = 1
            elif kind == "boolean":
                answer[name] = True
            elif kind == "array":
                answer[name] = []
            else:
                answer[name] = texts.get(name, f"A short demo {name.replace('_', ' ')}.")
        return answer

    return reply


def _fake_openai(root: Path) -> Any:
    sys.path.insert(0, str(root / "tests"))
    from fakes.openai_server import FakeOpenAI  # the same fake the tests use

    return FakeOpenAI().start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(__import__("os").environ.get("PORT", "3000")))
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the demo's data here (default: memory)")
    args = parser.parse_args(argv)
    from session_tracker_local.stack import LocalStack, StackOptions, find_root

    root = find_root()
    now = datetime.now(UTC)
    demo = plan(now)
    fake = _fake_openai(root)
    fake.reply_with(demo_reply(demo.analyses))
    stack = LocalStack(
        StackOptions(
            root=root,
            port=args.port,
            data_dir=args.data_dir,
            schedule_interval=5.0,
            extra_env={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": "sk-demo-fake"},
        )
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stack.start()
    try:
        print(stack.describe().split("\n  routes:")[0])
        print("seeding the demo through the API ...")
        seed(stack.url, ingest_token=stack.ingest_token, vapi_secret=stack.vapi_secret, now=now)
        time.sleep(1)
        # pages need the read scope (the ingest token no longer reads); URL-encoded like the banner's link
        print(f"\nOpen {stack.url}/ui?token={quote(stack.read_token, safe='')}")
        print("  (analyses from the fake model appear within a minute; Ctrl-C stops the demo)")
        sys.stdout.flush()
        stopped.wait()
    finally:
        stack.stop()
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["STUDENTS", "Plan", "demo_reply", "live_calls", "main", "plan", "seed"]
