"""End-to-end fixtures: the real Handoff server against the local Slack simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy

MONDAY_11AM_SYDNEY = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> TravelClock:
    return TravelClock(MONDAY_11AM_SYDNEY)


@pytest.fixture
async def stack(sqlite_url: str, policy: Policy, clock: TravelClock) -> AsyncIterator[LocalStack]:
    local = await start_stack(sqlite_url, policy, clock=clock)
    try:
        yield local
    finally:
        await local.close()
