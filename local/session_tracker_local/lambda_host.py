"""Run the template's Lambda handlers in-process, like warm Lambda containers.

Each function gets a pool of instances; an instance is its handler module loaded
afresh (its own module globals, as in a separate container) and serves one
invocation at a time. A pool grows on demand up to ``max_concurrency``.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from session_tracker_local.cfn import FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class FakeContext:
    """Enough of ``LambdaContext`` for Powertools and our handlers."""

    function_name: str
    timeout_seconds: int = 10
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_seconds - (time.monotonic() - self._started)
        return max(0, int(left * 1000))


_load_lock = threading.Lock()
_counter = 0
_ROUTER_STATE = ("current_event", "lambda_context")


def isolate_router_state() -> None:
    """Make Powertools' per-invocation router state thread-local.

    ``ApiGatewayResolver.resolve`` stores the event on the *class*
    (``BaseRouter.current_event = ...``): harmless in Lambda, where a process serves
    one invocation at a time, but concurrent in-process invocations would read each
    other's requests. The local stack runs instances in threads, so it gives
    ``BaseRouter`` a metaclass whose data descriptors keep that state per thread
    (class-level writes and reads go through the metaclass; instance reads through
    a property on the class). Idempotent.
    """
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    meta = type(BaseRouter)
    if getattr(meta, "_thread_local_state", False):
        return
    local = threading.local()

    class _State:
        def __init__(self, name: str) -> None:
            self.name = name

        def __get__(self, obj: object, owner: type | None = None) -> Any:
            return getattr(local, self.name, None)

        def __set__(self, obj: object, value: Any) -> None:
            setattr(local, self.name, value)

    namespace: dict[str, Any] = {name: _State(name) for name in _ROUTER_STATE}
    namespace["_thread_local_state"] = True
    thread_meta = type(f"ThreadLocal{meta.__name__}", (meta,), namespace)
    for name in _ROUTER_STATE:
        if name in BaseRouter.__dict__:
            setattr(local, name, BaseRouter.__dict__[name])
        # Instance reads (``self.current_event``) find this property on the class ...
        setattr(BaseRouter, name, property(_State(name).__get__, _State(name).__set__))
    # ... and class-level reads and writes (``BaseRouter.current_event = ...``) the metaclass's.
    BaseRouter.__class__ = thread_meta  # type: ignore[method-assign]


def load_handler(spec: FunctionSpec) -> tuple[ModuleType, Handler]:
    """Import the function's handler module under a private name and return its handler."""
    global _counter
    with _load_lock:
        _counter += 1
        name = f"_fn_{spec.logical_id}_{_counter}"
        module_spec = importlib.util.spec_from_file_location(name, spec.module_file)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load {spec.module_file}")
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(spec.code_uri))
        try:
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(spec.code_uri))
    return module, getattr(module, spec.handler_name)


class FunctionPool:
    """Warm instances of one function; ``invoke`` is thread-safe."""

    def __init__(self, spec: FunctionSpec, max_concurrency: int = 8) -> None:
        isolate_router_state()
        self.spec = spec
        self.max_concurrency = max_concurrency
        self._idle: list[Handler] = []
        self._created = 0
        self._cond = threading.Condition()
        self.invocations = 0

    def _acquire(self) -> Handler:
        with self._cond:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._created < self.max_concurrency:
                    self._created += 1
                    break
                self._cond.wait()
        try:
            return load_handler(self.spec)[1]
        except BaseException:
            with self._cond:
                self._created -= 1
                self._cond.notify()
            raise

    def _release(self, handler: Handler) -> None:
        with self._cond:
            self._idle.append(handler)
            self._cond.notify()

    def warm(self) -> None:
        """Load one instance now (surfaces import errors at start-up)."""
        self._release(self._acquire())

    def invoke(self, event: dict[str, Any]) -> Any:
        handler = self._acquire()
        try:
            self.invocations += 1
            context = FakeContext(function_name=self.spec.logical_id, timeout_seconds=self.spec.timeout)
            return handler(event, context)
        finally:
            self._release(handler)
