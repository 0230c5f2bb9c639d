"""Back-pressure on intake (issue 16): when Slack deliveries fall behind past
HANDOFF_INTAKE_MAX_BACKLOG, or the database does not answer, intake answers 503 with
Retry-After and stores nothing; the sender's retry then brings the lead, posted once."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy
from tests.conftest import lead_payload


def lead(n: int) -> dict[str, object]:
    return lead_payload(external_id=f"hs-{n}", email=f"lead{n}@northwind.example")


@pytest.fixture
async def small_stack(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> AsyncIterator[LocalStack]:
    local = await start_stack(sqlite_url, policy, clock=clock, HANDOFF_INTAKE_MAX_BACKLOG="3")
    try:
        yield local
    finally:
        await local.close()


async def test_intake_says_later_while_slack_deliveries_are_behind(
    small_stack: LocalStack,
) -> None:
    stack = small_stack
    stack.sim.inject("chat.postMessage", status=500, seconds=3600)  # Slack down: posts pile up
    for n in range(3):
        status, _ = await stack.post_lead(lead(n))
        assert status == 201
    assert len(await stack.handoff.outbox.rows.rows()) >= 3

    headers = {"Authorization": "Bearer local-intake-token"}
    async with stack.session.post(
        f"{stack.base_url}/leads", json=lead(3), headers=headers
    ) as response:
        assert response.status == 503
        retry_after = int(response.headers["Retry-After"])
        answer = await response.json()
    assert 1 <= retry_after <= 300
    assert "Handoff is behind" in answer["error"] and "Nothing was stored" in answer["error"]
    assert await stack.services.store.by_external_id("hs-3") is None
    assert await stack.services.store.count_leads() == 3

    stack.sim.faults.clear()  # Slack is back: the outbox drains
    assert await stack.handoff.outbox.drain(60)
    status, _ = await stack.post_lead(lead(3))  # the CRM's retry
    assert status == 201
    await stack.settle()
    posts = [m for m in stack.sim.messages("C0ENT") if "hs-3" in str(m.metadata)]
    assert len(posts) == 1


async def test_intake_says_later_when_the_database_does_not_answer(
    stack: LocalStack, tmp_path: Path
) -> None:
    status, _ = await stack.post_lead(lead(1))
    assert status == 201
    await stack.settle()
    database = stack.handoff.database
    path = Path(str(database.url).split("///", 1)[1])
    await database.dispose()
    os.rename(path, tmp_path / "away.db")  # the file is gone: a new one has no tables
    try:
        status, answer = await stack.post_lead(lead(2))
        assert status == 503
        assert "the database does not answer" in answer["error"]
    finally:
        await database.dispose()
        for stray in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stray.unlink(missing_ok=True)
        os.rename(tmp_path / "away.db", path)
    status, _ = await stack.post_lead(lead(2))  # the retry, once it answers again
    assert status == 201
    assert await stack.services.store.count_leads() == 2


async def test_intake_says_later_while_the_database_is_slow(
    policy: Policy, clock: TravelClock
) -> None:
    """PostgreSQL holds a lock on the leads (a long migration, a stuck transaction): intake
    requests wait on it; past HANDOFF_INTAKE_MAX_IN_FLIGHT of them, the rest are told at once
    to come back (503, Retry-After: 1) instead of piling up; every one stored is stored once."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    from tests.conftest import postgres_database

    url, drop = await postgres_database()
    stack = await start_stack(url, policy, clock=clock, HANDOFF_INTAKE_MAX_IN_FLIGHT="4")
    locker = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE leads IN EXCLUSIVE MODE")  # writes wait; reads go on
        headers = {"Authorization": "Bearer local-intake-token"}

        async def send(n: int) -> tuple[int, str | None]:
            async with stack.session.post(
                f"{stack.base_url}/leads", json=lead(n), headers=headers
            ) as response:
                return response.status, response.headers.get("Retry-After")

        waiting = [asyncio.create_task(send(n)) for n in range(4)]
        await asyncio.sleep(0.5)  # the four are under way, waiting on the lock
        told = await asyncio.gather(*(send(n) for n in range(4, 10)))
        assert told == [(503, "1")] * 6
        assert not any(task.done() for task in waiting)
        await transaction.commit()  # the database catches up
        assert [status for status, _ in await asyncio.gather(*waiting)] == [201] * 4
        again = [await send(n) for n in range(4, 10)]  # the senders' retries, one by one
        assert [status for status, _ in again] == [201] * 6
        assert await stack.services.store.count_leads() == 10
    finally:
        await locker.close()
        await stack.close()
        await drop()
