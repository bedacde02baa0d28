"""The tutoring data and what the tools do with it (framework-free, shared by both servers)."""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("data.json")


class UnknownItem(LookupError):
    """A student, subject or question that is not in the data set."""


class Tutoring:
    """Students, curriculum and recorded answers (answers live in memory, per process)."""

    def __init__(self, data_path: Path = DATA) -> None:
        self.data: dict[str, Any] = json.loads(data_path.read_text())
        self.answers: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _student(self, student_id: str) -> dict[str, Any]:
        try:
            return self.data["students"][student_id]
        except KeyError:
            raise UnknownItem(f"unknown student {student_id!r}") from None

    def _subject(self, subject: str) -> dict[str, Any]:
        try:
            return self.data["curriculum"][subject]
        except KeyError:
            known = ", ".join(sorted(self.data["curriculum"]))
            raise UnknownItem(f"unknown subject {subject!r} (known: {known})") from None

    def student_context(self, student_id: str) -> dict[str, Any]:
        """Profile, progress and recent activity: what the tutor reads at the start of a call."""
        s = self._student(student_id)
        return {
            "student_id": student_id,
            "profile": {k: s[k] for k in ("name", "grade", "timezone", "learning_style", "goals")},
            "progress": copy.deepcopy(s["progress"]),
            "recent_activity": copy.deepcopy(s["recent_activity"]),
            "subjects": list(s["subjects"]),
        }

    def progress(self, student_id: str, subject: str | None = None) -> dict[str, Any]:
        """Mastery per subject (one subject, or all the student studies)."""
        s = self._student(student_id)
        subjects = [subject] if subject else list(s["subjects"])
        rows = []
        for name in subjects:
            if name not in s["progress"]:
                raise UnknownItem(f"{student_id!r} does not study {name!r}")
            answered = [a for a in self.answers if a["student_id"] == student_id and a["subject"] == name]
            rows.append(
                {
                    "subject": name,
                    **copy.deepcopy(s["progress"][name]),
                    "answers_this_session": len(answered),
                    "correct_this_session": sum(a["correct"] for a in answered),
                }
            )
        return {"student_id": student_id, "progress": rows}

    def curriculum(self, subject: str, grade: int | None = None) -> dict[str, Any]:
        """Units of a subject (optionally one grade) with their practice questions (no answers)."""
        c = self._subject(subject)
        units = [u for u in c["units"] if grade is None or u["grade"] == grade]
        questions = [
            {"question_id": qid, "unit": q["unit"], "prompt": q["prompt"]}
            for qid, q in c["questions"].items()
            if any(u["id"] == q["unit"] for u in units)
        ]
        return {"subject": subject, "grade": grade, "units": copy.deepcopy(units), "questions": questions}

    def record_answer(self, student_id: str, question_id: str, answer: str) -> dict[str, Any]:
        """Check an answer to a practice question and remember it."""
        self._student(student_id)
        found = [
            (name, c["questions"][question_id])
            for name, c in self.data["curriculum"].items()
            if question_id in c["questions"]
        ]
        if not found:
            raise UnknownItem(f"unknown question {question_id!r}")
        subject, question = found[0]
        correct = answer.strip().lower() == question["answer"].lower()
        entry = {
            "student_id": student_id,
            "question_id": question_id,
            "subject": subject,
            "correct": correct,
            "at": datetime.now(UTC).isoformat(),
        }
        with self._lock:
            self.answers.append(entry)
        return {
            "student_id": student_id,
            "question_id": question_id,
            "subject": subject,
            "correct": correct,
            "feedback": "Correct - well done!" if correct else f"Not quite: the answer is {question['answer']}.",
            "data_provided": ["answer_check"],
        }

    def lesson_plan_prompt(self, student_id: str, subject: str) -> str:
        """Text for the ``lesson_plan`` prompt."""
        s = self._student(student_id)
        p = s["progress"].get(subject)
        if p is None:
            raise UnknownItem(f"{student_id!r} does not study {subject!r}")
        return (
            f"You are tutoring {s['name']} (grade {s['grade']}, {s['learning_style']} learner) in {subject}. "
            f"Current unit: {p['current_unit']} (mastery {p['mastery']:.0%}). "
            "Start with a short warm-up, then one new idea, then two practice questions."
        )
