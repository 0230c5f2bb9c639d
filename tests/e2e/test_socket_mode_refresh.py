"""Slack refreshes Socket Mode connections (https://docs.slack.dev/apis/events-api/using-socket-mode/:
a `disconnect` message, `refresh_requested` every few hours or `warning` about 10 s before the
connection closes; the app opens a new connection and carries on). A person's press or slash
command around a refresh is acknowledged and acted on once."""

from __future__ import annotations

import asyncio

import pytest

from bot.cli.stack import LocalStack
from bot.simulator.data import Message
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"


@pytest.fixture
def transport() -> str:
    return "socket"


async def claimed_once(stack: LocalStack, message: Message) -> None:
    """The rep's claim shows on the lead's post, and Handoff acted on it once."""
    await stack.settle()
    current = stack.sim.message(ENTERPRISE, message.ts)
    assert current is not None and "Claimed by <@U0REP1>" in current.all_text
    events = [e.type for e in await stack.services.store.events(1)]
    assert events.count("claimed") == 1


async def posted(stack: LocalStack) -> Message:
    status, answer = await stack.post_lead(lead_payload())
    assert status == 201, answer
    await stack.settle()
    return stack.sim.messages(ENTERPRISE)[-1]


@pytest.mark.parametrize("reason", ["refresh_requested", "warning"])
async def test_a_press_right_after_a_disconnect_is_acked_and_acted_on_once(
    stack: LocalStack, reason: str
) -> None:
    message = await posted(stack)
    sockets = stack.sim.socket_mode
    old = await sockets.disconnect(reason)
    # Slack may still send on the warned connection until the app has opened another.
    response = await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    await sockets.wait_opened(2)
    await sockets.hang_up(old)  # the ~10 s are up
    assert response.status == 200
    await claimed_once(stack, message)
    assert sockets.missing_acks == [] and sockets.strays == []
    # And the new connection takes the next request.
    answer = await stack.driver.command("U0REP1", "/handoff", "help", channel_id=ENTERPRISE)
    assert answer.status == 200 and answer.json


async def test_a_press_under_way_when_slack_asks_for_a_refresh_is_acked_once(
    stack: LocalStack,
) -> None:
    message = await posted(stack)
    sockets = stack.sim.socket_mode
    stack.sim.answer_delay = 0.3  # Slack is slow to answer what the press asks of it
    press = asyncio.create_task(stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE))
    await sockets.wait_sent(1)
    old = await sockets.disconnect("refresh_requested")
    response = await press
    stack.sim.answer_delay = 0.0
    await sockets.wait_opened(2)
    await sockets.hang_up(old)
    assert response.status == 200
    assert sockets.missing_acks == [] and sockets.strays == []
    await claimed_once(stack, message)


async def test_a_press_slack_sends_on_the_warned_connection_after_the_app_reconnected(
    stack: LocalStack,
) -> None:
    """Slack keeps the warned connection until it closes it (about 10 s after a `warning`),
    and may still send there while the app has opened the next one: the app keeps reading it
    and acknowledges there."""
    message = await posted(stack)
    sockets = stack.sim.socket_mode
    old = await sockets.disconnect("warning")
    await sockets.wait_opened(2)
    sockets.send_to = old
    response = await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    command = await stack.driver.command("U0REP1", "/handoff", "help", channel_id=ENTERPRISE)
    sockets.send_to = None
    await sockets.hang_up(old)
    assert response.status == 200
    assert command.status == 200 and "/handoff away" in command.body  # its immediate answer
    assert [(e.connection, e.acked_on) for e in sockets.envelopes] == [(1, 1), (1, 1)]
    await claimed_once(stack, message)
    answer = await stack.driver.command("U0REP1", "/handoff", "help", channel_id=ENTERPRISE)
    assert answer.status == 200 and sockets.envelopes[-1].connection == 2


async def test_too_many_connections_closes_the_old_one_before_opening_the_next(
    stack: LocalStack,
) -> None:
    """`too_many_websockets`: Slack refuses the app more connections (it allows 10 an app).
    Opening the next before closing the old one would only add to their count and spin into
    reconnects, so here the old one goes first (as slack_sdk's own client does: its
    aiohttp SocketModeClient.connect closes the old session first for this reason), and the
    app carries on on the new one."""
    message = await posted(stack)
    sockets = stack.sim.socket_mode
    old = await sockets.disconnect("too_many_websockets")
    await sockets.wait_opened(2)
    assert old.closed  # closed by the app, not by Slack's hang-up
    response = await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    assert response.status == 200
    await claimed_once(stack, message)
    assert [e.connection for e in sockets.envelopes] == [2]
