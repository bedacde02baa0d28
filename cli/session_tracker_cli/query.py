"""``session-tracker query``: SQL (DuckDB) over the session files.

The files (``sessions/date=YYYY-MM-DD/{session_id}.json``, one export per session, see
``docs/session-files.md``) are read into one table, ``session_files`` (the export's
fields as they are, plus the ``date`` partition), with two flattened views on top:

* ``sessions``: one row per session (times as UTC timestamps, ``minutes``, counts,
  subjects, platform call fields, the analysis' status, error and texts);
* ``interactions``: one row per logged tool call, with its session's id, student and date.

A local folder is read in place; ``s3://bucket/prefix`` is listed and downloaded with
boto3 (the user's own AWS credentials) into a temporary folder first, so no DuckDB
extension has to be fetched at run time. DuckDB is an optional extra:
``pip install 'session-tracker-cli[query]'``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, cast, get_args, get_origin

from pydantic import BaseModel

from session_tracker.models import SessionExport

if TYPE_CHECKING:
    import duckdb

# The export's fields as DuckDB types, derived from the export model itself
# (session_tracker.models.SessionExport), so a field added to the export is a column here.
# Free-form objects (arguments, conversation, platform metadata, matching, analysis) stay JSON.
_SCALARS: dict[Any, str] = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE", bool: "BOOLEAN", datetime: "VARCHAR"}


def duckdb_type(annotation: Any) -> str:
    """The DuckDB type of one pydantic field annotation."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return duckdb_type(args[0])
    if origin in (Union, UnionType):
        kinds = [a for a in args if a is not type(None)]
        return duckdb_type(kinds[0]) if len(kinds) == 1 else "JSON"
    if origin is Literal:
        return "VARCHAR"
    if origin is list:
        return f"{duckdb_type(args[0])}[]"
    if origin is dict or annotation is dict:
        return "JSON"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "STRUCT(" + ", ".join(f'"{n}" {t}' for n, t in model_columns(annotation).items()) + ")"
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    return "JSON"


def model_columns(model: type[BaseModel]) -> dict[str, str]:
    """``{field: DuckDB type}`` of a pydantic model, in field order."""
    return {name: duckdb_type(info.annotation) for name, info in model.model_fields.items()}


FILE_COLUMNS: dict[str, str] = model_columns(SessionExport)

# Timestamps in the files are fixed-width UTC text ("2026-01-17T14:30:05.000000Z").
_TS = "CAST(replace({0}, 'Z', '') AS TIMESTAMP)"

SESSIONS_VIEW = f"""
CREATE VIEW sessions AS
SELECT
  session_id,
  student_id,
  "date",
  {_TS.format("start_time")} AS start_time,
  {_TS.format("end_time")} AS end_time,
  {_TS.format("last_activity")} AS last_activity,
  status,
  platform,
  round(coalesce(
    session_summary.duration_seconds,
    epoch({_TS.format("coalesce(end_time, last_activity, start_time)")}) - epoch({_TS.format("start_time")})
  ) / 60, 2) AS minutes,
  len(mcp_interactions) AS interaction_count,
  session_summary.subjects_accessed AS subjects,
  session_summary.duration_estimated AS duration_estimated,
  matching->>'strategy' AS matching_strategy,
  coalesce(vapi_metadata->>'call_id', platform_metadata->>'call_id') AS call_id,
  CAST(coalesce(vapi_metadata->>'cost', platform_metadata->>'cost_usd') AS DOUBLE) AS call_cost_usd,
  coalesce(vapi_metadata->>'ended_reason', platform_metadata->>'ended_reason') AS ended_reason,
  conversation->>'source' AS transcript_source,
  conversation->>'transcript' AS transcript,
  CAST(conversation->>'word_count' AS BIGINT) AS word_count,
  CASE WHEN analysis IS NULL THEN NULL ELSE coalesce(analysis->>'status', 'ok') END AS analysis_status,
  analysis->>'error' AS analysis_error,
  analysis->>'reason' AS analysis_skip_reason,
  analysis->>'model' AS analysis_model,
  analysis->>'session_summary' AS analysis_summary,
  analysis->>'progress_update' AS progress_update,
  analysis->>'learning_insights' AS learning_insights,
  CAST(analysis->>'cost_usd' AS DOUBLE) AS analysis_cost_usd
FROM session_files
"""

INTERACTIONS_VIEW = f"""
CREATE VIEW interactions AS
SELECT
  f.session_id,
  f.student_id,
  f."date",
  {_TS.format("c.timestamp")} AS "timestamp",
  c."function" AS "function",
  c.data_provided,
  CASE WHEN len(c.subjects) > 0 THEN c.subjects ELSE f.session_summary.subjects_accessed END AS subjects,
  c.arguments,
  c.response_size,
  c.duration_ms,
  c.is_error,
  c.interaction_id,
  c.call_id
FROM session_files AS f, unnest(f.mcp_interactions) AS t(c)
"""


class QueryError(RuntimeError):
    """A bad source or a failing statement (the message says which)."""


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise QueryError("session-tracker query needs DuckDB: pip install 'session-tracker-cli[query]'") from exc
    return duckdb


def _column_list() -> str:
    return ", ".join(f"'{name}': '{kind}'" for name, kind in FILE_COLUMNS.items())


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with ``session_files`` loaded from ``root`` and the two views."""
    con = cast("duckdb.DuckDBPyConnection", _duckdb().connect(":memory:"))
    con.execute("SET TimeZone = 'UTC'")
    files = sorted(root.glob("date=*/*.json"))
    if files:
        pattern = str(root / "date=*" / "*.json").replace("'", "''")
        con.execute(
            f"""CREATE TABLE session_files AS SELECT * FROM read_json('{pattern}',
            format = 'newline_delimited', columns = {{{_column_list()}}},
            hive_partitioning = true, hive_types = {{'date': DATE}})"""
        )
    else:
        cols = ", ".join(f'"{name}" {kind}' for name, kind in FILE_COLUMNS.items())
        con.execute(f'CREATE TABLE session_files ({cols}, "date" DATE)')
    con.execute(SESSIONS_VIEW)
    con.execute(INTERACTIONS_VIEW)
    return con


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def run(sql: str, root: Path) -> Result:
    """Run one statement over the files under ``root``; :class:`QueryError` with DuckDB's message."""
    duckdb = _duckdb()
    con = connect(root)
    try:
        rel = con.execute(sql)
        columns = [d[0] for d in rel.description or []]
        rows = rel.fetchall()
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip()) from exc
    finally:
        con.close()
    return Result(columns, rows)


# --------------------------------------------------------------------------- sources
def parse_s3(source: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix ending in ``/``, default ``sessions/``)."""
    rest = source.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise QueryError(f"not an S3 location: {source!r} (use s3://BUCKET/sessions/)")
    prefix = prefix or "sessions/"
    return bucket, prefix if prefix.endswith("/") else prefix + "/"


def _in_range(key: str, since: date | None, until: date | None) -> bool:
    part = next((p for p in key.split("/") if p.startswith("date=")), None)
    if part is None or not key.endswith(".json"):
        return False
    try:
        day = date.fromisoformat(part.removeprefix("date="))
    except ValueError:
        return False
    return (since is None or day >= since) and (until is None or day <= until)


def download_s3(
    source: str, target: Path, *, since: date | None = None, until: date | None = None, client: Any = None
) -> int:
    """Copy the session files under ``source`` (optionally only days in [since, until]) to
    ``target``, keeping the ``date=`` layout; returns how many were copied."""
    bucket, prefix = parse_s3(source)
    if client is None:
        import boto3

        client = boto3.client("s3")
    copied = 0
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if not _in_range(key, since, until):
                continue
            relative = key[len(prefix) :]
            if ".." in relative.split("/"):
                continue
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(path))
            copied += 1
    return copied


@contextlib.contextmanager
def local_root(
    source: str, *, since: date | None = None, until: date | None = None, client: Any = None
) -> Iterator[Path]:
    """A local folder holding the files of ``source`` (a folder, or ``s3://`` copied to a temporary one)."""
    if source.startswith("s3://"):
        with tempfile.TemporaryDirectory(prefix="session-files-") as tmp:
            download_s3(source, Path(tmp), since=since, until=until, client=client)
            yield Path(tmp)
        return
    root = Path(source)
    if not root.is_dir():
        raise QueryError(f"no session files folder at {root} (run `make run`, or pass --source)")
    if since is None and until is None:
        yield root
        return
    with tempfile.TemporaryDirectory(prefix="session-files-") as tmp:
        for path in root.glob("date=*/*.json"):
            if _in_range(str(path.relative_to(root)), since, until):
                (Path(tmp) / path.parent.name).mkdir(exist_ok=True)
                (Path(tmp) / path.parent.name / path.name).symlink_to(path.resolve())
        yield Path(tmp)


# --------------------------------------------------------------------------- output
def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def as_table(result: Result) -> str:
    """Aligned plain text: a header, a rule, one line per row, then the row count."""
    cells = [[_cell(v) for v in row] for row in result.rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(result.columns)]
    numeric = [
        all(isinstance(row[i], (int, float)) or row[i] is None for row in result.rows) for i in range(len(widths))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(result.columns), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(out) + "\n"


def as_csv(result: Result) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([[_cell(v) for v in row] for row in result.rows])
    return buffer.getvalue()


def as_json_lines(result: Result) -> str:
    return "".join(
        json.dumps(dict(zip(result.columns, row, strict=True)), ensure_ascii=False, default=str) + "\n"
        for row in result.rows
    )
