"""DynamoDB stream -> function wiring for the local stack, as Lambda's event source mapping does it.

A ``DynamoDB`` event in ``template.yaml`` becomes a :class:`StreamPoller`: it reads the
table's stream (DynamoDB Local's, at ``AWS_ENDPOINT_URL_DYNAMODB_STREAMS``; or moto's
in-process), drops records that match none of the event's ``FilterCriteria`` patterns,
batches the rest (``BatchSize``, ``MaximumBatchingWindowInSeconds``), invokes the function
with a Lambda-shaped ``{"Records": [...]}`` event, and on failure does what Lambda does:
retry from the first failed record (``ReportBatchItemFailures``), split the batch on a
function error (``BisectBatchOnFunctionError``), give up after ``MaximumRetryAttempts`` and
hand the batch description to the on-failure destination (kept in :attr:`dead_letters`
and logged).

Filter patterns use the EventBridge syntax subset Lambda supports: exact values, ``prefix``,
``suffix``, ``equals-ignore-case``, ``anything-but``, ``exists``, ``numeric``, ``wildcard``
and ``$or``; several filters are OR-ed.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from session_tracker_local.cfn import EventSource, resolve

log = logging.getLogger("session_tracker_local.streams")

MISSING: Any = object()
LOCAL_RETRY_CAP = 10
"""``MaximumRetryAttempts: -1`` (infinite in AWS) is capped locally so a poison record cannot wedge the stack."""


# --------------------------------------------------------------------- filtering
class PatternError(ValueError):
    """A filter pattern the local stack (and Lambda) would not accept."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _equal(rule: Any, value: Any) -> bool:
    if isinstance(rule, bool) or isinstance(value, bool):
        return isinstance(rule, bool) and isinstance(value, bool) and rule is value
    if isinstance(rule, (int, float)) and not isinstance(rule, bool):
        number = _number(value) if not isinstance(value, str) else None
        return number is not None and number == float(rule)
    return bool(rule == value)


_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _numeric(spec: Sequence[Any], value: Any) -> bool:
    number = _number(value)
    if number is None:
        return False
    if len(spec) % 2 or not spec:
        raise PatternError(f"numeric needs operator/value pairs: {spec!r}")
    for op, bound in zip(spec[::2], spec[1::2], strict=True):
        if op not in _OPS or _number(bound) is None:
            raise PatternError(f"bad numeric condition {op!r} {bound!r}")
        if not _OPS[op](number, float(bound)):
            return False
    return True


def _string_rule(kind: str, arg: Any, value: object) -> bool:
    if not isinstance(value, str):
        return False
    if isinstance(arg, dict) and set(arg) == {"equals-ignore-case"}:
        arg, value = str(arg["equals-ignore-case"]).lower(), value.lower()
    if not isinstance(arg, str):
        raise PatternError(f"{kind} takes a string: {arg!r}")
    if kind == "prefix":
        return value.startswith(arg)
    if kind == "suffix":
        return value.endswith(arg)
    if kind == "equals-ignore-case":
        return value.lower() == arg.lower()
    if kind == "wildcard":
        return fnmatch.fnmatchcase(value, arg.replace("[", "[[]"))
    raise PatternError(f"unknown string rule {kind!r}")


def _matcher(rule: Any, value: Any) -> bool:
    """One element of a leaf array against one scalar value (or MISSING)."""
    if not isinstance(rule, dict):
        return value is not MISSING and _equal(rule, value)
    if len(rule) != 1:
        raise PatternError(f"a content filter has exactly one key: {rule!r}")
    ((kind, arg),) = rule.items()
    if kind == "exists":
        if not isinstance(arg, bool):
            raise PatternError("exists takes true or false")
        return (value is not MISSING) is arg
    if value is MISSING:
        return False
    if kind == "numeric":
        return _numeric(arg, value)
    if kind in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
        return _string_rule(kind, arg, value)
    if kind == "anything-but":
        if isinstance(arg, dict):
            return not _matcher(arg, value)
        options = arg if isinstance(arg, list) else [arg]
        return not any(_equal(o, value) for o in options)
    raise PatternError(f"unsupported filter rule {kind!r}")


def _leaf(rules: list[Any], value: Any) -> bool:
    if not rules:
        raise PatternError("an empty array matches nothing")
    if isinstance(value, list):
        if not value:
            return any(_matcher(r, MISSING) for r in rules)
        return any(_matcher(r, v) for v in value for r in rules)
    if isinstance(value, dict):
        # an object where the pattern expects a value: only "exists" can say something about it
        return any(isinstance(r, dict) and r.get("exists") is True for r in rules)
    return any(_matcher(r, value) for r in rules)


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """Whether ``event`` matches one EventBridge-style ``pattern`` (every key must match)."""
    if not isinstance(pattern, dict):
        raise PatternError("a pattern is a JSON object")
    for key, rule in pattern.items():
        if key == "$or":
            if not isinstance(rule, list) or not rule:
                raise PatternError("$or takes a non-empty array of patterns")
            if not any(matches(p, event) for p in rule):
                return False
            continue
        value = event.get(key, MISSING) if isinstance(event, dict) else MISSING
        if isinstance(rule, dict):
            if not matches(rule, value if isinstance(value, dict) else {}):
                return False
        elif isinstance(rule, list):
            if not _leaf(rule, value):
                return False
        else:
            raise PatternError(f"pattern values must be arrays or objects (at {key!r})")
    return True


def _check_rule(rule: Any) -> None:
    if not isinstance(rule, dict):
        return
    if len(rule) != 1:
        raise PatternError(f"a content filter has exactly one key: {rule!r}")
    ((kind, arg),) = rule.items()
    if kind == "exists":
        if not isinstance(arg, bool):
            raise PatternError("exists takes true or false")
    elif kind == "numeric":
        _numeric(arg, 0)
    elif kind in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
        _string_rule(kind, arg, "")
    elif kind == "anything-but":
        if isinstance(arg, dict):
            _check_rule(arg)
    else:
        raise PatternError(f"unsupported filter rule {kind!r}")


def validate(pattern: Any) -> None:
    """Raise :class:`PatternError` for syntax Lambda would refuse (or this emulation does not know)."""
    if not isinstance(pattern, dict):
        raise PatternError("a pattern is a JSON object")
    for key, rule in pattern.items():
        if key == "$or":
            if not isinstance(rule, list) or not rule:
                raise PatternError("$or takes a non-empty array of patterns")
            for sub in rule:
                validate(sub)
        elif isinstance(rule, dict):
            validate(rule)
        elif isinstance(rule, list):
            if not rule:
                raise PatternError(f"an empty array matches nothing (at {key!r})")
            for item in rule:
                _check_rule(item)
        else:
            raise PatternError(f"pattern values must be arrays or objects (at {key!r})")


@dataclass(frozen=True)
class EventFilter:
    """Lambda ``FilterCriteria``: a record passes when any pattern matches (no filters: all pass)."""

    patterns: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_criteria(cls, criteria: dict[str, Any] | None) -> EventFilter:
        patterns = []
        for item in (criteria or {}).get("Filters") or []:
            raw = item.get("Pattern")
            try:
                pattern = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError as exc:
                raise PatternError(f"filter pattern is not JSON: {exc}") from exc
            validate(pattern)
            patterns.append(pattern)
        return cls(tuple(patterns))

    def __call__(self, record: dict[str, Any]) -> bool:
        return not self.patterns or any(matches(p, record) for p in self.patterns)


# ----------------------------------------------------------------------- records
def _lambda_value(value: Any) -> Any:
    """A stream AttributeValue as Lambda sends it (binary as base64 text)."""
    if isinstance(value, dict):
        return {k: _lambda_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lambda_value(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def to_lambda_record(raw: dict[str, Any], *, stream_arn: str, region: str) -> dict[str, Any]:
    """A ``GetRecords`` record in the shape Lambda delivers to the function."""
    ddb = dict(raw.get("dynamodb") or {})
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        ddb["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": raw.get("eventID") or uuid.uuid4().hex,
        "eventName": raw.get("eventName"),
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion") or region,
        "dynamodb": _lambda_value(ddb),
        "eventSourceARN": stream_arn,
    }


# ---------------------------------------------------------------------- delivery
@dataclass
class Delivery:
    """Invoke a function with batches of records the way Lambda's stream mapping does."""

    invoke: Callable[[dict[str, Any]], Any]
    report_failures: bool = False
    bisect: bool = False
    max_retries: int = -1
    on_failure: Callable[[list[dict[str, Any]], str], None] = lambda records, reason: None
    sleep: Callable[[float], None] = time.sleep
    invocations: int = 0

    @property
    def retries(self) -> int:
        return LOCAL_RETRY_CAP if self.max_retries < 0 else min(self.max_retries, LOCAL_RETRY_CAP)

    def deliver(self, records: list[dict[str, Any]]) -> None:
        """Deliver one batch; returns when every record succeeded or was sent to ``on_failure``."""
        pending: deque[tuple[list[dict[str, Any]], int]] = deque([(records, 0)])
        while pending:
            batch, attempt = pending.popleft()
            if not batch:
                continue
            self.invocations += 1
            try:
                result = self.invoke({"Records": batch})
            except Exception as exc:
                reason = f"function error: {type(exc).__name__}"
                if self.bisect and len(batch) > 1:
                    half = len(batch) // 2
                    pending.extendleft([(batch[half:], attempt), (batch[:half], attempt)])
                elif attempt < self.retries:
                    self.sleep(min(0.05 * 2**attempt, 1.0))
                    pending.appendleft((batch, attempt + 1))
                else:
                    self.on_failure(batch, reason)
                continue
            failed_at = self._first_failure(batch, result)
            if failed_at is None:
                continue
            rest = batch[failed_at:]
            if attempt < self.retries:
                self.sleep(min(0.05 * 2**attempt, 1.0))
                pending.appendleft((rest, attempt + 1))
            else:
                self.on_failure(rest, "batch item failures")

    def _first_failure(self, batch: list[dict[str, Any]], result: Any) -> int | None:
        if not self.report_failures or not isinstance(result, dict):
            return None
        failures = result.get("batchItemFailures") or []
        if not failures:
            return None
        ids = {str(f.get("itemIdentifier") or "") for f in failures if isinstance(f, dict)}
        for index, record in enumerate(batch):
            if str((record.get("dynamodb") or {}).get("SequenceNumber")) in ids:
                return index
        return 0  # an identifier that is not in the batch: Lambda retries the whole batch


# ------------------------------------------------------------------------ poller
@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    parent: str | None = None
    last_sequence: str | None = None


@dataclass
class StreamPoller:
    """The local event source mapping for one ``DynamoDB`` event of one function."""

    stack: Any
    pool: Any
    source: EventSource
    poll_interval: float = 0.2
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        props = resolve(self.source.properties, self.stack.refs)
        raw_stream = self.source.properties.get("Stream")
        self.table_name = self._table_name(raw_stream)
        self.batch_size = max(1, int(props.get("BatchSize", 100)))
        self.window = float(props.get("MaximumBatchingWindowInSeconds", 0) or 0)
        self.starting_position = str(props.get("StartingPosition", "LATEST"))
        self.enabled = props.get("Enabled", True) not in (False, "false", "False")
        self.filter = EventFilter.from_criteria(props.get("FilterCriteria"))
        self.region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self.delivery = Delivery(
            invoke=self.pool.invoke,
            report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            bisect=str(props.get("BisectBatchOnFunctionError", False)).lower() == "true",
            max_retries=int(props.get("MaximumRetryAttempts", -1)),
            on_failure=self._on_failure,
        )
        self.name = f"{self.pool.spec.logical_id}.{self.source.name}"
        self.stream_arn: str | None = None
        self.records_seen = 0
        self.records_delivered = 0
        self._shards: dict[str, _Shard] = {}
        self._done: set[str] = set()
        self._buffer: list[dict[str, Any]] = []
        self._buffer_since = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._last_discovery = 0.0

    def _table_name(self, stream: Any) -> str:
        if isinstance(stream, dict) and "Fn::GetAtt" in stream:
            logical_id = stream["Fn::GetAtt"][0]
            return str(self.stack.refs.get(logical_id, logical_id))
        return str(self.stack.options.table_name)

    # ----------------------------------------------------------------- life
    def start(self) -> None:
        if not self.enabled:
            log.info("%s: event source disabled in the template", self.name)
            return
        try:
            self.connect()
        except Exception as exc:
            log.warning("%s: cannot read the table's stream (%s); stream events will not run locally", self.name, exc)
            return
        self._thread = threading.Thread(target=self._loop, name=f"stream-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        self._thread = None

    def connect(self) -> None:
        """Find the table's stream and its shards (``start`` does this, then polls in a thread)."""
        import boto3

        ddb = boto3.client("dynamodb", region_name=self.region)
        self.stream_arn = ddb.describe_table(TableName=self.table_name)["Table"].get("LatestStreamArn")
        if not self.stream_arn:
            raise RuntimeError(f"table {self.table_name} has no stream")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
        if not endpoint and getattr(self.stack, "backend", "") == "moto":
            # botocore now derives an account-scoped host from the stream ARN, which moto does
            # not intercept; its classic regional host is.
            endpoint = f"https://streams.dynamodb.{self.region}.amazonaws.com"
        self._client = boto3.client("dynamodbstreams", region_name=self.region, endpoint_url=endpoint)
        self._discover(initial=True)

    def _discover(self, *, initial: bool = False) -> None:
        shards: list[dict[str, Any]] = []
        start: str | None = None
        while True:
            kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
            if start:
                kwargs["ExclusiveStartShardId"] = start
            desc = self._client.describe_stream(**kwargs)["StreamDescription"]
            shards += desc.get("Shards", [])
            start = desc.get("LastEvaluatedShardId")
            if not start:
                break
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id in self._shards or shard_id in self._done:
                continue
            position = self.starting_position if initial else "TRIM_HORIZON"
            if position not in ("LATEST", "TRIM_HORIZON"):
                position = "TRIM_HORIZON"
            iterator = self._client.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=position
            ).get("ShardIterator")
            self._shards[shard_id] = _Shard(shard_id, iterator, shard.get("ParentShardId"))
        self._last_discovery = time.monotonic()

    # ------------------------------------------------------------------ loop
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                got = self.poll_once()
            except Exception:
                log.exception("%s: polling the stream failed", self.name)
                got = 0
            if not got:
                self._stop.wait(self.poll_interval)

    def poll_once(self) -> int:
        """Read every shard once, deliver what is due; returns how many records were read."""
        if time.monotonic() - self._last_discovery > 5:
            self._discover()
        read = 0
        for shard in list(self._shards.values()):
            if shard.parent and shard.parent in self._shards:
                continue  # children wait until the parent shard is drained (ordering)
            read += self._read_shard(shard)
        self._flush(force=False)
        return read

    def _read_shard(self, shard: _Shard) -> int:
        if shard.iterator is None:
            self._flush(force=True)
            del self._shards[shard.shard_id]
            self._done.add(shard.shard_id)
            return 0
        try:
            out = self._client.get_records(ShardIterator=shard.iterator, Limit=1000)
        except self._client.exceptions.ExpiredIteratorException:
            # resume after the last record read (from the start if none was)
            position: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
            if shard.last_sequence:
                position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": shard.last_sequence}
            shard.iterator = self._client.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard.shard_id, **position
            ).get("ShardIterator")
            return 0
        records = out.get("Records", [])
        shard.iterator = out.get("NextShardIterator")
        for raw in records:
            shard.last_sequence = (raw.get("dynamodb") or {}).get("SequenceNumber") or shard.last_sequence
            record = to_lambda_record(raw, stream_arn=str(self.stream_arn), region=self.region)
            self.records_seen += 1
            if not self.filter(record):
                continue
            log.debug("%s: record %s passed the filter", self.name, record["dynamodb"].get("Keys"))
            if not self._buffer:
                self._buffer_since = time.monotonic()
            self._buffer.append(record)
            if len(self._buffer) >= self.batch_size:
                self._flush(force=True)
        return len(records)

    def _flush(self, *, force: bool) -> None:
        if not self._buffer:
            return
        if not force and time.monotonic() - self._buffer_since < self.window:
            return
        while self._buffer:
            batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
            log.debug("%s: delivering %d records", self.name, len(batch))
            self.delivery.deliver(batch)
            self.records_delivered += len(batch)

    def _on_failure(self, records: list[dict[str, Any]], reason: str) -> None:
        seqs = [str((r.get("dynamodb") or {}).get("SequenceNumber")) for r in records]
        first, last = (seqs[0], seqs[-1]) if seqs else (None, None)
        info: dict[str, Any] = {
            "requestContext": {
                "functionArn": f"arn:aws:lambda:local:000000000000:function:{self.pool.spec.logical_id}",
                "condition": "RetryAttemptsExhausted",
                "reason": reason,
            },
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "streamArn": self.stream_arn,
                "batchSize": len(records),
                "startSequenceNumber": first,
                "endSequenceNumber": last,
            },
            # local only (AWS sends just the range above): which items, to find them quickly
            "records": [
                {"Keys": (r.get("dynamodb") or {}).get("Keys"), "SequenceNumber": seq}
                for r, seq in zip(records, seqs, strict=True)
            ],
        }
        self.dead_letters.append(info)
        log.error(
            "%s: %d stream records sent to the on-failure destination (%s), sequence %s..%s",
            self.name,
            len(records),
            reason,
            first,
            last,
        )
