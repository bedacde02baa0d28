"""The local stack serves concurrent requests like separate Lambda instances:
no request ever sees another one's event (Powertools keeps the current event on
a class attribute, which the local stack makes thread-local)."""

from __future__ import annotations

import threading

from e2e_helpers import INGEST_TOKEN, burst_outcomes, concurrent_batch_mismatches

AUTH = {"Authorization": f"Bearer {INGEST_TOKEN}"}


def test_concurrent_requests_each_get_their_own_answer(local_stack) -> None:
    mismatches = concurrent_batch_mismatches(local_stack.url, AUTH, prefix="conc", per_worker=12)
    assert not mismatches, mismatches[:5]


def test_router_state_is_thread_local() -> None:
    from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver, BaseRouter

    from session_tracker_local.lambda_host import isolate_router_state

    isolate_router_state()
    app = APIGatewayHttpResolver()
    BaseRouter.current_event = "main"  # type: ignore[assignment]
    seen: list[object] = []

    def other() -> None:
        BaseRouter.current_event = "other"  # type: ignore[assignment]
        seen.append(app.current_event)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == ["other"]
    assert app.current_event == "main"


BURST = 100


def test_a_burst_of_100_simultaneous_connections_is_served_without_a_reset_or_5xx(local_stack) -> None:
    """A classroom opening at once: 100 clients connect in the same instant and each logs a call.

    Raw sockets, all connected before any sends, so the listen backlog and the accept loop are
    what is tested (a backlog of 5 reset 15 of 40 such connections). Bounded: one request each.
    """
    outcomes = burst_outcomes(local_stack.url, AUTH, prefix=f"burst_{uuid_hex()}", connections=BURST)
    assert len(outcomes) == BURST
    assert sorted(set(outcomes)) == ["202"], {o: outcomes.count(o) for o in set(outcomes)}


def uuid_hex() -> str:
    import uuid

    return uuid.uuid4().hex[:8]
