"""The real platform samples shared by the team (VAPI, Retell, ElevenLabs), copied with their
NOTES.md into ``tests/events/<platform>/`` so the suite depends on no folder outside the repo.

``tests/events/SAMPLES.sha256`` records the digest of each sample as copied; the unit tests check
every copy against it (a sample edited by hand, added or lost fails). When the shared samples
change, copy them again and rewrite the record in one step::

    .venv/bin/python tests/samples.py --sync ../shared/samples
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VAPI_SAMPLES = ROOT / "tests" / "events" / "vapi"


def vapi_sample(name: str) -> dict[str, Any]:
    """One sample body by file name (without ``.json``)."""
    loaded: dict[str, Any] = json.loads((VAPI_SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def vapi_sample_names() -> list[str]:
    """Every sample's name."""
    return sorted(p.stem for p in VAPI_SAMPLES.glob("*.json"))


# ------------------------------------------------ Retell and ElevenLabs (copied into tests/events)
EVENTS = ROOT / "tests" / "events"
PLATFORMS = ("vapi", "retell", "elevenlabs")
MANIFEST = EVENTS / "SAMPLES.sha256"


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


def sample_files() -> list[Path]:
    """Every platform sample kept in tests/events (the JSON bodies)."""
    return sorted(p for platform in PLATFORMS for p in (EVENTS / platform).glob("*.json"))


def recorded_digests() -> dict[str, str]:
    """``<platform>/<name>.json`` -> sha256 as recorded when the samples were copied."""
    lines = MANIFEST.read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines if line.strip())}


def digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def sync(shared: Path) -> None:
    """Copy ``shared/<platform>/*.json`` and NOTES.md over tests/events/<platform>/ (removing
    samples the shared folder no longer has) and rewrite the digest record."""
    import shutil

    for platform in PLATFORMS:
        source, target = shared / platform, EVENTS / platform
        if not source.is_dir():
            raise SystemExit(f"{source} is not a folder")
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*.json"):
            if not (source / old.name).is_file():
                old.unlink()
        for path in [*sorted(source.glob("*.json")), source / "NOTES.md"]:
            if path.is_file():
                shutil.copyfile(path, target / path.name)
    record = [f"{digest(p)}  {p.relative_to(EVENTS).as_posix()}" for p in sample_files()]
    MANIFEST.write_text("\n".join(record) + "\n", encoding="utf-8")
    print(f"copied {len(record)} samples from {shared}; wrote {MANIFEST.relative_to(ROOT)}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Copy the shared platform samples into tests/events.")
    parser.add_argument("--sync", type=Path, required=True, metavar="SHARED_SAMPLES_DIR")
    sync(parser.parse_args().sync.resolve())
