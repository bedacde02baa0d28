"""Small statistics helpers for the benchmarks."""

from __future__ import annotations

import platform
import statistics
from typing import Any


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(samples_s: list[float]) -> dict[str, float]:
    """Median, p99 and mean in milliseconds."""
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 4),
        "p99_ms": round(percentile(ms, 99), 4),
        "mean_ms": round(statistics.fmean(ms), 4),
    }


def ratio(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {
        "median": round(a["median_ms"] / b["median_ms"], 3),
        "p99": round(a["p99_ms"] / b["p99_ms"], 3),
    }


def machine() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
