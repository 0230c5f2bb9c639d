"""Migrations on PostgreSQL while other replicas use the database: what they lock."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.policy import Policy
from storage import db
from tests.conftest import migrated_store, postgres_database
from tests.e2e.test_cli import clean_env, run
from tests.integration.test_storage import stored


def _before(config: Config, suffix: str) -> str:
    """The revision before the migration in the file ending so (the merger renumbers)."""
    (before,) = (
        str(script.down_revision)
        for script in ScriptDirectory.from_config(config).walk_revisions()
        if script.path.endswith(suffix)
    )
    return before


async def _back_to_before(engine: AsyncEngine, suffix: str) -> None:
    """Take the database back to the revision before the migration in the file ending so."""
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))

    def back(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, _before(config, suffix))

    async with engine.connect() as connection:  # out of a transaction, as `db.upgrade` runs
        await connection.run_sync(back)
        await connection.commit()


async def _with_events(url: str, policy: Policy, count: int = 5000) -> int:
    """A lead with `count` events of its own, some of them handovers; its id."""
    async with migrated_store(url) as store:
        lead = await stored(store, policy)
    database = db.Database(url)
    try:
        async with database.engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO events (lead_id, type, actor, at, data) "
                    "SELECT :lead, CASE g % 10 WHEN 0 THEN 'reassigned' WHEN 1 THEN 'claimed' "
                    "ELSE 'noted' END, 'U0REP1', now(), "
                    "CASE WHEN g % 20 = 1 THEN '{\"from\": \"U0REP2\"}' ELSE '{}' END::json "
                    "FROM generate_series(1, :count) AS g"
                ),
                {"lead": lead, "count": count},
            )
    finally:
        await database.dispose()
    return lead


_WRITE = text(
    "INSERT INTO events (lead_id, type, actor, at, data) "
    "VALUES (:lead, 'noted', 'U0REP2', now(), '{}'::json)"
)
_BUILDER = (
    "FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
    "AND query ILIKE 'CREATE%INDEX%ix_events_handovers%'"
)
_BUILD_WAITS = text(f"SELECT count(*) {_BUILDER}")
_INDEXES = text(
    "SELECT c.relname, i.indisvalid, i.indisunique, pg_get_expr(i.indpred, i.indrelid) "
    "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = 'events'::regclass ORDER BY c.relname"
)


async def _handovers_index(engine: AsyncEngine) -> tuple[bool, bool, str]:
    """`ix_events_handovers`'s validity, uniqueness and predicate; every index of the events
    is valid, and none is left over."""
    async with engine.connect() as connection:
        indexes = {row[0]: row[1:] for row in await connection.execute(_INDEXES)}
    assert set(indexes) == {"events_pkey", "ix_events_lead_at", "ix_events_handovers"}
    assert all(valid for valid, _, _ in indexes.values())
    valid, unique, predicate = indexes["ix_events_handovers"]
    return valid, unique, str(predicate)


@pytest.mark.parametrize("suffix", ["_event_handovers.py", "_claim_handovers.py"])
async def test_writes_and_reads_of_the_events_go_on_while_the_handovers_index_is_built(
    policy: Policy, suffix: str
) -> None:
    """The upgrades that build `ix_events_handovers` (0029) and rebuild it (0032) on a store
    with events wait for a replica's open write on the events, as any index build does;
    meanwhile the other replicas' writes (every intake, claim and attempt) and reads of the
    events go on. A plain CREATE INDEX queues a SHARE lock, which every later write waits
    behind, for as long as the build takes; a DROP INDEX, an ACCESS EXCLUSIVE lock, which
    reads wait behind too (PostgreSQL's docs, CREATE INDEX, "Building Indexes Concurrently";
    "Explicit Locking")."""
    url, drop = await postgres_database()
    upgrading, replica = db.Database(url), db.Database(url)
    try:
        lead = await _with_events(url, policy)
        await _back_to_before(upgrading.engine, suffix)
        async with replica.engine.connect() as writer, replica.engine.connect() as other:
            await writer.execute(_WRITE, {"lead": lead})  # open until the build waits for it
            upgrade = asyncio.create_task(db.upgrade(upgrading.engine))
            for _ in range(200):  # until the build waits for the open write
                waits = (await other.execute(_BUILD_WAITS)).scalar()
                await other.commit()
                if waits:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the index build never waited for the open write")
            patience = text("SET LOCAL lock_timeout = '2s'")  # instead of waiting for good
            await other.execute(patience)
            try:
                await other.execute(_WRITE, {"lead": lead})
                await other.commit()
                wrote: object = "written"
            except DBAPIError as error:
                wrote = f"blocked: {error.orig}"
                await other.rollback()
            await other.execute(patience)
            try:
                read = (await other.execute(text("SELECT count(*) FROM events"))).scalar()
            except DBAPIError as error:
                read = f"blocked: {error.orig}"
            await other.rollback()
            building = not upgrade.done() and (await other.execute(_BUILD_WAITS)).scalar()
            await other.rollback()
            await writer.commit()
            await asyncio.wait_for(upgrade, 60)
        assert wrote == "written"
        assert building  # the write went in while the build was going on
        assert isinstance(read, int) and read > 5000
        valid, unique, predicate = await _handovers_index(upgrading.engine)
        assert (valid, unique) == (True, False)
        assert "reassigned" in predicate and "claimed" in predicate
        head = ScriptDirectory.from_config(db._alembic_config()).get_current_head()
        assert await db.current_revision(upgrading.engine) == head
    finally:
        await upgrading.dispose()
        await replica.dispose()
        await drop()


@pytest.mark.parametrize(
    ("suffix", "left"),
    [
        ("_event_handovers.py", "ix_events_handovers"),
        ("_claim_handovers.py", "ix_events_handovers_next"),
    ],
)
async def test_an_index_build_cut_short_is_built_again_by_the_next_upgrade(
    policy: Policy, suffix: str, left: str
) -> None:
    """An upgrade killed or failed mid-build leaves an INVALID index of the build's name
    (PostgreSQL's docs, CREATE INDEX: "the recommended recovery method ... is to drop the index
    and try again"): the next upgrade drops it and builds it again, rather than stopping on its
    name taken (or keeping an index the planner never uses). Made here as PostgreSQL leaves it:
    a concurrent unique build that fails on duplicates."""
    url, drop = await postgres_database()
    database = db.Database(url)
    try:
        await _with_events(url, policy, count=200)
        await _back_to_before(database.engine, suffix)
        plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(plain)
        try:
            with pytest.raises(asyncpg.UniqueViolationError):
                await connection.execute(
                    f"CREATE UNIQUE INDEX CONCURRENTLY {left} ON events (actor)"
                )
            valid = await connection.fetchval(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = $1::regclass", left
            )
        finally:
            await connection.close()
        assert valid is False
        await db.upgrade(database.engine)
        valid, unique, predicate = await _handovers_index(database.engine)
        assert (valid, unique) == (True, False)
        assert "claimed" in predicate
    finally:
        await database.dispose()
        await drop()


@pytest.mark.parametrize("suffix", ["_event_handovers.py", "_claim_handovers.py"])
async def test_an_upgrade_killed_mid_build_is_finished_by_the_next(
    policy: Policy, suffix: str
) -> None:
    """The upgrading replica's server process is killed while its build waits for a write
    (the build's index is in the catalog by then, INVALID): its turn ends with its session,
    and the next upgrade drops the invalid index, builds it and reaches the head."""
    url, drop = await postgres_database()
    database, replica = db.Database(url), db.Database(url)
    try:
        lead = await _with_events(url, policy, count=200)
        await _back_to_before(database.engine, suffix)
        async with replica.engine.connect() as writer, replica.engine.connect() as other:
            await writer.execute(_WRITE, {"lead": lead})
            upgrade = asyncio.create_task(db.upgrade(database.engine))
            for _ in range(200):
                builder = (await other.execute(text(f"SELECT pid {_BUILDER}"))).scalar()
                await other.commit()
                if builder is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the index build never waited for the open write")
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": builder})
            await other.commit()
            with pytest.raises(SQLAlchemyError):  # its connection gone (alembic says so)
                await asyncio.wait_for(upgrade, 60)
            await writer.commit()
            left = (
                await other.execute(
                    text(
                        "SELECT count(*) FROM pg_index WHERE NOT indisvalid "
                        "AND indrelid = 'events'::regclass"
                    )
                )
            ).scalar()
            await other.commit()
        assert left == 1
        async with asyncio.timeout(60):
            await db.upgrade(database.engine)
        valid, unique, predicate = await _handovers_index(database.engine)
        assert (valid, unique) == (True, False)
        assert "claimed" in predicate
        head = ScriptDirectory.from_config(db._alembic_config()).get_current_head()
        assert await db.current_revision(database.engine) == head
    finally:
        await database.dispose()
        await replica.dispose()
        await drop()


async def test_an_upgrade_that_fails_gives_its_turn_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replicas take turns on a session-level lock (held across the index builds' autocommit
    blocks): an upgrade that fails gives it back, so the next replica's upgrade runs rather
    than waiting for good behind a pooled connection that still holds it."""
    url, drop = await postgres_database()
    failing, other = db.Database(url), db.Database(url)

    def broken(_connection: Connection) -> None:
        raise RuntimeError("a broken migration")

    try:
        with monkeypatch.context() as patch:
            patch.setattr(db, "_upgrade", broken)
            with pytest.raises(RuntimeError, match="a broken migration"):
                await db.upgrade(failing.engine)
        async with other.engine.connect() as connection:
            free = (
                await connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": db._UPGRADE_LOCK}
                )
            ).scalar()
            await connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": db._UPGRADE_LOCK}
            )
        assert free is True
        async with asyncio.timeout(60):
            await db.upgrade(failing.engine)  # its pooled connection holds nothing
    finally:
        await failing.dispose()
        await other.dispose()
        await drop()


async def test_an_upgrade_that_fails_part_way_keeps_the_migrations_it_finished() -> None:
    """On PostgreSQL each migration commits on its own (docs/operations.md, "Upgrading"): an
    upgrade stopped by a migration that fails (here 0031, its table already there) keeps the
    ones before it (0030), gives its turn back and tells the operator in one line, not a
    traceback; the next upgrade goes on from there."""
    url, drop = await postgres_database()
    database = db.Database(url)
    config = db._alembic_config()
    try:
        await _back_to_before(database.engine, "_crm_inbox_retention.py")
        async with database.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE erasure_keys (key_id VARCHAR(16))"))
        result = await asyncio.to_thread(run, "db", "upgrade", env=clean_env(DATABASE_URL=url))
        assert result.returncode == 2
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("handoff: the database ") and "erasure_keys" in line
        assert await db.current_revision(database.engine) == _before(config, "_erasure_keys.py")
        async with database.engine.begin() as connection:
            key = {"key": db._UPGRADE_LOCK}
            free = (
                await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key)
            ).scalar()
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            assert free is True
            await connection.execute(text("DROP TABLE erasure_keys"))
        async with asyncio.timeout(60):
            await db.upgrade(database.engine)
        head = ScriptDirectory.from_config(config).get_current_head()
        assert await db.current_revision(database.engine) == head
    finally:
        await database.dispose()
        await drop()


async def test_a_migration_that_fails_leaves_no_template_database_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tests' template is built by the real migrations once per run; when they fail (a
    migration being written), each test that asks for a database says so and nothing of it
    stays on the server: not one `handoff_template_…` database per test."""
    from tests import databases

    base = os.environ.get(databases.PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {databases.PG_ENV}")
    fixed = uuid.UUID("7e57da7a-ba5e-4000-8000-000000000000")
    monkeypatch.setattr(databases, "_template", {})  # this run's template is not rebuilt
    monkeypatch.setattr(databases.uuid, "uuid4", lambda: fixed)

    async def broken(_engine: object) -> None:
        raise RuntimeError("a broken migration")

    monkeypatch.setattr(databases.db, "upgrade", broken)
    with pytest.raises(RuntimeError, match="a broken migration"):
        await databases.postgres_database()
    monkeypatch.undo()
    plain = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(plain)
    try:
        left = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname = $1",
            f"handoff_template_{fixed.hex[:12]}",
        )
    finally:
        await connection.close()
    assert left == []


async def test_replicas_starting_together_on_an_empty_database_all_start() -> None:
    """A rolling deploy starts several replicas at once, and each upgrades the schema at start:
    they take turns, so each finds it built or builds it (before, the second failed on a table
    the first had just made, and started only when restarted)."""
    url, drop = await postgres_database(migrated=False)
    replicas = [db.Database(url) for _ in range(3)]
    try:
        async with asyncio.timeout(120):  # without turns they could wait on each other for good
            await asyncio.gather(*(db.upgrade(replica.engine) for replica in replicas))
        head = ScriptDirectory.from_config(db._alembic_config()).get_current_head()
        assert await db.current_revision(replicas[0].engine) == head
    finally:
        for replica in replicas:
            await replica.dispose()
        await drop()
