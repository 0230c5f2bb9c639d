"""App Home through the real server and the simulator: a rep's queue with working buttons, a
manager's week and overdue leads, refreshed after each change that concerns the person."""

from __future__ import annotations

import json
from typing import Any

from bot.cli.stack import LocalStack, TravelClock, local_slack, start_stack
from bot.domain.policy import Policy, parse_policy, snapshot
from tests.conftest import lead_payload

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
REP, PEER, MANAGER, OTHER_MANAGER = "U0REP1", "U0REP2", "U0MGR1", "U0MGR2"


async def new_lead(stack: LocalStack, external_id: str = "hs-1", **fields: Any) -> int:
    """A hot enterprise lead, posted; the round robin suggests REP, then PEER, then REP…"""
    status, answer = await stack.post_lead(lead_payload(external_id, **fields))
    assert status == 201, answer
    await stack.settle()
    return int(answer["id"])


async def open_home(stack: LocalStack, user: str) -> dict[str, Any]:
    response = await stack.driver.app_home_opened(user)
    assert response.status == 200
    await stack.settle()
    return home(stack, user)


def home(stack: LocalStack, user: str) -> dict[str, Any]:
    view = stack.sim.home(user)
    assert view is not None, f"{user} has no App Home"
    return view


def text(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False)


def buttons(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (element["text"]["text"], element.get("value", ""))
        for block in view["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["type"] == "button"
    ]


def show(stack: LocalStack, user: str, view: dict[str, Any]) -> None:
    """The person still looks at an older home (its refresh is on the way): Slack keeps the
    last view published, so the simulator's stored home is put back."""
    stack.sim._homes[user].view = view


def publishes(stack: LocalStack, user: str) -> int:
    return sum(call.args.get("user_id") == user for call in stack.sim.calls_to("views.publish"))


async def test_a_rep_sees_their_leads_with_buttons(stack: LocalStack) -> None:
    suggested = await new_lead(stack, "hs-1", name="Priya Raman")
    for_peer = await new_lead(stack, "hs-2", name="Noah Brooks")
    mine = await new_lead(stack, "hs-3", name="Ada Byrne")
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE, value=str(mine))
    await stack.settle()

    view = await open_home(stack, REP)

    shown = text(view)
    assert "Your open leads" in shown and "Ada Byrne" in shown and "Attempts 0/6" in shown
    assert "Suggested for you" in shown and "Priya Raman" in shown
    assert "Noah Brooks" not in shown  # suggested to someone else
    assert ("Claim", str(suggested)) in buttons(view)
    assert {("Log call", str(mine)), ("Qualified", str(mine))} <= set(buttons(view))
    assert ("Claim", str(for_peer)) not in buttons(view)
    assert stack.sim.invalid_payloads == []


async def test_a_claim_in_the_channel_refreshes_the_home(stack: LocalStack) -> None:
    lead = await new_lead(stack)
    assert ("Claim", str(lead)) in buttons(await open_home(stack, REP))
    assert stack.sim.home(PEER) is None

    await stack.driver.press(PEER, "Claim", channel=ENTERPRISE)  # the suggested rep loses it
    await stack.settle()

    view = home(stack, REP)
    assert buttons(view) == [] and "Nothing open" in text(view)
    assert stack.sim.home(PEER) is None  # never opened App Home: nothing is published to it
    await open_home(stack, PEER)
    assert ("Log call", str(lead)) in buttons(home(stack, PEER))


async def test_buttons_pressed_in_app_home_work(stack: LocalStack) -> None:
    lead = await new_lead(stack)
    await open_home(stack, REP)

    await stack.driver.press_in_view(REP, "Claim")
    await stack.settle()
    assert (await stack.services.lead(lead)).owner == REP
    assert ("Log call", str(lead)) in buttons(home(stack, REP))

    await stack.driver.press_in_view(REP, "Log call")
    await stack.settle()
    assert (await stack.services.lead(lead)).attempts == 1
    assert "Attempts 1/6" in text(home(stack, REP))
    post = stack.sim.find_message(ENTERPRISE, "Priya Raman")
    assert post is not None and "Attempts 1/6" in post.all_text  # its message follows

    await stack.driver.press_in_view(REP, "Not a fit")  # a reason first: the modal opens
    await stack.settle()
    modal = stack.sim.latest_view(REP)
    assert modal is not None and modal.callback_id == "lead_dispose_modal"
    await stack.driver.submit_view(REP, {"reason": "No budget", "note": "Frozen till July."})
    await stack.settle()
    assert (await stack.services.lead(lead)).disposition_code == "not_a_fit"
    assert buttons(home(stack, REP)) == []
    assert stack.sim.ephemerals() == [] and stack.sim.invalid_payloads == []


async def test_a_refused_press_in_app_home_is_answered_there(stack: LocalStack) -> None:
    lead = await new_lead(stack)
    await open_home(stack, REP)
    stale = home(stack, REP)
    await stack.driver.press(PEER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    show(stack, REP, stale)

    response = await stack.driver.press_in_view(REP, "Claim", value=str(lead))
    assert response.status == 200
    await stack.settle()

    view = home(stack, REP)
    first = view["blocks"][0]["text"]["text"]
    assert f"Too late: this lead was already claimed by <@{PEER}>" in first
    assert ("Claim", str(lead)) not in buttons(view)  # and the home is as it is now
    assert stack.sim.ephemerals() == []  # App Home has no channel for an ephemeral
    assert (await stack.services.lead(lead)).owner == PEER


async def test_a_manager_sees_the_week_and_an_overdue_lead(
    stack: LocalStack, clock: TravelClock
) -> None:
    lead = await new_lead(stack, name="Priya Raman")
    clock.advance(minutes=61)  # 12:01 in Sydney: the claim deadline passed

    view = await open_home(stack, MANAGER)

    shown = text(view)
    assert "This week's SLA" in shown and "MQLs" in shown and "First-touch" in shown
    assert "Overdue now" in shown and "Priya Raman" in shown and "Claim overdue by" in shown
    assert "Your open leads" not in shown  # not a rep, and owns nothing
    assert ("Snooze 1h", str(lead)) in buttons(view)
    menus = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert any(element["action_id"] == "reassign" for element in menus)

    await stack.driver.press_in_view(MANAGER, "Snooze 1h")
    await stack.settle()

    snoozed = await stack.services.lead(lead)
    assert snoozed.snoozed_until is not None
    after = home(stack, MANAGER)
    assert after["blocks"][0]["text"]["text"].startswith(f"💬 😴 Snoozed by <@{MANAGER}>")
    assert "snoozed until" in text(after)
    assert stack.sim.ephemerals() == [] and stack.sim.invalid_payloads == []


async def test_the_access_guard_answers_in_app_home_too(
    stack: LocalStack, clock: TravelClock
) -> None:
    lead = await new_lead(stack)
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE)
    await stack.settle()
    stale = await open_home(stack, REP)
    await stack.services.reassign(lead, MANAGER, PEER, clock())  # a manager's call
    await stack.settle()
    assert buttons(home(stack, REP)) == []  # the rep's home lost it
    show(stack, REP, stale)

    await stack.driver.press_in_view(REP, "Log call")
    await stack.settle()

    first = home(stack, REP)["blocks"][0]["text"]["text"]
    assert f"Only <@{PEER}>, who owns this lead, or a manager can log an attempt." in first
    assert (await stack.services.lead(lead)).attempts == 0


async def test_home_refreshes_collapse(stack: LocalStack) -> None:
    await new_lead(stack)
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE)
    await stack.settle()
    await open_home(stack, REP)
    before = publishes(stack, REP)

    stack.sim.answer_delay = 0.3  # Slack is slow: changes pile up behind the first publish
    for label in ("Log email", "Log call", "Log LinkedIn"):
        await stack.driver.press(REP, label, channel=ENTERPRISE)
    await stack.settle()

    # Three changes: one or two publishes (the first may be on its way when the others
    # come), never one per change; the last shows them all.
    assert 1 <= publishes(stack, REP) - before <= 2
    assert "Attempts 3/6" in text(home(stack, REP))


async def test_the_managers_overdue_list_follows_a_change_without_reopening(
    stack: LocalStack, clock: TravelClock
) -> None:
    lead = await new_lead(stack, name="Priya Raman")
    clock.advance(minutes=61)  # 12:01: the claim deadline passed
    for manager in (MANAGER, OTHER_MANAGER):
        view = await open_home(stack, manager)
        assert "Claim overdue by" in text(view) and ("Snooze 1h", str(lead)) in buttons(view)

    await stack.driver.press_in_view(MANAGER, "Snooze 1h")  # one manager snoozes it
    await stack.settle()
    assert "snoozed until" in text(home(stack, OTHER_MANAGER))  # the other sees it at once

    await stack.driver.press(REP, "Claim", channel=ENTERPRISE)  # claimed: on time now
    await stack.settle()
    for manager in (MANAGER, OTHER_MANAGER):
        view = home(stack, manager)
        assert "Priya Raman" not in text(view) and buttons(view) == []


async def test_a_change_to_a_lead_on_time_leaves_the_managers_homes_alone(
    stack: LocalStack,
) -> None:
    await new_lead(stack)
    await open_home(stack, MANAGER)
    before = publishes(stack, MANAGER)

    await stack.driver.press(REP, "Claim", channel=ENTERPRISE)
    await stack.settle()
    await stack.driver.press(REP, "Log call", channel=ENTERPRISE)
    await stack.settle()

    assert publishes(stack, MANAGER) == before  # nothing on their overdue list changed


async def test_a_lead_the_managers_hear_of_shows_on_their_home(
    stack: LocalStack, clock: TravelClock
) -> None:
    lead = await new_lead(stack, name="Priya Raman")
    assert "Priya Raman" not in text(await open_home(stack, MANAGER))  # 11:00: on time

    clock.advance(minutes=61)  # 12:01: the claim deadline passed; the sweep tells the managers
    assert (await stack.handoff.sweeper.run(clock())).changed == 1
    await stack.settle()

    view = home(stack, MANAGER)
    assert "Claim overdue by" in text(view) and ("Snooze 1h", str(lead)) in buttons(view)


async def test_a_queue_of_long_emoji_leads_still_publishes(stack: LocalStack) -> None:
    """Intake takes 500-character names, titles and companies in any script; sent as JSON with
    every emoji escaped (12 bytes each), 25 such leads are past views.publish's 250 kB. The
    home shows the leads that fit and counts the rest, rather than failing to publish."""
    emoji = "👩" * 500
    company = {"name": emoji, "employees": 5000}
    for n in range(60):  # 30 suggested to REP
        await new_lead(stack, f"{emoji[:200]}{n}", name=emoji, title=emoji, company=company)
    view = await open_home(stack, REP)
    assert [call.error for call in stack.sim.calls_to("views.publish") if not call.ok] == []
    assert "🤝" in text(view) or "🔥" in text(view)
    assert "more: the channel has them all" in text(view)


async def test_a_home_slack_keeps_refusing_is_reported_once(stack: LocalStack) -> None:
    """views.publish's `not_enabled`: "a `home` view is published but the Home tab isn't
    enabled for the app" (an admin turned it off). The rep's home waits, and their next changes
    add nothing to it; the escalations channel hears of it once, not at every change
    (tests/e2e/test_home_tab_off.py: many people, the next day, the tab back on)."""
    await new_lead(stack)
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE)
    await stack.settle()
    await open_home(stack, REP)
    stack.sim.inject("views.publish", error="not_enabled")
    for label in ("Log email", "Log call", "Log LinkedIn"):
        await stack.driver.press(REP, label, channel=ENTERPRISE)
        await stack.settle()
    alerts = [m.all_text for m in stack.sim.messages(ESCALATIONS) if "App Home" in m.all_text]
    assert len(alerts) == 1, alerts
    assert "not_enabled" in alerts[0] and "1 person's App Home waits" in alerts[0]
    assert "Turn the Home tab back on" in alerts[0]
    refused = [call for call in stack.sim.calls_to("views.publish") if not call.ok]
    assert len(refused) == 1  # the changes after it wait with it


async def test_a_managers_monday_morning_week_is_not_read_as_a_fall(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Monday 08:30 in Sydney (Sunday 21:30 UTC): last week had three MQLs, this week none
    yet. The home said "MQLs: 0 · ▼ 3", the week's first minutes against a whole week, a fall
    that did not happen; a count or an amount so far is compared once its week has ended (as
    it is coloured then), and rates still are."""
    for index in range(3):
        await new_lead(stack, f"w47-{index}")  # Monday 23 Nov 11:00: the week shown below
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(days=7, hours=-2, minutes=-30)  # Monday 30 Nov 08:30 AEDT

    view = await open_home(stack, MANAGER)

    fields = [field["text"] for block in view["blocks"] for field in block.get("fields") or []]
    (mqls,) = [field for field in fields if field.startswith("*MQLs*")]
    assert mqls.endswith("0") and "▼" not in mqls and "same" not in mqls, mqls
    (pipeline,) = [field for field in fields if field.startswith("*Pipeline generated*")]
    assert "same" not in pipeline and "▼" not in pipeline, pipeline
    # `/sla-report last-week` still compares the whole week with the one before it.
    answer = await stack.driver.command(MANAGER, "/sla-report", "last-week", channel_id="D0MGR1")
    assert answer.status == 200
    await stack.settle()
    report = stack.sim.ephemerals(user=MANAGER)[-1].all_text
    assert "of 3 leads received · ▲ 3" in report


async def test_a_home_publish_answered_by_a_proxy_not_slack_is_published_later(
    stack: LocalStack, caplog: Any
) -> None:
    """views.publish answered twice by a load balancer's plain-text 503, not Slack's JSON: the
    home is published after the usual backoff, no alert, no traceback (before: AttributeError
    on the text's `.get`, "failed unexpectedly" with a traceback)."""
    lead = await new_lead(stack)
    assert ("Claim", str(lead)) in buttons(await open_home(stack, REP))
    upstream = "upstream connect error or disconnect/reset before headers. reset reason: overflow"
    stack.sim.inject("views.publish", status=503, text=upstream, times=2)

    await stack.driver.press(PEER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    assert await stack.handoff.outbox.drain(30)

    assert buttons(home(stack, REP)) == [] and "Nothing open" in text(home(stack, REP))
    assert [c.status for c in stack.sim.calls_to("views.publish") if c.status != 200] == [503] * 2
    assert stack.sim.messages(ESCALATIONS) == []
    assert "failed unexpectedly" not in caplog.text and "Traceback" not in caplog.text
    assert not any(record.exc_info for record in caplog.records)


async def test_a_managers_overdue_list_in_a_large_pool_with_long_names_still_publishes(
    database_url: str, policy: Policy, clock: TravelClock
) -> None:
    """Each overdue card carries a "Reassign to…" menu of the lead's pool: up to 100 options
    (a static select's most). A pool of 100 reps with full Cyrillic names (name, patronymic,
    surname: 40 characters, 6 bytes each as the SDK sends them) made ten such cards 290 kB, past
    views.publish's `view_too_large` ("greater than 250kb", /work/shared/slack/methods/
    views.publish.json): Slack refused the manager's home, and they saw none. The overdue list
    shows the cards that fit and says the escalations channel has the rest."""
    reps = [f"U0R{number:04d}" for number in range(100)]
    content = snapshot(policy)
    content["segments"][0]["reps"] = reps
    sim = await local_slack()
    for number, rep in enumerate(reps):
        full = f"Александра Владимировна Константинопольская {number:03d}"
        sim.add_user(rep, full, full)
    stack = await start_stack(database_url, parse_policy(content), clock=clock, sim=sim)
    try:
        for n in range(12):
            await new_lead(stack, f"hs-{n}", name=f"Lead {n}")
        clock.advance(minutes=61)  # 12:01 in Sydney: every claim deadline passed

        view = await open_home(stack, MANAGER)

        assert [c.error for c in stack.sim.calls_to("views.publish") if not c.ok] == []
        assert len(json.dumps(view["blocks"])) <= 250 * 1024
        assert "Claim overdue by" in text(view)
        snoozes = [value for label, value in buttons(view) if label == "Snooze 1h"]
        assert 1 <= len(snoozes) < 10  # ten do not fit: as many as do
        assert f"The {len(snoozes)} most overdue are shown" in text(view)
        assert stack.sim.invalid_payloads == []
    finally:
        await stack.close()
        await sim.stop()
