"""A fake OpenAI-compatible HTTP server for tests: a real server on 127.0.0.1.

``POST /v1/chat/completions`` answers like the real API, including structured outputs:
with ``response_format: {"type": "json_schema", ...}`` the answer is a JSON object with
every property of the schema filled in. Every request is recorded; failures can be
requested (``fail_next``, ``fail_always``) to exercise the client's retries and the
analyzer's failure handling. Point the openai SDK at it with ``OPENAI_BASE_URL=<url>``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def text(self) -> str:
        """Every message's content, joined: what the model was asked."""
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []))

    @property
    def schema(self) -> dict[str, Any]:
        fmt = self.body.get("response_format") or {}
        return (fmt.get("json_schema") or {}).get("schema") or {}


@dataclass
class _Plan:
    fail_remaining: int = 0
    fail_status: int = 500
    fail_always: bool = False
    delay: float = 0.0
    reply: Reply | None = None
    usage: tuple[int, int] | None = None


@dataclass
class FakeOpenAI:
    """Start with ``with FakeOpenAI() as fake:``; ``fake.url`` is the base URL (``.../v1``)."""

    host: str = "127.0.0.1"
    requests: list[RecordedRequest] = field(default_factory=list)
    _plan: _Plan = field(default_factory=_Plan)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ control
    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}/v1"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._plan = _Plan()

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """The next ``n`` completions fail with ``status`` (then it answers again)."""
        with self._lock:
            self._plan.fail_remaining, self._plan.fail_status = n, status

    def fail_always(self, status: int = 500) -> None:
        with self._lock:
            self._plan.fail_always, self._plan.fail_status = True, status

    def recover(self) -> None:
        with self._lock:
            self._plan.fail_always, self._plan.fail_remaining = False, 0

    def reply_with(self, reply: Reply | None) -> None:
        """Answer with ``reply(request_body)`` as the structured content instead of the default."""
        with self._lock:
            self._plan.reply = reply

    def set_usage(self, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self._plan.usage = (prompt_tokens, completion_tokens)

    def set_delay(self, seconds: float) -> None:
        with self._lock:
            self._plan.delay = seconds

    def completions(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def wait_for(self, n: int, timeout: float = 20.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.completions()
            if len(found) >= n:
                return found
            time.sleep(0.05)
        return self.completions()

    # --------------------------------------------------------------------- life
    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._send(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
                    return
                status, payload, headers = fake._answer(self.path, dict(self.headers), body)
                self._send(status, payload, headers)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ answers
    def _answer(
        self, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append(
                RecordedRequest(path=path, headers={k.lower(): v for k, v in headers.items()}, body=body)
            )
            plan = self._plan
            failing = plan.fail_always or plan.fail_remaining > 0
            if plan.fail_remaining > 0:
                plan.fail_remaining -= 1
            status, reply, usage, delay = plan.fail_status, plan.reply, plan.usage, plan.delay
        if delay:
            time.sleep(delay)
        if not path.rstrip("/").endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}, {}
        if failing:
            error = {"error": {"message": "the fake model endpoint is failing on purpose", "type": "server_error"}}
            # Retry quickly: the SDK honours retry-after-ms (its real backoff is exercised, just shorter).
            return status, error, {"retry-after-ms": "20"}
        content = reply(body) if reply else self._structured(body)
        text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        prompt_tokens, completion_tokens = usage or (max(1, len(text) // 4), max(1, len(json.dumps(content)) // 4))
        return (
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": f"{body.get('model', 'unknown')}-fake",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": json.dumps(content), "refusal": None},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            {},
        )

    @staticmethod
    def _structured(body: dict[str, Any]) -> dict[str, Any]:
        """Fill every property of the requested JSON schema (strings say which field they are)."""
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        props = schema.get("properties") or {}
        if not props:
            return {"answer": "fake answer"}
        answer: dict[str, Any] = {}
        for name, spec in props.items():
            kind = spec.get("type")
            if kind == "integer":
                answer[name] = 1
            elif kind == "number":
                answer[name] = 1.0
            elif kind == "boolean":
                answer[name] = True
            elif kind == "array":
                answer[name] = []
            else:
                answer[name] = f"fake {name} for {body.get('model', '?')}"
        return answer
