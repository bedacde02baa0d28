"""The local stack's tokens: from the caller, the environment, the data dir, or new.

``make run`` keeps its data in ``.local-data``; tokens it generates are kept next to
it in ``tokens.json`` (mode 0600) so a restart does not break every proxy config,
webhook credential and browser sign-in made with the old ones. A token set in the
environment (or passed in) always wins and is never written to the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TOKEN_VARS = (
    "INGEST_TOKEN",
    "READ_TOKEN",
    "ADMIN_TOKEN",
    "VAPI_WEBHOOK_SECRET",
    "RETELL_API_KEY",
    "ELEVENLABS_WEBHOOK_SECRET",
)
FILE_NAME = "tokens.json"


@dataclass(frozen=True)
class Tokens:
    values: dict[str, str]
    sources: dict[str, str]
    """Per variable: ``option``, ``env``, ``file`` (kept from an earlier run) or ``generated``."""
    path: Path | None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v}


def _write(path: Path, values: Mapping[str, str]) -> None:
    """Write ``values`` readable by the owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(values), handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def resolve_tokens(
    given: Mapping[str, str | None], *, env: Mapping[str, str] | None = None, data_dir: Path | None = None
) -> Tokens:
    """Every token in :data:`TOKEN_VARS`; generated ones are kept in ``data_dir/tokens.json``."""
    env = os.environ if env is None else env
    path = data_dir / FILE_NAME if data_dir is not None else None
    kept = _read(path) if path is not None and path.is_file() else {}
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name in TOKEN_VARS:
        if given.get(name):
            values[name], sources[name] = str(given[name]), "option"
        elif env.get(name):
            values[name], sources[name] = env[name], "env"
        elif kept.get(name):
            values[name], sources[name] = kept[name], "file"
        else:
            values[name], sources[name] = new_token(), "generated"
    if path is not None:
        stored = {**kept, **{n: values[n] for n in TOKEN_VARS if sources[n] in ("file", "generated")}}
        if stored != kept or (path.is_file() and path.stat().st_mode & 0o077):
            _write(path, stored)
    return Tokens(values=values, sources=sources, path=path)
