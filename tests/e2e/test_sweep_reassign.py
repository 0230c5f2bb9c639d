"""The sweep's `reassign` step through the real server and the Slack simulator, as the reps and
the managers see it: the new rep is told the lead is theirs (not reminded of a deadline they
never had), the rep it was taken from is told privately it is off their list, and the post
says the SLA moved it, and from whom."""

from __future__ import annotations

from bot.cli.stack import LocalStack, TravelClock
from bot.simulator.data import Message
from tests.e2e.test_escalation import new_lead, sweep

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
MAYA, TOM = "U0REP1", "U0REP2"  # the example pool, in its order
# The example SLA's hot lead arrives at 11:00: claim due 12:00 (reassigned at 150%: 12:30),
# first touch due 13:00 (reassigned at 200%: 15:00).


def dms(stack: LocalStack, user: str) -> list[str]:
    return [message.all_text for message in stack.sim.messages(stack.sim.dm_channel(user))]


def has_controls(message: Message) -> bool:
    return any(block.get("type") == "actions" for block in message.blocks)


def why(stack: LocalStack) -> str:
    """The post's context line that says why its rep has it."""
    (post,) = stack.sim.messages(ENTERPRISE)
    lines = [
        element.get("text", "")
        for block in post.blocks
        if block.get("type") == "context"
        for element in block.get("elements", [])
    ]
    (line,) = [text for text in lines if text.startswith(("Round robin", "Reassigned"))]
    return line


async def test_an_unclaimed_lead_the_sla_moves_is_handed_over_not_reminded(
    stack: LocalStack, clock: TravelClock
) -> None:
    await new_lead(stack)
    assert why(stack) == f"Round robin: <@{MAYA}>, 1 of 1 this week"  # every weight is 1
    clock.advance(minutes=91)  # 12:31: nobody claimed it; 150% of the claim window
    assert await sweep(stack, clock) == 1
    assert (await stack.services.lead(1)).suggested_owner == TOM

    (handed,) = dms(stack, TOM)
    assert handed.startswith(
        "🔁 The SLA (claim overdue) handed you *Priya Raman* (Northwind Logistics) in "
        f"<#{ENTERPRISE}>: claim it there. Its claim is overdue by 31m of business time"
    )
    assert handed.endswith("`/lead hs-1` shows its timeline.")
    assert "Reminder" not in handed
    (taken,) = dms(stack, MAYA)  # the suggested rep who never claimed it
    assert taken == (
        "🔁 The SLA (claim overdue) reassigned the lead suggested to you *Priya Raman* "
        f"(Northwind Logistics) in <#{ENTERPRISE}> to <@{TOM}>: it is off your list, nothing "
        "more to do on it. `/lead hs-1` shows its timeline."
    )
    assert why(stack) == (
        f"Reassigned by the SLA from <@{MAYA}> (claim overdue) · Round robin: <@{TOM}>, "
        "1 of 1 this week"
    )


async def test_a_claimed_lead_the_sla_moves_tells_its_old_and_new_owner(
    stack: LocalStack, clock: TravelClock
) -> None:
    await new_lead(stack)
    await stack.driver.press(MAYA, "Claim", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(hours=4, minutes=1)  # 15:01: no first touch; 200% of its window
    assert await sweep(stack, clock) == 1
    assert (await stack.services.lead(1)).owner == TOM

    handed = dms(stack, TOM)[-1]
    assert handed.startswith(
        "🔁 The SLA (first touch overdue) handed you *Priya Raman* (Northwind Logistics) in "
        f"<#{ENTERPRISE}>: it is yours now."
    )
    taken = dms(stack, MAYA)[-1]
    assert taken.startswith(
        "🔁 The SLA (first touch overdue) reassigned your lead *Priya Raman* (Northwind "
        f"Logistics) in <#{ENTERPRISE}> to <@{TOM}>: it is off your list"
    )
    assert why(stack).startswith(
        f"Reassigned by the SLA from <@{MAYA}> (first touch overdue) · Round robin: <@{TOM}>"
    )
    # The claim was @maya's: the post does not credit @tom with it.
    (post,) = stack.sim.messages(ENTERPRISE)
    assert f"Claimed by <@{TOM}>" not in post.all_text
    assert (
        f"Owner <@{TOM}> · claimed after 0m of business time; reassigned from <@{MAYA}>"
        in post.all_text
    )


async def test_the_managers_alert_says_what_the_sla_did_once_it_reassigns(
    stack: LocalStack, clock: TravelClock
) -> None:
    await new_lead(stack)
    clock.advance(minutes=61)  # 12:01: the claim deadline passed: the managers hear
    assert await sweep(stack, clock) == 1
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "nobody has claimed it" in alert.all_text and has_controls(alert)

    clock.advance(minutes=30)  # 12:31: the SLA reassigns it itself
    assert await sweep(stack, clock) == 1

    (settled,) = stack.sim.messages(ESCALATIONS)  # replaced in place, not a second message
    assert settled.ts == alert.ts and not has_controls(settled)
    assert settled.text == (
        f"🔁 Reassigned to <@{TOM}> from <@{MAYA}> by the SLA at Mon 12:31 AEDT: *Priya Raman* "
        f"(Northwind Logistics) in <#{ENTERPRISE}>, claim overdue (nobody claimed it in time)."
    )


async def test_a_lead_never_goes_back_to_a_rep_the_sla_took_it_from(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Suggested to @maya, unclaimed: the SLA hands it to @tom at 12:31; still untouched at
    15:01, it does not bounce back to @maya (who let it lapse): with nobody else in the pool,
    it goes to the fallback owner, the first manager."""
    await new_lead(stack)
    clock.advance(minutes=91)  # 12:31: 150% of the claim window
    assert await sweep(stack, clock) == 1
    assert (await stack.services.lead(1)).suggested_owner == TOM
    clock.advance(hours=2, minutes=30)  # 15:01: 200% of the first-touch window
    assert await sweep(stack, clock) == 1

    lead = await stack.services.lead(1)
    assert lead.suggested_owner == "U0MGR1"  # not @maya again
    assert why(stack).startswith(f"Reassigned by the SLA from <@{TOM}> (first touch overdue)")
    # @maya is in the pool: she was passed over because she had it, and the line says so.
    fallback = "Fallback: nobody available (everyone else in the pool already had it) → <@U0MGR1>"
    assert why(stack).endswith(fallback)
    (post,) = stack.sim.messages(ENTERPRISE)
    note = stack.sim.thread(ENTERPRISE, post.ts)[-1].all_text
    assert "nobody available (everyone else in the pool already had it), so to the fallback" in note
