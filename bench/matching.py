"""Matching platform reports to MCP sessions: precision and recall of each strategy and of the order.

A labelled, simulated school day (seeded, so every run is the same set): students in
overlapping voice calls, each call's assistant making tool calls that the MCP server
logs. The simulation includes what makes matching hard:

- several students active at once, on the same lessons and the same practice problems;
- repeated tools (the same hint asked for again);
- missing calls (the MCP log lost some), extra calls (logged calls the platform does not
  report, and platform tools no MCP server logs, such as ``end_call``);
- clock skew between the platform and the MCP host (a per-platform offset, jitter, and a
  few calls skewed beyond the tolerance) and the platforms' coarse tool-call offsets;
- calls with no MCP session at all (the tutor's MCP server was not connected);
- payloads that state the student (some), name the session (few) or carry a call id the
  MCP calls carried too (few), and payloads that state nothing;
- tutors whose MCP tools take a ``student_id`` argument (half the students) and tutors
  whose server knows its student (``mcp-proxy --student-id``), so no call names them.

Every report is then matched with :func:`session_tracker.matching.find_session` on the
in-memory store (the same code as the webhooks), once per configuration: each strategy
alone, today's order without ``tool_calls`` (v1), and the full order (v2).

Scoring, per report: **correct** when it goes to its own MCP session (or, having none,
to a new session of the right student); **wrong** when it goes to another session or
another student (a wrong merge: one child's conversation in another's record);
**missed** otherwise (unmatched, or a new session although its MCP session exists: safe).
Precision = correct / (correct + wrong); recall = correct / reports.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from session_tracker import sessions
from session_tracker.matching import MatchSettings, find_session
from session_tracker.models import InteractionIn
from session_tracker.platforms.base import PlatformEvent, ToolCall, student_ids_of
from session_tracker.store.fake import InMemoryStore

SEED = 16
STUDENTS = 14
REPORTS = 240
DAY = datetime(2026, 5, 12, 8, 0, tzinfo=UTC)
UNITS = ("fractions", "decimals", "percentages", "ratios")
PLATFORMS = {"vapi": 0.0, "retell": -35.0, "elevenlabs": 20.0}
"""Each platform's clock offset against the MCP host (seconds)."""

CONFIGS: dict[str, frozenset[str]] = {
    "explicit alone": frozenset({"explicit"}),
    "tool_calls alone": frozenset({"tool_calls"}),
    "student_id alone": frozenset({"student_id"}),
    "time_window alone": frozenset({"time_window"}),
    "v1 order (explicit, student_id, time_window)": frozenset({"explicit", "student_id", "time_window"}),
    "v2 order (explicit, tool_calls, student_id, time_window)": frozenset(
        {"explicit", "tool_calls", "student_id", "time_window"}
    ),
}


@dataclass
class SimCall:
    student: str
    platform: str
    start: datetime
    end: datetime
    reported: list[ToolCall]
    logged: list[InteractionIn]
    has_mcp: bool
    states_student: bool
    names_session: bool
    shares_call_id: bool
    call_id: str
    truth: str | None = None
    notes: set[str] = field(default_factory=set)


def _tool_plan(rng: random.Random, student: str, named: bool) -> list[tuple[str, dict[str, Any], bool]]:
    """The assistant's tool calls in one call: (name, arguments, builtin). ``named``: the tutor's
    MCP tools take a ``student_id`` argument (else the server knows its student, e.g. ``mcp-proxy
    --student-id``, and no call names the student)."""
    plan: list[tuple[str, dict[str, Any], bool]] = []
    if rng.random() < 0.8:
        plan.append(("get_student_context", {"student_id": student} if named else {"scope": "profile"}, False))
    unit = rng.choice(UNITS)
    plan.append(("get_lesson", {"unit": unit, "lesson": rng.randint(1, 3)}, False))
    for _ in range(rng.randint(0, 4)):
        problem = rng.randint(1, 20)
        kind = rng.random()
        if kind < 0.4:
            plan += [("get_hint", {"problem_id": problem}, False)] * rng.randint(1, 3)  # repeated tool
        elif kind < 0.8:
            plan.append(("check_answer", {"problem_id": problem, "answer": str(rng.randint(1, 9))}, False))
        else:
            plan.append(("get_time", {}, False))
    if rng.random() < 0.7:
        plan.append(
            (
                "save_practice_result",
                {"skill": unit, "attempted": rng.randint(1, 6), "correct": rng.randint(0, 6)}
                | ({"student_id": student} if named else {}),
                False,
            )
        )
    if rng.random() < 0.5:
        plan.append(("end_call", {}, True))
    return plan


def simulate(seed: int = SEED) -> list[SimCall]:
    """The labelled day: ``REPORTS`` platform calls of ``STUDENTS`` students (truth filled by :func:`log_day`)."""
    rng = random.Random(seed)
    students = [f"student_{i:02d}" for i in range(STUDENTS)]
    clock = {s: DAY + timedelta(minutes=rng.uniform(0, 40)) for s in students}
    named = {s: i % 2 == 0 for i, s in enumerate(students)}  # half the tutors' tools name the student
    calls: list[SimCall] = []
    while len(calls) < REPORTS:
        student = min(students, key=lambda s: clock[s])
        start = clock[student]
        minutes = rng.uniform(3, 12)
        end = start + timedelta(minutes=minutes)
        clock[student] = end + timedelta(minutes=rng.uniform(15, 50))  # > the idle timeout: a new session
        platform = rng.choice(list(PLATFORMS))
        plan = _tool_plan(rng, student, named[student])
        offsets = sorted(rng.uniform(2, minutes * 60 - 5) for _ in plan)
        offsets[0] = rng.uniform(2, 12)
        offsets.sort()
        reported: list[ToolCall] = []
        logged: list[InteractionIn] = []
        has_mcp = rng.random() >= 0.08
        call_id = f"{platform}-call-{len(calls)}"
        shares_call_id = has_mcp and rng.random() < 0.1
        sim = SimCall(
            student,
            platform,
            start,
            end,
            reported,
            logged,
            has_mcp,
            rng.random() < 0.35,
            has_mcp and rng.random() < 0.1,
            shares_call_id,
            call_id,
        )
        big_skew = rng.random() < 0.05
        if big_skew:
            sim.notes.add("skew beyond tolerance")
        for (name, args, builtin), offset in zip(plan, offsets, strict=True):
            coarse = offset + (rng.uniform(-6, 0) if platform == "retell" else 0.0)  # Retell: utterance end
            reported.append(ToolCall(name=name, arguments=args, offset=round(coarse, 3), builtin=builtin))
            if builtin or not has_mcp:
                continue
            if rng.random() < 0.12:
                sim.notes.add("missing calls")
                continue
            skew = (
                PLATFORMS[platform]
                + rng.uniform(-5, 5)
                + (rng.choice((-1, 1)) * rng.uniform(120, 240) if big_skew else 0)
            )
            at = start + timedelta(seconds=offset + rng.uniform(0.2, 2.5) + skew)
            logged.append(
                InteractionIn(
                    student_id=student,
                    function=name,
                    timestamp=at,
                    arguments=args,
                    call_id=call_id if shares_call_id else None,
                )
            )
        if has_mcp and rng.random() < 0.1:
            sim.notes.add("extra logged calls")
            logged.append(
                InteractionIn(
                    student_id=student,
                    function="list_assignments",
                    timestamp=start + timedelta(seconds=rng.uniform(0, minutes * 60)),
                    arguments={"student_id": student},
                )
            )
        if has_mcp and not logged:  # every logged call lost: the call has no MCP session after all
            sim.has_mcp, sim.names_session, sim.shares_call_id = False, False, False
        if not sim.has_mcp:
            sim.notes.add("no MCP session")
        if len({c.student for c in calls if c.start < end and c.end > start}) >= 2:
            sim.notes.add("several students at once")
        calls.append(sim)
    return calls


def log_day(calls: list[SimCall], store: InMemoryStore) -> None:
    """Log every call's MCP interactions (time order) and record each call's true session."""
    for sim in sorted(calls, key=lambda c: c.start):
        if not sim.logged:
            continue
        ordered = sorted(sim.logged, key=lambda i: i.timestamp or sim.start)
        results = sessions.log_interactions(ordered, store=store, now=sim.end, timeout=timedelta(minutes=10))
        sim.truth = results[0].session_id


def report_of(sim: SimCall) -> PlatformEvent:
    """The platform report of ``sim``, platform-neutral (what an adapter produces)."""
    return PlatformEvent(
        platform=sim.platform,
        kind="report",
        message_type="bench",
        delivery_id=f"bench:{sim.call_id}",
        call_id=sim.call_id,
        session_id=sim.truth if sim.names_session else None,
        student_id=sim.student if sim.states_student else None,
        student_id_source="metadata" if sim.states_student else None,
        started_at=sim.start + timedelta(seconds=PLATFORMS[sim.platform]),
        ended_at=sim.end + timedelta(seconds=PLATFORMS[sim.platform]),
        tool_calls=sim.reported,
        tool_student_ids=student_ids_of(sim.reported),
    )


def score(calls: list[SimCall], strategies: frozenset[str]) -> dict[str, Any]:
    store = InMemoryStore()
    log_day(calls, store)
    settings = MatchSettings(strategies=strategies)
    correct = wrong = missed = 0
    by_strategy: dict[str, int] = {}
    wrong_cases: list[dict[str, Any]] = []
    for sim in sorted(calls, key=lambda c: c.end):
        match = find_session(report_of(sim), store=store, now=sim.end + timedelta(seconds=30), settings=settings)
        placed = match.session.session_id if match.session is not None else None
        ok: bool | None
        if placed is not None:  # merged into an existing session
            ok = placed == sim.truth
        elif match.strategy != "none" and match.student_id != sim.student:  # a new session, wrong student
            ok = False
        elif match.strategy != "none":  # a new session of the right student: a split (safe) if its MCP one exists
            ok = True if sim.truth is None else None
        else:  # unmatched
            ok = None
        if ok is True:
            correct += 1
            by_strategy[match.strategy] = by_strategy.get(match.strategy, 0) + 1
        elif ok is False:
            wrong += 1
            wrong_cases.append({"call": sim.call_id, "strategy": match.strategy, "notes": sorted(sim.notes)})
        else:
            missed += 1
    decided = correct + wrong
    return {
        "correct": correct,
        "wrong": wrong,
        "missed": missed,
        "precision": round(correct / decided, 3) if decided else None,
        "recall": round(correct / len(calls), 3),
        "correct_by_strategy": by_strategy,
        "wrong_cases": wrong_cases[:10],
    }


def run(quick: bool = False) -> dict[str, Any]:
    calls = simulate()
    traits: dict[str, int] = {}
    for sim in calls:
        for note in sim.notes:
            traits[note] = traits.get(note, 0) + 1
    results = {name: score(calls, strategies) for name, strategies in CONFIGS.items()}
    reported = sum(len([c for c in s.reported if not c.builtin]) for s in calls)
    logged = sum(len(s.logged) for s in calls)
    trait_counts = dict(sorted(traits.items()))
    summary: dict[str, Any] = {
        "description": f"{len(calls)} simulated platform reports of {STUDENTS} students (seed {SEED})",
        "reports": len(calls),
        "with_mcp_session": sum(1 for s in calls if s.truth),
        "reported_tool_calls": reported,
        "logged_interactions": logged,
        "traits": trait_counts,
        "configs": results,
    }
    rows = [["configuration", "correct", "wrong merges", "missed", "precision", "recall"]]
    for name, r in results.items():
        rows.append(
            [
                name,
                str(r["correct"]),
                str(r["wrong"]),
                str(r["missed"]),
                "-" if r["precision"] is None else f"{r['precision']:.3f}",
                f"{r['recall']:.3f}",
            ]
        )
    table = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    table += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    v1 = results["v1 order (explicit, student_id, time_window)"]
    v2 = results["v2 order (explicit, tool_calls, student_id, time_window)"]
    trait_text = ", ".join(f"{v} {k}" for k, v in trait_counts.items())
    summary["markdown"] = "\n".join(
        [
            "## Matching platform reports to sessions",
            "",
            f"{summary['description']}: {summary['with_mcp_session']} with an MCP session, "
            f"{reported} reported tool calls (platform tools excluded), {logged} logged interactions; "
            f"reports with {trait_text}. Each report matched by `find_session` on the in-memory store "
            "(`python -m bench --only matching`; the set and the scoring are in `bench/matching.py`, the rule in "
            "`docs/platforms.md`). Correct: its own MCP session (or, with none, a new session of the right "
            "student); wrong: another session or student; missed: unmatched, or a new session although its MCP "
            "session exists.",
            "",
            *table,
            "",
            f"The full order places {v2['correct']} of {len(calls)} reports correctly against {v1['correct']} for "
            f"today's order (recall {v2['recall']:.3f} vs {v1['recall']:.3f}) with {v2['wrong']} wrong merges "
            f"(today: {v1['wrong']}). Correct placements by strategy in the full order: "
            + ", ".join(f"{k} {v}" for k, v in sorted(v2["correct_by_strategy"].items()))
            + ".",
        ]
    )
    return summary
