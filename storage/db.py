"""Engines and migrations: SQLite in WAL mode for one process, PostgreSQL for replicas."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

T = TypeVar("T")
R = TypeVar("R")

MIGRATIONS = Path(__file__).parent / "migrations"

log = logging.getLogger(__name__)

# The SQLSTATEs of a transaction PostgreSQL cancelled so that another could go on: a deadlock
# (40P01 deadlock_detected) and a serialization failure (40001). Its docs advise running such
# a transaction again ("Transaction Isolation", "Serialization Failure Handling": "It may also
# be advisable to retry deadlock failures. These have the SQLSTATE code 40P01").
RUN_AGAIN = frozenset({"40P01", "40001"})
RUN_AGAIN_TRIES = 3
RUN_AGAIN_BACKOFF_SECONDS = 0.05  # doubled at each try, jittered: the two seldom meet again


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


# The WAL file is cut back to this size once a checkpoint has emptied it. A burst of intake, or
# a long report holding the checkpoints back, grows it far past that (135 MB in one run); with
# no limit SQLite keeps the file at its largest, on disk, for good.
WAL_LIMIT_BYTES = 64 << 20


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _reader_pragmas(connection: Any, _record: Any) -> None:
    """A long read maps the file instead of copying each page through a read() call: a
    quarter's report reads 260,000 rows by rowid (about 15% faster, docs/benchmarks.md). The
    size is address space, not memory; beyond it SQLite reads as usual."""
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA mmap_size={READER_MMAP_BYTES}")
    cursor.close()


READER_MMAP_BYTES = 1 << 30
# SQLite: a long read (`Database.read`) calls its `pause` every so many of SQLite's virtual
# machine steps, a few milliseconds of a report's query on the benchmark machine.
PAUSE_STEPS = 200_000


def _pausing(pause: Callable[[], None]) -> Callable[[Any, Any], None]:
    """A reader connection's `connect` hook: `pause()` every `PAUSE_STEPS` steps of a query
    (SQLite's progress handler; it returns 0: go on)."""

    def handler() -> int:
        pause()
        return 0

    def connected(connection: Any, _record: Any) -> None:
        connection.set_progress_handler(handler, PAUSE_STEPS)

    return connected


CRM_INFO = "handoff_crm"  # the key of the `crm:` section in a connection's `info`


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; SQLite gets WAL and a single connection (one writer)."""
    if is_sqlite(url):
        # One connection serialises writers inside the process instead of making them wait
        # on SQLite's busy handler, which sleeps in steps of up to 100 ms.
        engine = create_async_engine(
            url, pool_size=1, max_overflow=0, pool_timeout=60, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # hide_parameters: no lead data in SQLAlchemy's log lines or error messages.
    engine = create_async_engine(url, pool_size=10, max_overflow=20, hide_parameters=True)
    replace_closed(engine)
    return engine


def _closed_is_gone(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this connection")


def replace_closed(engine: AsyncEngine) -> None:
    """PostgreSQL: a pooled connection the server closed (a restart, `pg_terminate_backend`,
    `idle_session_timeout`) is replaced when it is checked out, at no round trip: asyncpg
    reads the server's goodbye on the event loop as it comes, so the connection knows it is
    closed. SQLAlchemy's `pool_pre_ping` asks the server instead, and with asyncpg that is
    three round trips (BEGIN, a ping, ROLLBACK) before every transaction: 0.35 ms at p50 and
    1-1.7 ms at p99 on the benchmarks' machine. A connection lost without a word (a network
    cut) fails its request, as it would have failed the ping; SQLAlchemy then renews the
    whole pool (a disconnect invalidates every connection older than it)."""
    event.listen(engine.sync_engine, "checkout", _closed_is_gone)


def sqlstate(error: DBAPIError) -> str | None:
    """The SQLSTATE the server gave for `error` (asyncpg's `sqlstate`, psycopg's `pgcode`)."""
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return None if code is None else str(code)


@dataclass(frozen=True)
class Backend:
    """The PostgreSQL server process serving one connection, as the server describes it."""

    pid: int
    client_port: int | None  # None over a Unix socket
    database: str


BackendHook = Callable[[Backend], None]


def _announce_backends(engine: AsyncEngine, hook: BackendHook) -> None:
    """Tell `hook` of the server process behind each new connection of `engine` (PostgreSQL)."""

    def connected(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT pg_backend_pid(), inet_client_port(), current_database()")
            pid, port, name = cursor.fetchone()
        finally:
            cursor.close()
        hook(Backend(int(pid), None if port is None else int(port), str(name)))

    event.listen(engine.sync_engine, "connect", connected)


class _LoopThread:
    """An event loop in a thread of its own, with its own small engine: PostgreSQL's long
    reads run there (`Database.read`)."""

    def __init__(self, url: str, backends: BackendHook | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="db readers", daemon=True)
        self.thread.start()
        self.engine = create_async_engine(url, pool_size=2, max_overflow=2, hide_parameters=True)
        replace_closed(self.engine)
        if backends is not None:
            _announce_backends(self.engine, backends)

    def submit(self, work: Callable[[Connection], T]) -> concurrent.futures.Future[T]:
        async def read() -> T:
            async with self.engine.connect() as connection:
                async with connection.begin():
                    return await connection.run_sync(work)

        return asyncio.run_coroutine_threadsafe(read(), self.loop)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.engine.dispose(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


class Database:
    """Runs each unit of work as one transaction on a plain (sync) connection.

    SQLite runs in the event loop's own thread: a transaction on a local WAL file takes a
    fraction of a millisecond, less than handing it to a thread would cost (aiosqlite hops to
    its thread for every statement, and a busy loop makes every hop slow). One process owns
    the file (SPEC: several replicas use PostgreSQL), so writers never wait on each other;
    work that could take long (reports over the whole history) must not come through here.
    PostgreSQL uses the asyncpg engine through `run_sync`, so replicas and row locks work as
    usual.
    """

    def __init__(
        self,
        url: str,
        crm: Any = None,
        backends: BackendHook | None = None,
        pause: Callable[[], None] | None = None,
    ) -> None:
        """`backends`: on PostgreSQL, called with the server process of each new connection.
        `pause`: on SQLite, called inside long reads' queries every `PAUSE_STEPS` steps (the
        report worker gives way to Slack's requests there; on PostgreSQL a query runs in the
        database's own process)."""
        self.url = url
        self.engine = create_engine(url)
        self.backends = backends
        self._sqlite: Engine | None = None
        self._connection: Connection | None = None  # SQLite's one connection, kept open
        self._readers: Engine | None = None  # SQLite: long reads beside the event loop
        self._pg_reader: _LoopThread | None = None  # PostgreSQL: the same, started on demand
        # The SLA file's `crm:` section (None: no CRM). Each unit of work's connection carries
        # it in `info`, so storage adds the CRM writes an event causes in the event's own
        # transaction (storage/crm.py `insert_events`).
        self.crm: Any = crm
        if is_sqlite(url):
            sync_url = make_url(url).set(drivername="sqlite")
            self._sqlite = sqlalchemy.create_engine(
                sync_url, pool_size=1, max_overflow=0, hide_parameters=True
            )
            event.listen(self._sqlite, "connect", _sqlite_pragmas)
            self._readers = sqlalchemy.create_engine(
                sync_url,
                pool_size=2,
                max_overflow=2,
                connect_args={"check_same_thread": False},
                hide_parameters=True,
            )
            event.listen(self._readers, "connect", _sqlite_pragmas)
            event.listen(self._readers, "connect", _reader_pragmas)
            if pause is not None:
                event.listen(self._readers, "connect", _pausing(pause))
        elif backends is not None:
            _announce_backends(self.engine, backends)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work(connection)` in one transaction: committed if it returns, else rolled back."""
        if self._sqlite is not None:
            if self._connection is None or self._connection.closed:
                self._connection = self._sqlite.connect()
            self._connection.info[CRM_INFO] = self.crm
            with self._connection.begin():
                return work(self._connection)
        crm = self.crm

        def with_crm(connection: Connection) -> T:
            connection.info[CRM_INFO] = crm
            return work(connection)

        async with self.engine.begin() as connection:
            return await connection.run_sync(with_crm)

    async def run_retrying(
        self, work: Callable[[Connection], T], what: str, tries: int = RUN_AGAIN_TRIES
    ) -> T:
        """`run(work)`, run again (up to `tries` in all, after a short jittered pause) if
        PostgreSQL cancels its transaction for a deadlock or a serialization failure
        (`RUN_AGAIN`): nothing of it was written, so `work` must only be safe to run again
        from the start. For a unit of work a person would otherwise have to run again by
        hand (`what` names it in the log); others keep `run`'s one try."""
        for attempt in range(1, tries + 1):
            try:
                return await self.run(work)
            except DBAPIError as error:
                code = sqlstate(error)
                if code not in RUN_AGAIN or attempt == tries:
                    raise
                log.warning(
                    "PostgreSQL cancelled the %s's transaction (SQLSTATE %s: %s); it runs again "
                    "(try %d of %d)",
                    what,
                    code,
                    "deadlock detected" if code == "40P01" else "serialization failure",
                    attempt + 1,
                    tries,
                )
                pause = RUN_AGAIN_BACKOFF_SECONDS * 2 ** (attempt - 1)
                await asyncio.sleep(random.uniform(0.5, 1.0) * pause)
        raise AssertionError("unreachable")  # the last try returns or raises

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run read-only `work` that may take long (a quarter's report) off the event loop's
        thread, so the loop keeps answering Slack: on SQLite in a thread, on a connection of
        its own (a WAL reader never blocks the writer); on PostgreSQL on an event loop of its
        own in a thread, with an engine of its own (asyncpg's rows are turned into Python on
        the loop that reads them: a 20,000-lead week's would hold up every ack)."""
        readers = self._readers
        if readers is not None:

            def read() -> T:
                with readers.connect() as connection, connection.begin():
                    return work(connection)

            return await asyncio.to_thread(read)
        return await asyncio.wrap_future(self._pg_readers().submit(work))

    def _pg_readers(self) -> _LoopThread:
        if self._pg_reader is None:
            self._pg_reader = _LoopThread(self.url, self.backends)
        return self._pg_reader

    async def checkpoints(self, every: float = 2.0) -> None:
        """Checkpoint the SQLite WAL in a thread, forever (run as a task while serving).

        SQLite otherwise checkpoints inside whichever commit crosses 1000 pages, and that
        fsync would stall the event loop; here it happens beside it. Nothing to do elsewhere.
        """
        if self._sqlite is None:
            return
        await self.run(lambda db: db.exec_driver_sql("PRAGMA wal_autocheckpoint=0"))
        path = str(make_url(self.url).database)
        try:
            while True:
                await asyncio.sleep(every)
                await asyncio.to_thread(_checkpoint, path)
        finally:
            await self.run(lambda db: db.exec_driver_sql("PRAGMA wal_autocheckpoint=1000"))

    async def dispose(self) -> None:
        if self._pg_reader is not None:
            await asyncio.to_thread(self._pg_reader.stop)
            self._pg_reader = None
        await self.engine.dispose()
        if self._connection is not None:
            self._connection.close()
        if self._sqlite is not None:
            self._sqlite.dispose()
        if self._readers is not None:
            self._readers.dispose()


class GroupCommit(Generic[T, R]):
    """Calls that reach the event loop together share one transaction (group commit).

    Under a burst of button presses most of a claim's cost is per transaction (begin, commit,
    each statement's fixed cost), not per row. `work(connection, items)` writes every waiting
    item in one transaction and answers one result per item, in order; calls arriving while it
    runs form the next batch. Alone, a call is its own batch, as before. If a batch's
    transaction fails, each of its items is retried in its own, so a bad item fails alone.

    With `gather`, the writer lets the event loop turn once more before it takes a batch, so
    calls that reach it in that turn join the batch: under the intake burst SQLite's batches
    grew from 11 to 24 leads and its CPU a lead fell 13% (two or three more turns: 24 to 28,
    no better; docs/benchmarks.md). Alone, a call waits one empty turn.
    """

    def __init__(
        self, db: Database, work: Callable[[Connection, list[T]], list[R]], gather: bool = False
    ) -> None:
        self.db, self.work, self.gather = db, work, gather
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:  # the others of this loop turn join before it starts
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            if self.gather:
                await asyncio.sleep(0)  # one more loop turn: calls read in this one join
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._commit(batch)
        except BaseException:  # cancelled mid-batch (shutting down): nobody waits forever
            for _, future in batch + self._waiting:
                future.cancel()
            self._waiting = []
            raise
        finally:
            self._writer = None

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await self.db.run(lambda db: self.work(db, items))
        except Exception as error:
            if len(batch) > 1:
                for one in batch:
                    await self._commit([one])
                return
            if not batch[0][1].done():
                batch[0][1].set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # its request may have gone (the write stands)
                future.set_result(result)


def _checkpoint(path: str) -> None:
    # A connection of its own: the engine's one connection belongs to the event loop.
    with closing(sqlite3.connect(path, timeout=5)) as raw:
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


# Replicas started together (a rolling deploy) each upgrade at start: on PostgreSQL they take
# turns on this advisory lock, so the second finds the schema up to date instead of failing on
# a table the first just made (PostgreSQL's docs, "Advisory Locks").
_UPGRADE_LOCK = 0x68616E646F6666  # "handoff"
# How long a replica waits before it asks for its turn again (`_take_turn`).
TURN_POLL_SECONDS = 0.2


class SchemaTooNew(ValueError):
    """The database's schema is at a revision this code does not have: a newer Handoff
    upgraded it (a deploy rolled back). Said in one line; nothing is changed."""


# The oldest database each backend runs on: SQLite 3.35 (`RETURNING`, a `MATERIALIZED` CTE),
# PostgreSQL 12 (a `MATERIALIZED` CTE). Older, a query failed later as a syntax error.
SQLITE_OLDEST = (3, 35, 0)
POSTGRES_OLDEST = (12,)


class DatabaseTooOld(ValueError):
    """The database's engine is older than Handoff runs on: said in one line, before anything
    is changed, with what to do."""


def _new_enough(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        have = sqlite3.sqlite_version_info
        if have < SQLITE_OLDEST:
            raise DatabaseTooOld(
                f"this Python's SQLite is {sqlite3.sqlite_version}, and Handoff needs "
                f"{'.'.join(map(str, SQLITE_OLDEST))} or newer: use a Python built with a newer "
                "SQLite (Python 3.11's official builds have one), or PostgreSQL"
            )
        return
    server = connection.dialect.server_version_info or ()
    if server and server < POSTGRES_OLDEST:
        raise DatabaseTooOld(
            f"the PostgreSQL server is {'.'.join(map(str, server))}, and Handoff needs "
            f"{POSTGRES_OLDEST[0]} or newer: upgrade the server"
        )


def _upgrade(connection: Connection) -> None:
    _new_enough(connection)
    config = _alembic_config(connection)
    scripts = ScriptDirectory.from_config(config)
    current = _current(connection)
    if current is not None and current not in {
        script.revision for script in scripts.walk_revisions()
    }:
        raise SchemaTooNew(
            f"the database's schema is at revision {current}, which this version of Handoff "
            f"does not know (its newest is {scripts.get_current_head()}): a newer Handoff "
            "upgraded it. Run that version or a newer one; a schema is never downgraded."
        )
    if connection.dialect.name == "postgresql" and connection.in_transaction():
        connection.commit()  # the read's own: the migrations begin theirs (`upgrade`)
    command.upgrade(config, "head")


async def _take_turn(connection: AsyncConnection) -> None:
    """Hold the upgrade's session-level advisory lock on `connection`, asking for it until it
    is free. The holder builds indexes CONCURRENTLY, and such a build waits for every
    transaction with a snapshot older than its second scan (PostgreSQL's docs, CREATE INDEX,
    "Building Indexes Concurrently"): a replica waiting in `pg_advisory_lock` is one, so the
    build and that replica would wait on each other (PostgreSQL then cancels one of them, a
    "deadlock detected"). A `pg_try_advisory_lock` holds its snapshot only for an instant."""
    lock = text("SELECT pg_try_advisory_lock(:key)")
    while True:
        taken = (await connection.execute(lock, {"key": _UPGRADE_LOCK})).scalar()
        await connection.commit()  # no transaction, no snapshot, while it waits
        if taken:
            return
        await asyncio.sleep(TURN_POLL_SECONDS)


async def _end_turn(connection: AsyncConnection) -> None:
    """Give the upgrade's lock back, whatever the upgrade did; a connection that cannot is
    closed, which ends its session and its locks with it."""
    try:
        await connection.rollback()
        await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _UPGRADE_LOCK})
        await connection.commit()
    except Exception:
        await connection.invalidate()


class Unreachable(ConnectionError):
    """The database server did not answer (nothing listens there, no such host, a timeout):
    one line naming the URL, its password hidden, and what to check."""

    def __init__(self, url: URL, error: OSError) -> None:
        reason = error.strerror or str(error) or type(error).__name__
        super().__init__(
            f"the database {url.render_as_string(hide_password=True)} does not answer: "
            f"{reason}; check DATABASE_URL (its host and port) and that the server runs"
        )


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database's schema up to date (idempotent); Unreachable if its server does not
    answer (every command and `serve` start here)."""
    try:
        await _upgrade_schema(engine)
    except OSError as error:  # before any SQL: the driver's connection (asyncpg) failed
        raise Unreachable(engine.url, error) from error


async def _upgrade_schema(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":  # SQLite: one process, one transaction
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
        return
    # PostgreSQL: out of any transaction, so that a migration can build its indexes
    # CONCURRENTLY (storage/index_builds.py) and each migration runs in a transaction of its
    # own (storage/migrations/env.py). Replicas take turns on a session-level lock held across.
    async with engine.connect() as connection:
        await _take_turn(connection)
        try:
            await connection.run_sync(_upgrade)
        finally:
            await _end_turn(connection)


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


@dataclass(frozen=True)
class _Driven:
    """A statement compiled once for SQLite's driver: its SQL, its placeholders' values as a
    template (the statement's own constants, encoded once, in their places), the row's keys
    whose values fill the other places (`slots`), in order, and the encoders (the type's own
    bind processor) of the places that have one."""

    sql: str
    template: tuple[Any, ...]
    slots: tuple[int, ...]
    take: Callable[[dict[str, Any]], Any]  # a row's values for the slots, at C speed
    encoders: tuple[tuple[int, Callable[[Any], Any]], ...]


_DRIVEN: dict[tuple[Any, tuple[str, ...], type], _Driven | None] = {}


def _driven(statement: Any, keys: tuple[str, ...], dialect: Any) -> _Driven | None:
    """`statement` compiled for rows of `keys`; None if a placeholder needs SQLAlchemy (a
    default it computes, a list it expands)."""
    key = (statement, keys, type(dialect))  # one process may speak to both backends
    if key not in _DRIVEN:
        _DRIVEN[key] = _compile_driven(statement, keys, dialect)
    return _DRIVEN[key]


def _compile_driven(statement: Any, keys: tuple[str, ...], dialect: Any) -> _Driven | None:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    template: list[Any] = []
    slots: list[int] = []
    names: list[str] = []
    encoders: list[tuple[int, Callable[[Any], Any]]] = []
    for place, name in enumerate(compiled.positiontup or ()):
        bind = compiled.binds[name]
        encode = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if bind.expanding or bind.literal_execute:  # rendered into the SQL each time
            return None
        if name in keys:
            template.append(None)
            slots.append(place)
            names.append(name)
            if encode is not None:
                encoders.append((place, encode))
        elif bind.callable is not None or bind.value is None:
            return None
        else:  # a constant of the statement's own
            template.append(bind.value if encode is None else encode(bind.value))
    if not names:
        return None
    take = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    return _Driven(compiled.string, tuple(template), tuple(slots), take, tuple(encoders))


def insert_many(db: Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
    """`db.execute(statement, rows)` for an INSERT of many rows of the same keys. On SQLite,
    the rows go to the driver's executemany as tuples, each value encoded by its type's own
    bind processor (the same values SQLAlchemy binds), the statement compiled once per set
    of keys: SQLAlchemy's executemany builds a parameter dict per row and looks each value
    up twice on the way, most of its cost on an intake batch's rows beside SQLite's own work
    (issue 15). `statement` is built once (a module's constant): its compiled forms are
    kept by it."""
    driven = None
    if rows and db.dialect.name == "sqlite":
        driven = _driven(statement, tuple(rows[0]), db.dialect)
    if driven is None:
        db.execute(statement, rows)
        return
    db.exec_driver_sql(driven.sql, [_encoded(driven, row) for row in rows])


def _encoded(driven: _Driven, row: dict[str, Any]) -> tuple[Any, ...]:
    """`row`'s values for the driver, in the statement's places, encoded."""
    taken = driven.take(row)
    if len(driven.slots) == len(driven.template):  # no constants: the row is the tuple
        value = list(taken)
    else:
        value = list(driven.template)
        for place, item in zip(driven.slots, taken, strict=True):
            value[place] = item
    for place, encode in driven.encoders:
        value[place] = encode(value[place])
    return tuple(value)


def fetch_driven(db: Connection, statement: Any, params: dict[str, Any]) -> list[Any]:
    """`db.execute(statement, params)`'s rows, for the statements every routed lead runs
    (the stored leads' read, the rotation's lock, reads and write; issue 13), with the rows
    as the driver gives them (no result processing: for columns of plain types, the same
    values). The statement is compiled once per set of keys and driver, and sent with
    `exec_driver_sql`, each value encoded by its type's own bind processor: SQLAlchemy's
    own path works out the statement's cache key, a parameter dict and each row's
    processors at every execution, as much of a turn's time as the database's work. Errors
    come as SQLAlchemy's, as from `db.execute`. `statement` is built once (a module's
    constant or cached)."""
    driven = _driven(statement, tuple(params), db.dialect)
    if driven is None:
        result = db.execute(statement, params)
    else:
        result = db.exec_driver_sql(driven.sql, _encoded(driven, params))
    return list(result.all()) if result.returns_rows else []


def upsert_insert(db: Connection) -> Any:
    """The dialect's `insert` (with `on_conflict_do_nothing` / `…_do_update`) for `db`."""
    return postgresql_insert if db.dialect.name == "postgresql" else sqlite_insert
