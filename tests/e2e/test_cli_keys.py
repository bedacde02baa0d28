"""``session-tracker keys create|list|revoke`` as a subprocess against the local stack (API and --table)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

ADMIN = "e2e-admin-token"
CLI = [sys.executable, "-m", "session_tracker_cli.cli"]


def run(
    local_stack, *args: str, check: bool = True, token: str | None = ADMIN, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "INGEST_TOKEN",
            "SESSION_TRACKER_TOKEN",
            "READ_TOKEN",
            "ADMIN_TOKEN",
            "SESSION_TRACKER_URL",
            "SESSION_TRACKER_TABLE",
        )
    }
    environ.update({"SESSION_TRACKER_URL": local_stack.url, "NO_COLOR": "1", "COLUMNS": "200"})
    if token:
        environ["ADMIN_TOKEN"] = token
    environ.update(extra_env or {})
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, env=environ, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _status(local_stack, path: str, key: str, method: str = "GET", **kw) -> int:
    with httpx.Client(base_url=local_stack.url, headers={"Authorization": f"Bearer {key}"}) as http:
        return http.request(method, path, **kw).status_code


def test_keys_over_the_api_create_list_revoke_and_a_revoked_key_is_refused(local_stack) -> None:
    out = run(local_stack, "keys", "create", "--scope", "read", "--name", "e2e-tutor-anna")
    key = out.stdout.strip()
    assert key.startswith("stk_") and "\n" not in key
    assert "not shown again" in out.stderr
    assert _status(local_stack, "/sessions?limit=1", key) == 200
    assert _status(local_stack, "/keys", key) == 403, "a read key cannot manage keys"
    assert (
        _status(local_stack, "/interactions", key, "POST", json={"student_id": "e2e_keys_amy", "function": "f"}) == 202
    )

    listed = run(local_stack, "keys", "list").stdout
    line = next(row for row in listed.splitlines() if row.startswith("e2e-tutor-anna "))
    assert line.split()[1] == "read" and "never" not in line, "last used is recorded"
    assert key not in listed
    as_json = json.loads(run(local_stack, "keys", "list", "--json").stdout)
    assert {"name", "scope", "created_at", "last_used", "revoked_at"} == set(as_json[0])

    run(local_stack, "keys", "revoke", "e2e-tutor-anna")
    assert _status(local_stack, "/sessions?limit=1", key) == 401
    again = run(local_stack, "keys", "revoke", "e2e-tutor-anna", check=False)
    assert again.returncode == 2 and "no active key" in again.stderr


def test_scopes_of_named_keys_are_enforced_on_every_kind_of_route(local_stack) -> None:
    ingest = run(local_stack, "keys", "create", "--scope", "ingest", "--name", "e2e-mcp-server").stdout.strip()
    admin = run(local_stack, "keys", "create", "--scope", "admin", "--name", "e2e-ops").stdout.strip()
    body = {"student_id": "e2e_keys_bo", "function": "get_student_context"}
    assert _status(local_stack, "/interactions", ingest, "POST", json=body) == 202
    assert _status(local_stack, "/sessions?limit=1", ingest) == 403
    assert _status(local_stack, "/ui", ingest) == 403
    assert _status(local_stack, "/keys", admin) == 200
    made = run(local_stack, "keys", "create", "--scope", "read", "--name", "e2e-by-key", token=admin)
    assert made.stdout.strip().startswith("stk_")
    refused = run(local_stack, "keys", "list", token=ingest, check=False)
    assert refused.returncode == 1 and "admin" in refused.stderr


def test_operators_manage_keys_on_the_table_directly(local_stack) -> None:
    if not local_stack.dynamodb_endpoint:
        pytest.skip("the local stack runs on in-process moto: --table needs DynamoDB Local")
    table = ["--table", local_stack.options.table_name, "--endpoint-url", local_stack.dynamodb_endpoint]
    key = run(local_stack, "keys", "create", "--scope", "admin", "--name", "e2e-first-admin", *table, token=None)
    secret = key.stdout.strip()
    assert _status(local_stack, "/keys", secret) == 200
    assert "e2e-first-admin" in run(local_stack, "keys", "list", *table, token=None).stdout
    unused = run(local_stack, "keys", "create", "--scope", "read", "--name", "e2e-unused", *table, token=None)
    run(local_stack, "keys", "revoke", "e2e-unused", *table, token=None)
    assert _status(local_stack, "/sessions?limit=1", unused.stdout.strip()) == 401
    bad = run(local_stack, "keys", "create", "--scope", "read", "--name", "bad name", *table, token=None, check=False)
    assert bad.returncode == 2 and "name" in bad.stderr
