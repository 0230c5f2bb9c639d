"""Group commit: claims and leads that arrive together share one transaction, and fail one by
one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.domain.effects import Effect, Refresh, RefreshHomes
from bot.domain.policy import Policy, snapshot
from storage.db import Database, GroupCommit
from storage.outbox import OutboxStore
from storage.repository import Intaken, Store
from tests.integration.test_storage import NOW, new_lead


@contextmanager
def counted_commits() -> Iterator[list[int]]:
    """How many transactions any engine commits inside the block."""
    commits: list[int] = []

    def count(_connection: Any) -> None:
        commits.append(1)

    event.listen(Engine, "commit", count)
    try:
        yield commits
    finally:
        event.remove(Engine, "commit", count)


def rerendered(lead_id: int) -> list[Effect]:
    """What the claim use case decides a claim causes: its message and its people's homes."""
    return [Refresh(lead_id), RefreshHomes(leads=(lead_id,))]


async def test_a_burst_of_claims_commits_together(store: Store, policy: Policy) -> None:
    await store.save_policy(policy.version, snapshot(policy), NOW)
    leads = [
        (await store.create_lead(new_lead(policy, f"burst-{i}"), NOW))[0].id for i in range(40)
    ]
    claimers = {lead_id: f"U0REP{index % 7}" for index, lead_id in enumerate(leads)}
    before = await OutboxStore(store.db).pending()

    with counted_commits() as commits:
        wins = await asyncio.gather(
            *(
                store.claim(lead_id, rep, None, NOW, effects=rerendered(lead_id))
                for lead_id, rep in claimers.items()
            )
        )

    assert wins == [True] * 40
    assert len(commits) < 40  # fewer transactions than presses: they were grouped
    for lead_id, rep in claimers.items():
        lead = await store.get(lead_id)
        assert lead is not None and lead.owner == rep and lead.claimed_at == NOW
        assert [e.type for e in await store.events(lead_id)].count("claimed") == 1
    # one message re-render asked for each claimed lead (nobody has opened App Home)
    assert await OutboxStore(store.db).pending() == before + 40


async def test_a_race_inside_one_batch_still_has_one_winner(store: Store, policy: Policy) -> None:
    await store.save_policy(policy.version, snapshot(policy), NOW)
    lead_id = (await store.create_lead(new_lead(policy, "race-1"), NOW))[0].id
    other = (await store.create_lead(new_lead(policy, "race-2"), NOW))[0].id
    reps = [f"U0REP{i}" for i in range(10)]
    with counted_commits() as commits:
        wins = await asyncio.gather(
            *(store.claim(lead_id, rep, None, NOW) for rep in reps),
            store.claim(other, "U0REP9", None, NOW),
        )
    assert len(commits) < 11
    assert sum(wins[:10]) == 1 and wins[10] is True
    lead = await store.get(lead_id)
    assert lead is not None and lead.owner == reps[wins.index(True)]
    assert [e.type for e in await store.events(lead_id)].count("claimed") == 1


async def test_leads_arriving_together_commit_together_and_a_bad_one_fails_alone(
    store: Store, policy: Policy
) -> None:
    await store.save_policy(policy.version, snapshot(policy), NOW)
    sent = [new_lead(policy, f"intake-{i}") for i in range(12)]
    # A row the database refuses (no channel): only its own request fails.
    sent[5] = replace(sent[5], lead=replace(sent[5].lead, channel=None))  # type: ignore[arg-type]
    with counted_commits() as commits:
        results = await asyncio.gather(
            *(store.intake(new, NOW) for new in sent), return_exceptions=True
        )

    assert isinstance(results[5], IntegrityError)
    stored = [result for index, result in enumerate(results) if index != 5]
    assert all(isinstance(r, Intaken) and r.created and not r.known for r in stored)
    assert len({r.lead.id for r in stored if isinstance(r, Intaken)}) == 11
    assert await store.count_leads() == 11
    assert len(commits) <= 12  # the failed batch, then each of its leads alone
    # Sent again: each answers the lead stored, known before, and nothing is added.
    again = await asyncio.gather(*(store.intake(new, NOW) for new in sent if new is not sent[5]))
    assert all(r.known and not r.created for r in again)
    assert [r.lead.id for r in again] == [r.lead.id for r in stored if isinstance(r, Intaken)]
    assert await store.count_leads() == 11


async def test_a_burst_of_leads_shares_one_transaction(store: Store, policy: Policy) -> None:
    await store.save_policy(policy.version, snapshot(policy), NOW)
    with counted_commits() as commits:
        results = await asyncio.gather(
            *(store.intake(new_lead(policy, f"one-{i}"), NOW) for i in range(30))
        )
    assert all(r.created for r in results) and len({r.lead.id for r in results}) == 30
    assert len(commits) < 30
    assert await OutboxStore(store.db).pending() == 30  # each lead's post, once


async def test_a_burst_of_leads_gets_its_ids_from_its_insert_on_postgresql(
    store: Store, policy: Policy
) -> None:
    """PostgreSQL: one INSERT … RETURNING stores a batch's leads and answers their ids (no
    second round trip to read them back); SQLite's driver executemany reads them after."""
    await store.save_policy(policy.version, snapshot(policy), NOW)
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", seen)  # any engine: SQLite's is a sync one
    try:
        results = await asyncio.gather(
            *(store.intake(new_lead(policy, f"ids-{i}"), NOW) for i in range(12))
        )
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert sorted(r.lead.external_id for r in results) == sorted(f"ids-{i}" for i in range(12))
    stored = [await store.by_external_id(f"ids-{i}") for i in range(12)]
    assert [lead.id if lead else None for lead in stored] == [
        next(r.lead.id for r in results if r.lead.external_id == f"ids-{i}") for i in range(12)
    ]  # each lead answered with the id it was stored under
    read_back = [s for s in sent if s.startswith("SELECT leads.external_id, leads.id FROM")]
    returning = [s for s in sent if s.startswith("INSERT INTO leads") and "RETURNING" in s]
    if store.db.engine.dialect.name == "postgresql":
        assert returning and not read_back
    else:
        assert read_back and not returning


def _insert_all(db: Connection, values: list[int]) -> list[int]:
    for value in values:
        db.execute(text("INSERT INTO scratch (v) VALUES (:v)"), {"v": value})
    return [value * 10 for value in values]


async def _scratch(database: Database) -> None:
    await database.run(lambda db: db.execute(text("CREATE TABLE scratch (v INTEGER UNIQUE)")))
    await database.run(lambda db: db.execute(text("INSERT INTO scratch (v) VALUES (3)")))


async def _rows(database: Database) -> list[int]:
    found = await database.run(lambda db: db.execute(text("SELECT v FROM scratch")).all())
    return sorted(row[0] for row in found)


async def test_a_failing_item_fails_alone(database_url: str) -> None:
    database = Database(database_url)
    try:
        await _scratch(database)
        group = GroupCommit(database, _insert_all)
        results = await asyncio.gather(*(group(v) for v in (1, 2, 3, 4)), return_exceptions=True)
        assert results[:2] == [10, 20] and results[3] == 40
        assert isinstance(results[2], IntegrityError)  # 3 was there already
        assert await _rows(database) == [1, 2, 3, 4]  # the others written once each
    finally:
        await database.dispose()


async def test_a_caller_that_goes_away_leaves_the_others_answered(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    try:
        await _scratch(database)
        group = GroupCommit(database, _insert_all)
        calls = [asyncio.create_task(group(v)) for v in (5, 6, 7)]
        await asyncio.sleep(0)  # all three are waiting for the writer
        calls[1].cancel()
        assert await calls[0] == 50 and await calls[2] == 70
        with pytest.raises(asyncio.CancelledError):
            await calls[1]
        assert await _rows(database) == [3, 5, 6, 7]  # a write that was asked for stands
        assert await group(8) == 80  # and the next burst is written as usual
    finally:
        await database.dispose()
