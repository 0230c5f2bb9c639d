"""Intake in group commits, through the real server: leads posted together are stored once
each, in fewer transactions than leads, with the owners and reasons they would have had one by
one (the rotation's weights, a rep away skipped); the same external id twice in one burst is
one lead; a bad lead in a burst gets its own 400 while the others are stored. On a SQLite file
and on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from bot.cli.stack import INTAKE_TOKEN, SIGNING_SECRET, LocalStack, TravelClock
from bot.domain.policy import Policy, parse_policy, snapshot
from storage import db
from storage.away import AwayStore
from tests.conftest import ROOT, lead_payload, postgres_database
from tests.e2e.servers import replica
from tests.e2e.test_claim_race import new_simulator
from tests.e2e.test_cli import HANDOFF, clean_env

ENTERPRISE = "C0ENT"
REP1, REP2, REP7 = "U0REP1", "U0REP2", "U0REP7"


@pytest.fixture
def policy(policy: Policy) -> Policy:
    """The example SLA with a third enterprise rep, weights 2:1:1 (U0REP7 is set away)."""
    content = snapshot(policy)
    content["segments"][0] |= {"reps": [REP1, REP2, REP7], "weights": {REP1: 2}}
    return parse_policy(content)


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url


@contextmanager
def lead_inserts() -> Iterator[list[int]]:
    """The statements inserting lead rows that any engine runs inside the block (one per
    transaction that stores leads: an intake batch)."""
    inserts: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO LEADS "):
            inserts.append(1)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield inserts
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def enterprise(number: int, **overrides: Any) -> dict[str, Any]:
    domain = f"acme{number}.example"
    company = lead_payload()["company"] | {"domain": domain, "name": f"Acme {number}"}
    return lead_payload(f"burst-{number}", email=f"p{number}@{domain}", company=company) | overrides


def reasons(stack: LocalStack) -> list[tuple[str, int]]:
    """(rep, count this week) of the line of each post that says why its rep was chosen."""
    found = []
    for message in stack.sim.messages(ENTERPRISE):
        for block in message.blocks:
            for element in block.get("elements", []) if block.get("type") == "context" else []:
                said = re.match(r"Round robin: <@(\w+)>, (\d+) of ", element.get("text", ""))
                if said:
                    found.append((said.group(1), int(said.group(2))))
    return sorted(found)


async def test_a_burst_is_stored_once_each_with_fair_owners_in_fewer_commits(
    stack: LocalStack, clock: TravelClock
) -> None:
    await AwayStore(stack.services.store.db).set(REP7, None, "holiday", REP7, clock())
    with lead_inserts() as inserts:
        answers = await asyncio.gather(*(stack.post_lead(enterprise(n)) for n in range(24)))
    await stack.settle()

    assert [status for status, _ in answers] == [201] * 24
    ids = [int(body["id"]) for _, body in answers]
    assert len(set(ids)) == 24 and await stack.services.store.count_leads() == 24
    assert 1 <= len(inserts) < 24  # leads that arrived together shared transactions
    leads = [await stack.services.lead(lead_id) for lead_id in ids]
    owners = Counter(lead.suggested_owner for lead in leads)
    assert owners == {REP1: 16, REP2: 8}  # weights 2:1, and the rep away gets none
    for lead in leads:
        assert (await stack.services.store.events(lead.id))[0].type == "received"
    # each turn was taken after the one before: each rep's counts are 1..n, none twice
    weeks = sorted((lead.suggested_owner, lead.route_reason["week"]) for lead in leads)
    assert weeks == sorted([(REP1, n) for n in range(1, 17)] + [(REP2, n) for n in range(1, 9)])
    # every lead posted once, saying why its rep was chosen, as stored
    assert len(stack.sim.messages(ENTERPRISE)) == 24
    assert reasons(stack) == weeks


async def test_the_same_lead_twice_in_one_burst_is_one_lead(stack: LocalStack) -> None:
    sent = [enterprise(1), enterprise(2), enterprise(1), enterprise(3), enterprise(1)]
    answers = await asyncio.gather(*(stack.post_lead(payload) for payload in sent))
    await stack.settle()

    statuses = [status for status, _ in answers]
    assert sorted(statuses) == [200, 200, 201, 201, 201]
    assert [statuses[i] for i in (1, 3)] == [201, 201]
    once = {
        body["id"]
        for (_, body), payload in zip(answers, sent, strict=True)
        if payload["external_id"] == "burst-1"
    }
    assert len(once) == 1  # every answer names the one lead
    assert await stack.services.store.count_leads() == 3
    (lead_id,) = once
    types = [event.type for event in await stack.services.store.events(int(lead_id))]
    assert types.count("received") == 1
    assert len(stack.sim.messages(ENTERPRISE)) == 3


async def test_a_bad_lead_in_a_burst_fails_alone(stack: LocalStack) -> None:
    sent = [enterprise(n) for n in range(6)]
    sent[3] = enterprise(3, email="not an email")
    answers = await asyncio.gather(*(stack.post_lead(payload) for payload in sent))
    await stack.settle()

    assert [status for status, _ in answers] == [201, 201, 201, 400, 201, 201]
    assert "email" in str(answers[3][1])
    assert await stack.services.store.count_leads() == 5
    assert len(stack.sim.messages(ENTERPRISE)) == 5


async def test_two_processes_taking_the_same_burst_store_each_lead_once_and_fairly(
    tmp_path: Path,
) -> None:
    """Two `handoff serve` processes on one PostgreSQL database, each sent the whole burst at
    once (a load balancer retrying everything): each lead is created by exactly one request
    (201), answered 200 on the other, posted once, and the rotation takes one turn per lead."""
    url, drop = await postgres_database()
    try:
        async with AsyncExitStack() as running:
            sim = await running.enter_async_context(new_simulator())
            env = clean_env(
                SLACK_BOT_TOKEN="xoxb-batches",
                SLACK_SIGNING_SECRET=SIGNING_SECRET,
                SLACK_API_URL=sim.api_url,
                HANDOFF_INTAKE_TOKEN=INTAKE_TOKEN,
                HANDOFF_SLA_FILE=str(ROOT / "sla.yaml"),
                DATABASE_URL=url,
                HANDOFF_SWEEP_SECONDS="0",
                LOG_FORMAT="text",
            )
            upgrade = await asyncio.create_subprocess_exec(
                *HANDOFF, "db", "upgrade", env=env, cwd=tmp_path
            )
            assert await upgrade.wait() == 0
            replicas = await asyncio.gather(
                *(running.enter_async_context(replica(env, tmp_path)) for _ in range(2))
            )
            headers = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
            async with aiohttp.ClientSession() as session:

                async def send(target: str, number: int) -> tuple[str, int]:
                    payload = enterprise(number)
                    async with session.post(f"{target}/leads", json=payload, headers=headers) as r:
                        return payload["external_id"], r.status

                answers = await asyncio.gather(
                    *(send(r.url, n) for n in range(30) for r in replicas)
                )
            created = Counter(external_id for external_id, status in answers if status == 201)
            assert created == {f"burst-{n}": 1 for n in range(30)}
            assert sorted(status for _, status in answers) == [200] * 30 + [201] * 30
            await sim.wait_for(
                lambda: len(sim.messages(ENTERPRISE)) >= 30, timeout=60, what="every post"
            )
            database = db.Database(url)
            try:
                rows = await database.run(
                    lambda c: c.execute(
                        text("SELECT suggested_owner, route_reason FROM leads")
                    ).all()
                )
            finally:
                await database.dispose()
            assert len(rows) == 30
            # the example's enterprise pool, two reps of weight 1: 15 each, counted 1..15
            weeks = sorted((str(rep), int(reason["week"])) for rep, reason in rows)
            assert weeks == sorted((rep, n) for rep in (REP1, REP2) for n in range(1, 16))
            assert len(sim.messages(ENTERPRISE)) == 30
    finally:
        await drop()
