"""template.yaml through the tools CI runs (``make lint-template``): cfn-lint and ``sam validate --lint``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_cfn_lint_is_clean() -> None:
    cfn_lint = shutil.which("cfn-lint") or str(ROOT / ".venv/bin/cfn-lint")
    result = subprocess.run([cfn_lint, str(ROOT / "template.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint() -> None:
    sam = ROOT / ".venv-sam/bin/sam"
    if not sam.exists():
        sam_path = shutil.which("sam")
        if not sam_path:
            pytest.skip("SAM CLI not installed (make test installs it into .venv-sam)")
        sam = Path(sam_path)
    result = subprocess.run(
        [str(sam), "validate", "--lint", "--region", "us-east-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"SAM_CLI_TELEMETRY": "0", "PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
