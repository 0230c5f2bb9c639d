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
from sqlalchemy.exc import DBAPIError

from storage import db
from tests.conftest import postgres_database


def _before(config: Config, suffix: str) -> str:
    """The revision before the migration in the file ending so (the merger renumbers)."""
    (before,) = (
        str(script.down_revision)
        for script in ScriptDirectory.from_config(config).walk_revisions()
        if script.path.endswith(suffix)
    )
    return before


async def test_reads_of_the_events_go_on_while_the_handovers_index_is_rebuilt() -> None:
    """The upgrade that rebuilds `ix_events_handovers` waits for a replica's open write on
    the events, as any index build does; meanwhile the other replicas' reads of the events
    (a lead's timeline, a report) are answered. A DROP INDEX first would queue an ACCESS
    EXCLUSIVE lock, which every later read waits behind (PostgreSQL's docs, "Explicit
    Locking" and DROP INDEX), for as long as the build takes."""
    url, drop = await postgres_database()
    upgrading, replica = db.Database(url), db.Database(url)
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))

    def back(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, _before(config, "_claim_handovers.py"))

    try:
        async with upgrading.engine.begin() as connection:
            await connection.run_sync(back)
        async with replica.engine.connect() as writer, replica.engine.connect() as reader:
            await writer.execute(text("LOCK TABLE events IN ROW EXCLUSIVE MODE"))  # a write
            upgrade = asyncio.create_task(db.upgrade(upgrading.engine))
            waiting = text(
                "SELECT count(*) FROM pg_locks WHERE relation = 'events'::regclass AND NOT granted"
            )
            for _ in range(200):  # until the upgrade waits for the write
                if (await reader.execute(waiting)).scalar():
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the upgrade never waited for the open write")
            await reader.commit()
            await reader.execute(text("SET lock_timeout = '2s'"))
            try:
                read = (await reader.execute(text("SELECT count(*) FROM events"))).scalar()
            except DBAPIError as error:
                read = f"blocked: {error.orig}"
            await reader.rollback()
            await writer.commit()
            await asyncio.wait_for(upgrade, 30)
        assert read == 0
        async with upgrading.engine.connect() as connection:
            predicate = (
                await connection.execute(
                    text(
                        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index "
                        "WHERE indexrelid = 'ix_events_handovers'::regclass"
                    )
                )
            ).scalar()
        assert "claimed" in str(predicate)
    finally:
        await upgrading.dispose()
        await replica.dispose()
        await drop()


async def test_a_migration_that_fails_leaves_no_template_database_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tests' template is built by the real migrations once per run; when they fail (a
    migration being written), each test that asks for a database says so and nothing of it
    stays on the server: not one `handoff_template_…` database per test."""
    from sqlalchemy.engine import make_url

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
