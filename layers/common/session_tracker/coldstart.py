"""Garbage collection during a Lambda cold start.

Importing a handler allocates hundreds of thousands of long-lived objects (Powertools,
pydantic schemas, botocore service models). CPython's collector walks them all in
several full passes while they are being created - ~40 ms each measured for our
handlers - and none of them is garbage. So in Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is
set) importing this package pauses the collector, and :func:`ready` - run when the first invocation of
the handler ends (:func:`handler`, the outermost decorator of every function) - moves everything loaded so far into the permanent generation
(``gc.freeze``: later passes skip it, which also shortens every warm invocation's
collections) and turns the collector back on. Outside Lambda (tests, the local stack,
the CLI) nothing changes.

Also in Lambda only: pydantic's plugin discovery is off (``PYDANTIC_DISABLE_PLUGINS``, unless
the function's environment sets it). Building the first model would otherwise read the
entry points of every installed distribution (``importlib.metadata``); we ship no plugin.
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable
from typing import Any

_paused = False


def pause() -> None:
    """Stop automatic collections until :func:`ready` (only inside Lambda)."""
    global _paused
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and gc.isenabled():
        gc.disable()
        _paused = True


def ready() -> None:
    """Init is done: freeze what was loaded and collect normally from now on."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False


def paused() -> bool:
    return _paused


def handler(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Outermost decorator of a Lambda handler: init ends when the first invocation does.

    The first request still builds the AWS clients and loads their service models (more
    long-lived objects); the collector comes back on after it. Outside Lambda, or once
    ready, the handler is returned unchanged.
    """
    if not _paused:
        return fn

    @functools.wraps(fn)
    def first_call_ends_init(event: Any, context: Any) -> Any:
        try:
            return fn(event, context)
        finally:
            ready()

    first_call_ends_init.ends_cold_start = True  # type: ignore[attr-defined]
    return first_call_ends_init
