"""Slack retries an Events API event it thinks went unanswered: over HTTP with
`X-Slack-Retry-Num`, in Socket Mode with the envelope's `retry_attempt` (Bolt passes it on as
the same header). Each event id is taken on once, in the database, so a retry (on this
replica or another, before or after a restart) is acknowledged and not run again.
https://docs.slack.dev/apis/events-api/#retries
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.response import BoltResponse

from bot.services.slack_events import SlackEvents
from bot.slack.publisher import Clock

log = logging.getLogger("handoff.events")
ErrorHandler = Callable[..., Awaitable[BoltResponse | None]]


def event_id(body: dict[str, Any]) -> str | None:
    """The `event_id` of an Events API `event_callback`; None for any other request."""
    found = body.get("event_id") if body.get("type") == "event_callback" else None
    return found if isinstance(found, str) and found else None


class EventRetries:
    """A global Bolt middleware (`once`) and a wrapper of the error path (`releasing`)."""

    def __init__(self, events: SlackEvents, clock: Clock) -> None:
        self.events = events
        self.clock = clock

    async def once(
        self, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Run an event the first time its id is seen; acknowledge any repeat with a bare 200.
        Runs after Bolt's signature check, so no forged request can claim an id."""
        found = event_id(body)
        if found is None or await self.events.first_time(found, self.clock()):
            await next()
            return None
        log.info("event %s was already taken on: acknowledged, not run again", found)
        return BoltResponse(status=200, body="")

    def releasing(self, failed: ErrorHandler) -> ErrorHandler:
        """The error path, which first forgets a failed event's id so that Slack's retry of it
        runs (Bolt's middleware cannot see a listener's outcome; its error handler can)."""

        async def handle(
            error: Exception, body: dict[str, Any], ack: Any, context: Any, respond: Any
        ) -> BoltResponse | None:
            found = event_id(body)
            if found is not None:
                await self.events.failed(found)
            return await failed(error, body, ack, context, respond)

        return handle
