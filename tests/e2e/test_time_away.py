"""Time away through the real server: `/handoff away|back` for oneself and, by a manager, for a
rep; new leads skipping an away rep; an away owner's overdue lead back with the pool; and a
Slack status the SLA lists counting as away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from slack_sdk.errors import SlackApiError

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.lead import Stage
from bot.domain.policy import Policy, parse_policy, snapshot
from storage.away import StatusAway
from tests.conftest import lead_payload

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
MANAGER, REP1, REP2 = "U0MGR1", "U0REP1", "U0REP2"
AWAY_REFUSAL = (
    "Sorry, only the sales managers can set someone else away. "
    "`/handoff away` on its own sets you away."
)


async def say(stack: LocalStack, user: str, text: str) -> str:
    """`/handoff <text>` by `user`: its private answer."""
    answer = await stack.driver.command(user, "/handoff", text)
    assert answer.json is not None and answer.json["response_type"] == "ephemeral"
    return str(answer.json["text"])


async def away_now(stack: LocalStack, clock: TravelClock) -> set[str]:
    return set(await stack.handoff.sweeper.away.away([REP1, REP2], clock()))


async def new_lead(stack: LocalStack, external_id: str) -> str | None:
    status, body = await stack.post_lead(lead_payload(external_id))
    assert status == 201
    await stack.settle()
    return (await stack.services.lead(body["id"])).suggested_owner


def thread(stack: LocalStack) -> list[str]:
    (post,) = stack.sim.messages(ENTERPRISE)
    return [reply.all_text for reply in stack.sim.thread(ENTERPRISE, post.ts)]


def buttons(stack: LocalStack) -> list[str]:
    (post,) = stack.sim.messages(ENTERPRISE)
    return [
        element["text"]["text"]
        for block in post.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
        if element.get("type") == "button"
    ]


async def test_a_rep_sets_away_and_back(stack: LocalStack, clock: TravelClock) -> None:
    said = await say(stack, REP1, "away fri Offsite in Melbourne & <Sydney>")
    assert said == (
        "You're away until Mon 30 Nov, 09:00 AEDT (Offsite in Melbourne &amp; &lt;Sydney&gt;): "
        "new leads skip you, and an open lead of yours goes back to the pool when its next "
        "deadline passes while you're away. `/handoff back` when you're back."
    )
    assert await away_now(stack, clock) == {REP1}
    assert await say(stack, REP1, "back") == "Welcome back: new leads come to you again."
    assert await away_now(stack, clock) == set()
    assert await say(stack, REP1, "back") == "You weren't away: nothing was changed."


async def test_a_bare_handoff_command_answers_its_help(stack: LocalStack) -> None:
    said = await say(stack, REP1, "")
    assert "/handoff away" in said, said


async def test_away_on_its_own_lasts_until_back(stack: LocalStack, clock: TravelClock) -> None:
    """SPEC: `/handoff away|back`, with no argument. `/handoff away` alone was refused ("Until
    when?"); it sets the caller away until `/handoff back` (as a Slack status with no
    expiration does), and a manager's `/handoff away @rep` sets the rep away the same way."""
    said = await say(stack, REP1, "away")
    assert said.startswith("You're away until you say `/handoff back`: new leads skip you"), said
    clock.advance(days=30)
    assert await away_now(stack, clock) == {REP1}
    assert [await new_lead(stack, f"hs-{n}") for n in range(2)] == [REP2, REP2]
    assert await say(stack, REP1, "back") == "Welcome back: new leads come to you again."
    assert await away_now(stack, clock) == set()
    said = await say(stack, MANAGER, f"away <@{REP2}>")
    assert said.startswith(f"<@{REP2}> is away until they're back: new leads skip them"), said
    assert await away_now(stack, clock) == {REP2}


async def test_a_rep_may_mention_someone_in_the_note(stack: LocalStack, clock: TravelClock) -> None:
    # Only the word after `away` names whom; a mention in the note is the note's.
    for note in ("dentist, ping @tom if urgent", "dentist, ping <@U0REP2|tom> if urgent"):
        said = await say(stack, REP1, f"away fri {note}")
        assert said.startswith("You're away until Mon 30 Nov, 09:00 AEDT (dentist, ping "), said
        assert await away_now(stack, clock) == {REP1}


async def test_a_manager_sets_a_rep_away_and_back(stack: LocalStack, clock: TravelClock) -> None:
    said = await say(stack, MANAGER, "away <@U0REP2|tom> 3d")
    assert said.startswith(f"<@{REP2}> is away until Thu 26 Nov, 11:00 AEDT: new leads skip")
    assert "I've told them by DM." in said  # the manager knows the rep heard
    assert await away_now(stack, clock) == {REP2}
    assert await say(stack, MANAGER, "back @tom") == (
        f"<@{REP2}> is back: new leads go to them again. I've told them by DM."
    )
    again = await say(stack, MANAGER, "away @tom tomorrow")
    assert again.startswith(f"<@{REP2}> is away until Wed 25 Nov, 09:00 AEDT")
    assert await away_now(stack, clock) == {REP2}


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("away tomorrow @tom", "/handoff away @tom tomorrow"),
        ("away fri <@U0REP2|tom> Offsite", "/handoff away @tom fri Offsite"),
    ],
)
async def test_a_rep_named_after_the_date_sets_nobody_away(
    stack: LocalStack, clock: TravelClock, text: str, meant: str
) -> None:
    said = await say(stack, MANAGER, text)
    assert said == f"Did you mean `{meant}`? The rep comes first. Nothing was changed."
    assert set(await stack.handoff.sweeper.away.away([MANAGER, REP1, REP2], clock())) == set()
    await stack.settle()
    assert stack.sim.messages(stack.sim.dm_channel(REP2)) == []


async def test_a_rep_hears_by_dm_once_when_a_manager_sets_them_away_and_back(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The DM goes through the outbox once, even when Slack sends the command again; the
    time shows in the rep's own zone (Slack's date token), the note as typed."""
    dms = stack.sim.dm_channel(REP2)
    command = "away <@U0REP2|tom> 3d Cover for <Ana> & co"
    said = await say(stack, MANAGER, command)
    retried = await stack.driver.command(MANAGER, "/handoff", command, retry_num=1)
    assert retried.json is not None and retried.json["text"] == said
    await stack.settle()
    until = int((clock() + timedelta(days=3)).timestamp())
    (told,) = stack.sim.messages(dms)
    assert told.text == (
        f"<@{MANAGER}> set you away until <!date^{until}^{{date_short_pretty}} {{time}}|"
        "Thu 26 Nov 11:00 AEDT> — Cover for &lt;Ana&gt; &amp; co. New leads skip you until "
        "then; `/handoff back` to return."
    )
    assert told.render({MANAGER: "maya"}).startswith("@maya set you away until ")
    assert await away_now(stack, clock) == {REP2}

    await say(stack, MANAGER, "back @tom")
    await stack.driver.command(MANAGER, "/handoff", "back @tom", retry_num=1)
    await stack.settle()
    assert [message.text for message in stack.sim.messages(dms)[1:]] == [
        f"<@{MANAGER}> set you back: new leads reach you again."
    ]
    assert await away_now(stack, clock) == set()


async def test_nobody_is_told_when_they_set_their_own_time_away(
    stack: LocalStack, clock: TravelClock
) -> None:
    await say(stack, REP1, "away fri Offsite")
    await say(stack, MANAGER, "away 2d")  # a manager's own time away: no DM either
    await say(stack, REP1, "back")
    await stack.settle()
    assert stack.sim.messages(stack.sim.dm_channel(REP1)) == []
    assert stack.sim.messages(stack.sim.dm_channel(MANAGER)) == []
    assert await away_now(stack, clock) == set()


@pytest.mark.parametrize("text", ["away @tom 3d", "away <@U0REP2|tom> fri", "back <@U0REP2>"])
async def test_a_rep_cannot_set_someone_else(
    stack: LocalStack, clock: TravelClock, text: str
) -> None:
    if text.startswith("back"):
        await say(stack, MANAGER, "away @tom 3d")
    before = await away_now(stack, clock)
    assert await say(stack, REP1, text) == AWAY_REFUSAL
    assert await away_now(stack, clock) == before


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("away soon", "I can't read 'soon' as until when."),
        ("away 2026-11-01", "2026-11-01 has passed already"),
        ("back tomorrow", "`/handoff back` takes no more than a rep"),
    ],
)
async def test_malformed_away_is_refused_with_the_forms(
    stack: LocalStack, clock: TravelClock, text: str, problem: str
) -> None:
    said = await say(stack, REP1, text)
    assert problem in said
    assert "`/handoff away [until] [note]`" in said or "/handoff back" in said
    assert await away_now(stack, clock) == set()


async def test_someone_off_the_sla_is_told_it_changes_nothing(stack: LocalStack) -> None:
    said = await say(stack, "U0OUTSIDER", "away 3d")
    assert said.startswith("You are not a rep of any segment (nor a manager)")
    said = await say(stack, MANAGER, "away @nobody 3d")
    assert said.startswith("I don't know who @nobody is")


async def test_new_leads_skip_a_rep_who_is_away(stack: LocalStack, clock: TravelClock) -> None:
    await say(stack, REP1, "away tomorrow")
    assert [await new_lead(stack, f"hs-{n}") for n in range(3)] == [REP2, REP2, REP2]
    (post, *_) = stack.sim.messages(ENTERPRISE)
    assert f"<@{REP2}>" in post.all_text and f"<@{REP1}>" not in post.all_text
    await say(stack, REP1, "back")
    assert {await new_lead(stack, f"hs-b{n}") for n in range(2)} == {REP1, REP2}


async def test_an_away_owners_overdue_lead_goes_back_to_the_pool(
    stack: LocalStack, clock: TravelClock
) -> None:
    await new_lead(stack, "hs-1")
    await stack.driver.press(REP1, "Claim", channel=ENTERPRISE)
    await stack.settle()
    await say(stack, REP1, "away 3d")

    clock.advance(minutes=91)  # 12:31: the first touch's reminder; the owner is away
    assert (await stack.handoff.sweeper.run(clock())).changed == 1
    await stack.settle()
    assert stack.sim.messages(stack.sim.dm_channel(REP1)) == []  # no DM to someone away
    assert f"<@{REP1}> is away: first touch due in 29m" in thread(stack)[-1]
    assert (await stack.services.lead(1)).owner == REP1  # before the deadline: still theirs

    clock.advance(minutes=30)  # 13:01: the first touch is overdue
    assert (await stack.handoff.sweeper.run(clock())).changed == 1
    await stack.settle()
    lead = await stack.services.lead(1)
    assert (lead.stage, lead.owner, lead.suggested_owner) == (Stage.MQL, None, REP2)
    note = thread(stack)[-1]
    assert f"<@{REP1}> is away, so this lead is back with the enterprise pool" in note
    assert f"(suggested: <@{REP2}>)" in note and "Press *Claim*" in note
    assert "Claim" in buttons(stack)  # the post is open again, updated in place
    assert stack.sim.messages(ESCALATIONS) == []  # the pool has someone: no manager alert

    await stack.driver.press(REP2, "Claim", channel=ENTERPRISE)
    await stack.settle()
    assert (await stack.services.lead(1)).owner == REP2
    events = [event.type for event in await stack.services.store.events(1)]
    assert events.count("offered") == 1 and events.count("claimed") == 2


async def test_a_released_lead_s_claim_clock_runs_from_the_release(
    stack: LocalStack, clock: TravelClock
) -> None:
    """A lead released because its owner is away gets a new claim deadline (1 working hour for
    a hot lead) and its claim ladder runs on that window, as a fresh lead's does: the channel
    hears at 50% of it, not at once (regression: the window still began at the lead's arrival,
    so its 50% step had passed when it was released)."""
    await new_lead(stack, "hs-1")
    await stack.driver.press(REP1, "Claim", channel=ENTERPRISE)
    await stack.settle()
    await say(stack, REP1, "away 3d")
    clock.advance(minutes=121)  # 13:01: the first touch is overdue; back to the pool
    released = clock()
    assert (await stack.handoff.sweeper.run(clock())).changed == 1
    await stack.settle()
    lead = await stack.services.lead(1)
    assert (lead.stage, lead.owner, lead.suggested_owner) == (Stage.MQL, None, REP2)
    assert lead.claim_due_at == released + timedelta(hours=1)
    assert lead.next_action_at == released + timedelta(minutes=30)  # 50% of the new window
    notes = len(thread(stack))

    clock.advance(minutes=4)  # 13:05: nothing of the new window is due yet
    assert (await stack.handoff.sweeper.run(clock())).changed == 0
    await stack.settle()
    assert len(thread(stack)) == notes

    clock.now = released + timedelta(minutes=30)  # 13:31: halfway to the new claim deadline
    assert (await stack.handoff.sweeper.run(clock())).changed == 1
    await stack.settle()
    assert f"<@{REP2}>" in thread(stack)[-1] and "claim due in 30m" in thread(stack)[-1]
    assert "after its release to the pool" in thread(stack)[-1], thread(stack)[-1]


async def test_an_unclaimed_lead_of_an_away_rep_is_offered_and_managers_hear_when_nobody_is_in(
    stack: LocalStack, clock: TravelClock
) -> None:
    assert await new_lead(stack, "hs-1") == REP1
    await say(stack, MANAGER, "away @maya 3d")
    await say(stack, MANAGER, "away @tom 3d")
    clock.advance(minutes=61)  # 12:01: nobody claimed it by its deadline
    assert (await stack.handoff.sweeper.run(clock())).changed == 1
    await stack.settle()
    lead = await stack.services.lead(1)
    assert (lead.owner, lead.suggested_owner) == (None, None)
    assert f"<@{REP1}> is away, so this lead is back with the enterprise pool." in thread(stack)[-1]
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert f"<@{REP1}> is away and the enterprise pool has nobody available (all away)." in (
        alert.text
    )
    # The post, updated in place, no longer reads as the away rep's turn of the round robin.
    (post,) = stack.sim.messages(ENTERPRISE)
    assert f"Offered to the pool: <@{REP1}> away · nobody available (all away)" in post.all_text
    assert "Round robin" not in post.all_text


@pytest.fixture
async def status_stack(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> AsyncIterator[LocalStack]:
    listed = parse_policy(snapshot(policy) | {"away_statuses": [":palm_tree:", "Out of office"]})
    # No scheduled sweeps or status reads: each test reads the statuses when it means to.
    local = await start_stack(sqlite_url, listed, clock=clock, HANDOFF_SWEEP_SECONDS="0")
    try:
        yield local
    finally:
        await local.close()


async def test_an_away_slack_status_counts_until_it_expires(
    status_stack: LocalStack, clock: TravelClock
) -> None:
    stack = status_stack
    expires = clock() + timedelta(days=1)
    stack.sim.set_status(REP1, "Back Tuesday", ":palm_tree:", int(expires.timestamp()))
    before = len(stack.sim.calls)
    assert await stack.handoff.people.statuses(clock()) == 1
    calls = [call for call in stack.sim.calls[before:] if call.method == "users.profile.get"]
    assert {call.args.get("user") for call in calls} >= {REP1, REP2}
    assert [await new_lead(stack, f"hs-{n}") for n in range(2)] == [REP2, REP2]
    # A sweep reads the stored status: Slack is not asked again per lead.
    clock.advance(minutes=61)
    await stack.handoff.sweeper.run(clock())
    again = [c for c in stack.sim.calls[before:] if c.method == "users.profile.get"]
    assert len(again) == len(calls)

    said = await say(stack, REP1, "back")
    assert "Your Slack status (:palm_tree: Back Tuesday) still says away" in said

    clock.advance(days=1)  # the status expired
    assert await stack.handoff.sweeper.away.away([REP1], clock()) == frozenset()
    stack.sim.set_status(REP1, "Out of office", "", 0)  # no expiration: until cleared
    await stack.handoff.read_statuses()  # what `serve` runs every STATUS_SECONDS
    assert await stack.handoff.sweeper.away.away([REP1], clock()) == {REP1}
    stack.sim.set_status(REP1)
    await stack.handoff.people.statuses(clock())
    assert await stack.handoff.sweeper.away.away([REP1], clock()) == frozenset()


async def test_the_simulator_answers_users_profile_get_as_slack_documents(
    status_stack: LocalStack,
) -> None:
    stack = status_stack
    stack.sim.set_status(REP1, "Out of office", ":palm_tree:", 0)
    client = stack.handoff.people.client
    answer = await client.users_profile_get(user=REP1)
    profile = answer["profile"]
    assert (profile["status_text"], profile["status_emoji"], profile["status_expiration"]) == (
        "Out of office",
        ":palm_tree:",
        0,
    )
    with pytest.raises(SlackApiError) as error:
        await client.users_profile_get(user="U0NOBODY")
    assert error.value.response["error"] == "user_not_found"


async def test_without_the_scope_statuses_are_skipped_and_time_set_by_hand_stays(
    status_stack: LocalStack, clock: TravelClock
) -> None:
    stack = status_stack
    await say(stack, REP2, "away 3d")
    stack.sim.set_status(REP1, "Out of office", "", 0)
    assert stack.sim.scopes is not None
    stack.sim.scopes = [scope for scope in stack.sim.scopes if scope != "users.profile:read"]
    before = len(stack.sim.calls)
    assert await stack.handoff.people.statuses(clock()) == 0
    asked = [call for call in stack.sim.calls[before:] if call.method == "users.profile.get"]
    assert len(asked) == 1  # it stops at the first refusal instead of asking for every rep
    assert await away_now(stack, clock) == {REP2}


async def test_statuses_stop_counting_when_the_sla_lists_none(
    stack: LocalStack, clock: TravelClock
) -> None:
    """`away_statuses` taken out of the file: what was read under it no longer counts, and
    Slack is not asked."""
    away = stack.handoff.sweeper.away
    await away.sync_statuses([REP1], {REP1: StatusAway(None, ":palm_tree:")}, clock())
    await say(stack, REP2, "away 3d")
    before = len(stack.sim.calls)
    await stack.handoff.read_statuses()
    assert [call.method for call in stack.sim.calls[before:]] == []
    assert await away_now(stack, clock) == {REP2}  # time set by hand stays


async def test_a_rep_away_sees_it_on_app_home(stack: LocalStack, clock: TravelClock) -> None:
    await stack.driver.app_home_opened(REP1)
    await stack.settle()
    assert "You're away" not in str(stack.sim.home(REP1))
    await say(stack, REP1, "away fri")
    await stack.settle()
    assert "🌴 You're away: new leads skip you" in str(stack.sim.home(REP1))
    await say(stack, REP1, "back")
    await stack.settle()
    assert "You're away" not in str(stack.sim.home(REP1))
