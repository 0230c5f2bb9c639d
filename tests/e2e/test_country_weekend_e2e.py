"""A team in Tel Aviv (`holidays: IL`, no `days:`) works Sunday to Thursday: a lead that arrives
on Thursday afternoon is due on Sunday morning, not on Friday, through the real server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.domain.policy import Policy, parse_policy, snapshot
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"
THURSDAY_4PM_TEL_AVIV = datetime(2026, 12, 10, 14, 0, tzinfo=UTC)  # IST is UTC+2
SUNDAY_10AM_TEL_AVIV = datetime(2026, 12, 13, 8, 0, tzinfo=UTC)


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url  # the same test on SQLite and on PostgreSQL


@pytest.fixture
def clock() -> TravelClock:
    return TravelClock(THURSDAY_4PM_TEL_AVIV)


@pytest.fixture
def policy(policy: Policy) -> Policy:
    """The example SLA in Tel Aviv with Israel's holidays, and no `days:`."""
    data = snapshot(policy)
    data["timezone"] = "Asia/Jerusalem"
    data["business_hours"] = {"start": "09:00", "end": "17:00", "holidays": "IL"}
    return parse_policy(data)


async def test_a_thursday_lead_is_due_on_sunday_in_israel(
    stack: LocalStack, clock: TravelClock
) -> None:
    status, body = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    lead = await stack.services.lead(body["id"])
    # Hot: 2 business hours. One on Thursday (16:00–17:00), none on Friday or Saturday, the
    # second on Sunday 09:00–10:00 (before, Friday 10:00, and Sunday did not count).
    assert lead.first_touch_due_at == SUNDAY_10AM_TEL_AVIV
    (post,) = stack.sim.messages(ENTERPRISE)
    assert f"First touch due by <!date^{int(SUNDAY_10AM_TEL_AVIV.timestamp())}^" in post.all_text

    clock.now = datetime(2026, 12, 11, 10, 0, tzinfo=UTC)  # Friday noon: the clock is paused
    card = await stack.driver.command("U0MGR1", "/lead", "hs-1")
    assert card.json is not None and "(1h of business time left)" in str(card.json["blocks"])

    sla = await stack.driver.command("U0MGR1", "/sla", "")
    assert sla.json is not None
    assert "*Business time*: Sun, Mon, Tue, Wed, Thu 09:00–17:00 Asia/Jerusalem" in str(
        sla.json["blocks"]
    )
