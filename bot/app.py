"""Assembly: settings → database → policy → Slack client → services → Bolt → aiohttp routes."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.authorization.async_single_team_authorization import (
    AsyncSingleTeamAuthorization,
)
from slack_sdk.errors import SlackApiError

from bot import logs
from bot.crm.emails import SlackEmails
from bot.crm.factory import adapter_for
from bot.crm.hubspot_in import HubSpotInbound, HubSpotReader
from bot.crm.port import CrmInbound
from bot.crm.salesforce_in import SalesforceInbound, SalesforceReader
from bot.crm.worker import CrmWorker
from bot.domain.effects import Send
from bot.domain.erasure import ErasureKey
from bot.domain.policy import Policy
from bot.metrics import Metrics
from bot.services.away import Aways
from bot.services.backlog import Backlog
from bot.services.crm_inbound import CrmInboundService, SlackDirectory
from bot.services.digest import CATCH_UP, Digests, next_posting
from bot.services.health import Readiness
from bot.services.home import Homes
from bot.services.leads import Services
from bot.services.people import People
from bot.services.plan import Plans
from bot.services.policies import PolicyBook, load_policy
from bot.services.report_process import ReportProcess
from bot.services.reports import Reports
from bot.services.slack_events import Channels, SlackEvents
from bot.services.sweep import Sweeper
from bot.settings import ConfigError, Settings, require_crm
from bot.slack.outbox import Outbox
from bot.slack.publisher import Clock, SlackPublisher, handoff_clients, slack_client, utc_now
from bot.traffic import Traffic
from handlers import http_routes, observe, slack_listeners
from handlers.event_retries import EventRetries
from handlers.socket_client import OverlappingSocketModeClient
from storage import db
from storage.away import AwayStore
from storage.crm import CrmOutboxStore
from storage.crm_inbox import KEEP, CrmInboxStore
from storage.home import HomeStore
from storage.outbox import KINDS as OUTBOX_KINDS
from storage.outbox import OutboxStore
from storage.plan import PlanStore
from storage.reports import ReportStore, RunStore
from storage.repository import Store
from storage.slack_events import SlackEventStore
from storage.sweep import SweepStore

STATUS_SECONDS = 600  # how often the reps' Slack statuses are read (`away_statuses`)
PEOPLE_SECONDS = 30.0  # how often the members' reads look whether one is due (People.due)
SWEEPS_FAILING = 3  # escalation sweeps failed in a row before /readyz says so
# apps.connections.open's answers that no retry mends (its reference, and the token checks
# every method makes): the token is wrong, revoked, of another kind, or its team is barred.
APP_TOKEN_REFUSED = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "not_allowed_token_type",
        "forbidden_team",
        "missing_args",
        "account_inactive",
        "token_revoked",
        "token_expired",
    }
)
log = logging.getLogger("handoff")


class PostingTrigger(BaseTrigger):
    """Runs a digest job when its post is due (`next_posting`), once. APScheduler's cron
    trigger passed over a day whose time the clocks skip after midnight (America/Santiago,
    America/Havana, Africa/Cairo: 00:00 jumps to 01:00), losing that week's digest, and ran
    twice in an hour they repeat."""

    def __init__(
        self, at: str, zone: str, *, weekday: str | None = None, day: int | None = None
    ) -> None:
        self.at, self.zone, self.weekday, self.day = at, zone, weekday, day

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        start = now  # as CronTrigger counts: the first due time after the previous one
        if previous_fire_time is not None:
            start = min(now, previous_fire_time + timedelta(microseconds=1))
        return next_posting(start, self.at, self.zone, weekday=self.weekday, day=self.day)

    def __str__(self) -> str:
        return f"posting[{self.weekday or self.day} {self.at} {self.zone}]"


@dataclass
class Handoff:
    """One running Handoff: its parts, its aiohttp application, and how to stop it."""

    settings: Settings
    database: db.Database
    store: Store
    services: Services
    publisher: SlackPublisher
    outbox: Outbox
    sweeper: Sweeper
    people: People
    reports: Reports
    digests: Digests
    clock: Clock
    metrics: Metrics
    bolt: AsyncApp
    http: web.Application
    runner: web.AppRunner | None = None
    port: int | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)
    scheduler: AsyncIOScheduler | None = None
    socket: AsyncSocketModeHandler | None = None
    crm: CrmWorker | None = None  # the CRM's delivery worker, with a `crm:` section
    readiness: Readiness | None = None  # /readyz's checks (SIGTERM's drain fails them)
    sweeps_failing: int = 0  # escalation sweeps failed in a row (/readyz: 3 is not ready)
    # How often the members' reads look whether one is due; a stack whose clock travels in
    # time (tests, the demo) sets it long and calls `read_people` itself.
    people_every: float = PEOPLE_SECONDS
    last_sweep: float = 0.0  # when one last finished, Unix time (0: not yet)

    async def connect_socket(self) -> None:
        """Receive Slack's requests over Socket Mode (settings.app_token) as well: Bolt opens
        the WebSocket with apps.connections.open and acknowledges each envelope. ConfigError
        when Slack refuses the app token: slack_sdk's client would log a traceback and try
        again every 10 s for ever (a network failure is still left to its retries). The URL
        Slack answers is the one the handler connects to (it is single-use: not asked twice)."""
        url: str | None = None
        try:
            opened = await self.bolt.client.apps_connections_open(
                app_token=self.settings.app_token or ""
            )
            url = str(opened["url"])
        except SlackApiError as error:
            code = error.response.get("error")
            if code in APP_TOKEN_REFUSED:
                raise ConfigError(
                    f"Slack refused SLACK_APP_TOKEN ({code}): make an app-level token with the "
                    "connections:write scope (the app's Basic Information page) and set it"
                ) from None
        except (aiohttp.ClientError, OSError, TimeoutError):
            pass  # Slack not answering: the handler's own connect tries again
        self.socket = observe.TimedSocketModeHandler(
            self.bolt, self.settings.app_token, self.metrics
        )
        self.socket.client.wss_uri = url  # None: the handler asks Slack itself
        await self.socket.connect_async()

    @property
    def socket_turned_off(self) -> asyncio.Event | None:
        """Set when Slack says Socket Mode was turned off for the app (`link_disabled`): no
        request will come over the socket any more. None without a socket."""
        client = self.socket.client if self.socket is not None else None
        return client.turned_off if isinstance(client, OverlappingSocketModeClient) else None

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Serve HTTP; returns the bound port (pass port=0 for any free one)."""
        # SIGTERM: the requests under way get `shutdown_grace` seconds to finish.
        grace = self.settings.shutdown_grace
        self.runner = web.AppRunner(self.http, access_log=None, shutdown_timeout=grace)
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, host or self.settings.host, self.settings.port if port is None else port
        )
        await site.start()
        self.background.append(asyncio.create_task(self.database.checkpoints()))
        if db.is_sqlite(self.settings.database_url):
            # One process owns a SQLite file: leases left in it died with the last process.
            await self.outbox.rows.release_leases(self.outbox.wall())
            if self.crm is not None:
                await self.crm.rows.release_leases(self.crm.clock())
        await self.leads_follow_their_segments()
        self.outbox.start()
        if self.crm is not None:
            self.crm.start()
        self.start_sweeps()
        # The members' names (and, with `clock: owner`, time zones) from Slack, then daily.
        self.background.append(asyncio.create_task(self.refresh_people(self.people_every)))
        self.background.append(asyncio.create_task(self.authorize_early()))
        self.port = int(self.runner.addresses[0][1])
        return self.port

    async def leads_follow_their_segments(self) -> None:
        """The refusals alert's advice is "unarchive it or change sla.yaml": with the file
        changed (a segment moved to another channel), the open leads an archived, deleted or
        app-less channel refused are posted in their segment's channel now, once."""
        policy = self.outbox.policies.current
        channels = {segment.name: segment.channel for segment in policy.segments}
        try:
            sent = await self.outbox.rows.moved(channels, self.clock())
        except Exception:  # the leads stay refused, as before; the next start tries again
            log.exception("could not look for leads refused in a segment's earlier channel")
            return
        for (old, new), count in sorted(sent.items()):
            log.warning(
                "%d open lead%s Slack refused in %s %s posted in %s, their segment's channel "
                "in sla.yaml now",
                count,
                "" if count == 1 else "s",
                old,
                "is" if count == 1 else "are",
                new,
            )

    async def authorize_early(self, every: float = 10.0) -> None:
        """Ask Slack's auth.test now, not inside the first request's ack: Bolt asks it once,
        lazily, so the first press after a start waited for it (and with Slack slow, failed).
        Tried again every `every` seconds until Slack answers; a request that comes first asks
        it itself, as before."""
        found = [
            middleware
            for middleware in self.bolt._async_middleware_list
            if isinstance(middleware, AsyncSingleTeamAuthorization)
        ]
        while found and found[0].auth_test_result is None:
            try:
                answer = await self.bolt.client.auth_test()
            except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
                log.info("auth.test did not answer yet (%s): trying again in %.0f s", error, every)
                await asyncio.sleep(every)
                continue
            if found[0].auth_test_result is None:
                found[0].auth_test_result = answer

    def start_sweeps(self) -> None:
        """Run the escalation sweep every `sweep_seconds` (APScheduler; one at a time)."""
        every = self.settings.sweep_seconds
        if not every:
            return
        scheduler = self.scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_job(
            self.sweep,
            "interval",
            seconds=every,
            id="escalation-sweep",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        scheduler.add_job(  # the CRM inbox's retention runs even when the outbox is kept
            self.prune,
            "interval",
            hours=1,
            id="outbox-retention",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC) + timedelta(minutes=1),
        )
        scheduler.add_job(
            self.read_statuses,
            "interval",
            seconds=STATUS_SECONDS,
            id="slack-statuses",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        weekly = self.digests.schedule()
        self._digest_job(scheduler, self.digest, "weekly-digest", weekly.time, weekday=weekly.day)
        monthly = self.services.policy.report.monthly_digest
        if monthly is not None:
            self._digest_job(
                scheduler, self.monthly_digest, "monthly-digest", monthly.time, day=monthly.day
            )
        scheduler.start()
        # A server (re)started just after the digest time sends it if no replica has.
        self.background.append(asyncio.create_task(self.digest(catch_up=True)))
        self.background.append(asyncio.create_task(self.monthly_digest(catch_up=True)))

    def _digest_job(
        self,
        scheduler: AsyncIOScheduler,
        job: Callable[..., Awaitable[None]],
        name: str,
        at: str,
        *,
        weekday: str | None = None,
        day: int | None = None,
    ) -> None:
        """Run `job` at `at` (HH:MM, the team's zone) on `weekday` or the month's `day`, one run
        at a time, catching up a missed run within CATCH_UP."""
        zone = self.services.policy.timezone
        scheduler.add_job(
            job,
            PostingTrigger(at, zone, weekday=weekday, day=day),
            id=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(CATCH_UP.total_seconds()),
        )

    async def refresh_people(self, every: float = PEOPLE_SECONDS) -> None:
        """The members' reads from Slack, whenever one is due (`read_people`), looked at every
        `every` seconds: their due times are counted on the injected clock, as the outbox's
        probe is (tests call `read_people` after moving the clock, and never sleep). At start
        the names and time zones are read whatever the last read was."""
        await self.refresh_members()
        while True:
            await asyncio.sleep(every)
            await self.read_people()

    async def read_people(self) -> None:
        """The reads People says are due (People.due): the names and time zones at start and
        daily, and soon after Slack accepts a refused bot token again; either read that Slack
        did not answer, at its retry (a few minutes, not the next day). First, who left Slack
        as another replica heard it (its `user_change`), from the database."""
        try:  # who left, as another replica heard from Slack
            await self.people.reload_barred()
        except Exception:
            log.exception("could not read who left Slack from the database; next look")
        due = self.people.due(self.clock())
        if "refresh" in due:
            await self.refresh_members()
        if "statuses" in due:
            await self.read_statuses()

    async def refresh_members(self) -> None:
        """The names and time zones from Slack. People logs what Slack answered: the names
        known from the database were not read from Slack."""
        try:
            await self.people.refresh(self.clock())
        except Exception:
            log.exception("could not refresh the members' time zones; trying again later")

    async def read_statuses(self) -> None:
        """The reps' Slack statuses that mean away (`away_statuses`), kept for routing and the
        sweep (which never call Slack per lead)."""
        try:
            await self.people.statuses(self.clock())
        except Exception:
            log.exception("could not read the reps' Slack statuses; trying again later")

    async def digest(self, catch_up: bool = False) -> None:
        try:
            await self.digests.run(self.clock(), catch_up=CATCH_UP if catch_up else None)
        except Exception:
            log.exception("the weekly digest failed; the next replica or restart tries again")

    async def monthly_digest(self, catch_up: bool = False) -> None:
        try:
            await self.digests.run_monthly(self.clock(), catch_up=CATCH_UP if catch_up else None)
        except Exception:
            log.exception("the monthly digest failed; the next replica or restart tries again")

    async def prune(self) -> None:
        """Retention: drop the CRM notifications received more than `crm_inbox.KEEP` ago (the
        CRMs retry no longer), and empty the Slack deliveries done more than
        HANDOFF_OUTBOX_KEEP_DAYS ago (0: kept)."""
        now = self.clock()
        try:
            pruned = await CrmInboxStore(self.database).prune(now - KEEP)
        except Exception:
            log.exception("pruning the CRM inbox failed; the next run tries again")
        else:
            if pruned:
                log.info("CRM inbox retention: %d notifications' keys pruned", pruned)
        if not self.settings.outbox_keep_days:
            return
        before = now - timedelta(days=self.settings.outbox_keep_days)
        try:
            pruned = await self.outbox.rows.prune(before)
        except Exception:
            log.exception("pruning the outbox failed; the next run tries again")
            return
        if pruned:
            log.info("outbox retention: %d delivered rows pruned", pruned)
        if self.crm is None:
            return
        try:
            pruned = await self.crm.rows.prune(before)
        except Exception:
            log.exception("pruning the CRM outbox failed; the next run tries again")
            return
        if pruned:
            log.info("CRM outbox retention: %d written rows pruned", pruned)

    async def sweep(self) -> None:
        try:
            with self.metrics.sweep_seconds.time():
                result = await self.sweeper.run(self.clock())
        except Exception:
            self.sweeps_failing += 1
            self.metrics.inc("sweep_failures_total")
            log.exception("the escalation sweep failed; the next one tries again")
            return
        self.sweeps_failing = 0
        self.last_sweep = time.time()
        if result.changed:
            log.info("escalation sweep: %d leads escalated", result.changed)

    async def close(self, grace: float = 0.0) -> None:
        """Stop: take no more requests (those under way finish, within the runner's
        `shutdown_grace` over HTTP, within `grace` over Socket Mode), stop the scheduler, and
        let the Slack deliveries under way finish for up to `grace` seconds (`serve` on
        SIGTERM); what is left stays in the outbox."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.socket is not None:
            if isinstance(self.socket, observe.TimedSocketModeHandler):
                await self.socket.finish(grace)  # its requests under way, as the runner's
            await self.socket.close_async()
            self.socket = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.publisher.drain(10)
        await self.publisher.close()
        # Slack's and the CRM's deliveries under way finish side by side, within one grace.
        closing = [self.outbox.close(grace)]
        if self.crm is not None:
            closing.append(self.crm.close(grace))
        await asyncio.gather(*closing)
        for client in (self.bolt.client, self.outbox.client):
            if client.session is not None:
                await client.session.close()
        await self.database.dispose()


def settle_heap() -> None:
    """Once started: collect, then move every object alive (the modules, the SLA, the compiled
    statements, the caches) out of the garbage collector's way. Its full collections then walk
    only what the server made since, instead of stopping the event loop for every object the
    process ever loaded: on a busy server they came more often during reports and each stopped
    every ack for 70 to 300 ms (docs/benchmarks.md, "Acks during a report")."""
    gc.collect()
    gc.freeze()


def _readers(crm: CrmWorker | None) -> tuple[Any, Any]:
    """The outbound adapter, as the reader of its own CRM's webhooks (HubSpot, Salesforce)."""
    adapter = None if crm is None else crm.adapter
    name = getattr(adapter, "name", None)
    return (adapter if name == "hubspot" else None, adapter if name == "salesforce" else None)


def _portal(policy: Policy) -> int | None:
    """`crm.portal`: the one HubSpot portal whose webhooks are taken (None: any)."""
    return policy.crm.portal if policy.crm is not None else None


def crm_inbound(
    settings: Settings,
    hubspot_reader: HubSpotReader | None = None,
    salesforce_reader: SalesforceReader | None = None,
    portal: int | None = None,
) -> dict[str, CrmInbound]:
    """The CRMs whose webhooks are taken (`POST /crm/<name>`): those with their secret set.
    The readers are the outbound adapters, which read a created record and an owner's email
    through the official clients (None: a payload that does not carry them is not read)."""
    adapters: dict[str, CrmInbound] = {}
    if settings.hubspot_client_secret:
        adapters["hubspot"] = HubSpotInbound(settings.hubspot_client_secret, hubspot_reader, portal)
    if settings.salesforce_webhook_token:
        adapters["salesforce"] = SalesforceInbound(
            settings.salesforce_webhook_token, salesforce_reader
        )
    return adapters


async def keyed_store(settings: Settings, database: db.Database) -> Store:
    """The lead store, with the erasure key (or none: plain digests, said in the log).
    ConfigError if erased leads' digests were made with another key, or with a key when none
    is set now: with this one, those people would be taken in again as new leads (a lost or
    mistyped key must not forget the erasures quietly); the database is closed then."""
    store = Store(database, ErasureKey(settings.erasure_key))
    others = [i for i in await store.other_erasure_keys() if i not in settings.retired_erasure_keys]
    if others:
        await database.dispose()
        theirs = f"theirs: key id {', '.join(others)}"
        said = (
            f"HANDOFF_ERASURE_KEY is not the key this database's erased leads were made with "
            f"({theirs}; this one's: {store.erasure_key.key_id})"
            if settings.erasure_key is not None
            else f"HANDOFF_ERASURE_KEY is not set, and this database's erased leads were made "
            f"with one ({theirs})"
        )
        raise ConfigError(
            f"{said}: with it, a person erased before would be taken in again. Set the key they "
            "were made with; if it is lost for good, HANDOFF_ERASURE_KEY_RETIRED="
            f"{','.join(others)} lets Handoff start (docs/operations.md#the-erasure-key)."
        )
    if settings.erasure_key is None:
        log.warning(
            "HANDOFF_ERASURE_KEY is not set: what an erasure keeps of a person's ids is a plain "
            "SHA-256, which anyone with the database can test against guessed ids; set it "
            "(docs/operations.md#the-erasure-key)"
        )
    return store


async def create(
    settings: Settings,
    policy: Policy | None = None,
    clock: Clock = utc_now,
    upgrade: bool = True,
    *,
    socket_mode: bool = False,
    answers_slack: bool = True,
) -> Handoff:
    """Build a Handoff from settings; brings the database schema up to date first.

    In Socket Mode (`connect_socket` after `start`) Slack's requests come over the app token's
    authenticated WebSocket, so only the bot and app tokens are needed; `POST /slack/events`
    stays signature-checked, with the signing secret if one is set, else with a random one
    nobody has, so it refuses every request. A command that takes no Slack request
    (`answers_slack` false: `handoff sweep`, `handoff forget`) needs the bot token alone. The
    erasure key (`HANDOFF_ERASURE_KEY`) is optional: without it, erasures keep plain digests."""
    if socket_mode:
        settings.require("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")
    elif answers_slack:
        settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    else:
        settings.require("SLACK_BOT_TOKEN")
    logs.protect()  # no lead data or secret in any log line, whoever configured logging
    policy = policy or load_policy(settings.sla_file)
    if policy.crm is not None:
        require_crm(settings, policy.crm.kind)  # one clear line per missing secret, first
    # With a `crm:` section, every event stored adds the CRM writes it causes (storage/crm.py).
    database = db.Database(settings.database_url, crm=policy.crm)
    if upgrade:
        await db.upgrade(database.engine)
    if db.is_sqlite(settings.database_url):
        await database.engine.dispose()  # migrations only: its driver thread need not idle on
    store = await keyed_store(settings, database)
    book = PolicyBook(store, policy)
    await book.record_current(clock())
    metrics = Metrics()
    client = slack_client(settings.bot_token or "", settings.api_url)
    publisher = SlackPublisher(metrics)
    traffic = Traffic()
    reports = Reports(
        ReportStore(database),
        book,
        ReportProcess(settings.database_url) if settings.report_process else None,
    )
    names: dict[str, str] = {}  # members' display names, kept fresh by People
    barred: set[str] = set()  # guests and deactivated members, kept fresh by People
    homes = Homes(HomeStore(database), book, reports, names)
    outbox = Outbox(
        slack_client(settings.bot_token or "", settings.api_url, retries=False),
        OutboxStore(database),
        store,
        book,
        metrics,
        clock,
        settings.pace,
        traffic=traffic,
        homes=homes,
        names=names,
    )
    crm = _crm_worker(settings, policy, database, client, book, metrics, clock, outbox, names)
    metrics.start_at_zero(
        slack_request_kinds=observe.REQUEST_KINDS,
        outbox_kinds=OUTBOX_KINDS,
        crm=crm.name if crm is not None else None,
    )
    # Whatever commits writes wakes both deliverers: the sweep's reassignments and the
    # digests' posts reach the CRM at once, not at its worker's next poll.
    notifier = outbox if crm is None else Notifiers(outbox, crm)
    services = Services(store, book, notifier, names)
    services.barred = barred
    away = AwayStore(database)
    services.availability = homes.availability = away  # routing and App Home skip who is away
    sweeper = Sweeper(
        SweepStore(database),
        book,
        notifier,
        zones=services.zones,
        names=services.names,
        away=away,
        barred=services.barred,
    )
    people = People(
        client,
        store,
        book,
        services.zones,
        services.names,
        away=away,
        barred=services.barred,
        hand_on=sweeper.hand_on,  # a member deactivated or made a guest: their leads move on
        token=outbox,  # a refused bot token: reads stop, and deliveries, until it works again
        pacer=outbox.pacer,  # users.info per member: the app's pace, and a 429's pause
    )
    await people.load()
    outbox.disabled = people.disabled  # a DM refused `user_disabled`: that member left
    # Without one (Socket Mode), a secret nobody knows: HTTP requests to Slack's route fail it.
    signing_secret = settings.signing_secret or secrets.token_urlsafe(32)
    bolt = AsyncApp(
        client=client,
        # Bolt skips the signature check for Socket Mode requests only (they carry none).
        signing_secret=signing_secret,
        process_before_response=True,  # answer Slack as soon as the listener returns
    )
    digests = Digests(reports, RunStore(database), book, notifier, names=services.names)
    plans = Plans(PlanStore(database), book)
    aways = Aways(away, book, services.names)
    listeners = slack_listeners.Listeners(
        services,
        plans,
        reports,
        digests,
        homes,
        publisher,
        metrics,
        clock,
        aways,
        traffic,
        people=people,
        token=outbox,
        channels=Channels(outbox.rows, outbox),
    )
    retries = EventRetries(SlackEvents(SlackEventStore(database)), clock)
    bolt.middleware(observe.observed())  # first: each request's log fields
    bolt.middleware(retries.once)  # a retried event stops before anything else runs
    bolt.middleware(handoff_clients)  # a listener's client reads a proxy's page as one
    slack_listeners.register(bolt, listeners)
    bolt.error(retries.releasing(listeners.failed))
    # Which events are under way, for their retries (both transports dispatch through it).
    bolt.async_dispatch = retries.tracking(bolt.async_dispatch)  # type: ignore[method-assign,assignment]
    handoff: Handoff | None = None  # the scheduler's state, once it is built

    def scheduling() -> bool | str | None:
        if not settings.sweep_seconds:
            return None
        scheduler = handoff.scheduler if handoff is not None else None
        failing = handoff.sweeps_failing if handoff is not None else 0
        if failing >= SWEEPS_FAILING:  # running, and escalating nothing: not ready
            return f"running, but the last {failing} escalation sweeps failed (the log says why)"
        return scheduler is not None and bool(scheduler.running)

    readiness = Readiness(
        store.ping,
        outbox.rows.oldest_pending,
        scheduling,
        clock,
        timedelta(seconds=settings.ready_max_outbox_age),
        crm=crm,
        slack_token=lambda: outbox.token_refused,
    )
    application = web.Application(
        client_max_size=http_routes.MAX_BODY + 64 * 1024,
        middlewares=[http_routes.request_ids, http_routes.no_tracebacks],
    )
    application.add_routes(
        http_routes.routes(
            services,
            bolt,
            metrics,
            settings.intake_token,
            clock,
            intake_signing_secret=settings.intake_signing_secret,
            slack_signing_secret=signing_secret,
            traffic=traffic,
            backlog=Backlog(
                outbox.rows.pending,
                settings.intake_max_backlog,
                settings.pace.posts_per_second,
                max_in_flight=settings.intake_max_in_flight,
            ),
            readiness=readiness,
            crm=crm,
            crm_inbound=CrmInboundService(
                services,
                CrmInboxStore(database),
                crm_inbound(settings, *_readers(crm), portal=_portal(policy)),
                # Without the client's own retries: HubSpot gives a webhook seconds to answer
                # (its webhooks guide), so a 429 or a 5xx is answered 503 with Slack's wait at
                # once, not slept through inside the request.
                # No lookup before a 429's Retry-After has passed, on the injected clock, nor
                # while Slack refuses the bot token (the worker is told, and probes auth.test).
                SlackDirectory(outbox.client, clock, token=outbox),
            ),
        )
    )
    handoff = Handoff(
        settings,
        database,
        store,
        services,
        publisher,
        outbox,
        sweeper,
        people,
        reports,
        digests,
        clock,
        metrics,
        bolt,
        application,
        crm=crm,
        readiness=readiness,
    )
    built = handoff
    metrics.gauge("sweep_last_success_timestamp_seconds", lambda: built.last_sweep)
    return handoff


class Notifiers:
    """Wakes the Slack outbox and the CRM worker after a commit (each delivers its rows)."""

    def __init__(self, *workers: Any) -> None:
        self.workers = workers

    def deliver_soon(self) -> None:
        for worker in self.workers:
            worker.deliver_soon()


def _crm_worker(
    settings: Settings,
    policy: Policy,
    database: db.Database,
    client: Any,
    book: PolicyBook,
    metrics: Metrics,
    clock: Clock,
    outbox: Outbox,
    names: dict[str, str],
) -> CrmWorker | None:
    """The CRM's delivery worker, with a `crm:` section (None without): it delivers the CRM
    writes that `database` adds beside every event it stores (storage/crm.py)."""
    if policy.crm is None:
        return None
    # A CRM's Retry-After is counted on the injected clock, as the worker's backoff is.
    # The owners' emails are users.info reads: at the app's pace, as the members' reads are.
    emails = SlackEmails(client, outbox.pacer)
    adapter = adapter_for(policy.crm, settings, emails, seconds=lambda: clock().timestamp())

    async def alert(send: Send) -> None:
        await outbox.rows.send([send], clock())  # through the Slack outbox, once by its key
        outbox.deliver_soon()

    return CrmWorker(
        adapter,
        CrmOutboxStore(database),
        book,
        metrics,
        clock,
        alert,
        names=names,
        writes_per_second=policy.crm.writes_per_second,
        window_seconds=policy.crm.window_seconds,
    )
