"""App Home with two replicas delivering on one database: Slack keeps whichever views.publish
arrives last, so a replica's older render must not land on top of another's newer one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.cli.stack import LocalStack
from tests.e2e.conftest import replica

REP = "U0REP1"


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url


class SlowToSlack:
    """A replica whose views.publish takes a while on the way to Slack: it has rendered the
    home, and its request lands only when the test lets it go."""

    def __init__(self, client: Any) -> None:
        self.client, self.sent, self.go = client, asyncio.Event(), asyncio.Event()

    async def views_publish(self, **kwargs: Any) -> Any:
        self.sent.set()
        await self.go.wait()
        return await self.client.views_publish(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def home_text(stack: LocalStack) -> str:
    return json.dumps(stack.sim.home(REP), ensure_ascii=False)


async def test_an_older_home_never_lands_on_top_of_a_newer_one(stack: LocalStack) -> None:
    """One replica has rendered a rep's home (away) and its publish is still on its way when
    the rep comes back and another replica renders the newer home (not away): the newer one is
    sent after the older has landed, so the rep sees the home as it is now."""
    await stack.driver.app_home_opened(REP)
    await stack.settle()
    await stack.handoff.outbox.close()  # two other replicas deliver from here on
    slow = SlowToSlack(stack.handoff.outbox.client)
    first = replica(stack, slow)
    second = None
    try:
        await stack.driver.command(REP, "/handoff", "away fri")
        await asyncio.wait_for(slow.sent.wait(), 10)  # rendered away, on its way
        second = replica(stack, stack.handoff.outbox.client)
        await stack.driver.command(REP, "/handoff", "back")
        await asyncio.sleep(1.0)  # time enough for the second replica to publish
        slow.go.set()
        await stack.settle()
        assert "You're away" not in home_text(stack)
    finally:
        slow.go.set()
        await first.close()
        if second is not None:
            await second.close()
