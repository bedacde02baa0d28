"""The stdio proxy's pairing: tools/call paired with its response, batches, cancellations and
the line splitter, in-process (the relay itself, over real processes: tests/tools/test_proxy_process.py)."""

from __future__ import annotations

import time
from typing import Any

from client_endpoints import jsonrpc_request as request

from session_tracker_client.proxy import MAX_PENDING, LineSplitter, ToolCallLog


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], Any, dict[str, Any]]] = []

    def record(self, tool: str, arguments: dict[str, Any], result: Any = None, **kw: Any) -> None:
        self.calls.append((tool, arguments, result, kw))


def test_each_tools_call_is_paired_with_the_response_of_the_same_id() -> None:
    rec = Recorder()
    log = ToolCallLog(rec)  # type: ignore[arg-type]
    log.client_line(request(1, name="a", arguments={"student_id": "s"}))
    log.client_line(request("1", name="b", arguments={}))
    log.client_line(request(2, method="resources/read", uri="x://y"))
    error_result = b'{"jsonrpc":"2.0","id":"1","result":{"content":[],"isError":true}}'
    error_response = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}'
    log.server_line(error_result + b"\n")
    log.server_line(b'{"jsonrpc":"2.0","id":2,"result":{"contents":[]}}\n')
    log.server_line(b"not json at all\n")
    log.server_line(error_response + b"\r\n")
    assert [(c[0], c[3]["is_error"], c[3]["response_size"]) for c in rec.calls] == [
        ("b", True, len(error_result)),
        ("a", True, len(error_response)),
    ]
    assert rec.calls[1][1] == {"student_id": "s"}


def test_batches_and_cancellations_are_understood_and_pending_calls_stay_bounded() -> None:
    rec = Recorder()
    log = ToolCallLog(rec)  # type: ignore[arg-type]
    batch = b"[" + request(1, name="a").strip() + b"," + request(2, name="b").strip() + b"]\n"
    log.client_line(batch)
    log.client_line(b'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}\n')
    log.server_line(b'[{"jsonrpc":"2.0","id":1,"result":{"content":[]}}]\n')
    assert [(c[0], c[3]["is_error"]) for c in rec.calls] == [("b", True), ("a", False)]
    for i in range(MAX_PENDING + 10):
        log.client_line(request(i, name="never answered"))
    assert len(log._pending) == MAX_PENDING


def test_line_splitter_keeps_only_wanted_lines_across_chunks_and_bounds_them() -> None:
    decisions = iter([True, False, True, True])
    splitter = LineSplitter(wanted=lambda: next(decisions), limit=20)
    assert splitter.feed(b'{"a":') == []
    assert splitter.feed(b"1}\nskipped line\n{") == [b'{"a":1}\n']
    assert splitter.feed(b'"b":2}\n' + b"x" * 30 + b"\n") == [b'{"b":2}\n']  # the 31-byte line is over the limit


def test_a_response_read_before_its_request_is_registered_is_still_paired() -> None:
    import threading

    rec = Recorder()
    log = ToolCallLog(rec)  # type: ignore[arg-type]
    log.expect()  # the relay saw "tools/call" in a chunk and forwarded it ...
    answered = threading.Thread(target=log.server_line, args=(b'{"jsonrpc":"2.0","id":7,"result":{}}\n',))
    answered.start()  # ... and the server answered before the request was parsed
    time.sleep(0.05)
    log.client_line(request(7, name="late", arguments={}))
    log.expected()
    answered.join(5)
    assert [c[0] for c in rec.calls] == ["late"]


def test_server_lines_are_not_looked_at_while_no_tools_call_is_pending() -> None:
    rec = Recorder()
    log = ToolCallLog(rec)  # type: ignore[arg-type]
    assert not log.active
    log.server_line(b'{"jsonrpc":"2.0","id":1,"result":{}}\n')
    log.client_line(request(1, method="resources/list"))
    assert not log.active
    log.client_line(request(2, name="t"))
    assert log.active
    assert rec.calls == []
