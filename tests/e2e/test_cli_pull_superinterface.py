"""``session-tracker pull superinterface`` against a local fake of the messages API and the local stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import httpx
from fakes.superinterface_server import FakeSuperinterface, message

CLI = [sys.executable, "-m", "session_tracker_cli.cli"]
KEY, ASSISTANT = "pk_fake_public", "asst_fake"
T0 = int(datetime(2025, 6, 3, 15, 0, tzinfo=UTC).timestamp())
RUN_STEP = {
    "id": "step_1",
    "created_at": T0 + 21,
    "step_details": {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_lesson", "arguments": '{"unit": "fractions"}'},
            }
        ],
    },
}
THREAD = [
    message("msg_1", "user", "Can we do fractions?", T0 + 10),
    message("msg_2", "assistant", "Sure, let me get today's lesson.", T0 + 20, [RUN_STEP]),
    message("msg_3", "user", "Okay!", T0 + 40),
    message("msg_4", "assistant", "What is one half plus one quarter?", T0 + 50),
    message("msg_5", "user", "Three quarters.", T0 + 70),
]


def pull(local_stack, fake: FakeSuperinterface, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("INGEST_TOKEN", "SESSION_TRACKER_URL")}
    env |= {
        "SESSION_TRACKER_URL": local_stack.url,
        "INGEST_TOKEN": "e2e-ingest-token",
        "SUPERINTERFACE_PUBLIC_API_KEY": KEY,
        "SUPERINTERFACE_ASSISTANT_ID": ASSISTANT,
    }
    args = ["pull", "superinterface", "--superinterface-url", fake.url, *extra]
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)


def test_a_pulled_thread_becomes_the_students_conversation_in_order_once(local_stack) -> None:
    with FakeSuperinterface({"thr_fake": THREAD}, public_api_key=KEY, assistant_id=ASSISTANT) as fake:
        first = pull(local_stack, fake, "--thread-id", "thr_fake", "--student", "pull_noah")
        assert first.returncode == 0, first.stderr
        again = pull(local_stack, fake, "--thread-id", "thr_fake", "--student", "pull_noah")
    created = json.loads(first.stdout)
    assert (created["outcome"], created["session_id"]) == ("created", "pull_noah_20250603_1500")
    assert json.loads(again.stdout)["outcome"] == "duplicate"
    assert [q.get("pageParam") for q in fake.requests[:3]] == [None, ["msg_4"], ["msg_2"]]  # three pages, newest first
    shown = httpx.get(
        f"{local_stack.url}/sessions/pull_noah_20250603_1500", headers={"Authorization": "Bearer e2e-read-token"}
    ).json()
    assert shown["conversation"]["transcript"].splitlines() == [
        "User: Can we do fractions?",
        "AI: Sure, let me get today's lesson.",
        "User: Okay!",
        "AI: What is one half plus one quarter?",
        "User: Three quarters.",
    ]
    assert shown["platform"] == "superinterface"
    assert shown["platform_metadata"]["call_id"] == "thr_fake"


def test_a_wrong_key_or_thread_fails_clearly(local_stack) -> None:
    with FakeSuperinterface({"thr_fake": THREAD}, public_api_key=KEY, assistant_id=ASSISTANT) as fake:
        missing = pull(local_stack, fake, "--thread-id", "thr_nope", "--student", "pull_noah")
        wrong = pull(local_stack, fake, "--thread-id", "thr_fake", "--student", "pull_noah", "--public-api-key", "x")
    assert missing.returncode == 1 and "404" in missing.stderr
    assert wrong.returncode == 1 and "401" in wrong.stderr
