"""Salesforce learns what happens in Slack (issue 14), through the real server, the Slack
simulator and the local Salesforce REST fake (on a real TLS port, spoken to by
`simple-salesforce`): the claim sets the Lead's OwnerId and Status, the disposition its Status
and one completed Task; an hour's outage loses nothing, doubles nothing and keeps the order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.crmfake.salesforce import SalesforceFake
from bot.domain.policy import parse_policy

ROOT = Path(__file__).resolve().parents[2]
ENTERPRISE, MAYA = "C0ENT", "U0REP1"
EMAIL = "jane.doe@globex.example"


@pytest.fixture
async def org(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SalesforceFake]:
    fake = await SalesforceFake().start()
    # The fake's throwaway certificate authority, as a company proxy's would be installed.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_file)
    yield fake
    await fake.stop()


@asynccontextmanager
async def stack_for(
    url: str, clock: TravelClock, org: SalesforceFake, sla: dict[str, Any] | None = None
) -> AsyncIterator[LocalStack]:
    """The stack with the org's instance URL and token (and the example SLA with the keys in
    `sla`), closed on the way out."""
    data = yaml.safe_load((ROOT / "sla.yaml").read_text())
    data["crm"] = {"kind": "salesforce"}
    data.update(sla or {})
    stack = await start_stack(
        url,
        parse_policy(data),
        clock=clock,
        SALESFORCE_INSTANCE_URL=org.instance_url,
        SALESFORCE_ACCESS_TOKEN=org.token,
    )
    try:
        yield stack
    finally:
        await stack.close()


async def worked(stack: LocalStack, clock: TravelClock, lead_id: str) -> None:
    lead: dict[str, Any] = {
        "external_id": "sf-1",
        "email": EMAIL,
        "name": "Jane Doe",
        "title": "VP Operations",
        "company": {"name": "Globex", "employees": 4000, "industry": "Logistics", "country": "AU"},
        "source": "demo_request",
        "score": 90,
        "crm_id": lead_id,
    }
    assert (await stack.post_lead(lead))[0] == 201
    await stack.settle()
    clock.advance(minutes=4)
    await stack.driver.press(MAYA, "Claim", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(minutes=10)
    await stack.driver.press(MAYA, "Not a fit", channel=ENTERPRISE)
    await stack.settle()
    await stack.driver.submit_view(MAYA, {"reason": "No budget", "note": "Frozen until Q3."})
    await stack.settle()


async def test_the_claim_and_the_disposition_reach_the_salesforce_lead(
    sqlite_url: str, clock: TravelClock, org: SalesforceFake
) -> None:
    maya = org.add_user("maya@example.com", "Maya Chen")
    lead_id = org.add_lead(EMAIL, LastName="Doe", Company="Globex")
    async with stack_for(sqlite_url, clock, org) as stack:
        await worked(stack, clock, lead_id)
    lead = org.lead(lead_id)
    assert (lead["OwnerId"], lead["Status"]) == (maya, "Closed - Not Converted")
    (task,) = org.tasks(lead_id)
    assert "Not a fit" in task["Subject"] and "No budget" in task["Description"]
    assert task["Status"] == "Completed"


async def test_an_hours_outage_delivers_everything_once_in_order(
    sqlite_url: str, clock: TravelClock, org: SalesforceFake
) -> None:
    maya = org.add_user("maya@example.com", "Maya Chen")
    lead_id = org.add_lead(EMAIL, LastName="Doe", Company="Globex")
    async with stack_for(sqlite_url, clock, org) as stack:
        outage = org.fail(503, times=10_000)  # Salesforce is down
        await worked(stack, clock, lead_id)
        for _ in range(6):  # an hour passes, the worker probing now and then
            clock.advance(minutes=10)
            stack.handoff.crm.deliver_soon()
            await stack.settle()
        assert org.tasks(lead_id) == [] and org.lead(lead_id)["Status"] == "Open - Not Contacted"
        outage.times = 0  # Salesforce is back
        for _ in range(4):
            clock.advance(minutes=11)
            stack.handoff.crm.deliver_soon()
            await stack.settle()
    lead = org.lead(lead_id)
    assert (lead["OwnerId"], lead["Status"]) == (maya, "Closed - Not Converted")
    assert len(org.tasks(lead_id)) == 1
    # In order per lead: the Lead's last write before the Task is the rejection's state.
    kinds = [(w.sobject, w.body.get("Status")) for w in org.writes if w.method != "GET"]
    assert kinds[-1][0] == "Task"


async def test_a_lead_converted_in_salesforce_gets_its_task_on_the_contact_and_holds_up_nothing(
    sqlite_url: str, clock: TravelClock, org: SalesforceFake
) -> None:
    maya = org.add_user("maya@example.com", "Maya Chen")
    converted = org.add_lead(EMAIL, LastName="Doe", Company="Globex")
    other = org.add_lead("sam@initech.example", LastName="Lee", Company="Initech")
    contact = org.convert(converted)  # a rep converted it to a Contact before Handoff wrote
    async with stack_for(sqlite_url, clock, org) as stack:
        await worked(stack, clock, converted)
        lead = {
            "external_id": "sf-2",
            "email": "sam@initech.example",
            "name": "Sam Lee",
            "title": "COO",
            "company": {"name": "Initech", "employees": 3000, "country": "AU"},
            "source": "demo_request",
            "score": 90,
            "crm_id": other,
        }
        assert (await stack.post_lead(lead))[0] == 201
        await stack.settle()
        await stack.driver.press(MAYA, "Claim", channel=ENTERPRISE)
        await stack.settle()
        for _ in range(3):
            clock.advance(minutes=6)
            stack.handoff.crm.deliver_soon()
            await stack.settle()
        alerts = [m.text for m in stack.sim.messages("C0ESCALATE") if "refuses" in m.text]
        degraded = stack.handoff.crm.refusing
    assert org.lead(other)["OwnerId"] == maya
    assert org.lead(other)["Status"] == "Working - Contacted"
    assert alerts == [] and degraded is None
    # The rep's disposition lands where the person now lives: a Task on the Contact. Its
    # Lead Status is left as the conversion set it (a Contact has none).
    (task,) = org.tasks(contact)
    assert "Not a fit" in task["Subject"] and "No budget" in task["Description"]
    assert org.lead(converted)["Status"] == "Closed - Converted"


async def test_the_orgs_daily_api_limit_used_up_is_told_once_and_waited_out(
    sqlite_url: str, clock: TravelClock, org: SalesforceFake
) -> None:
    """Salesforce counts API requests over a rolling 24 hours: once the org's are used up,
    every request is refused for hours. The managers hear of it once, and nothing is lost."""
    maya = org.add_user("maya@example.com", "Maya Chen")
    lead_id = org.add_lead(EMAIL, LastName="Doe", Company="Globex")
    async with stack_for(sqlite_url, clock, org) as stack:
        limit = org.fail(403, "REQUEST_LIMIT_EXCEEDED", times=10_000)  # TotalRequests
        await worked(stack, clock, lead_id)
        for _ in range(6):
            clock.advance(minutes=10)
            stack.handoff.crm.deliver_soon()
            await stack.settle()
        alerts = [m.text for m in stack.sim.messages("C0ESCALATE") if "refuses" in m.text]
        degraded = stack.handoff.crm.degraded
        limit.times = 0  # the oldest requests of the 24 hours roll out
        for _ in range(4):
            clock.advance(minutes=11)
            stack.handoff.crm.deliver_soon()
            await stack.settle()
    (alert,) = alerts
    assert "REQUEST_LIMIT_EXCEEDED" in alert and "24 hours" in alert
    assert degraded is not None
    lead = org.lead(lead_id)
    assert (lead["OwnerId"], lead["Status"]) == (maya, "Closed - Not Converted")
    assert len(org.tasks(lead_id)) == 1


async def test_a_tasks_date_is_the_day_the_team_worked_it(
    sqlite_url: str, clock: TravelClock, org: SalesforceFake
) -> None:
    """A Task's `ActivityDate` is a calendar date Salesforce shows as written ("The timestamp
    is irrelevant. Don't alter the time zone to accommodate time zone differences", its Task
    reference): Maya's Monday-morning rejection in Sydney is Monday's Task, not Sunday's, the
    date in UTC then."""
    clock.now = clock() - timedelta(hours=2)  # Monday 09:00 in Sydney, Sunday 22:00 in UTC
    monday = clock().astimezone(ZoneInfo("Australia/Sydney")).date()
    assert clock().astimezone(UTC).date() < monday
    org.add_user("maya@example.com", "Maya Chen")
    lead_id = org.add_lead(EMAIL, LastName="Doe", Company="Globex")
    async with stack_for(sqlite_url, clock, org) as stack:
        await worked(stack, clock, lead_id)
    (task,) = org.tasks(lead_id)
    assert task["ActivityDate"] == monday.isoformat()


async def test_with_the_owners_clock_a_tasks_date_is_the_owners_day(
    sqlite_url: str, clock: TravelClock, org: SalesforceFake
) -> None:
    """With `clock: owner` the SLA runs a claimed lead on its owner's own day: Maya, in Los
    Angeles, rejects the lead on her Monday afternoon, Tuesday morning in Sydney. Her Task is
    Monday's, the day she worked it, not the team's Tuesday."""
    clock.now = clock() + timedelta(hours=21)  # Tuesday 08:00 in Sydney, Monday 13:00 in LA
    la = clock().astimezone(ZoneInfo("America/Los_Angeles")).date()
    assert la < clock().astimezone(ZoneInfo("Australia/Sydney")).date()
    org.add_user("maya@example.com", "Maya Chen")
    lead_id = org.add_lead(EMAIL, LastName="Doe", Company="Globex")
    async with stack_for(sqlite_url, clock, org, {"clock": "owner"}) as stack:
        stack.sim.users[MAYA].tz = "America/Los_Angeles"
        await stack.handoff.people.refresh(clock())
        await worked(stack, clock, lead_id)
        assert (await stack.services.lead(1)).owner_zone == "America/Los_Angeles"
    (task,) = org.tasks(lead_id)
    assert task["ActivityDate"] == la.isoformat()
