"""Slack sends an Events API event again when its envelope is not acknowledged within 3 seconds
(https://docs.slack.dev/apis/events-api#retries; in Socket Mode "Your app still needs to
acknowledge receiving each event so that Slack knows whether to retry",
https://docs.slack.dev/apis/events-api/using-socket-mode#events): a retry that arrives while
the first delivery is still running is acknowledged and not run a second time. On SQLite and
on PostgreSQL: which events were taken on lives in the database."""

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
    await stack.sim.wait_for(
        lambda: any(e.acknowledged for e in sockets.envelopes), what="the repeat acknowledged"
    )
    release.set()
    assert (await first).status == 200
    await stack.settle()

    original, retry = sockets.envelopes
    assert (retry.retry_attempt, retry.retry_reason) == (1, "http_timeout")
    assert retry.payload == original.payload
    assert original.acknowledged and retry.acknowledged
    assert sockets.strays == []
    assert ran == [ENTERPRISE]  # taken on once
    posts = [m for m in stack.sim.messages(ENTERPRISE) if "Claim" in m.all_text]
    assert len(posts) == 2  # each lead posted again once
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "posted again" in alert.all_text and "2 leads" in alert.all_text
