"""CLI parity with the pages: students, student S, --json, CSV export, ids never cut, usage without AWS setup."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from session_tracker.models import ExportInteraction, SessionExport, SessionRef, SessionSummary
from session_tracker.reading import SessionListItem
from session_tracker_cli import client as client_module
from session_tracker_cli import reading_cli
from session_tracker_cli.cli import app
from session_tracker_cli.client import ApiSource, dynamodb_client

T0 = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)
LONG = "alexandria_montgomery_whitfield"


def _item(n: int, student: str = LONG, **extra: Any) -> SessionListItem:
    at = T0 + timedelta(days=n)
    return SessionListItem(
        session_id=f"{student}_{at:%Y%m%d_%H%M}",
        student_id=student,
        start_time=at,
        last_activity=at + timedelta(minutes=12),
        status=extra.pop("status", "completed"),
        platform="vapi",
        interaction_count=4,
        subjects=["mathematics", "fractions and decimals"],
        data_provided=["profile", "progress"],
        cost=0.1234,
        ended_reason="customer-ended-call",
        length_seconds=720 + n,
        **extra,
    )


def _export(item: SessionListItem, **analysis: Any) -> SessionExport:
    return SessionExport(
        session_id=item.session_id,
        student_id=item.student_id,
        start_time=item.start_time,
        last_activity=item.last_activity,
        status=item.status,
        platform="vapi",
        mcp_interactions=[
            ExportInteraction(
                timestamp=item.start_time,
                function="get_student_context",
                arguments={"note": "=cmd()"},
                data_provided=["profile"],
            )
        ],
        vapi_metadata={"cost": 0.1234, "ended_reason": "customer-ended-call"},
        session_summary=SessionSummary(
            duration_estimated="12 minutes",
            duration_seconds=item.length_seconds,
            data_requests=1,
            subjects_accessed=["mathematics"],
        ),
        analysis=analysis or None,
    )


class FakeSource:
    def __init__(self, items: list[SessionListItem], analyses: dict[str, dict[str, Any]] | None = None) -> None:
        self.items = sorted(items, key=lambda i: i.start_time, reverse=True)
        self.analyses = analyses or {}

    def describe(self) -> str:
        return "fake"

    def student_sessions(self, student_id, *, start=None, end=None, page_size=100) -> Iterator[SessionListItem]:
        yield from (i for i in self.items if i.student_id == student_id)

    def all_sessions(self, *, start, end, page_size=100) -> Iterator[SessionRef]:
        for i in self.items:
            yield SessionRef(session_id=i.session_id, student_id=i.student_id, start_time=i.start_time)

    def get_session(self, session_id: str) -> SessionExport:
        item = next(i for i in self.items if i.session_id == session_id)
        return _export(item, **self.analyses.get(session_id, {}))

    def full_range(self) -> tuple[datetime, datetime]:
        return T0 - timedelta(days=400), T0 + timedelta(days=400)


@pytest.fixture
def source(monkeypatch) -> FakeSource:
    items = [_item(n) for n in range(4)] + [_item(1, student="ben"), _item(2, student="unknown", status="unmatched")]
    fake = FakeSource(
        items,
        {
            items[3].session_id: {
                "status": "ok",
                "progress_update": "Adds fractions.",
                "learning_insights": "Likes visuals.",
            }
        },
    )
    monkeypatch.setattr(reading_cli, "open_source", lambda **_: fake)
    return fake


def test_sessions_never_cut_ids_in_80_columns_without_a_terminal(source, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = CliRunner().invoke(app, ["sessions", "--student", LONG], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for item in source.items:
        if item.student_id == LONG:
            assert item.session_id in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_sessions_show_the_one_session_length(source) -> None:
    result = CliRunner().invoke(app, ["sessions", "--student", "ben"], env={"COLUMNS": "160"})
    assert "12:01" in result.output  # 721 s


def test_students_lists_counts_and_the_latest_session(source) -> None:
    result = CliRunner().invoke(app, ["students", "--json"])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows[0]["student_id"] == LONG and rows[0]["sessions"] == 4
    assert {r["student_id"]: r["sessions"] for r in rows} == {LONG: 4, "ben": 1, "unknown": 1}
    table = CliRunner().invoke(app, ["students"], env={"COLUMNS": "80"})
    assert LONG in table.output and "(unmatched calls)" in table.output


def test_student_shows_sessions_minutes_subjects_and_the_latest_progress(source) -> None:
    result = CliRunner().invoke(app, ["student", LONG], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "Adds fractions." in result.output and "Likes visuals." in result.output
    assert "mathematics (4)" in result.output
    data = json.loads(CliRunner().invoke(app, ["student", LONG, "--json"]).output)
    assert data["overview"]["sessions"] == 4
    assert data["latest_insights"]["text"] == "Likes visuals."
    assert data["progress"][0]["progress_update"] == "Adds fractions."


def test_export_as_csv_writes_sessions_and_interactions(source, tmp_path) -> None:
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path), "--student", LONG, "--format", "csv"])
    assert result.exit_code == 0, result.output
    with (tmp_path / "sessions.csv").open() as f:
        sessions = list(csv.DictReader(f))
    with (tmp_path / "interactions.csv").open() as f:
        calls = list(csv.DictReader(f))
    assert len(sessions) == 4 and len(calls) == 4
    assert sessions[0]["cost_usd"] == "0.1234" and sessions[0]["length_seconds"] == "723.0"
    assert calls[0]["arguments"] == '{"note": "=cmd()"}'  # JSON text: starts with { so no formula
    assert not list(tmp_path.glob(".*.tmp"))


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped() -> None:
    from session_tracker_cli.csv_export import _cell

    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _cell("-1") == "'-1" and _cell("ok") == "ok"


def test_usage_reads_over_the_api(monkeypatch) -> None:
    import httpx

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"date": "2026-01-05", "sessions": 3})

    real = ApiSource.__init__
    monkeypatch.setattr(
        ApiSource,
        "__init__",
        lambda self, url, token, **kw: real(self, url, token, transport=httpx.MockTransport(handler)),
    )
    no_table = {"TABLE_NAME": None, "SESSION_TRACKER_TABLE": None}  # set by other tests' stacks
    result = CliRunner().invoke(app, ["usage", "--date", "2026-01-05", "--token", "tok"], env=no_table)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sessions"] == 3
    assert (seen[0].url.path, seen[0].url.params["date"]) == ("/usage", "2026-01-05")


def test_a_local_endpoint_needs_no_aws_region_or_credentials(monkeypatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    client = dynamodb_client("http://127.0.0.1:8000")
    assert client.meta.region_name == "us-east-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:8000"
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(client_module.SourceError, match="no AWS region"):
        dynamodb_client(None)
