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


# ------------------------------------------------------------------ the v2 code on a v1 table
def golden() -> dict[str, Any]:
    """What the v1 read paths answered about the fixture (tests/fixtures/v1_reads.json)."""
    answers = json.loads((v1_fixture.FIXTURES / "v1_reads.json").read_text())
    answers.pop("__fixture__")
    return answers


def differences(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """Where two ``read_all`` answers differ, one line per session / student / list."""
    out = []
    for part in ("sessions", "analysis", "students"):
        for key in sorted(set(expected[part]) | set(found[part])):
            if expected[part].get(key) != found[part].get(key):
                out.append(f"{part}/{key}")
    if expected["day"] != found["day"]:
        out.append("day")
    return out


@pytest.fixture
def v2_store(ddb_client, v1_table, tmp_path):
    from session_tracker.blobs import DirBlobStore
    from session_tracker.store import DynamoStore

    v1_fixture.load_blobs(tmp_path / "blobs")
    store = DynamoStore(v1_table, client=ddb_client, retention_days=365, cursor_secret="fixture")
    return store, DirBlobStore(tmp_path / "blobs")


def test_the_v2_code_reads_a_v1_table_the_same_before_and_after_migrating_and_logs_into_the_right_sessions(
    ddb_client, v1_table, v2_store
) -> None:
    from datetime import UTC, datetime, timedelta

    from helpers import call

    from session_tracker.sessions import log_interactions

    pytest.importorskip("session_tracker.store.v2", reason="needs the storage v2 code (branch storage-v2)")
    store, blobs = v2_store
    expected = golden()
    assert differences(expected, v1_fixture.read_all(store, blobs)) == []  # v1 items read as they are

    def log(student: str, at: datetime, **extra: Any) -> Any:
        [result] = log_interactions(
            [call(student, at, function="after_upgrade", **extra)], store=store, now=at, timeout=timedelta(minutes=10)
        )
        return result

    day = datetime(2026, 11, 2, tzinfo=UTC)
    migrator = Migrator(v1_table, client=ddb_client, page_size=10)
    assert not migrator.run(limit=40).complete
    # live traffic in the middle of the migration: gus's open session (v1 record, v1 HEAD)
    during = log("gus", day.replace(hour=10, minute=38))
    assert during.session_id == "gus_20261102_1034" and not during.new_session
    with pytest.raises(Crash):
        Migrator(v1_table, client=CrashingClient(ddb_client, after=4), page_size=10).run(limit=40)
    while not migrator.run(limit=30).complete:
        pass
    assert migrator.run(limit=10_000).already_complete
    assert migrator.run(limit=10_000, restart=True).run.writes == 0  # rerun: a no-op
    assert_v2_layout(ddb_client, v1_table)

    after = v1_fixture.read_all(store, blobs)
    gus = after["sessions"].pop("gus_20261102_1034")
    expected_gus = expected["sessions"].pop("gus_20261102_1034")
    assert [c["function"] for c in gus["mcp_interactions"]] == [
        c["function"] for c in expected_gus["mcp_interactions"]
    ] + ["after_upgrade"]
    assert [k for k in expected["sessions"] if expected["sessions"][k] != after["sessions"][k]] == []
    assert expected["analysis"] == after["analysis"]
    assert {k: v for k, v in expected["students"].items() if k != "gus"} == {
        k: v for k, v in after["students"].items() if k != "gus"
    }
    assert expected["day"] == after["day"]

    # new calls land in the right sessions
    assert log("ava", day.replace(hour=10, minute=39)).session_id == "ava_20261102_1032"
    reopened = log("kid00", day.replace(hour=10, minute=50))
    assert reopened.new_session and reopened.session_id == "kid00_20261102_1050"
    retry = log_interactions(
        [call("ava", day.replace(hour=10, minute=32), function="grade_essay", interaction_id="ava-essay")],
        store=store,
        now=day.replace(hour=10, minute=40),
        timeout=timedelta(minutes=10),
    )[0]
    assert retry.session_id == "ava_20261102_1032" and retry.duplicate  # a v1 call's retry is stored once
    ava = v1_fixture.read_all(store, blobs)["sessions"]["ava_20261102_1032"]
    assert [c["function"] for c in ava["mcp_interactions"]] == ["grade_essay", "check_answer", "after_upgrade"]

    # the closer closes the migrated open sessions with counters from all their calls
    from session_tracker.lifecycle import close_idle_sessions

    report = close_idle_sessions(
        store=store, now=day.replace(hour=12), timeout=timedelta(minutes=10), request_analysis=True, workers=1
    )
    assert {"gus_20261102_1034", "ava_20261102_1032", "kid00_20261102_1050"} <= set(report.closed)
    closed = {s["session_id"]: s for s in v1_fixture.read_all(store, blobs)["students"]["gus"]}
    assert closed["gus_20261102_1034"]["status"] == "closed"
    assert closed["gus_20261102_1034"]["interaction_count"] == 4  # 3 logged by v1, 1 by v2 mid-migration


def _retry_a_v1_call(store: Any) -> None:
    """ava's ``ava-req-2`` (logged by v1 at 09:02:05) sent again, same time and id, to the v2 code."""
    from datetime import UTC, datetime, timedelta

    from helpers import call

    from session_tracker.sessions import log_interactions

    at = datetime(2026, 11, 2, 9, 2, 5, tzinfo=UTC)
    retry = call("ava", at, function="check_answer", interaction_id="ava-req-2", subjects=["mathematics"])
    log_interactions([retry], store=store, now=at.replace(hour=10), timeout=timedelta(minutes=10))


def test_a_retry_of_a_v1_call_before_the_migration_reads_once(v2_store) -> None:
    pytest.importorskip("session_tracker.store.v2", reason="needs the storage v2 code (branch storage-v2)")
    store, blobs = v2_store
    _retry_a_v1_call(store)
    assert len(v1_fixture.read_all(store, blobs)["sessions"]["ava_20261102_0900"]["mcp_interactions"]) == 5


def test_a_retry_of_a_v1_call_before_the_migration_is_one_call_after_it(ddb_client, v1_table, v2_store) -> None:
    pytest.importorskip("session_tracker.store.v2", reason="needs the storage v2 code (branch storage-v2)")
    store, blobs = v2_store
    _retry_a_v1_call(store)
    while not Migrator(v1_table, client=ddb_client).run(limit=10_000).complete:
        pass
    assert len(v1_fixture.read_all(store, blobs)["sessions"]["ava_20261102_0900"]["mcp_interactions"]) == 5
    stored = scan(ddb_client, v1_table)
    assert len([k for k in stored if k[0] == "STUDENT#ava" and k[1].endswith("#ava-req-2")]) == 1
