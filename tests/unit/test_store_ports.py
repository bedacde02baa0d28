"""The store's shape: ports without AWS, the fake behind the same protocols as DynamoDB."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
_PROBE = """
import importlib, sys
importlib.import_module({module!r})
print(sorted(m for m in sys.modules if m == "boto3" or m.startswith("boto3.") or m.startswith("session_tracker.store.dynamo")))
"""


@pytest.mark.parametrize("module", DOMAIN)
def test_importing_a_domain_module_does_not_import_boto3(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", f"{module} loads {out.stdout.strip()}"


def test_the_probe_can_fail_the_dynamodb_store_does_import_boto3() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module="session_tracker.store.dynamo")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert "'boto3'" in out.stdout


def test_names_callers_imported_from_the_old_module_still_resolve() -> None:
    from session_tracker import store

    for name in ("DynamoStore", "SessionStore", "OPEN_SHARDS", "MAX_CURSOR_CHARS", "serialize", "deserialize"):
        assert getattr(store, name) is not None
    for name in ("_values", "session_key", "meta_to_item", "InMemoryStore", "InvalidCursor"):
        assert getattr(store, name) is not None


def _public(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}


def test_the_fake_and_dynamodb_implement_every_port_method() -> None:
    from session_tracker.store import ports
    from session_tracker.store.dynamo import DynamoStore
    from session_tracker.store.fake import InMemoryStore

    wanted = {n for n in vars(ports.SessionStore) if not n.startswith("_")}
    for port in (ports.IngestStore, ports.PlatformStore, ports.CloserStore, ports.AnalysisStore, ports.SessionReader):
        wanted |= {n for n in vars(port) if not n.startswith("_")}
    assert wanted - _public(InMemoryStore) == set()
    assert wanted - _public(DynamoStore) == set()


def test_each_dynamodb_module_stays_small() -> None:
    folder = ROOT / "layers" / "common" / "session_tracker" / "store"
    sizes = {p.name: len(p.read_text().splitlines()) for p in folder.glob("dynamo*.py")}
    assert sizes and max(sizes.values()) <= 320, sizes
