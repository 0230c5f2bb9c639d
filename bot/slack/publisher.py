"""The Slack Web API client, and the private answers sent after a request's ack."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookResponse

from bot.domain.retry_after import SLACK_MOST, header_seconds
from bot.metrics import Metrics

log = logging.getLogger("handoff.slack")
Clock = Callable[[], datetime]
# Seconds: the longest 429 wait a call sleeps through before it tries again itself. A longer one
# is its caller's to wait (the members' reads pause):
# a person or a CRM is waiting for the call's answer meanwhile. Slack's waits are seconds to a
# minute (its tiers count calls per minute).
IN_CALL_WAIT = 60.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def slack_client(token: str, base_url: str, *, retries: bool = True) -> AsyncWebClient:
    """A Web API client on one pooled aiohttp session (without one, slack_sdk opens a new
    connection for every call). Call inside the running event loop.

    With `retries` it retries 429s (after Retry-After), 5xx and connection errors itself,
    for answers to a request. The outbox's client has none: the outbox retries durably, and
    must know when a request may have reached Slack.
    """
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    client = AsyncWebClient(token=token, base_url=base_url, timeout=10, session=session)
    if not retries:
        client.retry_handlers.clear()
        return client
    client.retry_handlers.extend(
        [
            BoundedRateLimitRetry(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=3),
        ]
    )
    if not any(isinstance(h, AsyncConnectionErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(AsyncConnectionErrorRetryHandler(max_retry_count=3))
    return client


class BoundedRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's retry of a 429 after its `Retry-After`, read as bot/domain/retry_after.py
    reads it: the SDK's own `int(value)` raised ValueError for `inf` or an HTTP-date, and slept
    as long as any number asked (a call held for years). A wait over IN_CALL_WAIT is not slept
    through: the 429 goes to the caller."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return (
            response is not None
            and response.status_code == 429
            and _wait(response) <= (IN_CALL_WAIT)
        )

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            raise error or RuntimeError("a 429 retried without its answer")
        state.next_attempt_requested = True
        await asyncio.sleep(_wait(response) + random.random())  # jitter, as slack_sdk's
        state.increment_current_attempt()


def _wait(response: HttpResponse) -> float:
    """A 429's `Retry-After` in seconds (1 when there is none readable), at most SLACK_MOST."""
    return header_seconds(response.headers, time.time(), default=1.0, most=SLACK_MOST)


class SlackPublisher:
    """Sends the private answers to a request (ephemeral replies, modals) after its ack.

    They change no state, so they need no outbox: if one is lost, the person presses again.
    Everything that follows a state change goes through the outbox (bot/slack/outbox.py).
    Answers share a few workers (`spawn`); a modal opens on its own task (`open_modal`).
    """

    def __init__(self, metrics: Metrics, workers: int = 4) -> None:
        self.metrics = metrics
        self.workers = workers
        self._queue: asyncio.Queue[tuple[Coroutine[Any, Any, Any], str]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._modals: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._sending: list[str] = []  # what each answer under way is ("answer /sla-report")
        metrics.gauge("slack_queue_depth", self.pending)

    def pending(self) -> int:
        """Answers queued or under way."""
        return self._pending

    def spawn(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        """Queue a Slack call; a few workers deliver the queue, after the acks."""
        self._queue.put_nowait((work, what))
        self._pending += 1
        if len(self._tasks) < self.workers:
            task = asyncio.get_running_loop().create_task(self._work())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def open_modal(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        """Open a modal (`views.open`) at once, on its own task, never behind the queue.

        Its trigger_id is valid for 3 seconds, and the queue's workers may all be drawing a
        report's charts. A modal is opened per press, so these tasks are as many as presses."""
        self._pending += 1
        task = asyncio.get_running_loop().create_task(self._guard(work, what))
        self._modals.add(task)
        task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[None]) -> None:
        self._modals.discard(task)
        self._pending -= 1

    async def _work(self) -> None:
        while True:
            work, what = await self._queue.get()
            try:
                await self._guard(work, what)
            finally:
                self._pending -= 1
                self._queue.task_done()

    async def _guard(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        self._sending.append(what)
        try:
            answered = await work
        except SlackApiError as error:
            self.metrics.inc("slack_errors_total")
            log.error("Slack refused to %s: %s", what, error.response.get("error", error))
        except Exception:
            self.metrics.inc("slack_errors_total")
            log.exception("could not %s", what)
        else:
            # A response_url's refusal (a URL used 5 times, or older than 30 minutes: 404
            # `used_url`, `expired_url`) comes back without an exception: an error all the same.
            if isinstance(answered, WebhookResponse) and answered.status_code >= 400:
                self.metrics.inc("slack_errors_total")
                body = str(answered.body)[:100]
                log.error("Slack refused to %s: %d %s", what, answered.status_code, body)
        finally:
            self._sending.remove(what)

    async def drain(self, seconds: float = 30.0) -> None:
        """Wait until every queued answer and every modal has been sent (shutdown, tests)."""
        try:
            await asyncio.wait_for(self._all_sent(), seconds)
        except TimeoutError:
            under_way = ", ".join(self._sending) or "none"
            count = self._pending
            log.warning(
                "%d Slack %s still queued or under way after %gs (under way: %s)",
                count,
                "answer was" if count == 1 else "answers were",
                seconds,
                under_way,
            )

    async def _all_sent(self) -> None:
        await self._queue.join()
        while self._modals:
            await asyncio.wait(list(self._modals))

    async def close(self) -> None:
        """Stop the workers and the modals opening; answers still queued are dropped with a
        log line."""
        running = list(self._tasks | self._modals)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        while not self._queue.empty():
            work, what = self._queue.get_nowait()
            work.close()
            log.warning("dropped at shutdown: %s", what)
