"""Delivers the outbox to Slack: at Slack's pace, retried until done, exactly once as seen in
the channel, also after a crash.

A dispatcher reads the due rows and hands each to its channel's lane; a lane delivers its
rows one after another, each under a lease (so a second process cannot send it too), and
re-renders lead messages from the stored state at that moment (repeated updates collapse).
A post whose outcome is unknown (the connection broke, Slack answered 5xx, or the process
died mid-request) is first looked for in the channel's history by its message metadata.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.lead import LeadView
from bot.metrics import Metrics
from bot.policies import PolicyBook
from bot.slack import render
from bot.slack.ids import LEAD_METADATA_TYPE, MESSAGE_METADATA_TYPE
from bot.slack.pacing import Pace, Pacer
from bot.traffic import Traffic
from storage.outbox import Kind, OutboxItem, OutboxStore
from storage.repository import Store

log = logging.getLogger("handoff.outbox")
Clock = Callable[[], datetime]

# Slack answers these when the request may be retried as it is.
TRANSIENT = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
# The app's credentials: nothing gets through until someone fixes them, so keep the rows.
BLOCKED = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
ADVICE = {
    "channel_not_found": "Check the channel ids in sla.yaml (`handoff check`).",
    "not_in_channel": "Invite the app to that channel: `/invite @Handoff`.",
    "is_archived": "The channel is archived: unarchive it or change sla.yaml.",
    "invalid_blocks": "Handoff built a message Slack refused: please report it.",
    "message_not_found": "Its message was deleted in Slack.",
}


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Scan:
    """What a channel's history showed: message ts by metadata key, and from when."""

    started: datetime
    oldest: datetime
    found: dict[str, str] = field(default_factory=dict)


class Outbox:
    """The Notifier of the services: `deliver_soon()` after each commit that wrote rows."""

    def __init__(
        self,
        client: AsyncWebClient,
        rows: OutboxStore,
        store: Store,
        policies: PolicyBook,
        metrics: Metrics,
        clock: Clock,
        pace: Pace | None = None,
        *,
        wall: Clock = wall_clock,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        max_backoff: float = 10.0,
        traffic: Traffic | None = None,
    ) -> None:
        self.client = client
        self.rows = rows
        self.store = store
        self.policies = policies
        self.metrics = metrics
        self.clock = clock  # the business clock: what people see (posted at, due by)
        self.wall = wall  # leases, backoff and history lookups
        self.pacer = Pacer(pace or Pace())
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self.traffic = traffic or Traffic()
        self._wake = asyncio.Event()
        self._lanes: dict[str, asyncio.Queue[tuple[int, str]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._queued: set[int] = set()
        self._failures: dict[str, int] = {}
        self._scans: dict[str, _Scan] = {}
        self._pending = 0
        metrics.gauges["slack_outbox_pending"] = lambda: self._pending
        metrics.probes.append(self._count_pending)

    # --- running ------------------------------------------------------------------------------

    def deliver_soon(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._dispatch(), name="outbox dispatcher"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._lanes.clear()
        self._queued.clear()

    async def _count_pending(self) -> None:
        self._pending = await self.rows.pending()

    async def drain(self, seconds: float = 30.0) -> bool:
        """Wait until nothing is left to deliver (True), or `seconds` pass (False)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self._queued and await self.rows.pending() == 0:
                return True
            await asyncio.sleep(0.02)
        log.warning("Slack deliveries still pending after %.0fs", seconds)
        return False

    async def _dispatch(self) -> None:
        """Hand due rows to their lanes. A wake-up (this process wrote rows) reads only the rows
        after the newest seen; every `poll_seconds` a full read also finds retries coming due,
        expired leases and rows written by other processes."""
        newest, last_full = 0, -self.poll_seconds
        while True:
            self._wake.clear()
            full = time.monotonic() - last_full >= self.poll_seconds
            if full:
                last_full = time.monotonic()
            try:
                due = await self.rows.due(self.wall(), after=0 if full else newest)
            except Exception:
                log.exception("could not read the outbox; trying again shortly")
                due = []
            for row_id, channel, kind in due:
                newest = max(newest, row_id)
                if row_id not in self._queued:
                    self._queued.add(row_id)
                    self._lane(channel).put_nowait((row_id, kind))
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                await asyncio.sleep(0.005)  # gather the wake-ups of a burst into one read
            except TimeoutError:
                pass

    def _lane(self, channel: str) -> asyncio.Queue[tuple[int, str]]:
        lane = self._lanes.get(channel)
        if lane is None:
            lane = self._lanes[channel] = asyncio.Queue()
            task = asyncio.create_task(self._work(channel, lane), name=f"outbox lane {channel}")
            self._tasks.append(task)
        return lane

    async def _work(self, channel: str, lane: asyncio.Queue[tuple[int, str]]) -> None:
        while True:
            row_id, kind = await lane.get()
            try:
                pause = await self._deliver(row_id, kind, channel)
            except Exception:
                log.exception("delivering outbox row %d failed unexpectedly", row_id)
                pause = self.max_backoff
            finally:
                self._queued.discard(row_id)
            if pause:
                await asyncio.sleep(pause)
                self.deliver_soon()

    # --- one row ------------------------------------------------------------------------------

    async def _deliver(self, row_id: int, kind: str, channel: str) -> float:
        """Deliver one row; returns how long its lane should rest before the next."""
        method = "chat.update" if kind == Kind.UPDATE_LEAD else "chat.postMessage"
        await self.traffic.quiet(at_most=0.25)  # acks first: Slack gives them 3 seconds
        await self.pacer.wait(method, channel)
        wall = self.wall()
        item = await self.rows.lease(row_id, wall, wall + self.lease)
        if item is None:
            return 0.0  # delivered or taken meanwhile
        try:
            if item.kind == Kind.UPDATE_LEAD:
                await self._update(item)
            else:
                await self._post(item)
        except SlackApiError as error:
            called = str(error.response.api_url or "").rsplit("/", 1)[-1] or method
            return await self._refused(item, called, error)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            # The request may have reached Slack: a post will be looked for before it is retried.
            return await self._transient(item, f"{type(error).__name__}: {error}", unknown=True)
        self._failures.pop(item.channel, None)
        return 0.0

    async def _refused(self, item: OutboxItem, method: str, error: SlackApiError) -> float:
        response = error.response
        code = str(response.get("error") or f"HTTP {response.status_code}")
        if response.status_code == 429:
            wait = _retry_after(response.headers)
            self.pacer.pause(method, item.channel, wait)
            self.metrics.inc("slack_rate_limited_total")
            await self._retry(
                item, wait, f"ratelimited (Retry-After {wait:g}s)", unknown=item.unknown
            )
            return 0.0
        if response.status_code >= 500 or code in TRANSIENT:
            return await self._transient(item, code, unknown=True)
        if code in BLOCKED:
            log.error("Slack refuses Handoff's token (%s): deliveries wait until it is fixed", code)
            return await self._transient(item, code, unknown=item.unknown)
        await self._give_up(item, code)
        return 0.0

    async def _transient(self, item: OutboxItem, error: str, *, unknown: bool) -> float:
        failures = self._failures[item.channel] = self._failures.get(item.channel, 0) + 1
        backoff = min(self.max_backoff, 0.25 * 2**failures) * random.uniform(0.5, 1.0)
        log.warning(
            "Slack delivery of row %d failed (%s); retrying in %.1fs", item.id, error, backoff
        )
        self.metrics.inc("slack_retries_total")
        # Updates render the state at delivery time, so one that may have arrived is harmless.
        await self._retry(item, backoff, error, unknown=unknown and item.kind != Kind.UPDATE_LEAD)
        return backoff

    async def _retry(self, item: OutboxItem, seconds: float, error: str, *, unknown: bool) -> None:
        wall = self.wall()
        await self.rows.retry(item, wall, wall + timedelta(seconds=seconds), error, unknown=unknown)

    async def _give_up(self, item: OutboxItem, error: str) -> None:
        self.metrics.inc("slack_errors_total")
        lead = await self.store.get(item.lead_id) if item.lead_id is not None else None
        log.error(
            "Slack refused outbox row %d (%s to %s%s): %s; giving up. %s",
            item.id,
            item.kind,
            item.channel,
            f", lead {lead.external_id}" if lead else "",
            error,
            ADVICE.get(error, ""),
        )
        alert = None
        escalations = self.policies.current.channels.escalations
        if escalations and item.kind != Kind.MESSAGE and item.channel != escalations:
            text = render.delivery_alert(item.kind, item.channel, error, ADVICE.get(error), lead)
            alert = (escalations, text)
        await self.rows.failed(item, self.clock(), error, alert)
        if alert:
            self.deliver_soon()

    async def _update(self, item: OutboxItem) -> None:
        lead = await self.store.get(item.lead_id or 0)
        if lead is None:
            await self.rows.delivered(item, self.clock())
            return
        if lead.message_ts is None or lead.message_channel is None:
            if await self.rows.post_waiting(lead.id):  # the post comes first; it shows the latest
                await self._retry(item, 0.2, "waiting for the lead's post", unknown=False)
            else:  # its post failed for good: nothing to update
                await self.rows.delivered(item, self.clock())
            return
        message = render.lead_message(lead, await self.policies.for_lead(lead), self.clock())
        self.metrics.inc("slack_calls_total")
        await self.client.chat_update(
            channel=lead.message_channel,
            ts=lead.message_ts,
            text=message.text,
            blocks=message.blocks,
        )
        await self.rows.delivered(item, self.clock())

    async def _post(self, item: OutboxItem) -> None:
        lead = await self.store.get(item.lead_id) if item.lead_id is not None else None
        if item.kind == Kind.POST_LEAD and (lead is None or lead.posted_at is not None):
            await self.rows.delivered(item, self.clock())  # gone, or adopted meanwhile
            return
        key = _key(item)
        if item.unknown:
            ts = await self._find(item, key)
            if ts is not None:
                log.info("outbox row %d was already in Slack (ts %s): adopted", item.id, ts)
                self.metrics.inc("slack_adopted_total")
                await self.rows.delivered(item, self.clock(), ts)
                return
        message = await self._message(item, lead)
        if message is None:
            await self.rows.delivered(item, self.clock())
            return
        event_type = LEAD_METADATA_TYPE if item.kind == Kind.POST_LEAD else MESSAGE_METADATA_TYPE
        payload: dict[str, Any] = {"key": key, "outbox_id": item.id}
        if lead is not None:
            payload |= {"lead_id": lead.id, "external_id": lead.external_id}
        self.metrics.inc("slack_calls_total")
        response = await self.client.chat_postMessage(
            channel=item.channel,
            text=message.text,
            blocks=message.blocks or None,
            thread_ts=item.payload.get("thread_ts"),
            metadata={"event_type": event_type, "event_payload": payload},
            unfurl_links=False,
            unfurl_media=False,
        )
        await self.rows.delivered(item, self.clock(), str(response["ts"]), response.get("channel"))
        self.metrics.inc(_COUNTER[item.kind])

    async def _message(self, item: OutboxItem, lead: LeadView | None) -> render.Message | None:
        if item.kind == Kind.MESSAGE:
            return render.Message(
                str(item.payload.get("text", "")), item.payload.get("blocks") or []
            )
        if lead is None:
            return None
        policy = await self.policies.for_lead(lead)
        if item.kind == Kind.POST_LEAD:
            return render.lead_message(lead, policy, self.clock())
        if item.kind == Kind.FEEDBACK:
            return render.feedback_message(lead, policy)
        return render.nurture_notice(lead)

    # --- reconciliation -----------------------------------------------------------------------

    async def _find(self, item: OutboxItem, key: str) -> str | None:
        """The ts of the message this row already posted, if the channel's history has it.

        One scan of the channel serves every row whose earlier requests were over before the
        scan began (after an outage, hundreds of rows share one or two scans).
        """
        oldest = (item.first_try_at or self.wall()) - timedelta(minutes=2)
        scan = self._scans.get(item.channel)
        if scan is None or scan.oldest > oldest or scan.started < (item.tried_until or oldest):
            scan = _Scan(started=self.wall(), oldest=oldest)
            cursor = None
            while True:
                await self.pacer.wait("conversations.history", item.channel)
                self.metrics.inc("slack_calls_total")
                try:
                    page = await self.client.conversations_history(
                        channel=item.channel,
                        oldest=f"{oldest.timestamp():.6f}",
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
                except SlackApiError as error:
                    if error.response.get("error") != "missing_scope":
                        raise
                    # A lost lead is worse than a possible duplicate: post, and say why.
                    log.error(
                        "cannot read the history of %s (missing_scope: add channels:history "
                        "and groups:history, see manifest.yaml); posting outbox row %d again "
                        "without checking whether Slack already has it",
                        item.channel,
                        item.id,
                    )
                    return None
                for message in page.get("messages") or []:
                    meta = (message.get("metadata") or {}).get("event_payload") or {}
                    if isinstance(meta, dict) and meta.get("key"):
                        scan.found.setdefault(str(meta["key"]), str(message["ts"]))
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
            self._scans[item.channel] = scan
        return scan.found.get(key)


_COUNTER = {
    Kind.POST_LEAD: "leads_posted_total",
    Kind.FEEDBACK: "feedback_posted_total",
    Kind.NURTURE_NOTICE: "feedback_posted_total",
    Kind.MESSAGE: "alerts_posted_total",
}


def _key(item: OutboxItem) -> str:
    """What identifies the message in Slack: a lead has one post; other rows their own."""
    if item.kind == Kind.POST_LEAD:
        cycle = int(item.payload.get("cycle") or 1)  # a recycled lead is posted again
        return f"lead:{item.lead_id}" if cycle == 1 else f"lead:{item.lead_id}:c{cycle}"
    return f"outbox:{item.id}"


def _retry_after(headers: Any) -> float:
    value = None
    if headers is not None:
        value = headers.get("Retry-After") or headers.get("retry-after")
        if isinstance(value, list):
            value = value[0] if value else None
    try:
        return max(1.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0
