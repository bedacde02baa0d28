"""What the packaging tests share: a clean venv with some wheels installed, and its pip list."""

from __future__ import annotations

import json
import re
import subprocess
import venv
from pathlib import Path


def venv_with(env_dir: Path, wheels: list[str]) -> Path:
    """A new venv at ``env_dir`` (pip only) with ``wheels`` and their dependencies installed."""
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    out = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", *wheels],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return env_dir


def pip_list(env_dir: Path) -> dict[str, str]:
    """Distribution name (normalised) -> version of everything installed in the venv."""
    out = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return {re.sub(r"[-_.]+", "-", p["name"]).lower(): p["version"] for p in json.loads(out.stdout)}
