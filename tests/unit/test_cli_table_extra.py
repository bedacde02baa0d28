"""``--table`` without the ``table`` extra (no boto3): a one-line error naming the extra, exit 1,
never a traceback (tests/packaging/test_cli_install.py runs it in a venv really without boto3)."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from session_tracker_cli.cli import app


@pytest.mark.parametrize(
    "argv",
    [["sessions", "--student", "emma", "--table", "t"], ["keys", "list", "--table", "t"]],
    ids=["sessions", "keys"],
)
def test_table_without_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)  # import botocore -> ImportError
    monkeypatch.delitem(sys.modules, "session_tracker.store", raising=False)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert "session-tracker-cli[table]" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
