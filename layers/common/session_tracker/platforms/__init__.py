"""Platform adapters: one module per platform, found automatically.

A module in this package that defines a module-level ``adapter`` (an instance of
:class:`~session_tracker.platforms.base.PlatformAdapter`) is registered under
``adapter.name``; ``POST /webhook/session-data`` dispatches on the body's
``platform`` to it. Adding a platform is adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from functools import cache
from typing import Any

from session_tracker.platforms.base import PlatformAdapter, PlatformEvent, Turn
from session_tracker.platforms.exceptions import PayloadInvalid, PlatformError, UnknownPlatform

_NOT_ADAPTERS = frozenset({"base", "exceptions"})


@cache
def adapters() -> dict[str, PlatformAdapter]:
    """Every registered adapter by platform name."""
    found: dict[str, PlatformAdapter] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name in _NOT_ADAPTERS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        adapter = getattr(module, "adapter", None)
        if isinstance(adapter, PlatformAdapter):
            found[adapter.name] = adapter
    return found


def get_adapter(name: Any) -> PlatformAdapter:
    """The adapter for ``name``; :class:`UnknownPlatform` (422 naming ``platform``) otherwise."""
    registry = adapters()
    if not isinstance(name, str) or name not in registry:
        raise UnknownPlatform(name, sorted(registry))
    return registry[name]


def parse_session_data(body: Mapping[str, Any]) -> PlatformEvent:
    """Dispatch a ``POST /webhook/session-data`` body on its ``platform``."""
    if not isinstance(body, Mapping):
        raise PayloadInvalid("body: expected a JSON object", field="body")
    if "platform" not in body:
        raise PayloadInvalid("platform: field required", field="platform")
    return get_adapter(body["platform"]).parse(body)


__all__ = [
    "PayloadInvalid",
    "PlatformAdapter",
    "PlatformError",
    "PlatformEvent",
    "Turn",
    "UnknownPlatform",
    "adapters",
    "get_adapter",
    "parse_session_data",
]
