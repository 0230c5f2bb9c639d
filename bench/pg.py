"""PostgreSQL for the benchmarks: the server to use, and scratch databases dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url

PG_ENV = "HANDOFF_TEST_POSTGRES_URL"
PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def postgres_base() -> str | None:
    """The PostgreSQL URL to create databases from, or None when none answers."""
    import asyncpg

    base = os.environ.get(PG_ENV) or PG_DEFAULT
    try:
        connection = await asyncio.wait_for(asyncpg.connect(_plain(base)), 5)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return None
    await connection.close()
    return base


async def pg_admin(base: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_plain(base))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def scratch_databases(base: str, sizes: list[int]) -> AsyncIterator[dict[int, str]]:
    """A fresh database per size (their SQLAlchemy URLs), dropped on the way out."""
    names = {size: f"handoff_bench_{uuid.uuid4().hex[:12]}" for size in sizes}
    try:
        for name in names.values():
            await pg_admin(base, f'CREATE DATABASE "{name}"')
        yield {
            size: make_url(base).set(database=name).render_as_string(hide_password=False)
            for size, name in names.items()
        }
    finally:
        for name in names.values():
            await pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
