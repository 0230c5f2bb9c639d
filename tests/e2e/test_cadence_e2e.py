"""The follow-up cadence through the real server and the Slack simulator: a claimed lead shows
its next touch, and the sweep reminds its owner in the thread, once, when a touch is overdue.

The standard is 6 attempts within `10 business days` (explicit business time): a touch every
800 working minutes, Mon–Fri 09:00–17:00 Sydney. The clock starts Monday 23 November 2026,
11:00 in Sydney.
"""

from __future__ import annotations

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.domain.policy import Policy, parse_policy, snapshot
from tests.conftest import lead_payload
from tests.e2e.test_crm_activity import activity, claimed
from tests.e2e.test_escalation import post_text, sweep, thread

ENTERPRISE, REP = "C0ENT", "U0REP1"  # post_text and thread read the enterprise channel


@pytest.fixture
def policy(policy: Policy) -> Policy:
    data = snapshot(policy)
    data["follow_up"] = {"min_attempts": 6, "within": "10 business days"}
    return parse_policy(data)


async def press(stack: LocalStack, label: str) -> None:
    response = await stack.driver.press(REP, label, channel=ENTERPRISE)
    assert response.status == 200
    await stack.settle()


async def test_an_overdue_touch_is_reminded_once_in_the_thread(
    stack: LocalStack, clock: TravelClock
) -> None:
    status, _ = await stack.post_lead(lead_payload("hs-1"))
    assert status == 201
    await stack.settle()
    await press(stack, "Claim")
    assert "Next touch due" in post_text(stack) and "attempt 1 of 6" in post_text(stack)

    clock.advance(minutes=15)  # 11:15: the first call
    await press(stack, "Log call")
    text = post_text(stack)
    # 11:15 + 800 working minutes: 345 on Monday, 455 from Tuesday 09:00 → Tue 16:35 AEDT.
    assert "Next touch due <!date^" in text and "|Tue 24 Nov 16:35 AEDT>" in text
    assert "attempt 2 of 6" in text and "Attempts 1/6" in text

    clock.advance(minutes=5)  # 11:20: a second call straight after counts too (seed 002)
    await press(stack, "Log call")
    text = post_text(stack)
    # 11:20 + 800 working minutes: 340 on Monday, 460 from Tuesday 09:00 → Tue 16:40 AEDT.
    assert "Attempts 2/6" in text and "counted" not in text and "too soon" not in text
    assert "|Tue 24 Nov 16:40 AEDT>" in text and "attempt 3 of 6" in text

    assert await sweep(stack, clock) == 0
    clock.advance(hours=29, minutes=25)  # Tue 16:45: touch 3 is 5 minutes overdue
    assert await sweep(stack, clock) == 1
    (reminder,) = thread(stack)
    assert f"<@{REP}>, touch 3 of 6 was due" in reminder and "Tue 24 Nov 16:40 AEDT" in reminder
    assert "<!here>" not in reminder and "<!channel>" not in reminder
    assert "🔴 Next touch was due" in post_text(stack)
    assert stack.sim.messages(stack.sim.dm_channel(REP)) == []  # in the thread, not a DM

    assert await sweep(stack, clock) == 0  # the same overdue touch: nothing new
    clock.advance(hours=1)
    assert await sweep(stack, clock) == 0
    assert len(thread(stack)) == 1

    clock.advance(hours=15, minutes=15)  # Wed 09:00: the late touch is made
    await press(stack, "Log email")
    text = post_text(stack)
    # Wed 09:00 + 800: 480 on Wednesday, 320 from Thursday 09:00 → Thu 14:20; on time again.
    assert "|Thu 26 Nov 14:20 AEDT>" in text and "attempt 4 of 6" in text
    assert "🔴 Next touch was due" not in text


async def test_attempts_from_the_crm_move_the_next_touch(
    stack: LocalStack, clock: TravelClock
) -> None:
    ts = await claimed(stack, clock)  # claimed at 11:10
    clock.advance(hours=2)  # 13:10: the CRM reports a call made at 11:15, and one at 13:00
    for activity_id, made in (("c-1", "00:15"), ("c-2", "02:00")):
        call = {
            "type": "attempt",
            "kind": "call",
            "actor": REP,
            "id": activity_id,
            "at": f"2026-11-23T{made}:00+00:00",
        }
        status, answer = await activity(stack, "hs-1", call)
        assert status == 201, answer
    await stack.settle()
    message = stack.sim.message(ENTERPRISE, ts)
    assert message is not None
    text = message.all_text
    # Both count; the next touch is 800 working minutes after the latest, 13:00: 240 on
    # Monday, 480 on Tuesday, 80 from Wednesday 09:00 → Wed 10:20.
    assert "Attempts 2/6" in text and "|Wed 25 Nov 10:20 AEDT>" in text
    assert "attempt 3 of 6" in text and "counted" not in text
