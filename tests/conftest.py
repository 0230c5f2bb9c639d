"""Shared fixtures: the example SLA, and a migrated database on SQLite or PostgreSQL."""

from __future__ import annotations

import gc
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.domain.policy import Policy
from bot.services.policies import load_policy
from storage.repository import Store
from tests import databases
from tests.databases import PG_ENV, migrated_store, postgres_database

ROOT = Path(__file__).resolve().parents[1]
__all__ = ["PG_ENV", "migrated_store", "postgres_database"]  # imported from here by tests


def free_port() -> int:
    """A port nothing listens on now, for a server a test starts later (a process of its own,
    or one that must be down at first). Taken below the kernel's ephemeral range (Linux's
    default 32768–60999, /proc/sys/net/ipv4/ip_local_port_range), where the kernel gives no
    port to a server binding port 0 or to an outgoing connection: a port from that range
    could go to another test's server (the other xdist worker's) in the second before this
    one's process binds it, and the test then talked to that server."""
    for port in random.sample(range(20000, 32000), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


@asynccontextmanager
async def local_server(app: web.Application, port: int = 0) -> AsyncIterator[str]:
    """`app` served on 127.0.0.1 at `port` (0: any free one) until the block ends, without an
    access log; yields its base URL, `http://127.0.0.1:<port>`. A stand-in for what a test
    talks to: a proxy, a page, a receiver of webhooks, a bot."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(str(ROOT / "sla.yaml"))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish() -> None:
    databases.finish()
    # After this hook a pytest-xdist worker reports itself finished, and its controller tells
    # it to stop: execnet interrupts (SIGINT) a worker still busy 5 s later, printing a
    # KeyboardInterrupt. What it is busy with then is pytest's check for unraisable exceptions,
    # two full garbage collections of a heap the whole run built (seconds on a busy machine).
    # Collected here, while pytest still reports what it finds, and frozen, those two have
    # next to nothing left to walk.
    gc.collect()
    gc.freeze()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The same test on a SQLite file and on PostgreSQL (skipped without a server)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'handoff.db'}"
        return
    url, drop = await postgres_database()
    try:
        yield url
    finally:
        await drop()


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'handoff.db'}"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with migrated_store(database_url) as store:
        yield store


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[Store]:
    async with migrated_store(sqlite_url) as store:
        yield store


def lead_payload(external_id: str = "hs-1", **overrides: Any) -> dict[str, Any]:
    """A complete, hot, enterprise lead; override any field."""
    payload: dict[str, Any] = {
        "external_id": external_id,
        "email": f"{external_id}@northwind.example",
        "name": "Priya Raman",
        "title": "VP Revenue Operations",
        "phone": "+61 2 5550 1234",
        "company": {
            "name": "Northwind Logistics",
            "domain": "northwind.example",
            "employees": 2400,
            "industry": "Logistics",
            "country": "AU",
        },
        "source": "webinar",
        "campaign": "Q4 Pipeline Webinar",
        "score": 88,
        "engagement": [
            {"type": "webinar", "title": "Fixing lead leakage", "at": "2026-11-18T23:00:00Z"},
            {"type": "page", "title": "Pricing", "url": "https://example.com/pricing"},
        ],
    }
    payload.update(overrides)
    return payload
