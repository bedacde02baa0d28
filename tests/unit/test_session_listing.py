"""The session list's filters, the review queue's candidates and the live view's data (pure, fake reader)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from session_tracker.listing import ListFilters, list_sessions, review_candidates, review_queue
from session_tracker.live import live_sessions
from session_tracker.models import SessionMeta, SessionRef, iso
from session_tracker.ui import views

T0 = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def meta(student: str, at: datetime, **extra: Any) -> SessionMeta:
    return SessionMeta(
        session_id=f"{student}_{at:%Y%m%d_%H%M}",
        student_id=student,
        start_time=at,
        last_activity=extra.pop("last", at + timedelta(minutes=12)),
        status=extra.pop("status", "closed"),
        platform=extra.pop("platform", "vapi"),
        subjects=extra.pop("subjects", ["mathematics"]),
        **extra,
    )


class Fake:
    def __init__(self, metas: list[SessionMeta], tools: dict[str, set[str]] | None = None) -> None:
        self.metas = sorted(metas, key=lambda m: m.start_time, reverse=True)
        self.tools = tools or {}
        self.tool_reads = 0

    def _page(self, found: list[Any], limit: int, cursor: str | None) -> tuple[list[Any], str | None]:
        offset = int(cursor or 0)
        return found[offset : offset + limit], str(offset + limit) if len(found) > offset + limit else None

    def list_student_sessions(self, student_id, *, start, end, limit=20, cursor=None):
        return self._page(
            [m for m in self.metas if m.student_id == student_id and start <= m.start_time <= end], limit, cursor
        )

    def list_sessions_between(self, *, start, end, limit=50, cursor=None, max_days=32):
        refs = [
            SessionRef(session_id=m.session_id, student_id=m.student_id, start_time=m.start_time) for m in self.metas
        ]
        return self._page([r for r in refs if start <= r.start_time <= end], limit, cursor)

    def session_lines(self, session_ids: Sequence[str]) -> dict[str, SessionMeta]:
        return {m.session_id: m for m in self.metas if m.session_id in session_ids}

    def session_tools(self, session_id: str) -> set[str]:
        self.tool_reads += 1
        return self.tools.get(session_id, set())

    def student_sessions_before(self, student_id, before, *, limit=10):
        return [m for m in self.metas if m.student_id == student_id and m.start_time <= before][:limit]

    def open_sessions_since(self, since, *, limit=50):
        return [m for m in self.metas if m.status == "active" and m.last_activity >= since][:limit]


def test_without_filters_every_session_is_listed_newest_first_across_pages() -> None:
    metas = [meta(s, T0 + timedelta(hours=h)) for h in range(30) for s in ("ana",)] + [meta("ben", T0)]
    reader = Fake(metas)
    first = list_sessions(ListFilters(), reader=reader, now=T0 + timedelta(days=2), page=25)
    rest = list_sessions(ListFilters(), reader=reader, now=T0 + timedelta(days=2), cursor=first.next_cursor)
    ids = [s.session_id for s in first.sessions + rest.sessions]
    assert len(ids) == 31 and len(set(ids)) == 31
    assert [s.start_time for s in first.sessions] == sorted((s.start_time for s in first.sessions), reverse=True)


def test_status_platform_and_subject_filters_combine() -> None:
    metas = [
        meta("ana", T0, status="unmatched", platform="retell"),
        meta("ana", T0 + timedelta(hours=1), status="unmatched", platform="vapi"),
        meta("ben", T0 + timedelta(hours=2), status="completed", platform="retell", subjects=["Reading"]),
    ]
    page = list_sessions(ListFilters(status="unmatched", platform="RETELL"), reader=Fake(metas), now=T0 + timedelta(1))
    assert [s.session_id for s in page.sessions] == [metas[0].session_id]
    page = list_sessions(ListFilters(subject="reading"), reader=Fake(metas), now=T0 + timedelta(1))
    assert [s.student_id for s in page.sessions] == ["ben"]


def test_the_tool_filter_reads_calls_only_of_sessions_that_pass_the_other_filters() -> None:
    metas = [meta("ana", T0 + timedelta(hours=h), platform="vapi" if h % 2 else "retell") for h in range(10)]
    tools = {m.session_id: {"check_answer"} for m in metas[::3]}
    reader = Fake(metas, tools)
    page = list_sessions(ListFilters(platform="vapi", tool="check_answer"), reader=reader, now=T0 + timedelta(1))
    assert {s.session_id for s in page.sessions} == {m.session_id for m in metas[::3] if m.platform == "vapi"}
    assert reader.tool_reads == 5  # only the vapi ones


def test_a_rare_filter_stops_at_the_budget_and_offers_to_go_on() -> None:
    metas = [meta("ana", T0 + timedelta(minutes=20 * n)) for n in range(120)]
    page = list_sessions(ListFilters(platform="elevenlabs"), reader=Fake(metas), now=T0 + timedelta(3), budget=50)
    assert page.sessions == [] and page.next_cursor is not None
    assert page.examined == 50 and page.searched_to is not None


def test_the_queue_holds_only_unmatched_sessions_of_the_unknown_student() -> None:
    metas = [
        meta("unknown", T0, status="unmatched"),
        meta("ana", T0, status="unmatched"),
        meta("ana", T0 + timedelta(1)),
    ]
    queue = review_queue(reader=Fake(metas))
    assert [s.session_id for s in queue.sessions] == [metas[0].session_id]


def test_candidates_are_the_students_sessions_near_the_call_nearest_first() -> None:
    call = meta("unknown", T0 + timedelta(hours=3), status="unmatched", last=T0 + timedelta(hours=3, minutes=9))
    near = meta("ana", T0 + timedelta(hours=3, minutes=4))  # overlaps the call
    earlier = meta("ana", T0)
    far = meta("ana", T0 - timedelta(days=2))
    out = review_candidates(call, "ana", reader=Fake([call, near, earlier, far]), window=timedelta(minutes=5))
    assert [c.session.session_id for c in out] == [near.session_id, earlier.session_id]
    assert out[0].nearest and out[0].gap_seconds == 0 and not out[1].in_window


def test_the_live_view_shows_running_and_just_ended_sessions() -> None:
    now = T0 + timedelta(hours=1)
    running = meta("ana", now - timedelta(minutes=5), status="active", last=now - timedelta(minutes=1))
    ended = meta("ben", now - timedelta(minutes=40), status="completed", last=now - timedelta(minutes=10))
    old = meta("cy", now - timedelta(hours=3), status="closed", last=now - timedelta(hours=2, minutes=40))
    view = live_sessions(reader=Fake([running, ended, old]), now=now)
    assert [s.session_id for s in view.active] == [running.session_id]
    assert [s.session_id for s in view.ended] == [ended.session_id]


def test_an_unchanged_live_view_is_a_304_without_a_body() -> None:
    reader = Fake([meta("ana", T0, status="active", last=T0 + timedelta(minutes=1))])
    first = views.live_data({"headers": {}}, reader=reader, now=T0 + timedelta(minutes=2))
    etag = first.headers["ETag"]
    again = views.live_data({"headers": {"if-none-match": etag}}, reader=reader, now=T0 + timedelta(minutes=2))
    assert (first.status_code, again.status_code, again.body) == (200, 304, "")
    reader.metas[0] = reader.metas[0].model_copy(update={"interaction_count": 2})
    changed = views.live_data({"headers": {"if-none-match": etag}}, reader=reader, now=T0 + timedelta(minutes=2))
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert iso(T0)  # timestamps in the fragment are absolute: the ETag does not change with the clock
