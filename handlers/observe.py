"""How each Slack request is observed: how long Slack waits for the answer (the ack histogram,
timed around Bolt's whole dispatch, over HTTP in handlers/http_routes.py and over Socket Mode
here), and who and where it came from (the log fields, bound by a Bolt middleware)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot import logs
from bot.metrics import Metrics
from handlers.socket_client import OverlappingSocketModeClient

_KINDS = frozenset(
    {"block_actions", "view_submission", "view_closed", "event_callback", "url_verification"}
)

# Every value `request_kind` gives: each reads 0 from the start (`Metrics.start_at_zero`).
REQUEST_KINDS = ("command", *sorted(_KINDS), "other")


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


def observed() -> Callable[..., Awaitable[None]]:
    """Bolt middleware (the first): each request's log fields. Not its time: Bolt runs the
    listener after the whole middleware chain has returned (`next()` only lets it go on)."""

    async def middleware(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> None:
        logs.bind(**slack_fields(body))
        await next()

    return middleware


class TimedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, each envelope timed from its arrival to its acknowledgement
    (`process_before_response`: the answer goes when the listener returns), by kind."""

    def __init__(self, app: AsyncApp, app_token: str | None, metrics: Metrics) -> None:
        # Bolt's own __init__, with a client whose reconnects overlap (Slack's refreshes lose
        # no press: handlers/socket_client.py) in place of slack_sdk's.
        self.app = app
        self.app_token = app_token or ""
        self.client = OverlappingSocketModeClient(
            app_token=self.app_token, logger=app.logger, web_client=app.client, ping_interval=10
        )
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]
        self.metrics = metrics
        # The requests under way, for `finish`: slack_sdk runs each in a task it keeps no
        # hold of, and its close() does not wait for them.
        self.under_way: set[asyncio.Task[Any]] = set()
        self.stopping = False

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        if self.stopping:  # as the HTTP listener, closed: not taken on, not acknowledged
            return
        task = asyncio.current_task()
        if task is not None:
            self.under_way.add(task)
        started = time.perf_counter()
        try:
            await super().handle(client, req)
        finally:
            if task is not None:
                self.under_way.discard(task)
            kind = request_kind(req.payload if isinstance(req.payload, Mapping) else {})
            self.metrics.ack_seconds.labels(kind=kind).observe(time.perf_counter() - started)

    async def finish(self, grace: float) -> None:
        """Take no more requests and let those under way finish (and be acknowledged, while
        the connection is open) for up to `grace` seconds, as the HTTP server's shutdown does
        (docs/operations.md: SIGTERM lets the requests under way finish)."""
        self.stopping = True
        if self.under_way:
            await asyncio.wait(set(self.under_way), timeout=grace)
