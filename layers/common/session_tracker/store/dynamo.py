"""The DynamoDB store: one table, one module per access pattern, composed here.

Each mixin implements one caller's protocol of :mod:`session_tracker.store.ports`
(``dynamo_ingest``, ``dynamo_platform``, ``dynamo_closer``, ``dynamo_analysis``,
``dynamo_reading``, ``dynamo_views``, ``dynamo_keys``, ``dynamo_audit``, ``dynamo_erasure``); they share the client, table and transaction helpers of
``dynamo_base`` and the key formats of ``keys``. A new access pattern is a new
``dynamo_<name>.py`` mixin added to :class:`DynamoStore`'s bases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from session_tracker.store.dynamo_analysis import AnalysisMixin
from session_tracker.store.dynamo_audit import AuditMixin
from session_tracker.store.dynamo_closer import CloserMixin
from session_tracker.store.dynamo_erasure import ErasureMixin
from session_tracker.store.dynamo_ingest import IngestMixin
from session_tracker.store.dynamo_keys import KeysMixin
from session_tracker.store.dynamo_platform import PlatformMixin
from session_tracker.store.dynamo_reading import ReadingMixin
from session_tracker.store.dynamo_review import ReviewMixin
from session_tracker.store.dynamo_toolcalls import ToolCallMixin
from session_tracker.store.dynamo_views import ViewsMixin
from session_tracker.store.settings import StoreSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoStore(
    IngestMixin,
    PlatformMixin,
    CloserMixin,
    AnalysisMixin,
    ReadingMixin,
    ToolCallMixin,
    ReviewMixin,
    ViewsMixin,
    KeysMixin,
    AuditMixin,
    ErasureMixin,
):
    """:class:`~session_tracker.store.ports.SessionStore` on one DynamoDB table."""

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, client: DynamoDBClient | None = None) -> DynamoStore:
        """The store a function uses: table, retention and page-token key from its settings."""
        return cls(
            settings.table_name,
            client=client,
            retention_days=settings.retention_days,
            cursor_secret=settings.cursor_secret,
            cursor_secret_arn=settings.cursor_secret_arn,
        )
