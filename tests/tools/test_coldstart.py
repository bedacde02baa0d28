"""Cold-start hygiene: tracing costs nothing when off and still reaches X-Ray when on; the
collector pauses during a Lambda init and comes back (frozen) after the first invocation."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from session_tracker_local.cfn import Template

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "common"
EVENTS = ROOT / "tests" / "events"


def _functions() -> list[tuple[str, Path]]:
    return sorted((f.logical_id, f.code_uri) for f in Template.load(ROOT / "template.yaml").functions())


def _run(code: str, env: dict[str, str], cwd: Path = ROOT) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT")}
    env.update(
        {
            "TABLE_NAME": "coldstart-test",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "PYTHONPATH": str(LAYER),
        }
    )
    env.update(extra)
    return env


_IMPORT = """
import gc, importlib, json, sys
sys.path.insert(0, {code!r})
module = importlib.import_module("app")
print(json.dumps({{"xray": "aws_xray_sdk" in sys.modules, "gc": gc.isenabled()}}))
"""


@pytest.mark.parametrize(("name", "code"), _functions())
def test_with_tracing_off_no_handler_imports_the_xray_sdk(name: str, code: Path) -> None:
    out = json.loads(_run(_IMPORT.format(code=str(code)), _env(POWERTOOLS_TRACE_DISABLED="true")))
    assert out["xray"] is False, f"{name} imports aws_xray_sdk with tracing disabled"
    assert out["gc"] is True  # outside Lambda the collector is left alone


_LAMBDA_IMPORT = """
import gc, importlib, json, sys
sys.path.insert(0, {code!r})
module = importlib.import_module("app")
print(json.dumps({{"gc": gc.isenabled(), "ends": getattr(module.lambda_handler, "ends_cold_start", False)}}))
"""


@pytest.mark.parametrize(("name", "code"), _functions())
def test_in_lambda_every_handler_pauses_the_collector_and_its_first_call_ends_init(name: str, code: Path) -> None:
    env = _env(AWS_LAMBDA_FUNCTION_NAME=name, POWERTOOLS_TRACE_DISABLED="true")
    out = json.loads(_run(_LAMBDA_IMPORT.format(code=str(code)), env))
    assert out == {"gc": False, "ends": True}, f"{name}: decorate lambda_handler with @coldstart.handler (outermost)"


_FIRST_CALL = """
import gc, importlib, json, sys
sys.path.insert(0, {code!r})
module = importlib.import_module("app")
during_init = gc.isenabled()
class Context:
    function_name = "f"; function_version = "1"; memory_limit_in_mb = 128; aws_request_id = "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:0:function:f"
    def get_remaining_time_in_millis(self): return 10_000
event = json.loads(open({event!r}).read())
event["headers"]["authorization"] = "Bearer wrong"
response = module.lambda_handler(event, Context())
print(json.dumps({{"during_init": during_init, "after": gc.isenabled(), "frozen": gc.get_freeze_count(),
                  "status": response["statusCode"]}}))
"""


def test_in_lambda_the_collector_is_paused_during_init_and_back_after_the_first_invocation() -> None:
    code = ROOT / "functions" / "log_interaction"
    out = json.loads(
        _run(
            _FIRST_CALL.format(code=str(code), event=str(EVENTS / "post_interaction.json")),
            _env(AWS_LAMBDA_FUNCTION_NAME="LogInteractionFunction", POWERTOOLS_TRACE_DISABLED="true"),
        )
    )
    assert out == {"during_init": False, "after": True, "frozen": out["frozen"], "status": 401}
    assert out["frozen"] > 10_000  # what init loaded is in the permanent generation


_TRACED = """
import importlib, json, sys
sys.path.insert(0, {code!r})
module = importlib.import_module("app")
from session_tracker.observability import tracer
class Context:
    function_name = "f"; function_version = "1"; memory_limit_in_mb = 128; aws_request_id = "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:0:function:f"
    def get_remaining_time_in_millis(self): return 10_000
event = json.loads(open({event!r}).read())
response = module.lambda_handler(event, Context())
tracer.real.provider.current_subsegment()
print(json.dumps({{"status": response["statusCode"], "patched": sorted(tracer.real._config["patch_modules"] or [])}}))
"""


def test_with_tracing_on_the_handler_is_traced_to_xray_without_its_response(tmp_path: Path) -> None:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    port = daemon.getsockname()[1]
    code = ROOT / "functions" / "sessions_api"
    public = json.loads((EVENTS / "post_interaction.json").read_text())
    public.update({"routeKey": "GET /openapi.json", "rawPath": "/openapi.json", "body": None})
    public["requestContext"]["http"].update({"method": "GET", "path": "/openapi.json"})
    event = tmp_path / "public.json"
    event.write_text(json.dumps(public))
    env = _env(
        AWS_LAMBDA_FUNCTION_NAME="SessionsApiFunction",
        LAMBDA_TASK_ROOT=str(code),
        AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{port}",
        _X_AMZN_TRACE_ID="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    )
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    try:
        out = json.loads(_run(_TRACED.format(code=str(code), event=str(event)), env))
        packets = []
        while True:
            try:
                packets.append(daemon.recv(65536))
            except TimeoutError:
                break
            daemon.settimeout(1)
    finally:
        daemon.close()
    assert out == {"status": 200, "patched": ["botocore"]}
    documents = [json.loads(p.split(b"\n", 1)[1]) for p in packets]
    names = [d.get("name") for d in documents]
    assert "## lambda_handler" in names
    handler = next(d for d in documents if d.get("name") == "## lambda_handler")
    assert handler["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    metadata = json.dumps(handler.get("metadata", {}))
    assert "response" not in metadata  # response capture is off: exports and pages never reach X-Ray
    assert "ColdStart" in json.dumps(handler.get("annotations", {}))


_COLD = """
import importlib, json, sys
sys.path[:0] = [{code!r}, {layer!r}]
importlib.import_module("app")
print(json.dumps(sorted(m for m in ("aws_lambda_powertools.event_handler", "yaml") if m in sys.modules)))
"""


@pytest.mark.parametrize(
    "function", ["log_interaction", "webhook_vapi", "webhook_generic", "webhook_retell", "webhook_elevenlabs"]
)
def test_ingest_and_webhook_functions_do_not_import_the_powertools_event_handler(function: str) -> None:
    code = _COLD.format(code=str(ROOT / "functions" / function), layer=str(ROOT / "layers" / "common"))
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "AWS_LAMBDA_FUNCTION_NAME": function}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "aws_lambda_powertools.event_handler" not in json.loads(out.stdout.strip().splitlines()[-1])
