"""Slack does not answer the members' reads at all (its connections dropped: no API answer, so
not about one member): the daily refresh of names and time zones (`users.info`) stops at the
first member with one line saying what was not read and when it is tried again, and `serve`'s
loop reads everyone a minute later on the injected clock, not the next day. The unit tests
(tests/unit/test_member_reads.py) hold the backoff; here, the real server, the simulator and
the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import pytest

from bot.cli.stack import LocalStack, TravelClock
from tests.e2e.test_token_refused import refreshed, warnings

MAYA = "U0REP1"


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url  # SQLite and PostgreSQL


def asked(stack: LocalStack, mark: int) -> list[str]:
    """The members users.info was asked about since `mark`, once each (the client retries a
    dropped connection itself)."""
    calls = stack.sim.calls[mark:]
    users = [str(call.args.get("user")) for call in calls if call.method == "users.info"]
    return list(dict.fromkeys(users))


async def test_slack_down_stops_the_refresh_at_the_first_member_and_reads_again_soon(
    stack: LocalStack, clock: TravelClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handoff")
    handoff, sim = stack.handoff, stack.sim
    members = handoff.people.members()
    await refreshed(stack)
    caplog.clear()

    sim.inject_connection_drop("users.info")  # Slack is unreachable
    mark = len(sim.calls)
    clock.advance(days=1)
    await handoff.people.refresh(clock())  # the daily refresh
    assert asked(stack, mark) == members[:1]  # not one member after another
    (line,) = warnings(caplog)
    assert f"names and time zones of {len(members)} of {len(members)} members" in line
    assert "not read from Slack" in line and "trying again in 1 min" in line

    # Slack answers again; meanwhile @maya moved to London and goes by another name.
    sim.clear_faults()
    sim.users[MAYA].tz, sim.users[MAYA].name = "Europe/London", "maya.london"
    mark = len(sim.calls)
    clock.advance(seconds=30)
    await handoff.read_people()  # `serve` looks every 30 s: not due yet
    assert asked(stack, mark) == []
    clock.advance(seconds=30)
    await handoff.read_people()  # a minute later: everyone, not the next day
    assert asked(stack, mark) == members
    assert handoff.people.names[MAYA] == "maya.london"
    assert (await handoff.store.zones())[MAYA] == "Europe/London"  # a restart keeps it
    clock.advance(hours=23)
    await handoff.read_people()  # the next daily refresh is a day later
    assert asked(stack, mark) == members
    assert len(warnings(caplog)) == 1
