"""`/handoff routing` through the real server and the Slack simulator: a pool of 50 reps shown
whole within Block Kit's limits, each rep's share counting only the leads they could take (time
away with its end date), and one segment asked for by name."""

from __future__ import annotations

import re
from typing import Any

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.simulator import validate_blocks
from tests.e2e.test_routing_e2e import account

MANAGER, REP1, REP2 = "U0MGR1", "U0REP1", "U0REP2"


async def post(stack: LocalStack, payload: dict[str, Any]) -> None:
    status, body = await stack.post_lead(payload)
    assert status == 201, body
    await stack.settle()


async def routing(stack: LocalStack, text: str = "routing") -> list[dict[str, Any]]:
    """A manager's `/handoff routing`: its blocks, checked as Slack checks a message's."""
    answer = await stack.driver.command(MANAGER, "/handoff", text)
    assert answer.json is not None and answer.json["response_type"] == "ephemeral"
    blocks: list[dict[str, Any]] = answer.json["blocks"]
    assert validate_blocks(blocks) == []
    return blocks


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    shown = [block["text"]["text"] for block in blocks if block["type"] == "section"]
    for block in blocks:
        if block["type"] == "context":
            shown += [element["text"] for element in block["elements"]]
    return shown


def rep_line(blocks: list[dict[str, Any]], rep: str) -> str:
    (line,) = [
        line
        for text in texts(blocks)
        for line in text.split("\n")
        if line.startswith(f"• <@{rep}>:")
    ]
    return line


async def test_a_pool_of_fifty_shows_every_rep_whole(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    reps = [f"U0R{number:03d}" for number in range(50)]
    content = snapshot(policy)
    content["segments"][0] |= {
        "reps": reps,
        "weights": {reps[0]: 2},
        "cap": {"open": 20, "per_day": 8},
    }
    stack = await start_stack(sqlite_url, parse_policy(content), clock=clock)
    try:
        for number in range(3):
            await post(stack, account(number))
        blocks = await routing(stack)
        sections = [block["text"]["text"] for block in blocks if block["type"] == "section"]
        assert len(sections) > 1 and all(len(text) <= 3000 for text in sections)
        assert sections[0].startswith("*enterprise*: 3 leads by round robin this week\n")
        for rep in reps:  # each once, never cut inside its line
            assert sum(text.count(f"<@{rep}>:") for text in sections) == 1, rep
            assert re.search(r", \d+ open of 20", rep_line(blocks, rep)), rep
        assert not any(text.endswith(("<", "…")) for text in sections)
        assert "reps of" not in str(blocks)  # nobody left out
    finally:
        await stack.close()


async def test_a_share_counts_only_the_leads_a_rep_could_take(
    stack: LocalStack, clock: TravelClock
) -> None:
    await stack.driver.command(REP2, "/handoff", "away 3d")  # back Thu 26 Nov, 11:00 AEDT
    for number in range(6):
        await post(stack, account(number))
    blocks = await routing(stack)
    assert rep_line(blocks, REP1) == (
        f"• <@{REP1}>: 6 this week (share 6.0, weight 1), 6 today, 0 open"
    )
    assert rep_line(blocks, REP2) == (
        f"• <@{REP2}>: 0 this week (share 0.0, weight 1), 0 today, 0 open"
        " · skipped now: away until Thu 26 Nov, 11:00 AEDT"
    )
    assert any(
        text.startswith("Share: each rep's part of this week's leads") for text in texts(blocks)
    )

    # Back: from now on each is owed half of every lead.
    await stack.driver.command(REP2, "/handoff", "back")
    for number in range(6, 8):
        await post(stack, account(number))
    blocks = await routing(stack)
    assert "(share 7.0, weight 1)" in rep_line(blocks, REP1)
    assert "(share 1.0, weight 1)" in rep_line(blocks, REP2)
    assert "skipped now" not in rep_line(blocks, REP2)


async def test_one_segment_is_asked_for_by_name(stack: LocalStack) -> None:
    await post(stack, account(1))
    blocks = await routing(stack, "routing Mid market")
    sections = [block["text"]["text"] for block in blocks if block["type"] == "section"]
    assert [text.split(":")[0] for text in sections] == ["*mid_market*"]
    answer = await stack.driver.command(MANAGER, "/handoff", "routing nowhere")
    assert answer.json is not None
    assert answer.json["text"] == (
        "No segment is called nowhere. The segments: enterprise, mid_market, smb."
    )


async def test_the_notification_text_keeps_each_segment_whole_and_escaped_once(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    """40 segments named `R&D <…>`: the answer's `text` (the notification) cut at 2,000
    characters split a mention or `&amp;` in half, and showed the names unescaped (Slack's
    formatting reference: escape `&`, `<`, `>`, once)."""
    content = snapshot(policy)
    content["segments"] = [
        {
            "name": f"R&D <{number:02d}>",
            "when": {"employees_min": 1000 - number},
            "channel": f"C0S{number:02d}",
            "reps": [f"U{number:02d}R{rep}" for rep in range(5)],
        }
        for number in range(40)
    ]
    content["targets"]["mql_per_week"] = {}
    content["plan"] = None
    stack = await start_stack(sqlite_url, parse_policy(content), clock=clock)
    try:
        answer = await stack.driver.command(MANAGER, "/handoff", "routing")
        assert answer.json is not None
        assert validate_blocks(answer.json["blocks"]) == []
        text = answer.json["text"]
    finally:
        await stack.close()
    assert text.startswith("Routing: R&amp;D &lt;00&gt;: 0 this week; next <@U00R")
    assert len(text) <= 2000 and text.endswith("; …")
    assert "R&D" not in text and "&amp;amp;" not in text
    assert re.fullmatch(r"([^<&]|<@U\d\dR\d>|&(amp|lt|gt);)*", text), text[-80:]
    shown = re.findall(
        r"R&amp;D &lt;(\d\d)&gt;: 0 this week; next (?:<@U\d\dR\d>(?:, |; |$))+", text
    )
    assert shown == [f"{number:02d}" for number in range(len(shown))] and 5 < len(shown) < 40
