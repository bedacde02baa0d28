"""CLI startup: wall time of ``session-tracker --help`` (the console script), each run a new process.

Baseline: the bare interpreter (``python -c pass``) of the same venv, interleaved with the CLI
runs, so the figure beyond it is what the CLI itself loads. The target is the issue's: ``--help``
under 0.3 s. What ``--help`` may import (the CLI, typer, rich - nothing else) is a test
(tests/tools/test_cli_startup.py); how long it takes is only measured here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.stats import summary

TARGET_SECONDS = 0.3
WARMUP = 2


def _script() -> Path:
    return Path(sys.executable).parent / "session-tracker"


def _wall(cmd: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_TRACKER_")}
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env, timeout=60)
    return time.perf_counter() - t0


def run(quick: bool = False) -> dict[str, Any]:
    reps = 8 if quick else 30
    commands = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "session-tracker --help": [str(_script()), "--help"],
        "session-tracker sessions --help": [str(_script()), "sessions", "--help"],
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(WARMUP + reps):
        for name, cmd in commands.items():
            took = _wall(cmd)
            if i >= WARMUP:
                samples[name].append(took)
    rows = {name: summary(values) for name, values in samples.items()}
    help_row = rows["session-tracker --help"]
    meets = help_row["median_ms"] / 1000 <= TARGET_SECONDS
    lines = [
        "## CLI startup",
        "",
        f"Wall time of each command in a new process, {reps} runs each after {WARMUP} warm-up runs, the "
        "commands interleaved; the bare interpreter of the same venv is the floor. `--help` loads the CLI, "
        "typer and rich only (checked by tests/tools/test_cli_startup.py); httpx, the session models and "
        "boto3 load when a command runs.",
        "",
        "| command | n | median ms | p99 ms |",
        "|---|---|---|---|",
        *(f"| {name} | {row['n']} | {row['median_ms']:.1f} | {row['p99_ms']:.1f} |" for name, row in rows.items()),
        "",
        f"Target: `session-tracker --help` under {TARGET_SECONDS:g} s (median): **{'met' if meets else 'not met'}**.",
    ]
    return {
        "description": "session-tracker --help wall time in fresh processes against the bare interpreter",
        "reps": reps,
        "rows": rows,
        "target_seconds": TARGET_SECONDS,
        "meets_target": meets,
        "markdown": "\n".join(lines),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
