"""The v1 table fixture (``tests/fixtures/v1_table.jsonl``, made by ``make_v1_table.py``)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def header() -> dict[str, Any]:
    """The fixture's first line: the commit that produced it, the session ids by role."""
    with (FIXTURES / "v1_table.jsonl").open() as lines:
        first: dict[str, Any] = json.loads(next(lines))["__fixture__"]
    return first


def items() -> list[dict[str, Any]]:
    """Every item of the v1 table, in DynamoDB JSON (PK, SK order)."""
    rows = (json.loads(line) for line in (FIXTURES / "v1_table.jsonl").read_text().splitlines() if line.strip())
    return [row for row in rows if "__fixture__" not in row]


def load(client: Any, table: str) -> int:
    """Write every fixture item into ``table`` (BatchWriteItem); how many."""
    rows = items()
    for start in range(0, len(rows), 25):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in rows[start : start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return len(rows)


def load_blobs(root: Path) -> int:
    """Write the fixture's blobs (``v1_blobs.jsonl``) under ``root`` (a DirBlobStore's root)."""
    count = 0
    for line in (FIXTURES / "v1_blobs.jsonl").read_text().splitlines():
        row = json.loads(line)
        path = root / row["key"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(row["base64"]))
        count += 1
    return count


def session_ids() -> list[str]:
    return sorted(item["PK"]["S"].removeprefix("SESSION#") for item in items() if item["SK"]["S"] == "META")


def student_ids() -> list[str]:
    return sorted({item["student_id"]["S"] for item in items() if item["SK"]["S"] == "META"})


def read_all(store: Any, blobs: Any) -> dict[str, Any]:
    """Everything the read paths answer about the fixture's data, as JSON values: each
    session's export and analysis state, each student's session list, the day's list."""
    from datetime import UTC, datetime

    from session_tracker import reading, sessions

    day = datetime(2026, 11, 2, tzinfo=UTC)
    out: dict[str, Any] = {"sessions": {}, "analysis": {}, "students": {}, "day": None}
    for sid in session_ids():
        export = sessions.read_export(sid, store=store, blobs=blobs)
        out["sessions"][sid] = None if export is None else export.model_dump(mode="json")
        state = store.get_analysis_state(sid)
        out["analysis"][sid] = None if state is None else state.model_dump(mode="json")
    for student in student_ids():
        page = reading.student_sessions(student, store=store, start=day, end=day.replace(hour=23), limit=100)
        out["students"][student] = [s.model_dump(mode="json") for s in page.sessions]
    refs = reading.sessions_between(
        store=store, now=day.replace(hour=23), start=day, end=day.replace(hour=23), limit=100
    )
    out["day"] = [r.model_dump(mode="json") for r in refs.sessions]
    return out
