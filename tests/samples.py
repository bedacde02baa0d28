"""The real VAPI message samples shared by the team, copied into ``tests/events/vapi/`` (from
``<repo>/../shared/samples/vapi``) so the suite does not depend on a folder outside the repo;
``test_vapi_samples_are_the_shared_ones`` checks the copies still match when that folder is there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VAPI_SAMPLES = ROOT / "tests" / "events" / "vapi"
SHARED_VAPI_SAMPLES = ROOT.parent / "shared" / "samples" / "vapi"


def vapi_sample(name: str) -> dict[str, Any]:
    """One sample body by file name (without ``.json``)."""
    loaded: dict[str, Any] = json.loads((VAPI_SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def vapi_sample_names() -> list[str]:
    """Every sample's name."""
    return sorted(p.stem for p in VAPI_SAMPLES.glob("*.json"))


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
