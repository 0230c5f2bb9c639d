"""The store on SQLite and PostgreSQL: migrations, exactly-once updates, immutable stage times."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from bot.domain.effects import Announce, Effect, RefreshHomes, Render
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy, snapshot
from bot.domain.rotation import PoolRules
from storage import db
from storage.repository import NewLead, Store
from storage.rotation import RotationAsk
from storage.tables import Base
from tests.conftest import migrated_store
from tests.e2e.test_cli import newest_migration

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Monday 11:00 in Sydney


def new_lead(
    policy: Policy,
    external_id: str,
    segment: str = "enterprise",
    events: list[tuple[str, str, dict[str, Any]]] | None = None,
) -> NewLead:
    """A routed MQL as the intake use case hands it to storage: posted to C0ENT, with the
    App Home of the rep it is suggested to."""
    lead = LeadView(
        id=0,
        external_id=external_id,
        email=f"{external_id.lower()}@example.com",
        company={"name": "Acme"},
        score=85,
        stage=Stage.MQL,
        segment=segment,
        channel="C0ENT",
        tier="hot",
        sla_version=policy.version,
        received_at=NOW,
    )

    def effects(stored: LeadView) -> list[Effect]:
        key = f"{Announce.POST}:{stored.id}"
        return [Render(Announce.POST, stored.id, "C0ENT", key), RefreshHomes(leads=(stored.id,))]

    return NewLead(
        lead=lead,
        payload={"external_id": external_id},
        mql=True,
        complete=True,
        icp=None,
        rotation=RotationAsk(
            "enterprise", PoolRules(("U0REP1", "U0REP2"), {}), "2026-11-23", "2026-11-23"
        ),
        events=events or [],
        effects=effects,
    )


async def stored(store: Store, policy: Policy, external_id: str = "x-1") -> int:
    await store.save_policy(policy.version, snapshot(policy), NOW)
    lead, created = await store.create_lead(new_lead(policy, external_id), NOW)
    assert created
    return lead.id


async def test_migrations_build_exactly_the_models(store: Store) -> None:
    def diff(connection: Any) -> list[Any]:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with store.db.engine.connect() as connection:
        assert await connection.run_sync(diff) == []
    assert await db.current_revision(store.db.engine) == newest_migration()
    await db.upgrade(store.db.engine)  # a second upgrade is a no-op
    assert await db.current_revision(store.db.engine) == newest_migration()


async def test_sqlite_runs_in_wal_mode(sqlite_store: Store) -> None:
    mode = await sqlite_store.db.run(lambda s: s.execute(text("PRAGMA journal_mode")).scalar())
    assert mode == "wal"


async def test_concurrent_duplicates_store_one_lead(store: Store, policy: Policy) -> None:
    await store.save_policy(policy.version, snapshot(policy), NOW)
    results = await asyncio.gather(
        *(
            store.create_lead(new_lead(policy, "dup-1", events=[("received", "api", {})]), NOW)
            for _ in range(12)
        )
    )
    assert sum(created for _, created in results) == 1
    assert len({lead.id for lead, _ in results}) == 1
    assert await store.count_leads() == 1
    assert [e.type for e in await store.events(results[0][0].id)] == ["received"]


async def test_one_claim_wins_a_race(store: Store, policy: Policy) -> None:
    lead_id = await stored(store, policy)
    reps = [f"U0REP{i}" for i in range(20)]
    wins = await asyncio.gather(*(store.claim(lead_id, rep, None, NOW) for rep in reps))
    assert sum(wins) == 1
    lead = await store.get(lead_id)
    assert lead is not None and lead.owner == reps[wins.index(True)]
    assert lead.stage is Stage.SAL
    assert [e.type for e in await store.events(lead_id)].count("claimed") == 1


async def test_stage_timestamps_are_set_once(store: Store, policy: Policy) -> None:
    lead_id = await stored(store, policy)
    assert await store.mark_posted(lead_id, "C0ENT", "1.000100", NOW)
    assert not await store.mark_posted(lead_id, "C0ENT", "2.000200", NOW + timedelta(hours=1))
    assert await store.claim(lead_id, "U0REP1", None, NOW + timedelta(minutes=5))
    assert await store.log_attempt(lead_id, "U0REP1", "call", NOW + timedelta(minutes=10)) == 1
    assert await store.log_attempt(lead_id, "U0REP1", "email", NOW + timedelta(minutes=20)) == 2
    closed = await store.dispose(
        lead_id,
        "U0REP1",
        code="qualified",
        stage=Stage.SQL,
        reason=None,
        note=None,
        now=NOW + timedelta(minutes=30),
    )
    again = await store.dispose(
        lead_id,
        "U0REP1",
        code="not_a_fit",
        stage=Stage.REJECT,
        reason="x",
        note="y",
        now=NOW + timedelta(minutes=40),
    )
    assert closed and not again
    assert await store.log_attempt(lead_id, "U0REP1", "call", NOW + timedelta(hours=2)) is None
    lead = await store.get(lead_id)
    assert lead is not None
    assert lead.message_ts == "1.000100" and lead.posted_at == NOW
    assert lead.claimed_at == NOW + timedelta(minutes=5)
    assert lead.first_touch_at == NOW + timedelta(minutes=10)
    assert lead.dispositioned_at == NOW + timedelta(minutes=30)
    assert (lead.stage, lead.disposition_code, lead.attempts) == (Stage.SQL, "qualified", 2)
    kinds = [e.type for e in await store.events(lead_id)]
    assert kinds == ["posted", "claimed", "attempt", "first_touch", "attempt", "dispositioned"]


async def test_round_robin_rotates_and_persists(store: Store, policy: Policy) -> None:
    await store.save_policy(policy.version, snapshot(policy), NOW)
    owners = []
    for index in range(5):
        lead, _ = await store.create_lead(new_lead(policy, f"rr-{index}"), NOW)
        owners.append(lead.suggested_owner)
    assert owners == ["U0REP1", "U0REP2", "U0REP1", "U0REP2", "U0REP1"]
    again = Store(store.db, store.erasure_key)  # a restarted process continues the rotation
    lead, _ = await again.create_lead(new_lead(policy, "rr-5"), NOW)
    assert lead.suggested_owner == "U0REP2"


async def test_find_by_external_id_or_email(store: Store, policy: Policy) -> None:
    lead_id = await stored(store, policy, "sf-00Q1")
    by_id = await store.find("sf-00Q1")
    by_email = await store.find("SF-00Q1@example.com")
    assert by_id is not None and by_email is not None
    assert by_id.id == by_email.id == lead_id
    assert await store.find("nobody@example.com") is None


async def test_policy_snapshots_are_kept(store: Store, policy: Policy) -> None:
    await store.save_policy(policy.version, snapshot(policy), NOW)
    await store.save_policy(policy.version, {"ignored": True}, NOW)
    content = await store.policy_content(policy.version)
    assert content is not None and content["timezone"] == "Australia/Sydney"


async def test_round_robin_under_concurrent_intake(store: Store, policy: Policy) -> None:
    await store.save_policy(policy.version, snapshot(policy), NOW)
    leads = await asyncio.gather(
        *(store.create_lead(new_lead(policy, f"c-{i}"), NOW) for i in range(10))
    )
    owners = [lead.suggested_owner for lead, _ in leads]
    assert all(created for _, created in leads)
    assert owners.count("U0REP1") == owners.count("U0REP2") == 5


async def test_sqlite_checkpoints_beside_the_event_loop(sqlite_store: Store) -> None:
    database = sqlite_store.db

    def autocheckpoint(db: Any) -> int:
        return int(db.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())

    task = asyncio.create_task(database.checkpoints(every=0.01))
    await asyncio.sleep(0.05)
    assert await database.run(autocheckpoint) == 0  # commits never fsync a checkpoint
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await database.run(autocheckpoint) == 1000  # back to SQLite's own when not serving


def _wal_bytes(path: str) -> int:
    return Path(f"{path}-wal").stat().st_size


async def test_sqlite_cuts_its_wal_back_once_a_checkpoint_has_emptied_it(
    sqlite_url: str, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WAL grown while a long read held the checkpoints back is cut back to
    `WAL_LIMIT_BYTES` (here 64 KiB) by the first commit after a checkpoint: it does not keep
    its largest size on disk."""
    monkeypatch.setattr(db, "WAL_LIMIT_BYTES", 64 << 10)
    path = sqlite_url.split("///", 1)[1]
    async with migrated_store(sqlite_url) as store:
        await store.save_policy(policy.version, snapshot(policy), NOW)
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM leads").fetchall()  # a snapshot held, like a report
        for number in range(60):
            await store.create_lead(new_lead(policy, f"wal-{number}"), NOW)
        grown = _wal_bytes(path)
        reader.execute("COMMIT")
        reader.close()
        db._checkpoint(path)
        await store.create_lead(new_lead(policy, "wal-after"), NOW)
        cut = _wal_bytes(path)
    assert grown > 16 * (64 << 10)
    assert cut <= 2 * (64 << 10)  # cut back to the limit, then that one commit's pages


async def test_long_reads_run_off_the_event_loops_thread(store: Store) -> None:
    """Issue 15: a report's reads never hold up the acks: on SQLite in a worker thread, on
    PostgreSQL on an event loop of its own in a thread (rows are made into Python there)."""
    import threading

    here = threading.get_ident()
    there = await store.db.read(
        lambda db: (threading.get_ident(), db.exec_driver_sql("SELECT 1").scalar())
    )
    assert there[1] == 1 and there[0] != here


def test_sqlite_times_are_stored_as_sqlalchemy_stores_them() -> None:
    """UTCDateTime binds a time on SQLite in one step (`sqlite_text`): the same text as its own
    step followed by SQLAlchemy's SQLite DATETIME, which the stored rows and every comparison
    in SQL rely on."""
    from sqlalchemy.dialects import sqlite

    from storage.tables import UTCDateTime

    dialect = sqlite.dialect()
    plain = UTCDateTime()
    two_steps = plain.impl_instance.dialect_impl(dialect).bind_processor(dialect)
    one_step = plain.dialect_impl(dialect).bind_processor(dialect)
    sydney = timezone(timedelta(hours=11))
    for value in [
        NOW,
        NOW.replace(microsecond=1),
        NOW.replace(microsecond=999_999),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 3, 11, 14, 0, 0, 500, tzinfo=sydney),
        datetime(2026, 3, 11, 3, 0, 0, 500, tzinfo=ZoneInfo("UTC")),  # not the `UTC` object
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
    ]:
        expected = two_steps(plain.process_bind_param(value, dialect))
        assert one_step(value) == expected
    assert one_step(None) is None
    with pytest.raises(ValueError, match="naive"):
        one_step(datetime(2026, 1, 1))


async def test_rows_inserted_through_the_driver_are_stored_as_sqlalchemy_stores_them(
    sqlite_store: Store, policy: Policy
) -> None:
    """`insert_many` hands SQLite's driver each value encoded by its column type's processor:
    a lead row, its events and its outbox rows are stored as SQLAlchemy's executemany stores
    them, to the byte."""
    from storage.crm import _INSERT_EVENT
    from storage.db import insert_many
    from storage.outbox import _insert_effects, outbox_row
    from storage.repository import _INSERT_LEAD

    await sqlite_store.save_policy(policy.version, snapshot(policy), NOW)
    at = NOW.replace(microsecond=120)
    row = new_lead(policy, "x").columns() | {
        "route_reason": None,
        "claim_due_at": at,
        "icp": False,
        "engagement": [{"type": "webinar", "title": "Ünïcode"}],
    }
    event = {"type": "received", "actor": "api", "at": at, "data": {"score": 85, "why": None}}
    outbox = outbox_row("post_lead", "C0ENT", at, payload={"cycle": 2})

    def write(db: Any) -> None:
        for way in ("driver", "sqlalchemy"):

            def put(statement: Any, rows: list[dict[str, Any]], way: str = way) -> None:
                if way == "driver":
                    insert_many(db, statement, rows)
                else:
                    db.execute(statement, rows)

            put(_INSERT_LEAD, [dict(row, external_id=way, email=f"{way}@example.com")])
            found = db.execute(text("SELECT id FROM leads WHERE external_id = :e"), {"e": way})
            lead_id = found.scalar_one()
            put(_INSERT_EVENT, [dict(event, lead_id=lead_id), dict(event, lead_id=lead_id)])
            keys = [f"{way}-{n}" for n in range(2)]
            put(_insert_effects("sqlite"), [dict(outbox, lead_id=lead_id, key=k) for k in keys])

    await sqlite_store.db.run(write)

    def raw(db: Any, table: str, drop: set[str]) -> list[list[Any]]:
        result = db.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")
        names = list(result.keys())
        return [[v for n, v in zip(names, r, strict=True) if n not in drop] for r in result]

    def read(db: Any) -> None:
        leads = raw(db, "leads", {"id", "external_id", "email"})
        assert len(leads) == 2 and leads[0] == leads[1]
        events = raw(db, "events", {"id", "lead_id"})
        assert events[:2] == events[2:]
        outboxes = raw(db, "outbox", {"id", "lead_id", "key"})
        assert outboxes[:2] == outboxes[2:]

    await sqlite_store.db.run(read)
