"""Analysis state on the session record and the per-day usage counter."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from session_tracker.errors import (
    StoreConflict,
)
from session_tracker.models import (
    AnalysisState,
    AnalysisUsage,
    SessionMeta,
    iso,
)
from session_tracker.store.codec import (
    _values,
    deserialize,
    item_to_meta,
    serialize,
)
from session_tracker.store.dynamo_base import DynamoBase
from session_tracker.store.keys import (
    GSI1,
    USAGE_TTL,
    session_key,
    usage_key,
)


class AnalysisMixin(DynamoBase):
    """:class:`~session_tracker.store.ports.AnalysisStore` on DynamoDB (reads from :class:`ReadingMixin`)."""

    def previous_sessions(self, student_id: str, before: datetime, *, limit: int) -> list[SessionMeta]:
        """The student's sessions that started before ``before``, newest first (GSI1), small fields only."""
        if limit <= 0:
            return []
        names: tuple[str, ...] = ("session_id", "student_id", "start_time", "last_activity", "end_time", "status")
        names += ("interaction_count", "subjects", "session_summary", "analysis")
        out = self.client.query(
            TableName=self.table_name,
            IndexName=GSI1,
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk < :before",
            ExpressionAttributeValues=_values(pk=f"STUDENT#{student_id}", before=iso(before)),
            ProjectionExpression=", ".join(f"#{n}" for n in range(len(names))),
            ExpressionAttributeNames={f"#{n}": name for n, name in enumerate(names)},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [item_to_meta(deserialize(raw)) for raw in out.get("Items", [])]

    def get_analysis_state(self, session_id: str) -> AnalysisState | None:
        """Status, pending flags and current analysis of a session (consistent read)."""
        names: tuple[str, ...] = ("session_id", "student_id", "status", "start_time", "pending_analysis")
        names += ("content_updated_at", "analysis_trigger", "analysis")
        out = self.client.get_item(
            TableName=self.table_name,
            Key=serialize(session_key(session_id)),
            ConsistentRead=True,
            ProjectionExpression=", ".join(f"#{n}" for n in range(len(names))),
            ExpressionAttributeNames={f"#{n}": name for n, name in enumerate(names)},
        )
        if "Item" not in out:
            return None
        item = deserialize(out["Item"])
        return AnalysisState(
            session_id=item["session_id"],
            student_id=item["student_id"],
            status=item["status"],
            start_time=item["start_time"],
            pending=bool(item.get("pending_analysis")),
            content_updated_at=item.get("content_updated_at"),
            trigger=item.get("analysis_trigger"),
            analysis=item.get("analysis"),
        )

    def request_analysis(self, session_id: str, *, now: datetime, trigger: str) -> None:
        """Set ``pending_analysis`` (and ``content_updated_at``) so the stream runs the analyzer.

        The stream filter fires on the flag's rising edge, so a flag left set (an analysis
        that never finished) is first cleared, then set again. :class:`StoreConflict` when
        the session does not exist.
        """
        key = serialize(session_key(session_id))
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="REMOVE pending_analysis",
                ConditionExpression="attribute_exists(PK) AND pending_analysis = :true",
                ExpressionAttributeValues=_values(true=True),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET pending_analysis = :true, content_updated_at = :now, analysis_trigger = :trigger",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues=_values(true=True, now=iso(now), trigger=trigger),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise StoreConflict(f"session {session_id} does not exist") from exc

    def save_analysis(
        self, session_id: str, analysis: dict[str, Any], *, content_updated_at: str | None, clear_pending: bool
    ) -> bool:
        """Store ``analysis`` on the session; with ``clear_pending``, also clear the flags, but only
        if ``content_updated_at`` is still what the analysis read. ``False``: newer content arrived
        (nothing written; analyse again)."""
        update = "SET analysis = :analysis"
        values: dict[str, Any] = {"analysis": analysis}
        condition = "attribute_exists(PK)"
        if clear_pending:
            update += " REMOVE pending_analysis, analysis_trigger"
            if content_updated_at is None:
                condition += " AND attribute_not_exists(content_updated_at)"
            else:
                condition += " AND content_updated_at = :seen"
                values["seen"] = content_updated_at
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=serialize(session_key(session_id)),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=_values(**values),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def reserve_analysis_slot(self, day: str, *, max_per_day: int, now: datetime) -> bool:
        """Take one of the day's ``max_per_day`` analysis slots (atomic); ``False`` when none is left."""
        if max_per_day <= 0:
            return False
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=serialize(usage_key(day)),
                UpdateExpression="ADD sessions :one SET updated_at = :now, entity = :entity, expires_at = :exp",
                ConditionExpression="attribute_not_exists(sessions) OR sessions < :max",
                ExpressionAttributeValues=_values(
                    one=1,
                    max=max_per_day,
                    now=iso(now),
                    entity="usage",
                    exp=int((now + USAGE_TTL).timestamp()),
                ),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def release_analysis_slot(self, day: str) -> None:
        """Give back a slot taken for a model call that failed (counted as a failure)."""
        self.client.update_item(
            TableName=self.table_name,
            Key=serialize(usage_key(day)),
            UpdateExpression="ADD sessions :minus, failures :one",
            ExpressionAttributeValues=_values(minus=-1, one=1),
        )

    def record_usage(self, day: str, *, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
        """Add one analysis's tokens and estimated cost to the day's totals."""
        adds = ["analyses :one", "input_tokens :in", "output_tokens :out"]
        values: dict[str, Any] = {"one": 1, "in": input_tokens, "out": output_tokens}
        if cost_usd is not None:
            adds.append("cost_usd :cost")
            values["cost"] = Decimal(f"{cost_usd:.8f}")
        self.client.update_item(
            TableName=self.table_name,
            Key=serialize(usage_key(day)),
            UpdateExpression="ADD " + ", ".join(adds),
            ExpressionAttributeValues=_values(**values),
        )

    def get_usage(self, day: str) -> AnalysisUsage:
        """The day's analysis totals (zeros when nothing ran that day)."""
        out = self.client.get_item(TableName=self.table_name, Key=serialize(usage_key(day)), ConsistentRead=True)
        item = deserialize(out.get("Item") or {})
        return AnalysisUsage(
            date=day,
            **{k: item[k] for k in ("sessions", "analyses", "failures", "input_tokens", "output_tokens") if k in item},
            cost_usd=round(float(item.get("cost_usd", 0)), 6),
        )
