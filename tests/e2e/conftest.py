"""End-to-end fixtures: the real Handoff server against the local Slack simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy
from bot.metrics import Metrics
from bot.slack.outbox import Outbox

MONDAY_11AM_SYDNEY = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> TravelClock:
    return TravelClock(MONDAY_11AM_SYDNEY)


@pytest.fixture
def transport() -> str:
    """How Slack reaches the bot: "http" (signed requests), or "socket" (Socket Mode) where a
    test module parametrizes this fixture (the core loop runs in both)."""
    return "http"


@pytest.fixture
def stack_database_url(sqlite_url: str) -> str:
    """The database `stack` runs on: a SQLite file, or, where a test module overrides this
    fixture to return `database_url`, the same test on SQLite and on PostgreSQL."""
    return sqlite_url


@pytest.fixture
async def stack(
    request: pytest.FixtureRequest,
    stack_database_url: str,
    policy: Policy,
    clock: TravelClock,
    transport: str,
) -> AsyncIterator[LocalStack]:
    """The real server and the Slack simulator, on `stack_database_url` with `policy` (a test
    module overrides either fixture to change them)."""
    socket_mode = transport == "socket"
    local = await start_stack(stack_database_url, policy, clock=clock, socket_mode=socket_mode)
    try:
        yield local
    finally:
        await local.close()
    # Whatever the test did, nothing Handoff sent was refused by Slack's rules, unless the
    # test says it meant it (`pytest.mark.refused_payloads`).
    if request.node.get_closest_marker("refused_payloads") is None:
        assert local.sim.invalid_payloads == [], local.sim.invalid_payloads


def replica(stack: LocalStack, client: Any) -> Outbox:
    """Another `handoff serve` process's delivery worker, on the same database and Slack."""
    own = stack.handoff.outbox
    other = Outbox(
        client, own.rows, own.store, own.policies, Metrics(), own.clock, poll_seconds=0.05
    )
    other.homes, other.names = own.homes, own.names
    other.start()
    return other
