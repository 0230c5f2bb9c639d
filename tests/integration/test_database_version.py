"""A database engine older than Handoff runs on is named in one line at the start, before any
table is made or changed; before, the first report's query failed as a syntax error (SQLite
before 3.35 has no `RETURNING` nor `MATERIALIZED`; PostgreSQL before 12 no `MATERIALIZED`)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import inspect

from storage import db


async def _tables(url: str) -> list[str]:
    engine = db.create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()


async def test_an_engine_too_old_is_named_and_nothing_is_made(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database_url.startswith("sqlite"):
        monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
        monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
        said = (
            "this Python's SQLite is 3.34.1, and Handoff needs 3.35.0 or newer: use a Python "
            "built with a newer SQLite (Python 3.11's official builds have one), or PostgreSQL"
        )
    else:
        monkeypatch.setattr(db, "POSTGRES_OLDEST", (99,))
        said = "and Handoff needs 99 or newer: upgrade the server"
    before = await _tables(database_url)  # PostgreSQL's test databases come migrated
    engine = db.create_engine(database_url)
    try:
        with pytest.raises(db.DatabaseTooOld) as refused:
            await db.upgrade(engine)
    finally:
        await engine.dispose()
    assert said in str(refused.value)
    assert await _tables(database_url) == before


async def test_this_machines_databases_are_new_enough(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine)
    finally:
        await engine.dispose()
    assert "leads" in await _tables(database_url)
