"""Webhook deliveries become the metrics the dashboard and alarms read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from session_tracker import observability


@pytest.mark.parametrize(
    ("outcome", "status", "strategy", "expected"),
    [
        ("merged", "completed", "student_id", ["VapiMessages", "SessionsCompleted", "MatchesStudentId"]),
        ("merged", "completed", "explicit", ["VapiMessages", "SessionsCompleted", "MatchesExplicit"]),
        ("created", "completed", "time_window", ["VapiMessages", "SessionsCompleted", "MatchesTimeWindow"]),
        ("created", "unmatched", "none", ["VapiMessages", "UnmatchedReports", "MatchesNone"]),
        ("duplicate", "completed", "explicit", ["VapiMessages", "DuplicateDeliveries"]),
        ("ignored", None, None, ["VapiMessages"]),
    ],
)
def test_platform_delivery_metrics(monkeypatch, outcome, status, strategy, expected) -> None:
    seen: list[str] = []
    monkeypatch.setattr(observability, "count", lambda name, *a, **k: seen.append(name))
    result = SimpleNamespace(outcome=outcome, status=status, strategy=strategy)
    observability.count_platform_delivery(result, received_metric="VapiMessages")
    assert seen == expected
