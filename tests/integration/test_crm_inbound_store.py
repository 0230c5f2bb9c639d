"""The CRM inbound use case on SQLite and PostgreSQL: a created contact read through the CRM's
API, an owner found by the email the CRM gives, a notification that fails is not taken (so
the CRM's retry runs again), and a merge ties the merged records' leads to the one left."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, column, insert, select
from sqlalchemy import table as sa_table

from bot.crm.hubspot_in import HubSpotInbound, lead_from_contact
from bot.crm.port import CrmInbound
from bot.crm.salesforce_in import SalesforceInbound
from bot.domain.crm import Change, CrmChange
from bot.domain.refusal import Reason, Refusal
from bot.services.crm_inbound import CrmInboundService
from bot.services.erasure import forget
from bot.services.leads import Services
from storage import db
from storage.crm_inbox import KEEP, LEASE, CrmInboxStore, Notification, forget_records
from storage.tables import CrmInboxRow, CrmMergeRow, table
from tests.conftest import lead_payload
from tests.integration.conftest import Wakes, statements
from tests.integration.test_erasure_store import downgrade_to_before

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
PROPERTIES = {
    "email": "ana@acme.example",
    "firstname": "Ana",
    "jobtitle": "CTO",
    "company": "Acme",
    "numemployees": "2400",
    "country": "AU",
    "hubspotscore": "90",
}


class Portal:
    """HubSpot as the outbound adapter reads it (contacts and owners), in memory."""

    def __init__(self) -> None:
        self.contacts = {"7": PROPERTIES}
        self.owners = {"555": "tom@yourco.example"}
        self.down = False

    async def contact_lead(self, crm_id: str) -> dict[str, object] | None:
        if self.down:
            raise ConnectionError("HubSpot did not answer")
        found = self.contacts.get(crm_id)
        return lead_from_contact(crm_id, found) if found else None

    async def owner_email(self, owner_id: str) -> str | None:
        return self.owners.get(owner_id)


class Members:
    """Slack's members by email."""

    async def member_by_email(self, email: str) -> str | None:
        return {"tom@yourco.example": "U0REP2"}.get(email)


@pytest.fixture
def portal() -> Portal:
    return Portal()


@pytest.fixture
def inbound(services: Services, portal: Portal) -> CrmInboundService:
    adapters: dict[str, CrmInbound] = {
        "hubspot": HubSpotInbound("secret", portal),
        "salesforce": SalesforceInbound("token"),
    }
    return CrmInboundService(services, CrmInboxStore(services.store.db), adapters, Members())


def created(event_id: str = "1") -> CrmChange:
    return CrmChange(event_id, Change.CREATED, crm_id="7", external_id="hubspot:7")


async def test_a_created_contact_is_read_and_taken_in_once(
    inbound: CrmInboundService, services: Services
) -> None:
    applied = await inbound.apply("hubspot", [created()], NOW)
    assert (applied.handled, applied.ignored, applied.unknown) == (1, 0, [])
    lead = await services.store.by_crm_id("7")
    assert lead is not None and lead.external_id == "hubspot:7" and lead.name == "Ana"
    again = await inbound.apply("hubspot", [created(), created("2")], NOW)
    assert (again.handled, again.ignored) == (0, 2)  # a retry, and the same contact again
    assert await services.store.count_leads() == 1


async def test_an_owner_is_found_by_the_email_the_crm_gives(
    inbound: CrmInboundService, services: Services
) -> None:
    await inbound.apply("hubspot", [created()], NOW)
    lead = await services.store.by_crm_id("7")
    assert lead is not None and lead.suggested_owner == "U0REP1"
    owner = CrmChange("3", Change.OWNER, crm_id="7", owner_crm_id="555")
    applied = await inbound.apply("hubspot", [owner], NOW)
    assert applied.handled == 1
    moved = await services.store.by_crm_id("7")
    assert moved is not None and (moved.owner, moved.suggested_owner) == (None, "U0REP2")


async def test_a_change_that_fails_is_not_taken(
    inbound: CrmInboundService, services: Services, portal: Portal
) -> None:
    portal.down = True
    with pytest.raises(ConnectionError):
        await inbound.apply("hubspot", [created()], NOW)
    assert not await inbound.inbox.taken("hubspot", "1")
    portal.down = False
    applied = await inbound.apply("hubspot", [created()], NOW)  # HubSpot's retry
    assert applied.handled == 1 and await inbound.inbox.taken("hubspot", "1")


async def test_a_lead_sent_under_another_id_is_found_by_email_and_tied_to_the_record(
    inbound: CrmInboundService, services: Services
) -> None:
    await services.intake(lead_payload("hs-1"), NOW, source="api")
    status = CrmChange(
        "s1",
        Change.STATUS,
        crm_id="00Q5e00000AbCdEAAV",
        email="hs-1@northwind.example",
        external_id="salesforce:00Q5e00000AbCdEAAV",
        value="Working - Contacted",
    )
    applied = await inbound.apply("salesforce", [status], NOW)
    assert (applied.handled, applied.unknown) == (1, [])
    lead = await services.store.by_crm_id("00Q5e00000AbCdEAAV")
    assert lead is not None and lead.external_id == "hs-1"
    stranger = CrmChange("s2", Change.STATUS, crm_id="00Q5e00000ZzZzZAAV", email="x@y.example")
    assert (await inbound.apply("salesforce", [stranger], NOW)).unknown == ["00Q5e00000ZzZzZAAV"]


def merged(event_id: str, result: str, *ids: str) -> CrmChange:
    """HubSpot's `contact.merge`, as the adapter reads it: `ids` are gone, `result` remains."""
    return CrmChange(event_id, Change.MERGED, crm_id=result, merged_ids=ids, at=NOW)


async def test_a_merge_ties_the_merged_records_leads_to_the_record_that_remains(
    inbound: CrmInboundService, services: Services
) -> None:
    await inbound.apply("hubspot", [created()], NOW)  # the lead of contact 7
    await services.intake(lead_payload("hs-2", crm_id="8"), NOW, source="api")
    await services.intake(lead_payload("hs-3", crm_id="12"), NOW, source="api")
    applied = await inbound.apply("hubspot", [merged("m1", "9", "7", "8")], NOW)
    assert (applied.handled, applied.ignored, applied.unknown) == (1, 0, [])
    for external_id in ("hubspot:7", "hs-2"):
        lead = await services.store.by_external_id(external_id)
        assert lead is not None and lead.crm_id == "9"
        (tied,) = [e for e in await services.store.events(lead.id) if e.type == "crm_merged"]
        assert tied.actor == "crm" and tied.data == {"crm_id": "9", "merged": ["7", "8"]}
    other = await services.store.by_external_id("hs-3")
    assert other is not None and other.crm_id == "12"  # not in the merge: left as it was
    assert await services.store.by_crm_id("7") is None

    status = CrmChange("3", Change.STATUS, crm_id="9", value="OPEN", at=NOW)
    assert (await inbound.apply("hubspot", [status], NOW)).handled == 1  # found under 9 now

    again = await inbound.apply("hubspot", [merged("m1", "9", "7", "8")], NOW)  # the retry
    assert (again.handled, again.ignored) == (0, 1)
    # The same merge told again under another key (a new eventId) ties nothing either.
    repeat = await inbound.apply("hubspot", [merged("m2", "9", "7", "8")], NOW)
    assert (repeat.handled, repeat.ignored, repeat.unknown) == (0, 1, [])
    lead = await services.store.by_external_id("hubspot:7")
    assert lead is not None
    events = await services.store.events(lead.id)
    assert [e.type for e in events].count("crm_merged") == 1


async def test_a_merge_of_records_without_leads_is_taken_not_left_for_a_retry(
    inbound: CrmInboundService, services: Services
) -> None:
    """HubSpot retries any answer but a 2xx, for days: a merge of contacts Handoff has no
    lead for is ignored like an event Handoff does not follow, not "unknown" (a 404)."""
    applied = await inbound.apply("hubspot", [merged("m1", "99", "98")], NOW)
    assert (applied.handled, applied.ignored, applied.unknown) == (0, 1, [])
    assert await inbound.inbox.taken("hubspot", "m1")


async def test_an_erased_lead_is_never_tied_again(
    inbound: CrmInboundService, services: Services
) -> None:
    await inbound.apply("hubspot", [created()], NOW)
    deleted = CrmChange("d1", Change.DELETED, crm_id="7", external_id="hubspot:7", at=NOW)
    assert (await inbound.apply("hubspot", [deleted], NOW)).handled == 1
    erased = await services.store.by_erased_id(crm_id="7")
    assert erased is not None and erased.erased_at is not None
    # Neither the record's id nor (from a CRM that sent ids of any shape) the digest itself.
    digest = services.store.erasure_key.tombstone("7")
    for change in (merged("m1", "9", "7"), merged("m2", "9", digest)):
        applied = await inbound.apply("hubspot", [change], NOW)
        assert (applied.handled, applied.ignored) == (0, 1)
    assert await services.store.by_crm_id("9") is None
    kept = await services.store.get(erased.id)
    assert kept is not None and kept.crm_id == digest


async def test_the_deletion_of_a_merged_away_record_erases_nobody(
    inbound: CrmInboundService, services: Services
) -> None:
    """After a merge, the merged-away contact is gone from HubSpot, and a deletion of it may
    follow. The person lives on in the contact that remains: their lead, tied to it now, keeps
    its data. (Found by its external id `hubspot:7`, it used to be erased.)"""
    await inbound.apply("hubspot", [created()], NOW)  # the lead of contact 7
    assert (await inbound.apply("hubspot", [merged("m1", "9", "7")], NOW)).handled == 1
    deleted = CrmChange("d1", Change.DELETED, crm_id="7", external_id="hubspot:7", at=NOW)
    applied = await inbound.apply("hubspot", [deleted], NOW)
    assert (applied.handled, applied.ignored, applied.unknown) == (0, 1, [])
    lead = await services.store.by_crm_id("9")
    assert lead is not None and lead.erased_at is None and lead.external_id == "hubspot:7"


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_merges_told_in_any_order_tie_the_leads_to_the_contact_that_remains(
    inbound: CrmInboundService, services: Services, order: tuple[int, ...]
) -> None:
    """HubSpot does not promise to deliver its notifications in the order they happened. 61
    merged into 62, 62 into 63, 63 into 64: whatever order the three merges come in, the leads
    of 61 and 63 end up tied to 64, whose changes then reach them; the retries change nothing."""
    await services.intake(lead_payload("hs-61", crm_id="61"), NOW, source="api")
    await services.intake(lead_payload("hs-63", crm_id="63"), NOW, source="api")
    merges = [merged("m1", "62", "61"), merged("m2", "63", "62"), merged("m3", "64", "63")]
    for index in order:
        applied = await inbound.apply("hubspot", [merges[index]], NOW)
        assert applied.unknown == []
    for external_id in ("hs-61", "hs-63"):
        lead = await services.store.by_external_id(external_id)
        assert lead is not None and lead.crm_id == "64", (order, external_id, lead)
    status = CrmChange("s1", Change.STATUS, crm_id="64", value="OPEN", at=NOW)
    assert (await inbound.apply("hubspot", [status], NOW)).handled == 1

    lead = await services.store.by_external_id("hs-61")
    assert lead is not None
    before = await services.store.events(lead.id)
    retried = [merged(f"{m.event_id}-again", m.crm_id or "", *m.merged_ids) for m in merges]
    applied = await inbound.apply("hubspot", retried, NOW)
    assert (applied.handled, applied.unknown) == (0, [])
    assert len(await services.store.events(lead.id)) == len(before)


async def test_a_change_of_a_merged_away_contact_told_late_reaches_its_lead(
    inbound: CrmInboundService, services: Services
) -> None:
    """A change made to contact 7 before it was merged into 9, delivered after the merge, is
    applied to the lead that was 7's (as it would have been had it come first): not answered
    "unknown", which HubSpot retries for days and then drops."""
    await services.intake(lead_payload("hs-2", crm_id="7"), NOW, source="api")
    assert (await inbound.apply("hubspot", [merged("m1", "9", "7")], NOW)).handled == 1
    late = CrmChange("s1", Change.STATUS, crm_id="7", external_id="hubspot:7", value="OPEN", at=NOW)
    applied = await inbound.apply("hubspot", [late], NOW)
    assert (applied.handled, applied.unknown) == (1, [])
    lead = await services.store.by_external_id("hs-2")
    assert lead is not None and lead.crm_id == "9"
    assert "crm_status" in [e.type for e in await services.store.events(lead.id)]


async def test_erasing_a_person_forgets_their_merged_contacts_ids_too(
    inbound: CrmInboundService, services: Services, portal: Portal
) -> None:
    """An erased lead keeps its CRM id only as a digest; the record of its merges (7 and 8
    into 9) named the person's contacts in plain: it keeps only their digests, tied to the
    lead's. HubSpot's late events about 7 and 8 are then known as the erased person's:
    ignored, not "unknown" (a 404, which HubSpot retries for a day)."""
    await inbound.apply("hubspot", [created()], NOW)  # the lead of contact 7
    assert (await inbound.apply("hubspot", [merged("m1", "9", "7", "8")], NOW)).handled == 1
    deleted = CrmChange("d1", Change.DELETED, crm_id="9", at=NOW)
    assert (await inbound.apply("hubspot", [deleted], NOW)).handled == 1

    def merges(db: Connection) -> list[tuple[str, str]]:
        rows = db.execute(select(CrmMergeRow.merged_id, CrmMergeRow.crm_id)).all()
        return sorted((str(gone), str(kept)) for gone, kept in rows)

    key = services.store.erasure_key
    digests = sorted((key.tombstone(gone), key.tombstone("9")) for gone in ("7", "8"))
    assert await services.store.db.run(merges) == digests
    erased = await services.store.by_erased_id(crm_id="9")
    assert erased is not None and erased.erased_at is not None
    for gone in ("7", "8"):
        assert await services.store.by_erased_id(crm_id=gone) == erased
    portal.contacts["8"] = PROPERTIES  # its creation told late: the contact is readable
    late = [
        CrmChange("s1", Change.STATUS, crm_id="8", external_id="hubspot:8", value="OPEN"),
        CrmChange("d2", Change.DELETED, crm_id="8", external_id="hubspot:8"),
        CrmChange("c1", Change.CREATED, crm_id="8", external_id="hubspot:8"),
    ]
    applied = await inbound.apply("hubspot", late, NOW)
    assert (applied.handled, applied.ignored, applied.unknown) == (0, 3, [])
    assert await services.store.count_leads() == 1


async def test_the_contact_an_erased_persons_contact_is_merged_into_is_theirs_too(
    inbound: CrmInboundService, services: Services, portal: Portal
) -> None:
    """Contact 7's person is erased; later 7 (and 8) are merged into contact 9, which Handoff
    never had and which remains. HubSpot merges duplicates of one person: 9 is the erased
    person's record now, remembered (with 8) as a digest only, tied to the erased lead. Its
    later events are ignored, not "unknown" (a 404, which HubSpot retries for a day), and its
    creation or a workflow's call about it takes nobody in."""
    await inbound.apply("hubspot", [created()], NOW)  # the lead of contact 7
    (erased,) = await forget(services.store, Wakes(), "hubspot:7", "cli", NOW)
    applied = await inbound.apply("hubspot", [merged("m1", "9", "7", "8")], NOW)
    assert (applied.handled, applied.ignored, applied.unknown) == (0, 1, [])

    def merges(db: Connection) -> list[tuple[str, str]]:
        rows = db.execute(select(CrmMergeRow.merged_id, CrmMergeRow.crm_id)).all()
        return sorted((str(gone), str(kept)) for gone, kept in rows)

    key = services.store.erasure_key
    digests = sorted((key.tombstone(kept), key.tombstone("7")) for kept in ("8", "9"))
    assert await services.store.db.run(merges) == digests  # no id in plain
    for kept in ("9", "8"):
        found = await services.store.by_erased_id(crm_id=kept)
        assert found is not None and found.id == erased.lead_id
    portal.contacts["9"] = PROPERTIES  # HubSpot keeps the contact: it is readable
    late = [
        CrmChange("s1", Change.STATUS, crm_id="9", external_id="hubspot:9", value="OPEN"),
        CrmChange("c1", Change.CREATED, crm_id="9", external_id="hubspot:9"),
        CrmChange(
            "workflow:contact:9:ab12",
            Change.CREATED,
            crm_id="9",
            external_id="hubspot:9",
            email=PROPERTIES["email"],
            lead=lead_from_contact("9", PROPERTIES),
        ),
        CrmChange("d1", Change.DELETED, crm_id="9", external_id="hubspot:9"),
        merged("m2", "10", "9"),  # and merged on: 10 is theirs as well
        CrmChange("s2", Change.STATUS, crm_id="10", external_id="hubspot:10", value="OPEN"),
        merged("m3", "9", "7", "8"),  # the first merge told again, under another key
    ]
    applied = await inbound.apply("hubspot", late, NOW)
    assert (applied.handled, applied.ignored, applied.unknown) == (0, len(late), [])
    assert await services.store.count_leads() == 1
    assert await inbound.inbox.count() == 0
    more = sorted([*digests, (key.tombstone("10"), key.tombstone("7"))])
    assert await services.store.db.run(merges) == more


async def test_erasing_a_person_forgets_the_crm_notifications_that_named_them(
    inbound: CrmInboundService, services: Services
) -> None:
    """The CRM inbox keeps each notification's key, which names the contact in plain
    (`<eventId>:<type>:<objectId>`, `workflow:contact:<id>:…`): `handoff forget` drops the
    person's (their contact 9, and 7 and 8 merged into it), in the erasure's transaction, and
    keeps everybody else's. A late retry of the person's notifications is still ignored (the
    erased lead is known by its digest), and leaves no key of theirs behind either."""
    await inbound.apply("hubspot", [created("1:contact.creation:7")], NOW)  # contact 7's lead
    await services.intake(lead_payload("hs-3", crm_id="12"), NOW, source="api")
    theirs = [
        merged("2:contact.merge:7:8", "9", "7", "8"),
        CrmChange("workflow:contact:9:ab12", Change.STATUS, crm_id="9", value="OPEN", at=NOW),
    ]
    other = CrmChange("3:contact.propertyChange:12:x", Change.STATUS, crm_id="12", value="NEW")
    applied = await inbound.apply("hubspot", [*theirs, other], NOW)
    assert (applied.handled, applied.unknown) == (3, [])
    assert await inbound.inbox.count() == 4

    (erased,) = await forget(services.store, Wakes(), "hubspot:7", "cli", NOW)

    assert await inbound.inbox.count() == 1  # only contact 12's
    assert await inbound.inbox.taken("hubspot", other.event_id)
    for key in ("1:contact.creation:7", *(change.event_id for change in theirs)):
        assert not await inbound.inbox.taken("hubspot", key), key
    # HubSpot's late retries: answered (ignored, not "unknown", which it retries for days),
    # changing nothing, and keeping no key of the person's.
    late = [
        *theirs,
        CrmChange("4:contact.deletion:7", Change.DELETED, crm_id="7", external_id="hubspot:7"),
    ]
    applied = await inbound.apply("hubspot", late, NOW)
    assert (applied.handled, applied.ignored, applied.unknown) == (0, 3, [])
    assert await inbound.inbox.count() == 1
    lead = await services.store.get(erased.lead_id)
    assert lead is not None and lead.erased_at is not None and lead.crm_id != "9"


async def test_the_crm_inbox_keeps_a_notification_past_the_crms_retries_then_drops_it(
    inbound: CrmInboundService, services: Services
) -> None:
    """Retention: a notification's key is kept `KEEP` (HubSpot retries for up to 3 days), so
    every retry of it is still refused; after that the hourly job drops it."""
    await inbound.apply("hubspot", [created("1:contact.creation:7")], NOW)
    later = NOW + timedelta(days=1)
    status = CrmChange("5:contact.propertyChange:7:hs_lead_status", Change.STATUS, crm_id="7")
    await inbound.apply("hubspot", [status], later)
    assert KEEP >= timedelta(days=3) + timedelta(days=1)  # the longest retry window, and a margin

    assert await inbound.inbox.prune(NOW + KEEP - timedelta(seconds=1) - KEEP) == 0
    retried = await inbound.apply("hubspot", [created("1:contact.creation:7")], NOW + KEEP)
    assert (retried.handled, retried.ignored) == (0, 1)  # still refused on its last day
    assert await inbound.inbox.prune(NOW + KEEP + timedelta(seconds=1) - KEEP) == 1
    assert not await inbound.inbox.taken("hubspot", "1:contact.creation:7")
    assert await inbound.inbox.taken("hubspot", status.event_id)  # a day younger: kept
    assert await inbound.inbox.prune(later + timedelta(seconds=1), batch=1) == 1
    assert await inbound.inbox.count() == 0


async def test_a_notification_taken_by_a_process_that_died_is_applied_by_the_crms_retry(
    inbound: CrmInboundService, services: Services
) -> None:
    """kill -9 (or an OOM) between taking a notification and applying it: nothing of it was
    applied, and the CRM's retry of it applies it once the lease is over (SPEC: nothing is
    lost on kill -9). Before that, the retry is the same delivery on another replica still
    applying it: ignored, not applied twice."""
    await inbound.inbox.take("hubspot", "1", NOW, "7")  # then killed, before applying it

    with pytest.raises(Refusal) as early:  # 503: not applied twice, nor acknowledged
        await inbound.apply("hubspot", [created()], NOW + LEASE - timedelta(seconds=1))
    assert early.value.retry_after == LEASE.total_seconds()
    assert await services.store.count_leads() == 0

    retried = await inbound.apply("hubspot", [created()], NOW + LEASE)
    assert (retried.handled, retried.ignored) == (1, 0)
    lead = await services.store.by_crm_id("7")
    assert lead is not None and lead.name == "Ana"
    assert await inbound.inbox.is_done("hubspot", "1")
    again = await inbound.apply("hubspot", [created()], NOW + 2 * LEASE)
    assert (again.handled, again.ignored) == (0, 1)
    assert await services.store.count_leads() == 1


async def test_a_retry_while_another_replica_applies_the_notification_is_not_applied_twice(
    inbound: CrmInboundService, services: Services, portal: Portal
) -> None:
    """HubSpot sends a notification again when its first delivery is slow to answer: the
    retry, on another replica while the first one still reads the contact, is not applied,
    and answered 503 (acknowledging it would lose the change should the first one fail); the
    first one applies it, once, and the CRM's next retry is ignored. The change after it in
    the batch about another record is applied; the one about the same record waits with it."""
    answers: list[Refusal] = []
    read = portal.contact_lead
    other = CrmChange("s9", Change.STATUS, crm_id="12", value="OPEN")
    same = CrmChange("s7", Change.STATUS, crm_id="7", value="OPEN")

    async def slow(crm_id: str) -> dict[str, object] | None:
        if not answers:  # the retry arrives while this replica reads the contact
            with pytest.raises(Refusal) as retry:
                batch = [created(), same, other]
                await inbound.apply("hubspot", batch, NOW + timedelta(seconds=20))
            answers.append(retry.value)
        return await read(crm_id)

    await services.intake(lead_payload("hs-12", crm_id="12"), NOW, source="api")
    portal.contact_lead = slow  # type: ignore[method-assign]
    first = await inbound.apply("hubspot", [created()], NOW)
    (refused,) = answers
    assert refused.reason is Reason.BUSY and refused.retry_after == LEASE.total_seconds()
    assert (first.handled, first.ignored) == (1, 0)
    assert await services.store.count_leads() == 2
    assert await inbound.inbox.is_done("hubspot", other.event_id)
    assert not await inbound.inbox.taken("hubspot", same.event_id)
    later = await inbound.apply("hubspot", [created(), same], NOW + timedelta(minutes=1))
    assert (later.handled, later.ignored) == (1, 1)


async def test_replicas_taking_an_abandoned_notification_at_once_take_it_once(
    inbound: CrmInboundService,
) -> None:
    """Two replicas get the CRM's retry of an abandoned notification at the same moment:
    one takes it again (a conditional update), the other sees it being applied."""
    await inbound.inbox.take("hubspot", "1", NOW, "7")
    later = NOW + LEASE + timedelta(minutes=1)
    found = await asyncio.gather(
        inbound.inbox.take("hubspot", "1", later, "7"),
        inbound.inbox.take("hubspot", "1", later, "7"),
    )
    assert sorted("taken" if isinstance(f, Notification) else f for f in found) == [
        "applying",
        "taken",
    ]
    (retaken,) = [f for f in found if isinstance(f, Notification)]
    assert (retaken.taken_at, retaken.arrived_at) == (later, NOW)  # it first arrived at NOW


async def test_a_change_applied_just_before_a_kill_is_harmless_to_apply_again(
    inbound: CrmInboundService, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after a change was applied but before its notification was marked done: the
    CRM's retry after the lease applies it again, which changes nothing (the same owner, the
    contact already taken in, the same deal stage by its id)."""
    await inbound.apply("hubspot", [created()], NOW)
    lead = await services.store.by_crm_id("7")
    assert lead is not None

    async def killed(*_: object) -> None:
        return None  # the process died before marking it done

    changes = [
        created("c2"),
        CrmChange("o1", Change.OWNER, crm_id="7", owner_crm_id="555", at=NOW),
        CrmChange("g1", Change.STAGE, crm_id="7", value="opportunity", at=NOW),
    ]
    with monkeypatch.context() as patch:
        patch.setattr(inbound.inbox, "done", killed)
        first = await inbound.apply("hubspot", changes, NOW)
    assert (first.handled, first.ignored) == (2, 1)  # the owner and the stage; c2: intake's
    events = len(await services.store.events(lead.id))
    moved = await services.store.by_crm_id("7")
    assert moved is not None and moved.suggested_owner == "U0REP2"

    retried = await inbound.apply("hubspot", changes, NOW + LEASE)
    assert (retried.handled, retried.ignored) == (0, 3)
    assert len(await services.store.events(lead.id)) == events
    assert await services.store.count_leads() == 1
    assert all([await inbound.inbox.is_done("hubspot", c.event_id) for c in changes])


async def test_notifications_recorded_before_the_upgrade_are_not_applied_again(
    inbound: CrmInboundService, services: Services
) -> None:
    """Migration 0036 down and up again: the inbox's rows from before it (each applied, or
    released when it failed) are done, so the CRM's retries of them are still ignored."""
    engine = services.store.db.engine
    async with engine.connect() as connection:  # out of a transaction, as `db.upgrade` runs
        await connection.run_sync(downgrade_to_before("_crm_inbox_done.py"))
        inbox = sa_table("crm_inbox", column("source"), column("event_id"), column("received_at"))
        await connection.execute(
            insert(inbox).values(source="hubspot", event_id="1", received_at=NOW)
        )
        await connection.commit()
    await db.upgrade(engine)

    retried = await inbound.apply("hubspot", [created()], NOW + timedelta(days=1))
    assert (retried.handled, retried.ignored) == (0, 1)
    assert await services.store.count_leads() == 0
    assert await inbound.inbox.is_done("hubspot", "1")
    assert await inbound.inbox.prune(NOW + timedelta(seconds=1)) == 1  # retention as before


async def test_notifications_taken_before_the_upgrade_first_arrived_when_received(
    inbound: CrmInboundService,
) -> None:
    """Migration 0037 down and up again: a row from before it (taken at NOW, never done: its
    process killed) first arrived at its `received_at`, so the CRM's retry after the lease
    takes it again as first arrived at NOW, not at the retry; a row done stays done."""
    engine = inbound.inbox.db.engine
    async with engine.connect() as connection:  # out of a transaction, as `db.upgrade` runs
        await connection.run_sync(downgrade_to_before("_crm_inbox_first_received.py"))
        inbox = sa_table(
            "crm_inbox",
            column("source"),
            column("event_id"),
            column("received_at"),
            column("done_at"),
        )
        rows = [
            {"source": "salesforce", "event_id": "o1", "received_at": NOW, "done_at": None},
            {"source": "salesforce", "event_id": "o2", "received_at": NOW, "done_at": NOW},
        ]
        await connection.execute(insert(inbox), rows)
        await connection.commit()
    await db.upgrade(engine)

    retaken = await inbound.inbox.take("salesforce", "o1", NOW + LEASE)
    assert isinstance(retaken, Notification)
    assert (retaken.taken_at, retaken.arrived_at) == (NOW + LEASE, NOW)
    assert await inbound.inbox.take("salesforce", "o2", NOW + LEASE) == "done"


async def test_the_upgrade_to_first_arrivals_rewrites_no_row_of_the_inbox(
    inbound: CrmInboundService,
) -> None:
    """Migration 0037 only adds the column: it rewrites no row of the inbox. On PostgreSQL a
    rewrite of every row runs in the migration's transaction, after its ALTER TABLE, so the
    inbox stays locked against every replica's take until it ends (measured: 2 s for 200,000
    rows, 14 s for a million, the 7 days a busy portal keeps): during a rolling upgrade the
    CRMs' deliveries wait past their timeouts. Nothing needs filling: a take again reads a row
    without a first arrival as first arrived at its `received_at` (the test above)."""
    engine = inbound.inbox.db.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("a row's version (xmin) is PostgreSQL's; SQLite is one process")
    inbox = sa_table(
        "crm_inbox", column("source"), column("event_id"), column("received_at"), column("xmin")
    )
    async with engine.connect() as connection:  # out of a transaction, as `db.upgrade` runs
        await connection.run_sync(downgrade_to_before("_crm_inbox_first_received.py"))
        rows = [{"source": "salesforce", "event_id": f"o{n}", "received_at": NOW} for n in (1, 2)]
        await connection.execute(insert(inbox), rows)
        await connection.commit()
        versions = select(inbox.c.event_id, inbox.c.xmin).order_by(inbox.c.event_id)
        before = (await connection.execute(versions)).all()
        await connection.commit()
    await db.upgrade(engine)
    async with engine.connect() as connection:
        assert (await connection.execute(versions)).all() == before


async def test_a_row_of_a_replica_from_before_the_upgrade_keeps_its_first_arrival(
    inbound: CrmInboundService,
) -> None:
    """During a rolling upgrade a replica of the code before 0037 takes a notification: its
    row has no first arrival. Taken again after the lease by the new code, it first arrived at
    its `received_at`, and a later take keeps that."""
    old = {"source": "salesforce", "event_id": "o1", "received_at": NOW, "done_at": None}
    statement = insert(table(CrmInboxRow)).values(old)  # the old replica's take: no first
    await inbound.inbox.db.run(lambda db: db.execute(statement))
    again = NOW + LEASE
    retaken = await inbound.inbox.take("salesforce", "o1", again)
    assert isinstance(retaken, Notification) and retaken.arrived_at == NOW
    third = await inbound.inbox.take("salesforce", "o1", again + LEASE)
    assert isinstance(third, Notification) and third.arrived_at == NOW


async def test_a_replica_giving_up_a_notification_another_took_again_leaves_it_to_that_one(
    inbound: CrmInboundService,
) -> None:
    """Replica A is slow (past `LEASE`) applying a notification; the CRM's retry on replica B
    takes it again. A then fails and releases its take: B's take stands, so a third delivery
    meanwhile is answered as being applied (not applied a second time at once), and, once B
    has applied it, its retries are ignored."""
    inbox = inbound.inbox
    assert isinstance(await inbox.take("hubspot", "1", NOW, "7"), Notification)  # A
    again = NOW + LEASE
    assert isinstance(
        await inbox.take("hubspot", "1", again, "7"), Notification
    )  # B: A looked dead
    await inbox.release(Notification("hubspot", "1", NOW))  # A fails after all
    third = again + timedelta(seconds=5)
    assert await inbox.take("hubspot", "1", third, "7") == "applying"  # B is applying it
    await inbox.done(Notification("hubspot", "1", again), third)  # B applied it

    assert isinstance(await inbox.take("hubspot", "2", NOW, "7"), Notification)  # A
    assert isinstance(await inbox.take("hubspot", "2", again, "7"), Notification)  # B
    await inbox.done(Notification("hubspot", "2", again), again)  # B applied it
    await inbox.release(Notification("hubspot", "2", NOW))  # then A fails
    assert await inbox.take("hubspot", "2", third, "7") == "done"  # not applied again


async def crm_statuses(services: Services) -> list[tuple[str | None, datetime]]:
    """Contact 7's lead's `crm_status` lines in its history's order (the `/lead` timeline's,
    whose last line is the CRM's status now): the status and when it is dated."""
    lead = await services.store.by_crm_id("7")
    assert lead is not None
    events = await services.store.events(lead.id)
    return [(e.data.get("status"), e.at) for e in events if e.type == "crm_status"]


async def test_two_status_changes_delivered_newest_first_end_with_the_newer(
    inbound: CrmInboundService, services: Services
) -> None:
    """HubSpot does not promise the order of its notifications (its Webhooks API guide): the
    lead status set to CONNECTED a minute after IN_PROGRESS arrives first. Each is dated when
    HubSpot says it was made (`occurredAt`), so the lead's history ends with CONNECTED, the
    CRM's status now. It ended with IN_PROGRESS, dated at its later arrival."""
    await inbound.apply("hubspot", [created()], NOW - timedelta(hours=1))
    older = CrmChange("s1", Change.STATUS, crm_id="7", value="IN_PROGRESS", at=NOW)
    newer = CrmChange("s2", Change.STATUS, crm_id="7", value="CONNECTED", at=NOW + MINUTE)
    assert (await inbound.apply("hubspot", [newer], NOW + 2 * MINUTE)).handled == 1
    assert (await inbound.apply("hubspot", [older], NOW + 3 * MINUTE)).handled == 1
    assert await crm_statuses(services) == [("IN_PROGRESS", NOW), ("CONNECTED", NOW + MINUTE)]


async def test_a_status_time_far_ahead_of_our_clock_counts_as_five_minutes_ahead(
    inbound: CrmInboundService, services: Services
) -> None:
    """A CRM time is kept as told up to 5 minutes ahead of Handoff's clock (HubSpot's requests
    are taken within 5 minutes of it), as an owner change's is: one an hour ahead (a clock
    gone wrong) is dated 5 minutes ahead, and does not stay the CRM's status over the changes
    made in the next hour."""
    await inbound.apply("hubspot", [created()], NOW - timedelta(hours=1))
    wrong = CrmChange("s1", Change.STATUS, crm_id="7", value="IN_PROGRESS", at=NOW + HOUR)
    assert (await inbound.apply("hubspot", [wrong], NOW)).handled == 1
    later = NOW + 10 * MINUTE
    next_one = CrmChange("s2", Change.STATUS, crm_id="7", value="CONNECTED", at=later)
    assert (await inbound.apply("hubspot", [next_one], later)).handled == 1
    assert await crm_statuses(services) == [
        ("IN_PROGRESS", NOW + 5 * MINUTE),
        ("CONNECTED", later),
    ]


async def test_a_status_marked_done_with_its_write_is_not_marked_done_again(
    inbound: CrmInboundService, services: Services
) -> None:
    """A status is marked done in its write's transaction (`finish`): the inbox row is
    updated once, by that, with no second UPDATE that changes nothing."""
    await inbound.apply("hubspot", [created()], NOW - timedelta(hours=1))
    status = CrmChange("s1", Change.STATUS, crm_id="7", value="IN_PROGRESS", at=NOW)
    with statements("UPDATE crm_inbox") as sent:
        assert (await inbound.apply("hubspot", [status], NOW)).handled == 1
    assert len(sent) == 1, sent
    assert await inbound.inbox.is_done("hubspot", "s1")


async def test_a_released_notification_keeps_its_first_arrival_for_the_crms_retry(
    inbound: CrmInboundService, services: Services
) -> None:
    """A notification released after a failure is not taken (a retry takes it at once, not
    after `LEASE`), but keeps when it first arrived: the CRM's retry is not a new arrival. The
    row is dropped `KEEP` after that first arrival, and by an erasure of its record."""
    inbox = inbound.inbox
    taken = await inbox.take("salesforce", "o1", NOW, "00Q1")
    assert isinstance(taken, Notification)
    await inbox.release(taken)
    assert not await inbox.taken("salesforce", "o1")
    retry = NOW + 10 * MINUTE
    again = await inbox.take("salesforce", "o1", retry, "00Q1")
    assert isinstance(again, Notification) and (again.taken_at, again.arrived_at) == (retry, NOW)
    await inbox.release(again)  # failed again: the next retry still first arrived at NOW
    found = await asyncio.gather(
        inbox.take("salesforce", "o1", retry + MINUTE, "00Q1"),
        inbox.take("salesforce", "o1", retry + MINUTE, "00Q1"),
    )
    assert sorted("taken" if isinstance(f, Notification) else f for f in found) == [
        "applying",
        "taken",
    ]
    (third,) = [f for f in found if isinstance(f, Notification)]
    assert third.arrived_at == NOW
    await inbox.release(third)

    assert await inbox.prune(NOW + KEEP - timedelta(minutes=3) - KEEP) == 0
    assert await inbox.prune(NOW + KEEP - KEEP) == 1  # a week after its first arrival
    erased = await inbox.take("salesforce", "o2", NOW, "00Q2")
    assert isinstance(erased, Notification)
    await inbox.release(erased)
    await services.store.db.run(lambda db: forget_records(db, ["00Q2"]))
    assert await inbox.count() == 0


async def test_a_status_far_ahead_released_and_retried_counts_five_minutes_after_it_arrived(
    inbound: CrmInboundService, services: Services
) -> None:
    """The CRM's clock is an hour ahead of Handoff's. Its status IN_PROGRESS arrives at NOW,
    before its contact's creation: released (lead unknown). Ten minutes later it sets
    CONNECTED; then its retry of IN_PROGRESS comes. A time more than 5 minutes ahead counts as
    5 minutes after the notification first arrived, the retry's as the first delivery's: the
    history ends with CONNECTED, the CRM's status now. The retry's was capped 5 minutes after
    the retry, so the older status was dated last and stood as the CRM's status."""
    wrong = CrmChange("s1", Change.STATUS, crm_id="7", value="IN_PROGRESS", at=NOW + HOUR)
    assert (await inbound.apply("hubspot", [wrong], NOW)).unknown == ["7"]
    await inbound.apply("hubspot", [created()], NOW + MINUTE)
    later = NOW + 10 * MINUTE
    next_one = CrmChange("s2", Change.STATUS, crm_id="7", value="CONNECTED", at=later + HOUR)
    assert (await inbound.apply("hubspot", [next_one], later)).handled == 1
    assert (await inbound.apply("hubspot", [wrong], later + 10 * MINUTE)).handled == 1
    assert await crm_statuses(services) == [
        ("IN_PROGRESS", NOW + 5 * MINUTE),
        ("CONNECTED", later + 5 * MINUTE),
    ]
