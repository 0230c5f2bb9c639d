"""Delivers the outbox to Slack: at Slack's pace, retried until done, exactly once as seen in
the channel, also after a crash.

A dispatcher reads the due rows and hands each to its channel's lane; a lane delivers its
rows one after another, each under a lease (so a second process cannot send it too), and
re-renders lead messages from the stored state at that moment (repeated updates collapse).
A post whose outcome is unknown (the connection broke, Slack answered 5xx, or the process
died mid-request) is first looked for in the channel's history by its message metadata.

Files go through Slack's external upload flow: files.getUploadURLExternal, the bytes POSTed to
the URL it returns, then files.completeUploadExternal, which shares the file (a user id's
file goes to their DM, opened with conversations.open). Only that last call shows in the
channel, and it carries no metadata: when its outcome is unknown, the channel's history is
searched for a file of the same name, title and size (two such files within minutes count as
one), after Slack has had a few seconds to show it. A file is uploaded again only if the
history cannot be read, or Slack shows it later than that.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import logs
from bot.domain.effects import Send
from bot.domain.lead import EventView, LeadView
from bot.domain.policy import Policy
from bot.domain.retry_after import SLACK_MOST, header_seconds
from bot.metrics import Metrics
from bot.slack.alert_views import (
    escalations_refused,
    history_unreadable,
    homes_refused,
    publish_failed,
    refusals_alert,
    reposted_alert,
    settled_alert,
)
from bot.slack.blocks import Message
from bot.slack.ids import LEAD_METADATA_TYPE, MESSAGE_METADATA_TYPE
from bot.slack.lead_views import (
    disposition_actor,
    erased_message,
    feedback_message,
    lead_message,
    nurture_notice,
    posted_again,
)
from bot.slack.pacing import Pace, Pacer
from bot.slack.publisher import Clock, NoSlackAnswer, without_password
from bot.traffic import Traffic
from storage.outbox import (
    HOMES_REFUSED,
    KINDS,
    MENDABLE,
    Kind,
    OutboxItem,
    OutboxStore,
    Refusals,
)
from storage.queue import PENDING

log = logging.getLogger("handoff.outbox")

# Slack answers these when the request may be retried as it is (chat.update's reference:
# `update_failed`, "Internal update failure.", Slack's own failure like `internal_error`).
TRANSIENT = frozenset(
    {
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "ratelimited",
        "update_failed",
    }
)
# Slack refused for now, and posted nothing: "Application has posted too many messages"
# (`rate_limited`, an answer of its own, not the 429) and a free workspace's usage limit
# (`message_limit_exceeded`), chat.postMessage's reference; "The channel is in the process of
# migrating and so the message cannot be updated at this time" (`external_channel_migrating`),
# chat.update's. Retried later, as it is.
REFUSED_FOR_NOW = frozenset(
    {"rate_limited", "message_limit_exceeded", "external_channel_migrating"}
)
# The app's credentials: nothing gets through until someone fixes them, so keep the rows.
BLOCKED = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
# What to do when Slack refuses the bot token (an uninstalled app's token, or a revoked one, is
# refused for good: the app is reinstalled, or a new token set).
TOKEN_FIX = (
    "reinstall the app to the workspace (manifest.yaml), or set SLACK_BOT_TOKEN to its new Bot "
    "User OAuth Token and restart"
)
_ONLY_ADMINS = (
    "A Slack admin's setting stops the app posting there: ask a Slack admin to let the app "
    "post in that channel, or change sla.yaml."
)
ADVICE = {
    # Also Slack's answer for a private channel the app is not in; `handoff check` only reads
    # the file, `handoff doctor` asks Slack.
    "channel_not_found": "Check the channel id in sla.yaml against Slack (`handoff doctor`); "
    "if it is a private channel, invite the app: `/invite @Handoff`.",
    "not_in_channel": "Invite the app to that channel: `/invite @Handoff`.",
    "is_archived": "The channel is archived: unarchive it or change sla.yaml.",
    "is_inactive": "The channel is archived: unarchive it or change sla.yaml.",
    "user_disabled": "That person's Slack account is deactivated: take them out of sla.yaml.",
    "user_not_found": "No such person in this workspace: check the user ids in sla.yaml.",
    "invalid_blocks": "Handoff built a message Slack refused: please report it.",
    "message_not_found": "Its message was deleted in Slack.",
    # views.publish: "a `home` view is published but the Home tab isn't enabled for the app".
    "not_enabled": "Turn the Home tab back on in the app's settings (App Home → Home Tab).",
    "not_allowed_token_type": "SLACK_BOT_TOKEN must be the app's Bot User OAuth Token "
    "(xoxb-…): set it and restart.",
    # chat.postMessage: "A workspace preference prevents the authenticated user from posting."
    "restricted_action": _ONLY_ADMINS,
    "restricted_action_read_only_channel": _ONLY_ADMINS,  # "…into a read-only channel."
    "restricted_action_thread_only_channel": _ONLY_ADMINS,  # "…top-level messages into…"
    "restricted_action_non_threadable_channel": _ONLY_ADMINS,  # "…thread replies into…"
    "restricted_action_thread_locked": "An admin locked the lead's thread: unlock it in Slack.",
    "posting_to_channel_denied": _ONLY_ADMINS,  # files.completeUploadExternal
    # "…your admins have disabled sending messages to this channel."
    "ekm_access_denied": "Slack admins have disabled sending messages to that channel "
    "(Enterprise Key Management): ask them to allow it, or change sla.yaml.",
    "missing_scope": "The app lacks a Slack scope this needs: reinstall the app from "
    "manifest.yaml (`handoff doctor` names what is missing).",
    # "Authenticated user does not have permission to update this message."
    "cant_update_message": "Slack lets the app edit only the messages it posted itself: was "
    "Handoff's Slack app replaced by another?",
    "msg_too_long": "Handoff built a message Slack refused: please report it.",
    "no_text": "Handoff built a message Slack refused: please report it.",
}
# What Slack says of a channel that refuses the app's messages, not of one message
# (chat.postMessage's reference: `is_archived` "Channel has been archived.", `restricted_action`
# "A workspace preference prevents the authenticated user from posting.", `ekm_access_denied`
# "…your admins have disabled sending messages to this channel", …). `invalid_blocks` or
# `msg_too_long` refuse one message: the next one gets through.
CHANNEL_REFUSES = frozenset(
    {
        *MENDABLE,
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "ekm_access_denied",
    }
)


class Leads(Protocol):
    """Where the worker reads a lead as it is now (to render its message)."""

    async def get(self, lead_id: int) -> LeadView | None: ...

    async def events(self, lead_id: int) -> list[EventView]: ...


class Policies(Protocol):
    """The SLA versions: the current one, and the one a lead arrived under."""

    current: Policy

    async def for_lead(self, lead: LeadView) -> Policy: ...


class HomeViews(Protocol):
    """One person's App Home as it is now, with `notice` on top."""

    async def view(self, user: str, now: datetime, notice: str | None = None) -> dict[str, Any]: ...


def wall_clock() -> datetime:
    return datetime.now(UTC)


class UploadRefused(Exception):
    """The upload URL did not take the file's bytes (its HTTP status, and what it said)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"upload_failed (HTTP {status}: {body[:200]})")
        self.status = status


@dataclass
class _Scan:
    """What a channel's history showed, and from when: message ts by metadata key, and file
    id by `_file_key`."""

    started: datetime
    oldest: datetime
    found: dict[str, str] = field(default_factory=dict)


class Outbox:
    """The Notifier of the services: `deliver_soon()` after each commit that wrote rows."""

    def __init__(
        self,
        client: AsyncWebClient,
        rows: OutboxStore,
        store: Leads,
        policies: Policies,
        metrics: Metrics,
        clock: Clock,
        pace: Pace | None = None,
        *,
        wall: Clock = wall_clock,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        max_backoff: float = 10.0,
        upload_settle_seconds: float = 5.0,
        probe_seconds: float = 60.0,
        home_probe_seconds: float = 300.0,
        read_limit: int = 1000,
        traffic: Traffic | None = None,
        homes: HomeViews | None = None,
        names: Mapping[str, str] | None = None,
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
        self.read_limit = read_limit  # the rows a dispatcher's read takes at most, oldest first
        self.max_backoff = max_backoff
        # A shared file reaches the channel's history shortly after completeUploadExternal.
        self.upload_settle = timedelta(seconds=upload_settle_seconds)
        # While Slack refuses the bot token: why (its error code, or the event that said so),
        # and how often auth.test is asked whether it works again.
        self.token_refused: str | None = None
        # How many times auth.test found it working again (the members' reads then catch up).
        self.token_restored = 0
        self.probe_seconds = probe_seconds
        self._token_ok = asyncio.Event()
        self._token_ok.set()
        # While Slack refuses every App Home (HOMES_REFUSED): why, when a waiting home is tried
        # again to ask whether it takes them (on the injected clock), and the row tried.
        self.homes_refused: str | None = None
        self.home_probe = timedelta(seconds=home_probe_seconds)
        self._home_probe_at: datetime | None = None
        self._home_probing: int | None = None
        # Held homes are not due (storage holds them for twice `home_probe`, again at each
        # refusal): the dispatcher makes one due at each try, and all of them once Slack takes
        # homes again (in the outbox, where every replica's reads find them).
        self._release_homes = False
        self._read_all = False  # the dispatcher's next read is a full one
        self.traffic = traffic or Traffic()
        self.homes = homes  # renders App Homes (Kind.HOME)
        self.names = names if names is not None else {}  # display names, for Reassign menus
        # Told of a person Slack refused a DM to as `user_disabled` (the members' reads: a rep
        # deactivated while the `user_change` event was missed has their leads handed on).
        self.disabled: Callable[[str, datetime], Awaitable[None]] | None = None
        self._wake = asyncio.Event()
        self._lanes: dict[str, asyncio.Queue[tuple[int, str]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._queued: set[int] = set()
        self._failures: dict[str, int] = {}
        self._scans: dict[tuple[str, str | None], _Scan] = {}  # (channel, thread) → its scan
        self._dms: dict[str, str] = {}  # user id → the app's DM channel with them
        self._joined: set[str] = set()  # public channels joined to read their history
        self._pending = 0
        self._kinds_seen = set(KINDS)
        self._stopping = False  # closing: start no delivery
        self._delivering = 0  # deliveries under way (leased, their Slack call not answered)
        self._idle = asyncio.Event()  # set while none is under way
        self._idle.set()
        metrics.gauge("slack_outbox_pending", lambda: self._pending)
        metrics.gauge("slack_token_refused", lambda: 0 if self.token_refused is None else 1)
        self._oldest: datetime | None = None  # the oldest pending row's time, as last read
        metrics.outbox_oldest_seconds.set_function(self._oldest_age)
        metrics.probes.append(self._count_pending)

    # --- running ------------------------------------------------------------------------------

    def deliver_soon(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._dispatch(), name="outbox dispatcher"))

    async def close(self, grace: float = 0.0) -> None:
        """Stop delivering. The deliveries under way may finish for up to `grace` seconds (a
        Slack call cut off midway leaves its outcome unknown, and the next start must look in
        the channel's history); the rows not started stay in the outbox for the next start."""
        self._stopping = True
        if self._delivering and grace > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        if self._delivering:
            log.warning("stopping with %d Slack deliveries under way", self._delivering)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._lanes.clear()
        self._queued.clear()

    async def _count_pending(self) -> None:
        """Before a scrape: the pending rows by kind, and the age of the oldest."""
        depth, oldest = await self.rows.backlog()
        self._pending = sum(depth.values())
        self._kinds_seen |= set(depth)  # a kind that drained reads 0, not its last depth
        for kind in self._kinds_seen:
            self.metrics.outbox_depth.labels(kind=kind).set(depth.get(kind, 0))
        self._oldest = oldest

    def _oldest_age(self) -> float:
        """The oldest pending row's age at the scrape, from its time as last read: it goes on
        growing while the database does not answer (nothing is delivered meanwhile)."""
        if self._oldest is None:
            return 0.0
        return max(0.0, (self.clock() - self._oldest).total_seconds())

    async def drain(self, seconds: float = 30.0) -> bool:
        """Wait until nothing is left to deliver (True), or `seconds` pass (False)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            # Homes waiting while Slack refuses them all are not due for delivery.
            homes = self.homes_refused is None
            if not self._queued and await self.rows.pending(homes=homes) == 0:
                return True
            await asyncio.sleep(0.02)
        log.warning("Slack deliveries still pending after %.0fs", seconds)
        return False

    async def _dispatch(self) -> None:
        """Hand due rows to their lanes. A wake-up (this process wrote rows) reads only the rows
        after the newest seen; every `poll_seconds` a full read also finds retries coming due,
        expired leases and rows written by other processes."""
        newest, last_full = 0, -self.poll_seconds
        try:  # another replica, or this process before a restart, found them refused
            refused = await self.rows.home_refused()
        except Exception:
            log.exception("could not read the outbox; trying again shortly")
            refused = None
        if refused is not None:
            self._refuse_homes(refused, probe_now=True)
        while not self._stopping:  # also when a cancellation was lost on the way (gh-86296)
            if not self._token_ok.is_set():  # Slack refuses the token: read nothing meanwhile
                await self._token_ok.wait()
                last_full = -self.poll_seconds  # then read every row due
            self._wake.clear()
            full = self._read_all or time.monotonic() - last_full >= self.poll_seconds
            self._read_all = False
            if full:
                last_full = time.monotonic()
                await self._held_homes_due()
            try:
                after = 0 if full else newest
                due = await self.rows.due(self.wall(), after=after, limit=self.read_limit)
            except Exception:
                log.exception("could not read the outbox; trying again shortly")
                due = []
            held = []
            for row_id, channel, kind in due:
                newest = max(newest, row_id)
                if kind == Kind.HOME and self._home_waits(row_id):
                    held.append(row_id)
                    continue
                if row_id not in self._queued:
                    self._queued.add(row_id)
                    self._lane(channel).put_nowait((row_id, kind))
            if held:  # written since Slack refused them all: held with the others
                await self._hold_homes(held)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that comes as the event is set (gh-86296), and `close` then waited for ever on a
            # dispatcher that went on polling (`handoff forget` hung in CI).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
                await asyncio.sleep(0.005)  # gather the wake-ups of a burst into one read

    def refuse_token(self, why: str) -> None:
        """Slack refuses the bot token (`why`: its error code, or the event that said so): send
        nothing, for every row and every channel alike, until auth.test accepts the token
        again. The rows wait in the outbox as they are: a retry per row and channel would only
        hear the same refusal (and log it) about once a second a channel."""
        if self.token_refused is not None or self._stopping:
            return
        self.token_refused = why
        self._token_ok.clear()
        log.error(
            "Slack refuses Handoff's bot token (%s): no Slack deliveries until it works again "
            "(they wait in the outbox). To fix: %s. Handoff asks Slack (auth.test) every %.0f s "
            "and resumes by itself.",
            why,
            TOKEN_FIX,
            self.probe_seconds,
        )
        self._tasks = [task for task in self._tasks if not task.done()]
        self._tasks.append(asyncio.create_task(self._probe(), name="outbox token probe"))

    async def _probe(self) -> None:
        """Ask auth.test every `probe_seconds` until Slack accepts the token, then resume. The
        wait is counted on the injected clock, as the CRM worker's backoff is (the wall clock
        when serving; in tests a minute passes without sleeping)."""
        due = self.clock() + timedelta(seconds=self.probe_seconds)
        while self.token_refused is not None:
            await asyncio.sleep(min(self.poll_seconds, self.probe_seconds))
            if self.clock() < due:
                continue
            due = self.clock() + timedelta(seconds=self.probe_seconds)
            self.metrics.inc("slack_calls_total")
            try:
                await self.client.auth_test()
            except SlackApiError as error:
                code = error.response.get("error") or f"HTTP {error.response.status_code}"
                log.debug("auth.test: Slack still refuses the bot token (%s)", code)
                continue
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                log.debug("auth.test did not answer (%s: %s)", type(error).__name__, error)
                continue
            log.warning(
                "Slack accepts Handoff's bot token again (it refused it: %s): deliveries resume",
                self.token_refused,
            )
            self.token_refused = None
            self.token_restored += 1
            self._token_ok.set()
            self.deliver_soon()

    def _lane(self, channel: str) -> asyncio.Queue[tuple[int, str]]:
        lane = self._lanes.get(channel)
        if lane is None:
            lane = self._lanes[channel] = asyncio.Queue()
            task = asyncio.create_task(self._work(channel, lane), name=f"outbox lane {channel}")
            self._tasks.append(task)
        return lane

    async def _work(self, channel: str, lane: asyncio.Queue[tuple[int, str]]) -> None:
        while not self._stopping:
            row_id, kind = await lane.get()
            try:
                pause = await self._deliver(row_id, kind, channel)
            except Exception:
                log.exception("delivering outbox row %d failed unexpectedly", row_id)
                pause = self.max_backoff
            finally:
                self._queued.discard(row_id)
                if self._home_probing == row_id:
                    self._home_probing = None
            if pause:
                await asyncio.sleep(pause)
                self.deliver_soon()

    # --- one row ------------------------------------------------------------------------------

    async def _deliver(self, row_id: int, kind: str, channel: str) -> float:
        """Deliver one row; returns how long its lane should rest before the next."""
        method = _METHOD.get(kind, "chat.postMessage")
        await self.traffic.quiet(at_most=0.25)  # acks first: Slack gives them 3 seconds
        await self.pacer.wait(method, channel)
        if self._stopping or self.token_refused is not None:
            return 0.0  # a refused token: the dispatcher hands the row out again once it works
        if kind == Kind.HOME and self._home_waits(row_id):
            return 0.0  # refused for the whole app meanwhile: it waits with the others
        self._delivering += 1
        self._idle.clear()
        try:
            wall = self.wall()
            item = await self.rows.lease(row_id, wall, wall + self.lease)
            if item is None:
                return 0.0  # delivered or taken meanwhile
            with logs.scope(outbox_id=item.id, lead_id=item.lead_id, channel=item.channel):
                return await self._attempt(item)
        finally:
            self._delivering -= 1
            if not self._delivering:
                self._idle.set()

    async def _attempt(self, item: OutboxItem) -> float:
        """Make the row's Slack call; how long its lane should rest before the next."""
        method = _METHOD.get(item.kind, "chat.postMessage")
        try:
            if item.kind == Kind.UPDATE_LEAD:
                await self._update(item)
            elif item.kind == Kind.UPLOAD:
                await self._upload(item)
            elif item.kind == Kind.HOME:
                await self._home(item)
            elif item.kind == Kind.REDACT:
                await self._redact(item)
            elif item.kind == Kind.SETTLE:
                await self._settle(item)
            elif item.kind == Kind.RETIRE:
                await self._retire(item)
            elif item.kind == Kind.RECOUNT:
                await self._recount(item)
            else:
                await self._post(item)
        except SlackApiError as error:
            called = str(error.response.api_url or "").rsplit("/", 1)[-1] or method
            return await self._refused(item, called, error)
        except UploadRefused as error:
            if error.status >= 500 or error.status == 429:
                return await self._transient(item, str(error), unknown=item.unknown)
            await self._give_up(item, str(error))
            return 0.0
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            # The request may have reached Slack: a post will be looked for before it is retried.
            return await self._transient(item, f"{type(error).__name__}: {error}", unknown=True)
        self._failures.pop(item.channel, None)
        lag = (self.clock() - item.created_at).total_seconds()
        self.metrics.delivery_lag_seconds.labels(kind=item.kind).observe(max(0.0, lag))
        return 0.0

    async def _refused(self, item: OutboxItem, method: str, error: SlackApiError) -> float:
        response = error.response
        code = str(response.get("error") or f"HTTP {response.status_code}")
        if response.status_code == 429:
            wait = _retry_after(response.headers, self.wall())
            self.pacer.pause(method, item.channel, wait)
            self.metrics.inc("slack_rate_limited_total")
            await self._retry(
                item, wait, f"ratelimited (Retry-After {wait:g}s)", unknown=item.unknown
            )
            return 0.0
        if isinstance(error, NoSlackAnswer):
            # A proxy's page, not Slack's answer (Slack answers JSON with `ok`): as Slack's 5xx
            # and a dropped answer, the request may have reached Slack (a 200's may hide a
            # post), so a post is looked for in the channel's history before its retry.
            return await self._transient(item, str(error), unknown=True)
        if response.status_code >= 500 or code in TRANSIENT:
            return await self._transient(item, code, unknown=True)
        if code in REFUSED_FOR_NOW:
            return await self._transient(item, code, unknown=item.unknown)
        if code in BLOCKED:  # Slack posted nothing: the row waits with the others, as it is
            self.refuse_token(code)
            await self._retry(item, 0.0, code, unknown=item.unknown)
            return 0.0
        if item.kind == Kind.HOME and code in HOMES_REFUSED:
            await self._homes_wait(item, code)
            return 0.0
        await self._give_up(item, code)
        return 0.0

    async def _transient(self, item: OutboxItem, error: str, *, unknown: bool) -> float:
        failures = self._failures[item.channel] = self._failures.get(item.channel, 0) + 1
        backoff = min(self.max_backoff, 0.25 * 2**failures) * random.uniform(0.5, 1.0)
        log.warning(
            "Slack delivery of row %d failed (%s); retrying in %.1fs", item.id, error, backoff
        )
        self.metrics.inc("slack_retries_total")
        # Updates and homes render the state at delivery time: one that may have arrived is
        # harmless (so is a retired post's, the same content again).
        rerendered = item.kind in (Kind.UPDATE_LEAD, Kind.HOME, Kind.SETTLE, Kind.RETIRE)
        await self._retry(item, backoff, error, unknown=unknown and not rerendered)
        return backoff

    async def _retry(self, item: OutboxItem, seconds: float, error: str, *, unknown: bool) -> None:
        wall = self.wall()
        await self.rows.retry(item, wall, wall + timedelta(seconds=seconds), error, unknown=unknown)

    # --- homes Slack refuses for the whole app ------------------------------------------------

    def _refuse_homes(self, error: str, *, probe_now: bool = False) -> None:
        """Slack refuses every App Home (`error`, one of HOMES_REFUSED): hold them until a
        waiting one, tried every `home_probe`, gets through, or someone opens the Home tab."""
        self.homes_refused = error
        self._home_probe_at = self.clock() + (timedelta(0) if probe_now else self.home_probe)

    async def _hold_homes(self, ids: list[int]) -> None:
        """Hold homes `ids` with the others: not due until the next tries but one."""
        wall, error = self.wall(), self.homes_refused
        if error is None:
            return
        try:
            await self.rows.hold_homes(ids, wall, error, wall + 2 * self.home_probe)
        except Exception:
            log.exception("could not write to the outbox; trying again shortly")

    async def _held_homes_due(self) -> None:
        """Before a full read: every home held due now if Slack takes them again; else, at
        the time to ask, the oldest held home (the one that asks)."""
        try:
            if self._release_homes:
                await self.rows.homes_back(self.wall())
                self._release_homes = False
            elif self.homes_refused is not None and self._home_probing is None:
                if self._home_probe_at is None or self.clock() >= self._home_probe_at:
                    await self.rows.probe_home(self.wall())
        except Exception:
            log.exception("could not write to the outbox; trying again shortly")

    def _home_waits(self, row_id: int) -> bool:
        """Whether home row `row_id` waits while Slack refuses every home: one at a time goes,
        once every `home_probe`, to ask whether Slack takes them again."""
        if self.homes_refused is None or self._home_probing == row_id:
            return False
        due = self._home_probe_at is None or self.clock() >= self._home_probe_at
        if self._home_probing is None and due:
            self._home_probing = row_id
            self._home_probe_at = self.clock() + self.home_probe
            return False
        return True

    def home_tab_opened(self) -> None:
        """Someone opened the app's Home tab (Slack's app_home_opened, `tab: home`): it is on,
        so the homes waiting go now, not at the next try (also those another replica holds:
        this one may not have met the refusal)."""
        if self.homes_refused is not None:
            self._homes_back("someone opened the Home tab")
        else:
            self._release_homes = True
            self._read_all = True
            self.deliver_soon()

    def _homes_back(self, why: str) -> None:
        log.warning(
            "Slack takes App Homes again (it refused them: %s; %s): the homes waiting are "
            "published, once each",
            self.homes_refused,
            why,
        )
        self.homes_refused = None
        self._home_probe_at = None
        self._release_homes = True  # the homes held are due again, for every replica
        self._read_all = True  # the rows held back are older than the newest read
        self.deliver_soon()

    async def _homes_wait(self, item: OutboxItem, error: str) -> None:
        """Slack refused a home for the whole app: it waits with every other (one row each,
        which later changes collapse into), and the escalations channel hears it once a day
        for the app, with how many homes wait, whichever replica or home meets it."""
        if self.homes_refused is None:
            log.error(
                "Slack refuses every App Home (%s): they wait, one per person, and are "
                "published once it takes them again (asked every %.0f s). %s",
                error,
                self.home_probe.total_seconds(),
                ADVICE.get(error, ""),
            )
        self._refuse_homes(error)
        self.metrics.inc("slack_errors_total")
        escalations = self.policies.current.channels.escalations
        alert = None
        if escalations:
            text = homes_refused(error, ADVICE.get(error), await self.rows.homes_waiting())
            key = f"alert:homes:{error[:100]}:{self._day()}"
            alert = (escalations, text, key)
        wall = self.wall()
        until = wall + 2 * self.home_probe  # asked about sooner: one is tried per `home_probe`
        await self.rows.home_waits(item, self.clock(), wall, error, alert, until)
        if alert is not None:
            self.deliver_soon()

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
        escalations = self.policies.current.channels.escalations
        # Any message but one to the escalations channel itself (a question, a reminder, a
        # digest): one lost silently leaves people waiting for what never arrived.
        if escalations and item.channel == escalations:
            # No channel is left to tell: each manager hears it by DM, once a day per error,
            # when Slack refuses the channel (one message refused: its log line only).
            notices = self._escalations_refused(error) if error in CHANNEL_REFUSES else []
            await self.rows.failed(item, self.clock(), error, None, notices=notices)
            if notices:
                self.deliver_soon()
        elif not escalations:
            await self.rows.failed(item, self.clock(), error, None)
        elif item.kind == Kind.HOME:
            text = publish_failed(item.channel, error, ADVICE.get(error))
            # Every change publishes the home again: a refusal that lasts is told once a
            # day per person and error, not at every change.
            key = f"alert:home:{item.channel}:{error[:100]}:{self._day()}"
            await self.rows.failed(item, self.clock(), error, (escalations, text), key)
            self.deliver_soon()
        else:
            # An archived segment channel refuses every lead: one alert per channel and error,
            # counted up in place, not one per refusal.
            await self.rows.refused(item, self.clock(), error, escalations)
            self.deliver_soon()
        if error == "user_disabled" and item.channel[:1] in ("U", "W") and self.disabled:
            # conversations.open: "A specified `user` has been disabled.": Slack's word that
            # they left, heard now even if its `user_change` event was missed.
            try:
                await self.disabled(item.channel, self.clock())
            except Exception:  # the daily refresh of names reads them again
                log.exception("could not read %s, whom Slack says is disabled", item.channel)

    def _day(self) -> str:
        """Today in the team's time zone, for the alerts told once a day."""
        return self.policies.current.day_of(self.clock()).isoformat()

    def _escalations_refused(self, error: str) -> list[Send]:
        """The DMs telling each manager that Slack refuses the escalations channel (`error`),
        keyed so each manager hears of that error once a day."""
        channel = self.policies.current.channels.escalations or ""
        text = escalations_refused(channel, error, ADVICE.get(error))
        day = self._day()
        return [
            Send(manager, text, f"alert:escalations:{channel}:{error[:100]}:{day}:{manager}")
            for manager in self.policies.current.managers
        ]

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
        # The lead as read now: its cycle with that cycle's post (a comeback empties the ts in
        # the same write that starts the next cycle), so never one cycle on another's post. If
        # it came back since this read, this edit may land after the retire of this post: the
        # store retires it again once this request ended (`updated`).
        message = await self._lead_post(lead, await self.policies.for_lead(lead))
        if lead.erased_at is not None:  # its metadata (the external id) goes too
            await self._replace(lead.message_channel, lead.message_ts, message, item)
            await self.rows.delivered(item, self.clock())
            return
        self.metrics.inc("slack_calls_total")
        try:
            await self.client.chat_update(
                channel=lead.message_channel,
                ts=lead.message_ts,
                text=message.text,
                blocks=message.blocks,
            )
        except SlackApiError as error:
            if error.response.get("error") != "message_not_found":
                raise
            await self._repost(item, lead, lead.message_channel, lead.message_ts)
            return
        await self.rows.delivered(item, self.clock(), updated=lead.message_ts)

    async def _repost(self, item: OutboxItem, lead: LeadView, channel: str, ts: str) -> None:
        """Someone deleted the lead's post in Slack (chat.update: `message_not_found`, "No
        message exists with the requested timestamp."): post the lead again in its channel, and
        tell the managers, once per deleted post."""
        log.warning(
            "lead %s: its post %s in %s was deleted in Slack", lead.external_id, ts, channel
        )
        escalations = self.policies.current.channels.escalations
        alert = (escalations, reposted_alert(lead, channel)) if escalations else None
        if await self.rows.repost(item, channel, ts, self.clock(), alert):
            self.deliver_soon()
        else:
            await self._retry(item, 0.5, "waiting for the lead's new post", unknown=False)

    async def _redact(self, item: OutboxItem) -> None:
        """Empty a message Handoff sent about a lead whose person was erased: the message its
        row names (once the request of the row `of`, if named, is over: an edit of it under
        way at the erasure), or one a request under way at the erasure may have posted (looked
        for by its metadata key once that request is over)."""
        channel = await self._conversation(item.channel)
        ts = item.payload.get("ts")
        if item.payload.get("of") is not None:
            of = int(item.payload.get("of") or 0)
            busy, answered = await self.rows.outcome(of, self.wall())
            if busy:  # it may still land: this goes after it
                await self._retry(item, 0.25, "waiting for the message's request", unknown=False)
                return
            if ts is None and answered is None:
                ts = await self._look_up(item, channel)
        if ts is None:  # never reached Slack, or emptied by the redaction its answer queued
            await self.rows.delivered(item, self.clock())
            return
        await self._replace(channel, str(ts), erased_message(), item)
        await self.rows.delivered(item, self.clock())

    async def _look_up(self, item: OutboxItem, channel: str) -> str | None:
        """The ts of the message outbox row `of` may have posted, from the channel's history
        (or its thread's) since that row's first request."""
        payload = item.payload
        kind, of = str(payload.get("kind") or Kind.MESSAGE), int(payload.get("of") or 0)
        since = payload.get("since")
        first = datetime.fromisoformat(since) if isinstance(since, str) else self.wall()
        thread_ts = payload.get("thread_ts")
        scan = await self._scan(channel, thread_ts, first - timedelta(minutes=2))
        key = message_key(kind, of, item.lead_id, payload.get("cycle"), payload.get("replaces"))
        return scan.found.get(key)

    async def _replace(self, channel: str, ts: str, message: Message, item: OutboxItem) -> None:
        """Show `message` instead of an erased person's message, its metadata gone; where Slack
        refuses the edit for good (an archived channel: `is_inactive`), delete the message."""
        self.metrics.inc("slack_calls_total")
        try:
            await self.client.chat_update(
                channel=channel, ts=ts, text=message.text, blocks=message.blocks, metadata={}
            )
            return
        except SlackApiError as error:
            code = str(error.response.get("error") or "")
            if code == "message_not_found":
                log.info("outbox row %d: the message to empty is gone already", item.id)
                return
            if not _refused_for_good(error):
                raise
            log.warning("outbox row %d: Slack refused to edit (%s): deleting it", item.id, code)
        await self.pacer.wait("chat.delete", channel)
        self.metrics.inc("slack_calls_total")
        try:
            await self.client.chat_delete(channel=channel, ts=ts)
        except SlackApiError as error:
            if error.response.get("error") != "message_not_found":
                raise

    async def _settle(self, item: OutboxItem) -> None:
        """Replace a managers' alert with what was done about it (its menu and buttons go),
        once the alert is in Slack; nothing to do if it never got there."""
        state, ts = await self.rows.sent(int(item.payload.get("of") or 0))
        if state == PENDING:  # the alert comes first
            await self._retry(item, 0.2, "waiting for the alert", unknown=False)
            return
        if ts is not None:
            message = settled_alert(str(item.payload.get("text", "")))
            self.metrics.inc("slack_calls_total")
            try:
                channel = await self._conversation(item.channel)
                await self.client.chat_update(
                    channel=channel, ts=ts, text=message.text, blocks=message.blocks
                )
            except SlackApiError as error:
                if error.response.get("error") != "message_not_found":
                    raise
                log.info("outbox row %d: the alert to settle is gone already", item.id)
        await self.rows.delivered(item, self.clock())

    async def _retire(self, item: OutboxItem) -> None:
        """Show the post of a lead's ended cycle as the row has it (that cycle as it ended,
        its controls gone); nothing to do if the post is gone from Slack."""
        payload = item.payload
        self.metrics.inc("slack_calls_total")
        try:
            await self.client.chat_update(
                channel=item.channel,
                ts=str(payload.get("ts")),
                text=str(payload.get("text", "")),
                blocks=payload.get("blocks") or None,
            )
        except SlackApiError as error:
            if error.response.get("error") != "message_not_found":
                raise
            log.info("outbox row %d: the earlier cycle's post is gone already", item.id)
        await self.rows.delivered(item, self.clock())

    async def _refusals_message(self, refusals: Refusals) -> Message:
        """The managers' alert about refused deliveries, as its group is now."""
        lead = None
        if refusals.last_lead_id is not None:
            lead = await self.store.get(refusals.last_lead_id)
            if lead is not None and lead.erased_at is not None:  # `handoff forget`: unnamed
                lead = None
        text = refusals_alert(
            refusals.last_kind or Kind.MESSAGE,
            refusals.channel,
            refusals.error,
            ADVICE.get(refusals.error),
            lead,
            refused=refusals.refused,
            mended=refusals.mended_at is not None,
            reposted=refusals.reposted,
            resent=refusals.resent,
            report=refusals.last_report,
            moved=refusals.moved,
        )
        return Message(text, [])

    async def _recount(self, item: OutboxItem) -> None:
        """Re-render the managers' alert about refused deliveries in place, once it is in
        Slack; nothing to do if it never got there. chat.update has no version check (Slack's
        chat.update reference: channel, ts and the new content), so Slack keeps whichever
        update lands last, and another replica's newer render may have landed before this
        one: once this update has landed, the group is read again and, unless a re-render not
        yet started waits (its update lands after this one), the alert is updated again if it
        differs. So the last update to land shows the group as it is, with no lock held
        across the Slack call."""
        group_id = int(item.payload.get("group") or 0)
        refusals, state, ts = await self.rows.recount(group_id)
        if state == PENDING:  # the alert comes first (and shows the group as it is then)
            await self._retry(item, 0.2, "waiting for the alert", unknown=False)
            return
        message = None if refusals is None else await self._refusals_message(refusals)
        for again in range(RECOUNT_PASSES):
            if ts is None or message is None:
                break
            if again:  # paced as any other update
                await self.pacer.wait("chat.update", item.channel)
            self.metrics.inc("slack_calls_total")
            try:
                await self.client.chat_update(
                    channel=item.channel, ts=ts, text=message.text, blocks=message.blocks or None
                )
            except SlackApiError as error:
                if error.response.get("error") != "message_not_found":
                    raise
                log.info("outbox row %d: the alert to recount is gone", item.id)
                break
            shown, (refusals, waiting) = message, await self.rows.recheck(group_id)
            if waiting:
                break
            message = None if refusals is None else await self._refusals_message(refusals)
            if message == shown:
                break
        else:  # other replicas keep showing newer counts: this row renders it again shortly
            await self._retry(item, 0.2, "the alert changed while it was updated", unknown=False)
            return
        await self.rows.delivered(item, self.clock())

    async def _home(self, item: OutboxItem) -> None:
        """Publish a person's App Home as it is now (with the notice the row carries)."""
        if self.homes is not None:
            notice = item.payload.get("notice")
            view = await self.homes.view(item.channel, self.clock(), notice and str(notice))
            self.metrics.inc("slack_calls_total")
            await self.client.views_publish(user_id=item.channel, view=view)
            if self.homes_refused is not None:  # the try got through: the homes waiting go
                self._homes_back("a home got through")
        await self.rows.delivered(item, self.clock())

    async def _post(self, item: OutboxItem) -> None:
        lead = await self.store.get(item.lead_id) if item.lead_id is not None else None
        if item.kind == Kind.POST_LEAD and _posted_already(item, lead):
            await self.rows.delivered(item, self.clock())  # gone, erased, or adopted meanwhile
            return
        key = _key(item)
        # A DM goes to the conversation conversations.open returns: its history is read by
        # that id (conversations.history takes no user ids).
        channel = await self._conversation(item.channel)
        thread_ts = item.payload.get("thread_ts")
        if item.unknown:
            ts = await self._find(item, key, channel, thread_ts=thread_ts)
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
            channel=channel,
            text=message.text,
            blocks=message.blocks or None,
            thread_ts=thread_ts,
            metadata={"event_type": event_type, "event_payload": payload},
            unfurl_links=False,
            unfurl_media=False,
        )
        await self.rows.delivered(item, self.clock(), str(response["ts"]), response.get("channel"))
        self.metrics.inc(_COUNTER[item.kind])

    async def _lead_post(self, lead: LeadView, policy: Policy) -> Message:
        """The lead's channel post as it is now; a closed lead's names who made its disposition
        (its owner, or the manager who did it for them), read from its audit trail."""
        by = None
        if not lead.stage.is_open and lead.erased_at is None:
            by = disposition_actor(await self.store.events(lead.id))
        return lead_message(lead, policy, self.clock(), self.names, dispositioned_by=by)

    async def _message(self, item: OutboxItem, lead: LeadView | None) -> Message | None:
        if item.kind == Kind.MESSAGE and item.payload.get("group") is not None:
            refusals = await self.rows.refusals(int(item.payload["group"]))
            return None if refusals is None else await self._refusals_message(refusals)
        if item.kind == Kind.MESSAGE and item.payload.get("asks_claim") and _claimed(lead):
            log.info("outbox row %d not sent: it asks for a claim of a lead claimed", item.id)
            return None
        if item.kind == Kind.MESSAGE:
            return Message(str(item.payload.get("text", "")), item.payload.get("blocks") or [])
        if lead is None:
            return None
        policy = await self.policies.for_lead(lead)
        if item.kind == Kind.POST_LEAD and item.payload.get("replaces"):
            return posted_again(await self._lead_post(lead, policy))
        if item.kind == Kind.POST_LEAD:
            return await self._lead_post(lead, policy)
        if item.kind == Kind.FEEDBACK:
            return feedback_message(lead, policy)
        return nurture_notice(lead, policy)

    async def _upload(self, item: OutboxItem) -> None:
        filename = str(item.payload.get("filename") or "file")
        title = str(item.payload.get("title") or filename)
        content = base64.b64decode(str(item.payload.get("content_b64") or ""))
        channel = await self._conversation(item.channel)
        if item.unknown:
            settled = (item.tried_until or self.wall()) + self.upload_settle
            await asyncio.sleep(max(0.0, (settled - self.wall()).total_seconds()))  # < the lease
            key = _file_key(filename, title, len(content))
            file_id = await self._find(item, key, channel, scanned_after=settled)
            if file_id is not None:
                log.info("outbox row %d was already in Slack (file %s): adopted", item.id, file_id)
                self.metrics.inc("slack_adopted_total")
                await self.rows.delivered(item, self.clock(), file_id, channel)
                return
        await self.pacer.wait("files.getUploadURLExternal", None)
        self.metrics.inc("slack_calls_total")
        ticket = await self.client.files_getUploadURLExternal(
            filename=filename, length=len(content), alt_txt=item.payload.get("alt_text")
        )
        await self._send_file(str(ticket["upload_url"]), content)
        files: list[dict[str, str | None]] = [{"id": str(ticket["file_id"]), "title": title}]
        comment = item.payload.get("initial_comment")
        self.metrics.inc("slack_calls_total")
        try:
            await self.client.files_completeUploadExternal(
                files=files, channel_id=channel, initial_comment=comment
            )
        except SlackApiError as error:
            # Sharing needs membership, even where chat:write.public posts: join, then share.
            if error.response.get("error") != "not_in_channel" or not await self._join(channel):
                raise
            self.metrics.inc("slack_calls_total")
            await self.client.files_completeUploadExternal(
                files=files, channel_id=channel, initial_comment=comment
            )
        # The answer has no message ts (Slack shares the file a moment later): keep the file id.
        await self.rows.delivered(item, self.clock(), str(ticket["file_id"]), channel)

    async def _conversation(self, channel: str) -> str:
        """The conversation id of a row's channel: a user id's DM (conversations.history and
        files.completeUploadExternal take only C…/G…/D… ids), else the channel itself."""
        if channel[:1] not in ("U", "W"):
            return channel
        if channel not in self._dms:
            await self.pacer.wait("conversations.open", None)
            self.metrics.inc("slack_calls_total")
            opened = await self.client.conversations_open(users=channel)
            self._dms[channel] = str(opened["channel"]["id"])
        return self._dms[channel]

    async def _send_file(self, url: str, content: bytes) -> None:
        """POST the bytes to an upload URL, as slack_sdk's files_upload_v2 does (no token;
        through the client's proxy, HTTPS_PROXY's, with its TLS settings)."""
        if self.client.session is not None:
            await _post_bytes(self.client, self.client.session, url, content)
            return
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await _post_bytes(self.client, session, url, content)

    # --- reconciliation -----------------------------------------------------------------------

    async def _find(
        self,
        item: OutboxItem,
        key: str,
        channel: str | None = None,
        *,
        thread_ts: str | None = None,
        scanned_after: datetime | None = None,
    ) -> str | None:
        """The ts of the message this row already posted (an upload: the id of its file), if
        the history of `channel` (default: the row's) has it; a thread reply is looked for in
        its thread (conversations.history lists parent messages only).

        One scan of the channel (or thread) serves every row whose earlier requests were over
        before the scan began (or `scanned_after`, if later); after an outage, hundreds of rows
        share one or two scans. A history the bot cannot read is joined if it can be (a
        public channel); else the row is posted again without checking, and the operator is
        told: a lost lead is worse than a possible duplicate.
        """
        channel = channel or item.channel
        oldest = (item.first_try_at or self.wall()) - timedelta(minutes=2)
        fresh_from = max(item.tried_until or oldest, scanned_after or oldest)
        scan = self._scans.get((channel, thread_ts))
        if scan is None or scan.oldest > oldest or scan.started < fresh_from:
            try:
                scan = await self._scan(channel, thread_ts, oldest)
            except SlackApiError as error:
                code = str(error.response.get("error") or "")
                if code not in ("missing_scope", "not_in_channel"):
                    raise
                await self._unreadable(item, channel, code)
                return None
            self._scans[(channel, thread_ts)] = scan
        return scan.found.get(key)

    async def _scan(self, channel: str, thread_ts: str | None, oldest: datetime) -> _Scan:
        """Read the channel's history (or the thread) since `oldest`: the keys it shows."""
        scan = _Scan(started=self.wall(), oldest=oldest)
        method = "conversations.replies" if thread_ts else "conversations.history"
        cursor = None
        while True:
            await self.pacer.wait(method, channel)
            self.metrics.inc("slack_calls_total")
            try:
                page = await self._read(channel, thread_ts, oldest, cursor)
            except SlackApiError as error:
                if error.response.get("error") != "not_in_channel" or not await self._join(channel):
                    raise
                continue  # joined: read it again
            for message in page.get("messages") or []:
                meta = (message.get("metadata") or {}).get("event_payload") or {}
                if isinstance(meta, dict) and meta.get("key"):
                    scan.found.setdefault(str(meta["key"]), str(message["ts"]))
                for file in message.get("files") or []:
                    if isinstance(file, dict) and file.get("id"):
                        file_key = _file_key(file.get("name"), file.get("title"), file.get("size"))
                        scan.found.setdefault(file_key, str(file["id"]))
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return scan

    async def _read(
        self, channel: str, thread_ts: str | None, oldest: datetime, cursor: str | None
    ) -> Any:
        since = f"{oldest.timestamp():.6f}"
        if thread_ts:
            return await self.client.conversations_replies(
                channel=channel, ts=thread_ts, include_all_metadata=True, limit=200, cursor=cursor
            )
        return await self.client.conversations_history(
            channel=channel, oldest=since, include_all_metadata=True, limit=200, cursor=cursor
        )

    async def _join(self, channel: str) -> bool:
        """Join a public channel the bot posts to without being a member, to read its history
        or share a file in it; False if Slack refuses (a private channel, no channels:join)."""
        if channel in self._joined:
            return False  # joined already, and still not a member: no second try
        if not channel.startswith("C"):
            self._joined.add(channel)
            return False
        await self.pacer.wait("conversations.join", None)
        self.metrics.inc("slack_calls_total")
        try:
            await self.client.conversations_join(channel=channel)
        except SlackApiError as error:
            # Slack not answering (a 5xx, a 429, a proxy's page, no connection) refused nothing:
            # the row is retried, and the join asked again then.
            if not _refused_for_good(error):
                raise
            self._joined.add(channel)
            log.warning("could not join %s: %s", channel, error.response.get("error"))
            return False
        self._joined.add(channel)
        log.info("joined %s to read its history", channel)
        return True

    async def _unreadable(self, item: OutboxItem, channel: str, error: str) -> None:
        """Post again without checking, and tell the operator (once per channel)."""
        fix = _UNREADABLE.get(error, "see manifest.yaml")
        log.error(
            "cannot read the history of %s (%s: %s); posting outbox row %d again without "
            "checking whether Slack already has it",
            channel,
            error,
            fix,
            item.id,
        )
        escalations = self.policies.current.channels.escalations
        if escalations and channel != escalations:
            alert = Send(escalations, history_unreadable(channel, error), f"unreadable:{channel}")
            await self.rows.send([alert], self.clock())
            self.deliver_soon()


_UNREADABLE = {  # what lets Handoff read a channel's history, by what Slack said
    "missing_scope": "add channels:history and groups:history, see manifest.yaml",
    "not_in_channel": "invite the app with /invite @Handoff, or add channels:join to it",
}
# chat.update calls one recount row makes while other replicas show newer counts meanwhile.
RECOUNT_PASSES = 3
_METHOD = {  # what a row's delivery is paced by
    Kind.UPDATE_LEAD: "chat.update",
    Kind.UPLOAD: "files.completeUploadExternal",
    Kind.HOME: "views.publish",
    Kind.REDACT: "chat.update",  # chat.delete where Slack refuses the edit for good
    Kind.SETTLE: "chat.update",
    Kind.RECOUNT: "chat.update",
    Kind.RETIRE: "chat.update",
}
_COUNTER = {
    Kind.POST_LEAD: "leads_posted_total",
    Kind.FEEDBACK: "feedback_posted_total",
    Kind.NURTURE_NOTICE: "feedback_posted_total",
    Kind.MESSAGE: "alerts_posted_total",
}


def _key(item: OutboxItem) -> str:
    """What identifies the message in Slack: a lead has one post; other rows their own."""
    payload = item.payload
    return message_key(
        item.kind, item.id, item.lead_id, payload.get("cycle"), payload.get("replaces")
    )


def message_key(
    kind: str, row_id: int, lead_id: int | None, cycle: Any = None, replaces: Any = None
) -> str:
    """The metadata key of the message outbox row `row_id` (of `kind`) posts: a lead's post is
    keyed by the lead and its cycle (a recycled lead is posted again), any other by its row (a
    post of a lead again, `replaces` a post deleted in Slack, too)."""
    if kind == Kind.POST_LEAD and not replaces:
        number = int(cycle or 1)
        return f"lead:{lead_id}" if number == 1 else f"lead:{lead_id}:c{number}"
    return f"outbox:{row_id}"


def _posted_already(item: OutboxItem, lead: LeadView | None) -> bool:
    """Whether a lead's post row has nothing to post: the lead is gone, erased or posted
    already; a post replacing a deleted one, once its message is another one. An erasure drops
    the posts waiting, but not one written by a transaction it could not see (a start moving
    the lead's segment, or a mend, that read the lead before the erasure committed)."""
    if lead is None or lead.erased_at is not None:
        return True
    replaces = item.payload.get("replaces")
    if replaces:
        return lead.message_ts != replaces
    return lead.posted_at is not None


def _claimed(lead: LeadView | None) -> bool:
    """Whether a message asking for the lead's claim (a reassignment's "claim it there") is
    stale when it goes: the lead was claimed meanwhile (by its reader, who must not read it
    about a lead they hold, or by anyone else) or closed. Its words were rendered when the
    lead was handed over; a claim may land before the outbox delivers them."""
    return lead is not None and (lead.owner is not None or not lead.stage.is_open)


def _refused_for_good(error: SlackApiError) -> bool:
    """Whether Slack's refusal stands however often the call is made (not a 5xx, a 429, a
    passing refusal, the app's credentials, or an answer that is not Slack's)."""
    if isinstance(error, NoSlackAnswer):  # a proxy's page: Slack refused nothing
        return False
    response = error.response
    code = str(response.get("error") or "")
    status = int(response.status_code or 200)
    return status < 500 and status != 429 and code not in TRANSIENT | REFUSED_FOR_NOW | BLOCKED


def _file_key(name: Any, title: Any, size: Any) -> str:
    """What identifies an uploaded file in a channel's history (its share has no metadata)."""
    return f"file:{name}\n{title}\n{size}"


async def _post_bytes(
    client: AsyncWebClient, session: aiohttp.ClientSession, url: str, content: bytes
) -> None:
    headers = {"Content-Type": "application/octet-stream"}
    proxy, ssl = client.proxy or None, client.ssl if client.ssl is not None else True
    try:
        async with session.post(
            url, data=content, headers=headers, proxy=proxy, ssl=ssl
        ) as response:
            if response.status != 200:
                raise UploadRefused(response.status, await response.text())
    except aiohttp.ClientHttpProxyError as error:
        raise without_password(error) from None


def _retry_after(headers: Any, now: datetime) -> float:
    """A 429's wait, at least a second: Slack's `Retry-After`, at most SLACK_MOST (an `inf` or
    a wait of years would overflow the retry's time, or hold the channel for ever); 1 s when
    it is unreadable (bot/domain/retry_after.py)."""
    wait = header_seconds(headers, now.timestamp(), default=1.0, most=SLACK_MOST)
    return max(1.0, wait)
