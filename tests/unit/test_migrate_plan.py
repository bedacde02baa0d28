"""The v1 -> v2 migration plan (store/migrate_plan.py) over the v1 fixture: pure, no AWS."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from typing import Any

import v1_fixture

from session_tracker.store.keys import V2_HEAD_SK
from session_tracker.store.migrate_plan import (
    CHECKPOINT_KEY,
    Delete,
    MarkMigrated,
    Put,
    Write,
    plan_item,
    plan_session,
    text,
)


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return text(item, "PK"), text(item, "SK")


def _simulate(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Run every plan, in the executor's order, over a dict standing in for the table."""
    table = {_key(i): i for i in items}

    def apply(writes: list[Write] | tuple[Write, ...]) -> None:
        for w in writes:
            if isinstance(w, Put):
                if not (w.if_absent and _key(w.item) in table):
                    table[_key(w.item)] = w.item
            elif isinstance(w, Delete):
                table.pop(_key(w.key), None)
            elif isinstance(w, MarkMigrated) and _key(w.key) in table:
                table[_key(w.key)] = {**table[_key(w.key)], "layout": {"N": "2"}}

    for item in sorted(table.values(), key=_key):
        if _key(item) not in table:
            continue
        plan = plan_item(item)
        if plan.kind == "session":
            calls = [v for k, v in table.items() if k[0] == text(item, "PK") and k[1].startswith("I#")]
            apply(plan_session(item, calls).writes)
        else:
            apply(plan.writes)
    return table


def test_every_v1_item_kind_gets_its_plan() -> None:
    kinds = Counter(plan_item(item).kind for item in v1_fixture.items())
    assert kinds["session"] == 17  # every session record of the fixture is v1
    assert kinds["v1_call"] == 54
    assert kinds["head"] == 13
    assert kinds["marker"] == 7
    # call links, deliveries, usage and key items are read by v2 as they are
    assert kinds["keep"] == 6 + 6 + 1 + 2


def test_a_v1_head_becomes_the_versioned_head_with_the_same_attributes() -> None:
    head = next(i for i in v1_fixture.items() if _key(i) == ("STUDENT#cara", "HEAD"))
    plan = plan_item(head)
    put, delete = plan.writes
    assert isinstance(put, Put) and put.if_absent  # a HEAD v2 wrote meanwhile is kept
    assert _key(put.item) == ("STUDENT#cara", V2_HEAD_SK) and put.item["version"] == {"N": "1"}
    assert {k: v for k, v in put.item.items() if k not in ("SK", "version")} == {
        k: v for k, v in head.items() if k != "SK"
    }
    assert isinstance(delete, Delete) and _key(delete.key) == ("STUDENT#cara", "HEAD")


def test_a_session_step_copies_every_call_before_deleting_and_marks_the_record_last() -> None:
    items = v1_fixture.items()
    meta = next(i for i in items if _key(i) == ("SESSION#dan_20261102_0800", "META"))
    calls = [i for i in items if text(i, "PK") == "SESSION#dan_20261102_0800" and text(i, "SK").startswith("I#")]
    plan = plan_session(meta, calls)
    kinds = [type(w).__name__ for w in plan.writes]
    assert kinds == ["Put"] * 3 + ["Delete"] * 3 + ["MarkMigrated"]
    copies = [w.item for w in plan.writes if isinstance(w, Put)]
    assert [_key(c) for c in copies] == [("STUDENT#dan", text(c, "SK")) for c in calls]
    assert all(text(c, "session_id") == "dan_20261102_0800" for c in copies)  # the late call too
    for copy, old in zip(copies, calls, strict=True):
        assert {k: v for k, v in copy.items() if k != "PK"} == {k: v for k, v in old.items() if k != "PK"}


def test_a_record_already_on_layout_2_and_everything_else_plan_nothing() -> None:
    meta = {"PK": {"S": "SESSION#x_20261102_0900"}, "SK": {"S": "META"}, "layout": {"N": "2"}}
    assert plan_item(meta).kind == "keep" and plan_session(meta, []).writes == []
    assert plan_item({**CHECKPOINT_KEY}).kind == "checkpoint"
    v2_call = {"PK": {"S": "STUDENT#x"}, "SK": {"S": "I#2026-11-02T09:00:00.000000Z#a"}}
    v2_head = {"PK": {"S": "STUDENT#x"}, "SK": {"S": V2_HEAD_SK}}
    assert plan_item(v2_call).writes == () and plan_item(v2_head).writes == ()


def test_the_migrated_fixture_holds_only_v2_items_and_a_second_pass_plans_nothing() -> None:
    before = v1_fixture.items()
    after = _simulate(before)
    assert not [k for k in after if k[0].startswith("SESSION#") and k[1] != "META"]
    assert not [k for k in after if k[1] in ("HEAD", "IID")]
    assert all("layout" in v for k, v in after.items() if k[1] == "META")
    calls = {k: v for k, v in after.items() if k[0].startswith("STUDENT#") and k[1].startswith("I#")}
    assert len(calls) == 54
    assert len([k for k in after if k[1] == V2_HEAD_SK]) == 13
    kept = {_key(i): i for i in before if plan_item(i).kind == "keep"}
    assert all(after[k] == v for k, v in kept.items())  # byte for byte
    again = _simulate(list(after.values()))
    assert again == after
    assert all(not plan_item(v).writes and plan_item(v).kind != "session" for v in after.values())


def test_the_planner_imports_no_aws_sdk() -> None:
    code = "import sys, session_tracker.store.migrate_plan; print('boto3' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False False", out.stderr
