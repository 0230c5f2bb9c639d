"""`/sla` through the real server and the Slack simulator: a sales team larger than one Block
Kit section, every segment and every rep of a pool of 400 named within Slack's limits; and an
SLA whose `timezone` keeps no daylight saving, warned of as `handoff check` warns of it."""

from __future__ import annotations

from bot.cli.stack import TravelClock, start_stack
from bot.domain.policy import Policy, parse_policy, snapshot, zone_warning
from bot.simulator import validate_blocks
from bot.simulator.text import render_blocks_text
from bot.slack.text import escape
from tests.unit.test_render import crowded_sla

MANAGER = "U0MGR1"


async def test_sla_names_every_segment_and_rep_of_a_pool_of_400(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    reps = [f"U0R{number:04d}" for number in range(400)]
    content = snapshot(policy)
    content["segments"][0]["reps"] = reps
    stack = await start_stack(sqlite_url, parse_policy(content), clock=clock)
    try:
        answer = await stack.driver.command(MANAGER, "/sla")
        assert answer.json is not None
        blocks = answer.json["blocks"]
        assert validate_blocks(blocks) == []
        sections = [block["text"]["text"] for block in blocks if block["type"] == "section"]
        shown = "\n".join(sections)
        for rep in reps:  # each once, never cut inside its mention
            assert shown.count(f"<@{rep}>") == 1, rep
        for channel in ("C0ENT", "C0MID", "C0SMB"):  # the segments after the large one too
            assert f"<#{channel}>" in shown
        assert not any(text.endswith("…") for text in sections)
    finally:
        await stack.close()


async def test_sla_names_every_disposition_reason_and_every_manager(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    """20 dispositions with 40 long reasons each, and 200 managers: the Dispositions section
    was clipped at 3,000 characters and the Managers line at 2,000 (Block Kit's section and
    context limits), the dispositions and managers past the cut gone."""
    crowded = crowded_sla(policy, reasons=40, width=45, managers=200)
    stack = await start_stack(sqlite_url, crowded, clock=clock)
    try:
        answer = await stack.driver.command(crowded.managers[0], "/sla")
        assert answer.json is not None
        blocks = answer.json["blocks"]
        assert validate_blocks(blocks) == []
    finally:
        await stack.close()
    sections = [block["text"]["text"] for block in blocks if block["type"] == "section"]
    shown = "\n".join(sections)
    for item in crowded.dispositions:
        assert f"• *{escape(item.label)}* → " in shown, item.label
        for reason in item.reasons:  # each once, whole
            assert shown.count(escape(reason)) == 1, reason
    contexts = [
        e["text"] for block in blocks if block["type"] == "context" for e in block["elements"]
    ]
    for manager in crowded.managers:
        assert sum(text.count(f"<@{manager}>") for text in contexts) == 1, manager
    assert not any(text.endswith("…") for text in [*sections, *contexts])


async def test_sla_warns_of_a_timezone_without_daylight_saving(
    database_url: str, policy: Policy, clock: TravelClock
) -> None:
    """`timezone: EST` is valid, and `handoff check` and `serve` warn that it keeps UTC-05:00
    all year: the manager who asks `/sla` reads the same warning, in the same words, beside the
    business hours it shifts; the crowded page stays within 50 blocks."""
    crowded = crowded_sla(policy, reasons=40, width=45, managers=200)
    eastern = parse_policy(snapshot(crowded) | {"timezone": "EST"})
    warning = zone_warning("timezone", "EST")
    assert warning is not None
    stack = await start_stack(database_url, eastern, clock=clock)
    try:
        answer = await stack.driver.command(crowded.managers[0], "/sla")
    finally:
        await stack.close()
    assert answer.json is not None and answer.json["response_type"] == "ephemeral"
    blocks = answer.json["blocks"]
    assert validate_blocks(blocks) == []
    shown = render_blocks_text(blocks).splitlines()
    business = shown.index(next(line for line in shown if line.startswith("Business time: ")))
    assert shown[business + 1] == f"⚠️ {warning}"
