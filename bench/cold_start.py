"""Cold start: the whole init of each handler - import, ``deps()`` and the first request - in fresh processes.

Baseline: a bare boto3 handler that imports boto3, creates its DynamoDB client and serves
one request (a ``put_item``), measured in the same run, the same way. Each function of
template.yaml is imported the way Lambda imports it (its code directory and the layer on
``sys.path``, ``app.lambda_handler``), with the environment Lambda gives it
(``AWS_LAMBDA_FUNCTION_NAME``), and then invoked once with a realistic first event against
the same DynamoDB Local table, ``REPS`` times, each in a new interpreter, interleaved with
the baseline. ``.pyc`` files are written and used, as the built layer ships them (the old
bench set ``PYTHONDONTWRITEBYTECODE=0``, which *disables* them: any non-empty value does).

Also records whether the module pulled in ``openai`` (only the analysis function may), and
the import-only share of each init.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.stats import ratio, summary

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "common"
EVENTS = ROOT / "tests" / "events"
INGEST_TOKEN = "test-ingest-token"
VAPI_SECRET = "test-vapi-secret"
READ_TOKEN = "bench-read-token"
TABLE = "coldstart"
RETELL_KEY = "bench-retell-api-key"
ELEVENLABS_SECRET = "bench-elevenlabs-secret"
INGEST_AND_WEBHOOKS = (
    "LogInteractionFunction",
    "WebhookVapiFunction",
    "WebhookGenericFunction",
    "WebhookRetellFunction",
    "WebhookElevenLabsFunction",
)
_BLOB_DIR = tempfile.mkdtemp(prefix="coldstart-blobs-")
TARGET_INGEST = 1.3
TARGET_OTHERS = 1.5

_BASELINE = """
import time, sys, json
t0 = time.perf_counter()
import boto3
client = boto3.client("dynamodb")
def lambda_handler(event, context):
    client.put_item(TableName={table!r}, Item={{"PK": {{"S": "BARE#" + event["id"]}}, "SK": {{"S": "META"}}}})
    return {{"statusCode": 200}}
t1 = time.perf_counter()
response = lambda_handler({{"id": {rid!r}}}, None)
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "total": t2 - t0, "status": response["statusCode"], "openai": "openai" in sys.modules}}))
"""

_FUNCTION = """
import time, sys, json
t0 = time.perf_counter()
sys.path[:0] = [{code!r}, {layer!r}]
import importlib
module = importlib.import_module({module!r})
t1 = time.perf_counter()

class Context:
    function_name = {name!r}
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:" + {name!r}
    memory_limit_in_mb = 512
    aws_request_id = "cold-start-bench"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 900_000

response = getattr(module, {handler!r})(json.loads({event!r}), Context())
t2 = time.perf_counter()
status = response.get("statusCode", 200) if isinstance(response, dict) else 200
print(json.dumps({{"import": t1 - t0, "total": t2 - t0, "status": status, "openai": "openai" in sys.modules}}))
"""


def _load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def _api_event(method: str, path: str, query: str = "", body: Any = None) -> dict[str, Any]:
    event = _load_event("post_interaction.json")
    event.update({"routeKey": f"{method} {path}", "rawPath": path, "rawQueryString": query})
    event["requestContext"]["http"].update({"method": method, "path": path})
    event["requestContext"]["routeKey"] = f"{method} {path}"
    event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&")) if query else None
    event["body"] = None if body is None else json.dumps(body)
    return event


def _signed_platform_event(name: str, unique: str) -> dict[str, Any]:
    """A Retell ``call_ended`` / ElevenLabs ``post_call_transcription`` sample, signed as the vendor signs it."""
    import time

    from session_tracker.platforms import elevenlabs, retell

    if name == "WebhookRetellFunction":
        body = json.loads((EVENTS / "retell" / "call_ended.full.json").read_text())
        body["call"]["call_id"] = f"call_{unique}"
        raw = json.dumps(body).encode()
        path, headers = "/webhook/retell", {"x-retell-signature": retell.sign(raw, RETELL_KEY, int(time.time() * 1000))}
    else:
        body = json.loads((EVENTS / "elevenlabs" / "post_call_transcription.full.json").read_text())
        body["data"]["conversation_id"] = f"conv_{unique}"
        raw = json.dumps(body).encode()
        path = "/webhook/elevenlabs"
        headers = {"elevenlabs-signature": elevenlabs.sign(raw, ELEVENLABS_SECRET, int(time.time()))}
    event = _api_event("POST", path, body=None)
    event["headers"] = {"content-type": "application/json", **headers}
    event["body"] = raw.decode()
    return event


def first_event(name: str) -> dict[str, Any]:
    """A realistic first request for each function (new ids each time: no duplicate fast path)."""
    unique = uuid.uuid4().hex[:12]
    if name == "LogInteractionFunction":
        event = _load_event("post_interaction.json")
        body = json.loads(event["body"])
        body.update({"student_id": f"cold_{unique}", "interaction_id": unique})
        event["body"] = json.dumps(body)
        return event
    if name == "WebhookVapiFunction":
        event = _load_event("webhook_vapi_end_of_call_report.json")
        body = json.loads(event["body"])
        body["message"]["call"]["id"] = f"call-{unique}"
        event["body"] = json.dumps(body)
        return event
    if name == "WebhookGenericFunction":
        event = _load_event("webhook_session_data_generic.json")
        body = json.loads(event["body"])
        body["call_id"] = f"call-{unique}"
        body["student_id"] = f"cold_{unique}"
        body.pop("session_id", None)
        event["body"] = json.dumps(body)
        return event
    if name in ("WebhookRetellFunction", "WebhookElevenLabsFunction"):
        return _signed_platform_event(name, unique)
    if name == "SessionsApiFunction":
        event = _api_event("GET", "/sessions", f"student_id=cold_{unique}")
        event["headers"]["authorization"] = f"Bearer {READ_TOKEN}"
        return event
    if name == "CloseIdleFunction":
        return {
            "version": "0",
            "id": unique,
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "000000000000",
            "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {},
        }
    if name in ("AnalyzeFunction", "SessionFilesFunction"):
        keys = {"PK": {"S": f"SESSION#cold_{unique}_20260101_0000"}, "SK": {"S": "META"}}
        return {
            "Records": [
                {
                    "eventID": unique,
                    "eventName": "MODIFY",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/coldstart/stream/x",
                    "dynamodb": {
                        "Keys": keys,
                        "NewImage": {**keys, "pending_analysis": {"BOOL": True}},
                        "SequenceNumber": "1",
                        "SizeBytes": 10,
                        "StreamViewType": "NEW_AND_OLD_IMAGES",
                    },
                }
            ]
        }
    raise KeyError(name)


def _env(endpoint: str, function: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # .pyc written and used, as in the built layer
    env.pop("PYTHONPATH", None)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",  # never used by these first requests
            "TABLE_NAME": TABLE,
            "INGEST_TOKEN": INGEST_TOKEN,
            "READ_TOKEN": READ_TOKEN,
            "VAPI_WEBHOOK_SECRET": VAPI_SECRET,
            "RETELL_API_KEY": RETELL_KEY,
            "ELEVENLABS_WEBHOOK_SECRET": ELEVENLABS_SECRET,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "SESSION_CONFIG": str(ROOT / "session_config.yaml"),
            "SESSION_FILES_BUCKET": "bench-session-files",  # never written: the first record names no session
            "BLOB_DIR": _BLOB_DIR,  # transcripts offloaded to a directory, as in the local stack
        }
    )
    if function:
        env["AWS_LAMBDA_FUNCTION_NAME"] = function
    return env


def _time(code: str, env: dict[str, str], attempts: int = 3) -> dict[str, Any]:
    """One fresh-process probe; a 503 (the store timed out on an overloaded machine) is probed again."""
    for attempt in range(attempts):
        try:
            return _probe(code, env)
        except _Unavailable:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


class _Unavailable(RuntimeError):
    pass


def _probe(code: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", check=False, timeout=120
    )
    if out.returncode != 0:
        raise RuntimeError(f"cold start probe failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if int(result["status"]) == 503:
        raise _Unavailable(f"cold start probe answered 503: {out.stdout[-2000:]}")
    if not 200 <= int(result["status"]) < 300:
        raise RuntimeError(f"cold start probe answered {result['status']}: {out.stdout[-2000:]}")
    return result


def _baseline(endpoint: str) -> dict[str, Any]:
    return _time(_BASELINE.format(table=TABLE, rid=uuid.uuid4().hex), _env(endpoint, "BareBoto3Function"))


def _function(spec: Any, endpoint: str) -> dict[str, Any]:
    code = _FUNCTION.format(
        code=str(spec.code_uri),
        layer=str(LAYER),
        module=Path(spec.module_file).stem,
        handler=spec.handler_name,
        name=spec.logical_id,
        event=json.dumps(first_event(spec.logical_id)),
    )
    return _time(code, _env(endpoint, spec.logical_id))


def run(quick: bool = False) -> dict[str, Any]:
    import boto3

    from session_tracker_local.cfn import Template
    from session_tracker_local.dynamodb_local import DynamoDBLocal

    reps = 4 if quick else 8
    template = Template.load(ROOT / "template.yaml")
    specs = sorted(template.functions(), key=lambda f: f.logical_id)
    names = [s.logical_id for s in specs]
    with DynamoDBLocal(cache_dir=ROOT / ".cache" / "dynamodb-local") as ddb:
        client = boto3.client(
            "dynamodb",
            endpoint_url=ddb.endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        client.create_table(**template.create_table_request(TABLE))
        client.get_waiter("table_exists").wait(TableName=TABLE)
        baseline: list[dict[str, Any]] = []
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        _baseline(ddb.endpoint)  # warm the OS page cache and write the .pyc files once for every row
        for spec in specs:
            _function(spec, ddb.endpoint)
        for _ in range(reps):  # interleaved, so machine noise hits every row alike
            baseline.append(_baseline(ddb.endpoint))
            for spec in specs:
                samples[spec.logical_id].append(_function(spec, ddb.endpoint))
    base = summary([s["total"] for s in baseline])
    base_import = summary([s["import"] for s in baseline])
    rows = {
        name: summary([s["total"] for s in samples[name]])
        | {
            "import_median_ms": summary([s["import"] for s in samples[name]])["median_ms"],
            "imports_openai": any(s["openai"] for s in samples[name]),
        }
        for name in names
    }
    ratios = {name: ratio(rows[name], base) for name in names}
    targets = {name: TARGET_INGEST if name in INGEST_AND_WEBHOOKS else TARGET_OTHERS for name in names}
    lines = [
        "## Cold start",
        "",
        f"The whole init of each handler in a fresh interpreter - import, `deps()` and the first request against "
        f"DynamoDB Local - {reps} runs each, interleaved; baseline: a bare handler that imports boto3, creates "
        "its DynamoDB client and serves one `put_item`. Imported as Lambda imports it (code directory and layer on "
        "`sys.path`, `AWS_LAMBDA_FUNCTION_NAME` set), tracing off, `.pyc` files used.",
        "",
        "| function | init median ms | p99 ms | of which import ms | ratio to bare boto3 (median) | target | "
        "imports openai |",
        "|---|---|---|---|---|---|---|",
        f"| bare boto3 handler (baseline) | {base['median_ms']:.1f} | {base['p99_ms']:.1f} | "
        f"{base_import['median_ms']:.1f} | 1.0 | | no |",
    ]
    for name in names:
        r = rows[name]
        lines.append(
            f"| {name} | {r['median_ms']:.1f} | {r['p99_ms']:.1f} | {r['import_median_ms']:.1f} | "
            f"{ratios[name]['median']} | <= {targets[name]} | {'yes' if r['imports_openai'] else 'no'} |"
        )
    return {
        "description": "handler import + deps() + first request in fresh processes vs a bare boto3 handler",
        "reps": reps,
        "baseline": base | {"import_median_ms": base_import["median_ms"]},
        "functions": rows,
        "ratios": ratios,
        "targets": targets,
        "markdown": "\n".join(lines),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
