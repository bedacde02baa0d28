"""Cold start: import + init time of each function's handler module, in fresh processes.

Baseline: a bare handler module that only imports boto3 and creates a DynamoDB
client, measured in the same run, the same way. Each function of template.yaml
is loaded exactly as the local stack loads it (its own module, the layer on the
path), ``REPS`` times, each in a new interpreter. Also records whether the
module pulled in ``openai`` (only the analysis function may).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.stats import ratio, summary

ROOT = Path(__file__).resolve().parents[1]

_BASELINE = """
import time, sys
t0 = time.perf_counter()
import boto3
client = boto3.client("dynamodb", region_name="us-east-1")
def lambda_handler(event, context):
    return {"statusCode": 200}
print(time.perf_counter() - t0, "openai" in sys.modules)
"""

_FUNCTION = """
import time, sys
t0 = time.perf_counter()
from pathlib import Path
from session_tracker_local.cfn import Template
from session_tracker_local.lambda_host import load_handler
spec = next(f for f in Template.load(Path({root!r}) / "template.yaml").functions() if f.logical_id == {logical_id!r})
t1 = time.perf_counter()
load_handler(spec)
t2 = time.perf_counter()
print(t2 - t1, "openai" in sys.modules)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "TABLE_NAME": "bench",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "SESSION_CONFIG": str(ROOT / "session_config.yaml"),
            "PYTHONDONTWRITEBYTECODE": "0",
        }
    )
    return env


def _time(code: str) -> tuple[float, bool]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=ROOT, check=True, timeout=120
    )
    seconds, openai = out.stdout.strip().splitlines()[-1].split()
    return float(seconds), openai == "True"


def run(quick: bool = False) -> dict[str, Any]:
    from session_tracker_local.cfn import Template

    reps = 5 if quick else 10
    functions = sorted(f.logical_id for f in Template.load(ROOT / "template.yaml").functions())
    baseline: list[float] = []
    samples: dict[str, list[float]] = {name: [] for name in functions}
    imports_openai: dict[str, bool] = {}
    _time(_BASELINE)  # warm the OS page cache once for both sides
    for _ in range(reps):  # interleaved, so machine noise hits every row alike
        baseline.append(_time(_BASELINE)[0])
        for name in functions:
            seconds, openai = _time(_FUNCTION.format(root=str(ROOT), logical_id=name))
            samples[name].append(seconds)
            imports_openai[name] = openai
    base = summary(baseline)
    rows = {name: summary(samples[name]) | {"imports_openai": imports_openai[name]} for name in functions}
    ratios = {name: ratio(rows[name], base) for name in functions}
    lines = [
        "## Cold start",
        "",
        f"Import + init of each handler module in a fresh interpreter, {reps} runs each, interleaved; "
        "baseline: a bare handler that imports boto3 and creates a DynamoDB client.",
        "",
        "| function | median ms | p99 ms | ratio to bare boto3 (median) | imports openai |",
        "|---|---|---|---|---|",
        f"| bare boto3 handler (baseline) | {base['median_ms']:.1f} | {base['p99_ms']:.1f} | 1.0 | no |",
    ]
    for name in functions:
        r = rows[name]
        lines.append(
            f"| {name} | {r['median_ms']:.1f} | {r['p99_ms']:.1f} | {ratios[name]['median']} | "
            f"{'yes' if r['imports_openai'] else 'no'} |"
        )
    return {
        "description": "handler module import + init in fresh processes vs a bare boto3 handler",
        "reps": reps,
        "baseline": base,
        "functions": rows,
        "ratios": ratios,
        "markdown": "\n".join(lines),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
