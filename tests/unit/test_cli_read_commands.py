"""The reading commands' own logic: analyze's request, the session file format, the progress bar."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from session_tracker.models import ExportInteraction, SessionExport, SessionRef, SessionSummary
from session_tracker_cli import reading_cli
from session_tracker_cli.cli import app
from session_tracker_cli.client import ApiSource, SessionNotFound, SourceError, TableSource

T0 = datetime(2026, 1, 17, 14, 30, 5, tzinfo=UTC)


def _export(session_id: str = "emma_smith_20260117_1430") -> SessionExport:
    return SessionExport(
        session_id=session_id,
        student_id="emma_smith",
        start_time=T0,
        status="completed",
        mcp_interactions=[
            ExportInteraction(timestamp=T0, function="get_student_context", arguments={"z": 1, "a": {"y": 2, "b": 3}})
        ],
        conversation={"transcript": "AI: hi", "source": "vapi", "call_duration": 60},
        vapi_metadata={"ended_reason": "customer-ended-call", "cost": 0.2, "call_id": "c1"},
        session_summary=SessionSummary(duration_estimated="1 minute", data_requests=1, subjects_accessed=[]),
    )


def _api(handler) -> ApiSource:
    return ApiSource("http://tracker.test", "tok", transport=httpx.MockTransport(handler))


def test_analyze_posts_to_the_sessions_analyze_route_with_the_bearer_token(monkeypatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"session_id": "emma_smith_20260117_1430", "status": "requested"})

    monkeypatch.setattr(reading_cli, "open_source", lambda **_: _api(handler))
    result = CliRunner().invoke(app, ["analyze", "emma_smith_20260117_1430"])
    assert result.exit_code == 0, result.output
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/sessions/emma_smith_20260117_1430/analyze")
    assert request.headers["authorization"] == "Bearer tok"
    assert '"status": "requested"' in result.output


def test_analyze_of_an_unknown_session_exits_2(monkeypatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"title": "Not found", "status": 404, "detail": "no session"})

    monkeypatch.setattr(reading_cli, "open_source", lambda **_: _api(handler))
    result = CliRunner().invoke(app, ["analyze", "nobody_1"])
    assert result.exit_code == 2
    assert "no session 'nobody_1'" in result.output


def test_analyze_with_table_calls_request_analysis_directly(monkeypatch) -> None:
    calls: list[tuple[str, Any, datetime]] = []

    def request_analysis(session_id: str, *, store: Any, now: datetime, config: Any) -> dict[str, str]:
        calls.append((session_id, store, now))
        return {"session_id": session_id, "status": "requested"}

    fake = types.ModuleType("session_tracker.analysis")
    fake.request_analysis = request_analysis  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "session_tracker.analysis", fake)
    store = object()
    source = TableSource("t", store=store, blobs=False)
    assert source.analyze("s_1") == {"session_id": "s_1", "status": "requested"}
    assert calls[0][:2] == ("s_1", store)
    assert abs(calls[0][2] - datetime.now(UTC)) < timedelta(seconds=5)


def test_a_404_from_the_api_is_session_not_found() -> None:
    source = _api(lambda r: httpx.Response(404, json={"status": 404, "title": "Not found", "detail": "x"}))
    with pytest.raises(SessionNotFound):
        source.get_session("nobody_1")


def test_session_files_keep_the_documented_top_level_order_and_sort_free_form_maps() -> None:
    text = reading_cli.export_json(_export())
    data = json.loads(text)
    assert list(data) == list(SessionExport.model_fields)
    assert list(data["vapi_metadata"]) == ["call_id", "cost", "ended_reason"]
    assert list(data["mcp_interactions"][0]) == list(ExportInteraction.model_fields)
    assert list(data["mcp_interactions"][0]["arguments"]) == ["a", "z"]
    assert list(data["mcp_interactions"][0]["arguments"]["a"]) == ["b", "y"]
    assert text.endswith("}\n") and '\n  "student_id": "emma_smith",\n' in text


class _ManySessions:
    def __init__(self, n: int) -> None:
        self.ids = [f"emma_smith_20260117_{i:04d}" for i in range(n)]

    def all_sessions(self, *, start: datetime, end: datetime, page_size: int = 100) -> Iterator[SessionRef]:
        for session_id in self.ids:
            yield SessionRef(session_id=session_id, student_id="emma_smith", start_time=T0)

    def get_session(self, session_id: str) -> SessionExport:
        return _export(session_id)


def test_a_large_export_shows_a_progress_bar_on_a_terminal(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(reading_cli, "open_source", lambda **_: _ManySessions(25))
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path), "--since", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert "exporting" in result.output and "25/25" in result.output
    assert len(list(tmp_path.glob("*.json"))) == 25


def test_a_small_export_prints_only_the_summary(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(reading_cli, "open_source", lambda **_: _ManySessions(3))
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path), "--since", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert "25/25" not in result.output and "exporting" not in result.output.replace("exported", "")
    assert "exported 3 sessions (all students)" in result.output


class _KeptSessions(_ManySessions):
    """Sessions at given start times behind the real full-range rule of a deployment's retention."""

    def __init__(self, starts: dict[str, datetime], retention: timedelta | None) -> None:
        self.starts, self.retention, self.asked = starts, retention, []

    def full_range(self) -> tuple[datetime, datetime]:
        from session_tracker import reading

        return reading.full_range(datetime.now(UTC), self.retention)

    def all_sessions(self, *, start: datetime, end: datetime, page_size: int = 100) -> Iterator[SessionRef]:
        self.asked.append((start, end))
        for session_id, at in self.starts.items():
            if start <= at <= end:
                yield SessionRef(session_id=session_id, student_id="emma_smith", start_time=at)


def test_a_full_export_with_retention_zero_exports_sessions_of_any_age(monkeypatch, tmp_path) -> None:
    """Before: without --since only the last 365 days were read, whatever retention_days said."""
    now = datetime.now(UTC)
    source = _KeptSessions(
        {"emma_smith_20200105_0900": datetime(2020, 1, 5, 9, tzinfo=UTC), "emma_smith_now": now}, None
    )
    monkeypatch.setattr(reading_cli, "open_source", lambda **_: source)
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == ["emma_smith_20200105_0900", "emma_smith_now"]
    assert "data is kept forever" in result.output


def test_a_full_export_reads_exactly_the_retention_window_and_says_so(monkeypatch, tmp_path) -> None:
    source = _KeptSessions({"emma_smith_soon": datetime.now(UTC) + timedelta(hours=20)}, timedelta(days=30))
    monkeypatch.setattr(reading_cli, "open_source", lambda **_: source)
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [(start, end)] = source.asked
    assert timedelta(days=31) < datetime.now(UTC) - start < timedelta(days=33)
    assert end > datetime.now(UTC) + timedelta(days=1)  # calls dated within the clock skew are kept too
    assert [p.stem for p in tmp_path.glob("*.json")] == ["emma_smith_soon"]
    assert f"started since {start:%Y-%m-%d}" in result.output


def test_a_date_bound_is_applied_only_when_asked_for(monkeypatch, tmp_path) -> None:
    source = _KeptSessions({"emma_smith_20200105_0900": datetime(2020, 1, 5, 9, tzinfo=UTC)}, None)
    monkeypatch.setattr(reading_cli, "open_source", lambda **_: source)
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path), "--since", "2021-01-01"])
    assert result.exit_code == 0, result.output
    assert list(tmp_path.glob("*.json")) == [] and source.asked[0][0] == datetime(2021, 1, 1, tzinfo=UTC)


def test_the_api_source_takes_the_full_range_from_the_deployments_kept_since() -> None:
    kept = "2025-11-01T00:00:00.000000Z"

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/sessions"
        body = {"sessions": [], "start": kept, "end": kept, "next_cursor": None, "kept_since": kept}
        return httpx.Response(200, json=body)

    source = ApiSource("http://api.test", "tok", transport=httpx.MockTransport(answer))
    start, _ = source.full_range()
    assert start == datetime(2025, 11, 1, tzinfo=UTC)


def test_a_bad_since_date_names_the_option(tmp_path) -> None:
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path), "--since", "last tuesday"])
    assert result.exit_code == 2
    assert "--since" in result.output


def test_table_errors_are_one_readable_line_not_a_traceback(moto_client, tmp_path) -> None:
    from session_tracker.store import DynamoStore

    source = TableSource("no-such-table", store=DynamoStore("no-such-table", client=moto_client), blobs=False)
    with pytest.raises(SourceError, match="table no-such-table: ResourceNotFoundException"):
        source.get_session("emma_smith_20260117_1430")


def test_analyze_with_table_of_an_unknown_session_exits_2(monkeypatch) -> None:
    from session_tracker.errors import NotFound

    def request_analysis(session_id: str, *, store: Any, now: datetime, config: Any) -> None:
        raise NotFound(f"no session {session_id!r}", field="session_id")

    fake = types.ModuleType("session_tracker.analysis")
    fake.request_analysis = request_analysis  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "session_tracker.analysis", fake)
    monkeypatch.setattr(reading_cli, "open_source", lambda **_: TableSource("t", store=object(), blobs=False))
    result = CliRunner().invoke(app, ["analyze", "nobody_1", "--table", "t"])
    assert result.exit_code == 2
    assert "no session 'nobody_1'" in result.output


def test_show_says_why_an_analysis_failed(monkeypatch) -> None:
    export = _export().model_copy(
        update={"analysis": {"status": "failed", "error": "the OpenAI API key is not configured", "model": "m"}}
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=export.model_dump(mode="json"))

    monkeypatch.setattr(reading_cli, "open_source", lambda **_: _api(handler))
    result = CliRunner().invoke(app, ["show", export.session_id])
    assert result.exit_code == 0, result.output
    assert "analysis failed: the OpenAI API key is not configured" in result.output
    assert "not analysed yet" not in result.output
