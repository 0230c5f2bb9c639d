"""On PostgreSQL a report's queries run in server processes of their own: the report worker
gives them nice 19 where they are on this machine and its own to change (issue 15, item 5),
and leaves every other process alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.services.report_process import yielding_backend
from storage.db import Backend, Database
from tests.conftest import postgres_database


def backend_pid(db: Connection) -> int:
    return int(db.execute(text("SELECT pg_backend_pid()")).scalar_one())


def ours_to_change(pid: int) -> bool:
    """Whether this process may lower `pid`'s priority: here, as our user, or we are root."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    return os.geteuid() in (0, uid)


async def test_the_database_names_the_server_process_behind_each_new_connection() -> None:
    url, drop = await postgres_database()
    seen: list[Backend] = []
    database = Database(url, backends=seen.append)
    try:
        read = await database.read(backend_pid)  # the long reads' own engine
        ran = await database.run(backend_pid)  # the unit of work's
        assert {read, ran} <= {backend.pid for backend in seen}
        assert {backend.database for backend in seen} == {url.rsplit("/", 1)[1]}
    finally:
        await database.dispose()
        await drop()


async def test_a_reports_server_process_gets_nice_19_where_it_is_ours() -> None:
    url, drop = await postgres_database()
    database = Database(url, backends=yielding_backend)
    try:
        pid = await database.read(backend_pid)
        if not ours_to_change(pid):
            pytest.skip("PostgreSQL runs elsewhere, or as a user this test may not renice")
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19
    finally:
        await database.dispose()
        await drop()


async def test_a_process_that_is_not_the_connections_server_is_left_alone() -> None:
    url, drop = await postgres_database()
    seen: list[Backend] = []
    database = Database(url, backends=seen.append)
    try:
        pid = await database.read(backend_pid)
        before = os.getpriority(os.PRIO_PROCESS, pid)
        backend = next(backend for backend in seen if backend.pid == pid)
        port = (backend.client_port or 0) + 1
        yielding_backend(Backend(pid, port, backend.database))  # another client's
        yielding_backend(Backend(pid, backend.client_port, "another_database"))
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        yielding_backend(Backend(os.getpid(), backend.client_port, backend.database))
        assert os.getpriority(os.PRIO_PROCESS, pid) == before
        assert os.getpriority(os.PRIO_PROCESS, 0) == mine
    finally:
        await database.dispose()
        await drop()


_LONG_COUNT = text(
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000) "
    "SELECT count(*) FROM n"
)


async def test_on_sqlite_a_long_reads_query_pauses_inside_itself(tmp_path: Path) -> None:
    """A report's query on SQLite runs in the report worker's own thread, one statement that
    can take 100 ms: the long reads' connections call `pause` every `PAUSE_STEPS` steps of it
    (SQLite's progress handler), so the worker gives way to Slack inside the query too. The
    unit of work's connection (the server's writes) never pauses."""
    pauses: list[int] = []
    database = Database(
        f"sqlite+aiosqlite:///{tmp_path / 'pause.db'}", pause=lambda: pauses.append(1)
    )
    try:
        count = await database.read(lambda db: db.execute(_LONG_COUNT).scalar_one())
        assert count == 100_000
        assert len(pauses) >= 2
        read_pauses = len(pauses)
        assert await database.run(lambda db: db.execute(_LONG_COUNT).scalar_one()) == 100_000
        assert len(pauses) == read_pauses
    finally:
        await database.dispose()
