"""The background sender against real local HTTP endpoints that answer, fail, hang or are gone."""

from __future__ import annotations

import time
from typing import Any

import pytest
from client_endpoints import endpoint, refused_url

from session_tracker_client.sender import Sender, SenderOptions

FAST = {"flush_interval": 0.02, "backoff_base": 0.01, "backoff_max": 0.05, "timeout": 1.0}


def opts(**overrides: Any) -> SenderOptions:
    return SenderOptions(**(FAST | overrides))


def call(n: int, **extra: Any):
    return lambda: {"student_id": "emma", "function": f"tool_{n}", **extra}


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_calls_are_posted_in_batches_of_at_most_25_with_the_bearer_token() -> None:
    with endpoint() as ep:
        sender = Sender(ep.url, "tok", opts(flush_interval=0.2))
        for i in range(60):
            sender.submit(call(i))
        assert sender.flush(5)
        sender.close()
    assert [len(r["interactions"]) for r in ep.requests] == [25, 25, 10]
    assert {h["Authorization"] for h in ep.headers} == {"Bearer tok"}
    assert [i["function"] for i in ep.accepted] == [f"tool_{i}" for i in range(60)]
    assert len(set(ep.accepted_ids)) == 60
    assert sender.stats.sent == 60 and sender.stats.dropped == 0


def test_a_500_is_retried_with_the_same_interaction_ids() -> None:
    with endpoint(lambda body, attempt: 500 if attempt <= 2 else 202) as ep:
        sender = Sender(ep.url, "tok", opts())
        for i in range(3):
            sender.submit(call(i))
        assert sender.flush(5)
        sender.close()
    ids = [[i["interaction_id"] for i in r["interactions"]] for r in ep.requests]
    assert len(ids) == 3
    assert ids[0] == ids[1] == ids[2]
    assert sender.stats.sent == 3 and sender.stats.retries == 2


def test_a_refused_batch_is_split_so_only_the_bad_call_is_rejected() -> None:
    def status(body: dict[str, Any], _attempt: int) -> int:
        return 422 if any(i.get("student_id") == "bad id" for i in body["interactions"]) else 202

    with endpoint(status) as ep:
        sender = Sender(ep.url, "tok", opts(flush_interval=0.2))
        for i in range(4):
            sender.submit(call(i))
        sender.submit(lambda: {"student_id": "bad id", "function": "x"})
        assert sender.flush(5)
        sender.close()
    assert sorted(i["function"] for i in ep.accepted) == ["tool_0", "tool_1", "tool_2", "tool_3"]
    assert sender.stats.rejected == 1 and sender.stats.sent == 4


def test_a_wrong_token_is_not_retried() -> None:
    with endpoint(401) as ep:
        sender = Sender(ep.url, "wrong", opts())
        sender.submit(call(1))
        assert sender.flush(5)
        sender.close()
    assert len(ep.requests) == 1
    assert sender.stats.rejected == 1 and sender.stats.retries == 0


def test_queue_stays_bounded_and_drops_the_oldest_while_the_endpoint_hangs() -> None:
    with endpoint(hang=True) as ep:
        sender = Sender(ep.url, "tok", opts(max_queue=50, batch_size=10, timeout=30))
        sender.submit(call(0))
        wait_for(lambda: len(ep.requests) == 1)  # call 0 is in flight, stuck
        started = time.perf_counter()
        for i in range(1, 1001):
            sender.submit(call(i))
        per_call = (time.perf_counter() - started) / 1000
        assert len(sender._queue) == 50
        assert sender.stats.dropped == 950
        assert ep.hang is not None
        ep.hang.set()
        assert sender.flush(5)
        sender.close()
    assert per_call < 0.0005
    assert [i["function"] for i in ep.accepted] == ["tool_0"] + [f"tool_{i}" for i in range(951, 1001)]


@pytest.mark.parametrize("mode", ["refused", "500", "hangs beyond the timeout"])
def test_submitting_stays_fast_and_memory_bounded_when_the_endpoint_is_unusable(mode: str) -> None:
    with endpoint(500, hang=mode.startswith("hangs")) as ep:
        url = refused_url() if mode == "refused" else ep.url
        sender = Sender(url, "tok", opts(max_queue=100, timeout=0.2))
        worst = 0.0
        for i in range(2000):
            t0 = time.perf_counter()
            sender.submit(call(i))
            worst = max(worst, time.perf_counter() - t0)
            if i % 500 == 0:
                time.sleep(0.3)  # let the worker fail a few attempts meanwhile
        assert sender.pending() <= 100 + 25
        wait_for(lambda: sender.stats.failed_attempts >= 2)
        assert sender.stats.sent == 0
        t0 = time.perf_counter()
        sender.close(timeout=0.5)
        assert time.perf_counter() - t0 < 1.5
        assert sender._thread is not None
        wait_for(lambda: not sender._thread.is_alive())
    assert worst < 0.05  # no submit ever waited on the network
    # every call is accounted for: dropped (queue bound, close deadline) or failed (500 alone)
    assert sender.stats.dropped + sender.stats.failed == 2000


def test_close_sends_what_is_still_queued() -> None:
    with endpoint() as ep:
        sender = Sender(ep.url, "tok", opts(flush_interval=60))
        for i in range(7):
            sender.submit(call(i))
        sender.close(timeout=5)
        assert len(ep.accepted) == 7
    assert sender.stats.sent == 7
    sender.submit(call(8))  # after close: ignored, never raises
    assert sender.stats.submitted == 7


def test_a_call_whose_builder_fails_is_skipped_and_the_rest_are_sent() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("extractor bug")

    with endpoint() as ep:
        sender = Sender(ep.url, "tok", opts())
        sender.submit(broken)
        sender.submit(lambda: None)
        sender.submit(call(1))
        assert sender.flush(5)
        sender.close()
    assert [i["function"] for i in ep.accepted] == ["tool_1"]
    assert sender.stats.skipped == 2


def test_oversized_arguments_are_replaced_and_the_call_is_still_logged() -> None:
    with endpoint() as ep:
        sender = Sender(ep.url, "tok", opts(max_body_bytes=10_000))
        sender.submit(call(1, arguments={"essay": "x" * 50_000}))
        sender.submit(call(2, arguments={"n": 1}))
        assert sender.flush(5)
        sender.close()
    by_name = {i["function"]: i for i in ep.accepted}
    assert by_name["tool_1"]["arguments"] == {"_omitted": "arguments too large to log (50012 bytes)"}
    assert by_name["tool_2"]["arguments"] == {"n": 1}
    assert all(len(str(r)) < 10_000 for r in ep.requests)


def test_batch_size_outside_the_api_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Sender("http://127.0.0.1:9", options=SenderOptions(batch_size=26))


# ------------------------------------------------------------------ issue 13 items 1 and 10
def _accounted(sender: Sender) -> int:
    st = sender.stats
    return st.sent + st.dropped + st.rejected + st.failed + st.skipped


def test_a_call_the_server_always_fails_on_is_isolated_and_never_blocks_the_calls_behind_it() -> None:
    """The proxy case: a call that makes the API answer 500 (before: retried forever, 0 stored)."""

    def status(body: dict[str, Any], _attempt: int) -> int:
        return 500 if any(i["function"] == "poison" for i in body["interactions"]) else 202

    with endpoint(status) as ep:
        sender = Sender(ep.url, "tok", opts(flush_interval=0.2))
        sender.submit(lambda: {"student_id": "emma", "function": "poison"})
        for i in range(29):
            sender.submit(call(i))
        assert sender.flush(10)
        sender.close()
    assert sorted(i["function"] for i in ep.accepted) == sorted(f"tool_{i}" for i in range(29))
    assert (sender.stats.sent, sender.stats.failed) == (29, 1)
    poison_attempts = sum(1 for r in ep.requests if any(i["function"] == "poison" for i in r["interactions"]))
    assert poison_attempts <= 3 * 5  # retries are capped per batch (3 attempts at each of <= 5 split levels)
    assert _accounted(sender) == sender.stats.submitted == 30


@pytest.mark.parametrize("refusal", [400, 409, 413, 422])
def test_a_4xx_is_final_for_its_batch_which_is_split_so_only_the_offender_is_dropped(refusal: int) -> None:
    def status(body: dict[str, Any], _attempt: int) -> int:
        return refusal if any(i["function"] == "bad" for i in body["interactions"]) else 202

    with endpoint(status) as ep:
        sender = Sender(ep.url, "tok", opts(flush_interval=0.2))
        for i in range(12):
            sender.submit(call(i))
        sender.submit(lambda: {"student_id": "emma", "function": "bad"})
        for i in range(12, 24):
            sender.submit(call(i))
        assert sender.flush(10)
        sender.close()
    assert sorted(i["function"] for i in ep.accepted) == sorted(f"tool_{i}" for i in range(24))
    assert (sender.stats.rejected, sender.stats.retries) == (1, 0)
    assert _accounted(sender) == 25


def test_a_batch_the_endpoint_keeps_refusing_as_unavailable_goes_to_the_back_of_the_queue() -> None:
    """503 for one batch only: after max_retries it yields its turn; later calls are sent meanwhile."""
    poisoned = {"on": True}

    def status(body: dict[str, Any], _attempt: int) -> int:
        if poisoned["on"] and any(i["function"] == "slow" for i in body["interactions"]):
            return 503
        return 202

    with endpoint(status) as ep:
        sender = Sender(ep.url, "tok", opts(batch_size=1, max_retries=3))
        sender.submit(lambda: {"student_id": "emma", "function": "slow"})
        for i in range(5):
            sender.submit(call(i))
        # the endpoint records a batch before its 202 reaches the sender: wait for both
        wait_for(lambda: len(ep.accepted) == 5 and sender.stats.sent == 5)
        assert sender.stats.requeued >= 1
        poisoned["on"] = False
        assert sender.flush(10)
        sender.close()
    assert [i["function"] for i in ep.accepted][-1] == "slow"
    assert len({i["interaction_id"] for i in ep.accepted}) == 6  # the requeued call kept its id
    assert _accounted(sender) == 6 and sender.stats.dropped == 0


def test_the_queue_is_bounded_in_bytes_and_counts_what_it_drops() -> None:
    with endpoint(hang=True) as ep:
        sender = Sender(ep.url, "tok", opts(max_queue_bytes=1_000_000, batch_size=1, timeout=30))
        sender.submit(call(0), size=10)
        wait_for(lambda: len(ep.requests) == 1)  # in flight, stuck
        for i in range(1, 101):
            sender.submit(call(i), size=100_000)  # ~100 KB results: 10 MB asked for
        assert sender.stats.queued_bytes <= 1_000_000 and len(sender._queue) == 10
        assert (sender.stats.dropped, sender.stats.dropped_bytes) == (90, 9_000_000)
        sender.submit(call(999), size=2_000_000)  # larger than the whole bound: dropped itself
        assert sender.stats.dropped == 91 and len(sender._queue) == 10
        assert ep.hang is not None
        ep.hang.set()
        assert sender.flush(5)
        sender.close()
    assert [i["function"] for i in ep.accepted] == ["tool_0"] + [f"tool_{i}" for i in range(91, 101)]
    assert _accounted(sender) == sender.stats.submitted == 102


def test_the_default_queue_bound_is_64_mib() -> None:
    assert SenderOptions().max_queue_bytes == 64 * 1024 * 1024


def test_the_tracker_counts_each_calls_result_against_the_byte_bound() -> None:
    from session_tracker_client.tracker import Tracker

    with endpoint(hang=True) as ep:
        tracker = Tracker(ep.url, "tok", options=opts(max_queue_bytes=2_000_000, batch_size=1, timeout=30))
        tracker.record("warmup", {"student_id": "emma"}, "ok", started_at=time.time(), duration_s=0.01)
        wait_for(lambda: len(ep.requests) == 1)
        for _ in range(100):
            tracker.record("lesson", {"student_id": "emma"}, "x" * 100_000, started_at=time.time(), duration_s=0.01)
        assert tracker.sender is not None
        stats = tracker.sender.stats
        assert stats.queued_bytes <= 2_000_000 and stats.dropped >= 80
        assert ep.hang is not None
        ep.hang.set()
        tracker.close(timeout=5)
