"""Slack sends an Events API event again when its envelope is not acknowledged within 3 seconds
(https://docs.slack.dev/apis/events-api#retries; in Socket Mode "Your app still needs to
acknowledge receiving each event so that Slack knows whether to retry",
https://docs.slack.dev/apis/events-api/using-socket-mode#events): a retry that arrives while
the first delivery is still running is not run a second time, nor acknowledged (Slack stops
retrying at the first attempt acknowledged: should the first delivery fail, its next retry runs
it). On SQLite and on PostgreSQL: which events were taken on lives in the database."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from bot.cli.stack import LocalStack
from bot.services.slack_events import Channels
from bot.simulator import socket_mode
from tests.conftest import lead_payload

ENTERPRISE, ESCALATIONS, ADMIN = "C0ENT", "C0ESCALATE", "U0MGR1"


@pytest.fixture
def transport() -> str:
    return "socket"


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url


async def only_the_first_retry(seconds: float) -> None:
    """Slack's waits between retries: the first retry is sent at once, the later ones (after
    1 and 5 minutes) never within a test."""
    if seconds:
        await asyncio.Event().wait()


async def test_an_event_sent_again_while_its_first_delivery_runs_is_taken_on_once(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket_mode, "ACK_WITHIN", 1.0)
    sockets = stack.sim.socket_mode
    sockets.sleep = only_the_first_retry
    stack.sim.archive_channel(ENTERPRISE)
    for index in (1, 2):
        status, _ = await stack.post_lead(
            lead_payload(f"hs-{index}", name=f"Person {index}", email=f"p{index}@northwind.example")
        )
        assert status == 201
        await stack.settle()
    assert stack.sim.messages(ENTERPRISE) == []  # refused: the channel is archived

    # Unarchiving is slow this time: its first delivery is not answered within Slack's 3 s.
    unarchived, ran, release = Channels.unarchived, [], asyncio.Event()

    async def slowly(self: Channels, channel: str, now: datetime) -> int:
        ran.append(channel)
        await release.wait()
        return await unarchived(self, channel, now)

    monkeypatch.setattr(Channels, "unarchived", slowly)
    first = asyncio.create_task(stack.driver.unarchive(ADMIN, ENTERPRISE))
    await sockets.wait_sent(2)  # Slack sends it again
    retry = sockets.envelopes[1]
    await stack.sim.wait_for(  # Slack's wait for the retry's acknowledgement is over
        lambda: retry.acknowledged or retry in sockets.missing_acks, what="the repeat answered"
    )
    release.set()
    assert (await first).status == 200
    await stack.settle()

    original, retry = sockets.envelopes
    assert (retry.retry_attempt, retry.retry_reason) == (1, "http_timeout")
    assert retry.payload == original.payload
    # The retry is not acknowledged while the first delivery runs (were that to fail, Slack's
    # next retry runs it); the first is, once done.
    assert original.acknowledged and not retry.acknowledged
    assert sockets.strays == []
    assert ran == [ENTERPRISE]  # taken on once
    posts = [m for m in stack.sim.messages(ENTERPRISE) if "Claim" in m.all_text]
    assert len(posts) == 2  # each lead posted again once
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "posted again" in alert.all_text and "2 leads" in alert.all_text


async def test_an_event_whose_first_delivery_fails_while_its_retry_arrives_runs_later(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack stops retrying at the first attempt acknowledged in time. A retry acknowledged
    while the first delivery still ran would end Slack's retries, and if that delivery then
    failed, the event would be lost: the leads refused in an archived channel never posted
    again. The retry is left unacknowledged instead; Slack's next one runs the event."""
    monkeypatch.setattr(socket_mode, "ACK_WITHIN", 1.0)
    sockets = stack.sim.socket_mode
    minute_passed = asyncio.Event()

    async def until_told(seconds: float) -> None:  # retry 1 at once, retry 2 when told
        if seconds:
            await minute_passed.wait()

    sockets.sleep = until_told
    stack.sim.archive_channel(ENTERPRISE)
    status, _ = await stack.post_lead(lead_payload("hs-1", email="p1@northwind.example"))
    assert status == 201
    await stack.settle()

    unarchived, ran, release = Channels.unarchived, [], asyncio.Event()

    async def slowly_then_fails(self: Channels, channel: str, now: datetime) -> int:
        ran.append(channel)
        if len(ran) == 1:
            await release.wait()
            raise RuntimeError("the database went away")
        return await unarchived(self, channel, now)

    monkeypatch.setattr(Channels, "unarchived", slowly_then_fails)
    stack.driver.ack_timeout = 5.0  # the first delivery fails: it is never acknowledged
    first = asyncio.create_task(stack.driver.unarchive(ADMIN, ENTERPRISE))
    await sockets.wait_sent(2)  # Slack's retry 1, while the first delivery still runs
    retry = sockets.envelopes[1]
    await stack.sim.wait_for(  # Slack's wait for retry 1's acknowledgement is over
        lambda: retry.acknowledged or retry in sockets.missing_acks, what="retry 1 answered"
    )
    release.set()
    assert (await first).status == 504  # failed: not acknowledged
    minute_passed.set()  # Slack's retry 2, a minute later
    await sockets.wait_retries()
    await stack.settle()

    assert not retry.acknowledged
    assert [e.retry_attempt for e in sockets.envelopes] == [0, 1, 2]
    assert sockets.envelopes[2].acknowledged
    assert ran == [ENTERPRISE, ENTERPRISE]
    posts = [m for m in stack.sim.messages(ENTERPRISE) if "Claim" in m.all_text]
    assert len(posts) == 1  # the lead posted again
