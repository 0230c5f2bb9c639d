"""Bolt middleware that observes each Slack request: how long Slack waits for the answer (the
ack histogram), and who and where it came from (the log fields)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bot import logs
from bot.metrics import Metrics

_KINDS = frozenset(
    {"block_actions", "view_submission", "view_closed", "event_callback", "url_verification"}
)


def request_kind(body: Mapping[str, Any]) -> str:
    """What a Slack request is, for the ack histogram: `command`, `block_actions`, …"""
    if body.get("command"):
        return "command"
    kind = str(body.get("type") or "")
    return kind if kind in _KINDS else "other"


def _id(value: Any) -> str | None:
    """An id from a field that is either `"T0…"` or `{"id": "T0…"}`."""
    found = value.get("id") if isinstance(value, Mapping) else value
    return found if isinstance(found, str) and found else None


def slack_fields(body: Mapping[str, Any]) -> dict[str, str | None]:
    """The Slack team, user and channel a request came from, for the log lines."""
    event = body.get("event") if isinstance(body.get("event"), Mapping) else {}
    assert isinstance(event, Mapping)
    return {
        "team": _id(body.get("team")) or _id(body.get("team_id")),
        "user": _id(body.get("user")) or _id(body.get("user_id")) or _id(event.get("user")),
        "channel": _id(body.get("channel"))
        or _id(body.get("channel_id"))
        or _id(event.get("channel")),
    }


def observed(metrics: Metrics) -> Callable[..., Awaitable[None]]:
    """Bolt middleware (the first): each request's log fields, and how long it takes to
    answer, by kind, over HTTP and Socket Mode alike (`process_before_response`: the answer
    goes when the listener returns)."""

    async def middleware(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> None:
        logs.bind(**slack_fields(body))
        started = time.perf_counter()
        try:
            await next()
        finally:
            kind = request_kind(body)
            metrics.ack_seconds.labels(kind=kind).observe(time.perf_counter() - started)

    return middleware
