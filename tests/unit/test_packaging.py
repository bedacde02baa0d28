"""The shape of the four distributions: one version, one list of layer dependencies, and
installs that bring only what each audience needs (read from the installed metadata)."""

from __future__ import annotations

import json
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from helpers import dependency_closure
from packaging.requirements import Requirement

import session_tracker
import session_tracker_client
from session_tracker_local import layer_requirements

ROOT = Path(__file__).resolve().parents[2]
PYPROJECTS = {
    "tutor-session-tracker": ROOT / "pyproject.toml",
    "session-tracker-client": ROOT / "clients" / "pyproject.toml",
    "session-tracker-cli": ROOT / "cli" / "pyproject.toml",
    "session-tracker-local": ROOT / "local" / "pyproject.toml",
}
SERVER_ONLY = {"moto", "openai", "aws-lambda-powertools", "boto3", "botocore"}


def _project(name: str) -> dict[str, object]:
    project: dict[str, object] = tomllib.loads(PYPROJECTS[name].read_text())["project"]
    return project


@pytest.mark.parametrize("name", sorted(PYPROJECTS))
def test_no_pyproject_writes_a_version_of_its_own(name: str) -> None:
    project = _project(name)
    assert "version" not in project
    assert "version" in project["dynamic"]  # type: ignore[operator]


def test_product_version_is_one_value_everywhere() -> None:
    """The core, the CLI, the local stack, /health and openapi.json all say session_tracker.__version__."""
    version = session_tracker.__version__
    for dist in ("tutor-session-tracker", "session-tracker-cli", "session-tracker-local"):
        assert metadata.version(dist) == version, dist
    document = json.loads((ROOT / "layers/common/session_tracker/openapi.json").read_text())
    assert document["info"]["version"] == version


def test_client_version_is_its_own_and_in_its_changelog() -> None:
    version = session_tracker_client.__version__
    assert metadata.version("session-tracker-client") == version
    assert f"## [Unreleased] — {version}" in (ROOT / "clients/CHANGELOG.md").read_text() or (
        f"## [{version}]" in (ROOT / "clients/CHANGELOG.md").read_text()
    )


def test_layer_requirements_file_is_generated_from_the_core_metadata() -> None:
    text = (ROOT / "layers/common/requirements.txt").read_text()
    assert text == layer_requirements.render(), "stale: run `make layer-requirements`"
    installed = {Requirement(r).name for r in metadata.requires("tutor-session-tracker") or [] if "extra" not in r}
    assert installed <= {Requirement(r).name for r in layer_requirements.layer_requirements()}


def test_the_layer_leaves_boto3_to_the_lambda_runtime_and_ships_no_test_tools() -> None:
    names = {Requirement(r).name for r in layer_requirements.layer_requirements()}
    assert "boto3" not in names
    assert not names & {"moto", "pytest", "typer", "rich", "httpx"}


def test_client_depends_on_httpx_only() -> None:
    base = [Requirement(r) for r in metadata.requires("session-tracker-client") or [] if "extra ==" not in r]
    assert [r.name for r in base] == ["httpx"]
    assert dependency_closure("session-tracker-client") <= {
        "session-tracker-client",
        "httpx",
        "anyio",
        "certifi",
        "httpcore",
        "idna",
        "h11",
        "sniffio",
        "typing-extensions",
    }
    extras = set(metadata.metadata("session-tracker-client").get_all("Provides-Extra") or [])
    assert {"mcp", "fastmcp"} <= extras


def test_client_and_cli_console_scripts() -> None:
    scripts = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    assert scripts["session-tracker-proxy"] == "session_tracker_client.proxy:main"
    assert scripts["session-tracker"] == "session_tracker_cli.cli:main"
    assert metadata.distribution("session-tracker-cli").entry_points.select(name="session-tracker")


def test_cli_installs_without_moto_openai_powertools_or_boto3() -> None:
    pulled = dependency_closure("session-tracker-cli")
    assert {"httpx", "typer", "rich", "session-tracker-client", "tutor-session-tracker"} <= pulled
    assert not pulled & SERVER_ONLY, pulled & SERVER_ONLY


def test_cli_table_extra_brings_boto3_and_still_no_moto_openai_or_powertools() -> None:
    pulled = dependency_closure("session-tracker-cli", frozenset({"table"}))
    assert "boto3" in pulled
    assert not pulled & {"moto", "openai", "aws-lambda-powertools"}


def test_local_stack_is_a_private_development_package() -> None:
    classifiers = metadata.metadata("session-tracker-local").get_all("Classifier") or []
    assert "Private :: Do Not Upload" in classifiers
    assert "moto" in dependency_closure("session-tracker-local")


def _make_prerequisites(target: str) -> list[str]:
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith(f"{target}:"):
            return line.split(":", 1)[1].split()
    raise AssertionError(f"no {target} target in the Makefile")


def test_pre_commit_hooks_are_exactly_the_make_lint_targets() -> None:
    import yaml

    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert [hook["entry"] for hook in hooks] == [f"make {target}" for target in _make_prerequisites("lint")]
    assert all(hook["language"] == "system" and hook["pass_filenames"] is False for hook in hooks)


def test_ci_runs_lint_before_the_tests() -> None:
    steps = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines() if line.startswith("make ")]
    assert steps == ["make lint", "make test"]


def test_the_core_wheel_lists_every_package_of_the_layer() -> None:
    """setuptools ships only the packages listed: the core wheel once lacked session_tracker.store,
    and an installed CLI failed reading sessions (tests/packaging/test_cli_install.py)."""
    listed = set(tomllib.loads(PYPROJECTS["tutor-session-tracker"].read_text())["tool"]["setuptools"]["packages"])
    layer = ROOT / "layers" / "common"
    found = {".".join(p.parent.relative_to(layer).parts) for p in (layer / "session_tracker").rglob("__init__.py")}
    assert found == listed, found ^ listed
