"""``export --format csv``: two CSV files a spreadsheet opens directly.

- ``sessions.csv``: one row per session (the list line plus the analysis texts);
- ``interactions.csv``: one row per logged MCP call, keyed by ``session_id``.

Lists are ``;``-joined, arguments are JSON text, times are UTC ISO 8601, the length is the
session length of :mod:`session_tracker.length` in seconds. Cells that a spreadsheet would
run as a formula (``=``, ``+``, ``-``, ``@`` first) are prefixed with ``'``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from session_tracker.models import SessionExport

SESSION_COLUMNS = (
    "session_id",
    "student_id",
    "start_time",
    "end_time",
    "length_seconds",
    "status",
    "platform",
    "interactions",
    "subjects",
    "data_provided",
    "cost_usd",
    "ended_reason",
    "matching_strategy",
    "word_count",
    "analysis_status",
    "session_summary",
    "progress_update",
    "learning_insights",
)
INTERACTION_COLUMNS = (
    "session_id",
    "student_id",
    "timestamp",
    "function",
    "data_provided",
    "subjects",
    "arguments",
    "response_size",
    "duration_ms",
    "is_error",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        value = ";".join(str(v) for v in value)
    elif isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def session_row(export: SessionExport) -> list[str]:
    from session_tracker.models import SessionMeta, iso
    from session_tracker.reading import session_cost

    meta = SessionMeta(
        session_id=export.session_id,
        student_id=export.student_id,
        start_time=export.start_time,
        last_activity=export.last_activity or export.start_time,
        platform=export.platform,
        vapi_metadata=export.vapi_metadata,
        platform_metadata=export.platform_metadata,
    )
    cost, reason = session_cost(meta)
    analysis = export.analysis or {}
    values = {
        "session_id": export.session_id,
        "student_id": export.student_id,
        "start_time": iso(export.start_time),
        "end_time": iso(export.end_time) if export.end_time else None,
        "length_seconds": export.session_summary.duration_seconds,
        "status": export.status,
        "platform": export.platform,
        "interactions": len(export.mcp_interactions),
        "subjects": export.session_summary.subjects_accessed,
        "data_provided": sorted({d for c in export.mcp_interactions for d in c.data_provided}),
        "cost_usd": cost,
        "ended_reason": reason,
        "matching_strategy": export.matching.get("strategy"),
        "word_count": (export.conversation or {}).get("word_count"),
        "analysis_status": analysis.get("status"),
        "session_summary": analysis.get("session_summary"),
        "progress_update": analysis.get("progress_update"),
        "learning_insights": analysis.get("learning_insights"),
    }
    return [_cell(values[c]) for c in SESSION_COLUMNS]


def interaction_rows(export: SessionExport) -> list[list[str]]:
    from session_tracker.models import iso

    return [
        [
            _cell(v)
            for v in (
                export.session_id,
                export.student_id,
                iso(call.timestamp),
                call.function,
                call.data_provided,
                call.subjects,
                call.arguments,
                call.response_size,
                call.duration_ms,
                call.is_error,
            )
        ]
        for call in export.mcp_interactions
    ]


class CsvExport:
    """``with CsvExport(out) as csv_out: csv_out.add(export)``: written to temp files, renamed at the end."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.paths = (out / "sessions.csv", out / "interactions.csv")
        self._files: list[IO[str]] = []

    def __enter__(self) -> CsvExport:
        self.out.mkdir(parents=True, exist_ok=True)
        self._files = [p.with_name(f".{p.name}.tmp").open("w", newline="", encoding="utf-8") for p in self.paths]
        self.sessions = csv.writer(self._files[0])
        self.calls = csv.writer(self._files[1])
        self.sessions.writerow(SESSION_COLUMNS)
        self.calls.writerow(INTERACTION_COLUMNS)
        return self

    def add(self, export: SessionExport) -> None:
        self.sessions.writerow(session_row(export))
        self.calls.writerows(interaction_rows(export))

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for handle in self._files:
            handle.close()
        for path in self.paths:
            tmp = path.with_name(f".{path.name}.tmp")
            if kind is None:
                tmp.replace(path)
            else:
                tmp.unlink(missing_ok=True)
