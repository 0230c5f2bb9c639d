"""Hostile leads through the real server and the Slack simulator: refused, or posted inert."""

from __future__ import annotations

from typing import Any

from bot.cli.stack import LocalStack
from bot.domain.policy import Policy
from bot.simulator.data import Message
from tests.conftest import lead_payload
from tests.unit.test_hostile_input import assert_inert

ENTERPRISE = "C0ENT"
SMB = "C0SMB"
FEEDBACK = "C0MKTFEED"
PINGS = ("<!channel>", "<!here>", "<!everyone>", "<@U0REP3>", "<#C0SMB", "<http", "<mailto")
NASTY = (
    "<!channel> <!here> <!everyone> <@U0REP3> <#C0SMB|sales> <http://evil.example|Your bank> "
    "<mailto:x@y|z> &lt;b&gt; Smith & Sons *bold* _it_ ~s~ `code` \u202eevil\u202c\x07 "
)


def filled(size: int, text: str = NASTY) -> str:
    return (text * (size // len(text) + 1))[:size]


def people(policy: Policy) -> set[str]:
    """Who Handoff itself mentions here: the enterprise and SMB reps (owners, suggested owners).

    The hostile text mentions others (U0REP3, U0MGR1), which must never come out live.
    """
    return {rep for segment in policy.segments[::2] for rep in segment.reps}


def check_posts(stack: LocalStack, policy: Policy, channel: str) -> list[Message]:
    messages = stack.sim.all_messages(channel)
    for message in messages:
        for version in (message, *message.versions):
            assert_inert(version.blocks, people(policy), channel)
            assert_inert(version.text, people(policy), channel)
        for ping in PINGS:
            assert ping not in message.all_text, (channel, ping)
    return messages


async def test_hostile_leads_are_refused_or_posted_inert(stack: LocalStack, policy: Policy) -> None:
    sim = stack.sim
    huge = lead_payload("huge-name", name=filled(10_000, "<!channel>"))
    status, answer = await stack.post_lead(huge)
    assert status == 400
    assert answer["errors"] == [{"field": "name", "message": "must be at most 500 characters"}]

    everywhere = lead_payload(
        "channel-everywhere",
        email="!here&!channel@evil.example",
        name=filled(500),
        title="VP " + filled(497),
        phone=filled(100),
        company={
            "name": filled(500),
            "domain": filled(255),
            "industry": filled(200),
            "country": filled(100),
            "employees": 5000,
        },
        source=filled(200),
        campaign=filled(500),
        engagement=[
            {
                "type": filled(100),
                "title": filled(2000),
                "url": filled(3000),
                "at": "2026-11-18T23:00:00Z",
            }
        ]
        * 5,
        score=95,
    )
    rtl = lead_payload(
        "rtl-emoji",
        name="\u202eأحمد 👩‍💼👨‍👩‍👧‍👦 שלום\u2066 1️⃣\x00\x1b[31m",
        title="مدير المبيعات 🇦🇺 <!here>",
        company={"name": "شركة الأمل 🧑🏿‍🚀 <!channel>", "employees": 12, "country": "\u202eUA"},
        source="webinar",
        campaign="حملة 🫠\u200b\u200f",
        engagement=[{"type": "webinar", "title": "ندوة <@U0REP5>", "at": "2026-11-19T09:30+11:00"}],
        score=70,
    )
    below = lead_payload("below-bar", name="<!channel>\n> *Qualified* by <@U0MGR1>", score=10)
    for payload, stage in ((everywhere, "mql"), (rtl, "mql"), (below, "nurture")):
        status, answer = await stack.post_lead(payload)
        assert (status, answer["status"]) == (201, stage), answer

    # Delivery is asynchronous (an outbox): poll the simulator rather than assume its internals.
    await sim.wait_for(lambda: sim.messages(ENTERPRISE), timeout=10, what="the enterprise post")
    await sim.wait_for(lambda: sim.messages(SMB), timeout=10, what="the SMB post")
    await sim.wait_for(lambda: sim.messages(FEEDBACK), timeout=10, what="the nurture notice")
    (posted,) = check_posts(stack, policy, ENTERPRISE)
    assert "&lt;!channel&gt;" in posted.all_text and "Smith &amp; Sons" in posted.all_text
    (smb,) = check_posts(stack, policy, SMB)
    assert "أحمد 👩‍💼👨‍👩‍👧‍👦 שלום" in smb.text and "\u202e" not in smb.all_text
    (notice,) = check_posts(stack, policy, FEEDBACK)
    assert "\n&gt; *Qualified*" not in notice.all_text  # the name cannot add a quoted line

    # Work the hostile lead to a rejection with a hostile note: the modal and the feedback too.
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE)
    await sim.wait_for(lambda: labels(sim, ENTERPRISE, posted.ts), timeout=10, what="claimed")
    await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    modal = await sim.wait_for(lambda: sim.latest_view("U0REP1"), timeout=10, what="the modal")
    assert_inert(modal.view, people(policy), "modal")
    note = "Budget frozen\n" + filled(2000 - 14)
    answer_ = await stack.driver.submit_view(
        "U0REP1", {"reason": "No budget", "note": note}, view_id=modal.id
    )
    assert answer_.status == 200
    await sim.wait_for(lambda: len(sim.messages(FEEDBACK)) == 2, timeout=10, what="feedback")
    feedback = check_posts(stack, policy, FEEDBACK)[-1]
    assert "Budget frozen\n&lt;!channel&gt;" in feedback.all_text  # the rep's lines survive
    check_posts(stack, policy, ENTERPRISE)

    card = await stack.driver.command("U0REP6", "/lead", "rtl-emoji")  # an SMB rep: theirs to see
    assert card.json is not None and "Timeline" in str(card.json)
    assert_inert(card.json, people(policy), "/lead")
    await stack.driver.press("U0REP5", "Claim", channel=SMB)
    await sim.wait_for(lambda: labels(sim, SMB, smb.ts), timeout=10, what="SMB claimed")
    check_posts(stack, policy, SMB)
    await stack.driver.app_home_opened("U0REP5")
    home = await sim.wait_for(lambda: sim.home("U0REP5"), timeout=10, what="App Home")
    assert "أحمد" in str(home)
    segment_channels = [segment.channel for segment in policy.segments]
    assert_inert(home, people(policy), "home", segment_channels)  # "in <#C0SMB>" is ours
    assert sim.invalid_payloads == []


def labels(sim: Any, channel: str, ts: str) -> bool:
    message = sim.message(channel, ts)
    return message is not None and any(
        b["text"]["text"] == "Log call" for _, b in message.buttons()
    )
