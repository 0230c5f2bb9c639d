"""Slash commands with odd or hostile arguments through the real server: each gets a precise
private answer in plain words, and nothing changes (no post, no DM, no time away, no lead
looked up)."""

from __future__ import annotations

import pytest

from bot.cli.stack import LocalStack, TravelClock
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"
MANAGER, REP1, REP2 = "U0MGR1", "U0REP1", "U0REP2"


async def answer(stack: LocalStack, user: str, command: str, text: str) -> str:
    """The private answer to `command text` by `user` (to the command, or by its response_url
    for a command answered later)."""
    before = len(stack.sim.ephemerals(user=user))
    response = await stack.driver.command(user, command, text)
    assert response.status == 200
    await stack.settle()
    if response.json is not None and response.json.get("text"):
        assert response.json["response_type"] == "ephemeral"
        return str(response.json["text"])
    (later,) = stack.sim.ephemerals(user=user)[before:]
    return str(later.text)


@pytest.fixture
async def posted(stack: LocalStack) -> LocalStack:
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    return stack


def slack_state(stack: LocalStack) -> list[object]:
    """What everyone sees in Slack, but for the private answers."""
    channels = ("C0ENT", "C0MID", "C0SMB", "C0SIM", "C0ESCALATE", "C0MKTFEED", "C0REVOPS")
    return [[m.all_text for m in stack.sim.messages(channel)] for channel in channels] + [
        len(stack.sim.calls_to("chat.postMessage")),
        len(stack.sim.calls_to("chat.update")),
    ]


async def unchanged(stack: LocalStack, clock: TravelClock, before: list[object]) -> None:
    assert slack_state(stack) == before
    assert not await stack.handoff.sweeper.away.away([REP1, REP2, MANAGER], clock())
    events = await stack.services.store.events(1)
    assert [event for event in events if event.type == "viewed"] == []


async def test_lead_with_a_person_or_a_channel_says_it_takes_a_lead(
    posted: LocalStack, clock: TravelClock
) -> None:
    stack = posted
    before = slack_state(stack)
    usage = "Usage: /lead &lt;email or external id&gt;, e.g. /lead jane@acme.com"
    assert await answer(stack, REP1, "/lead", "") == usage
    for mention in ("<@U0REP2|ben>", "<@U0REP2>"):
        assert await answer(stack, REP1, "/lead", mention) == (
            "`/lead` looks up a lead by its email or external id: <@U0REP2> is a person in "
            "Slack, not a lead. For example, `/lead jane@acme.com`."
        )
    assert await answer(stack, REP1, "/lead", "<#C0ENT|enterprise>") == (
        "`/lead` looks up a lead by its email or external id: that is a Slack channel, not a "
        "lead. For example, `/lead jane@acme.com`."
    )
    # The manifest's /lead does not escape (should_escape: false): a member or a channel comes
    # as typed, `@ben` or `#sales`, and is no lead's email or external id either.
    assert await answer(stack, REP1, "/lead", "@ben") == (
        "`/lead` looks up a lead by its email or external id: @ben is a person in Slack, not a "
        "lead. For example, `/lead jane@acme.com`."
    )
    assert await answer(stack, REP1, "/lead", "#enterprise") == (
        "`/lead` looks up a lead by its email or external id: that is a Slack channel, not a "
        "lead. For example, `/lead jane@acme.com`."
    )
    # Slack wraps an email (`<mailto:…|…>`) when the command escapes links: read as typed.
    assert "No lead you may see has the email or external id 'x@y.com'." in await answer(
        stack, REP1, "/lead", "<mailto:x@y.com|x@y.com>"
    )
    await unchanged(stack, clock, before)


async def test_sla_report_with_a_week_that_does_not_exist_or_an_unknown_segment(
    posted: LocalStack, clock: TravelClock
) -> None:
    stack = posted
    before = slack_state(stack)
    assert (await answer(stack, MANAGER, "/sla-report", "2026-W99")).startswith(
        "2026 has no week 99: use `this-week` (the default)"
    )
    assert (await answer(stack, MANAGER, "/sla-report", "2026-W00")).startswith(
        "2026 has no week 0: use `this-week` (the default)"
    )
    assert (await answer(stack, MANAGER, "/sla-report", "nonsense-segment")).startswith(
        "`nonsense-segment` is neither a period nor a segment of the SLA"
    )
    await unchanged(stack, clock, before)


async def test_sla_plan_with_a_negative_an_endless_or_a_shorthand_goal(
    posted: LocalStack, clock: TravelClock
) -> None:
    stack = posted
    before = slack_state(stack)
    assert (await answer(stack, MANAGER, "/sla-plan", "-5")).startswith(
        "A revenue goal is more than 0 and at most 1 trillion: write it like 2000000"
    )
    assert (await answer(stack, MANAGER, "/sla-plan", "1e400")).startswith(
        "I can't read '1e400' as a revenue goal: write it like 2000000"
    )
    assert (await answer(stack, MANAGER, "/sla-plan", "10k")).startswith(
        "Revenue plan for AUD 10,000 a month:"
    )
    assert (await answer(stack, MANAGER, "/sla-plan", "$1.5M")).startswith(
        "Revenue plan for AUD 1,500,000 a month:"
    )
    await unchanged(stack, clock, before)


async def test_handoff_away_for_no_time_too_long_or_nobody(
    posted: LocalStack, clock: TravelClock
) -> None:
    stack = posted
    before = slack_state(stack)
    for none in ("0d", "0h"):
        assert (await answer(stack, REP1, "/handoff", f"away {none}")).startswith(
            f"{none} is no time at all: away for how long? `/handoff away [until] [note]`"
        )
    assert (await answer(stack, REP1, "/handoff", "away -1d")).startswith(
        "-1d is in the past: away until when? `/handoff away [until] [note]`"
    )
    assert (await answer(stack, REP1, "/handoff", "away 10000d")).startswith(
        "10000d is more than a year ahead: away for at most a year."
    )
    assert await answer(stack, REP1, "/handoff", "away @nobody") == (
        "Sorry, only the sales managers can set someone else away. "
        "`/handoff away` on its own sets you away."
    )
    assert (await answer(stack, MANAGER, "/handoff", "away @nobody")).startswith(
        "I don't know who @nobody is: mention them so Slack links the name."
    )
    await unchanged(stack, clock, before)
