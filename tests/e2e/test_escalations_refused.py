"""The escalations channel itself refuses Handoff (archived: chat.postMessage `is_archived`,
"Channel has been archived."; the app removed from a private one: `not_in_channel`; deleted:
`channel_not_found`, Slack's chat.postMessage reference). Every alert about the other
channels goes there, so there is no channel left to tell: the managers hear it by DM, in plain
words, once a day per error (not one DM per refused alert), with what to do and where the
overdue leads still show (their App Home, /lead). Once the channel takes messages again, the
alerts go there as before. On SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.cli.stack import LocalStack, TravelClock
from tests.conftest import lead_payload
from tests.e2e.test_feedback_settles_alerts import claimed
from tests.e2e.test_reassign import sweep

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
MAYA = "U0REP1"
MANAGERS = ("U0MGR1", "U0MGR2")


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url


def dms(stack: LocalStack, user: str) -> list[str]:
    return [m.all_text for m in stack.sim.messages(stack.sim.dm_channel(user))]


async def overdue(stack: LocalStack, clock: TravelClock) -> None:
    """A lead claimed and called, then no feedback for a week: the sweep alerts the managers."""
    claim = clock()
    await claimed(stack)
    clock.now = claim + timedelta(days=7, hours=-2)
    assert await sweep(stack, clock) == 1


async def claimed_and_called(stack: LocalStack, index: int) -> None:
    status, _ = await stack.post_lead(
        lead_payload(f"hs-{index}", name=f"Person {index}", email=f"p{index}@nw.example")
    )
    assert status == 201
    await stack.settle()
    (post,) = [m for m in stack.sim.messages(ENTERPRISE) if f"Person {index}" in m.all_text]
    for label in ("Claim", "Log call"):
        await stack.driver.press(MAYA, label, channel=ENTERPRISE, message_ts=post.ts)
        await stack.settle()


@pytest.mark.parametrize(
    ("refusal", "words"),
    [("is_archived", "unarchive it"), ("not_in_channel", "/invite @Handoff")],
)
async def test_an_escalations_channel_that_refuses_is_told_to_each_manager_by_dm(
    stack: LocalStack, clock: TravelClock, refusal: str, words: str
) -> None:
    if refusal == "is_archived":
        stack.sim.archive_channel(ESCALATIONS)
    else:
        stack.sim.add_channel(ESCALATIONS, private=True)
        stack.sim.not_in_channel.add(ESCALATIONS)

    await overdue(stack, clock)

    assert stack.sim.messages(ESCALATIONS) == []
    for manager in MANAGERS:
        (notice,) = dms(stack, manager)
        for expected in (f"<#{ESCALATIONS}>", f"`{refusal}`", words, "App Home", "/lead"):
            assert expected in notice, (manager, expected)
    failed = [r for r in await stack.handoff.outbox.rows.rows() if r["state"] == "failed"]
    assert [r["channel"] for r in failed] == [ESCALATIONS]  # the alert's row is kept


async def two_overdue_at_once(stack: LocalStack, clock: TravelClock) -> list[dict[str, Any]]:
    """Two leads claimed and called, overdue at once: the sweep sends the escalations channel
    two alerts. Their outbox rows."""
    start = clock()
    for index in (1, 2):
        await claimed_and_called(stack, index)
    clock.now = start + timedelta(days=7, hours=-2)
    assert await sweep(stack, clock) == 2
    return [r for r in await stack.handoff.outbox.rows.rows() if r["channel"] == ESCALATIONS]


async def test_more_refusals_the_same_day_do_not_dm_the_managers_again(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Two leads overdue at once: both alerts are refused, each manager hears it once. Once
    the channel is unarchived, the next alert goes there again."""
    stack.sim.archive_channel(ESCALATIONS)
    refused = await two_overdue_at_once(stack, clock)
    assert len(refused) == 2 and all(r["state"] == "failed" for r in refused)
    for manager in MANAGERS:
        assert len(dms(stack, manager)) == 1, manager

    stack.sim.archive_channel(ESCALATIONS, archived=False)
    await claimed_and_called(stack, 3)  # overdue a week later
    clock.now += timedelta(days=7)
    assert await sweep(stack, clock) >= 1
    assert any("overdue" in m.all_text for m in stack.sim.messages(ESCALATIONS))
    for manager in MANAGERS:
        assert len(dms(stack, manager)) == 1, manager


@pytest.mark.parametrize("refusal", ["invalid_blocks", "msg_too_long"])
async def test_one_alert_slack_refuses_is_not_told_as_the_channel_refusing(
    stack: LocalStack, clock: TravelClock, refusal: str
) -> None:
    """Slack refuses one alert itself, not the channel (chat.postMessage `invalid_blocks`
    "Blocks submitted with this message are not valid.", `msg_too_long`): the next alert
    reaches the escalations channel, so no manager is DM'd that Handoff "cannot post in" it
    and that the alerts "reach nobody there"."""
    stack.sim.inject("chat.postMessage", error=refusal, channel=ESCALATIONS, times=1)
    refused = await two_overdue_at_once(stack, clock)
    assert sorted(r["state"] for r in refused) == ["done", "failed"]
    assert len(stack.sim.messages(ESCALATIONS)) == 1  # the other alert got through
    for manager in MANAGERS:
        assert dms(stack, manager) == [], manager


async def test_a_deactivated_manager_does_not_set_off_a_loop_of_dms_and_alerts(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The escalations channel archived and one manager deactivated: the DM to them is refused
    (conversations.open `user_disabled`), whose alert would go to the escalations channel,
    which refuses it, whose DM to the managers was sent already today: it ends there. The
    other manager hears it once; a second refused alert the same day DMs nobody again."""
    stack.sim.archive_channel(ESCALATIONS)
    stack.sim.deactivate_user(MANAGERS[0])
    start = clock()
    for index in (1, 2):
        await claimed_and_called(stack, index)
    clock.now = start + timedelta(days=7, hours=-2)
    assert await sweep(stack, clock) == 2

    assert dms(stack, MANAGERS[0]) == []
    assert len(dms(stack, MANAGERS[1])) == 1
    rows = await stack.handoff.outbox.rows.rows()
    assert all(r["state"] != "pending" for r in rows)
    # Two alerts, two DMs, the one refused DM's alert (and its recount): no cascade.
    assert len([r for r in rows if r["channel"] in (ESCALATIONS, *MANAGERS)]) <= 6


async def test_once_a_day_is_the_teams_day_not_utc(stack: LocalStack, clock: TravelClock) -> None:
    """ "Told again tomorrow" is the team's tomorrow (sla.yaml's Australia/Sydney): two alerts
    refused one Wednesday morning in Sydney, either side of midnight UTC (11:00 there), DM each
    manager once, not twice within the hour."""
    stack.sim.archive_channel(ESCALATIONS)
    start = clock()  # Monday 11:00 in Sydney
    clock.now = start + timedelta(days=4, hours=11, minutes=30)  # Friday 22:30 there
    await claimed_and_called(stack, 1)  # the managers' alert due 108 h later: Wednesday 10:30
    clock.now += timedelta(hours=1)
    await claimed_and_called(stack, 2)  # Wednesday 11:30
    for days in (6, 7):  # the owners' reminders, each at 09:00 on a working day
        clock.now = start + timedelta(days=days, hours=22)
        assert await sweep(stack, clock) == 2

    clock.now = start + timedelta(days=8, hours=23, minutes=30)  # Wednesday 10:30, Tuesday in UTC
    assert await sweep(stack, clock) == 1
    clock.now += timedelta(hours=1)  # Wednesday 11:30 in Sydney and in UTC
    assert await sweep(stack, clock) == 1

    refused = [r for r in await stack.handoff.outbox.rows.rows() if r["channel"] == ESCALATIONS]
    assert len(refused) == 2 and all(r["state"] == "failed" for r in refused)
    for manager in MANAGERS:
        assert len(dms(stack, manager)) == 1, manager
