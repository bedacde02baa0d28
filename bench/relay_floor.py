"""The floor for any stdio proxy: a minimal byte relay (one ``select`` loop, ``os.read`` /
``os.write``, no parsing, no logging) between our stdin/stdout and a server command.

``python -m bench.relay_floor -- COMMAND...``; measured beside ``session-tracker mcp-proxy``
in bench/mcp_overhead.py so the proxy's overhead is judged against what relaying costs at all.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys


def relay(command: list[str]) -> int:
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert process.stdin is not None and process.stdout is not None
    client_in, client_out = sys.stdin.fileno(), sys.stdout.fileno()
    server_in, server_out = process.stdin.fileno(), process.stdout.fileno()
    routes = {client_in: server_in, server_out: client_out}
    while routes:
        ready, _, _ = select.select(list(routes), [], [])
        for fd in ready:
            data = os.read(fd, 1 << 16)
            if not data:
                if fd == client_in:
                    process.stdin.close()
                del routes[fd]
                if fd == server_out:
                    routes.clear()
                continue
            view = memoryview(data)
            while view:
                view = view[os.write(routes[fd], view) :]
    return process.wait()


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(relay(args[1:] if args[:1] == ["--"] else args))
