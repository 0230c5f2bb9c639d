"""Delivers Slack side effects after the commit, off the request path, re-rendering from state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

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
    """A Web API client that retries 429s (after Retry-After), 5xx and connection errors."""
    client = AsyncWebClient(token=token, base_url=base_url, timeout=10)
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
    ) -> None:
        self.client = client
        self.store = store
        self.policies = policies
        self.metrics = metrics
        self.clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._refreshing: set[int] = set()
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

    def spawn(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        task = asyncio.get_running_loop().create_task(self._guard(work, what))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        """Wait for the Slack calls under way (used at shutdown and by tests)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while self._tasks and asyncio.get_running_loop().time() < deadline:
            await asyncio.wait(
                set(self._tasks), timeout=deadline - asyncio.get_running_loop().time()
            )

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
