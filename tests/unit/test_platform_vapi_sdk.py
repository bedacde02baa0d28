"""The VAPI payloads used in these tests are real VAPI shapes: checked with VAPI's own SDK models.

``vapi-server-sdk`` (dev dependency) types every server message; its ``type`` unions accept
almost anything, so each body is validated with the model of its own ``message.type``.
"""

from __future__ import annotations

import importlib

import pytest
from samples import vapi_sample, vapi_sample_names
from test_matching import CALL_END, CALL_START, vapi_body

pytest.importorskip("vapi", reason="vapi-server-sdk is not installed (pip install -e '.[dev]')")


def sdk_model(message_type: str) -> type:
    module = importlib.import_module(f"vapi.types.server_message_{message_type.replace('-', '_')}")
    name = "ServerMessage" + "".join(part.capitalize() for part in message_type.split("-"))
    return getattr(module, name)


@pytest.mark.parametrize("name", [n for n in vapi_sample_names() if n != "tool-calls"])
def test_each_shared_sample_is_valid_for_the_sdk(name: str) -> None:
    """tool-calls.json is left out on purpose: it sends function.arguments as an object (see NOTES.md)."""
    message = vapi_sample(name)["message"]
    sdk_model(message["type"]).model_validate(message)


@pytest.mark.parametrize("message_type", ["end-of-call-report", "status-update"])
def test_the_bodies_the_matching_tests_build_are_valid_for_the_sdk(message_type: str) -> None:
    body = vapi_body(
        "call-1", CALL_START, CALL_END, student_id="emma_smith", session_id="s_1", phone="+1", message_type=message_type
    )
    sdk_model(message_type).model_validate(body["message"])


def test_the_sdk_check_can_fail() -> None:
    with pytest.raises(ValueError, match="endedReason"):
        sdk_model("end-of-call-report").model_validate({"type": "end-of-call-report"})
