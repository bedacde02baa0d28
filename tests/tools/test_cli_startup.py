"""The ``session-tracker`` CLI starts light: ``--help`` loads only the CLI, typer and rich, and
``mcp-proxy`` (which starts in front of every MCP server) loads no AWS SDK, moto, Powertools or
openai. How long ``--help`` takes is measured by the bench (``python -m bench --only cli_startup``),
not asserted here. Each probe runs in a fresh
interpreter, so modules another test imported cannot hide (or fake) a heavy import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import dependency_closure, normalise

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "moto", "aws_lambda_powertools", "openai", "session_tracker.store.dynamo")

_PROBE = """
import json, sys
sys.argv = ["session-tracker", *{argv!r}]
from session_tracker_cli.cli import main
code = 0
if sys.argv[1:]:
    try:
        main()
    except SystemExit as exc:
        code = exc.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


def _fresh_interpreter(code: str) -> Any:
    """Run ``code`` in a new interpreter; its last output line, parsed as JSON."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        # Nothing may reach AWS: a command that does talk to DynamoDB meets a closed local port.
        env={**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _probe(*argv: str) -> dict[str, object]:
    result: dict[str, object] = _fresh_interpreter(_PROBE.format(argv=list(argv), heavy=HEAVY))
    return result


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([], id="import-only"),
        pytest.param(["--help"], id="help"),
        pytest.param(["sessions", "--help"], id="sessions-help"),
        pytest.param(
            ["mcp-proxy", "--url", "http://127.0.0.1:9", "--", sys.executable, "-c", "pass"],
            id="mcp-proxy",
        ),
    ],
)
def test_cli_startup_imports_no_aws_sdk_moto_powertools_or_openai(argv: list[str]) -> None:
    result = _probe(*argv)
    assert result["code"] == 0, result
    assert result["heavy"] == [], f"session-tracker {' '.join(argv)} imported {result['heavy']} at startup"


def test_reading_commands_still_load_the_read_path_when_they_run() -> None:
    """The probe can fail: a command that reads sessions does import the store (boto3) - lazily."""
    result = _probe("sessions", "--student", "emma_smith", "--table", "no-such-table-probe")
    heavy = result["heavy"]
    assert isinstance(heavy, list)
    assert "session_tracker.store.dynamo" in heavy


_IMPORTED = """
import json, sys, sysconfig
from importlib.metadata import packages_distributions
stdlib = sysconfig.get_paths()["stdlib"]
before = set(sys.modules)
sys.argv = ["session-tracker", *{argv!r}]
from session_tracker_cli.cli import main
try:
    main()
except SystemExit:
    pass
def third_party(name):
    where = getattr(sys.modules[name], "__file__", None) or ""
    return name not in sys.stdlib_module_names and not (where.startswith(stdlib) and "-packages" not in where)
tops = {{m.partition(".")[0] for m in set(sys.modules) - before}}
tops = {{top for top in tops if top in sys.modules and third_party(top)}}
owners = packages_distributions()
print(json.dumps({{top: owners.get(top, ["?" + top]) for top in sorted(tops)}}))
"""


def _distributions_imported(*argv: str) -> dict[str, list[str]]:
    """Top-level third-party module -> the distributions it belongs to, for what running
    ``session-tracker *argv`` imported in a fresh interpreter."""
    imported: dict[str, list[str]] = _fresh_interpreter(_IMPORTED.format(argv=list(argv)))
    return imported


# rich.pretty imports attrs when it happens to be installed (it is not a dependency of rich).
OPTIONAL_IMPORTS = {"attrs"}


def _help_may_import() -> set[str]:
    return dependency_closure("typer") | dependency_closure("rich") | {"session-tracker-cli"} | OPTIONAL_IMPORTS


@pytest.mark.parametrize("argv", [["--help"], ["sessions", "--help"]], ids=["help", "sessions-help"])
def test_help_imports_only_the_cli_typer_and_rich(argv: list[str]) -> None:
    """What keeps ``--help`` at about 0.3 s (bench: cli_startup): it loads the CLI module, typer and
    rich and nothing else - not httpx, not the session models (pydantic, pyyaml), no AWS SDK. A
    command loads what it needs when it runs."""
    imported = _distributions_imported(*argv)
    outside = {top: dists for top, dists in imported.items() if not {normalise(d) for d in dists} <= _help_may_import()}
    assert outside == {}, f"session-tracker {' '.join(argv)} imports {outside}"
    assert "session_tracker_cli" in imported


def test_the_help_import_check_can_fail_a_command_that_runs_loads_httpx_and_the_read_rules() -> None:
    imported = _distributions_imported("sessions", "--student", "emma_smith", "--url", "http://127.0.0.1:9")
    outside = {normalise(d) for dists in imported.values() for d in dists} - _help_may_import()
    assert {"httpx", "tutor-session-tracker"} <= outside, outside


def test_reading_over_the_api_loads_no_aws_sdk() -> None:
    """Over the API the CLI needs no boto3 (``session-tracker-cli`` without the ``table`` extra):
    the read path reaches the (closed) port and fails cleanly without importing the store."""
    result = _probe("sessions", "--student", "emma_smith", "--url", "http://127.0.0.1:9")
    assert result["code"] == 1, result
    assert result["heavy"] == [], result


_DEFERRED_PROBE = """
import json, sys
sys.argv = ["session-tracker", *{argv!r}]
from session_tracker_cli.cli import main
try:
    main()
except SystemExit:
    pass
loaded = sorted(m for m in ("markdown_it", "pygments", "rich.pretty", "rich.syntax") if m in sys.modules)
print(json.dumps({{"loaded": loaded}}))
"""


@pytest.mark.parametrize("argv", [["--help"], ["sessions", "--help"]], ids=["help", "sessions-help"])
def test_help_does_not_load_markdown_or_traceback_rendering(argv: list[str]) -> None:
    """typer's help module imports rich.markdown and rich.traceback at its top (markdown-it,
    pygments, rich.pretty): about half of what --help loaded. The CLI defers them."""
    assert _fresh_interpreter(_DEFERRED_PROBE.format(argv=argv)) == {"loaded": []}


def test_the_deferred_rich_modules_still_work_when_used() -> None:
    code = """
import json, sys
from session_tracker_cli.cli import _defer_rich_extras
_defer_rich_extras()
from rich.markdown import Markdown
from rich.traceback import Traceback
import rich.markdown
before = "markdown_it" in sys.modules
try:
    1 / 0
except ZeroDivisionError as exc:
    tb = Traceback.from_exception(type(exc), exc, exc.__traceback__)
md = Markdown("# title")
import rich.markdown as again
print(json.dumps({"before": before, "md": type(md).__module__ + "." + type(md).__name__,
                  "tb": type(tb).__name__, "real": type(again).__name__, "heading": again.Heading.__name__}))
"""
    assert _fresh_interpreter(code) == {
        "before": False,
        "md": "rich.markdown.Markdown",
        "tb": "Traceback",
        "real": "module",
        "heading": "Heading",
    }
