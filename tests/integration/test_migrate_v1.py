"""``session-tracker migrate`` on a table filled by the v1 code (tests/fixtures/v1_table.jsonl),
on DynamoDB Local: bounded runs, an interruption in the middle, a rerun that changes nothing.

The fixture was made by the v1 code (``tests/fixtures/make_v1_table.py``, its first line names
the commit); ``v1_reads.json`` holds what the v1 read paths answered about it.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
import v1_fixture
from typer.testing import CliRunner

from session_tracker.store.dynamo_migrate import Migrator
from session_tracker.store.keys import V2_HEAD_SK
from session_tracker.store.migrate_plan import CHECKPOINT_KEY, plan_item


@pytest.fixture
def v1_table(ddb_client, template) -> str:
    name = f"v1-{uuid.uuid4().hex[:10]}"
    ddb_client.create_table(**template.create_table_request(name))
    ddb_client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    v1_fixture.load(ddb_client, name)
    return name


def scan(client: Any, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        out = client.scan(**kwargs)
        for item in out.get("Items", []):
            found[(item["PK"]["S"], item["SK"]["S"])] = item
        if "LastEvaluatedKey" not in out:
            return found
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


class Crash(Exception):
    """The process died (Lambda timeout, Ctrl-C) in the middle of a run."""


class CrashingClient:
    """Forwards to ``client``; the ``after``-th write request raises :class:`Crash`."""

    WRITES = frozenset({"batch_write_item", "put_item", "update_item", "delete_item"})

    def __init__(self, client: Any, after: int) -> None:
        self._client, self._left = client, after

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in self.WRITES:
            return method

        def write(**kwargs: Any) -> Any:
            self._left -= 1
            if self._left < 0:
                raise Crash(name)
            return method(**kwargs)

        return write


def assert_v2_layout(client: Any, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    """No v1 item is left; every call sits in its student's partition with its session id."""
    before = {(i["PK"]["S"], i["SK"]["S"]): i for i in v1_fixture.items()}
    after = scan(client, table)
    assert not [k for k in after if k[0].startswith("SESSION#") and k[1] != "META"], "v1 calls left"
    assert not [k for k in after if k[1] in ("HEAD", "IID")], "v1 HEADs or markers left"
    assert all(v.get("layout") == {"N": "2"} for k, v in after.items() if k[1] == "META")
    for (pk, sk), old in before.items():
        if pk.startswith("SESSION#") and sk.startswith("I#"):
            new = after[(f"STUDENT#{old['student_id']['S']}", sk)]
            assert {k: v for k, v in new.items() if k != "PK"} == {k: v for k, v in old.items() if k != "PK"}
        elif sk == "HEAD":
            new = after[(pk, V2_HEAD_SK)]
            assert new["version"] == {"N": "1"} and new["session_id"] == old["session_id"]
        elif plan_item(old).kind == "keep":
            assert after[(pk, sk)] == old, (pk, sk)  # left byte for byte
    return after


def test_a_dry_run_counts_and_writes_nothing(ddb_client, v1_table) -> None:
    report = Migrator(v1_table, client=ddb_client).run(limit=10_000, dry_run=True)
    assert report.complete and report.dry_run
    assert (report.run.sessions, report.run.calls, report.run.heads, report.run.markers) == (17, 54, 13, 7)
    assert scan(ddb_client, v1_table) == {(i["PK"]["S"], i["SK"]["S"]): i for i in v1_fixture.items()}


def test_bounded_runs_with_a_crash_in_the_middle_finish_the_migration_and_a_rerun_is_a_no_op(
    ddb_client, v1_table
) -> None:
    migrator = Migrator(v1_table, client=ddb_client, page_size=10)
    first = migrator.run(limit=30)
    assert not first.complete and first.run.scanned == 30
    with pytest.raises(Crash):  # dies inside a page, between a session's copies and its deletes
        Migrator(v1_table, client=CrashingClient(ddb_client, after=3), page_size=10).run(limit=30)
    runs = 0
    while True:
        report = migrator.run(limit=25)
        runs += 1
        assert report.run.scanned <= 25  # bounded
        if report.complete:
            break
        assert runs < 20
    # (the crashed run's finished steps are in the table, not in the totals: its page never completed)
    assert report.total.scanned >= len(v1_fixture.items())
    after = assert_v2_layout(ddb_client, v1_table)
    assert after[(CHECKPOINT_KEY["PK"]["S"], CHECKPOINT_KEY["SK"]["S"])]["completed_at"]
    # rerun: already complete, nothing read but the checkpoint
    again = migrator.run(limit=10_000)
    assert again.already_complete and again.run.scanned == 0
    # a full rescan from the start finds nothing to do
    check = migrator.run(limit=10_000, restart=True)
    assert check.complete and check.run.writes == 0 and check.run.sessions == 0
    assert scan(ddb_client, v1_table).keys() == after.keys()


def test_the_cli_migrates_a_table_in_bounded_runs(ddb_client, v1_table, dynamodb_local, monkeypatch) -> None:
    if dynamodb_local is None:
        pytest.skip("the CLI talks to an endpoint: DynamoDB Local needs java")
    from session_tracker_cli.cli import app

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local)
    runner = CliRunner()
    dry = runner.invoke(app, ["migrate", "--table", v1_table, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would move 17 sessions (54 calls), 13 HEADs" in dry.output
    part = runner.invoke(app, ["migrate", "--table", v1_table, "--limit", "40", "--json"])
    assert part.exit_code == 0, part.output
    assert json.loads(part.output)["complete"] is False
    rest = runner.invoke(app, ["migrate", "--table", v1_table, "--limit", "40", "--until-done"])
    assert rest.exit_code == 0 and "complete." in rest.output, rest.output
    done = runner.invoke(app, ["migrate", "--table", v1_table])
    assert "already complete" in done.output
    assert_v2_layout(ddb_client, v1_table)
    kinds = Counter(plan_item(i).kind for i in scan(ddb_client, v1_table).values())
    assert kinds["session"] == 0 and kinds["head"] == 0 and kinds["marker"] == 0
