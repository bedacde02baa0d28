"""Per-call platform metadata, platform-neutral (``platform_metadata``) and VAPI's view.

Every adapter's :class:`~session_tracker.platforms.base.PlatformEvent` becomes one
*call entry*::

    {"platform": "retell", "call_id": "call_...", "cost_usd": 0.1813,
     "ended_reason": "user_hangup", "duration_seconds": 146.5,
     "started_at": "...Z", "ended_at": "...Z", ...platform extras}

A session with one call stores that entry as its ``platform_metadata``. A session
that took several calls stores the latest call's ``call_id`` / ``ended_reason``, the
summed ``cost_usd`` and ``duration_seconds``, and every entry under ``calls``.
``vapi_metadata`` (VAPI sessions only) is the v1 view of the same facts:
``{call_id, cost, ended_reason, ...}`` with ``cost`` in USD as VAPI reports it.
"""

from __future__ import annotations

from typing import Any

SUMMED = ("cost_usd", "duration_seconds", "cost")
"""Numeric fields that add up over a session's calls."""
LATEST = ("platform", "call_id", "ended_reason")
"""Fields a multi-call session takes from its latest call."""


def _calls(meta: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(meta.get("calls"), list) and meta["calls"]:
        return [c for c in meta["calls"] if isinstance(c, dict)]
    return [{k: v for k, v in meta.items() if k != "calls"}]


def combine(existing: dict[str, Any] | None, incoming: dict[str, Any] | None) -> dict[str, Any] | None:
    """The metadata of a session that had ``existing`` and now also has ``incoming``.

    Both may be single-call entries or already-combined records; calls are kept in
    order (existing first), never duplicated by call id.
    """
    if not existing:
        return incoming
    if not incoming:
        return existing
    calls = _calls(existing)
    seen = {c.get("call_id") for c in calls if c.get("call_id")}
    calls += [c for c in _calls(incoming) if not c.get("call_id") or c.get("call_id") not in seen]
    if len(calls) == 1:
        return calls[0]
    out: dict[str, Any] = {}
    for name in LATEST:
        value = next((c.get(name) for c in reversed(calls) if c.get(name) is not None), None)
        if value is not None:
            out[name] = value
    for name in SUMMED:
        values = [c[name] for c in calls if isinstance(c.get(name), (int, float)) and not isinstance(c[name], bool)]
        if values:
            out[name] = round(sum(values), 6)
    out["calls"] = calls
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def session_cost_usd(platform_metadata: dict[str, Any] | None, vapi_metadata: dict[str, Any] | None) -> float | None:
    """A session's platform cost in USD, whichever platform it came from (``None``: unknown).

    ``platform_metadata.cost_usd`` (every adapter since v2), else VAPI's ``cost`` (USD), else
    the ``cost`` of v1 non-VAPI records (the generic body's ``cost``, documented as USD).
    """
    for meta, key in ((platform_metadata, "cost_usd"), (vapi_metadata, "cost"), (platform_metadata, "cost")):
        value = _number((meta or {}).get(key))
        if value is not None:
            return value
    return None
