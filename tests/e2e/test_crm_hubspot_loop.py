"""The CRM learns what happens in Slack (issue 14), through the real server, the Slack
simulator and the local HubSpot portal (which holds every request to HubSpot's published
OpenAPI files): a claim sets the contact's owner and lead status, an attempt its status, a
disposition with a reason its status and one note; HubSpot's 429s and lost answers change
nothing of that, and a property the portal lacks is named once in the escalations channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.crmfake.hubspot import HubSpotFake, WebhookFormat
from bot.domain.policy import Policy, parse_policy
from bot.services import crm_inbound
from tests.e2e.test_forget import database_text, forget_cli, slack_text

ROOT = Path(__file__).resolve().parents[2]
ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
MAYA = "U0REP1"
LEAD: dict[str, Any] = {
    "external_id": "hs-7001",
    "email": "jane.doe@globex.example",
    "name": "Jane Doe",
    "title": "VP Operations",
    "company": {"name": "Globex", "employees": 4000, "industry": "Logistics", "country": "AU"},
    "source": "demo_request",
    "score": 90,
}
# Jane as a HubSpot contact: the properties that make her an enterprise MQL.
# HubSpot's two formats of subscription events: the legacy `contact.*`, and the generic
# `object.*` with `objectTypeId` "0-1" of apps on its current developer platform.
FORMATS = pytest.mark.parametrize("webhook_format", ["legacy", "generic"])
JANE = {
    "firstname": "Jane",
    "lastname": "Doe",
    "jobtitle": "VP Operations",
    "company": "Globex",
    "numemployees": "4000",
    "hubspotscore": "90",
}


def crm_policy(**crm: Any) -> Policy:
    data = yaml.safe_load((ROOT / "sla.yaml").read_text())
    data["crm"] = {"kind": "hubspot", **crm}
    return parse_policy(data)


@pytest.fixture
async def hub() -> AsyncIterator[HubSpotFake]:
    fake = await HubSpotFake().start()
    yield fake
    await fake.stop()  # raises if it answered outside HubSpot's specs


@asynccontextmanager
async def stack_for(
    url: str, policy: Policy, clock: TravelClock, hub: HubSpotFake
) -> AsyncIterator[LocalStack]:
    """The stack with the HubSpot app's token, closed on the way out."""
    stack = await start_stack(
        url, policy, clock=clock, HUBSPOT_ACCESS_TOKEN=hub.token, HUBSPOT_API_URL=hub.base_url
    )
    try:
        yield stack
    finally:
        await stack.close()


@asynccontextmanager
async def subscribed(
    url: str,
    clock: TravelClock,
    webhook_format: WebhookFormat = "legacy",
    time_zone: ZoneInfo | None = None,
) -> AsyncIterator[tuple[HubSpotFake, LocalStack, str]]:
    """HubSpot's fake on the test's clock (its signed events carry that time; its daily limit
    resets at midnight in `time_zone`, by default UTC), the stack with the app's client secret
    to check them, and the target URL they go to; both stopped on the way out, the stack
    first."""
    hub = await HubSpotFake(
        clock=lambda: clock().timestamp(),
        webhook_format=webhook_format,
        time_zone=time_zone or ZoneInfo("UTC"),
    ).start()
    try:
        stack = await start_stack(
            url,
            crm_policy(),
            clock=clock,
            HUBSPOT_ACCESS_TOKEN=hub.token,
            HUBSPOT_API_URL=hub.base_url,
            HUBSPOT_CLIENT_SECRET=hub.client_secret,
        )
        try:
            yield hub, stack, f"{stack.base_url}/crm/hubspot"
        finally:
            await stack.close()
    finally:
        await hub.stop()


async def claimed_from_hubspot(hub: HubSpotFake, stack: LocalStack, url: str) -> str:
    """Jane's contact created in HubSpot, taken in through its signed event and claimed by
    Maya: the contact's id."""
    contact = hub.add_contact(LEAD["email"], **JANE)
    created = hub.subscription_event("contact.creation", contact)
    assert await hub.send_subscription(url, [created]) == 200
    await stack.settle()
    await stack.driver.press(MAYA, "Claim", channel=ENTERPRISE)
    await stack.settle()
    return contact


async def worked(stack: LocalStack, clock: TravelClock) -> None:
    """The lead posted, claimed by Maya, a call and an email logged, and rejected with a
    reason."""
    assert (await stack.post_lead(LEAD))[0] == 201
    await stack.settle()
    clock.advance(minutes=4)
    await stack.driver.press(MAYA, "Claim", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(minutes=10)
    await stack.driver.press(MAYA, "Log call", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(minutes=10)
    await stack.driver.press(MAYA, "Log email", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(minutes=30)
    await stack.driver.press(MAYA, "Not a fit", channel=ENTERPRISE)
    await stack.settle()
    await stack.driver.submit_view(MAYA, {"reason": "No budget", "note": "Frozen until Q3."})
    await stack.settle()


async def test_the_owners_emails_are_read_from_slack_at_the_apps_pace(
    sqlite_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    """The owner's email that finds them in HubSpot is a users.info read: it waits its turn in
    the delivery worker's pacer (HANDOFF_SLACK_CALLS_PER_MINUTE per method, and a 429's
    pause), the one the members' reads use, not beside it (tests/unit/test_slack_emails.py:
    the pace itself, on a test clock)."""
    owner = hub.add_owner("maya@example.com", "Maya", "Chen")
    contact = hub.add_contact(LEAD["email"], firstname="Jane", lastname="Doe")
    async with stack_for(sqlite_url, crm_policy(), clock, hub) as stack:
        crm = stack.handoff.crm
        assert crm is not None
        emails = crm.adapter._emails  # type: ignore[attr-defined]
        assert emails.pacer is stack.handoff.outbox.pacer
        await worked(stack, clock)
    assert hub.contact(contact)["hubspot_owner_id"] == owner  # Maya's email found her


async def test_claim_attempt_and_disposition_reach_the_hubspot_contact_once(
    sqlite_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    owner = hub.add_owner("maya@example.com", "Maya", "Chen")
    contact = hub.add_contact(LEAD["email"], firstname="Jane", lastname="Doe")
    policy = crm_policy(fields={"disposition_reason": "handoff_reason"})
    hub.add_property("handoff_reason")
    async with stack_for(sqlite_url, policy, clock, hub) as stack:
        await worked(stack, clock)
        lead = await stack.services.lead(1)
        assert lead.crm_id == contact  # found by email on the first write, then kept

    record = hub.contact(contact)
    assert record["hubspot_owner_id"] == owner
    assert record["hs_lead_status"] == "UNQUALIFIED"
    assert record["handoff_reason"] == "No budget"
    statuses = [
        w.body["properties"].get("hs_lead_status") for w in hub.writes if w.method == "PATCH"
    ]
    # In order: posted, claimed, attempted, rejected (repeated changes may collapse, never
    # reorder).
    order = ["NEW", "OPEN", "ATTEMPTED_TO_CONTACT", "UNQUALIFIED"]
    assert [s for s in order if s in statuses] == order
    assert statuses.index("OPEN") < statuses.index("ATTEMPTED_TO_CONTACT")
    # The second attempt leaves the contact as the first did: no second request for it.
    assert statuses.count("ATTEMPTED_TO_CONTACT") == 1
    (note,) = hub.notes_of(contact)
    assert "Not a fit" in note["hs_note_body"] and "No budget" in note["hs_note_body"]
    assert "Frozen until Q3." in note["hs_note_body"]


async def test_the_route_reason_reaches_hubspot_as_the_why_line_in_plain_words(
    database_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    """A `fields:` map's `route_reason` is what the post's why line says, with the rep as their
    member id: RevOps reads why the lead went to its rep on the contact, not a Python dict."""
    hub.add_owner("maya@example.com", "Maya", "Chen")
    contact = hub.add_contact(LEAD["email"], firstname="Jane", lastname="Doe")
    hub.add_property("handoff_route_reason")
    policy = crm_policy(fields={"route_reason": "handoff_route_reason"})
    async with stack_for(database_url, policy, clock, hub) as stack:
        await worked(stack, clock)
        post = stack.sim.find_message(ENTERPRISE, "Jane Doe")
    assert post is not None
    assert f"Round robin: <@{MAYA}>, 1 of 1 this week" in post.all_text  # the post's why line
    assert hub.contact(contact)["handoff_route_reason"] == "Round robin: U0REP1, 1 of 1 this week"


async def test_claim_and_first_touch_times_reach_hubspot_datetime_properties(
    database_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    """`claimed_at` and `first_touch_at` land in HubSpot `datetime` properties as the times
    they were (HubSpot's documented form, UTC with Z). A `date` property (what HubSpot's Date
    picker makes) refuses a time that is not midnight UTC: the alert names it (docs/crm.md)."""
    hub.add_owner("maya@example.com", "Maya", "Chen")
    contact = hub.add_contact(LEAD["email"], firstname="Jane", lastname="Doe")
    hub.add_property("handoff_claimed_at", type="datetime")
    hub.add_property("handoff_first_touch", type="date")
    policy = crm_policy(
        fields={"claimed_at": "handoff_claimed_at", "first_touch_at": "handoff_first_touch"}
    )
    async with stack_for(database_url, policy, clock, hub) as stack:
        await worked(stack, clock)  # claimed 4 minutes after midnight UTC, a call 10 later
        (alert,) = hubspot_alerts(stack)
        assert "handoff_first_touch" in alert and "not midnight" in alert
        # The claim went through (no first touch yet: the property cleared); the writes after
        # the call wait, and HubSpot took none of their PATCH.
        assert hub.contact(contact)["hs_lead_status"] == "OPEN"
        assert hub.contact(contact)["handoff_claimed_at"] == "2026-11-23T00:04:00.000Z"
        hub.add_property("handoff_first_touch", type="datetime")  # RevOps fixes its type
        clock.advance(minutes=6)
        stack.handoff.crm.deliver_soon()
        await stack.settle()
    record = hub.contact(contact)
    assert record["handoff_claimed_at"] == "2026-11-23T00:04:00.000Z"
    assert record["handoff_first_touch"] == "2026-11-23T00:14:00.000Z"
    assert record["hs_lead_status"] == "UNQUALIFIED"


async def test_429s_and_a_lost_answer_leave_one_note_and_the_final_state(
    sqlite_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    hub.add_owner("maya@example.com", "Maya", "Chen")
    contact = hub.add_contact(LEAD["email"])
    async with stack_for(sqlite_url, crm_policy(), clock, hub) as stack:
        hub.throttle_next(2)  # HubSpot's burst limit, twice
        hub.drop_next(1, method="POST", path="/crm/v3/objects/notes")  # done, answer lost
        await worked(stack, clock)
        for _ in range(5):  # the worker's retries, as time passes
            clock.advance(seconds=20)
            stack.handoff.crm.deliver_soon()
            await stack.settle()
    assert hub.contact(contact)["hs_lead_status"] == "UNQUALIFIED"
    assert len(hub.notes_of(contact)) == 1


async def test_a_property_hubspot_lacks_is_named_once_and_the_writes_wait(
    sqlite_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    hub.add_owner("maya@example.com", "Maya", "Chen")
    contact = hub.add_contact(LEAD["email"])
    policy = crm_policy(fields={"disposition_code": "handoff_code_missing"})
    async with stack_for(sqlite_url, policy, clock, hub) as stack:
        await worked(stack, clock)
        for _ in range(3):
            clock.advance(minutes=6)
            stack.handoff.crm.deliver_soon()
            await stack.settle()
        alerts = hubspot_alerts(stack)
        assert len(alerts) == 1, alerts
        assert "handoff_code_missing" in alerts[0]
        health = await healthz(stack)
        assert str(health["crm"]).startswith("degraded")
        assert "hs_lead_status" not in hub.contact(contact)  # nothing written meanwhile
        assert hub.notes_of(contact) == []
        # RevOps creates the property: the waiting writes go through, in order.
        hub.add_property("handoff_code_missing")
        clock.advance(minutes=6)
        stack.handoff.crm.deliver_soon()
        await stack.settle()
        assert hub.contact(contact)["hs_lead_status"] == "UNQUALIFIED"
        assert hub.contact(contact)["handoff_code_missing"] == "not_a_fit"
        assert len(hub.notes_of(contact)) == 1
        health = await healthz(stack)
        assert health["crm"] == "ok"


def hubspot_alerts(stack: LocalStack) -> list[str]:
    """The escalations channel's messages about HubSpot, as read."""
    return [m.all_text for m in stack.sim.messages(ESCALATIONS) if "HubSpot" in m.all_text]


async def healthz(stack: LocalStack) -> Any:
    """`GET /healthz`'s answer."""
    return await (await stack.session.get(f"{stack.base_url}/healthz")).json()


async def travel_to(stack: LocalStack, clock: TravelClock, until: datetime) -> None:
    """Half an hour at a time up to `until`, the CRM worker woken at each step."""
    while clock() < until:
        clock.advance(seconds=min(1800.0, (until - clock()).total_seconds()))
        stack.handoff.crm.deliver_soon()
        await stack.settle()


async def test_hubspots_daily_limit_stops_the_writes_until_midnight_and_is_told_once(
    sqlite_url: str, clock: TravelClock
) -> None:
    """The account's daily limit is used up (HubSpot's 429 with `policyName` DAILY): the writes
    wait with no request to HubSpot for the rest of the day, the escalations channel is told
    once, and after midnight (the account's, here the team's zone) each write goes out once."""
    policy = crm_policy()
    zone = ZoneInfo(policy.timezone)
    hub = await HubSpotFake(clock=lambda: clock().timestamp(), time_zone=zone).start()
    try:
        hub.add_owner("maya@example.com", "Maya", "Chen")
        contact = hub.add_contact(LEAD["email"])
        async with stack_for(sqlite_url, policy, clock, hub) as stack:
            hub.use_up_today()
            await worked(stack, clock)
            refused = len(hub.requests)
            assert refused == len(hub.limited_daily) == 1  # its first request, then none
            midnight = datetime.combine(
                clock().astimezone(zone).date() + timedelta(days=1), time(0), zone
            )
            await travel_to(stack, clock, midnight - timedelta(minutes=1))  # the rest of the day
            assert len(hub.requests) == refused  # nothing more was sent to HubSpot
            assert hub.writes == []
            alerts = hubspot_alerts(stack)
            assert len(alerts) == 1, alerts
            assert "daily limit" in alerts[0]
            assert f"<!date^{int(midnight.timestamp())}^" in alerts[0]  # when they go out

            await travel_to(stack, clock, midnight + timedelta(minutes=1))  # a new day
            assert await stack.handoff.crm.oldest_pending() is None  # every write went out
            health = await healthz(stack)
            assert health["crm"] == "ok"
            assert len(hubspot_alerts(stack)) == 1
        assert hub.contact(contact)["hs_lead_status"] == "UNQUALIFIED"
        assert len(hub.notes_of(contact)) == 1
        # Each waiting write once: the contact's current state (the syncs waiting collapse
        # into it), then the note.
        assert [(w.method, w.path.split("/")[-1]) for w in hub.writes] == [
            ("PATCH", contact),
            ("POST", "notes"),
        ]
        assert len(hub.limited_daily) == refused
    finally:
        await hub.stop()


async def test_an_account_whose_day_ends_after_the_teams_costs_one_request_a_day(
    sqlite_url: str, clock: TravelClock
) -> None:
    """HubSpot's account keeps London's time, the SLA file Sydney's: at Sydney's midnight the
    limit has not reset yet. One request is refused then, nobody is told again, and the
    writes wait for Sydney's next midnight: nothing lost, nothing twice."""
    policy = crm_policy()
    team = ZoneInfo(policy.timezone)
    hub = await HubSpotFake(
        clock=lambda: clock().timestamp(), time_zone=ZoneInfo("Europe/London")
    ).start()
    try:
        hub.add_owner("maya@example.com", "Maya", "Chen")
        contact = hub.add_contact(LEAD["email"])
        async with stack_for(sqlite_url, policy, clock, hub) as stack:
            hub.use_up_today()
            await worked(stack, clock)
            refused = len(hub.requests)
            assert refused == 1
            midnight = datetime.combine(
                clock().astimezone(team).date() + timedelta(days=1), time(0), team
            )
            await travel_to(stack, clock, midnight - timedelta(minutes=1))
            assert len(hub.requests) == refused
            await travel_to(stack, clock, midnight + timedelta(minutes=1))
            assert len(hub.requests) == refused + 1  # refused: London's day is not over
            await travel_to(stack, clock, midnight + timedelta(days=1, minutes=-1))
            assert len(hub.limited_daily) == len(hub.requests) == refused + 1
            assert hub.writes == []
            await travel_to(stack, clock, midnight + timedelta(days=1, minutes=1))
            assert await stack.handoff.crm.oldest_pending() is None
            assert len(hubspot_alerts(stack)) == 1
        assert hub.contact(contact)["hs_lead_status"] == "UNQUALIFIED"
        assert [(w.method, w.path.split("/")[-1]) for w in hub.writes] == [
            ("PATCH", contact),
            ("POST", "notes"),
        ]
    finally:
        await hub.stop()


@FORMATS
async def test_a_round_trip_created_in_hubspot_claimed_in_slack_reassigned_in_hubspot(
    sqlite_url: str, clock: TravelClock, webhook_format: WebhookFormat
) -> None:
    """HubSpot's signed subscription events, as its fake sends them (in either format): the
    new contact is read through HubSpot's API and posted; the claim's owner goes to HubSpot,
    whose echo changes nothing; an owner changed in HubSpot reassigns the lead in Slack."""
    async with subscribed(sqlite_url, clock, webhook_format) as (hub, stack, url):
        maya = hub.add_owner("maya@example.com", "Maya", "Chen")
        tom = hub.add_owner("tom@example.com", "Tom", "Okafor")
        contact = hub.add_contact(
            "jane.doe@globex.example",
            firstname="Jane",
            lastname="Doe",
            jobtitle="VP Operations",
            company="Globex",
            numemployees="4000",
            hubspotscore="90",
        )
        created = hub.subscription_event("contact.creation", contact)
        assert await hub.send_subscription(url, [created]) == 200
        await stack.settle()
        (post,) = stack.sim.messages(ENTERPRISE)
        assert "Jane Doe" in post.all_text and "Globex" in post.all_text
        lead = await stack.services.lead(1)
        assert (lead.crm_id, lead.external_id) == (contact, f"hubspot:{contact}")

        hub.subscribe(url, ["hubspot_owner_id"])
        clock.advance(minutes=3)
        await stack.driver.press(MAYA, "Claim", channel=ENTERPRISE)
        await stack.settle()
        assert hub.contact(contact)["hubspot_owner_id"] == maya
        replies = len(stack.sim.thread(ENTERPRISE, post.ts))
        assert await hub.flush_webhooks() == [200]  # HubSpot tells us of our own write
        await stack.settle()
        assert (await stack.services.lead(1)).owner == MAYA
        assert len(stack.sim.thread(ENTERPRISE, post.ts)) == replies  # the echo: nothing

        clock.advance(minutes=20)
        hub.change_contact(contact, hubspot_owner_id=tom)  # a manager, in HubSpot
        assert await hub.flush_webhooks() == [200]
        await stack.settle()
        assert (await stack.services.lead(1)).owner == "U0REP2"
        assert "Reassigned to <@U0REP2>" in stack.sim.thread(ENTERPRISE, post.ts)[-1].all_text


async def test_an_hour_of_hubspot_5xx_loses_nothing_and_doubles_nothing(
    sqlite_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    hub.add_owner("maya@example.com", "Maya", "Chen")
    contact = hub.add_contact(LEAD["email"])
    async with stack_for(sqlite_url, crm_policy(), clock, hub) as stack:
        hub.fail_next(10_000)  # HubSpot answers 503 to everything
        await worked(stack, clock)
        for _ in range(6):  # an hour, the worker probing as its backoff allows
            clock.advance(minutes=10)
            stack.handoff.crm.deliver_soon()
            await stack.settle()
        assert hub.writes == [] and stack.sim.messages(ENTERPRISE)  # Slack was not held up
        hub.faults.clear()  # HubSpot is back
        for _ in range(4):
            clock.advance(minutes=11)
            stack.handoff.crm.deliver_soon()
            await stack.settle()
    assert hub.contact(contact)["hs_lead_status"] == "UNQUALIFIED"
    assert len(hub.notes_of(contact)) == 1
    statuses = [
        w.body["properties"].get("hs_lead_status") for w in hub.writes if w.method == "PATCH"
    ]
    assert statuses[-1] == "UNQUALIFIED"  # the latest state, written last


async def test_a_sweeps_reassignment_reaches_hubspot_without_waiting_for_the_poll(
    sqlite_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    """The sweep wakes the CRM worker as it wakes the Slack outbox: a claimed lead nobody
    touched, reassigned by the sweep, has its new owner in HubSpot at once, even with the
    worker's own poll an hour away."""
    hub.add_owner("maya@example.com", "Maya", "Chen")
    tom = hub.add_owner("tom@example.com", "Tom", "Okafor")
    contact = hub.add_contact(LEAD["email"], firstname="Jane", lastname="Doe")
    async with stack_for(sqlite_url, crm_policy(), clock, hub) as stack:
        assert (await stack.post_lead(LEAD))[0] == 201
        await stack.settle()
        await stack.driver.press(MAYA, "Claim", channel=ENTERPRISE)
        await stack.settle()
        worker = stack.handoff.crm
        assert worker is not None
        worker.poll_seconds = 3600.0
        worker.deliver_soon()  # one more round, so the worker now waits on the long poll
        await stack.settle()
        written = len(hub.writes)

        clock.advance(days=2)  # no touch at 200% of its window: the sweep reassigns
        result = await stack.handoff.sweeper.run(clock())
        assert result.changed == 1
        assert (await stack.services.lead(1)).owner == "U0REP2"
        for _ in range(500):  # bounded: fails if only the hour's poll would send it
            if hub.contact(contact).get("hubspot_owner_id") == tom:
                break
            await asyncio.sleep(0.01)
        assert hub.contact(contact)["hubspot_owner_id"] == tom
        assert len(hub.writes) > written


async def test_a_rejection_mapped_to_an_earlier_stage_leaves_an_opportunity_as_it_is(
    sqlite_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    """RevOps maps rejections to `lead`, and the contact is already an opportunity in HubSpot:
    the rep's rejection sets its lead status, and its lifecycle stage stays where it was
    (HubSpot moves a stage back only after a clear, which Handoff never sends). Neither the
    post's `marketingqualifiedlead` nor the rejection's `lead` demotes it."""
    hub.add_owner("maya@example.com", "Maya", "Chen")
    contact = hub.add_contact(LEAD["email"], lifecyclestage="opportunity")
    async with stack_for(sqlite_url, crm_policy(lifecycle={"reject": "lead"}), clock, hub) as stack:
        await worked(stack, clock)
    record = hub.contact(contact)
    assert record["hs_lead_status"] == "UNQUALIFIED"
    assert record["lifecyclestage"] == "opportunity"
    stages = [w.body["properties"].get("lifecyclestage") for w in hub.writes if w.method == "PATCH"]
    assert "lead" in stages and "" not in stages  # asked for, kept by HubSpot; never cleared


async def test_a_qualified_lead_moves_its_contact_forward_in_one_request(
    sqlite_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    """Forward moves are unchanged: the disposition's sync is one PATCH, which HubSpot takes."""
    hub.add_owner("maya@example.com", "Maya", "Chen")
    contact = hub.add_contact(LEAD["email"], lifecyclestage="lead")
    async with stack_for(sqlite_url, crm_policy(), clock, hub) as stack:
        assert (await stack.post_lead(LEAD))[0] == 201
        await stack.settle()
        await stack.driver.press(MAYA, "Claim", channel=ENTERPRISE)
        await stack.settle()
        assert hub.contact(contact)["lifecyclestage"] == "marketingqualifiedlead"
        before = len(hub.requests)
        clock.advance(minutes=10)
        await stack.driver.press(MAYA, "Qualified", channel=ENTERPRISE)
        await stack.settle()
        sent = hub.requests[before:]
    assert hub.contact(contact)["lifecyclestage"] == "salesqualifiedlead"
    assert hub.contact(contact)["hs_lead_status"] == "CONNECTED"
    # The disposition's sync is one request to the contact (besides its note, and the owners
    # read again once the adapter's five-minute cache is stale).
    to_contacts = [r for r in sent if r[1].startswith("/crm/v3/objects/contacts")]
    assert to_contacts == [("PATCH", f"/crm/v3/objects/contacts/{contact}")]


async def test_a_target_url_with_a_query_string_takes_hubspots_signed_events(
    sqlite_url: str, clock: TravelClock
) -> None:
    """HubSpot signs the target URL with some escapes decoded (%3A, %40, ...: "Validating
    requests"), while the request goes to the URL as registered: an app whose target URL has
    a query string with escapes in it is still taken."""
    async with subscribed(sqlite_url, clock) as (hub, stack, _):
        url = f"{stack.base_url}/crm/hubspot?install=acme%3Aprod&by=ops%40acme.example&tag=a%20b"
        contact = hub.add_contact("jane.doe@globex.example", firstname="Jane", lastname="Doe")
        created = hub.subscription_event("contact.creation", contact)
        assert await hub.send_subscription(url, [created]) == 200
        await stack.settle()
        assert (await stack.services.lead(1)).crm_id == contact


@FORMATS
async def test_a_merged_contacts_lead_follows_the_contact_that_remains(
    sqlite_url: str, clock: TravelClock, webhook_format: WebhookFormat
) -> None:
    """The lead's contact (A) is merged into another (B) in HubSpot, whose later changes come
    under B's id: the merge ties the lead to B, so an owner changed on B reassigns it in Slack
    (before: "unknown", a 404 HubSpot retries for days), and Handoff's own writes go to B, not
    to the id that is gone. HubSpot's retry of the merge changes nothing; a merge of contacts
    Handoff has no lead for is taken (200), not retried. In HubSpot's legacy format and in its
    generic one."""
    async with subscribed(sqlite_url, clock, webhook_format) as (hub, stack, url):
        hub.add_owner("maya@example.com", "Maya", "Chen")
        tom = hub.add_owner("tom@example.com", "Tom", "Okafor")
        first = await claimed_from_hubspot(hub, stack, url)
        (post,) = stack.sim.messages(ENTERPRISE)
        kept = hub.add_contact("jane@globex-group.example", firstname="Jane", lastname="Doe")
        hub.subscribe(url, ["hubspot_owner_id"])

        clock.advance(minutes=10)  # RevOps merges the duplicate, through HubSpot's API
        merge = {"primaryObjectId": kept, "objectIdToMerge": first}
        headers = {"Authorization": f"Bearer {hub.token}"}
        async with stack.session.post(
            f"{hub.base_url}/crm/v3/objects/contacts/merge", json=merge, headers=headers
        ) as answer:
            assert answer.status == 200
        (merged,) = hub.pending_events
        assert await hub.flush_webhooks() == [200]
        lead = await stack.services.lead(1)
        assert lead.crm_id == kept and lead.external_id == f"hubspot:{first}"
        (tied,) = [e for e in await stack.services.store.events(1) if e.type == "crm_merged"]
        assert tied.actor == "crm" and tied.data == {"crm_id": kept, "merged": [first]}

        clock.advance(minutes=10)  # a manager hands the contact that remains to Tom
        hub.change_contact(kept, hubspot_owner_id=tom)
        assert await hub.flush_webhooks() == [200]
        await stack.settle()
        assert (await stack.services.lead(1)).owner == "U0REP2"
        assert "<@U0REP2>" in stack.sim.messages(ENTERPRISE)[0].all_text
        assert "Reassigned to <@U0REP2>" in stack.sim.thread(ENTERPRISE, post.ts)[-1].all_text

        # Handoff's own write-back goes to the contact that remains.
        written = len(hub.writes)
        clock.advance(minutes=5)
        await stack.driver.press("U0REP2", "Log call", channel=ENTERPRISE)
        await stack.settle()
        patched = {w.path for w in hub.writes[written:] if w.method == "PATCH"}
        assert patched == {f"/crm/v3/objects/contacts/{kept}"}
        assert hub.contact(kept)["hs_lead_status"] == "ATTEMPTED_TO_CONTACT"

        # HubSpot's retry of the merge: taken, and nothing changes.
        assert await hub.send_subscription(url, [{**merged, "attemptNumber": 1}]) == 200
        assert (await stack.services.lead(1)).crm_id == kept
        events = await stack.services.store.events(1)
        assert [e.type for e in events].count("crm_merged") == 1

        # Contacts Handoff has no lead for: answered 200, so HubSpot does not retry it.
        stranger = hub.add_contact("sam@initech.example")
        other = hub.add_contact("samuel@initech.example")
        hub.merge_contacts(other, stranger)
        assert await hub.flush_webhooks() == [200]
        assert await stack.services.store.count_leads() == 1


@FORMATS
async def test_merges_delivered_out_of_order_still_tie_the_lead_to_the_contact_that_remains(
    sqlite_url: str, clock: TravelClock, webhook_format: WebhookFormat
) -> None:
    """HubSpot does not deliver its notifications in the order they happened. The lead's
    contact (A) is merged into B, then B into C; HubSpot tells of "B into C" first. The lead
    ends tied to C (before: to B, a contact that is gone, so every later change under C was
    "unknown", a 404, and Handoff's writes went to B): an owner changed on C reassigns it,
    and Handoff's own writes go to C."""
    async with subscribed(sqlite_url, clock, webhook_format) as (hub, stack, url):
        hub.add_owner("maya@example.com", "Maya", "Chen")
        tom = hub.add_owner("tom@example.com", "Tom", "Okafor")
        first = await claimed_from_hubspot(hub, stack, url)
        middle = hub.add_contact("jane@globex-group.example", firstname="Jane")
        last = hub.add_contact("jdoe@globex.example", firstname="Jane")
        hub.subscribe(url, ["hubspot_owner_id"])

        clock.advance(minutes=10)  # RevOps merges the duplicates: A into B, then B into C
        hub.merge_contacts(middle, first)
        hub.merge_contacts(last, middle)
        a_into_b, b_into_c = hub.pending_events
        hub.pending_events.clear()
        assert await hub.send_subscription(url, [b_into_c]) == 200
        assert await hub.send_subscription(url, [a_into_b]) == 200
        assert (await stack.services.lead(1)).crm_id == last

        clock.advance(minutes=10)  # a manager hands the contact that remains to Tom
        hub.change_contact(last, hubspot_owner_id=tom)
        assert await hub.flush_webhooks() == [200]
        await stack.settle()
        assert (await stack.services.lead(1)).owner == "U0REP2"

        written = len(hub.writes)
        clock.advance(minutes=5)
        await stack.driver.press("U0REP2", "Log call", channel=ENTERPRISE)
        await stack.settle()
        patched = {w.path for w in hub.writes[written:] if w.method == "PATCH"}
        assert patched == {f"/crm/v3/objects/contacts/{last}"}


@pytest.mark.parametrize("merge_told_first", [True, False])
async def test_a_creation_told_after_its_contact_was_merged_away_takes_the_lead_in(
    sqlite_url: str, clock: TravelClock, merge_told_first: bool
) -> None:
    """A contact (A) is created and merged into another (C) before HubSpot's `contact.creation`
    of A reaches Handoff (delivered late, or retried). HubSpot answers a read of A with the
    merged contact, under its own id ("fetching any records using the original IDs will return
    the new merged record with the new ID"): the lead is taken in once, tied to C, and C's
    changes reach it. Before, the read of A was a 404, and no lead was taken in at all."""
    async with subscribed(sqlite_url, clock) as (hub, stack, url):
        hub.subscribe(url, ["hs_lead_status"])
        first = hub.add_contact(LEAD["email"], **JANE)
        created = hub.subscription_event("contact.creation", first)
        kept = hub.add_contact("jane@globex-group.example", firstname="Jane")
        hub.merge_contacts(kept, first)
        (merge,) = hub.pending_events
        hub.pending_events.clear()
        told = [merge, created] if merge_told_first else [created, merge]
        for event in told:
            assert await hub.send_subscription(url, [event]) == 200
        await stack.settle()

        assert await stack.services.store.count_leads() == 1
        lead = await stack.services.lead(1)
        assert lead.crm_id == kept and lead.email == "jane@globex-group.example"
        (post,) = stack.sim.messages(ENTERPRISE)
        assert "Jane Doe" in post.all_text

        hub.change_contact(kept, hs_lead_status="CONNECTED")
        assert await hub.flush_webhooks() == [200]
        statuses = [e for e in await stack.services.store.events(1) if e.type == "crm_status"]
        assert statuses[-1].data == {"status": "CONNECTED"}


@FORMATS
async def test_a_contact_deleted_in_hubspot_is_erased_and_its_merged_duplicates_stay_quiet(
    database_url: str, clock: TravelClock, webhook_format: WebhookFormat
) -> None:
    """Jane's duplicate contact is merged into hers, then her contact is deleted in HubSpot:
    the lead is erased. A change made to the duplicate before the merge, delivered after the
    erasure, and the deletion's retry are answered 200 and change nothing (before, the
    duplicate's change was a 404, which HubSpot retries for 24 hours: its Webhooks API guide,
    "Retries"); a contact never seen is still a 404. Both of HubSpot's formats, both
    databases."""
    async with subscribed(database_url, clock, webhook_format) as (hub, stack, url):
        first = await claimed_from_hubspot(hub, stack, url)
        duplicate = hub.add_contact("jane@globex-group.example", firstname="Jane")
        hub.subscribe(url, ["hs_lead_status"])
        hub.change_contact(duplicate, hs_lead_status="OPEN")
        (late,) = hub.pending_events  # delivered only after the erasure
        hub.pending_events.clear()

        clock.advance(minutes=10)
        hub.merge_contacts(first, duplicate)
        (merged,) = hub.pending_events
        if webhook_format == "generic":
            assert (merged["subscriptionType"], merged["objectTypeId"]) == ("object.merge", "0-1")
        assert await hub.flush_webhooks() == [200]  # no lead of the duplicate: taken
        clock.advance(minutes=10)
        hub.delete_contact(first)
        (deleted,) = hub.pending_events
        assert await hub.flush_webhooks() == [200]
        await stack.settle()
        lead = await stack.services.lead(1)
        assert lead.erased_at is not None
        assert lead.crm_id == stack.services.store.erasure_key.tombstone(first)

        assert await hub.send_subscription(url, [late]) == 200
        assert await hub.send_subscription(url, [{**deleted, "attemptNumber": 1}]) == 200
        assert await hub.send_subscription(url, [{**merged, "attemptNumber": 1}]) == 200
        await stack.settle()
        assert await stack.services.store.count_leads() == 1
        assert not [e for e in await stack.services.store.events(1) if e.type == "crm_status"]
        dump = (await database_text(stack)).lower()
        for trace in ("jane", "globex", f'"{duplicate}"', f":{duplicate}", f'"{first}"'):
            assert trace not in dump, trace

        stranger = hub.subscription_event(
            "contact.propertyChange", 99999, property_name="hs_lead_status", property_value="NEW"
        )
        assert await hub.send_subscription(url, [stranger]) == 404  # creation may be on its way


@FORMATS
async def test_a_contact_an_erased_persons_contact_was_merged_into_never_takes_them_in_again(
    database_url: str, clock: TravelClock, webhook_format: WebhookFormat
) -> None:
    """Jane is forgotten (`handoff forget`); later RevOps merges her contact (A) into a
    duplicate (B) Handoff never had, which remains. HubSpot merges duplicates of one person: B
    is Jane's record now. The merge, HubSpot's later events about B (a status change, its
    creation told late, its deletion) and a workflow's "Send a webhook" of B are answered 200
    and change nothing: Jane is not taken in again, and B's id is kept only as a digest.
    Before, B's events were 404s, which HubSpot retries for 24 hours (its Webhooks API guide,
    "Retries"), and B's creation or workflow call took Jane in again as a new lead. Both of
    HubSpot's formats, both databases."""
    async with subscribed(database_url, clock, webhook_format) as (hub, stack, url):
        first = await claimed_from_hubspot(hub, stack, url)
        code, output = await forget_cli(stack, LEAD["email"])
        assert code == 0, output
        await stack.settle()
        kept = hub.add_contact("jane@globex-group.example", **JANE)
        hub.subscribe(url, ["hs_lead_status"])

        clock.advance(minutes=10)
        assert hub.merge_contacts(kept, first) == kept
        (merged,) = hub.pending_events
        assert await hub.flush_webhooks() == [200]
        clock.advance(minutes=10)
        hub.change_contact(kept, hs_lead_status="OPEN")
        assert await hub.flush_webhooks() == [200]
        created = hub.subscription_event("contact.creation", kept)  # told late
        assert await hub.send_subscription(url, [created]) == 200
        properties = {name: {"value": value} for name, value in hub.contact(kept).items()}
        workflow = {"objectId": int(kept), "properties": properties}
        assert await hub.send_workflow(url, workflow) == 200
        assert await hub.send_subscription(url, [{**merged, "attemptNumber": 1}]) == 200
        hub.delete_contact(kept)
        assert await hub.flush_webhooks() == [200]
        await stack.settle()

        assert await stack.services.store.count_leads() == 1
        lead = await stack.services.lead(1)
        assert lead.erased_at is not None
        dump = (await database_text(stack) + slack_text(stack)).lower()
        for trace in ("jane", "globex", f'"{kept}"', f":{kept}", f'"{first}"', f":{first}"):
            assert trace not in dump, trace


async def test_a_note_that_finds_its_contact_merged_ties_the_lead_to_the_contact_that_remains(
    sqlite_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    """Jane's contact (A) is merged into another (B) in HubSpot, and Handoff is not told (no
    webhook subscribed, or the `contact.merge` not delivered yet). Her next note is refused
    for A (a 400: HubSpot does not associate a note with a contact merged away), finds B (a
    read of A answers B, HubSpot's changelog "Updated merge functionality for contacts and
    companies") and goes there; the lead is tied to B from then on, so her later writes go to
    B at once: the next sync brings B to the lead's state, the next note is one request."""
    hub.add_owner("maya@example.com", "Maya", "Chen")
    first = hub.add_contact(LEAD["email"], firstname="Jane", lastname="Doe")
    kept = hub.add_contact("jane@globex-group.example", firstname="Jane")
    async with stack_for(sqlite_url, crm_policy(attempt_notes=True), clock, hub) as stack:
        assert (await stack.post_lead(LEAD))[0] == 201
        await stack.settle()
        for minutes in (4, 10):
            clock.advance(minutes=minutes)
            label = "Claim" if minutes == 4 else "Log call"
            await stack.driver.press(MAYA, label, channel=ENTERPRISE)
            await stack.settle()
        assert (await stack.services.lead(1)).crm_id == first
        hub.merge_contacts(kept, first)  # nobody subscribed: Handoff hears nothing of it

        def to_contacts(since: int) -> list[tuple[str, str]]:
            return [r for r in hub.requests[since:] if "/owners" not in r[1]]

        sent = len(hub.requests)
        clock.advance(minutes=10)
        await stack.driver.press(MAYA, "Log call", channel=ENTERPRISE)  # the same state: a note
        await stack.settle()
        assert len(hub.notes_of(kept)) == 2  # the first call's, moved by the merge, and this
        assert ("GET", f"/crm/v3/objects/contacts/{first}") in to_contacts(sent)  # the look
        assert (await stack.services.lead(1)).crm_id == kept

        sent = len(hub.requests)
        clock.advance(minutes=10)
        await stack.driver.press(MAYA, "Log call", channel=ENTERPRISE)
        await stack.settle()
        assert to_contacts(sent) == [
            ("PATCH", f"/crm/v3/objects/contacts/{kept}"),  # B shows the lead's state
            ("POST", "/crm/v3/objects/notes"),  # one request: no 400, no look
        ]
        assert len(hub.notes_of(kept)) == 3
        assert hub.contact(kept)["hs_lead_status"] == "ATTEMPTED_TO_CONTACT"


async def test_a_contact_created_while_the_daily_limit_is_used_up_waits_for_midnight(
    sqlite_url: str, clock: TravelClock
) -> None:
    """HubSpot tells of a new contact while the account's daily limit is used up: the contact
    cannot be read (HubSpot's 429, `policyName` DAILY). The notification is not taken (a 503,
    its `Retry-After` the limit's reset, as for a write; before, a 500 "internal error"), so
    HubSpot's retry of it runs again ("any HTTP status code (4xx or 5xx)" is retried, its
    Webhooks API guide); its retries during the day cost HubSpot no request, and the one
    after midnight takes the lead in."""
    team = ZoneInfo(crm_policy().timezone)
    async with subscribed(sqlite_url, clock, time_zone=team) as (hub, stack, url):
        contact = hub.add_contact(LEAD["email"], **JANE)
        created = hub.subscription_event("contact.creation", contact)
        hub.use_up_today()
        midnight = datetime.combine(
            clock().astimezone(team).date() + timedelta(days=1), time(0), team
        )
        assert await hub.send_subscription(url, [created]) == 503
        until = (midnight - clock()).total_seconds()
        assert hub.answered_retry_after is not None
        assert until <= int(hub.answered_retry_after) <= until + 1
        assert hub.limited_daily == [("GET", f"/crm/v3/objects/contacts/{contact}")]

        for attempt, minutes in enumerate((2, 60, 600), start=1):  # HubSpot's retries that day
            clock.advance(minutes=minutes)
            if clock() >= midnight:
                break
            retry = {**created, "attemptNumber": attempt}
            assert await hub.send_subscription(url, [retry]) == 503
        assert len(hub.requests) == 1  # none of them asked HubSpot again
        assert await stack.services.store.count_leads() == 0

        await travel_to(stack, clock, midnight + timedelta(minutes=1))
        retry = {**created, "attemptNumber": 4}
        assert await hub.send_subscription(url, [retry]) == 200
        await stack.settle()
        assert await stack.services.store.count_leads() == 1
        assert (await stack.services.lead(1)).crm_id == contact
        (post,) = stack.sim.messages(ENTERPRISE)
        assert "Jane Doe" in post.all_text


@pytest.mark.parametrize("status", [502, 429, 401])
async def test_a_contact_hubspot_will_not_read_now_is_answered_503_and_taken_on_its_retry(
    sqlite_url: str, clock: TravelClock, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """HubSpot tells of a new contact, and its read fails: a 5xx, its burst limit's 429 (the
    ten-second window, not the day's), or a refused token. The notification is not taken: a
    503 with a `Retry-After`, so HubSpot sends it again ("any HTTP status code (4xx or 5xx)"
    is retried, its Webhooks API guide, "Retries"), and no traceback in the log (before: a
    500 "internal error" and the exception's traceback). Its retry, once the read works,
    takes the lead in."""
    async with subscribed(sqlite_url, clock) as (hub, stack, url):
        contact = hub.add_contact(LEAD["email"], **JANE)
        created = hub.subscription_event("contact.creation", contact)
        hub.fail_next(status=status, method="GET", path=f"/crm/v3/objects/contacts/{contact}")
        assert await hub.send_subscription(url, [created]) == 503
        assert hub.answered_retry_after is not None and int(hub.answered_retry_after) >= 1
        assert "Traceback" not in caplog.text
        assert not any(record.exc_info for record in caplog.records)
        assert await stack.services.store.count_leads() == 0

        await travel_to(stack, clock, clock() + timedelta(minutes=10))
        retry = {**created, "attemptNumber": 1}
        assert await hub.send_subscription(url, [retry]) == 200
        await stack.settle()
        assert await stack.services.store.count_leads() == 1
        assert (await stack.services.lead(1)).crm_id == contact


async def test_a_contact_read_slower_than_hubspots_wait_is_answered_503_and_taken_once_later(
    sqlite_url: str, clock: TravelClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HubSpot tells of a new contact, and its read answers, but slowly: slower than the
    seconds HubSpot gives a webhook to answer before it counts the delivery failed and sends it
    again (its Webhooks API guide, "Retries"). The adapter's own wait (30 s) would keep the
    webhook waiting past that. The request stops waiting at its bound for outside calls
    (READS_BOUND, shortened here to keep the test short; the read takes twice as long): the
    notification is answered 503 with a `Retry-After`, and nothing of it is taken (before: a
    200 HubSpot never heard, after it had given up). Its retry takes the lead in, once."""
    monkeypatch.setattr(crm_inbound, "READS_BOUND", 0.5)
    async with subscribed(sqlite_url, clock) as (hub, stack, url):
        contact = hub.add_contact(LEAD["email"], **JANE)
        created = hub.subscription_event("contact.creation", contact)
        hub.trickle_next(1.0, method="GET", path=f"/crm/v3/objects/contacts/{contact}")
        assert await hub.send_subscription(url, [created]) == 503
        assert hub.answered_retry_after is not None and int(hub.answered_retry_after) >= 1
        await stack.settle()
        assert await stack.services.store.count_leads() == 0
        assert stack.sim.messages(ENTERPRISE) == []

        await travel_to(stack, clock, clock() + timedelta(minutes=2))
        retry = {**created, "attemptNumber": 1}
        assert await hub.send_subscription(url, [retry]) == 200
        await stack.settle()
        assert await hub.send_subscription(url, [{**created, "attemptNumber": 2}]) == 200
        await stack.settle()
        assert await stack.services.store.count_leads() == 1
        assert (await stack.services.lead(1)).crm_id == contact
        (post,) = stack.sim.messages(ENTERPRISE)
        assert "Jane Doe" in post.all_text


async def test_a_migration_of_hours_is_told_once_and_the_writes_go_out_after_it(
    sqlite_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    """HubSpot's 477 Migration in Progress sends "a Retry-After response header indicating how
    many seconds to wait before retrying the request (typically up to 24 hours)" (its "Error
    handling" guide). A wait of hours holds every write: the escalations channel is told once,
    with when they go out, and /healthz says so; then they go out by themselves and /healthz is
    ok again."""
    hub.add_owner("maya@example.com", "Maya", "Chen")
    contact = hub.add_contact(LEAD["email"])
    async with stack_for(sqlite_url, crm_policy(), clock, hub) as stack:
        hub.fail_next(status=477, retry_after=6 * 3600)
        await worked(stack, clock)
        resumes = clock() + timedelta(hours=6)
        for _ in range(3):
            clock.advance(minutes=20)
            stack.handoff.crm.deliver_soon()
            await stack.settle()
        alerts = hubspot_alerts(stack)
        assert len(alerts) == 1, alerts
        assert "477" in alerts[0]
        assert "check the token" not in alerts[0]  # nothing to fix
        health = await healthz(stack)
        assert str(health["crm"]).startswith("degraded") and "477" in health["crm"]
        assert hub.writes == []
        await travel_to(stack, clock, resumes + timedelta(minutes=1))
        assert await stack.handoff.crm.oldest_pending() is None
        health = await healthz(stack)
        assert health["crm"] == "ok"
        assert len(hubspot_alerts(stack)) == 1
    assert hub.contact(contact)["hs_lead_status"] == "UNQUALIFIED"
    assert len(hub.notes_of(contact)) == 1


async def test_a_lock_of_two_seconds_tells_nobody(
    sqlite_url: str, clock: TravelClock, hub: HubSpotFake
) -> None:
    """423 Locked lasts 2 seconds (HubSpot's "Error handling" guide): the write goes out after
    it, and the escalations channel hears nothing."""
    hub.add_owner("maya@example.com", "Maya", "Chen")
    contact = hub.add_contact(LEAD["email"])
    async with stack_for(sqlite_url, crm_policy(), clock, hub) as stack:
        hub.fail_next(status=423)
        await worked(stack, clock)
        for _ in range(3):
            clock.advance(seconds=20)
            stack.handoff.crm.deliver_soon()
            await stack.settle()
        assert not hubspot_alerts(stack)
    assert hub.contact(contact)["hs_lead_status"] == "UNQUALIFIED"


async def test_a_token_that_may_not_read_contacts_is_told_once_not_only_logged(
    sqlite_url: str, clock: TravelClock
) -> None:
    """The private app lacks `crm.objects.contacts.read` (contacts.json asks it of a contact's
    read): every new contact's notification is answered 503, and HubSpot stops retrying it
    after a day ("up to 10 times" over 24 hours, its Webhooks API guide, "Retries"), when it is
    lost. No write meets the refusal, so the write worker tells nobody: the escalations
    channel is told once here, naming the scope, and /healthz says so (/readyz stays ready);
    once the scope is granted, the next retry takes the contact in and /healthz is ok again."""
    async with subscribed(sqlite_url, clock) as (hub, stack, url):
        hub.scopes = frozenset({"crm.objects.contacts.write", "crm.objects.owners.read"})
        contact = hub.add_contact(LEAD["email"], **JANE)
        created = hub.subscription_event("contact.creation", contact)
        assert await hub.send_subscription(url, [created]) == 503
        await stack.settle()
        for attempt in (1, 2):  # HubSpot's retries
            clock.advance(minutes=10)
            assert await hub.send_subscription(url, [{**created, "attemptNumber": attempt}]) == 503
            await stack.settle()
        alerts = hubspot_alerts(stack)
        assert len(alerts) == 1, alerts
        assert "crm.objects.contacts.read" in alerts[0]
        health = await healthz(stack)
        assert str(health["crm"]).startswith("degraded") and "reads" in health["crm"]
        # Still ready: this replica serves Slack and the writes as well as ever.
        ready = await (await stack.session.get(f"{stack.base_url}/readyz")).json()
        assert ready["checks"]["crm"]["ok"] is True

        hub.scopes = None  # RevOps grants the scope
        clock.advance(minutes=10)
        assert await hub.send_subscription(url, [{**created, "attemptNumber": 3}]) == 200
        await stack.settle()
        assert await stack.services.store.count_leads() == 1
        health = await healthz(stack)
        assert health["crm"] == "ok"


async def test_a_migration_a_notifications_read_meets_is_told_though_no_write_waits(
    sqlite_url: str, clock: TravelClock
) -> None:
    """A new contact's read is answered 477 Migration in Progress with a wait of hours (HubSpot's
    "Error handling" guide), and no write waits to meet it: the notification is answered 503,
    and HubSpot sends it again for a day at most (its Webhooks API guide, "Retries"), so the
    escalations channel is told once, with when Handoff asks again. After the wait, the retry
    takes the contact in and /healthz is ok."""
    async with subscribed(sqlite_url, clock) as (hub, stack, url):
        contact = hub.add_contact(LEAD["email"], **JANE)
        created = hub.subscription_event("contact.creation", contact)
        hub.fail_next(status=477, method="GET", retry_after=6 * 3600)
        assert await hub.send_subscription(url, [created]) == 503
        await stack.settle()
        clock.advance(minutes=10)
        assert await hub.send_subscription(url, [{**created, "attemptNumber": 1}]) == 503
        await stack.settle()
        alerts = hubspot_alerts(stack)
        assert len(alerts) == 1, alerts
        assert "477" in alerts[0]
        health = await healthz(stack)
        assert str(health["crm"]).startswith("degraded") and "477" in health["crm"]

        clock.advance(hours=6)
        assert await hub.send_subscription(url, [{**created, "attemptNumber": 2}]) == 200
        await stack.settle()
        assert await stack.services.store.count_leads() == 1
        health = await healthz(stack)
        assert health["crm"] == "ok"


async def test_a_token_refused_to_the_writes_and_then_a_read_is_told_once(
    sqlite_url: str, clock: TravelClock
) -> None:
    """HubSpot refuses the private app's token (401): a write meets it first and the
    escalations channel is told what to fix; a new contact's notification then meets it on its
    read, which adds no second alert for the same refusal."""
    async with subscribed(sqlite_url, clock) as (hub, stack, url):
        await claimed_from_hubspot(hub, stack, url)
        hub.token = "pat-na1-revoked-by-revops"  # the app's token is rotated in HubSpot
        clock.advance(minutes=5)
        await stack.driver.press(MAYA, "Log call", channel=ENTERPRISE)
        await stack.settle()
        alerts = hubspot_alerts(stack)
        assert len(alerts) == 1, alerts
        other = hub.add_contact("sam.lee@initech.example", **JANE)
        created = hub.subscription_event("contact.creation", other)
        assert await hub.send_subscription(url, [created]) == 503
        await stack.settle()
        alerts = hubspot_alerts(stack)
        assert len(alerts) == 1, alerts


@pytest.mark.parametrize("status", [429, 477])
async def test_a_read_hubspot_asks_to_wait_years_for_is_answered_503_with_a_days_wait(
    sqlite_url: str, clock: TravelClock, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """HubSpot answers the read a new contact needs with a `Retry-After` of 10^12 seconds (a
    429, or a 477 Migration in Progress, "typically up to 24 hours": its "Error handling"
    guide). The wait is taken at most 24 hours: the notification is answered 503 with that
    `Retry-After`, without a traceback (before: a 500, OverflowError from the worker's
    `clock() + timedelta(seconds=1e12)`), and nothing is taken."""
    async with subscribed(sqlite_url, clock) as (hub, stack, url):
        contact = hub.add_contact(LEAD["email"], **JANE)
        created = hub.subscription_event("contact.creation", contact)
        path = f"/crm/v3/objects/contacts/{contact}"
        if status == 429:
            hub.throttle_next(retry_after=1e12, method="GET", path=path)
        else:
            hub.fail_next(status=477, retry_after=1e12, method="GET", path=path)
        assert await hub.send_subscription(url, [created]) == 503
        assert hub.answered_retry_after is not None
        assert 1 <= int(hub.answered_retry_after) <= 24 * 3600
        assert "Traceback" not in caplog.text
        assert not any(record.exc_info for record in caplog.records)
        assert await stack.services.store.count_leads() == 0
