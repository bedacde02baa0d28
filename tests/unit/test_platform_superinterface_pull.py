"""Superinterface: a pulled thread's pages become one session-data body, run-step tool calls included."""

from __future__ import annotations

from fakes.superinterface_server import message

from session_tracker.platforms import parse_session_data
from session_tracker.platforms.superinterface import session_data_from_pages

STEP = {
    "created_at": 1_750_000_030,
    "step_details": {"tool_calls": [{"id": "c1", "function": {"name": "get_lesson", "arguments": '{"unit": "f"}'}}]},
}


def test_pages_newest_first_become_one_body_read_in_time_order() -> None:
    pages = [
        {"data": [message("m3", "user", "Three", 1_750_000_060)], "hasNextPage": True, "lastId": "m3"},
        {
            "data": [
                message("m2", "assistant", "Two", 1_750_000_040, [STEP]),
                message("m1", "user", "One", 1_750_000_020),
            ]
        },
    ]
    body = session_data_from_pages(pages, thread_id="thr_1", assistant_id="asst_1", student_id="noah")
    event = parse_session_data(body)
    assert event.transcript == "User: One\nAI: Two\nUser: Three"
    assert (event.call_id, event.student_id) == ("thr_1", "noah")
    assert [(c.name, c.arguments) for c in event.tool_calls] == [("get_lesson", {"unit": "f"})]


def test_the_same_messages_pulled_twice_are_the_same_delivery() -> None:
    page = {"data": [message("m1", "user", "One", 1_750_000_020)]}
    one = session_data_from_pages([page], thread_id="t", assistant_id=None, student_id="s")
    two = session_data_from_pages([page], thread_id="t", assistant_id=None, student_id="s")
    more = session_data_from_pages(
        [{"data": [*page["data"], message("m2", "user", "Two", 1_750_000_030)]}],
        thread_id="t",
        assistant_id=None,
        student_id="s",
    )
    assert one["delivery_id"] == two["delivery_id"] != more["delivery_id"]
