"""Assembly: settings → database → policy → Slack client → services → Bolt → aiohttp routes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.domain.policy import Policy, load_policy
from bot.metrics import Metrics
from bot.policies import PolicyBook
from bot.services import Services
from bot.settings import Settings
from bot.slack.publisher import Clock, SlackPublisher, slack_client, utc_now
from handlers import http_routes, slack_listeners
from storage import db
from storage.repository import Store

log = logging.getLogger("handoff")


@dataclass
class Handoff:
    """One running Handoff: its parts, its aiohttp application, and how to stop it."""

    settings: Settings
    database: db.Database
    store: Store
    services: Services
    publisher: SlackPublisher
    metrics: Metrics
    bolt: AsyncApp
    http: web.Application
    runner: web.AppRunner | None = None
    port: int | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Serve HTTP; returns the bound port (pass port=0 for any free one)."""
        self.runner = web.AppRunner(self.http, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, host or self.settings.host, self.settings.port if port is None else port
        )
        await site.start()
        self.background.append(asyncio.create_task(self.database.checkpoints()))
        self.port = int(self.runner.addresses[0][1])
        return self.port

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        await self.publisher.drain(10)
        await self.publisher.close()
        if self.publisher.client.session is not None:
            await self.publisher.client.session.close()
        await self.database.dispose()


async def create(
    settings: Settings, policy: Policy | None = None, clock: Clock = utc_now, upgrade: bool = True
) -> Handoff:
    """Build a Handoff from settings; brings the database schema up to date first."""
    settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    policy = policy or load_policy(settings.sla_file)
    database = db.Database(settings.database_url)
    if upgrade:
        await db.upgrade(database.engine)
    store = Store(database)
    book = PolicyBook(store, policy)
    await book.record_current(clock())
    metrics = Metrics()
    client = slack_client(settings.bot_token or "", settings.api_url)
    publisher = SlackPublisher(client, store, book, metrics, clock)
    services = Services(store, book, publisher)
    bolt = AsyncApp(
        client=client,
        signing_secret=settings.signing_secret,
        process_before_response=True,  # answer Slack as soon as the listener returns
    )
    slack_listeners.register(bolt, services, publisher, metrics, clock)
    application = web.Application(
        client_max_size=http_routes.MAX_BODY + 64 * 1024, middlewares=[http_routes.no_tracebacks]
    )
    application.add_routes(
        http_routes.routes(services, bolt, metrics, settings.intake_token, clock)
    )
    return Handoff(settings, database, store, services, publisher, metrics, bolt, application)
