"""Stopping `handoff serve --socket` (SIGTERM, Ctrl-C, or Slack's `link_disabled`) lets the
requests under way over Socket Mode finish, as over HTTP, for up to `HANDOFF_SHUTDOWN_GRACE`
seconds (docs/operations.md: "SIGTERM (and Ctrl-C) stops taking requests, lets the requests
and the Slack deliveries under way finish"); what they leave to send stays in the outbox. On
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from bot.cli.stack import start_stack
from bot.services.slack_events import Channels
from tests.conftest import lead_payload

ENTERPRISE, ADMIN = "C0ENT", "U0MGR1"


@pytest.mark.parametrize("link_disabled", [False, True], ids=["sigterm", "link_disabled"])
async def test_an_event_under_way_when_serve_stops_finishes(
    database_url: str, monkeypatch: pytest.MonkeyPatch, link_disabled: bool
) -> None:
    stack = await start_stack(database_url, socket_mode=True)
    sockets = stack.sim.socket_mode
    sockets.retry_after = ()  # Slack's retries are not what is tested here
    try:
        stack.sim.archive_channel(ENTERPRISE)
        status, _ = await stack.post_lead(lead_payload("hs-1", email="p1@northwind.example"))
        assert status == 201
        await stack.settle()
        assert stack.sim.messages(ENTERPRISE) == []  # refused: the channel is archived

        unarchived, ran, again, release = Channels.unarchived, [], [], asyncio.Event()

        async def slowly(self: Channels, channel: str, now: datetime) -> int:
            ran.append(channel)
            await release.wait()
            again.append(await unarchived(self, channel, now))
            return again[-1]

        monkeypatch.setattr(Channels, "unarchived", slowly)
        sending = asyncio.create_task(stack.driver.unarchive(ADMIN, ENTERPRISE))
        await stack.sim.wait_for(lambda: ran, what="the unarchive under way")
        if link_disabled:  # Socket Mode turned off in the app's settings meanwhile
            await sockets.disconnect("link_disabled")
            turned_off = stack.handoff.socket_turned_off
            assert turned_off is not None
            await asyncio.wait_for(turned_off.wait(), 10)
        # What `serve` does once told to stop: close, giving what is under way its grace.
        handler = stack.handoff.socket
        stopping = asyncio.create_task(stack.handoff.close(10.0))
        await stack.sim.wait_for(  # serve is stopping while the event still runs
            lambda: getattr(handler, "stopping", False) or stopping.done(), what="stopping"
        )
        release.set()
        await stopping
        finished = list(again)  # by the time serve has stopped (then the process ends)
        answer = await sending
    finally:
        await stack.driver.close()
        await stack.session.close()
        await stack.sim.stop()
    # The lead's post refused while archived is queued again (the outbox sends it, now or at
    # the next start), not lost with a request cut off half-way.
    assert finished == [1]
    if not link_disabled:  # and Slack heard it was taken (after link_disabled it hears nothing)
        assert answer.status == 200
