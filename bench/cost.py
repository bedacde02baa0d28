"""The cost model of docs/deploy.md as code: on-demand prices (us-east-1, list prices
in force in 2026) applied to measured work. ``make bench`` uses it for the simulated
day; docs/deploy.md shows the same arithmetic by hand."""

from __future__ import annotations

from dataclasses import dataclass

# USD, us-east-1, on-demand list prices.
HTTP_API_PER_MILLION = 1.00  # API Gateway HTTP API, first 300 M requests/month, per 512 KB
LAMBDA_REQUEST_PER_MILLION = 0.20
LAMBDA_ARM_GB_SECOND = 0.0000133334  # arm64, first 7.5 B GB-s/month
DDB_WRITE_PER_MILLION = 0.625  # on-demand write request units
DDB_READ_PER_MILLION = 0.125  # on-demand read request units
S3_PUT_PER_THOUSAND = 0.005
LOGS_INGEST_PER_GB = 0.50

# Measured work of one logged call (docs/benchmarks.md, docs/deploy.md): billed Lambda
# duration at 512 MB, and AWS write/read units in steady state (storage v2: one consistent
# Query of the student's partition, 1 RRU, and one conditional PutItem of the call, 1 WRU; v1
# was a GetItem and a 4-item transaction, 14 WRU). Whole sessions (open, close, analysis
# trigger) are measured by bench/storage.py; the simulated day uses its 4-call figure.
LOG_CALL_LAMBDA_MS = 15
LOG_CALL_WRITE_UNITS = 1
LOG_CALL_READ_UNITS = 1


@dataclass(frozen=True)
class RequestWork:
    """Measured work of one API request (or one scheduled/stream invocation)."""

    lambda_ms: float
    memory_mb: int = 512
    write_units: float = 0.0
    read_units: float = 0.0
    via_api: bool = True
    s3_puts: float = 0.0
    log_bytes: float = 1200.0  # our JSON line + Lambda START/END/REPORT lines

    def cost(self) -> dict[str, float]:
        """USD for one such request, by service."""
        billed_ms = max(1.0, float(int(self.lambda_ms + 0.999)))  # Lambda bills in 1 ms steps
        return {
            "api_gateway": HTTP_API_PER_MILLION / 1e6 if self.via_api else 0.0,
            "lambda": LAMBDA_REQUEST_PER_MILLION / 1e6
            + billed_ms / 1000 * self.memory_mb / 1024 * LAMBDA_ARM_GB_SECOND,
            "dynamodb": self.write_units * DDB_WRITE_PER_MILLION / 1e6 + self.read_units * DDB_READ_PER_MILLION / 1e6,
            "s3": self.s3_puts * S3_PUT_PER_THOUSAND / 1e3,
            "logs": self.log_bytes / 1e9 * LOGS_INGEST_PER_GB,
        }


def aws_write_units(table_units: float, index_units: float, *, transactional: bool) -> float:
    """AWS write request units from DynamoDB Local's ``ReturnConsumedCapacity=INDEXES`` report.

    DynamoDB Local reports one unit per item-KB written; AWS bills transactional
    writes at two. Index writes propagate after the transaction commits and are
    taken at one unit each, as reported.
    """
    return table_units * (2 if transactional else 1) + index_units


def per_million(work: RequestWork, calls_per_request: float = 1.0) -> dict[str, float]:
    """USD per 1 M logged calls, by service, when each request carries ``calls_per_request`` calls."""
    one = work.cost()
    return {k: round(v * 1e6 / calls_per_request, 3) for k, v in one.items()}
