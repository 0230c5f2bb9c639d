"""End-to-end fixtures: the real Handoff server against the local Slack simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.policy import Policy
from bot.simulator.stack import LocalStack, start_stack

MONDAY_11AM_SYDNEY = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


class TravelClock:
    """A clock tests move by hand: time is injected, nobody sleeps."""

    def __init__(self, now: datetime = MONDAY_11AM_SYDNEY) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> TravelClock:
    return TravelClock()


@pytest.fixture
async def stack(sqlite_url: str, policy: Policy, clock: TravelClock) -> AsyncIterator[LocalStack]:
    local = await start_stack(sqlite_url, policy, clock=clock)
    try:
        yield local
    finally:
        await local.close()
