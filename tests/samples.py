"""The real VAPI message samples shared by the team (``<repo>/../shared/samples/vapi``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
VAPI_SAMPLES = ROOT.parent / "shared" / "samples" / "vapi"


def vapi_sample(name: str) -> dict[str, Any]:
    """One sample body by file name (without ``.json``); skips the test when the folder is absent."""
    path = VAPI_SAMPLES / f"{name}.json"
    if not VAPI_SAMPLES.is_dir():
        pytest.skip(f"VAPI samples not found at {VAPI_SAMPLES} (the shared samples folder is absent)")
    return json.loads(path.read_text(encoding="utf-8"))


def vapi_sample_names() -> list[str]:
    """Every sample's name; the fixed list when the folder is absent (tests then skip)."""
    if VAPI_SAMPLES.is_dir():
        return sorted(p.stem for p in VAPI_SAMPLES.glob("*.json"))
    return [
        "conversation-update",
        "end-of-call-report.empty-conversation",
        "end-of-call-report.full",
        "end-of-call-report.short-no-analysis",
        "status-update.ended-abnormal",
        "status-update.in-progress",
        "tool-calls",
        "transcript.final",
    ]


# ------------------------------------------------ Retell and ElevenLabs (copied into tests/events)
EVENTS = ROOT / "tests" / "events"
SHARED_SAMPLES = ROOT.parent / "shared" / "samples"


def platform_sample_raw(platform: str, name: str) -> bytes:
    """The exact bytes of ``tests/events/<platform>/<name>.json`` (a copy of the shared sample)."""
    return (EVENTS / platform / f"{name}.json").read_bytes()


def platform_sample(platform: str, name: str) -> dict[str, Any]:
    """One Retell / ElevenLabs sample body, parsed."""
    loaded: dict[str, Any] = json.loads(platform_sample_raw(platform, name))
    return loaded


def platform_sample_names(platform: str) -> list[str]:
    """Every sample of ``platform`` kept in ``tests/events/<platform>/``."""
    return sorted(p.stem for p in (EVENTS / platform).glob("*.json"))
