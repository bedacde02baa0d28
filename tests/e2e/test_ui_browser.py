"""The tutor's pages in a real headless Chromium against the local stack (what `make run` serves).

The session list and its filter form, the student page with its charts, the unmatched review
queue with an assignment, and the live view receiving a new call without a reload. Each test
saves its screenshot under docs/ (the README shows them).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from browser import Browser, chromium_path

from session_tracker.models import InteractionIn
from session_tracker.sessions import log_interactions
from session_tracker.store import DynamoStore
from session_tracker_local import demo

ROOT = Path(__file__).resolve().parents[2]
INGEST = "e2e-ingest-token"
ADMIN = "e2e-admin-token"  # assigning is admin; an admin may read every page too
VAPI = "e2e-vapi-secret"
DOCS = ROOT / "docs"
NOW = datetime.now(UTC).replace(microsecond=0)
STUDENTS = ("emma_smith", "jacob_miller", "ava_chen")


def _renamed(student: str) -> str:
    return f"ui_{student}"


@pytest.fixture(scope="module")
def seeded(local_stack) -> dict[str, object]:
    """Three weeks of the demo's lessons for three students (renamed ui_*, logged in-process through
    the domain path), one VAPI report through the webhook, and a report no session matches."""
    store = DynamoStore(local_stack.options.table_name)
    plan = demo.plan(NOW, weeks=3, seed=5)
    calls = [c for c in plan.interactions if c["student_id"] in STUDENTS]
    for call in calls:
        call["student_id"] = _renamed(call["student_id"])
        call["interaction_id"] = "ui" + call["interaction_id"]
        call["arguments"] = {**call["arguments"], "student_id": call["student_id"]}
    by_student: dict[str, list[InteractionIn]] = {}
    for call in calls:
        by_student.setdefault(call["student_id"], []).append(InteractionIn.model_validate(call))
    sessions: dict[str, set[str]] = {}
    for student, items in by_student.items():
        results = log_interactions(items, store=store, now=NOW, timeout=timedelta(minutes=10))
        sessions[student] = {r.session_id for r in results}
    emma = _renamed("emma_smith")
    lesson = min(
        (datetime.fromisoformat(c["timestamp"].replace("Z", "+00:00")) for c in calls if c["student_id"] == emma),
        key=lambda t: abs((t - (NOW - timedelta(days=7))).total_seconds()),
    )
    target = next(
        s for s in sessions[emma] if s.startswith(f"{emma}_{lesson:%Y%m%d}")
    )  # the lesson the stray call belongs to
    stray = demo._report(
        call_id="ui-e2e-stray-call",
        student_id=None,
        started=lesson.replace(hour=13, minute=7, second=0),
        ended=lesson.replace(hour=13, minute=16, second=0),
        transcript="AI: Hi! Who is this?\nUser: It's Emma, can we do fractions?",
        cost=0.0731,
        reason="customer-ended-call",
    )
    with httpx.Client(base_url=local_stack.url, timeout=30) as http:
        answer = http.post("/webhook/vapi/session-complete", json=stray, headers={"X-Vapi-Secret": VAPI})
        assert answer.status_code == 200, answer.text
        unmatched = answer.json()["session_id"]
    return {"sessions": sessions, "unmatched": unmatched, "target": target, "emma": emma}


@pytest.fixture(scope="module")
def browser(local_stack) -> Iterator[Browser]:
    b = Browser(chromium_path())
    try:
        # Signs in: sets the cookie and redirects to the same page without the token.
        b.goto(f"{local_stack.url}/ui?token={ADMIN}", lands_on=f"{local_stack.url}/ui")
        yield b
    finally:
        b.close()


def _rows(browser: Browser) -> list[list[str]]:
    return browser.js(
        "Array.from(document.querySelectorAll('table.sessions tbody tr')).map("
        "r => Array.from(r.cells).map(c => c.innerText.trim()))"
    )


def _shot(browser: Browser, name: str) -> None:
    data = browser.screenshot(DOCS / name)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">I", data[16:20])[0] == 1400
    assert len(data) > 40_000  # a rendered page, not a blank one


def test_the_list_shows_every_session_newest_first_with_status_length_and_cost(browser, local_stack, seeded) -> None:
    # The e2e stack is shared: sessions other tests log "now" would push the seeded weeks off the
    # first page, so the list is bounded to the seeded weeks (before today).
    weeks = f"from={(NOW - timedelta(days=22)):%Y-%m-%d}&to={(NOW - timedelta(days=1)):%Y-%m-%d}"
    browser.goto(f"{local_stack.url}/ui?{weeks}")
    rows = _rows(browser)
    ours = [r for r in rows if r[1].startswith("ui_")]
    assert len(ours) >= 10
    started = [datetime.strptime(r[2], "%a %d %b %Y %H:%M") for r in rows]
    assert started == sorted(started, reverse=True)
    assert all(re.fullmatch(r"\d+:\d\d", r[3]) for r in ours)  # length
    assert {r[4] for r in ours} <= {"ACTIVE", "CLOSED", "COMPLETED", "UNMATCHED"}
    _shot(browser, "ui-list.png")


def test_the_filter_form_narrows_the_list_by_student_status_and_tool(browser, local_stack, seeded) -> None:
    browser.goto(f"{local_stack.url}/ui")
    ava = _renamed("ava_chen")
    browser.submit("form.filters", {"student": ava, "tool": "update_progress"})
    assert "student=ui_ava_chen" in browser.url() and "tool=update_progress" in browser.url()
    rows = _rows(browser)
    assert rows and {r[1] for r in rows} == {ava}
    assert len(rows) < len(seeded["sessions"][ava])  # not every lesson got to update_progress
    browser.goto(f"{local_stack.url}/ui")
    browser.submit("form.filters", {"status": "unmatched"})
    rows = _rows(browser)
    assert seeded["unmatched"] in {r[0] for r in rows}
    assert {r[4] for r in rows} == {"UNMATCHED"}


def test_the_student_page_draws_its_charts_from_every_session(browser, local_stack, seeded) -> None:
    emma = seeded["emma"]
    browser.goto(f"{local_stack.url}/ui/students/{emma}")
    charts = browser.js(
        "Array.from(document.querySelectorAll('svg.chart')).map(s => [s.id, s.getAttribute('role'),"
        " s.querySelector('title').textContent, s.querySelectorAll('rect').length])"
    )
    assert [c[0] for c in charts] == ["chart-weeks", "chart-lengths", "chart-subjects", "chart-kinds"]
    assert all(c[1] == "img" for c in charts)
    lengths = next(c for c in charts if c[0] == "chart-lengths")
    assert lengths[3] == len(seeded["sessions"][emma])  # one bar per session
    weeks = browser.js("document.querySelector('#chart-weeks desc').textContent")
    assert weeks.startswith(f"{len(seeded['sessions'][emma])} sessions over")
    _shot(browser, "ui-student.png")


def test_an_unmatched_call_is_assigned_from_the_review_queue(browser, local_stack, seeded) -> None:
    unmatched, target, emma = seeded["unmatched"], seeded["target"], seeded["emma"]
    browser.goto(f"{local_stack.url}/ui/review")
    browser.click(f'a[href="/ui/review?session={unmatched}"]')
    browser.submit('form[aria-label="Whose call is this"]', {"student": emma})
    offered = browser.js("Array.from(document.querySelectorAll('.candidates li > a')).map(a => a.textContent)")
    assert offered and offered[0] == target  # the same day's lesson, nearest first
    _shot(browser, "ui-review.png")
    browser.click(f'.candidates form.assign input[value="{target}"] ~ button')
    assert "done=" in browser.url()
    assert target in browser.js("document.querySelector('.notice').textContent")
    queue = browser.js("Array.from(document.querySelectorAll('.queue a')).map(a => a.textContent)")
    assert unmatched not in queue
    with httpx.Client(base_url=local_stack.url, headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        merged = http.get(f"/sessions/{target}").json()
        assert merged["matching"]["strategy"] == "manual"
        assert "can we do fractions" in merged["conversation"]["transcript"]
        assert http.get(f"/sessions/{unmatched}").status_code == 404


def test_the_live_view_shows_a_new_call_within_seconds_without_a_reload(browser, local_stack, seeded) -> None:
    browser.goto(f"{local_stack.url}/ui/live")
    browser.wait_for("document.querySelector('#live-state.on')", timeout=30)
    browser.js("window.__sameDocument = 42")
    nodes_before = browser.js("document.getElementsByTagName('*').length")
    student = f"ui_live_{NOW:%H%M%S}"
    with httpx.Client(base_url=local_stack.url, headers={"Authorization": f"Bearer {INGEST}"}) as http:
        http.post(
            "/interactions",
            json={"student_id": student, "function": "get_student_context", "data_provided": ["profile"]},
        ).raise_for_status()
        browser.wait_for(f"document.getElementById('live').innerText.indexOf({student!r}) >= 0", timeout=10)
        assert browser.js("window.__sameDocument") == 42  # updated in place, not reloaded
        calls = lambda: browser.js(  # noqa: E731
            f"Array.from(document.querySelectorAll('#live tr')).filter(r => r.innerText.indexOf({student!r}) >= 0)"
            ".map(r => r.cells[6].innerText)[0]"
        )
        assert calls() == "1"
        http.post(
            "/interactions", json={"student_id": student, "function": "get_lesson_plan", "data_provided": ["plan"]}
        ).raise_for_status()
        browser.wait_for(
            f"Array.from(document.querySelectorAll('#live tr')).some(r => r.innerText.indexOf({student!r}) >= 0"
            " && r.cells[6].innerText === '2')",
            timeout=10,
        )
    assert "Live · updated" in browser.js("document.getElementById('live-state').innerText")
    # Replacing the fragment does not pile up nodes: one row more than before, nothing else.
    assert browser.js("document.getElementsByTagName('*').length") - nodes_before < 40
    _shot(browser, "ui-live.png")
