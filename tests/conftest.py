"""Shared fixtures: the example SLA, and a migrated database on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.cli.stack import ERASURE_KEY
from bot.domain.erasure import ErasureKey
from bot.domain.policy import Policy
from bot.services.policies import load_policy
from storage import db
from storage.repository import Store

ROOT = Path(__file__).resolve().parents[1]
PG_ENV = "HANDOFF_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(str(ROOT / "sla.yaml"))


async def _pg_admin(url: str, statement: str) -> None:
    import asyncpg

    plain = make_url(url).set(drivername="postgresql")
    connection = await asyncpg.connect(plain.render_as_string(hide_password=False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def postgres_database() -> tuple[str, Any]:
    """A fresh PostgreSQL database for one test (isolated), and its dropper."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (CI sets it); the SQLite run covers the rest")
    name = f"handoff_test_{uuid.uuid4().hex[:12]}"
    await _pg_admin(base, f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)

    async def drop() -> None:
        await _pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


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


@asynccontextmanager
async def migrated_store(url: str) -> AsyncIterator[Store]:
    """A Store on a database brought up to date by the real migrations."""
    database = db.Database(url)
    await db.upgrade(database.engine)
    try:
        yield Store(database, ErasureKey(ERASURE_KEY))
    finally:
        await database.dispose()


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
