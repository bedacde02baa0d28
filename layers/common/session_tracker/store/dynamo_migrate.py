"""``session-tracker migrate``: move a v1 table's items to the storage v2 layout, bounded per run.

The plan of each item is :mod:`session_tracker.store.migrate_plan` (pure); this module scans
the table, runs the plans in their safe order and keeps a checkpoint item
(:data:`~session_tracker.store.migrate_plan.CHECKPOINT_KEY`) with the scan cursor and totals:

- **bounded**: one run scans at most ``limit`` items (pages of ``page_size``), then stops with
  ``complete: false``; the next run resumes after the last page it finished;
- **resumable**: the checkpoint is written after every page, so an interrupted run (a crash, a
  timeout, Ctrl-C) repeats at most one page, whose steps are idempotent;
- **idempotent**: a finished migration answers ``already_complete`` without scanning; with
  ``restart`` it scans again from the start and finds nothing to write (every v1 item is gone);
- ``dry_run``: reads and counts, writes nothing (not even the checkpoint).

The migration is an operator's one-shot job: it is the only code that Scans the table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from session_tracker.models import iso
from session_tracker.store.keys import LAYOUT_VERSION
from session_tracker.store.migrate_plan import (
    CHECKPOINT_KEY,
    Delete,
    Item,
    MarkMigrated,
    Put,
    Totals,
    Write,
    plan_item,
    plan_session,
    text,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH = 25


@dataclass
class MigrationReport:
    """What one run did (``run``) and every run so far (``total``)."""

    table: str
    dry_run: bool
    complete: bool
    already_complete: bool = False
    run: Totals = field(default_factory=Totals)
    total: Totals = field(default_factory=Totals)
    runs: int = 0
    started_at: str | None = None
    completed_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "already_complete": self.already_complete,
            "run": self.run.as_dict(),
            "total": self.total.as_dict(),
            "runs": self.runs,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
        }


class Migrator:
    """Runs the v1 -> v2 migration of one table (see the module docstring)."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        page_size: int = 100,
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.clock = clock
        self.page_size = page_size

    # ------------------------------------------------------------------ the run
    def run(self, *, limit: int = 1000, dry_run: bool = False, restart: bool = False) -> MigrationReport:
        """One bounded run: scan up to ``limit`` items from the checkpoint, migrate them."""
        checkpoint = {} if restart else self._checkpoint()
        report = MigrationReport(table=self.table_name, dry_run=dry_run, complete=False)
        report.total = Totals(**json.loads(checkpoint.get("totals", {}).get("S", "{}")))
        report.runs = int(checkpoint.get("runs", {}).get("N", "0"))
        report.started_at = checkpoint.get("started_at", {}).get("S") or iso(self.clock())
        if "completed_at" in checkpoint:
            report.complete = report.already_complete = True
            report.completed_at = checkpoint["completed_at"]["S"]
            return report
        cursor = json.loads(checkpoint["cursor"]["S"]) if "cursor" in checkpoint else None
        report.runs += 1
        while report.run.scanned < limit:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "Limit": max(1, min(self.page_size, limit - report.run.scanned)),
                # eventually consistent (half the read units): v1 items are no longer written, the
                # session step re-reads its calls consistently, and the conditions guard the rest
            }
            if cursor:
                kwargs["ExclusiveStartKey"] = cursor
            page = self.client.scan(**kwargs)
            done = Totals()
            self._page(page.get("Items", []), done, dry_run=dry_run)
            report.run.add(done)
            report.total.add(done)
            cursor = page.get("LastEvaluatedKey")
            if not cursor:
                report.complete = True
                report.completed_at = iso(self.clock())
            if not dry_run:
                self._save(report, cursor)
            if report.complete:
                break
        return report

    def _page(self, items: Sequence[Item], done: Totals, *, dry_run: bool) -> None:
        later: list[Write] = []  # deletes of this page's markers and v1 HEADs, after their puts
        for item in items:
            done.scanned += 1
            plan = plan_item(item)
            if plan.kind == "session":
                calls = self._calls_of(text(item, "PK"))
                session = plan_session(item, calls)
                done.sessions += 1
                done.calls += session.calls
                done.writes += len(session.writes)
                if not dry_run:
                    self._apply(session.writes)
            elif plan.kind == "head":
                done.heads += 1
                done.writes += len(plan.writes)
                if not dry_run:
                    self._apply([w for w in plan.writes if not isinstance(w, Delete)])
                later += [w for w in plan.writes if isinstance(w, Delete)]
            elif plan.kind == "marker":
                done.markers += 1
                done.writes += len(plan.writes)
                later += plan.writes
            elif plan.kind == "keep":  # (v1 calls move with their session record)
                done.kept += 1
        if not dry_run:
            self._apply(later)

    def _calls_of(self, pk: str) -> list[Item]:
        calls: list[Item] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :i)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":i": {"S": "I#"}},
            "ConsistentRead": True,
        }
        while True:
            out = self.client.query(**kwargs)
            calls += out.get("Items", [])
            if "LastEvaluatedKey" not in out:
                return calls
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    # ------------------------------------------------------------------ writes, in order
    def _apply(self, writes: Sequence[Write]) -> None:
        """Run ``writes`` in their order: consecutive unconditional puts / deletes go in
        batches of 25 (each batch finished before the next write starts)."""
        batch: list[dict[str, Any]] = []
        for write in writes:
            if isinstance(write, Put) and not write.if_absent:
                batch.append({"PutRequest": {"Item": write.item}})
            elif isinstance(write, Delete):
                batch.append({"DeleteRequest": {"Key": write.key}})
            else:
                self._flush(batch)
                batch = []
                self._conditional(write)
                continue
            if len(batch) == BATCH:
                self._flush(batch)
                batch = []
        self._flush(batch)

    def _flush(self, requests: list[dict[str, Any]]) -> None:
        # Puts and deletes of one batch never touch the same key (a call's copy and its old
        # item differ in PK); a batch is retried until nothing is left unprocessed.
        pending: dict[str, Any] = {self.table_name: requests} if requests else {}
        for attempt in range(10):
            if not pending:
                return
            out = self.client.batch_write_item(RequestItems=pending)
            pending = out.get("UnprocessedItems") or {}
            if pending:
                time.sleep(min(0.05 * 2**attempt, 2.0))
        raise RuntimeError("DynamoDB kept items unprocessed: run migrate again (it resumes)")

    def _conditional(self, write: Write) -> None:
        try:
            if isinstance(write, Put):
                self.client.put_item(
                    TableName=self.table_name, Item=write.item, ConditionExpression="attribute_not_exists(SK)"
                )
            elif isinstance(write, MarkMigrated):
                self.client.update_item(
                    TableName=self.table_name,
                    Key=write.key,
                    UpdateExpression="SET layout = :v, migrated_at = :now",
                    ConditionExpression="attribute_exists(PK) AND attribute_not_exists(layout)",
                    ExpressionAttributeValues={":v": {"N": str(LAYOUT_VERSION)}, ":now": {"S": iso(self.clock())}},
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # a v2 HEAD written meanwhile is kept; a record marked (or erased) meanwhile is done

    # ------------------------------------------------------------------ checkpoint
    def _checkpoint(self) -> dict[str, Any]:
        out = self.client.get_item(TableName=self.table_name, Key=CHECKPOINT_KEY, ConsistentRead=True)
        return dict(out.get("Item") or {})

    def _save(self, report: MigrationReport, cursor: dict[str, Any] | None) -> None:
        item: dict[str, Any] = {
            **CHECKPOINT_KEY,
            "entity": {"S": "migration"},
            "totals": {"S": json.dumps(report.total.as_dict(), sort_keys=True)},
            "runs": {"N": str(report.runs)},
            "started_at": {"S": report.started_at or iso(self.clock())},
            "updated_at": {"S": iso(self.clock())},
        }
        if cursor:
            item["cursor"] = {"S": json.dumps(cursor, sort_keys=True)}
        if report.completed_at:
            item["completed_at"] = {"S": report.completed_at}
        self.client.put_item(TableName=self.table_name, Item=item)


def migrate(
    table_name: str, *, client: DynamoDBClient, limit: int = 1000, dry_run: bool = False, restart: bool = False
) -> MigrationReport:
    """One bounded run of the migration of ``table_name`` (see :class:`Migrator`)."""
    return Migrator(table_name, client=client).run(limit=limit, dry_run=dry_run, restart=restart)
