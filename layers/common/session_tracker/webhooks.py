"""What every signed platform webhook handler does once the request is authenticated."""

from __future__ import annotations

from datetime import datetime

from session_tracker.matching import MatchSettings, WebhookResult, ingest_platform_event
from session_tracker.observability import count, count_platform_delivery, logger
from session_tracker.platforms.base import PlatformEvent
from session_tracker.runtime import Deps


def receive(event: PlatformEvent, *, deps: Deps, now: datetime, received_metric: str) -> WebhookResult:
    """Match and merge ``event`` (idempotent), count it, and log ids only (never content)."""
    result = ingest_platform_event(
        event, store=deps.store, blobs=deps.blobs, now=now, settings=MatchSettings.from_config(deps.config)
    )
    count_platform_delivery(result, received_metric=received_metric)
    if event.kind == "ignored" and event.ended_reason:
        count("CallInitiationFailures")  # a call that never connected (acknowledged, not stored)
    logger.info(
        f"{event.platform} webhook",
        extra={
            "platform": event.platform,
            "message_type": event.message_type,
            "outcome": result.outcome,
            "session_id": result.session_id,
            "strategy": result.strategy,
            "call_id": event.call_id,
            "ended_reason": event.ended_reason if event.kind == "ignored" else None,
        },
    )
    return result
