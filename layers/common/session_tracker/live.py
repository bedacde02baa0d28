"""The live view's data: sessions running now and those that ended in the last minutes.

Polled by the ``/ui/live`` page every few seconds (``GET /ui/live/data`` with
``If-None-Match``: an unchanged view is a bodiless 304). Each poll is bounded: the open
sessions (the sparse open index, at most ``limit``), the sessions started in the last
``lookback`` (the day index, at most ``limit``) and one batch read of their list lines.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field

from session_tracker.models import LazyModel
from session_tracker.reading import SessionListItem, list_item
from session_tracker.store.ports import PageReader

LOOKBACK = timedelta(hours=6)
RECENT = timedelta(minutes=30)
LIMIT = 50


LiveReader = PageReader
"""What the live view reads (:class:`session_tracker.store.ports.PageReader`)."""


class LiveView(LazyModel):
    active: list[SessionListItem] = Field(default_factory=list)
    """Running now, most recent activity first."""
    ended: list[SessionListItem] = Field(default_factory=list)
    """Closed, completed or unmatched within ``RECENT``, most recent end first."""


def live_sessions(
    *, reader: LiveReader, now: datetime, lookback: timedelta = LOOKBACK, recent: timedelta = RECENT, limit: int = LIMIT
) -> LiveView:
    """What the live view shows at ``now``."""
    open_metas = reader.open_sessions_since(now - lookback, limit=limit)
    refs, _ = reader.list_sessions_between(start=now - lookback, end=now, limit=limit, max_days=2)
    known = {m.session_id for m in open_metas}
    lines = reader.session_lines([r.session_id for r in refs if r.session_id not in known]) if refs else {}
    items = [list_item(m) for m in open_metas] + [list_item(m) for m in lines.values()]
    by_id = {i.session_id: i for i in items}
    active = sorted(
        (i for i in by_id.values() if i.status == "active"),
        key=lambda i: (i.last_activity or i.start_time, i.session_id),
        reverse=True,
    )
    ended = sorted(
        (
            i
            for i in by_id.values()
            if i.status != "active" and now - (i.end_time or i.last_activity or i.start_time) <= recent
        ),
        key=lambda i: (i.end_time or i.last_activity or i.start_time, i.session_id),
        reverse=True,
    )
    return LiveView(active=active[:limit], ended=ended[:limit])
