"""The store's shape: the fake behind the same protocols as DynamoDB, small DynamoDB modules (that
the domain modules load no boto3 is probed in a fresh interpreter: tests/tools/test_import_isolation.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
