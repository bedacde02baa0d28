"""`session-tracker query`: DuckDB over session files written by the real writer (moto store),
the documented views and the three documented queries, local folders and s3:// sources."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from seed_sessions import ANALYSIS, log_calls, seed_emma
from typer.testing import CliRunner

from session_tracker.blobs import DirBlobStore
from session_tracker.lifecycle import close_idle_sessions
from session_tracker.session_files import sync_session
from session_tracker.store import _values, serialize, session_key
from session_tracker_cli import query as q
from session_tracker_cli.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "session-files.md").read_text(encoding="utf-8")
MONDAY = datetime(2026, 1, 12, 15, 0, tzinfo=UTC)


def documented(title: str) -> str:
    """The SQL under a ``### title`` heading of docs/session-files.md."""
    section = DOC.split(f"### {title}\n", 1)[1]
    match = re.search(r"```sql\n(.*?)```", section, flags=re.S)
    assert match, title
    return match.group(1)


@pytest.fixture
def files(moto_store, tmp_path) -> Path:
    """emma: two analysed sessions a week apart; liam: one closed session whose analysis failed."""
    ids = [seed_emma(moto_store, MONDAY), seed_emma(moto_store, MONDAY + timedelta(days=8))]
    liam = log_calls(moto_store, "liam_chen", MONDAY + timedelta(days=1))
    close_idle_sessions(
        store=moto_store, now=MONDAY + timedelta(days=30), timeout=timedelta(minutes=10), request_analysis=False
    )
    moto_store.client.update_item(
        TableName=moto_store.table_name,
        Key=serialize(session_key(liam)),
        UpdateExpression="SET analysis = :a",
        ExpressionAttributeValues=_values(a={"status": "failed", "error": "OpenAI answered 401", "attempts": 1}),
    )
    sink = DirBlobStore(tmp_path / "data")
    for sid in [*ids, liam]:
        assert sync_session(sid, store=moto_store, blobs=None, sink=sink) == "written"
    return tmp_path / "data" / "sessions"


def test_sessions_view_has_one_flattened_row_per_session(files) -> None:
    result = q.run(
        "SELECT session_id, student_id, date, status, interaction_count, minutes, subjects, matching_strategy, "
        "call_cost_usd, analysis_status, analysis_summary FROM sessions ORDER BY start_time",
        files,
    )
    rows = [dict(zip(result.columns, r, strict=True)) for r in result.rows]
    assert [r["student_id"] for r in rows] == ["emma_smith", "liam_chen", "emma_smith"]
    first = rows[0]
    assert str(first["date"]) == "2026-01-12" and first["status"] == "completed"
    assert first["interaction_count"] == 7 and first["subjects"] == ["mathematics"]
    assert first["matching_strategy"] == "student_id" and first["call_cost_usd"] == pytest.approx(0.1977)
    assert first["analysis_status"] == "ok" and first["analysis_summary"] == ANALYSIS["session_summary"]
    assert rows[1]["analysis_status"] == "failed" and rows[1]["status"] == "closed"
    assert 10 < first["minutes"] < 15


def test_interactions_view_has_one_row_per_logged_call(files) -> None:
    result = q.run("SELECT session_id, function, data_provided, is_error FROM interactions", files)
    assert len(result.rows) == 21
    assert ("emma_smith_20260112_1500", "get_hint", [], True) in result.rows


def test_minutes_per_student_per_week(files) -> None:
    result = q.run(documented("Minutes per student per week"), files)
    assert result.columns == ["student_id", "week", "sessions", "minutes"]
    assert [r[:3] for r in result.rows] == [
        ("emma_smith", "2026-01-12", 1),
        ("emma_smith", "2026-01-19", 1),
        ("liam_chen", "2026-01-12", 1),
    ]


def test_most_requested_data_by_subject(files) -> None:
    result = q.run(documented("Most-requested data by subject"), files)
    assert result.columns == ["subject", "data", "requests"]
    assert result.rows[:2] == [("mathematics", "answer_feedback", 6), ("mathematics", "progress", 6)]


def test_sessions_whose_analysis_failed(files) -> None:
    result = q.run(documented("Sessions whose analysis failed"), files)
    assert result.rows == [("liam_chen_20260113_1500", "liam_chen", "2026-01-13 15:00", "OpenAI answered 401")]


def test_an_empty_folder_answers_with_no_rows(tmp_path) -> None:
    assert q.run("SELECT count(*) AS n FROM sessions", tmp_path).rows == [(0,)]
    assert q.run("SELECT * FROM interactions", tmp_path).rows == []


def test_since_and_until_read_only_those_days(files) -> None:
    with q.local_root(str(files), since=datetime(2026, 1, 13).date(), until=datetime(2026, 1, 13).date()) as root:
        assert q.run("SELECT student_id FROM sessions", root).rows == [("liam_chen",)]


def test_an_s3_source_is_read_with_the_callers_credentials(files, monkeypatch) -> None:
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="school-bucket")
        for path in files.rglob("*.json"):
            s3.upload_file(str(path), "school-bucket", f"sessions/{path.relative_to(files)}")
        s3.put_object(Bucket="school-bucket", Key="transcripts/x/y.txt", Body=b"not a session")
        with q.local_root("s3://school-bucket/sessions/", since=datetime(2026, 1, 13).date(), client=s3) as root:
            rows = q.run("SELECT session_id FROM sessions ORDER BY 1", root).rows
    assert rows == [("emma_smith_20260120_1500",), ("liam_chen_20260113_1500",)]


def test_cli_prints_a_table_and_a_bad_statement_is_exit_2(files) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app, ["query", "SELECT student_id, count(*) AS n FROM sessions GROUP BY ALL ORDER BY 1", "--source", str(files)]
    )
    assert ok.exit_code == 0, ok.output
    assert ok.output.splitlines() == ["student_id  n", "----------  -", "emma_smith  2", "liam_chen   1", "(2 rows)"]
    bad = runner.invoke(app, ["query", "SELECT nope FROM sessions", "--source", str(files)])
    assert bad.exit_code == 2 and "nope" in bad.output


def test_cli_csv_and_json_lines(files) -> None:
    runner = CliRunner()
    out = runner.invoke(
        app, ["query", "SELECT student_id FROM sessions ORDER BY 1 LIMIT 1", "--source", str(files), "--format", "csv"]
    )
    assert out.output == "student_id\nemma_smith\n"
    out = runner.invoke(
        app, ["query", "SELECT student_id FROM sessions ORDER BY 1 LIMIT 1", "--source", str(files), "--format", "json"]
    )
    assert out.output == '{"student_id": "emma_smith"}\n'


def test_a_missing_folder_is_a_clear_error(tmp_path) -> None:
    out = CliRunner().invoke(app, ["query", "SELECT 1", "--source", str(tmp_path / "nowhere")])
    assert out.exit_code == 2 and "no session files folder" in out.output
