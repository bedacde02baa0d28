"""Table stream (filtered to finished session records): keep each session's file current.

``session_tracking.auto_save`` (default on) writes the export of every closed or completed
session to ``sessions/date=YYYY-MM-DD/{session_id}.json`` in the stack's bucket, replaces it
when the session changes and removes it when the session is deleted (see
``session_tracker.session_files`` and ``docs/session-files.md``). A session whose write fails
is reported as a batch item failure: the stream retries it (in order, bisecting), then sends
the batch to the on-failure queue, which is alarmed.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from session_tracker import coldstart, session_files
from session_tracker.errors import ServiceUnavailable
from session_tracker.observability import count, logger, metrics, tracer
from session_tracker.runtime import deps
from session_tracker.store.dynamo_stream import session_change


@cache
def sink() -> session_files.FileSink:
    found = session_files.sink_from_env()
    if found is None:
        raise ServiceUnavailable("no place for session files: set SESSION_FILES_BUCKET (or SESSION_FILES_DIR)")
    return found


def _failed(session_id: str, exc: Exception) -> None:
    logger.error(
        "session file not written", extra={"session_id": session_id, "error": type(exc).__name__}, exc_info=exc
    )


@coldstart.handler
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    if not deps().config.session_tracking.auto_save:
        logger.info("auto_save is off: session files not written", extra={"records": len(records)})
        return {"batchItemFailures": []}
    outcome = session_files.sync_batch(
        [session_change(r) for r in records],
        store=deps().store,
        blobs=deps().blobs,
        sink=sink(),
        on_error=_failed,
    )
    count("SessionFilesWritten", outcome.puts)
    count("SessionFilesDeleted", outcome.deletes)
    count("SessionFileFailures", len(outcome.failed))
    logger.info(
        "session files",
        extra={
            "records": len(records),
            "written": len(outcome.written),
            "deleted": len(outcome.deleted),
            "unchanged": len(outcome.unchanged),
            "failed": len(outcome.failed),
            "puts": outcome.puts,
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in outcome.failed]}
