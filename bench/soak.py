"""``make soak``: the local stack's memory over a long run of the client's default batches.

Separate from ``make bench`` (which must stay under 10 minutes): ``SOAK=SECONDS`` (default 600).
Writes ``bench/results/soak.json``; ``docs/benchmarks.md`` is regenerated with it (the other
sections from their last results).
"""

from __future__ import annotations

import argparse
import json
import time

from bench.__main__ import RESULTS, write_docs
from bench.stats import machine
from bench.throughput import soak

DEFAULT_SECONDS = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="length of the soak")
    args = parser.parse_args()
    result = soak(args.seconds)
    result["machine"] = machine()
    result["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "markdown"}, indent=2), flush=True)
    write_docs({"soak": result})


if __name__ == "__main__":
    main()
