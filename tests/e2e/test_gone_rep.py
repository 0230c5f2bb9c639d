"""A rep Slack deactivates (or makes a guest) holds open leads nobody will work: through the
real server and the Slack simulator, Slack's `user_change` event
(https://docs.slack.dev/reference/events/user_change/) hands them on at once, each to the next
rep of its pool's rotation, as the SLA's `reassign` step does: the post is updated in place,
the new rep is told, each lead gets its event, and the managers hear once, in one message.
On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.services.home import Homes
from bot.simulator.data import Message
from tests.conftest import lead_payload
from tests.e2e.test_time_away import say

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
MAYA, TOM, MANAGER = "U0REP1", "U0REP2", "U0MGR1"  # the example enterprise pool, in its order


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url


async def post_leads(stack: LocalStack, count: int) -> dict[str, Message]:
    """`count` hot enterprise leads, suggested in turn to @maya and @tom: each post by its
    external id."""
    for index in range(1, count + 1):
        status, _ = await stack.post_lead(lead_payload(f"hs-{index}", name=f"Lead {index}"))
        assert status == 201
        await stack.settle()
    posts = stack.sim.messages(ENTERPRISE)
    return {f"hs-{index}": post for index, post in enumerate(posts, start=1)}


async def press(stack: LocalStack, user: str, label: str, post: Message) -> None:
    answer = await stack.driver.press(user, label, channel=ENTERPRISE, message_ts=post.ts)
    assert answer.status == 200
    await stack.settle()


def dms(stack: LocalStack, user: str) -> list[str]:
    return [message.all_text for message in stack.sim.messages(stack.sim.dm_channel(user))]


def post_of(stack: LocalStack, ts: str) -> Message:
    (post,) = [message for message in stack.sim.messages(ENTERPRISE) if message.ts == ts]
    return post


async def mayas_three(stack: LocalStack) -> dict[str, Message]:
    """@maya holds three open leads, none worked yet: one claimed, one claimed and called
    (a first touch), one suggested and unclaimed; @tom holds the other three."""
    posts = await post_leads(stack, 6)
    assert [(await stack.services.lead(n)).suggested_owner for n in range(1, 7)] == [
        MAYA,
        TOM,
    ] * 3
    await press(stack, MAYA, "Claim", posts["hs-1"])
    await press(stack, MAYA, "Claim", posts["hs-3"])
    await press(stack, MAYA, "Log call", posts["hs-3"])
    return posts


async def deactivate(stack: LocalStack, user: str, event_id: str | None = None) -> None:
    stack.sim.deactivate_user(user)
    answer = await stack.driver.event(
        {"type": "user_change", "user": stack.sim.users[user].to_api(stack.driver.team_id)},
        event_id=event_id,
    )
    assert answer.status == 200
    await stack.settle()


async def test_a_deactivated_reps_open_leads_are_handed_on_at_once(
    stack: LocalStack, clock: TravelClock
) -> None:
    posts = await mayas_three(stack)
    clock.advance(minutes=5)  # 11:05: no deadline has passed
    await deactivate(stack, MAYA)

    leads = {n: await stack.services.lead(n) for n in (1, 3, 5)}
    assert [(lead.owner, lead.suggested_owner) for lead in leads.values()] == [
        (TOM, TOM),  # claimed: @tom owns it now
        (TOM, TOM),  # claimed and called: the call stays on it, @tom works it on
        (None, TOM),  # unclaimed: suggested to @tom, for him to claim
    ]
    assert leads[3].attempts == 1 and leads[3].first_touch_at is not None
    for n in (1, 3, 5):
        events = [e for e in await stack.services.store.events(n) if e.type == "reassigned"]
        assert [(e.data["from"], e.data["to"], e.data["why"]) for e in events] == [
            (MAYA, TOM, "deactivated")
        ]
        post = post_of(stack, posts[f"hs-{n}"].ts)  # the same message, updated in place
        assert (
            f"Reassigned by the SLA from <@{MAYA}> (deactivated in Slack) · Round robin: <@{TOM}>"
            in post.all_text
        )
        (note,) = [r.all_text for r in stack.sim.thread(ENTERPRISE, post.ts) if "🔁" in r.text]
        assert note.startswith(f"🔁 Reassigned to <@{TOM}> from <@{MAYA}> at Mon 11:05 AEDT")
        assert note.endswith(f"<@{MAYA}> was deactivated in Slack.")
    handed = [text for text in dms(stack, TOM) if "handed you" in text]
    assert len(handed) == 3
    assert handed[0].startswith(
        f"🔁 The SLA (<@{MAYA}> was deactivated in Slack) handed you *Lead 1* (Northwind "
        f"Logistics) in <#{ENTERPRISE}>: it is yours now."
    )
    assert any("*Lead 5*" in text and "claim it there" in text for text in handed)
    assert dms(stack, MAYA) == []  # a deactivated member is not written to
    # @tom's own leads did not move.
    assert [(await stack.services.lead(n)).suggested_owner for n in (2, 4, 6)] == [TOM] * 3

    (alert,) = stack.sim.messages(ESCALATIONS)  # one message for the managers, not three
    assert alert.text.splitlines() == [
        f"🚪 <@{MAYA}> was deactivated in Slack at Mon 11:05 AEDT with 3 open leads.",
        "Handed on now, by each pool's rotation:",
        f"• *Lead 1* (Northwind Logistics) in <#{ENTERPRISE}> → <@{TOM}>",
        f"• *Lead 3* (Northwind Logistics) in <#{ENTERPRISE}> → <@{TOM}>",
        f"• *Lead 5* (Northwind Logistics) in <#{ENTERPRISE}> → <@{TOM}>",
    ]


async def test_the_event_twice_and_the_daily_refresh_hand_nothing_on_twice(
    stack: LocalStack, clock: TravelClock
) -> None:
    await mayas_three(stack)
    await deactivate(stack, MAYA, event_id="Ev0GONE1")
    before = [m.all_text for m in stack.sim.messages(ESCALATIONS)], dms(stack, TOM)
    await deactivate(stack, MAYA, event_id="Ev0GONE1")  # Slack's retry of the same event
    clock.advance(minutes=1)
    await deactivate(stack, MAYA)  # another user_change for her (a profile edit, say)
    await stack.handoff.people.refresh(clock())  # the daily refresh finds her deactivated
    await stack.settle()

    assert ([m.all_text for m in stack.sim.messages(ESCALATIONS)], dms(stack, TOM)) == before
    for n in (1, 3, 5):
        events = await stack.services.store.events(n)
        assert [e.type for e in events].count("reassigned") == 1


async def test_the_daily_refresh_hands_on_the_leads_of_a_rep_whose_event_was_missed(
    stack: LocalStack,
) -> None:
    await mayas_three(stack)
    stack.sim.make_guest(MAYA)  # no user_change reaches Handoff (it was down, say)
    await stack.handoff.people.refresh(stack.handoff.clock())
    await stack.settle()

    assert [(await stack.services.lead(n)).suggested_owner for n in (1, 3, 5)] == [TOM] * 3
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert alert.text.startswith(f"🚪 <@{MAYA}> was made a guest in Slack at ")


async def test_with_nobody_in_the_pool_the_leads_go_to_the_fallback_owner(
    stack: LocalStack,
) -> None:
    posts = await post_leads(stack, 1)
    said = await say(stack, TOM, "away fri Offsite")
    assert said.startswith("You're away until"), said
    await deactivate(stack, MAYA)

    lead = await stack.services.lead(1)
    assert lead.suggested_owner == MANAGER  # the first manager: the SLA's fallback owner
    assert "Fallback: nobody available" in post_of(stack, posts["hs-1"].ts).all_text
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert (
        f"• *Lead 1* (Northwind Logistics) in <#{ENTERPRISE}> → <@{MANAGER}> (fallback: nobody "
        "in its pool available)"
    ) in alert.text.splitlines()


async def test_a_lead_with_feedback_stays_for_a_manager_and_a_rep_back_gets_nothing_back(
    stack: LocalStack,
) -> None:
    posts = await post_leads(stack, 3)  # @maya: 1 and 3; @tom: 2
    await press(stack, MAYA, "Claim", posts["hs-1"])
    await press(stack, MAYA, "Log call", posts["hs-1"])
    await press(stack, MAYA, "Contacted – progressing", posts["hs-1"])
    await deactivate(stack, MAYA)

    worked, fresh = await stack.services.lead(1), await stack.services.lead(3)
    assert (worked.owner, fresh.suggested_owner) == (MAYA, TOM)
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert alert.text.splitlines()[-2:] == [
        "Left with them for you to hand on (Reassign in `/lead`):",
        f"• *Lead 1* (Northwind Logistics) in <#{ENTERPRISE}>: `/lead hs-1`",
    ]

    stack.sim.users[MAYA].deleted = False  # reactivated: new leads again, none of the old
    assert (
        await stack.driver.event(
            {"type": "user_change", "user": stack.sim.users[MAYA].to_api(stack.driver.team_id)}
        )
    ).status == 200
    await stack.settle()
    assert (await stack.services.lead(3)).suggested_owner == TOM
    assert len(stack.sim.messages(ESCALATIONS)) == 1


async def test_the_sweep_hands_no_lead_to_a_rep_who_left(
    stack: LocalStack, clock: TravelClock
) -> None:
    await post_leads(stack, 2)  # @maya: 1; @tom: 2
    await deactivate(stack, MAYA)  # lead 1 goes to @tom
    clock.advance(minutes=91)  # 12:31: both unclaimed past 150% of the claim window
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    # Not back to @maya: with nobody else in the pool, the fallback owner.
    assert [(await stack.services.lead(n)).suggested_owner for n in (1, 2)] == [MANAGER] * 2


async def test_leads_left_with_a_rep_who_left_are_told_once(
    stack: LocalStack, clock: TravelClock
) -> None:
    posts = await post_leads(stack, 1)
    await press(stack, MAYA, "Claim", posts["hs-1"])
    await press(stack, MAYA, "Log call", posts["hs-1"])
    await press(stack, MAYA, "Contacted – progressing", posts["hs-1"])
    await deactivate(stack, MAYA)
    clock.advance(minutes=1)
    await deactivate(stack, MAYA)  # another user_change for her
    await stack.handoff.people.refresh(clock())  # and the daily refresh
    await stack.settle()

    assert (await stack.services.lead(1)).owner == MAYA
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert alert.text.splitlines()[1:] == [
        "Left with them for you to hand on (Reassign in `/lead`):",
        f"• *Lead 1* (Northwind Logistics) in <#{ENTERPRISE}>: `/lead hs-1`",
    ]


async def off_the_sla(stack: LocalStack, policy: Policy, rep: str, clock: TravelClock) -> None:
    """RevOps takes `rep` out of every pool in sla.yaml (the new version, as a restart with
    the edited file records it); the leads they hold keep theirs."""
    data = snapshot(policy)
    for segment in data["segments"]:
        segment["reps"] = [other for other in segment["reps"] if other != rep]
    book = stack.handoff.people.policies
    book.current = parse_policy(data)
    await book.record_current(clock())
    assert rep not in stack.handoff.people.members()


async def test_a_rep_off_the_sla_who_leaves_has_their_open_leads_handed_on_at_once(
    stack: LocalStack, clock: TravelClock, policy: Policy
) -> None:
    """Moved off the rotation, @maya still holds her open leads; when she leaves the company
    Slack's `user_change` event (its user object's `deleted`: true) hands them on at once,
    as for a rep the file names, not when their deadlines pass hours or days later."""
    await mayas_three(stack)
    await off_the_sla(stack, policy, MAYA, clock)
    clock.advance(minutes=5)
    await deactivate(stack, MAYA, event_id="Ev0OFF1")

    assert [(await stack.services.lead(n)).suggested_owner for n in (1, 3, 5)] == [TOM] * 3
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert alert.text.startswith(f"🚪 <@{MAYA}> was deactivated in Slack at Mon 11:05 AEDT")
    assert MAYA in stack.handoff.people.barred

    # Exactly once: Slack's retry, another event, and the daily refresh change nothing more.
    before = [m.all_text for m in stack.sim.messages(ESCALATIONS)], dms(stack, TOM)
    await deactivate(stack, MAYA, event_id="Ev0OFF1")
    clock.advance(minutes=1)
    await deactivate(stack, MAYA)
    await stack.handoff.people.refresh(clock())
    await stack.settle()
    assert ([m.all_text for m in stack.sim.messages(ESCALATIONS)], dms(stack, TOM)) == before
    for n in (1, 3, 5):
        events = await stack.services.store.events(n)
        assert [e.type for e in events].count("reassigned") == 1


async def test_the_daily_refresh_reads_a_rep_off_the_sla_who_holds_open_leads(
    stack: LocalStack, clock: TravelClock, policy: Policy
) -> None:
    """The event was missed (Handoff was down): the daily `users.info` refresh reads the
    holders of open leads too, finds @maya deactivated and hands hers on; once she holds none,
    the refresh no longer asks Slack about her."""
    await mayas_three(stack)
    await off_the_sla(stack, policy, MAYA, clock)
    stack.sim.deactivate_user(MAYA)  # no user_change reaches Handoff
    mark = len(stack.sim.calls)
    await stack.handoff.people.refresh(clock())
    await stack.settle()

    asked = [c.args.get("user") for c in stack.sim.calls[mark:] if c.method == "users.info"]
    assert MAYA in asked
    assert [(await stack.services.lead(n)).suggested_owner for n in (1, 3, 5)] == [TOM] * 3
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert alert.text.startswith(f"🚪 <@{MAYA}> was deactivated in Slack at ")

    mark = len(stack.sim.calls)
    await stack.handoff.people.refresh(clock())
    await stack.settle()
    asked = [c.args.get("user") for c in stack.sim.calls[mark:] if c.method == "users.info"]
    assert MAYA not in asked and TOM in asked
    assert len(stack.sim.messages(ESCALATIONS)) == 1


async def test_another_replica_stops_routing_to_a_rep_who_left_at_its_next_look(
    stack: LocalStack, clock: TravelClock, policy: Policy, stack_database_url: str
) -> None:
    """`handoff serve` on N replicas (SPEC): Slack sends `user_change` to one of them. The
    others kept the rep who left in their rotation (and her roles: a guest could still read
    leads there) until their own daily refresh, a day later. Each replica's next look (every
    30 s, `read_people`) now reads who left from the database."""
    other = await start_stack(stack_database_url, policy, clock=clock, sim=stack.sim)
    try:
        # Only the looks the test makes: its start-up read in the background is done with.
        for task in other.handoff.background:
            if task.get_coro().__qualname__ == "Handoff.refresh_people":  # type: ignore[union-attr]
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await deactivate(stack, MAYA)  # the event reached the first replica only
        assert MAYA in stack.handoff.people.barred
        await other.handoff.read_people()  # the other's next look
        for index in (1, 2):  # @maya's turn would come in one of two
            status, _ = await other.post_lead(lead_payload(f"hs-{index}", name=f"Lead {index}"))
            assert status == 201
        await other.settle()
        owners = [(await other.services.lead(n)).suggested_owner for n in (1, 2)]
        assert MAYA not in owners and TOM in owners
    finally:
        await other.close()


@pytest.mark.parametrize("news", ["deactivated", "reactivated"])
async def test_a_user_change_while_the_daily_refresh_reads_is_not_overwritten_by_it(
    stack: LocalStack, clock: TravelClock, monkeypatch: pytest.MonkeyPatch, news: str
) -> None:
    """The daily refresh asks users.info member by member (minutes for 1,000) and saves the
    answers at the end: a `user_change` that lands meanwhile (Slack's event, newer than the
    answer read before it) was overwritten by the older answer, on this replica and in the
    database the others read, until the next day's refresh. The newer word stays."""
    from tests.e2e.test_token_refused import refreshed

    await refreshed(stack)
    if news == "reactivated":
        await deactivate(stack, MAYA)
    people = stack.handoff.people
    read = people.client.users_info

    async def event_after_her_answer(**kwargs: object) -> object:
        answer = await read(**kwargs)  # type: ignore[arg-type]
        if kwargs.get("user") == MAYA:  # her answer is read; her event lands before the save
            clock.advance(seconds=1)
            if news == "deactivated":
                await deactivate(stack, MAYA)
            else:
                stack.sim.users[MAYA].deleted = False
                user = stack.sim.users[MAYA].to_api(stack.driver.team_id)
                await stack.driver.event({"type": "user_change", "user": user})
                await stack.settle()
        return answer

    monkeypatch.setattr(people.client, "users_info", event_after_her_answer)
    clock.advance(days=1)
    await people.refresh(clock())  # the daily refresh
    await stack.settle()

    gone = news == "deactivated"
    assert (MAYA in people.barred) is gone  # this replica
    assert (MAYA in await stack.handoff.store.barred()) is gone  # the others, and a restart


async def test_a_dm_to_a_rep_slack_deactivated_unheard_is_refused_alone_and_told(
    stack: LocalStack, clock: TravelClock
) -> None:
    """@maya deactivated in Slack while Handoff missed the event: the owner reminder the sweep
    sends her is refused (conversations.open `user_disabled`, "A specified `user` has been
    disabled."), given up once (not retried for ever), and told in plain words; @tom's
    reminder, in its own lane, reaches him all the same. Slack's refusal is its word that she
    left: Handoff reads her (users.info: `deleted: true`) and hands her open leads on at once,
    not at the next daily refresh of names."""
    posts = await post_leads(stack, 2)
    await press(stack, MAYA, "Claim", posts["hs-1"])
    await press(stack, TOM, "Claim", posts["hs-2"])
    stack.sim.deactivate_user(MAYA)  # no user_change reaches Handoff

    clock.advance(minutes=95)  # 75% of the 2 business hours to a first touch: remind_owner
    await stack.handoff.sweeper.run(clock())
    await stack.settle()

    assert dms(stack, MAYA) == []
    assert any("Lead 2" in text and "handed you" not in text for text in dms(stack, TOM))
    rows = [r for r in await stack.handoff.outbox.rows.rows() if r["channel"] == MAYA]
    assert [(r["state"], r["last_error"]) for r in rows] == [("failed", "user_disabled")]
    alerts = [m.all_text for m in stack.sim.messages(ESCALATIONS)]
    (refused,) = [text for text in alerts if "user_disabled" in text]
    assert f"<@{MAYA}>" in refused and "deactivated" in refused

    lead = await stack.services.lead(1)
    assert lead.owner == TOM  # handed on now, by the pool's rotation
    (gone,) = [text for text in alerts if text.startswith("🚪")]
    assert f"<@{MAYA}> was deactivated in Slack" in gone and "*Lead 1*" in gone
    assert any("handed you *Lead 1*" in text for text in dms(stack, TOM))


async def test_a_rep_made_a_guest_no_longer_has_leads_in_their_app_home(
    stack: LocalStack, clock: TravelClock
) -> None:
    """A guest must not read leads: their open leads go to the next rep, and the App Home Slack
    keeps for them (it shows the last view published, the moment the tab opens) is published
    again without them. Before, it kept their old queue, names and companies and all, until
    they opened the tab again (and Slack showed it them first)."""
    posts = await mayas_three(stack)
    await stack.driver.app_home_opened(MAYA)
    await stack.settle()
    assert "Lead 1" in str(stack.sim.home(MAYA))

    stack.sim.make_guest(MAYA)
    answer = await stack.driver.event(
        {"type": "user_change", "user": stack.sim.users[MAYA].to_api(stack.driver.team_id)}
    )
    assert answer.status == 200
    await stack.settle()

    assert (await stack.services.lead(1)).owner == TOM
    home = str(stack.sim.home(MAYA))
    assert not any(f"Lead {n}" in home for n in range(1, 7)), home
    assert "Northwind" not in home and "guests" in home
    assert posts  # the posts stay in the channel, updated in place


async def test_a_manager_made_a_guest_no_longer_has_the_overdue_list_in_their_app_home(
    stack: LocalStack, clock: TravelClock
) -> None:
    """A manager holds no lead, but their App Home lists the overdue ones (names, companies,
    Reassign and Snooze): made a guest, their home is published again without them."""
    await post_leads(stack, 1)
    clock.advance(minutes=61)  # 12:01: the claim deadline passed
    await stack.driver.app_home_opened(MANAGER)
    await stack.settle()
    assert "Lead 1" in str(stack.sim.home(MANAGER))

    stack.sim.make_guest(MANAGER)
    answer = await stack.driver.event(
        {"type": "user_change", "user": stack.sim.users[MANAGER].to_api(stack.driver.team_id)}
    )
    assert answer.status == 200
    await stack.settle()

    home = str(stack.sim.home(MANAGER))
    assert "Lead 1" not in home and "Northwind" not in home and "guests" in home, home


async def test_a_manager_made_a_guest_whose_hand_on_failed_loses_the_list_at_the_next_refresh(
    stack: LocalStack, clock: TravelClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The member's new state is saved before their hand-on runs (its own transaction): when
    the hand-on fails (the database, or a kill -9 between the two), the next refresh no longer
    finds them newly gone. A manager holds no lead: before, nothing published their home again,
    and it kept the overdue list (names, companies, Reassign and Snooze) for good."""
    await post_leads(stack, 1)
    clock.advance(minutes=61)  # 12:01: the claim deadline passed
    await stack.driver.app_home_opened(MANAGER)
    await stack.settle()
    assert "Lead 1" in str(stack.sim.home(MANAGER))

    stack.sim.make_guest(MANAGER)  # the user_change event was missed
    store = type(stack.handoff.sweeper.rows)
    hand_on = store.hand_on
    failed: list[str] = []

    async def fails_once(self: object, rep: str, *args: object) -> list[int]:
        if not failed:
            failed.append(rep)
            raise ConnectionError("the database went away")
        return await hand_on(self, rep, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "hand_on", fails_once)
    await stack.handoff.people.refresh(clock())
    await stack.settle()
    assert failed == [MANAGER] and MANAGER in stack.handoff.people.barred

    clock.advance(days=1)
    await stack.handoff.people.refresh(clock())  # the next daily refresh
    await stack.settle()
    home = str(stack.sim.home(MANAGER))
    assert "Lead 1" not in home and "Northwind" not in home and "guests" in home, home


async def test_a_manager_made_a_guest_is_not_shown_the_list_by_a_replica_that_missed_it(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Slack sends `user_change` to one replica; another learns who left from the database at
    its next look (every 30 s). The home request the hand-on writes is delivered by whichever
    replica's worker takes it: one that has not looked yet rendered the manager's overdue list
    again, and the guest kept it."""
    await post_leads(stack, 1)
    clock.advance(minutes=61)
    await stack.driver.app_home_opened(MANAGER)
    await stack.settle()
    homes = stack.handoff.outbox.homes
    assert homes is not None
    other = Homes(homes.rows, homes.policies, homes.reports, homes.names)

    stack.sim.make_guest(MANAGER)
    await stack.driver.event(
        {"type": "user_change", "user": stack.sim.users[MANAGER].to_api(stack.driver.team_id)}
    )
    await stack.settle()

    view = str(await other.view(MANAGER, clock()))  # the other replica renders it
    assert "Lead 1" not in view and "Northwind" not in view and "guests" in view, view
