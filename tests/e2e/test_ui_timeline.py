"""The session page in headless Chromium against the local stack; saves docs/ui-timeline.png."""

from __future__ import annotations

import re
import struct
import subprocess
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from browser import chromium_path
from seed_sessions import CALLS, TRANSCRIPT, seed_emma

from session_tracker.store import DynamoStore

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-read-token"
T0 = datetime(2026, 2, 10, 16, 5, 0, tzinfo=UTC)
SCREENSHOT = ROOT / "docs" / "ui-timeline.png"
WINDOW = (1400, 1200)


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_path()


@pytest.fixture(scope="module")
def session_id(local_stack) -> str:
    return seed_emma(DynamoStore(local_stack.options.table_name), T0, student="emma_smith")


def browse(chromium: str, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--virtual-time-budget=5000",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_the_timeline_shows_every_call_with_its_data_and_the_transcript(chromium, local_stack, session_id) -> None:
    # The token once in the URL: the cookie is set and a redirect drops the token from the address.
    dom = browse(chromium, f"{local_stack.url}/ui/sessions/{session_id}?token={TOKEN}", "--dump-dom").stdout
    assert f"<title>{session_id} · tutor-session-tracker</title>" in dom
    markers = re.findall(r'<a class="marker[^"]*"[^>]*>.*?<span class="label">([^<]+)<small>([^<]*)</small>', dom)
    assert [m[0] for m in markers] == [c[1] for c in CALLS]
    assert markers[0][1] == "profile, progress"
    turns = [unescape(t) for t in re.findall(r'<li class="turn[^"]*"[^>]*>.*?<p>(.*?)</p>', dom)]
    assert turns == [line.split(": ", 1)[1] for line in TRANSCRIPT.splitlines()]
    assert "$0.1977" in dom and "customer-ended-call" in dom
    assert "solved three of four problems" in dom
    assert TOKEN not in dom


def test_the_page_without_the_token_shows_a_sign_in_form_and_nothing_of_the_session(
    chromium, local_stack, session_id
) -> None:
    dom = browse(chromium, f"{local_stack.url}/ui/sessions/{session_id}", "--dump-dom").stdout
    assert 'action="/ui/sign-in"' in dom and 'type="password"' in dom
    assert "get_student_context" not in dom and "fractions" not in dom


def test_a_screenshot_of_the_timeline_is_saved_for_the_readme(chromium, local_stack, session_id, tmp_path) -> None:
    shot = tmp_path / "shot.png"
    result = browse(chromium, f"{local_stack.url}/ui/sessions/{session_id}?token={TOKEN}", f"--screenshot={shot}")
    assert shot.exists(), result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == WINDOW
    assert len(data) > 50_000  # a rendered page, not a blank one
    SCREENSHOT.write_bytes(data)
