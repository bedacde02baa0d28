"""What importing a module loads, each probe in a fresh interpreter (modules another test imported
cannot hide a heavy import): only the analysis function may import openai and importing a handler
module has no side effects (no AWS calls, no config errors); the domain modules never load boto3;
the MCP-side client loads neither mcp, fastmcp nor anything of the Lambda layer."""

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


DOMAIN = [
    "session_tracker.sessions",
    "session_tracker.lifecycle",
    "session_tracker.matching",
    "session_tracker.analysis",
    "session_tracker.reading",
    "session_tracker.session_files",
    "session_tracker.ui.views",
    "session_tracker.runtime",
    "session_tracker.store",
    "session_tracker.store.ports",
    "session_tracker.store.fake",
]
_DOMAIN_PROBE = """
import importlib, sys
importlib.import_module({module!r})
print(sorted(m for m in sys.modules if m == "boto3" or m.startswith("boto3.") or m.startswith("session_tracker.store.dynamo")))
"""


@pytest.mark.parametrize("module", DOMAIN)
def test_importing_a_domain_module_does_not_import_boto3(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _DOMAIN_PROBE.format(module=module)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", f"{module} loads {out.stdout.strip()}"


def test_the_probe_can_fail_the_dynamodb_store_does_import_boto3() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _DOMAIN_PROBE.format(module="session_tracker.store.dynamo")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert "'boto3'" in out.stdout


def test_the_client_imports_without_mcp_fastmcp_or_lambda_dependencies() -> None:
    probe = (
        "import sys, session_tracker_client, session_tracker_client.proxy; "
        "print(sorted(m for m in ('mcp', 'fastmcp', 'boto3', 'aws_lambda_powertools', 'openai', "
        "'session_tracker', 'pydantic', 'typer') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=dict(os.environ), timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
