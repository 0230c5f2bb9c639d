"""The tests' databases: a fresh, migrated PostgreSQL database or SQLite file for each test,
copied from one the real migrations built once per run. One module (imported by one name) holds
the run's templates, which test modules importing `tests.conftest` share with pytest's conftest."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.cli.stack import ERASURE_KEY
from bot.domain.erasure import ErasureKey
from storage import db
from storage.repository import Store

PG_ENV = "HANDOFF_TEST_POSTGRES_URL"


async def _pg_admin(url: str, statement: str) -> None:
    import asyncpg

    plain = make_url(url).set(drivername="postgresql")
    connection = await asyncpg.connect(plain.render_as_string(hide_password=False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


# A database the real migrations brought up to date once per test run, which each test's
# PostgreSQL database is a copy of (CREATE DATABASE … TEMPLATE): the same schema the migrations
# build, without running them again for every test (on two busy cores, seconds a test).
_template: dict[str, str] = {}


async def _migrated_template(base: str) -> str:
    if base not in _template:
        name = f"handoff_template_{uuid.uuid4().hex[:12]}"
        await _pg_admin(base, f'CREATE DATABASE "{name}"')
        database = db.Database(make_url(base).set(database=name).render_as_string(False))
        try:
            await db.upgrade(database.engine)
        except BaseException:  # a broken migration: no template left behind for each test
            await database.dispose()
            await _pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            raise
        finally:
            await database.dispose()  # a template must have no connections to be copied
        _template[base] = name
    return _template[base]


class _Dropper:
    """Drops the tests' databases on a thread of its own, so that the next test need not
    wait for PostgreSQL to remove the last one's files; the run's end waits for them all.
    One at a time while the tests run: dropping as fast as they come (four threads, tried)
    slowed each test's CREATE DATABASE three- to sixfold (tests/integration: 112 s became
    154 s), more than the backlog it spared the end cost."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self.thread: threading.Thread | None = None

    def drop(self, base: str, name: str) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="drop-databases", daemon=True)
            self.thread.start()
        self.queue.put((base, name))

    def _run(self) -> None:
        import asyncio

        while (job := self.queue.get()) is not None:
            base, name = job
            try:
                asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            except Exception as error:  # a database left behind is named, not fatal
                print(f"could not drop {name}: {error}")

    def finish(self) -> None:
        """Drop what is still queued, several at a time (the tests are over: nothing else
        waits for PostgreSQL), and the thread's last one."""
        import asyncio

        if self.thread is None:
            return
        backlog: list[tuple[str, str]] = []
        with contextlib.suppress(queue.Empty):
            while job := self.queue.get_nowait():  # (the thread may take one meanwhile)
                backlog.append(job)
        self.queue.put(None)
        asyncio.run(_drop_all(backlog))
        self.thread.join()
        self.thread = None


async def _drop_all(jobs: list[tuple[str, str]], width: int = 8) -> None:
    import asyncio

    slots = asyncio.Semaphore(width)

    async def drop(base: str, name: str) -> None:
        async with slots:
            try:
                await _pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as error:  # as the thread does: named, not fatal
                print(f"could not drop {name}: {error}")

    await asyncio.gather(*(drop(base, name) for base, name in jobs))


_dropper = _Dropper()


async def postgres_database(migrated: bool = True) -> tuple[str, Any]:
    """A fresh PostgreSQL database for one test (isolated), and its dropper: a copy of the
    migrated template, or (`migrated=False`) an empty one, for a test of the migrations."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (CI sets it); the SQLite run covers the rest")
    name = f"handoff_test_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{await _migrated_template(base)}"' if migrated else ""
    await _pg_admin(base, f'CREATE DATABASE "{name}"{template}')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)

    async def drop() -> None:
        _dropper.drop(base, name)

    return url, drop


def finish() -> None:
    """At the run's end: wait for the tests' databases to be dropped, then drop the templates."""
    _dropper.finish()
    for base, name in _template.items():
        _dropper.drop(base, name)
    _dropper.finish()
    _template.clear()
    for path in _sqlite_template.values():
        shutil.rmtree(path.parent, ignore_errors=True)
    _sqlite_template.clear()


_sqlite_template: dict[str, Path] = {}


async def _migrated_file() -> Path:
    """A SQLite file the real migrations brought up to date once per test run (copied for
    each test's store, as PostgreSQL's template is)."""
    if "path" not in _sqlite_template:
        folder = Path(tempfile.mkdtemp(prefix="handoff-template-"))
        path = folder / "template.db"
        database = db.Database(f"sqlite+aiosqlite:///{path}")
        try:
            await db.upgrade(database.engine)
        finally:
            await database.dispose()
        with closing(sqlite3.connect(path)) as raw:  # everything in the file itself
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _sqlite_template["path"] = path
    return _sqlite_template["path"]


def _copy_new(template: Path, path: str) -> None:
    if not os.path.exists(path):  # a test's own database is never overwritten
        shutil.copyfile(template, path)


@asynccontextmanager
async def migrated_store(url: str) -> AsyncIterator[Store]:
    """A Store on a database brought up to date by the real migrations."""
    path = make_url(url).database
    if url.startswith("sqlite") and path:
        _copy_new(await _migrated_file(), path)  # up to date: the upgrade finds it so
    database = db.Database(url)
    await db.upgrade(database.engine)
    try:
        yield Store(database, ErasureKey(ERASURE_KEY))
    finally:
        await database.dispose()
