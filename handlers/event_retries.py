"""Slack retries an Events API event it thinks went unanswered: over HTTP with
`X-Slack-Retry-Num`, in Socket Mode with the envelope's `retry_attempt` (Bolt passes it on as
the same header). Each event id is taken on once, in the database, so a retry (on this
replica or another, before or after a restart) is acknowledged and not run again.
https://docs.slack.dev/apis/events-api/#retries

Except a retry of an event this process is still running: Slack stops retrying at the first
attempt acknowledged, so acknowledging it would lose the event if the delivery under way then
failed (its error path forgets the id for a retry that would never come). It is answered 503,
not acknowledged, and Slack sends it again later (after 1, then 5 minutes): by then the first
delivery has finished (a repeat, acknowledged) or failed (it runs).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.services.slack_events import SlackEvents
from bot.slack.publisher import Clock

log = logging.getLogger("handoff.events")
ErrorHandler = Callable[..., Awaitable[BoltResponse | None]]
Dispatch = Callable[[AsyncBoltRequest], Coroutine[Any, Any, BoltResponse]]
# The event id the request being dispatched took on (set by `once`, read by `tracking`: Bolt
# runs the middleware and, with process_before_response, the listener in the dispatching task).
_TAKEN: ContextVar[str | None] = ContextVar("taken_event", default=None)


def event_id(body: dict[str, Any]) -> str | None:
    """The `event_id` of an Events API `event_callback`; None for any other request."""
    found = body.get("event_id") if body.get("type") == "event_callback" else None
    return found if isinstance(found, str) and found else None


class EventRetries:
    """A global Bolt middleware (`once`) and a wrapper of the error path (`releasing`)."""

    def __init__(self, events: SlackEvents, clock: Clock) -> None:
        self.events = events
        self.clock = clock
        self.under_way: set[str] = set()  # event ids this process is running now

    async def once(
        self, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Run an event the first time its id is seen; acknowledge any repeat with a bare 200.
        Runs after Bolt's signature check, so no forged request can claim an id."""
        found = event_id(body)
        if found is None:
            await next()
            return None
        if await self.events.first_time(found, self.clock()):
            self.under_way.add(found)
            _TAKEN.set(found)
            await next()
            return None
        if found in self.under_way:
            log.info(
                "event %s is still running: its retry is not acknowledged, so that Slack sends "
                "it again should this delivery fail",
                found,
            )
            return BoltResponse(status=503, body="")
        log.info("event %s was already taken on: acknowledged, not run again", found)
        return BoltResponse(status=200, body="")

    def tracking(self, dispatch: Dispatch) -> Dispatch:
        """Bolt's dispatch, which says when an event taken on has finished (its listener has
        returned or failed): a middleware cannot, Bolt runs the listener after it returns."""

        async def run(request: AsyncBoltRequest) -> BoltResponse:
            token = _TAKEN.set(None)
            try:
                return await dispatch(request)
            finally:
                taken = _TAKEN.get()
                if taken is not None:
                    self.under_way.discard(taken)
                _TAKEN.reset(token)

        return run

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
