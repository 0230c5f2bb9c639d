"""The managers' alert about refused deliveries (one per channel and error, counted up in
place with chat.update) with two replicas delivering on one database. chat.update has no
version check: Slack replaces the message with whichever update arrives last (Slack's
chat.update reference takes only the channel, the ts and the new content), so a re-render
read before a newer one must not be what the managers are left with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.services.erasure import forget
from tests.conftest import lead_payload
from tests.e2e.conftest import replica

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url


class SlowToSlack:
    """A replica whose first chat.update takes a while on the way to Slack: it has rendered
    the alert, and its request lands only when the test lets it go."""

    def __init__(self, client: Any) -> None:
        self.client, self.sent, self.go = client, asyncio.Event(), asyncio.Event()

    async def chat_update(self, **kwargs: Any) -> Any:
        if not self.sent.is_set():
            self.sent.set()
            await self.go.wait()
        return await self.client.chat_update(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


async def send(stack: LocalStack, index: int) -> None:
    payload = lead_payload(f"hs-{index}", name=f"Person {index}", email=f"p{index}@nw.example")
    status, _ = await stack.post_lead(payload)
    assert status == 201


def alert_text(stack: LocalStack) -> str:
    (alert,) = stack.sim.messages(ESCALATIONS)  # one alert, counted up in place
    return alert.all_text


async def shown(stack: LocalStack, text: str) -> None:
    """Wait until the alert in Slack says `text`."""
    for _ in range(200):
        if stack.sim.messages(ESCALATIONS) and text in alert_text(stack):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the alert never said {text!r}: {alert_text(stack)!r}")


async def two_refused(stack: LocalStack) -> None:
    """An archived segment channel has refused two leads: the alert says so."""
    stack.sim.archive_channel(ENTERPRISE)
    for index in (1, 2):
        await send(stack, index)
        await stack.settle()
    assert "2 messages" in alert_text(stack)
    await stack.handoff.outbox.close()  # other replicas deliver from here on


@asynccontextmanager
async def third_on_its_way(stack: LocalStack, *, second: bool = True) -> AsyncIterator[SlowToSlack]:
    """`two_refused`, then a replica renders the alert with the 3rd refusal and its chat.update
    waits on the way to Slack until the test lets it go; with `second`, another replica
    delivers meanwhile. Every replica is let go and closed on the way out."""
    await two_refused(stack)
    slow = SlowToSlack(stack.handoff.outbox.client)
    workers = [replica(stack, slow)]
    try:
        await send(stack, 3)
        await asyncio.wait_for(slow.sent.wait(), 10)
        if second:
            workers.append(replica(stack, stack.handoff.outbox.client))
        yield slow
    finally:
        slow.go.set()
        for worker in workers:
            await worker.close()


async def test_an_older_count_never_stays_on_top_of_a_newer_one(stack: LocalStack) -> None:
    """One replica has rendered the alert with 3 refusals and its chat.update is still on its
    way when a 4th refusal comes and another replica shows it: the older update lands last,
    and the alert still ends up saying 4, not 3 until the next refusal."""
    async with third_on_its_way(stack) as slow:  # rendered "3 messages", on its way
        await send(stack, 4)
        await shown(stack, "4 messages")  # the second replica's newer update landed
        slow.go.set()  # the older one lands on top of it
        await stack.settle()

        text = alert_text(stack)
        assert "4 messages" in text and "Person 4" in text
        assert "3 messages" not in text


async def test_an_erased_lead_named_by_an_older_render_is_not_left_in_the_alert(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The same race with an erasure (`handoff forget`): the older render, landing last,
    names the person erased meanwhile; the alert still ends up without their name."""
    async with third_on_its_way(stack) as slow:  # rendered naming Person 3, on its way
        await forget(stack.services.store, stack.handoff.outbox, "p3@nw.example", "t", clock())
        await shown(stack, "could not post a lead.")  # the second replica's, unnamed
        slow.go.set()  # the older one, naming them, lands on top of it
        await stack.settle()

        text = alert_text(stack)
        assert "3 messages" in text
        assert "Person 3" not in text and "hs-3" not in text


async def test_one_worker_shows_a_refusal_that_came_while_its_update_was_on_its_way(
    stack: LocalStack,
) -> None:
    """A single replica: a refusal while the alert's update is on its way is shown once the
    update lands, and an update with nothing new meanwhile is one chat.update."""
    async with third_on_its_way(stack, second=False) as slow:  # "3 messages", on its way
        await send(stack, 4)
        await asyncio.sleep(0.3)  # refused, and counted, while the update waits
        slow.go.set()
        await stack.settle()
        assert "4 messages" in alert_text(stack) and "Person 4" in alert_text(stack)

        updates = len(stack.sim.calls_to("chat.update"))
        await send(stack, 5)
        await stack.settle()
        assert "5 messages" in alert_text(stack) and "Person 5" in alert_text(stack)
        assert len(stack.sim.calls_to("chat.update")) == updates + 1


class ShownMeanwhile:
    """Slack while the archived channel keeps refusing and other replicas keep up: during
    each of the first `times` chat.updates of the alert on its way, another lead is refused,
    counted, and another replica's re-render reads the group (its update lands first)."""

    def __init__(self, stack: LocalStack, client: Any, first: int, times: int) -> None:
        self.stack, self.client, self.next, self.left = stack, client, first, times

    async def chat_update(self, **kwargs: Any) -> Any:
        if self.left:
            self.left -= 1
            await send(self.stack, self.next)
            rows = self.stack.handoff.outbox.rows
            for _ in range(200):
                refusals = await rows.refusals(1)
                if refusals is not None and refusals.refused == self.next:
                    break
                await asyncio.sleep(0.02)
            await rows.recount(1)  # the other replica's re-render reads it
            self.next += 1
        return await self.client.chat_update(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


async def test_an_alert_shown_newer_during_every_update_still_ends_with_the_latest_count(
    stack: LocalStack,
) -> None:
    """Other replicas show a newer count while each update is on its way: the re-render
    stops updating after a few passes and renders it again shortly, and the alert ends up
    with the latest count."""
    await two_refused(stack)
    worker = replica(stack, ShownMeanwhile(stack, stack.handoff.outbox.client, 4, 3))
    try:
        await send(stack, 3)
        await shown(stack, "6 messages")
        await stack.settle()

        assert "6 messages" in alert_text(stack) and "Person 6" in alert_text(stack)
        rows = await stack.handoff.outbox.rows.rows()
        attempts = [row["attempts"] for row in rows if row["kind"] == "recount_alert"]
        assert max(attempts) == 2  # it stopped updating, and rendered it again shortly
    finally:
        await worker.close()
