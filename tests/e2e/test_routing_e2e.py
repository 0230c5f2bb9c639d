"""Routing through the real server and the Slack simulator: a named account and a lead of an
owned account beat the round robin, weights and a cap show in who is suggested, every post says
why, `/handoff routing` answers a manager and refuses a rep, and a rep sees their share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy, parse_policy, snapshot
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"
MANAGER, REP1, REP2, REP3 = "U0MGR1", "U0REP1", "U0REP2", "U0REP3"


@pytest.fixture
def policy(policy: Policy) -> Policy:
    content = snapshot(policy)
    content["segments"][0] |= {"weights": {REP1: 2}, "cap": {"per_day": 2}}
    content |= {"named_accounts": {"contoso.example": REP3}, "account_matching": True}
    return parse_policy(content)


def account(number: int, domain: str | None = None) -> dict[str, Any]:
    domain = domain or f"acme{number}.example"
    company = lead_payload()["company"] | {"domain": domain, "name": f"Acme {number}"}
    return lead_payload(f"e-{number}", email=f"p{number}@{domain}", company=company)


async def post(stack: LocalStack, payload: dict[str, Any]) -> Any:
    status, body = await stack.post_lead(payload)
    assert status == 201, body
    await stack.settle()
    return await stack.services.lead(int(body["id"]))


def why(stack: LocalStack, channel: str, index: int) -> str:
    """The context line of the post that says why its rep was chosen."""
    message = stack.sim.messages(channel)[index]
    lines = [
        element.get("text", "")
        for block in message.blocks
        if block.get("type") == "context"
        for element in block.get("elements", [])
    ]
    (line,) = [text for text in lines if text.startswith(("Round robin", "Named", "Same", "Fall"))]
    return line


async def test_routing_rules_and_their_reasons_on_every_post(stack: LocalStack) -> None:
    # Weights 2:1 and a daily cap of 2: REP1, REP2, REP1 (at cap), REP2 (at cap), then nobody
    # is available and the fallback owner (the first manager) has it.
    leads = [await post(stack, account(number)) for number in range(5)]
    assert [lead.suggested_owner for lead in leads] == [REP1, REP2, REP1, REP2, MANAGER]
    assert why(stack, ENTERPRISE, 0) == (
        f"Round robin: <@{REP1}>, 1 of 1 this week, weight 2, cap 2"
    )
    assert why(stack, ENTERPRISE, 1) == f"Round robin: <@{REP2}>, 1 of 2 this week, cap 2"
    assert why(stack, ENTERPRISE, 4) == (f"Fallback: nobody available (all at cap) → <@{MANAGER}>")

    # A named account beats the round robin, and goes where its owner can claim it.
    named = await post(stack, account(10, "www.Contoso.example"))
    assert (named.suggested_owner, named.segment) == (REP3, "mid_market")
    assert why(stack, "C0MID", 0) == f"Named account (contoso.example) of <@{REP3}>"

    # A lead of an account someone owns goes to them (REP2 claims lead 1's account).
    first = stack.sim.messages(ENTERPRISE)[0]
    answer = await stack.driver.press(REP2, "Claim", channel=ENTERPRISE, message_ts=first.ts)
    assert answer.status == 200
    await stack.settle()
    same = await post(stack, account(20, "acme0.example"))
    assert same.suggested_owner == REP2
    assert (
        why(stack, ENTERPRISE, -1)
        == f"Same account (acme0.example) as an earlier lead of <@{REP2}>"
    )


async def test_handoff_routing_is_for_managers(stack: LocalStack) -> None:
    for number in range(3):
        await post(stack, account(number))
    answer = await stack.driver.command(MANAGER, "/handoff", "routing")
    assert answer.status == 200 and answer.json is not None
    shown = str(answer.json["blocks"])
    assert f"<@{REP1}>: 2 this week (share 2.0, weight 2), 2 today of 2" in shown
    assert "skipped now: at the daily cap" in shown
    assert f"Next picks: <@{REP2}>" in shown
    assert answer.json["response_type"] == "ephemeral"

    refused = await stack.driver.command(REP1, "/handoff", "routing")
    assert refused.json is not None
    assert refused.json["text"].startswith("Sorry, only the sales managers can see the team's")
    assert refused.json["response_type"] == "ephemeral"


async def test_a_rep_sees_their_share_in_app_home(stack: LocalStack) -> None:
    for number in range(3):
        await post(stack, account(number))
    response = await stack.driver.app_home_opened(REP2)
    assert response.status == 200
    await stack.settle()
    view = stack.sim.home(REP2)
    assert view is not None
    assert "Your round-robin share: enterprise: 1 of 3 this week, weight 1" in str(view)


def personal(number: int, address: str) -> dict[str, Any]:
    """A lead from a personal mailbox: no company domain, so the email's domain is its account."""
    company = lead_payload()["company"] | {"name": f"Household {number}"}
    del company["domain"]
    return lead_payload(f"e-{number}", email=address, company=company)


async def test_a_regional_free_mail_domain_never_matches_an_account(stack: LocalStack) -> None:
    first = await post(stack, personal(1, "alice@hotmail.com.au"))
    posted = stack.sim.messages(ENTERPRISE)[0]
    await stack.driver.press(
        first.suggested_owner, "Claim", channel=ENTERPRISE, message_ts=posted.ts
    )
    await stack.settle()
    for number, address in enumerate(["bob@hotmail.com.au", "carol@bigpond.net.au"], start=2):
        lead = await post(stack, personal(number, address))
        assert lead.account_domain is None, address
        assert why(stack, ENTERPRISE, -1).startswith("Round robin: "), address

    # A company's domain still matches its owned lead.
    await post(stack, account(10, "acme.com.au"))
    posted = stack.sim.messages(ENTERPRISE)[-1]
    await stack.driver.press(REP2, "Claim", channel=ENTERPRISE, message_ts=posted.ts)
    await stack.settle()
    same = await post(stack, account(11, "acme.com.au"))
    assert same.suggested_owner == REP2
    assert (
        why(stack, ENTERPRISE, -1) == f"Same account (acme.com.au) as an earlier lead of <@{REP2}>"
    )


async def test_a_postcode_sent_as_a_number_routes_by_its_territory(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    content = snapshot(policy)
    sydney = {"country": "AU", "postcode_prefix": "20"}
    content["territories"] = [{"name": "Sydney", "when": sydney, "segment": "smb"}]
    stack = await start_stack(sqlite_url, parse_policy(content), clock=clock)
    try:
        number = lead_payload("pc-1", company=lead_payload()["company"] | {"postcode": 2000})
        lead = await post(stack, number)
        assert (lead.segment, lead.company["postcode"]) == ("smb", "2000")
        assert why(stack, "C0SMB", 0).startswith("Round robin in territory Sydney: ")

        # Not a whole number: refused by name, nothing stored.
        for external_id, postcode in (("pc-2", True), ("pc-3", 2000.0), ("pc-4", -2000)):
            company = lead_payload()["company"] | {"postcode": postcode}
            status, body = await stack.post_lead(lead_payload(external_id, company=company))
            assert status == 400, postcode
            (error,) = body["errors"]
            assert error["field"] == "company.postcode", body
            assert await stack.services.store.by_external_id(external_id) is None
    finally:
        await stack.close()


async def test_a_lead_out_of_hours_counts_to_the_business_day_its_clock_starts(
    sqlite_url: str, policy: Policy
) -> None:
    """`cap.per_day` counts the leads suggested that business day: Sunday evening's leads count
    to Monday (their clocks start then), so on Monday the reps are at their cap already."""
    content = snapshot(policy)
    content["segments"][0] |= {"cap": {"per_day": 1}}
    sunday_8pm_sydney = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    clock = TravelClock(sunday_8pm_sydney)
    stack = await start_stack(sqlite_url, parse_policy(content), clock=clock)
    try:
        sunday = [await post(stack, account(number)) for number in range(2)]
        assert [lead.suggested_owner for lead in sunday] == [REP1, REP2]
        assert why(stack, ENTERPRISE, 1) == f"Round robin: <@{REP2}>, 1 of 2 this week, cap 1"

        clock.advance(hours=14)  # Monday 10:00: both reps had their one lead of the day
        monday = await post(stack, account(2))
        assert monday.suggested_owner == MANAGER
        assert why(stack, ENTERPRISE, 2) == (
            f"Fallback: nobody available (all at cap) → <@{MANAGER}>"
        )

        clock.advance(days=1)  # Tuesday 10:00, in working hours: its own day, the same week
        tuesday = await post(stack, account(3))
        rep = tuesday.suggested_owner
        assert rep in (REP1, REP2)
        assert why(stack, ENTERPRISE, 3) == f"Round robin: <@{rep}>, 2 of 3 this week, cap 1"
    finally:
        await stack.close()
