"""Delivers the CRM outbox: at the CRM's pace, in order per lead, retried until done, apart
from Slack delivery (a CRM outage never holds up a Slack post).

The worker reads the due rows (the first pending row of each lead, storage/crm.py), leases
each and asks the adapter to write it. What a row says is rendered at send time from the lead
as it is now and the CURRENT SLA file: a sync writes the record's current state, so repeated
changes collapse and a late retry never writes an older state; a note carries its row's key,
which the adapter uses to adopt a create whose answer was lost, never doubling it.

The pace is the CRM's own limit, which counts HTTP requests: at most `writes_per_second` ×
`window_seconds` requests in any `window_seconds`. A row takes one request or several (the
record looked up by email, the owners list, the PATCH, the reads that find a note already
written, the note), and the adapter sends each inside `request()`, which waits for room in the
rolling window; a row is leased only once its first request has room.

The lease is the fence that keeps a replica from writing the same row: every request starts
with the row leased for at least the adapter's `request_deadline` (the longest a request keeps
the worker waiting) and `LEASE_MARGIN` more, so no request is still in flight when the lease
runs out. Before a request that would start with less (after a wait for the window, or slow
requests before it) the lease is made longer; a lease is twice that long to begin with, so a
write that does not wait costs no extra UPDATE.

- `CrmRetry` (429, 5xx, a broken connection): the row is tried again after a backoff that
  grows while the CRM keeps failing (capped); nothing is sent to the CRM before its own
  `Retry-After`. A row whose outcome is unknown is retried as it is: the adapter adopts.
- `CrmRefused` (401/403, a property the CRM lacks): the rows wait, probed every few minutes;
  ONE alert goes to the escalations channel (through the Slack outbox, keyed, so once per
  outage), and the CRM shows degraded on /healthz and /readyz. The first success clears it.
- `CrmDailyLimit` (HubSpot's daily limit used up): a refusal that ends by itself at midnight.
  Nothing is sent before the next midnight of the SLA file's `timezone` (HubSpot resets at
  midnight in the account's zone, a setting Handoff does not read: the team's is taken for it,
  docs/crm-hubspot.md); the alert, once, says when the writes go out again.
- A `CrmRetry` whose wait is `LONG_WAIT` or more (HubSpot's 477 Migration in Progress, hours):
  met by a write or an inbound read: told once, like a daily limit, with when the writes go
  out; /healthz and /readyz name it until the CRM answers a request again.
- `CrmMissing`: the record is gone; the row is done, with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot import logs
from bot.crm.port import MAX_BACKOFF, CrmAdapter, CrmDailyLimit, CrmMissing, CrmRefused, CrmRetry
from bot.domain.crm import CrmEvent, CrmRecord, Write, next_midnight, note_of, record_of
from bot.domain.effects import Send
from bot.domain.policy import Policy
from bot.metrics import Metrics
from bot.slack.text import one_line, slack_date
from storage.crm import OWNER_ZONE, CrmItem, CrmOutboxStore

log = logging.getLogger("handoff.crm")

Clock = Callable[[], datetime]

WRITTEN_KEPT = 10_000  # leads whose last written record is remembered
# Seconds of lease kept past a request's deadline: the lease's own UPDATE, replicas' clocks
# a little apart.
LEASE_MARGIN = 10.0
# A wait the CRM asks for that holds the writes long enough for managers to notice: told once
# in the escalations channel and shown on /healthz. Longer than a burst window's (HubSpot: 10 s)
# or a lock's (423: 2 s); HubSpot's 477 Migration in Progress asks for "typically up to 24
# hours" (its "Error handling" guide).
LONG_WAIT = timedelta(minutes=15)
# What to do when a CRM refuses, by adapter.
FIXES = {
    "hubspot": (
        "check HUBSPOT_ACCESS_TOKEN (a private app token with the crm.objects.contacts.write "
        "and crm.objects.owners.read scopes) and the property names in sla.yaml's `crm:`"
    ),
    "salesforce": (
        "check SALESFORCE_ACCESS_TOKEN (a session that has not expired) and the field names in "
        "sla.yaml's `crm:`, or, for REQUEST_LIMIT_EXCEEDED, the org's API usage (Setup, System "
        "Overview)"
    ),
    "webhook": (
        "check HANDOFF_WEBHOOK_URL and that the receiver verifies with HANDOFF_WEBHOOK_SECRET"
    ),
}

# What to look at when a CRM's daily request limit runs out often, by adapter.
DAILY_FIXES = {
    "hubspot": (
        "see which apps use the account's requests (each private app's Logs tab in HubSpot) "
        "or raise the account's limit (an API limit increase)"
    ),
}


class Policies(Protocol):
    current: Policy


def refusal_text(
    crm: str, message: str, property: str | None, retry_minutes: float, resent: bool = True
) -> str:
    """The escalations channel's alert when the CRM refuses Handoff's writes. What the CRM
    (or a webhook's receiver) said is its text, not ours: escaped, so it cannot ping a channel
    or break the message."""
    message = one_line(message, 1000)
    which = f" The property it does not know: `{one_line(property, 200)}`." if property else ""
    again = (
        f"is tried again every {retry_minutes:g} minutes"
        if resent
        else "none is sent until Handoff restarts"
    )
    then = "by themselves" if resent else "once it restarts"
    return (
        f":warning: The CRM ({crm}) refuses Handoff's writes: {message}.{which} "
        f"Nothing is lost: every write waits in order and {again}. To fix it, "
        f"{FIXES.get(crm, 'check the crm: settings')}; the waiting writes then go out {then}."
    )


def daily_limit_text(crm: str, message: str, resumes: datetime, zone: str) -> str:
    """The escalations channel's alert when the CRM's daily request limit is used up: the
    writes wait, and go out by themselves from `resumes` (shown in each reader's own zone)."""
    fix = DAILY_FIXES.get(crm, "check how many requests a day the CRM account allows")
    return (
        f":warning: The CRM ({crm}) refuses Handoff's writes for the rest of the day: "
        f"{one_line(message, 1000)}. Nothing is lost: every write waits in order, none is "
        f"sent before {slack_date(resumes, zone)}, and then they go out by themselves. If this "
        f"happens often, {fix}."
    )


def read_refusal_text(crm: str, message: str) -> str:
    """The escalations channel's alert when the CRM refuses the reads its notifications need
    (a token or scope it will not take): those notifications are lost once the CRM stops
    sending them again (HubSpot: after a day)."""
    return (
        f":warning: The CRM ({crm}) refuses Handoff's reads: {one_line(message, 1000)}. Its "
        "notifications that need a read (a new record, an owner's email) are answered 503, and "
        "the CRM sends them again for a day at most (HubSpot), then they are lost. To fix it, "
        f"{FIXES.get(crm, 'check the crm: settings')}; the notifications sent again after that "
        "go through."
    )


def wait_text(crm: str, message: str, resumes: datetime, zone: str) -> str:
    """The escalations channel's alert when the CRM asks Handoff to wait a long time (HubSpot's
    477 Migration in Progress): the writes wait, and go out by themselves from `resumes`."""
    return (
        f":hourglass: The CRM ({crm}) asks Handoff to wait before its next request: "
        f"{one_line(message, 1000)}. Nothing is lost: every write waits in order, none is "
        f"sent before {slack_date(resumes, zone)}, and then they go out by themselves. There "
        "is nothing to fix."
    )


@dataclass(frozen=True)
class Refusing:
    """The CRM refuses our writes: what it said, since when (`daily`: its daily limit, which
    ends by itself at midnight, not a set-up someone must fix; `waiting`: a long wait the CRM
    asked for, which ends by itself too)."""

    message: str
    property: str | None
    since: datetime
    daily: bool = False
    waiting: bool = False


class _Window:
    """At most `limit` requests in any `seconds`: the rolling window a CRM counts by (HubSpot:
    100 or 190 requests per 10 s), so a burst goes at once and the rest as the window frees,
    never faster than the CRM takes them (a token bucket at the same rate would either go
    slower or send more than the window holds).

    Each request is counted from its answer, when it surely reached the CRM (counted from its
    start, a slow request would let the next window open early); one not answered yet counts
    as if it were answered now. So requests made side by side (an inbound webhook's read while
    a row is written) are counted each on its own."""

    def __init__(
        self,
        limit: int,
        seconds: float,
        monotonic: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit, self.seconds = max(1, limit), seconds
        self.monotonic, self.sleep = monotonic, sleep
        self.answered: deque[float] = deque()  # when each request in the window was answered
        self.open = 0  # requests sent, not answered yet
        self.first = 0  # requests waiting that go before the others (`take(first=True)`)

    def wait(self, first: bool = False) -> float:
        """Seconds until one more request may go (0: now); unless it is `first`, the room
        that requests waiting first will take is not its."""
        now = self.monotonic()
        while self.answered and self.answered[0] <= now - self.seconds:
            self.answered.popleft()
        kept = 0 if first else self.first
        if len(self.answered) + self.open + kept < self.limit:
            return 0.0
        if not self.answered:  # the whole window is in flight: it frees after their answers
            return self.seconds / self.limit
        return max(self.answered[0] + self.seconds - now, 1e-3)

    async def room(self) -> None:
        """Wait until one more request may go, without taking it."""
        while (wait := self.wait()) > 0:
            await self.sleep(wait)

    async def take(
        self, before: Callable[[float], Awaitable[None]] | None = None, first: bool = False
    ) -> None:
        """Wait for room and take it for one request; `before(wait)` is awaited first each
        time the window is looked at (the worker holds its row's lease through the wait).
        `first`: it takes the next room before the requests not first (an inbound webhook's
        read, which the CRM waits for, goes before the backlog of writes, which nobody does)."""
        self.first += first
        try:
            while True:
                if before is not None:
                    await before(self.wait(first))
                wait = self.wait(first)
                if wait <= 0:
                    self.open += 1
                    return
                await self.sleep(wait)
        finally:
            self.first -= first

    def finished(self) -> None:
        """The request taken is answered (or failed): counted from now."""
        self.open = max(0, self.open - 1)
        self.answered.append(self.monotonic())


class _LeaseLost(Exception):
    """The row's lease ran out and another worker holds it now: this one leaves it alone."""


class CrmWorker:
    """The CRM's delivery worker: `deliver_soon()` after a commit that wrote CRM rows."""

    def __init__(
        self,
        adapter: CrmAdapter,
        rows: CrmOutboxStore,
        policies: Policies,
        metrics: Metrics,
        clock: Clock,
        alert: Callable[[Send], Awaitable[None]],
        *,
        names: Mapping[str, str] | None = None,
        writes_per_second: float = 5.0,
        window_seconds: float = 10.0,
        lease_seconds: float | None = None,
        poll_seconds: float = 1.0,
        max_backoff: float = MAX_BACKOFF,
        refused_retry_seconds: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.adapter = adapter
        self.rows = rows
        self.policies = policies
        self.metrics = metrics
        # Leases, backoff and Retry-After run on this clock: the wall clock when serving, the
        # injected one in tests (an hour's outage passes without sleeping).
        self.clock = clock
        self.alert = alert
        self.names = names if names is not None else {}
        # The CRM's limit counts HTTP requests, and a row takes one or more (a look-up by
        # email, the PATCH, a note, the reads that find a note already written, a retry): the
        # adapter asks `request()` before each one it sends, so the window counts requests.
        limit = round(writes_per_second * window_seconds)
        self.window = _Window(limit, window_seconds, monotonic, sleep)
        adapter.pace = self
        # The row being written, its lease's end, and the task writing it (an inbound
        # webhook's read, in its own task, leaves the lease alone).
        self._leased: tuple[int, datetime, asyncio.Task[object] | None] | None = None
        self.lease_needed, self.lease = _lease_lengths(adapter.request_deadline, lease_seconds)
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self.refused_retry = timedelta(seconds=refused_retry_seconds)
        self.refusing: Refusing | None = None
        self._paused_until: datetime | None = None  # nothing is sent before (Retry-After)
        # The CRM's daily limit, used up: no request goes before it resets (a write's, or an
        # inbound webhook's read), and what the CRM said.
        self._daily: CrmDailyLimit | None = None
        # The CRM refuses an inbound webhook's read (told once), until a read goes through.
        self._read_refusing: Refusing | None = None
        self._failures = 0  # transient failures in a row, CRM-wide
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._idle = asyncio.Event()
        self._started = 0  # rows taken so far
        self._idle.set()
        self._kinds_seen = {w.value for w in Write}
        # The record each lead's last sync wrote, so a sync that would write the same again (an
        # SLA rep's sixth attempt: still "attempted") costs the CRM no request. In memory: a
        # restart, or another replica, writes it once more, which is harmless.
        self._written: OrderedDict[int, CrmRecord] = OrderedDict()
        self._oldest: datetime | None = None  # the oldest waiting row's time, as last read
        metrics.crm_outbox_oldest_seconds.set_function(self._oldest_age)
        metrics.probes.append(self._count_pending)

    # --- running ------------------------------------------------------------------------------

    def deliver_soon(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="crm worker")

    async def close(self, grace: float = 0.0) -> None:
        """Stop: a write under way may finish for up to `grace` seconds (cut off, its outcome
        stays unknown and the next start retries it: the adapter adopts); the rest wait."""
        self._stopping = True
        self._wake.set()
        if not self._idle.is_set() and grace > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.adapter.aclose()

    async def drain(self, seconds: float = 30.0) -> bool:
        """Wait until no CRM row is due now (True: the rest wait for a later time, after a
        failure or the CRM's Retry-After), or `seconds` pass (False)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            # A row the worker took while the rows were read was not due to the reading.
            started = self._started
            if self._idle.is_set() and not await self._due_now() and started == self._started:
                return True
            self.deliver_soon()
            await asyncio.sleep(0.02)
        return False

    def _remember(self, record: CrmRecord) -> None:
        self._written[record.lead_id] = record
        self._written.move_to_end(record.lead_id)
        while len(self._written) > WRITTEN_KEPT:
            self._written.popitem(last=False)

    async def _due_now(self) -> bool:
        now = self.clock()
        if self._paused_until is not None and now < self._paused_until:
            return False
        return bool(await self.rows.due(now))

    @property
    def name(self) -> str:
        return self.adapter.name

    async def oldest_pending(self) -> datetime | None:
        """When the oldest CRM write still waiting was written (None: none waits)."""
        return await self.rows.oldest_pending()

    @property
    def degraded(self) -> str | None:
        """What the CRM said while it refuses our writes (None: it takes them)."""
        return self.refusing.message if self.refusing else None

    @property
    def reads_refused(self) -> str | None:
        """What the CRM said while it refuses the reads its notifications need (None: it
        answers them): shown on /healthz, not failing /readyz, as the replica serves Slack and
        the writes as well as ever (every replica would fail it at once)."""
        return self._read_refusing.message if self._read_refusing else None

    async def _count_pending(self) -> None:
        depth, oldest = await self.rows.backlog()
        self._kinds_seen |= set(depth)
        for kind in self._kinds_seen:
            self.metrics.crm_outbox_depth.labels(kind=kind).set(depth.get(kind, 0))
        self._oldest = oldest
        self.metrics.crm_refusing.set(1 if self.refusing else 0)

    def _oldest_age(self) -> float:
        """The oldest waiting row's age at the scrape, from its time as last read: it goes on
        growing while the database does not answer (nothing is written meanwhile)."""
        if self._oldest is None:
            return 0.0
        return max(0.0, (self.clock() - self._oldest).total_seconds())

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            sent = 0
            try:
                sent = await self._round()
            except Exception:
                log.exception("could not read the CRM outbox; trying again shortly")
            if sent:
                continue  # the leads' next rows are due now
            with contextlib.suppress(TimeoutError):  # not wait_for: see bot/slack/outbox.py
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()

    async def _round(self) -> int:
        """Send what is due now, oldest first; how many rows were tried."""
        now = self.clock()
        if self._paused_until is not None and now < self._paused_until:
            return 0
        tried = 0
        for row_id, _ in await self.rows.due(now):
            if self._stopping:
                break
            # Room for the row's first request before it is leased: a lease is not held
            # waiting for the window (its later requests, if any, take their own turns).
            await self.window.room()
            if self._stopping:
                break
            tried += 1
            if not await self._deliver(row_id):
                break  # the CRM asked us to wait: nothing more this round
        return tried

    # --- the CRM's pace ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        """Around each HTTP request an adapter sends to the CRM (`Pace`): it goes when the
        rolling window has room for it, and is counted from its answer. The row being written
        keeps its lease through the wait and the request (`_hold_lease`). A request of another
        task (an inbound webhook's read, answered to the CRM only after it) takes the next room
        before the rows' writes, so a backlog of writes does not hold a webhook's answer past
        the CRM's timeout."""
        self._refuse_before_reset()
        writer = self._leased is not None and self._leased[2] is asyncio.current_task()
        await self.window.take(self._hold_lease, first=not writer)
        try:
            # Again after the wait for room: a request met the daily limit meanwhile.
            self._refuse_before_reset()
            yield
        except CrmDailyLimit as limit:
            self._used_up(limit)
            raise
        except CrmRefused as refused:
            if not writer:
                await self._refused_read(refused)
            raise
        except CrmRetry as wait:
            # A long wait a read met (a 477): told, as a write's is; a write's is told by
            # `_retry`, with its row.
            if not writer and wait.after is not None and wait.after >= LONG_WAIT.total_seconds():
                resumes = self.clock() + timedelta(seconds=wait.after)
                await self._long_wait(None, wait, resumes)
            raise
        else:
            if self.refusing is not None and self.refusing.waiting:
                self.refusing = None  # answered: the wait is over
            if not writer and self._read_refusing is not None:
                log.info("the CRM (%s) answers Handoff's reads again", self.adapter.name)
                self._read_refusing = None
        finally:
            self.window.finished()

    async def _refused_read(self, error: CrmRefused) -> None:
        """An inbound webhook's read the CRM refuses (a token or a scope it will not take, such
        as HubSpot's `crm.objects.contacts.read`): its notification is answered 503, and HubSpot
        sends it again "up to 10 times" over 24 hours (its Webhooks API guide, "Retries"), then
        never. No write need meet the refusal (the writes take other scopes, or none waits), so
        it is told here: once (a day, across replicas and restarts), and /healthz names it until
        a read goes through."""
        if self._read_refusing is not None:
            return
        now = self.clock()
        self._read_refusing = Refusing(str(error), error.property, now)
        log.error("the CRM (%s) refuses Handoff's reads: %s", self.adapter.name, error)
        told = self.refusing
        if told is not None and not told.daily and not told.waiting and told.message == str(error):
            return  # the writes' refusal, told already: the same fix mends both
        escalations = self.policies.current.channels.escalations
        if escalations:
            text = read_refusal_text(self.adapter.name, str(error))
            key = f"crm-read-refused:{self.policies.current.day_of(now).isoformat()}"
            await self.alert(Send(escalations, text, key))

    def _used_up(self, limit: CrmDailyLimit) -> None:
        """The CRM's daily limit is used up (said to any request): nothing more is sent before
        it resets, at the next midnight of the SLA file's `timezone` (`limit.resumes`)."""
        if limit.resumes is None:
            resumes = next_midnight(self.clock(), self.policies.current.timezone)
            limit.resumes = resumes.astimezone(UTC)
        self._daily = limit

    def _refuse_before_reset(self) -> None:
        """Before a request: while the daily limit is used up, it is refused here, unsent
        (the CRM would refuse it too: one request a day, not one per inbound webhook)."""
        daily = self._daily
        if daily is None or daily.resumes is None:
            return
        if self.clock() >= daily.resumes:
            self._daily = None
            return
        raise CrmDailyLimit(str(daily), resumes=daily.resumes)

    async def _hold_lease(self, wait: float) -> None:
        """Before a request of the row being written, which starts after `wait` seconds and may
        take the adapter's whole deadline: unless the row stays leased for `lease_needed` from
        the start, the lease is first made longer (a whole lease from the start), so no other
        worker (a replica) takes the row and writes it a second time while the request is in
        flight. The window calls this again after each wait, just before the request goes."""
        if self._leased is None:
            return
        row_id, until, writer = self._leased
        if writer is not asyncio.current_task():
            return
        starts = self.clock() + timedelta(seconds=wait)
        if until - starts >= self.lease_needed:
            return
        longer = starts + self.lease
        if not await self.rows.extend(row_id, until, longer):
            raise _LeaseLost(f"the lease of CRM row {row_id} ran out")
        self._leased = (row_id, longer, writer)

    # --- one row ------------------------------------------------------------------------------

    async def _deliver(self, row_id: int) -> bool:
        """Write one row; False when the CRM asked for a pause (nothing more now)."""
        self._idle.clear()
        self._started += 1
        try:
            now = self.clock()
            item = await self.rows.lease(row_id, now, now + self.lease)
            if item is None:
                return True  # done or taken meanwhile
            self._leased = (item.id, now + self.lease, asyncio.current_task())
            with logs.scope(crm_outbox_id=item.id, lead_id=item.lead_id):
                return await self._attempt(item)
        finally:
            self._leased = None
            self._idle.set()

    async def _attempt(self, item: CrmItem) -> bool:
        name = self.adapter.name
        started = time.monotonic()
        try:
            tie = await self._write(item)
        except CrmRetry as error:
            return await self._retry(item, error)
        except CrmRefused as error:
            await self._refused(item, error)
            return False
        except CrmMissing as error:
            log.warning("CRM row %d: nothing to write to in the CRM (%s); done", item.id, error)
            await self.rows.done(item, self.clock(), error=f"missing: {error}"[:1000])
            return True
        except _LeaseLost as error:
            log.warning("CRM row %d: %s; another worker writes it", item.id, error)
            return True
        except Exception as error:  # a bug: keep the row, try later
            log.exception("CRM row %d failed unexpectedly", item.id)
            await self._backoff(item, f"{type(error).__name__}: {error}", item.unknown, None)
            return True
        finally:
            self.metrics.crm_write_seconds.labels(crm=name).observe(time.monotonic() - started)
        if tie is None:
            await self.rows.done(item, self.clock())
        else:
            await self.rows.done(item, self.clock(), crm_id=tie[0], was=tie[1])
        self._failures = 0
        if self.refusing is not None:
            log.info("the CRM (%s) takes Handoff's writes again", name)
            self.refusing = None
        return True

    async def _write(self, item: CrmItem) -> tuple[str, str | None] | None:
        """Render the row from the lead as it is now and write it. A record the CRM wrote to
        other than the lead's (found by email, or the one its merged-away or deleted record
        lives on in): its id, and the lead's id it replaces, to tie the lead to it, so its next
        writes go there at once (a sync's or a note's alike)."""
        policy = self.policies.current
        crm = policy.crm
        lead = await self.rows.lead(item.lead_id)
        if crm is None or lead is None:
            return None  # no CRM any more, or the lead is gone: nothing to say
        labels = {d.code: d.label for d in policy.dispositions}
        if item.kind == Write.SYNC:
            record = record_of(crm, lead, lead.crm_id, labels)
            if lead.crm_id is not None and self._written.get(lead.id) == record:
                return None  # the CRM shows this already
            found = await self.adapter.sync(record)
            # Remembered with the id written to: the lead's next record carries its CRM id, so
            # one tied to another record meanwhile (a note's look, a merge told) is no match,
            # and that record is brought to the lead's state (a merge keeps the remaining
            # contact's own values).
            self._remember(replace(record, crm_id=found or lead.crm_id))
            return (found, lead.crm_id) if found and found != lead.crm_id else None
        at = _at(item)
        if item.kind == Write.NOTE:
            # The day the lead's clock ran on: the team's, or with `clock: owner` its owner's
            # own then (the day they worked it; Salesforce shows the date as written), not
            # the owner's of now. A row queued before the zone was recorded: the owner's now.
            zone = item.payload.get(OWNER_ZONE, lead.owner_zone)
            day = at.astimezone(policy.calendar_for(zone).zone).date()
            note = note_of(
                crm, lead, lead.crm_id, str(item.key), item.payload, at, labels, self.names, day
            )
            # Its first try, with no earlier request that may have reached the CRM: created in
            # one request, without first looking for our key (the lease counted this try).
            fresh = item.attempts == 1 and not item.unknown
            found = await self.adapter.note(replace(note, fresh=fresh))
            return (found, lead.crm_id) if found and found != lead.crm_id else None
        event = CrmEvent(
            key=str(item.key),
            lead_id=lead.id,
            external_id=lead.external_id,
            type=str(item.payload.get("type") or ""),
            actor=str(item.payload.get("actor") or ""),
            at=at,
            data=dict(item.payload.get("data") or {}),
            crm_id=lead.crm_id,
            stage=lead.stage.value,
            owner=lead.owner,
            segment=lead.segment,
            source=lead.source,
            campaign=lead.campaign,
        )
        await self.adapter.event(event)
        return None

    async def _retry(self, item: CrmItem, error: CrmRetry) -> bool:
        unknown = item.unknown or error.unknown
        if error.after is not None:
            wait = timedelta(seconds=max(0.0, error.after))
            self._paused_until = self.clock() + wait
            self.metrics.inc("crm_rate_limited_total")
            log.warning("the CRM asks Handoff to wait %.0fs (%s)", error.after, error)
            await self.rows.retry(item, self._paused_until, str(error), unknown=unknown)
            if wait >= LONG_WAIT:
                await self._long_wait(item, error, self._paused_until)
            return False
        await self._backoff(item, str(error), unknown, error)
        return False

    async def _long_wait(self, item: CrmItem | None, error: CrmRetry, resumes: datetime) -> None:
        """A wait of hours (HubSpot's 477, its account moving between data hosting locations),
        met by a write (`item`) or an inbound webhook's read (None): told once, as a refusal
        is, so managers know why the CRM shows nothing new (and the CRM sends a notification
        again for a day at most), and /healthz names it until a request is answered; a refusal
        (or a daily limit) already told stands."""
        if self.refusing is not None:
            return
        self.refusing = Refusing(str(error), None, self.clock(), waiting=True)
        zone = self.policies.current.timezone
        await self._tell(item, wait_text(self.adapter.name, str(error), resumes, zone), ":wait")

    async def _tell(self, item: CrmItem | None, text: str, kind: str) -> None:
        """The escalations channel's alert, keyed by the oldest write waiting, which waits
        while the CRM refuses: replicas meeting the refusal on other rows, and a restart
        meeting it again, add nothing; a refusal after the CRM took writes again is told
        again. With no write (an inbound read's), keyed by the day."""
        escalations = self.policies.current.channels.escalations
        if escalations:
            head = await self.rows.oldest_pending_id()
            day = self.policies.current.day_of(self.clock()).isoformat()
            first = head or (item.id if item is not None else f"read-{day}")
            await self.alert(Send(escalations, text, f"crm-refused:{first}{kind}"))

    async def _backoff(
        self, item: CrmItem, error: str, unknown: bool, cause: CrmRetry | None
    ) -> None:
        """Try the row again later; while the CRM keeps failing, every write waits longer."""
        self._failures += 1
        seconds = min(self.max_backoff, 2.0 ** min(self._failures, 20))
        not_before = self.clock() + timedelta(seconds=seconds)
        if cause is not None:
            self._paused_until = not_before  # the CRM is down: probe it once per backoff
        self.metrics.inc("crm_retries_total")
        log.warning("CRM write of row %d failed (%s); retrying in %.0fs", item.id, error, seconds)
        await self.rows.retry(item, not_before, error, unknown=unknown)

    async def _refused(self, item: CrmItem, error: CrmRefused) -> None:
        now = self.clock()
        zone = self.policies.current.timezone
        daily = isinstance(error, CrmDailyLimit)
        # A daily limit resets at midnight, hours away: no probe before it (each would be
        # refused too). The SLA's zone stands for the account's (docs/crm-hubspot.md).
        resumes = None
        if isinstance(error, CrmDailyLimit):
            self._used_up(error)
            resumes = error.resumes
        self._paused_until = resumes or now + self.refused_retry
        await self.rows.retry(item, self._paused_until, f"refused: {error}", unknown=item.unknown)
        log.error(
            "the CRM (%s) refuses Handoff's writes: %s%s; the writes wait",
            self.adapter.name,
            error,
            f" (property {error.property})" if error.property else "",
        )
        # Told once per refusal; a daily limit and a set-up to fix are told apart, as the
        # limit's alert says the writes go out by themselves (a token refused at midnight
        # would be left untold, and /healthz would still name the limit).
        # A long wait told before (a 477) is no refusal: this one is told too.
        refusing = self.refusing
        if refusing is not None and not refusing.waiting and refusing.daily == daily:
            return
        self.refusing = Refusing(str(error), error.property, now, daily)
        minutes = self.refused_retry.total_seconds() / 60
        text = (
            daily_limit_text(self.adapter.name, str(error), resumes, zone)
            if resumes is not None
            else refusal_text(self.adapter.name, str(error), error.property, minutes, error.resent)
        )
        await self._tell(item, text, ":daily" if daily else "")


def _lease_lengths(deadline: float, lease_seconds: float | None) -> tuple[timedelta, timedelta]:
    """The lease each request must start on (the adapter's request deadline and the margin),
    and a lease's length: `lease_seconds`, by default twice the first, so a fresh lease covers
    a write's first requests without an extra UPDATE. A lease shorter than the first could run
    out under a request in flight: ValueError."""
    needed = timedelta(seconds=deadline + LEASE_MARGIN)
    if lease_seconds is None:
        return needed, 2 * needed
    if timedelta(seconds=lease_seconds) < needed:
        raise ValueError(
            f"a CRM lease of {lease_seconds:g}s is shorter than one request needs: the "
            f"adapter's request deadline ({deadline:g}s) and {LEASE_MARGIN:g}s more"
        )
    return needed, timedelta(seconds=lease_seconds)


def _at(item: CrmItem) -> datetime:
    text = item.payload.get("at")
    if isinstance(text, str):
        with contextlib.suppress(ValueError):
            at = datetime.fromisoformat(text)
            return at if at.tzinfo else at.replace(tzinfo=UTC)
    return item.created_at
