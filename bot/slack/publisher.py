"""Delivers Slack side effects after the commit, off the request path, re-rendering from state."""

from __future__ import annotations

import asyncio
import logging
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
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.lead import Stage
from bot.metrics import Metrics
from bot.policies import PolicyBook
from bot.slack import render
from bot.slack.ids import LEAD_METADATA_TYPE
from storage.repository import Store

log = logging.getLogger("handoff.slack")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def slack_client(token: str, base_url: str) -> AsyncWebClient:
    """A Web API client that retries 429s (after Retry-After), 5xx and connection errors.

    It keeps one aiohttp session (pooled keep-alive connections): without one, slack_sdk
    opens a new connection for every call. Call inside the running event loop.
    """
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    client = AsyncWebClient(token=token, base_url=base_url, timeout=10, session=session)
    client.retry_handlers.extend(
        [
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=3),
        ]
    )
    if not any(isinstance(h, AsyncConnectionErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(AsyncConnectionErrorRetryHandler(max_retry_count=3))
    return client


class SlackPublisher:
    """Implements the services' Notifier: posts, updates in place, and marketing feedback."""

    def __init__(
        self,
        client: AsyncWebClient,
        store: Store,
        policies: PolicyBook,
        metrics: Metrics,
        clock: Clock = utc_now,
        workers: int = 1,
    ) -> None:
        self.client = client
        self.store = store
        self.policies = policies
        self.metrics = metrics
        self.clock = clock
        self.workers = workers
        self._queue: asyncio.Queue[tuple[Coroutine[Any, Any, Any], str]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refreshing: set[int] = set()
        self._pending = 0
        metrics.gauges["slack_queue_depth"] = self.pending
        self._dirty: set[int] = set()

    # --- Notifier -----------------------------------------------------------------------------

    def lead_created(self, lead_id: int) -> None:
        self.spawn(self._post_new(lead_id), f"post lead {lead_id}")

    def lead_changed(self, lead_id: int) -> None:
        # Updates of one lead are collapsed and sent in order: each re-renders the latest state.
        if lead_id in self._refreshing:
            self._dirty.add(lead_id)
            return
        self._refreshing.add(lead_id)
        self.spawn(self._refresh(lead_id), f"update lead {lead_id}")

    def lead_dispositioned(self, lead_id: int) -> None:
        self.spawn(self._feedback(lead_id), f"feedback for lead {lead_id}")

    # --- background tasks ---------------------------------------------------------------------

    def pending(self) -> int:
        """Slack calls queued or under way."""
        return self._pending

    def spawn(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        """Queue a Slack call. A few workers deliver the queue, so a burst of button presses
        is answered first and its message updates follow, instead of competing with the acks.
        """
        self._queue.put_nowait((work, what))
        self._pending += 1
        if len(self._tasks) < self.workers:
            task = asyncio.get_running_loop().create_task(self._work())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _work(self) -> None:
        while True:
            work, what = await self._queue.get()
            try:
                await self._guard(work, what)
            finally:
                self._pending -= 1
                self._queue.task_done()

    async def _guard(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        try:
            await work
        except SlackApiError as error:
            self.metrics.inc("slack_errors_total")
            log.error("Slack refused to %s: %s", what, error.response.get("error", error))
        except Exception:
            self.metrics.inc("slack_errors_total")
            log.exception("could not %s", what)

    async def drain(self, seconds: float = 30.0) -> None:
        """Wait until every queued Slack call has been delivered (shutdown, tests)."""
        try:
            await asyncio.wait_for(self._queue.join(), seconds)
        except TimeoutError:
            left = self._queue.qsize()
            log.warning("%d Slack calls were still queued after %.0fs", left, seconds)

    async def close(self) -> None:
        """Stop the workers; calls still queued are dropped with a log line."""
        for task in list(self._tasks):
            task.cancel()
        while not self._queue.empty():
            work, what = self._queue.get_nowait()
            work.close()
            log.warning("dropped at shutdown: %s", what)

    # --- the effects --------------------------------------------------------------------------

    async def _post_new(self, lead_id: int) -> None:
        lead = await self.store.get(lead_id)
        if lead is None or lead.posted_at is not None:
            return
        policy = await self.policies.for_lead(lead)
        if lead.stage is not Stage.MQL:
            notice = render.nurture_notice(lead)
            await self._post(policy.channels.marketing_feedback, notice)
            return
        message = render.lead_message(lead, policy, self.clock())
        metadata = {
            "event_type": LEAD_METADATA_TYPE,
            "event_payload": {"lead_id": lead.id, "external_id": lead.external_id},
        }
        response = await self._post(lead.channel, message, metadata=metadata)
        await self.store.mark_posted(lead.id, response["channel"], response["ts"], self.clock())
        self.metrics.inc("leads_posted_total")
        if lead_id in self._dirty:  # changed while the post was in flight
            self.lead_changed(lead_id)

    async def _refresh(self, lead_id: int) -> None:
        try:
            while True:
                self._dirty.discard(lead_id)
                lead = await self.store.get(lead_id)
                if lead is None or lead.message_ts is None or lead.message_channel is None:
                    return
                policy = await self.policies.for_lead(lead)
                message = render.lead_message(lead, policy, self.clock())
                self.metrics.inc("slack_calls_total")
                await self.client.chat_update(
                    channel=lead.message_channel,
                    ts=lead.message_ts,
                    text=message.text,
                    blocks=message.blocks,
                )
                if lead_id not in self._dirty:
                    return
        finally:
            self._refreshing.discard(lead_id)

    async def _feedback(self, lead_id: int) -> None:
        lead = await self.store.get(lead_id)
        if lead is None:
            return
        policy = await self.policies.for_lead(lead)
        await self._post(policy.channels.marketing_feedback, render.feedback_message(lead, policy))
        await self.store.add_event(
            lead_id,
            "feedback_posted",
            "handoff",
            self.clock(),
            {"channel": policy.channels.marketing_feedback},
        )
        self.metrics.inc("feedback_posted_total")

    async def _post(
        self, channel: str, message: render.Message, metadata: dict[str, Any] | None = None
    ) -> Any:
        self.metrics.inc("slack_calls_total")
        return await self.client.chat_postMessage(
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            metadata=metadata,
            unfurl_links=False,
            unfurl_media=False,
        )
