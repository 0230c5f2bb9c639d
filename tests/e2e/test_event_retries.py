"""Slack retries an event it thinks went unanswered (HTTP: `X-Slack-Retry-Num`; Socket Mode:
the envelope's `retry_attempt`). A retry of an event already taken on is acknowledged and
not run again; one whose first delivery failed runs."""

from __future__ import annotations

from typing import Any

import pytest
from slack_bolt.listener.asyncio_runner import AsyncioListenerRunner

from bot.cli.stack import LocalStack
from bot.services.home import Homes
from bot.simulator.driver import SocketModeDriver


@pytest.fixture(params=["http", "socket"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def publishes(stack: LocalStack, user: str) -> int:
    return len([c for c in stack.sim.calls_to("views.publish") if c.args.get("user_id") == user])


async def test_a_retried_app_home_opened_publishes_the_home_once(stack: LocalStack) -> None:
    first = await stack.driver.app_home_opened("U0REP1")
    await stack.settle()
    retries = [await stack.driver.resend(retry_num=n) for n in (1, 2)]
    await stack.settle()
    assert first.status == 200 and all(retry.status == 200 for retry in retries)
    assert publishes(stack, "U0REP1") == 1
    assert stack.sim.socket_mode.missing_acks == []

    await stack.driver.app_home_opened("U0REP1")  # a new opening is a new event: it runs
    await stack.settle()
    assert publishes(stack, "U0REP1") == 2


async def test_a_retry_of_an_event_that_failed_runs(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = Homes.opened
    failures = [RuntimeError("the database went away")]

    async def fails_once(self: Homes, *args: Any) -> None:
        if failures:
            raise failures.pop()
        await opened(self, *args)

    monkeypatch.setattr(Homes, "opened", fails_once)
    if isinstance(stack.driver, SocketModeDriver):
        stack.driver.ack_timeout = 0.5  # a failed event is never acknowledged: wait briefly
        stack.sim.socket_mode.retry_after = ()  # the test sends Slack's retry itself
    failed = await stack.driver.app_home_opened("U0REP1")
    await stack.settle()
    assert failed.status == (504 if stack.driver.mode == "socket" else 500)
    assert len(stack.sim.socket_mode.missing_acks) == (stack.driver.mode == "socket")
    assert publishes(stack, "U0REP1") == 0
    if isinstance(stack.driver, SocketModeDriver):
        stack.driver.ack_timeout = 30.0
    await stack.driver.resend(retry_num=1)
    await stack.settle()
    assert publishes(stack, "U0REP1") == 1


EVENTS: dict[str, dict[str, Any]] = {  # every event Handoff listens to (slack_listeners.register)
    "app_home_opened": {"type": "app_home_opened", "user": "U0REP1", "tab": "messages"},
    "user_change": {"type": "user_change", "user": {"id": "U0REP1", "name": "x"}},
    "channel_unarchive": {"type": "channel_unarchive", "channel": "C0ENT", "user": "U0MGR1"},
    "group_unarchive": {"type": "group_unarchive", "channel": "C0ENT"},
    "member_joined_channel": {"type": "member_joined_channel", "user": "U0BOT", "channel": "C0ENT"},
    "tokens_revoked": {"type": "tokens_revoked", "tokens": {"oauth": ["U0REP1"]}},
    "app_uninstalled": {"type": "app_uninstalled"},
}


@pytest.mark.parametrize("kind", EVENTS)
async def test_every_event_handoff_listens_to_runs_once_however_often_slack_sends_it(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The id check is Bolt's first middleware, for every event type alike: a retry of any
    is acknowledged and its listener not run again."""
    runs: list[str] = []
    run = AsyncioListenerRunner.run

    async def counted(self: AsyncioListenerRunner, request: Any, *args: Any, **kw: Any) -> Any:
        runs.append(str((request.body.get("event") or {}).get("type")))
        return await run(self, request, *args, **kw)

    monkeypatch.setattr(AsyncioListenerRunner, "run", counted)
    first = await stack.driver.event(dict(EVENTS[kind]))
    retries = [await stack.driver.resend(retry_num=n) for n in (1, 2, 3)]
    await stack.settle()
    assert first.status == 200 and [r.status for r in retries] == [200, 200, 200]
    assert runs == [kind]
