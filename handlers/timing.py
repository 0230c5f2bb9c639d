"""How long Slack waits for each answer: Bolt middleware that feeds the ack histogram."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

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


def timed(metrics: Metrics) -> Callable[..., Awaitable[None]]:
    """Bolt middleware (the first): how long each Slack request takes to answer, by kind, over
    HTTP and Socket Mode alike (`process_before_response`: the answer goes when it returns)."""

    async def middleware(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> None:
        started = time.perf_counter()
        try:
            await next()
        finally:
            kind = request_kind(body)
            metrics.ack_seconds.labels(kind=kind).observe(time.perf_counter() - started)

    return middleware
