"""A local fake of Superinterface's messages API (``GET /api/cloud/messages``), built from its
documented response: ``{"data": [serialized message, ...], "hasNextPage", "lastId"}``, newest
first, paginated with ``pageParam`` (superinterface ``messagesResponse`` / ``serializeMessage``)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class FakeSuperinterface:
    """Serves the threads in ``threads`` ({thread_id: [message, ...] oldest first}), ``page_size`` a page."""

    def __init__(
        self, threads: dict[str, list[dict[str, Any]]], *, public_api_key: str, assistant_id: str, page_size: int = 2
    ) -> None:
        self.threads = threads
        self.requests: list[dict[str, list[str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                fake.requests.append(query)
                if url.path != "/api/cloud/messages":
                    return self._send(404, {"error": "not found"})
                if query.get("publicApiKey") != [public_api_key] or query.get("assistantId") != [assistant_id]:
                    return self._send(401, {"error": "Invalid api key"})
                thread = fake.threads.get((query.get("threadId") or [""])[0])
                if thread is None:
                    return self._send(404, {"error": "No thread found"})
                newest_first = list(reversed(thread))
                after = (query.get("pageParam") or [None])[0]
                start = next((i + 1 for i, m in enumerate(newest_first) if m["id"] == after), 0) if after else 0
                page = newest_first[start : start + page_size]
                more = start + page_size < len(newest_first)
                return self._send(200, {"data": page, "hasNextPage": more, "lastId": page[-1]["id"] if page else None})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSuperinterface:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def message(
    message_id: str, role: str, text: str, created_at: int, run_steps: list[Any] | None = None
) -> dict[str, Any]:
    """A message as ``serializeMessage`` returns it."""
    return {
        "id": message_id,
        "role": role,
        "created_at": created_at,
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "run_id": None,
        "assistant_id": "asst_fake",
        "thread_id": "thr_fake",
        "attachments": [],
        "metadata": {},
        "runSteps": run_steps or [],
        "status": "completed",
    }
