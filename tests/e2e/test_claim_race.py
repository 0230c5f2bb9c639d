"""Fifty reps press Claim on one lead at once: one winner, on SQLite and across two servers.

The PostgreSQL run starts two real `handoff serve` processes on one database and one Slack
simulator and splits the presses between them, so only the database can pick the winner. The
same two servers also share one outbox: each lead reaches Slack once, from one of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import yaml

from bot.cli.stack import (
    CHANNELS,
    INTAKE_TOKEN,
    PEOPLE,
    SIGNING_SECRET,
    TravelClock,
    start_stack,
)
from bot.services.policies import load_policy
from bot.simulator.data import Message
from bot.simulator.driver import DriverResponse, SlackDriver
from bot.simulator.server import SlackSimulator
from storage import db
from storage.repository import Store
from tests.conftest import ROOT, lead_payload, postgres_database
from tests.e2e.servers import replica
from tests.e2e.test_cli import clean_env

ENTERPRISE = "C0ENT"
REPS = [f"U0R{n:02d}" for n in range(50)]


def race_sla(tmp_path: Path) -> Path:
    """The example SLA with fifty enterprise reps."""
    sla = yaml.safe_load((ROOT / "sla.yaml").read_text())
    (enterprise,) = [s for s in sla["segments"] if s["name"] == "enterprise"]
    enterprise["reps"] = REPS
    path = tmp_path / "sla.yaml"
    path.write_text(yaml.safe_dump(sla, sort_keys=False, allow_unicode=True))
    return path


def new_simulator() -> SlackSimulator:
    sim = SlackSimulator()
    for user_id, (name, real_name) in PEOPLE.items():
        sim.add_user(user_id, name, real_name)
    for rep in REPS:
        sim.add_user(rep, rep.lower(), f"Rep {rep[3:]}")
    for channel_id, name in CHANNELS.items():
        sim.add_channel(channel_id, name)
    return sim


async def press_all(drivers: list[SlackDriver], message: Message) -> list[DriverResponse]:
    """Every rep presses Claim at once, the presses dealt round-robin to the drivers."""
    return await asyncio.gather(
        *(
            drivers[n % len(drivers)].press(rep, "Claim", channel=ENTERPRISE, message_ts=message.ts)
            for n, rep in enumerate(REPS)
        )
    )


async def assert_one_winner(
    store: Store, sim: SlackSimulator, responses: list[DriverResponse], message: Message
) -> str:
    """One owner, one `claimed` event, and every other rep told who won; the winner."""
    assert [r.status for r in responses] == [200] * len(REPS)
    await sim.wait_for(
        lambda: len(sim.ephemerals()) >= len(REPS) - 1, timeout=20, what="49 refusals"
    )
    lead = await store.get(1)
    assert lead is not None and lead.owner in REPS
    winner = lead.owner
    events = [event for event in await store.events(1) if event.type == "claimed"]
    assert [(event.type, event.actor) for event in events] == [("claimed", winner)]
    await asyncio.sleep(0.3)  # nothing more arrives: exactly one refusal per loser
    notes = sim.ephemerals()
    assert sorted(note.user for note in notes) == sorted(set(REPS) - {winner})
    for note in notes:
        assert note.text == f"Too late: this lead was already claimed by <@{winner}>."
    await sim.wait_for(
        lambda: (
            f"Claimed by <@{winner}>" in (sim.message(ENTERPRISE, message.ts) or message).all_text
        ),
        timeout=20,
        what="the lead message to show its owner",
    )
    return winner


async def test_fifty_claims_on_sqlite_have_one_winner(sqlite_url: str, tmp_path: Path) -> None:
    policy = load_policy(str(race_sla(tmp_path)))
    stack = await start_stack(sqlite_url, policy, clock=TravelClock())
    try:
        status, answer = await stack.post_lead(lead_payload())
        assert status == 201, answer
        await stack.settle()
        (message,) = stack.sim.messages(ENTERPRISE)
        responses = await press_all([stack.driver], message)
        await stack.settle()
        await assert_one_winner(stack.services.store, stack.sim, responses, message)
    finally:
        await stack.close()


@asynccontextmanager
async def handoff_serve(env: dict[str, str], cwd: Path) -> AsyncIterator[str]:
    """A real `handoff serve` process on a free port; yields its base URL, stops it after."""
    async with replica(env, cwd) as running:
        yield running.url
    assert running.process.returncode == 0, "".join(running.output)


async def test_fifty_claims_across_two_servers_on_postgresql_have_one_winner(
    tmp_path: Path,
) -> None:
    url, drop = await postgres_database(migrated=False)  # `serve`/`db upgrade` build it
    try:
        async with AsyncExitStack() as running:
            sim = await running.enter_async_context(new_simulator())
            env = clean_env(
                SLACK_BOT_TOKEN="xoxb-claim-race",
                SLACK_SIGNING_SECRET=SIGNING_SECRET,
                SLACK_API_URL=sim.api_url,
                HANDOFF_INTAKE_TOKEN=INTAKE_TOKEN,
                HANDOFF_SLA_FILE=str(race_sla(tmp_path)),
                DATABASE_URL=url,
            )
            # One at a time: each brings the schema up to date as it starts.
            servers = [await running.enter_async_context(handoff_serve(env, tmp_path))]
            servers.append(await running.enter_async_context(handoff_serve(env, tmp_path)))
            drivers = [SlackDriver(f"{base}/slack/events", SIGNING_SECRET, sim) for base in servers]
            for driver in drivers:
                running.push_async_callback(driver.close)
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"{servers[0]}/leads",
                    json=lead_payload(),
                    headers={"Authorization": f"Bearer {INTAKE_TOKEN}"},
                ) as response:
                    assert response.status == 201, await response.text()
            (message,) = await sim.wait_for(
                lambda: sim.messages(ENTERPRISE), timeout=20, what="the lead post"
            )
            responses = await press_all(drivers, message)
            database = db.Database(url)
            running.push_async_callback(database.dispose)
            await assert_one_winner(Store(database), sim, responses, message)
    finally:
        await drop()


async def test_two_servers_share_one_outbox_and_post_each_lead_once(tmp_path: Path) -> None:
    """Both servers deliver the outbox; leases make each row go to Slack from one of them."""
    url, drop = await postgres_database(migrated=False)  # `serve`/`db upgrade` build it
    try:
        async with AsyncExitStack() as running:
            sim = await running.enter_async_context(new_simulator())
            sim.answer_delay = 0.01  # requests overlap, so both workers want the same rows
            env = clean_env(
                SLACK_BOT_TOKEN="xoxb-outbox-race",
                SLACK_SIGNING_SECRET=SIGNING_SECRET,
                SLACK_API_URL=sim.api_url,
                HANDOFF_INTAKE_TOKEN=INTAKE_TOKEN,
                HANDOFF_SLA_FILE=str(ROOT / "sla.yaml"),
                DATABASE_URL=url,
                HANDOFF_SLACK_POSTS_PER_SECOND="200",
                HANDOFF_SLACK_POST_BURST="20",
            )
            servers = [await running.enter_async_context(handoff_serve(env, tmp_path))]
            servers.append(await running.enter_async_context(handoff_serve(env, tmp_path)))
            headers = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
            sizes = (2400, 450, 40)  # three segments, three channels
            async with aiohttp.ClientSession() as session:

                async def send(index: int) -> None:
                    company = {"name": f"Company {index}", "employees": sizes[index % 3]}
                    body = lead_payload(f"race-{index}", company=company)
                    base = servers[index % 2]
                    async with session.post(f"{base}/leads", json=body, headers=headers) as r:
                        assert r.status == 201, await r.text()

                await asyncio.gather(*(send(i) for i in range(60)))

            def lead_posts() -> list[str]:
                return [
                    str((m.metadata or {}).get("event_payload", {}).get("external_id"))
                    for channel in ("C0ENT", "C0MID", "C0SMB")
                    for m in sim.messages(channel)
                ]

            await sim.wait_for(lambda: len(lead_posts()) >= 60, timeout=30, what="60 posts")
            await asyncio.sleep(2.5)  # both workers have read the whole outbox again by now
            posts = lead_posts()
            assert sorted(posts) == sorted(f"race-{i}" for i in range(60))
    finally:
        await drop()
