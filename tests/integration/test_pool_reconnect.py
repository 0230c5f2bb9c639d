"""PostgreSQL: a pooled connection the server closed is replaced when it is next used, so a
database restart (or an operator's `pg_terminate_backend`) fails no request, for the writes
(`Database.run`) and for the long reads (`Database.read`, an engine of its own)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from storage import db
from tests.conftest import postgres_database


def _pid(connection: Connection) -> int:
    return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


async def _terminate(url: str, pids: set[int]) -> None:
    """End the server processes `pids` as a restart would, and wait (at most 10 s) until
    the server has let them go: their sockets are closed by then."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin: Any = await asyncpg.connect(plain)
    try:
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", list(pids)
            )
            if left == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the server kept {sorted(pids)} past 10 s")
    finally:
        await admin.close()


async def test_a_connection_the_server_closed_is_replaced_not_failed() -> None:
    url, drop = await postgres_database()
    database = db.Database(url)
    try:
        # Three connections in the pool at once, then all of them ended by the server.
        first = await asyncio.gather(*(database.run(_pid) for _ in range(3)))
        read_first = await database.read(_pid)
        await _terminate(url, {*first, read_first})

        after = await asyncio.gather(*(database.run(_pid) for _ in range(3)))
        read_after = await database.read(_pid)

        assert not set(after) & set(first)  # new connections, and every request answered
        assert read_after != read_first
    finally:
        await database.dispose()
        await drop()
