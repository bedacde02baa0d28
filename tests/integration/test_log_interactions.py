"""Session rules against real storage (moto and DynamoDB Local)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from helpers import T0, call, count_requests, minutes

from session_tracker.errors import Conflict
from session_tracker.sessions import log_interactions

TIMEOUT = timedelta(minutes=10)


def log(store, *items, now=None):
    return log_interactions(list(items), store=store, now=now or T0 + minutes(60), timeout=TIMEOUT)


def test_first_call_opens_session_named_after_its_minute(store) -> None:
    [result] = log(store, call())
    assert result.session_id == "emma_smith_20260117_1430"
    assert result.new_session is True


def test_calls_within_timeout_share_a_session(store) -> None:
    first = log(store, call(at=T0))[0]
    second = log(store, call(at=T0 + minutes(9), function="get_progress"))[0]
    assert (second.session_id, second.new_session) == (first.session_id, False)
    meta, records = store.read_session(first.session_id)
    assert meta.interaction_count == 2
    assert [r.function for r in records] == ["get_student_context", "get_progress"]


def test_gap_over_timeout_starts_new_session(store) -> None:
    log(store, call(at=T0))
    result = log(store, call(at=T0 + minutes(11)))[0]
    assert result.new_session is True
    assert result.session_id == "emma_smith_20260117_1441"


def test_gap_is_measured_from_last_activity_not_start(store) -> None:
    log(store, call(at=T0), call(at=T0 + minutes(8)))
    result = log(store, call(at=T0 + minutes(17)))[0]
    assert result.session_id == "emma_smith_20260117_1430"


def test_same_minute_collision_gets_suffix(store) -> None:
    log(store, call(at=T0, session_id="emma_smith_20260117_1430_manual"))
    # An explicit session created the id emma_smith_20260117_1430 first:
    log(store, call(at=T0, session_id="emma_smith_20260117_1431"))
    log(store, call(student="zoe", at=T0, session_id="zoe_20260117_1430"))
    result = log(store, call(student="zoe", at=T0 + minutes(30)))[0]
    assert result.session_id == "zoe_20260117_1500"
    # zoe's explicit session occupies ..._1430; a late call in a fresh minute-collision:
    taken = log(store, call(student="max", at=T0, session_id="max_20260117_1430"))[0]
    assert taken.new_session
    late = log(store, call(student="max", at=T0 - minutes(30)))[0]
    assert late.session_id == "max_20260117_1400"


def test_second_session_in_same_minute_gets_suffix_2(dynamo_store) -> None:
    # The first session is created by an explicit handoff id equal to the generated one, for a
    # different first call, then the student's head sequence starts a session in that minute.
    log(dynamo_store, call(student="ann", at=T0, session_id="ann_20260117_1430"))
    # head now points at ann_20260117_1430 with last activity T0; a platform end marks it ended:
    dynamo_store.client.update_item(
        TableName=dynamo_store.table_name,
        Key={"PK": {"S": "STUDENT#ann"}, "SK": {"S": "I~HEAD"}},
        UpdateExpression="SET ended_at = :e",
        ExpressionAttributeValues={":e": {"S": "2026-01-17T14:30:06.000000Z"}},
    )
    result = log(dynamo_store, call(student="ann", at=T0 + timedelta(seconds=30)))[0]
    assert result.session_id == "ann_20260117_1430_2"
    assert result.new_session


def test_explicit_session_id_wins_over_gap_rule(store) -> None:
    log(store, call(at=T0))
    result = log(store, call(at=T0 + minutes(2), session_id="emma_smith_handoff_1"))[0]
    assert (result.session_id, result.new_session) == ("emma_smith_handoff_1", True)
    again = log(store, call(at=T0 + minutes(40), session_id="emma_smith_handoff_1"))[0]
    assert (again.session_id, again.new_session) == ("emma_smith_handoff_1", False)
    # Later calls without an id follow the explicit session (head moved to it).
    follow = log(store, call(at=T0 + minutes(45)))[0]
    assert follow.session_id == "emma_smith_handoff_1"


def test_explicit_session_of_another_student_is_a_conflict(store) -> None:
    log(store, call(student="emma_smith", session_id="emma_smith_shared_1"))
    with pytest.raises(Conflict):
        log(store, call(student="zoe", session_id="emma_smith_shared_1"))


def test_late_call_lands_in_the_earlier_session_it_belongs_to(store) -> None:
    log(store, call(at=T0), call(at=T0 + minutes(5)))  # session A 14:30-14:35
    later = log(store, call(at=T0 + minutes(60)))[0]  # session B 15:30
    assert later.new_session
    late = log(store, call(at=T0 + minutes(3), function="record_answer"))[0]
    assert late.session_id == "emma_smith_20260117_1430"
    assert not late.new_session
    meta, records = store.read_session("emma_smith_20260117_1430")
    assert meta.interaction_count == 3
    assert [r.function for r in records][1] == "record_answer"


def test_late_call_between_sessions_gets_its_own_session(store) -> None:
    log(store, call(at=T0))
    log(store, call(at=T0 + minutes(60)))
    late = log(store, call(at=T0 + minutes(30)))[0]
    assert late.session_id == "emma_smith_20260117_1500"
    assert late.new_session


def test_retried_interaction_id_is_stored_once(store) -> None:
    first = log(store, call(interaction_id="abc-1"))[0]
    retry = log(store, call(interaction_id="abc-1"), now=T0 + minutes(61))[0]
    assert retry.duplicate and retry.session_id == first.session_id
    meta, records = store.read_session(first.session_id)
    assert meta.interaction_count == 1 and len(records) == 1


def test_retry_without_timestamp_is_still_stored_once(store) -> None:
    item = call(interaction_id="abc-2")
    item.timestamp = None
    first = log(store, item, now=T0)[0]
    retry = log(store, item, now=T0 + timedelta(seconds=3))[0]
    assert retry.duplicate and retry.session_id == first.session_id
    assert store.read_session(first.session_id)[0].interaction_count == 1


def test_batch_keeps_order_and_groups_sessions(store) -> None:
    results = log(
        store,
        call(at=T0 + minutes(12), function="c"),
        call(at=T0, function="a"),
        call(student="zoe", at=T0, function="z"),
        call(at=T0 + minutes(1), function="b"),
    )
    assert [r.session_id for r in results] == [
        "emma_smith_20260117_1442",
        "emma_smith_20260117_1430",
        "zoe_20260117_1430",
        "emma_smith_20260117_1430",
    ]
    assert [r.new_session for r in results] == [True, True, True, False]


def test_duplicate_inside_a_batch_is_reported_not_stored_twice(store) -> None:
    results = log(store, call(interaction_id="same"), call(interaction_id="same", function="other"))
    assert [r.duplicate for r in results] == [False, True]
    assert store.read_session(results[0].session_id)[0].interaction_count == 1


def test_steady_state_costs_two_requests_per_call(dynamo_store) -> None:
    log(dynamo_store, call(at=T0))
    with count_requests(dynamo_store.client) as counts:
        log(dynamo_store, call(at=T0 + minutes(1)), now=T0 + minutes(1))
    assert sum(counts.values()) == 2, counts
    assert counts == {"Query": 1, "PutItem": 1}  # storage v2: HEAD + newest calls, one conditional put


def test_batch_of_25_for_one_student_costs_two_requests(dynamo_store) -> None:
    log(dynamo_store, call(at=T0))
    batch = [call(at=T0 + timedelta(seconds=10 * i), interaction_id=f"b{i}") for i in range(1, 26)]
    with count_requests(dynamo_store.client) as counts:
        results = log(dynamo_store, *batch, now=T0 + minutes(5))
    assert sum(counts.values()) == 2, counts
    assert counts == {"Query": 1, "BatchWriteItem": 1}
    assert {r.session_id for r in results} == {"emma_smith_20260117_1430"}


def test_boundary_costs_three_requests(dynamo_store) -> None:
    log(dynamo_store, call(at=T0))
    with count_requests(dynamo_store.client) as counts:
        log(dynamo_store, call(at=T0 + minutes(30)), now=T0 + minutes(30))
    # the read, the boundary transaction, and the winner's re-check for a call it raced
    assert counts == {"Query": 2, "TransactWriteItems": 1}


def test_items_carry_ttl_from_retention(dynamo_store) -> None:
    log(dynamo_store, call(at=T0))
    item = dynamo_store.client.get_item(
        TableName=dynamo_store.table_name, Key={"PK": {"S": "SESSION#emma_smith_20260117_1430"}, "SK": {"S": "META"}}
    )["Item"]
    expected = int((T0 + timedelta(days=365)).timestamp())
    assert int(item["expires_at"]["N"]) == expected


def _own_store(store):
    """A store of its own for one racing thread (its own HTTP client for DynamoDB)."""
    if not hasattr(store, "client"):
        return store  # the fake: one shared store, each method atomic like a transaction
    import boto3

    from session_tracker.store import DynamoStore

    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=store.client.meta.endpoint_url)
    return DynamoStore(store.table_name, client=client)


def test_thirty_concurrent_first_calls_create_exactly_one_session(racing_store) -> None:
    """Real concurrency: 30 threads, one student, same instant (DynamoDB Local and the fake)."""
    barrier = threading.Barrier(30)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        own = _own_store(racing_store)
        barrier.wait()
        try:
            [r] = log_interactions(
                [call(student="racer", at=T0 + timedelta(milliseconds=i), interaction_id=f"race-{i}")],
                store=own,
                now=T0,
                timeout=TIMEOUT,
            )
            results.append(r.session_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert set(results) == {"racer_20260117_1430"}
    meta, records = racing_store.read_session("racer_20260117_1430")
    assert meta.interaction_count == 30 and len(records) == 30
    listed, _ = racing_store.list_student_sessions("racer", start=T0 - minutes(60), end=T0 + minutes(60))
    assert [m.session_id for m in listed] == ["racer_20260117_1430"]


def test_a_call_within_the_timeout_reopens_a_session_the_idle_closer_closed(store) -> None:
    """The closer judges idleness on the wall clock; a call that arrives late but is within the
    timeout of the session's last activity (event time) still belongs to that session."""
    from session_tracker.lifecycle import close_idle_sessions

    first = log(store, call(at=T0))[0]
    closed = close_idle_sessions(store=store, now=T0 + minutes(11), timeout=TIMEOUT, request_analysis=False, workers=1)
    assert closed.closed == [first.session_id]
    late = log(store, call(at=T0 + minutes(5), function="get_progress"), now=T0 + minutes(12))[0]
    assert (late.session_id, late.new_session) == (first.session_id, False)
    meta, records = store.read_session(first.session_id)
    assert (meta.status, meta.end_time, meta.interaction_count) == ("active", None, 2)
    assert [r.function for r in records] == ["get_student_context", "get_progress"]
    assert [sid for sid, _ in store.due_sessions(T0 + minutes(16), limit=10)] == [first.session_id]
    again = close_idle_sessions(store=store, now=T0 + minutes(16), timeout=TIMEOUT, request_analysis=False, workers=1)
    assert again.closed == [first.session_id]
    meta = store.get_session(first.session_id)
    assert (meta.status, meta.end_time, meta.session_summary["data_requests"]) == ("closed", T0 + minutes(5), 2)


def test_a_call_past_the_timeout_of_an_idle_closed_session_starts_a_new_one(store) -> None:
    from session_tracker.lifecycle import close_idle_sessions

    first = log(store, call(at=T0))[0]
    close_idle_sessions(store=store, now=T0 + minutes(11), timeout=TIMEOUT, request_analysis=False, workers=1)
    later = log(store, call(at=T0 + minutes(10) + timedelta(seconds=1)))[0]
    assert later.new_session is True and later.session_id != first.session_id
    assert store.get_session(first.session_id).status == "closed"


def test_a_steady_state_call_after_a_reopen_costs_two_requests(dynamo_store) -> None:
    from session_tracker.lifecycle import close_idle_sessions

    log(dynamo_store, call(at=T0))
    close_idle_sessions(store=dynamo_store, now=T0 + minutes(11), timeout=TIMEOUT, request_analysis=False, workers=1)
    with count_requests(dynamo_store.client) as reopen:
        log(dynamo_store, call(at=T0 + minutes(5)), now=T0 + minutes(11))
    with count_requests(dynamo_store.client) as steady:
        log(dynamo_store, call(at=T0 + minutes(6)), now=T0 + minutes(11))
    assert sum(reopen.values()) == 2 and sum(steady.values()) == 2


# ------------------------------------------- one student's ids never touch another's (#13: 3, 5, 6)
def test_the_same_interaction_id_from_two_students_is_two_calls(store) -> None:
    alice = log(store, call(student="alice", interaction_id="req-1"))[0]
    bob = log(store, call(student="bob", interaction_id="req-1"))[0]
    assert not bob.duplicate and bob.session_id.startswith("bob_")
    assert len(store.read_session(bob.session_id)[1]) == 1
    assert len(store.read_session(alice.session_id)[1]) == 1


def test_the_same_interaction_id_from_two_students_in_one_batch_is_two_calls(store) -> None:
    results = log(store, call(student="alice", interaction_id="req-2"), call(student="bob", interaction_id="req-2"))
    assert [r.duplicate for r in results] == [False, False]
    assert [r.session_id.split("_")[0] for r in results] == ["alice", "bob"]


def test_a_retry_is_still_a_duplicate_within_its_own_student(store) -> None:
    first = log(store, call(student="alice", interaction_id="req-3"))[0]
    log(store, call(student="bob", interaction_id="req-3"))
    again = log(store, call(student="alice", interaction_id="req-3"), now=T0 + minutes(61))[0]
    assert again.duplicate and again.session_id == first.session_id


def test_an_explicit_session_id_of_another_student_is_409_and_takes_nothing(store) -> None:
    with pytest.raises(Conflict) as refused:
        log(store, call(student="bob", session_id="alice_20260117_1430"))
    assert refused.value.status == 409 and refused.value.field == "session_id"
    assert store.get_session("alice_20260117_1430") is None
    mine = log(store, call(student="alice", at=T0))[0]
    assert (mine.session_id, mine.new_session) == ("alice_20260117_1430", True)


def test_an_id_in_the_format_of_a_student_with_a_longer_id_is_not_the_shorter_ones(store) -> None:
    with pytest.raises(Conflict):
        log(store, call(student="ann", session_id="ann_b_20260117_1430"))
    assert log(store, call(student="ann", session_id="ann_handoff"))[0].session_id == "ann_handoff"


def test_a_call_id_linked_to_another_students_session_is_never_re_pointed(store) -> None:
    alice = log(store, call(student="alice", call_id="call-A"))[0]
    bob = log(store, call(student="bob", call_id="call-A", at=T0 + minutes(1)))[0]
    link = store.get_call_link("call-A")
    assert (link.session_id, link.student_id) == (alice.session_id, "alice")
    assert bob.session_id.startswith("bob_") and len(store.read_session(bob.session_id)[1]) == 1
    # the same in a join of Bob's current session (not only when it opens)
    log(store, call(student="bob", call_id="call-B", at=T0 + minutes(2)))
    log(store, call(student="alice", call_id="call-B", at=T0 + minutes(3)))
    assert store.get_call_link("call-B").student_id == "bob"


def _open_key(store, session_id: str) -> str:
    item = store.client.get_item(
        TableName=store.table_name, Key={"PK": {"S": f"SESSION#{session_id}"}, "SK": {"S": "META"}}
    )["Item"]
    return item["gsi2sk"]["S"]


def test_calls_never_rewrite_the_closer_index_the_closer_rebuckets(dynamo_store) -> None:
    from session_tracker.lifecycle import close_idle_sessions

    sid = log(dynamo_store, call(at=T0))[0].session_id  # T0 = 14:30:05
    log(dynamo_store, call(at=T0 + minutes(3)), now=T0 + minutes(3))
    log(dynamo_store, call(at=T0 + minutes(6)), now=T0 + minutes(6))
    assert _open_key(dynamo_store, sid) == "2026-01-17T14:30:00.000000Z"  # as opened: no per-call index write
    report = close_idle_sessions(
        store=dynamo_store, now=T0 + minutes(12), timeout=TIMEOUT, request_analysis=False, workers=1
    )
    assert report.closed == [] and report.rebucketed == 1
    assert _open_key(dynamo_store, sid) == "2026-01-17T14:35:00.000000Z"  # its newest call's bucket


def test_a_late_call_bridging_two_sessions_merges_them_whatever_the_order(store) -> None:
    # last call 9:50; 10:01 arrives first (gap 11 min > 10: a new session), then 9:59
    first = log(store, call(at=T0), now=T0)[0].session_id
    later = log(store, call(at=T0 + minutes(11), interaction_id="c1001"), now=T0 + minutes(11))[0]
    assert later.new_session and later.session_id != first
    bridging = log(store, call(at=T0 + minutes(9), interaction_id="c0959"), now=T0 + minutes(11))[0]
    assert bridging.session_id == first
    _meta, calls = store.read_session(first)
    assert [c.interaction_id for c in calls][-2:] == ["c0959", "c1001"] and len(calls) == 3
    assert store.read_session(later.session_id)[0].session_id == first  # the merged id still resolves
    nxt = log(store, call(at=T0 + minutes(12)), now=T0 + minutes(12))[0]
    assert nxt.session_id == first


def test_a_retry_with_another_timestamp_is_stored_once(store) -> None:
    a = log(store, call(at=T0, interaction_id="r-1"), now=T0)[0]
    b = log(store, call(at=T0 + timedelta(seconds=3), interaction_id="r-1"), now=T0 + minutes(1))[0]
    assert b.duplicate and b.session_id == a.session_id
    assert len(store.read_session(a.session_id)[1]) == 1


def test_a_session_found_early_through_its_bucket_is_left_open_until_it_is_due(store) -> None:
    from session_tracker.lifecycle import close_idle_sessions

    sid = log(store, call(at=T0), call(at=T0 + minutes(4)))[0].session_id  # bucket 14:30, last 14:34:05
    early = close_idle_sessions(store=store, now=T0 + minutes(11), timeout=TIMEOUT, request_analysis=False, workers=1)
    assert early.closed == [] and store.get_session(sid).status == "active"
    due = close_idle_sessions(store=store, now=T0 + minutes(15), timeout=TIMEOUT, request_analysis=False, workers=1)
    assert due.closed == [sid]


def test_two_concurrent_calls_across_the_timeout_never_split_the_session(racing_store) -> None:
    """Last call at T0; 'A' at T0+9 min and 'B' at T0+11 min arrive together (B alone would open a
    new session: 11 min > 10). A is within the timeout of T0 and B of A: one session, whatever
    commits first (real threads; DynamoDB Local and the fake)."""
    for trial in range(8):
        student = f"split{trial}"
        first = log_interactions([call(student=student, at=T0)], store=racing_store, now=T0, timeout=TIMEOUT)[0]
        barrier = threading.Barrier(2)
        results: dict[str, str] = {}
        errors: list[BaseException] = []

        def worker(
            name: str,
            offset: int,
            barrier: threading.Barrier = barrier,
            trial: int = trial,
            student: str = student,
            results: dict[str, str] = results,
            errors: list[BaseException] = errors,
        ) -> None:
            own = _own_store(racing_store)
            barrier.wait()
            try:
                if name == "A" and trial % 2:
                    time.sleep(0.002 * trial)  # vary who commits first
                [r] = log_interactions(
                    [call(student=student, at=T0 + minutes(offset), interaction_id=f"{name}-{trial}")],
                    store=own,
                    now=T0 + minutes(11),
                    timeout=TIMEOUT,
                )
                results[name] = r.session_id
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=a) for a in (("A", 9), ("B", 11))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        _meta, records = racing_store.read_session(first.session_id)
        assert sorted(r.interaction_id for r in records if r.interaction_id != first.interaction_id) == [
            f"A-{trial}",
            f"B-{trial}",
        ], (trial, results)
        listed, _ = racing_store.list_student_sessions(student, start=T0 - minutes(60), end=T0 + minutes(60))
        assert [m.session_id for m in listed] == [first.session_id], trial
