"""A CRM notification applied, then the process killed (kill -9, out of memory) before its
done mark: the CRM's retry after the lease takes it again (storage/crm_inbox.py, `LEASE`). For
each kind of change, what a user sees after the retry is what they saw after the one apply:
the lead and its history (the `/lead` card, exports), the Slack posts, notes and DMs queued
(the outbox), the rotation's counts, the CRM writes queued back, what the reports count.

SPEC "nothing is lost on kill -9" brings the retry; docs/crm-inbound.md, "Once", promises it
changes nothing twice. HubSpot resends a notification after "any HTTP status code (4xx or
5xx)" and after a delivery it had no answer to within seconds (its Webhooks API guide,
"Retries"), which is what a killed process gives it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, select

from bot.crm.hubspot_in import HubSpotInbound
from bot.crm.port import CrmInbound
from bot.crm.salesforce_in import SalesforceInbound, parse_changes
from bot.domain.crm import Change, CrmChange
from bot.domain.refusal import Reason, Refusal
from bot.services.crm_inbound import CrmInboundService, SlackUnanswered
from bot.services.leads import Services
from storage.crm_inbox import LEASE, CrmInboxStore, Notification
from storage.tables import Base
from tests.conftest import lead_payload
from tests.integration.test_crm_inbound_store import NOW, Members, Portal, created, merged

SF_LEAD = "00Q5e00000AbCdEAAV"


@pytest.fixture
def inbound(services: Services) -> CrmInboundService:
    adapters: dict[str, CrmInbound] = {
        "hubspot": HubSpotInbound("secret", Portal()),
        "salesforce": SalesforceInbound("token"),
    }
    return CrmInboundService(services, CrmInboxStore(services.store.db), adapters, Members())


async def seen(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    """Everything stored but the CRM inbox itself (whose row is marked done by the retry):
    the leads, their events, the Slack and CRM outboxes, the rotation, the reports' runs."""

    def read(db: Connection) -> dict[str, list[tuple[Any, ...]]]:
        return {
            name: sorted((tuple(row) for row in db.execute(select(table)).all()), key=repr)
            for name, table in Base.metadata.tables.items()
            if name != "crm_inbox"
        }

    return await services.store.db.run(read)


async def applied_twice(
    inbound: CrmInboundService,
    services: Services,
    source: str,
    change: CrmChange,
    between: Callable[[], Awaitable[object]] | None = None,
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[tuple[Any, ...]]], int]:
    """`change` applied at NOW by a process killed before its done mark, (`between`: what
    people do meanwhile), then the CRM's retry after the lease: what was stored after the
    first apply (and `between`), after the retry, and how many changes the retry handled."""

    async def killed(*_: object) -> None:
        return None  # the process died before marking it done

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inbound.inbox, "done", killed)
        patch.setattr(inbound.inbox, "release", killed)
        first = await inbound.apply(source, [change], NOW)
    assert first.handled == 1, first
    if between is not None:
        await between()
    once = await seen(services)
    retried = await inbound.apply(source, [change], NOW + LEASE + timedelta(seconds=1))
    again = await inbound.apply(source, [change], NOW + 2 * LEASE)  # done now: ignored
    assert (again.handled, again.unknown) == (0, [])
    return once, await seen(services), retried.handled


def differs(once: dict[str, list[Any]], twice: dict[str, list[Any]]) -> dict[str, Any]:
    """The tables the retry changed, with the rows it added or changed."""
    return {
        name: [row for row in twice[name] if row not in once[name]]
        for name in once
        if once[name] != twice[name]
    }


async def a_lead_of_contact_7(inbound: CrmInboundService, services: Services) -> None:
    """HubSpot's contact 7, taken in (its done mark written: this apply ran to its end)."""
    assert (await inbound.apply("hubspot", [created("c0")], NOW - timedelta(hours=1))).handled


CHANGES: dict[str, tuple[str, CrmChange, bool]] = {
    # name: (source, the change, whether contact 7's lead is there before it)
    "created": ("hubspot", created(), False),
    "created_with_its_lead": (
        "salesforce",
        CrmChange(
            "sf-c1",
            Change.CREATED,
            crm_id=SF_LEAD,
            external_id=f"salesforce:{SF_LEAD}",
            lead=lead_payload(f"salesforce:{SF_LEAD}"),
        ),
        False,
    ),
    "owner": (
        "hubspot",
        CrmChange("o1", Change.OWNER, crm_id="7", owner_crm_id="555", at=NOW),
        True,
    ),
    "owner_without_its_time": (
        "hubspot",
        CrmChange("o2", Change.OWNER, crm_id="7", owner_email="tom@yourco.example"),
        True,
    ),
    "status": ("hubspot", CrmChange("s1", Change.STATUS, crm_id="7", value="IN_PROGRESS"), True),
    "stage_won": (
        "hubspot",
        CrmChange("g1", Change.STAGE, crm_id="7", value="won", amount=42500, at=NOW),
        True,
    ),
    "merged": ("hubspot", merged("m1", "9", "7"), True),
    "deleted": (
        "hubspot",
        CrmChange("d1", Change.DELETED, crm_id="7", external_id="hubspot:7", at=NOW),
        True,
    ),
}


@contextmanager
def taken_over_while_read(inbound: CrmInboundService, source: str, event_id: str) -> Iterator[None]:
    """Replica A, applying inside the block, is slow (past `LEASE`) after reading the lead:
    meanwhile the CRM's retry on replica B takes the notification `event_id` again."""
    find = inbound._lead
    slowed: list[bool] = []

    async def slow(found: CrmChange) -> Any:
        lead = await find(found)
        if not slowed:  # A waits; meanwhile B takes the CRM's retry
            slowed.append(True)
            assert isinstance(await inbound.inbox.take(source, event_id, NOW + LEASE), Notification)
        return lead

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inbound, "_lead", slow)
        yield


@pytest.mark.parametrize("kind", list(CHANGES))
async def test_a_change_applied_again_after_a_kill_before_its_done_mark_changes_nothing_more(
    inbound: CrmInboundService, services: Services, kind: str
) -> None:
    """Each kind of change: applied, killed before the done mark, retried after the lease.
    The retry handles nothing, and nothing stored changes: no second `crm_status` line in the
    lead's history (it used to be added again), no second post, note or DM, no count moved
    twice, no CRM write queued again."""
    source, change, with_lead = CHANGES[kind]
    if with_lead:
        await a_lead_of_contact_7(inbound, services)
    once, twice, handled = await applied_twice(inbound, services, source, change)
    assert differs(once, twice) == {}
    assert handled == 0
    assert await inbound.inbox.is_done(source, change.event_id) or kind == "deleted"


async def test_a_crm_status_is_one_line_in_the_leads_history_after_a_kill_and_the_retry(
    inbound: CrmInboundService, services: Services
) -> None:
    """The case seen: the lead status changed in the CRM once, shown twice in the lead's
    history after a kill between its write and its done mark."""
    await a_lead_of_contact_7(inbound, services)
    status = CrmChange("s1", Change.STATUS, crm_id="7", value="IN_PROGRESS")
    await applied_twice(inbound, services, "hubspot", status)
    lead = await services.store.by_crm_id("7")
    assert lead is not None
    lines = [e.data for e in await services.store.events(lead.id) if e.type == "crm_status"]
    assert lines == [{"status": "IN_PROGRESS"}]


async def test_an_owner_change_applied_again_after_a_kill_does_not_undo_a_managers_call(
    inbound: CrmInboundService, services: Services
) -> None:
    """The CRM hands the lead to U0REP2 (a Salesforce Flow's change need not say when it was
    made: no `at`); the process is killed before the done mark; a manager then hands the lead
    to U0REP1. The CRM's retry of the same notification must not hand it back to U0REP2 (a
    second "reassigned by the CRM" note, two more DMs, the rotation's counts moved again):
    the CRM changed its owner once, and that change was applied."""
    await a_lead_of_contact_7(inbound, services)
    owner = CrmChange("o1", Change.OWNER, crm_id="7", owner_email="tom@yourco.example")
    lead = await services.store.by_crm_id("7")
    assert lead is not None

    async def managers_call() -> None:
        await services.reassign(lead.id, "U0MGR1", "U0REP1", NOW + timedelta(minutes=1))

    once, twice, handled = await applied_twice(
        inbound, services, "hubspot", owner, between=managers_call
    )
    assert handled == 0
    assert differs(once, twice) == {}
    now = await services.store.by_crm_id("7")
    assert now is not None and now.suggested_owner == "U0REP1"


async def test_a_status_write_killed_before_it_commits_is_applied_once_by_the_retry(
    inbound: CrmInboundService, services: Services
) -> None:
    """Killed while its change is written (before the commit): nothing of it is stored, and
    the CRM's retry after the lease applies it, once (SPEC: nothing is lost on kill -9)."""
    await a_lead_of_contact_7(inbound, services)
    status = CrmChange("s1", Change.STATUS, crm_id="7", value="IN_PROGRESS")
    assert isinstance(
        await inbound.inbox.take("hubspot", "s1", NOW, "7"), Notification
    )  # then killed
    retried = await inbound.apply("hubspot", [status], NOW + LEASE)
    assert retried.handled == 1
    lead = await services.store.by_crm_id("7")
    assert lead is not None
    lines = [e for e in await services.store.events(lead.id) if e.type == "crm_status"]
    assert len(lines) == 1 and await inbound.inbox.is_done("hubspot", "s1")


@pytest.mark.parametrize("kind", ["status", "owner"])
async def test_a_replica_slower_than_the_lease_writes_nothing_once_another_took_it_over(
    inbound: CrmInboundService, services: Services, kind: str
) -> None:
    """Replica A takes a notification and is slow (past `LEASE`) before its write; the CRM's
    retry on replica B takes it again meanwhile. A's write then finds the notification no
    longer its take's: rolled back (no history line, note or DM of A's), and A answers 503
    as for a notification being applied, not 200 (acknowledging would lose it, should B
    die). B dies too: the CRM's retry after B's lease applies it, once."""
    await a_lead_of_contact_7(inbound, services)
    source, change, _ = CHANGES[kind]
    with taken_over_while_read(inbound, source, change.event_id):
        with pytest.raises(Refusal) as first:
            await inbound.apply(source, [change], NOW)  # A
    assert first.value.reason is Reason.BUSY and first.value.retry_after == LEASE.total_seconds()
    lead = await services.store.by_crm_id("7")
    assert lead is not None and lead.suggested_owner == "U0REP1"
    line = "crm_status" if kind == "status" else "reassigned"
    assert line not in [e.type for e in await services.store.events(lead.id)]
    assert not await inbound.inbox.is_done(source, change.event_id)  # B's, not A's

    retried = await inbound.apply(source, [change], NOW + 2 * LEASE)
    assert retried.handled == 1
    types = [e.type for e in await services.store.events(lead.id)]
    assert types.count(line) == 1 and await inbound.inbox.is_done(source, change.event_id)


async def test_a_replica_slower_than_the_lease_records_a_deal_stage_once_with_the_retry(
    inbound: CrmInboundService, services: Services
) -> None:
    """The kinds not marked done in their write's transaction (docs/crm-inbound.md, "Once":
    "The other changes are marked done just after their writes"): replica A is slower than
    `LEASE` with a deal stage, the CRM's retry on replica B takes it over. A still records it
    and answers 2xx (its write is the stage's own check, not the take); B then finds it
    recorded. One `won` on the lead's history, not two (the win rate counts it once)."""
    await a_lead_of_contact_7(inbound, services)
    source, change, _ = CHANGES["stage_won"]
    with taken_over_while_read(inbound, source, change.event_id):
        first = await inbound.apply(source, [change], NOW)  # A: applied, not refused
    assert first.handled == 1
    retried = await inbound.apply(source, [change], NOW + LEASE + timedelta(seconds=1))
    assert (retried.handled, retried.ignored) == (0, 1)
    lead = await services.store.by_crm_id("7")
    assert lead is not None
    stages = [e.type for e in await services.store.events(lead.id)]
    assert stages.count("won") == 1, stages


async def test_a_records_later_changes_wait_behind_one_a_retry_took_over_and_apply_in_order(
    inbound: CrmInboundService, services: Services
) -> None:
    """Replica A is slower than `LEASE` with contact 7's first status change; the CRM's retry
    takes it over. A's write of it is rolled back, and the second status change about the same
    contact in A's batch waits (not taken: answered 503 with the first), while contact 8's new
    record is applied. The retry of the batch then records 7's statuses in the CRM's order:
    the lead's status is the later one."""
    await a_lead_of_contact_7(inbound, services)
    first_status = CrmChange("s1", Change.STATUS, crm_id="7", value="IN_PROGRESS")
    second_status = CrmChange("s2", Change.STATUS, crm_id="7", value="CONNECTED")
    batch = [first_status, second_status]
    with taken_over_while_read(inbound, "hubspot", "s1"):
        with pytest.raises(Refusal) as refused:
            await inbound.apply("hubspot", batch, NOW)  # A
    assert refused.value.reason is Reason.BUSY
    assert not await inbound.inbox.taken("hubspot", "s2")  # waited, for the retry to apply
    retried = await inbound.apply("hubspot", batch, NOW + 2 * LEASE)
    assert retried.handled == 2
    lead = await services.store.by_crm_id("7")
    assert lead is not None
    lines = [e.data for e in await services.store.events(lead.id) if e.type == "crm_status"]
    assert lines == [{"status": "IN_PROGRESS"}, {"status": "CONNECTED"}]


class Reps:
    """Slack's members by email: the two reps of the enterprise pool."""

    async def member_by_email(self, email: str) -> str | None:
        return {"tom@yourco.example": "U0REP2", "ana@yourco.example": "U0REP1"}.get(email)


def sf_owner(event_id: str, email: str) -> CrmChange:
    """A Salesforce Flow's owner change, as its adapter reads it: the shape has no time of its
    own unless the Flow sends `at` (docs/crm-inbound.md), and this one does not."""
    body = {"event_id": event_id, "type": "owner", "lead_id": SF_LEAD}
    (change,) = parse_changes(body | {"owner_id": "005000000000001", "owner_email": email})
    assert change.at is None
    return change


async def a_salesforce_lead(inbound: CrmInboundService, services: Services) -> int:
    """Salesforce's Lead, taken in an hour before NOW (with U0REP1, the rotation's); its id."""
    inbound.directory = Reps()
    _, created_lead, _ = CHANGES["created_with_its_lead"]
    assert (await inbound.apply("salesforce", [created_lead], NOW - timedelta(hours=1))).handled
    lead = await services.store.by_crm_id(SF_LEAD)
    assert lead is not None and lead.suggested_owner == "U0REP1"
    return lead.id


async def owner_of(services: Services) -> str | None:
    lead = await services.store.by_crm_id(SF_LEAD)
    assert lead is not None
    return lead.owner or lead.suggested_owner


async def test_the_echo_of_an_owner_killed_before_its_done_mark_does_not_undo_a_later_call(
    inbound: CrmInboundService, services: Services
) -> None:
    """A manager hands the lead to U0REP2, which Handoff writes to Salesforce; Salesforce
    announces it back (the echo, no time of its own). The echo changes nothing, and the process
    is killed before its done mark. A manager then hands the lead to U0REP1. Salesforce's retry
    of the echo after the lease is older than that call (it first arrived before it): the lead
    stays U0REP1's, in Slack and so in the CRM. It used to go back to U0REP2, as if someone had
    changed the owner in Salesforce after the manager."""
    lead_id = await a_salesforce_lead(inbound, services)
    await services.reassign(lead_id, "U0MGR1", "U0REP2", NOW - timedelta(minutes=5))
    echo = sf_owner("sf-echo", "tom@yourco.example")

    async def killed(*_: object) -> None:
        return None  # the process died after deciding "nothing to do", before the done mark

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inbound.inbox, "done", killed)
        first = await inbound.apply("salesforce", [echo], NOW)
    assert (first.handled, first.ignored) == (0, 1)
    assert not await inbound.inbox.is_done("salesforce", "sf-echo")
    await services.reassign(lead_id, "U0MGR1", "U0REP1", NOW + timedelta(minutes=1))
    before = await seen(services)

    retried = await inbound.apply("salesforce", [echo], NOW + LEASE + timedelta(seconds=1))
    assert (retried.handled, retried.ignored) == (0, 1)
    assert await owner_of(services) == "U0REP1"
    assert differs(before, await seen(services)) == {}  # no note, DM or count of a handover
    assert await inbound.inbox.is_done("salesforce", "sf-echo")


@pytest.mark.parametrize(
    ("arrived", "owner"),
    [
        (timedelta(minutes=2), "U0REP1"),  # after the manager's call: the CRM's is newer
        (timedelta(seconds=30), "U0REP2"),  # before it: the manager's call is newer
    ],
)
async def test_a_crm_owner_change_killed_before_its_write_is_ordered_by_its_first_arrival(
    inbound: CrmInboundService, services: Services, arrived: timedelta, owner: str
) -> None:
    """Someone hands the lead to Ana (U0REP1) in Salesforce; the notification (no time of its
    own) is taken and the process killed before its write. A manager hands the lead to U0REP2
    in Slack at NOW + 1 minute. The retry after the lease applies the CRM's change when it
    first arrived after the manager's call, and not when before: the later call stands,
    whichever it is, as when the CRM says when its change was made (docs/crm-inbound.md,
    "Late")."""
    lead_id = await a_salesforce_lead(inbound, services)
    change = sf_owner("sf-o1", "ana@yourco.example")
    first = NOW + arrived
    taken = await inbound.inbox.take("salesforce", "sf-o1", first, SF_LEAD)
    assert isinstance(taken, Notification)  # then killed, before its write
    await services.reassign(lead_id, "U0MGR1", "U0REP2", NOW + timedelta(minutes=1))

    retried = await inbound.apply("salesforce", [change], first + LEASE + timedelta(seconds=1))
    assert retried.handled == (1 if owner == "U0REP1" else 0)
    assert await owner_of(services) == owner
    assert await inbound.inbox.is_done("salesforce", "sf-o1")


async def test_a_crm_status_killed_before_its_write_keeps_its_place_among_the_later_ones(
    inbound: CrmInboundService, services: Services
) -> None:
    """A status (no time of its own) is taken and the process killed before its write; a later
    status is applied meanwhile. The retry records the first where it came, before the later
    one: the lead's history ends with the CRM's status now, not with the older one."""
    await a_lead_of_contact_7(inbound, services)
    older = CrmChange("s1", Change.STATUS, crm_id="7", value="IN_PROGRESS")
    newer = CrmChange("s2", Change.STATUS, crm_id="7", value="CONNECTED")
    assert isinstance(await inbound.inbox.take("hubspot", "s1", NOW, "7"), Notification)
    assert (await inbound.apply("hubspot", [newer], NOW + timedelta(minutes=1))).handled == 1
    assert (await inbound.apply("hubspot", [older], NOW + LEASE)).handled == 1
    lead = await services.store.by_crm_id("7")
    assert lead is not None
    lines = [e.data for e in await services.store.events(lead.id) if e.type == "crm_status"]
    assert lines == [{"status": "IN_PROGRESS"}, {"status": "CONNECTED"}]


async def test_a_deal_won_killed_before_its_write_is_won_when_it_first_arrived(
    inbound: CrmInboundService, services: Services
) -> None:
    """A Salesforce stage change with no time of its own is taken and the process killed
    before its write; the CRM's retry comes hours later (HubSpot's are spread over a day). The
    deal is won when the change first arrived, not at the retry: the day the reports count it
    on does not move with the kill."""
    await a_salesforce_lead(inbound, services)
    (won,) = parse_changes(
        {"event_id": "sf-g1", "type": "stage", "lead_id": SF_LEAD} | {"stage": "won"}
    )
    assert won.at is None
    assert isinstance(await inbound.inbox.take("salesforce", "sf-g1", NOW, SF_LEAD), Notification)
    retried = await inbound.apply("salesforce", [won], NOW + timedelta(hours=6))
    assert retried.handled == 1
    lead = await services.store.by_crm_id(SF_LEAD)
    assert lead is not None and lead.won_at == NOW


def sf_owner_at(event_id: str, email: str, at: str) -> CrmChange:
    """A Salesforce Flow's owner change that sends its own time (`at`, Salesforce's clock)."""
    body = {"event_id": event_id, "type": "owner", "lead_id": SF_LEAD, "at": at}
    (change,) = parse_changes(body | {"owner_id": "005000000000001", "owner_email": email})
    assert change.at is not None
    return change


async def test_a_timeless_owner_change_is_not_late_for_a_crm_time_our_clock_had_not_reached(
    inbound: CrmInboundService, services: Services
) -> None:
    """Salesforce's clock is 3 minutes ahead of Handoff's (kept as told: up to 5 minutes,
    docs/crm-inbound.md, "Late"). One Flow hands the lead to Tom (U0REP2) and sends `at`;
    Handoff applies it at NOW. A minute later someone hands the lead to Ana in Salesforce, and
    another Flow, sending no `at`, tells it: it arrived after Tom's was applied, so it is the
    newer, and the lead is Ana's. It was ignored as older than NOW + 3 minutes, a time
    Handoff's clock had not reached when it arrived: Slack kept Tom while Salesforce said Ana,
    for good (the notification done)."""
    await a_salesforce_lead(inbound, services)
    ahead = (NOW + timedelta(minutes=3)).isoformat()
    tom = sf_owner_at("sf-t1", "tom@yourco.example", ahead)
    assert (await inbound.apply("salesforce", [tom], NOW)).handled == 1
    assert await owner_of(services) == "U0REP2"

    ana = sf_owner("sf-a1", "ana@yourco.example")
    applied = await inbound.apply("salesforce", [ana], NOW + timedelta(minutes=1))
    assert (applied.handled, applied.ignored) == (1, 0)
    assert await owner_of(services) == "U0REP1"


async def test_a_timeless_owner_change_retaken_is_ordered_by_our_clock_against_one_ahead(
    inbound: CrmInboundService, services: Services
) -> None:
    """As above, but the timeless change to Ana is taken and the process killed before its
    write: the retry after the lease applies it (it first arrived after Tom's was applied),
    while a manager's call made after its first arrival still stands (the lease's purpose)."""
    lead_id = await a_salesforce_lead(inbound, services)
    ahead = (NOW + timedelta(minutes=3)).isoformat()
    tom = sf_owner_at("sf-t1", "tom@yourco.example", ahead)
    assert (await inbound.apply("salesforce", [tom], NOW)).handled == 1
    ana = sf_owner("sf-a1", "ana@yourco.example")
    first = NOW + timedelta(minutes=1)
    assert isinstance(await inbound.inbox.take("salesforce", "sf-a1", first, SF_LEAD), Notification)

    retried = await inbound.apply("salesforce", [ana], first + LEASE + timedelta(seconds=1))
    assert retried.handled == 1
    assert await owner_of(services) == "U0REP1"

    # Another, taken and killed; a manager hands the lead to Tom after it first arrived: the
    # retry is older than that call, and Tom keeps the lead.
    again = sf_owner("sf-a2", "ana@yourco.example")
    later = first + LEASE + timedelta(minutes=1)
    assert isinstance(await inbound.inbox.take("salesforce", "sf-a2", later, SF_LEAD), Notification)
    await services.reassign(lead_id, "U0MGR1", "U0REP2", later + timedelta(seconds=30))
    retried = await inbound.apply("salesforce", [again], later + LEASE + timedelta(seconds=1))
    assert (retried.handled, retried.ignored) == (0, 1)
    assert await owner_of(services) == "U0REP2"


class SlackDown(Reps):
    """Slack's members by email, while `down` answers none (its 503)."""

    def __init__(self) -> None:
        self.down = True

    async def member_by_email(self, email: str) -> str | None:
        if self.down:
            raise SlackUnanswered("internal_error (HTTP 503)")
        found = await super().member_by_email(email)
        return found or {"raj@yourco.example": "U0REP9"}.get(email)


async def test_a_timeless_owner_change_released_on_a_failure_does_not_undo_a_later_call(
    inbound: CrmInboundService, services: Services
) -> None:
    """Someone hands the lead to Raj in Salesforce; the Flow's notification (no time of its
    own) arrives at NOW, but Slack's lookup of Raj answers 503: released, answered 503. A
    manager hands the lead to U0REP2 in Slack at NOW + 1 minute. Salesforce's retry comes at
    NOW + 5 minutes: it is the change that first arrived at NOW, older than the manager's
    call, which stands (in Slack, and so in the CRM). The retry used to count as a new
    arrival and hand the lead to Raj over the manager. A change made after the call (another
    notification) still applies."""
    lead_id = await a_salesforce_lead(inbound, services)
    slack = SlackDown()
    inbound.directory = slack
    raj = sf_owner("sf-r1", "raj@yourco.example")
    with pytest.raises(Refusal) as failed:
        await inbound.apply("salesforce", [raj], NOW)
    assert failed.value.reason is Reason.BUSY
    assert not await inbound.inbox.taken("salesforce", "sf-r1")  # the retry must run
    await services.reassign(lead_id, "U0MGR1", "U0REP2", NOW + timedelta(minutes=1))
    slack.down = False
    before = await seen(services)

    retried = await inbound.apply("salesforce", [raj], NOW + timedelta(minutes=5))
    assert (retried.handled, retried.ignored) == (0, 1)
    assert await owner_of(services) == "U0REP2"
    assert differs(before, await seen(services)) == {}  # no note, DM or count of a handover
    assert await inbound.inbox.is_done("salesforce", "sf-r1")

    later = sf_owner("sf-r2", "raj@yourco.example")
    applied = await inbound.apply("salesforce", [later], NOW + timedelta(minutes=6))
    assert (applied.handled, applied.ignored) == (1, 0)
    assert await owner_of(services) == "U0REP9"


async def test_an_owner_change_far_ahead_released_on_a_failure_does_not_undo_a_later_call(
    inbound: CrmInboundService, services: Services
) -> None:
    """A Flow sends `at` an hour ahead of the time (its local time written as UTC). Someone
    hands the lead to Raj in Salesforce; its notification arrives at NOW, Slack's lookup of
    Raj answers 503: released. A manager hands the lead to U0REP2 ten minutes later; the retry
    comes at NOW + 15 minutes. Its time counts as 5 minutes after it first arrived (as it is
    recorded), older than the manager's call, which stands. **Late** compared the hour-ahead
    time as told: for an hour, any late delivery of a change made before a manager's call
    handed the lead back over it."""
    lead_id = await a_salesforce_lead(inbound, services)
    slack = SlackDown()
    inbound.directory = slack
    raj = sf_owner_at("sf-r1", "raj@yourco.example", (NOW + timedelta(hours=1)).isoformat())
    with pytest.raises(Refusal):
        await inbound.apply("salesforce", [raj], NOW)
    await services.reassign(lead_id, "U0MGR1", "U0REP2", NOW + timedelta(minutes=10))
    slack.down = False

    retried = await inbound.apply("salesforce", [raj], NOW + timedelta(minutes=15))
    assert (retried.handled, retried.ignored) == (0, 1)
    assert await owner_of(services) == "U0REP2"
