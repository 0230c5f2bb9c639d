"""A whole local installation: the Slack simulator, a running Handoff, a driver and intake."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from bot.app import Handoff, create
from bot.cli.manifest import bot_scopes, load_manifest
from bot.domain.policy import Policy
from bot.settings import Settings
from bot.simulator.driver import SlackDriver, SocketModeDriver
from bot.simulator.server import SlackSimulator
from bot.slack.publisher import Clock, utc_now

SIGNING_SECRET = "local-simulator-signing-secret"
ERASURE_KEY = "local-simulator-erasure-key-not-secret"
BOT_TOKEN = "xoxb-local-simulator"
APP_TOKEN = "xapp-local-simulator"
INTAKE_TOKEN = "local-intake-token"

# People of the example SLA, so transcripts read like a team and not like ids.
PEOPLE = {
    "U0REP1": ("maya", "Maya Chen"),
    "U0REP2": ("tom", "Tom Okafor"),
    "U0REP3": ("sofia", "Sofia Marquez"),
    "U0REP4": ("liam", "Liam Walsh"),
    "U0REP5": ("aisha", "Aisha Khan"),
    "U0REP6": ("ben", "Ben Larsen"),
    "U0MGR1": ("grace", "Grace Lee (Sales Manager)"),
    "U0MGR2": ("raj", "Raj Patel (RevOps)"),
    "U0OUTSIDER": ("casey", "Casey Brooks (Customer Success)"),
}
CHANNELS = {
    "C0ENT": "sales-enterprise",
    "C0MID": "sales-mid-market",
    "C0SMB": "sales-smb",
    "C0MKTFEED": "marketing-feedback",
    "C0ESCALATE": "sla-escalations",
    "C0REVOPS": "revops",
}


class TravelClock:
    """A clock moved by hand, so tests and the demo travel in time without sleeping."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Mon 11:00 in Sydney

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class LocalStack:
    sim: SlackSimulator
    handoff: Handoff
    driver: SlackDriver
    session: aiohttp.ClientSession
    base_url: str
    own_sim: bool = True  # stopped with the stack (False: a simulator it was given)

    @property
    def services(self) -> Any:
        return self.handoff.services

    async def post_lead(
        self, payload: Any, token: str | None = INTAKE_TOKEN, raw: bytes | None = None
    ) -> tuple[int, Any]:
        """POST /leads as a marketing system would; (status, decoded JSON answer)."""
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": payload}
        async with self.session.post(f"{self.base_url}/leads", headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def settle(self) -> None:
        """Wait until every Slack side effect under way has been delivered (a private answer
        may queue more, such as a report's charts)."""
        await self.handoff.outbox.drain()
        await self.handoff.publisher.drain()
        await self.handoff.outbox.drain()
        if self.handoff.crm is not None:  # and what the CRM must learn, with a `crm:`
            await self.handoff.crm.drain()

    async def close(self) -> None:
        await self.driver.close()
        await self.session.close()
        await self.handoff.close()
        if self.own_sim:
            await self.sim.stop()


async def local_slack() -> SlackSimulator:
    """A started simulator with the example SLA's people and channels, whose bot token holds
    the scopes manifest.yaml declares."""
    sim = await SlackSimulator(scopes=bot_scopes(load_manifest())).start()
    for user_id, (name, real_name) in PEOPLE.items():
        sim.add_user(user_id, name, real_name, email=f"{name}@example.com")
    for channel_id, name in CHANNELS.items():
        sim.add_channel(channel_id, name)
    return sim


async def start_stack(
    database_url: str,
    policy: Policy | None = None,
    clock: Clock = utc_now,
    *,
    socket_mode: bool = False,
    sim: SlackSimulator | None = None,
    **env: str,
) -> LocalStack:
    """Start the simulator and a Handoff pointed at it (on free ports of 127.0.0.1).

    With `socket_mode`, Handoff has only its bot and app tokens (no signing secret) and
    receives Slack's requests over the simulator's Socket Mode WebSocket, and the driver sends
    them there; the HTTP server (intake, health, metrics) runs as well. With `sim`, that
    simulator is used and left running (a server restarted on the same workspace)."""
    own_sim = sim is None
    sim = sim or await local_slack()
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            **(
                {"SLACK_APP_TOKEN": APP_TOKEN}
                if socket_mode
                else {"SLACK_SIGNING_SECRET": SIGNING_SECRET}
            ),
            "SLACK_API_URL": sim.api_url,
            "DATABASE_URL": database_url,
            "HANDOFF_INTAKE_TOKEN": INTAKE_TOKEN,
            "HANDOFF_ERASURE_KEY": ERASURE_KEY,
            "HOST": "127.0.0.1",
            "PORT": "0",
            # The simulator enforces no rate limit unless a test sets one: go fast.
            "HANDOFF_SLACK_POSTS_PER_SECOND": "500",
            "HANDOFF_SLACK_POST_BURST": "50",
            "HANDOFF_SLACK_CALLS_PER_MINUTE": "60000",
            "HANDOFF_SLACK_CALL_BURST": "500",
            **env,
        }
    )
    handoff = await create(settings, policy=policy, clock=clock, socket_mode=socket_mode)
    # Its clock may travel days in seconds: the members' reads due by it run when a test calls
    # `read_people`, never behind its back every 30 s.
    handoff.people_every = 24 * 3600.0
    port = await handoff.start()
    # Learn the members' names now (serve does it in the background at start), so every
    # test and the demo begin with the names Slack gives.
    await handoff.people.refresh(handoff.clock())
    base_url = f"http://127.0.0.1:{port}"
    driver: SlackDriver
    if socket_mode:
        await handoff.connect_socket()
        await sim.socket_mode.wait_connected()
        driver = SocketModeDriver(sim)
    else:
        driver = SlackDriver(f"{base_url}/slack/events", SIGNING_SECRET, sim)
    session = aiohttp.ClientSession()
    return LocalStack(sim, handoff, driver, session, base_url, own_sim)
