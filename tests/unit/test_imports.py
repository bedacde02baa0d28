"""Cold-start hygiene: only the analysis function may import openai, and importing a
handler module has no side effects (no AWS calls, no config errors)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from session_tracker_local.cfn import Template

ROOT = Path(__file__).resolve().parents[2]
MAY_IMPORT_OPENAI = {"AnalyzeFunction"}

_PROBE = """
import sys
from pathlib import Path
from session_tracker_local.cfn import Template
from session_tracker_local.lambda_host import load_handler
spec = next(f for f in Template.load(Path({root!r}) / "template.yaml").functions() if f.logical_id == {name!r})
load_handler(spec)
print(sorted(m for m in ("openai", "mcp", "typer", "moto") if m in sys.modules))
"""


def _functions() -> list[str]:
    return sorted(f.logical_id for f in Template.load(ROOT / "template.yaml").functions())


@pytest.mark.parametrize("name", _functions())
def test_handler_module_imports_cleanly_without_openai(name: str) -> None:
    env = {
        **os.environ,
        "TABLE_NAME": "import-probe",
        # An unreachable endpoint: importing must not talk to AWS at all.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(root=str(ROOT), name=name)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own probe's list literal
    allowed = {"openai"} if name in MAY_IMPORT_OPENAI else set()
    assert set(loaded) <= allowed, f"{name} imports {loaded} at module load"
