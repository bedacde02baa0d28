"""``session-tracker-cli`` as an operator gets it: the wheels of the CLI, the client and the core
package installed into a fresh venv, their dependencies from the package index. Nothing of the
server side comes along (moto, openai, Powertools, boto3: the table extra is not asked for), and
the CLI works: ``--help``, and a reading command that fails cleanly on a closed port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from packaging_helpers import pip_list, venv_with

ROOT = Path(__file__).resolve().parents[2]
SERVER_SIDE = {"moto", "openai", "aws-lambda-powertools", "boto3", "botocore"}

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def cli_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("cli-install")
    dist = work / "dist"
    for project in (ROOT, ROOT / "clients", ROOT / "cli"):
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(project)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    wheels = sorted(str(w) for w in dist.glob("*.whl"))
    assert len(wheels) == 3, wheels
    return venv_with(work / "venv", wheels)


def test_the_cli_installs_without_moto_openai_powertools_or_boto3(cli_venv: Path) -> None:
    installed = pip_list(cli_venv)
    print("\npip list of the clean CLI venv:")
    for name, version in sorted(installed.items()):
        print(f"  {name:<24} {version}")
    assert {"session-tracker-cli", "session-tracker-client", "tutor-session-tracker", "typer", "rich", "httpx"} <= set(
        installed
    )
    assert not SERVER_SIDE & set(installed), SERVER_SIDE & set(installed)


def test_the_installed_cli_runs(cli_venv: Path) -> None:
    script = str(cli_venv / "bin" / "session-tracker")
    help_out = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert help_out.returncode == 0 and "sessions" in help_out.stdout, help_out.stderr
    read = subprocess.run(
        [script, "sessions", "--student", "emma_smith", "--url", "http://127.0.0.1:9", "--token", "t"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert read.returncode == 1, (read.stdout, read.stderr)
    assert "Traceback" not in read.stderr and "error" in read.stderr.lower(), read.stderr
    table = subprocess.run(
        [script, "sessions", "--student", "emma_smith", "--table", "t"], capture_output=True, text=True, timeout=60
    )
    assert table.returncode != 0 and "Traceback" not in table.stderr, table.stderr
    assert "table" in table.stderr, table.stderr  # says the extra is needed (boto3)
