"""Fixtures shared by the storage tests: the use cases over a migrated store (SQLite and
PostgreSQL, from tests/conftest.py), with a notifier that only counts its wake-ups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.util import await_only

from bot.domain.policy import Policy, parse_policy, snapshot
from bot.services.erasure import forget
from bot.services.leads import Services
from bot.services.policies import PolicyBook
from bot.services.sweep import Sweeper
from storage.away import AwayStore
from storage.repository import Store
from storage.sweep import SweepStore
from tests.conftest import lead_payload

MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # 11:00 in Sydney, 00:00 in London


class Wakes:
    """The delivery worker's stand-in: counts the "deliver soon" after each commit."""

    def __init__(self) -> None:
        self.count = 0

    def deliver_soon(self) -> None:
        self.count += 1


async def services_on(store: Store, policy: Policy, recorded_at: datetime = MONDAY) -> Services:
    """The use cases over `store`, with `policy` recorded as the current SLA."""
    book = PolicyBook(store, policy)
    await book.record_current(recorded_at)
    return Services(store, book, Wakes())


@pytest.fixture
async def services(store: Store, policy: Policy) -> Services:
    return await services_on(store, policy)


def pool_of(policy: Policy, reps: list[str], **segment: Any) -> Policy:
    """`policy` with its first segment's (enterprise's) pool `reps` and keys `segment`."""
    data = snapshot(policy)
    data["segments"][0] |= {"reps": reps, **segment}
    return parse_policy(data)


async def away_wired(store: Store, policy: Policy) -> tuple[Services, AwayStore, Sweeper]:
    """The use cases and the sweep with time away wired in, as bot/app.py wires them."""
    services = await services_on(store, policy)
    away = AwayStore(store.db)
    services.availability = away
    return services, away, Sweeper(SweepStore(store.db), services.policies, Wakes(), away=away)


async def enterprise_counts(store: Store) -> dict[str, tuple[int, int]]:
    """Each rep's leads in the enterprise rotation as stored: (today, this week)."""
    rows = await store.db.run(
        lambda db: db.exec_driver_sql(
            "SELECT rep, today, this_week FROM rotation_reps WHERE segment = 'enterprise'"
        ).all()
    )
    return {str(rep): (int(today), int(week)) for rep, today, week in rows}


@contextmanager
def statements(*words: str) -> Iterator[list[str]]:
    """The SQL statements any engine sends inside the block that contain each of `words`."""
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if all(word in statement for word in words):
            sent.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)  # any engine: SQLite's is a sync one
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", seen)


@contextmanager
def erased_after(services: Services, query: str, now: datetime, *words: str) -> Iterator[list[Any]]:
    """Inside the block, right after the first statement any engine sends that contains each
    of `words` (its transaction still open): the person `query` names is forgotten, to the
    erasure's commit. The list holds what `forget` returned, once it ran."""
    erased: list[Any] = []

    def meanwhile(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not erased and all(word in statement for word in words):
            erased.append(None)
            erased[0] = await_only(forget(services.store, Wakes(), query, "t", now))

    event.listen(Engine, "after_cursor_execute", meanwhile)
    try:
        yield erased
    finally:
        event.remove(Engine, "after_cursor_execute", meanwhile)


async def intake_many(services: Services, count: int, prefix: str = "hs") -> list[str | None]:
    """`count` leads taken in on Monday (`<prefix>-0`, …): each one's suggested owner."""
    owners = []
    for number in range(count):
        result = await services.intake(lead_payload(f"{prefix}-{number}"), MONDAY)
        assert result.lead is not None
        owners.append(result.lead.suggested_owner)
    return owners


async def intake_one(services: Services, external_id: str, now: datetime) -> int:
    """One lead taken in at `now`: its id."""
    lead = (await services.intake(lead_payload(external_id), now)).lead
    assert lead is not None
    return lead.id
