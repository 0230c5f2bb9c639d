"""The HubSpot adapter through the official `hubspot-api-client`, against the local HubSpot fake
on a real port. The fake holds every request and answer to HubSpot's OpenAPI specs: a test
fails (SpecViolation at teardown) if the fake ever answers outside them."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.crm.hubspot import HubSpotAdapter
from bot.crm.port import CrmDailyLimit, CrmMissing, CrmRefused, CrmRetry
from bot.crmfake.hubspot import HubSpotFake, SpecViolation
from bot.domain.crm import CrmNote, CrmRecord
from bot.domain.policy import Crm
from tests.conftest import local_server

AT = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
EMAILS = {"U0REP1": "Rita@Example.com", "U0REP2": "sam@example.com"}


class Clock:
    """Seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[HubSpotFake]:
    hub = HubSpotFake()
    await hub.start()
    yield hub
    await hub.stop()  # raises SpecViolation if the fake answered outside the specs


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def _emails(user_id: str) -> str | None:
    return EMAILS.get(user_id)


def adapter_for(
    hub: HubSpotFake, clock: Clock, crm: Crm | None = None, token: str | None = None
) -> HubSpotAdapter:
    return HubSpotAdapter(
        crm or Crm(kind="hubspot"),
        token or hub.token,
        hub.base_url,
        emails=_emails,
        clock=clock,
    )


def record(**changes: Any) -> CrmRecord:
    values: dict[str, Any] = {
        "lead_id": 1,
        "external_id": "L-1",
        "email": "jane@acme.test",
        "crm_id": None,
        "owner": "U0REP1",
        "owner_crm_id": None,
        "status": "OPEN",
        "lifecycle": None,
        "fields": {},
    }
    values.update(changes)
    return CrmRecord(**values)


def note(key: str = "lead-1-event-7", **changes: Any) -> CrmNote:
    values: dict[str, Any] = {
        "key": key,
        "lead_id": 1,
        "external_id": "L-1",
        "email": "jane@acme.test",
        "crm_id": None,
        "kind": "disposition",
        "subject": "Handoff disposition: Not a fit",
        "body": "Disposition: Not a fit (not_a_fit)\nRep: Rita\nReason: No budget\n"
        f"[handoff:{key}]",
        "at": AT,
        "rep": "U0REP1",
        "rep_crm_id": None,
    }
    values.update(changes)
    return CrmNote(**values)


def writes_to(hub: HubSpotFake, method: str, prefix: str) -> int:
    return sum(1 for w in hub.writes if w.method == method and w.path.startswith(prefix))


async def test_sync_finds_contact_and_owner_by_email_and_sets_status_lifecycle_and_fields(
    fake: HubSpotFake, clock: Clock
) -> None:
    rita = fake.add_owner("rita@example.com", "Rita", "Rep")
    contact = fake.add_contact("jane@acme.test", firstname="Jane")
    fake.add_property("handoff_disposition")
    crm = Crm(kind="hubspot", fields={"disposition_code": "handoff_disposition"})
    adapter = adapter_for(fake, clock, crm)

    found = await adapter.sync(
        record(lifecycle="marketingqualifiedlead", fields={"handoff_disposition": "qualified"})
    )

    assert found == contact
    shown = fake.contact(contact)
    assert shown["hubspot_owner_id"] == rita
    assert shown["hs_lead_status"] == "OPEN"
    assert shown["lifecyclestage"] == "marketingqualifiedlead"
    assert shown["handoff_disposition"] == "qualified"
    assert writes_to(fake, "PATCH", "/crm/v3/objects/contacts") == 1
    await adapter.aclose()


async def test_a_lifecycle_stage_is_never_moved_back_and_moves_forward_in_one_request(
    fake: HubSpotFake, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """HubSpot keeps a contact's later lifecycle stage when a PATCH sets an earlier one; the
    adapter never clears the stage (HubSpot's way to move it back), so an opportunity stays an
    opportunity when a rep rejects the lead, while its lead status still changes."""
    won = fake.add_contact("jane@acme.test", lifecyclestage="opportunity")
    adapter = adapter_for(fake, clock)
    with caplog.at_level("INFO", logger="handoff.crm.hubspot"):
        await adapter.sync(record(crm_id=won, owner=None, status="UNQUALIFIED", lifecycle="lead"))
    shown = fake.contact(won)
    assert shown["lifecyclestage"] == "opportunity"
    assert shown["hs_lead_status"] == "UNQUALIFIED"
    assert fake.requests == [("PATCH", f"/crm/v3/objects/contacts/{won}")]  # one request
    assert "kept contact" in caplog.text and "opportunity" in caplog.text

    # An empty stage (a mapping to "", or a mapped field) would clear it: never sent.
    await adapter.sync(record(crm_id=won, owner=None, lifecycle=""))
    await adapter.sync(record(crm_id=won, owner=None, status=None, fields={"lifecyclestage": ""}))
    await adapter.sync(record(crm_id=won, owner=None, lifecycle="marketingqualifiedlead"))
    assert fake.contact(won)["lifecyclestage"] == "opportunity"
    sent = [w.body["properties"] for w in fake.writes]
    assert all(p.get("lifecyclestage") != "" for p in sent), sent

    # Forward: one PATCH moves it.
    mql = fake.add_contact("joe@acme.test", lifecyclestage="marketingqualifiedlead")
    before = len(fake.requests)
    await adapter.sync(
        record(crm_id=mql, email="joe@acme.test", owner=None, lifecycle="salesqualifiedlead")
    )
    assert fake.contact(mql)["lifecyclestage"] == "salesqualifiedlead"
    assert fake.requests[before:] == [("PATCH", f"/crm/v3/objects/contacts/{mql}")]
    await adapter.aclose()


async def test_the_fake_moves_a_lifecycle_stage_back_only_after_a_clear(
    fake: HubSpotFake,
) -> None:
    """As HubSpot documents: a direct set to an earlier stage is answered 200 and changes
    nothing (the answer shows the stage kept, and no change is told to subscribers); set to ""
    first, in its own request, and the earlier stage is then taken."""
    contact = fake.add_contact("jane@acme.test", lifecyclestage="customer")
    fake.subscribe("http://127.0.0.1:9/unused", ["lifecyclestage", "hs_lead_status"])
    url = f"{fake.base_url}/crm/v3/objects/contacts/{contact}"
    headers = {"Authorization": f"Bearer {fake.token}"}

    async def patch(**properties: str) -> dict[str, Any]:
        async with session.patch(url, json={"properties": properties}) as answer:
            assert answer.status == 200
            body: dict[str, Any] = await answer.json()
            return body

    async with aiohttp.ClientSession(headers=headers) as session:
        answer = await patch(lifecyclestage="lead", hs_lead_status="UNQUALIFIED")
        assert answer["properties"]["lifecyclestage"] == "customer"
        assert fake.contact(contact)["lifecyclestage"] == "customer"
        assert fake.contact(contact)["hs_lead_status"] == "UNQUALIFIED"
        told = [e["propertyName"] for e in fake.pending_events]
        assert told == ["hs_lead_status"]

        await patch(lifecyclestage="")
        assert fake.contact(contact)["lifecyclestage"] == ""
        answer = await patch(lifecyclestage="lead")
        assert answer["properties"]["lifecyclestage"] == "lead"
        assert fake.contact(contact)["lifecyclestage"] == "lead"
        await patch(lifecyclestage="opportunity")  # forward again: at once
        assert fake.contact(contact)["lifecyclestage"] == "opportunity"
    fake.pending_events.clear()


async def test_owner_from_the_map_wins_and_owners_by_email_are_cached_for_a_while(
    fake: HubSpotFake, clock: Clock
) -> None:
    fake.add_owner("rita@example.com")
    mapped = fake.add_owner("someone-else@example.com")
    contact = fake.add_contact("jane@acme.test")
    adapter = adapter_for(fake, clock)

    await adapter.sync(record(crm_id=contact, owner_crm_id=mapped))
    assert fake.contact(contact)["hubspot_owner_id"] == mapped
    assert not any(path.startswith("/crm/v3/owners") for _, path in fake.requests)

    sam = fake.add_owner("sam@example.com")
    await adapter.sync(record(crm_id=contact, owner="U0REP2"))
    await adapter.sync(record(crm_id=contact, owner="U0REP2", status="CONNECTED"))
    owner_reads = [p for _, p in fake.requests if p.startswith("/crm/v3/owners")]
    assert len(owner_reads) == 1  # the second sync used the cached owners
    assert fake.contact(contact)["hubspot_owner_id"] == sam

    clock.now += 301  # the cache is stale: owners are read again
    await adapter.sync(record(crm_id=contact, owner="U0REP2"))
    assert len([p for _, p in fake.requests if p.startswith("/crm/v3/owners")]) == 2
    await adapter.aclose()


async def test_a_member_hubspot_does_not_know_leaves_the_owner_and_still_writes_status(
    fake: HubSpotFake, clock: Clock
) -> None:
    contact = fake.add_contact("jane@acme.test", hubspot_owner_id="")
    adapter = adapter_for(fake, clock)
    await adapter.sync(record(crm_id=contact, owner="U0REP2", status="ATTEMPTED_TO_CONTACT"))
    shown = fake.contact(contact)
    assert shown["hs_lead_status"] == "ATTEMPTED_TO_CONTACT"
    assert shown.get("hubspot_owner_id", "") == ""
    await adapter.aclose()


async def test_a_contact_hubspot_does_not_have_is_missing(fake: HubSpotFake, clock: Clock) -> None:
    adapter = adapter_for(fake, clock)
    with pytest.raises(CrmMissing, match="no contact with the lead's email"):
        await adapter.sync(record())
    with pytest.raises(CrmMissing):
        await adapter.sync(record(crm_id="999999", email="nobody@acme.test"))
    assert fake.writes == []
    await adapter.aclose()


async def test_the_contact_is_read_by_its_email_even_with_a_plus(
    fake: HubSpotFake, clock: Clock
) -> None:
    contact = fake.add_contact("jane+sales@acme.test")
    adapter = adapter_for(fake, clock)
    assert await adapter.sync(record(email="jane+sales@acme.test", owner=None)) == contact
    assert ("GET", "/crm/v3/objects/contacts/jane+sales@acme.test") in fake.requests
    await adapter.aclose()


async def test_a_deleted_contact_id_falls_back_to_the_email(
    fake: HubSpotFake, clock: Clock
) -> None:
    contact = fake.add_contact("jane@acme.test")
    adapter = adapter_for(fake, clock)
    assert await adapter.sync(record(crm_id="424242")) == contact
    assert fake.contact(contact)["hs_lead_status"] == "OPEN"
    await adapter.aclose()


async def test_a_sync_to_a_contact_merged_away_goes_to_the_contact_that_remains(
    fake: HubSpotFake, clock: Clock
) -> None:
    """The lead's contact was merged into another with another email, and Handoff was not told:
    a PATCH of the merged id is a 404, and no contact has the lead's email as its own any more.
    A read of the merged id answers the contact that remains, under its id (HubSpot's changelog
    "Updated merge functionality for contacts and companies"): the sync goes there, and returns
    that id (before: CrmMissing, the write skipped as if the person were gone)."""
    gone = fake.add_contact("jane@acme.test")
    kept = fake.add_contact("jane.doe@acme-group.test")
    fake.merge_contacts(kept, gone)
    adapter = adapter_for(fake, clock)
    assert await adapter.sync(record(crm_id=gone, owner=None)) == kept
    assert fake.contact(kept)["hs_lead_status"] == "OPEN"
    await adapter.aclose()


async def test_a_disposition_note_is_created_once_even_when_its_answer_is_dropped(
    fake: HubSpotFake, clock: Clock
) -> None:
    rita = fake.add_owner("rita@example.com")
    contact = fake.add_contact("jane@acme.test")
    adapter = adapter_for(fake, clock)
    fake.drop_next(method="POST", path="/crm/v3/objects/notes")

    with pytest.raises(CrmRetry) as lost:
        await adapter.note(note())
    assert lost.value.unknown  # the note may have been made: the worker tries again
    await adapter.note(note())  # the retry finds the note with our key and adopts it
    await adapter.note(note())

    notes = fake.notes_of(contact)
    assert len(notes) == 1
    assert writes_to(fake, "POST", "/crm/v3/objects/notes") == 1
    assert "[handoff:lead-1-event-7]" in notes[0]["hs_note_body"]
    assert "Reason: No budget" in notes[0]["hs_note_body"]
    assert notes[0]["hubspot_owner_id"] == rita
    assert notes[0]["hs_timestamp"].startswith("2026-11-23T00:00:00")

    assert fake.story() == [
        "note: Handoff disposition: Not a fit | Disposition: Not a fit (not_a_fit) | Rep: Rita"
        " | Reason: No budget | [handoff:lead-1-event-7]"
    ]
    await adapter.note(note("lead-1-event-9", crm_id=contact))  # another key: another note
    await adapter.note(note("lead-1-event-11", crm_id="424242"))  # a stale id: by email
    assert len(fake.notes_of(contact)) == 3
    await adapter.aclose()


async def test_a_note_whose_answer_is_a_proxys_page_is_made_once(
    fake: HubSpotFake, clock: Clock
) -> None:
    """The note is created, but a proxy between answers 200 with its own page: the write's
    outcome is unknown (CrmRetry, `unknown`), so the retry looks for the note with our key and
    adopts it. Before, the unreadable answer was taken for a bug: retried as never sent, a
    second note."""
    contact = fake.add_contact("jane@acme.test")
    adapter = adapter_for(fake, clock)
    fake.page_next(method="POST", path="/crm/v3/objects/notes")
    with pytest.raises(CrmRetry) as lost:
        await adapter.note(note(crm_id=contact, fresh=True))
    assert lost.value.unknown
    await adapter.note(note(crm_id=contact, fresh=not lost.value.unknown))
    assert len(fake.notes_of(contact)) == 1
    assert writes_to(fake, "POST", "/crm/v3/objects/notes") == 1
    await adapter.aclose()


async def test_a_retried_note_finds_ours_beyond_the_first_page_of_the_contacts_notes(
    fake: HubSpotFake, clock: Clock
) -> None:
    """A contact's read shows 100 of its notes and a cursor for the rest (HubSpot's changelog
    on v3 association paging): a contact with 250 notes, ours the last, whose create's answer
    was lost, gets no second note when the note is tried again."""
    contact = fake.add_contact("jane@acme.test")
    for number in range(249):
        fake.add_note(contact, f"Call {number}: left a voicemail")
    adapter = adapter_for(fake, clock)
    fake.drop_next(method="POST", path="/crm/v3/objects/notes")
    with pytest.raises(CrmRetry):
        await adapter.note(note(crm_id=contact, fresh=True))  # made, but the answer is lost
    assert len(fake.notes_of(contact)) == 250

    await adapter.note(note(crm_id=contact))  # the retry pages through all 250 and adopts it

    notes = fake.notes_of(contact)
    assert len(notes) == 250
    assert sum("[handoff:lead-1-event-7]" in n["hs_note_body"] for n in notes) == 1
    assert writes_to(fake, "POST", "/crm/v3/objects/notes") == 1
    await adapter.aclose()


async def test_the_fake_pages_a_contacts_notes_as_hubspot_does(fake: HubSpotFake) -> None:
    """The contact's read shows 100 associated notes and `paging.next.after`; the v4 list
    gives them all, at most 500 a page, and refuses a bad cursor or `limit`."""
    contact = fake.add_contact("jane@acme.test")
    made = [fake.add_note(contact, f"Note {number}") for number in range(120)]
    headers = {"Authorization": f"Bearer {fake.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        url = f"{fake.base_url}/crm/v3/objects/contacts/{contact}"
        async with session.get(url, params={"associations": "notes"}) as answer:
            linked = (await answer.json())["associations"]["notes"]
        assert [a["id"] for a in linked["results"]] == made[:100]
        assert linked["paging"]["next"]["after"]
        url = f"{fake.base_url}/crm/v4/objects/contacts/{contact}/associations/notes"
        async with session.get(url) as answer:
            listed = await answer.json()
        assert [a["toObjectId"] for a in listed["results"]] == made
        assert "paging" not in listed
        async with session.get(url, params={"limit": "50"}) as answer:
            first = await answer.json()
        async with session.get(url, params={"after": first["paging"]["next"]["after"]}) as answer:
            assert len((await answer.json())["results"]) == 70
        for bad in ({"after": "not a cursor!"}, {"limit": "0"}, {"limit": "501"}):
            async with session.get(url, params=bad) as answer:
                assert answer.status == 400, bad


async def test_a_batch_read_with_ids_hubspot_lacks_answers_207_and_ours_is_still_found(
    fake: HubSpotFake, clock: Clock
) -> None:
    """notes.json's batch read answers 207 (`BatchResponseSimplePublicObjectWithErrors`) when
    some ids are not there: the found ones in `results`, the others in `errors`."""
    contact = fake.add_contact("jane@acme.test")
    adapter = adapter_for(fake, clock)
    await adapter.note(note(crm_id=contact))
    other = fake.add_note(contact, "a rep's note")
    del fake.notes[other]  # deleted, while the contact's association still lists it
    url = f"{fake.base_url}/crm/v3/objects/notes/batch/read"
    body = {"inputs": [{"id": other}], "properties": [], "propertiesWithHistory": []}
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {fake.token}"}) as session,
        session.post(url, json=body) as answer,
    ):
        found = await answer.json()
    assert answer.status == 207
    assert found["results"] == [] and found["numErrors"] == 1
    assert found["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert found["errors"][0]["context"] == {"ids": [other]}
    await adapter.note(note(crm_id=contact))  # the retry still finds ours among the rest
    assert writes_to(fake, "POST", "/crm/v3/objects/notes") == 1
    await adapter.aclose()


async def test_a_fresh_note_costs_one_request(fake: HubSpotFake, clock: Clock) -> None:
    contact = fake.add_contact("jane@acme.test")
    adapter = adapter_for(fake, clock)
    await adapter.note(note(crm_id=contact, rep_crm_id=fake.add_owner("r@x.test"), fresh=True))
    assert fake.requests == [("POST", "/crm/v3/objects/notes")]
    assert len(fake.notes_of(contact)) == 1
    await adapter.aclose()


async def test_a_fresh_note_for_a_contact_gone_since_finds_it_by_email_not_refused(
    fake: HubSpotFake, clock: Clock
) -> None:
    """HubSpot answers a note associated with a contact it no longer has with a 400 (nothing
    is created): the contact is looked for as a retried note's would be (its id, then the
    email), not reported as a set-up HubSpot refuses, which would hold every CRM write."""
    gone = fake.add_contact("old@acme.test")
    jane = fake.add_contact("jane@acme.test")
    fake.merge_contacts(jane, gone)
    adapter = adapter_for(fake, clock)
    owner = fake.add_owner("r@x.test")
    # The contact it went on is answered, so the worker ties the lead to it.
    assert await adapter.note(note(crm_id=gone, rep_crm_id=owner, fresh=True)) == jane
    assert len(fake.notes_of(jane)) == 1
    # A retried note reads the merged id, which HubSpot answers under the remaining contact's
    # id: the note is associated with that one, not refused for the id merged away.
    assert await adapter.note(note("lead-1-event-9", crm_id=gone)) == jane
    assert len(fake.notes_of(jane)) == 2

    deleted = fake.add_contact("ann@acme.test")
    fake.delete_contact(deleted)
    with pytest.raises(CrmMissing):
        await adapter.note(note(crm_id=deleted, email="ann@acme.test", fresh=True))
    assert writes_to(fake, "POST", "/crm/v3/objects/notes") == 2
    await adapter.aclose()


async def test_a_429_is_honoured_with_its_wait(fake: HubSpotFake, clock: Clock) -> None:
    contact = fake.add_contact("jane@acme.test")
    adapter = adapter_for(fake, clock)
    fake.throttle_next(retry_after=7)

    with pytest.raises(CrmRetry) as throttled:
        await adapter.sync(record(crm_id=contact, owner=None))
    assert throttled.value.after == 7
    assert not throttled.value.unknown

    sent = len(fake.requests)
    clock.now += 3
    with pytest.raises(CrmRetry) as waiting:
        await adapter.sync(record(crm_id=contact, owner=None))
    assert waiting.value.after == pytest.approx(4)
    assert len(fake.requests) == sent  # nothing was sent during HubSpot's wait

    clock.now += 4.1
    assert await adapter.sync(record(crm_id=contact, owner=None)) == contact
    assert fake.contact(contact)["hs_lead_status"] == "OPEN"
    await adapter.aclose()


async def test_the_burst_limit_answers_429_with_the_rolling_window(clock: Clock) -> None:
    now = [0.0]
    hub = await HubSpotFake(clock=lambda: now[0], burst=(3, 10.0)).start()
    contact = hub.add_contact("jane@acme.test")
    adapter = adapter_for(hub, clock)
    for _ in range(3):
        await adapter.sync(record(crm_id=contact, owner=None))
    now[0] = 4.0
    with pytest.raises(CrmRetry) as throttled:
        await adapter.sync(record(crm_id=contact, owner=None))
    assert throttled.value.after == 6  # the first request leaves the window at 10 s
    await adapter.aclose()
    await hub.stop()


async def test_the_daily_limit_answers_429_with_policy_daily_and_is_no_burst(
    fake: HubSpotFake, clock: Clock
) -> None:
    """A 429 for the account's daily limit (HubSpot's `policyName` DAILY, and no requests left
    for the day) is CrmDailyLimit, not a CrmRetry after the rolling window's 10 seconds."""
    contact = fake.add_contact("jane@acme.test")
    adapter = adapter_for(fake, clock)
    fake.use_up_today()
    with pytest.raises(CrmDailyLimit, match="daily limit"):
        await adapter.sync(record(crm_id=contact, owner=None))
    assert fake.limited_daily == [("PATCH", f"/crm/v3/objects/contacts/{contact}")]
    assert "hs_lead_status" not in fake.contact(contact)
    await adapter.aclose()


async def test_a_5xx_or_a_dropped_write_is_retried_as_unknown(
    fake: HubSpotFake, clock: Clock
) -> None:
    contact = fake.add_contact("jane@acme.test", hs_lead_status="NEW")
    adapter = adapter_for(fake, clock)
    fake.fail_next(method="PATCH", status=502)
    with pytest.raises(CrmRetry) as failed:
        await adapter.sync(record(crm_id=contact, owner=None))
    assert failed.value.unknown
    assert fake.contact(contact)["hs_lead_status"] == "NEW"  # a 5xx changed nothing

    fake.drop_next(method="PATCH")
    with pytest.raises(CrmRetry) as dropped:
        await adapter.sync(record(crm_id=contact, owner=None))
    assert dropped.value.unknown
    assert fake.contact(contact)["hs_lead_status"] == "OPEN"  # done, answer lost
    await adapter.aclose()


async def test_a_locked_account_or_one_migrating_is_waited_for_not_refused(
    fake: HubSpotFake, clock: Clock
) -> None:
    """HubSpot's "Error handling" guide: 423 Locked ("Locks will last for 2 seconds ... include
    a delay of at least 2 seconds") and 477 Migration in Progress (the account moves between
    data hosting locations; "HubSpot will return a Retry-After response header indicating how
    many seconds to wait") are waits, not a set-up someone must fix: a CrmRetry after that
    wait, with nothing sent before it, and no CrmRefused (which alerts the escalations channel
    to check the token and the property names)."""
    contact = fake.add_contact("jane@acme.test", hs_lead_status="NEW")
    adapter = adapter_for(fake, clock)
    fake.fail_next(status=423, method="PATCH")
    with pytest.raises(CrmRetry) as locked:
        await adapter.sync(record(crm_id=contact, owner=None))
    assert locked.value.after == 2 and not locked.value.unknown

    clock.now += 2
    fake.fail_next(status=477, method="PATCH", retry_after=3600)
    with pytest.raises(CrmRetry) as migrating:
        await adapter.sync(record(crm_id=contact, owner=None))
    assert migrating.value.after == 3600 and not migrating.value.unknown
    sent = len(fake.requests)
    clock.now += 1800
    with pytest.raises(CrmRetry):
        await adapter.sync(record(crm_id=contact, owner=None))
    assert len(fake.requests) == sent  # nothing during the migration's wait

    clock.now += 1800
    assert await adapter.sync(record(crm_id=contact, owner=None)) == contact
    assert fake.contact(contact)["hs_lead_status"] == "OPEN"
    await adapter.aclose()


async def test_a_bad_token_is_refused_and_check_says_so(fake: HubSpotFake, clock: Clock) -> None:
    contact = fake.add_contact("jane@acme.test")
    adapter = adapter_for(fake, clock, token="pat-na1-revoked")
    with pytest.raises(CrmRefused, match="access token"):
        await adapter.sync(record(crm_id=contact, owner=None))
    problems = await adapter.check()
    assert len(problems) == 1
    assert "access token" in problems[0]
    assert fake.writes == []
    await adapter.aclose()


async def test_a_missing_scope_is_refused_naming_the_scope(clock: Clock) -> None:
    hub = await HubSpotFake(
        scopes=["crm.objects.contacts.read", "crm.objects.contacts.write"]
    ).start()
    contact = hub.add_contact("jane@acme.test")
    adapter = adapter_for(hub, clock)
    await adapter.sync(record(crm_id=contact, owner=None))  # contacts alone: allowed
    with pytest.raises(CrmRefused, match=r"crm\.objects\.owners\.read"):
        await adapter.sync(record(crm_id=contact, owner="U0REP1"))  # needs the owners
    problems = await adapter.check()
    assert len(problems) == 1 and "crm.objects.owners.read" in problems[0]
    await adapter.aclose()
    await hub.stop()


async def test_an_unknown_property_is_refused_naming_it_and_nothing_is_written(
    fake: HubSpotFake, clock: Clock
) -> None:
    contact = fake.add_contact("jane@acme.test", hs_lead_status="NEW")
    crm = Crm(kind="hubspot", fields={"disposition_reason": "handoff_reason"})
    adapter = adapter_for(fake, clock, crm)
    with pytest.raises(CrmRefused) as refused:
        await adapter.sync(record(crm_id=contact, owner=None, fields={"handoff_reason": "x"}))
    assert refused.value.property == "handoff_reason"
    assert "handoff_reason" in str(refused.value)
    assert fake.contact(contact)["hs_lead_status"] == "NEW"  # HubSpot takes all or nothing
    await adapter.aclose()


async def test_a_status_hubspot_does_not_offer_is_refused_naming_the_property(
    fake: HubSpotFake, clock: Clock
) -> None:
    contact = fake.add_contact("jane@acme.test")
    adapter = adapter_for(fake, clock)
    with pytest.raises(CrmRefused) as refused:
        await adapter.sync(record(crm_id=contact, owner=None, status="Working"))
    assert refused.value.property == "hs_lead_status"
    await adapter.aclose()


async def test_check_names_each_missing_property_and_unknown_owner(
    fake: HubSpotFake, clock: Clock
) -> None:
    fake.add_property("handoff_disposition")
    crm = Crm(
        kind="hubspot",
        fields={"disposition_code": "handoff_disposition", "disposition_reason": "handoff_why"},
        owners={"U0REP1": "777"},
    )
    adapter = adapter_for(fake, clock, crm)
    problems = await adapter.check()
    assert len(problems) == 2
    assert "handoff_why" in problems[0] and "crm.fields" in problems[0]
    assert "U0REP1" in problems[1] and "777" in problems[1]
    assert fake.writes == []  # the probes change nothing

    fake.add_property("handoff_why")
    rita = fake.add_owner("rita@example.com")
    fixed = Crm(kind="hubspot", fields=crm.fields, owners={"U0REP1": rita})
    assert await adapter_for(fake, clock, fixed).check() == []
    # An owner removed from the portal is archived: HubSpot answers 404 for it unless asked
    # for archived owners (crmOwners.json, `archived`, default false). The fake returned it.
    fake.archive_owner(rita)
    (problem,) = await adapter_for(fake, clock, fixed).check()
    assert "U0REP1" in problem and rita in problem
    await adapter.aclose()


async def test_an_owner_id_that_is_no_int32_is_never_sent_and_check_names_it(
    fake: HubSpotFake, clock: Clock
) -> None:
    """crmOwners.json types `ownerId` of GET /crm/v3/owners/{ownerId} as an int32: an id that
    is none (a typo in crm.owners, an odd webhook value) is no owner HubSpot can have, and is
    not sent; each such owner is named by check, and the others are still checked."""
    crm = Crm(kind="hubspot", owners={"U0REP1": "rita", "U0REP2": "2147483648", "U0REP3": "777"})
    adapter = adapter_for(fake, clock, crm)
    problems = await adapter.check()
    assert len(problems) == 3, problems
    for member, owner in crm.owners.items():
        assert any(member in p and owner in p for p in problems), (member, problems)
    assert await adapter.owner_email("not-a-number") is None
    assert [path for _, path in fake.requests if path.startswith("/crm/v3/owners/")] == [
        "/crm/v3/owners/777"
    ]
    await adapter.aclose()


async def test_the_fakes_pages_take_opaque_cursors_and_refuse_bad_ones(fake: HubSpotFake) -> None:
    """`NextPage.after` is a cursor (the spec's example: `NTI1Cg%3D%3D`): the fake's are
    base64 and any bad one is HubSpot's 400, not a bare 500; `limit` is 1 to 100."""
    for number in range(3):
        fake.add_owner(f"owner{number}@example.com")
    url = f"{fake.base_url}/crm/v3/owners"
    headers = {"Authorization": f"Bearer {fake.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(url, params={"limit": "2"}) as answer:
            first = await answer.json()
        cursor = first["paging"]["next"]["after"]
        assert not cursor.isdigit() and len(first["results"]) == 2
        async with session.get(url, params={"limit": "2", "after": cursor}) as answer:
            assert len((await answer.json())["results"]) == 1
        for bad in ({"after": "NTI1Cg%3D%3D!"}, {"limit": "0"}, {"limit": "-5"}):
            async with session.get(url, params=bad) as answer:
                body = await answer.json()
                assert answer.status == 400 and body["category"] == "VALIDATION_ERROR", bad


async def test_the_contact_as_a_lead_and_an_owner_email(fake: HubSpotFake, clock: Clock) -> None:
    sam = fake.add_owner("sam@example.com", "Sam", "Seller")
    contact = fake.add_contact(
        "jane@acme.test",
        firstname="Jane",
        lastname="Doe",
        jobtitle="VP Marketing",
        phone="+61 2 5550 1234",
        company="Acme",
        website="https://www.acme.test/about",
        numemployees="1000+",
        industry="Software",
        country="Australia",
        hs_analytics_source="PAID_SEARCH",
        hubspotscore="87",
        hubspot_owner_id=sam,
    )
    adapter = adapter_for(fake, clock)
    assert await adapter.contact_lead(contact) == {
        "external_id": f"hubspot:{contact}",
        "email": "jane@acme.test",
        "name": "Jane Doe",
        "title": "VP Marketing",
        "phone": "+61 2 5550 1234",
        "company": {
            "name": "Acme",
            "domain": "acme.test",
            "employees": 1000,
            "industry": "Software",
            "country": "Australia",
        },
        "source": "PAID_SEARCH",
        "score": 87,
        "crm_id": contact,
    }
    assert await adapter.contact_lead("31337") is None
    assert await adapter.owner_email(sam) == "sam@example.com"
    assert await adapter.owner_email("31337") is None
    await adapter.aclose()


async def test_the_fake_refuses_a_request_the_spec_refuses(fake: HubSpotFake) -> None:
    contact = fake.add_contact("jane@acme.test")
    headers = {"Authorization": f"Bearer {fake.token}"}
    async with aiohttp.ClientSession() as session:
        url = f"{fake.base_url}/crm/v3/objects/contacts/{contact}"
        async with session.patch(url, json={"props": {"a": "b"}}, headers=headers) as answer:
            body = await answer.json()
            assert answer.status == 400
        search = f"{fake.base_url}/crm/v3/objects/contacts/search"
        async with session.post(search, json={"limit": 1}, headers=headers) as answer2:
            body2 = await answer2.json()
            assert answer2.status == 400
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert "properties" in body["message"]
    assert body2["category"] == "VALIDATION_ERROR"
    assert "filterGroups" in body2["message"]
    assert fake.writes == []


async def test_the_fakes_search_takes_what_the_spec_describes(fake: HubSpotFake) -> None:
    """PublicObjectSearchRequest (contacts.json): `limit` "up to 200 objects", `filterGroups`
    "Up to 6 groups", `query` "up to 3000 characters"; past those, HubSpot's 400."""
    for number in range(150):
        fake.add_contact(f"person{number}@acme.test")
    search = f"{fake.base_url}/crm/v3/objects/contacts/search"
    headers = {"Authorization": f"Bearer {fake.token}"}
    group = {"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}
    base: dict[str, Any] = {"filterGroups": [group], "properties": [], "sorts": [], "after": "0"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(search, json={**base, "limit": 200}) as answer:
            assert answer.status == 200
            assert len((await answer.json())["results"]) == 150
        for bad in (
            {"limit": 201},
            {"limit": 1, "filterGroups": [group] * 7},
            {"limit": 1, "query": "x" * 3001},
        ):
            async with session.post(search, json={**base, **bad}) as answer:
                body = await answer.json()
                assert answer.status == 400 and body["category"] == "VALIDATION_ERROR", bad
        async with session.post(search, json={**base, "limit": 1, "query": "x" * 3000}) as answer:
            assert answer.status == 200
        async with session.post(
            search, json={**base, "limit": 1, "filterGroups": [group] * 6}
        ) as a:
            assert a.status == 200


async def test_an_answer_outside_the_spec_fails_loudly() -> None:
    hub = await HubSpotFake().start()
    contact = hub.add_contact("jane@acme.test")
    hub.contacts[contact].properties["hs_lead_status"] = None  # type: ignore[assignment]
    hub.contacts[contact].properties["email"] = 42  # type: ignore[assignment]
    async with aiohttp.ClientSession() as session:
        url = f"{hub.base_url}/crm/v3/objects/contacts/{contact}?properties=email"
        async with session.get(url, headers={"Authorization": f"Bearer {hub.token}"}) as answer:
            await answer.read()
    with pytest.raises(SpecViolation, match="contacts"):
        await hub.stop()


Received = list[tuple[str, dict[str, str], bytes]]  # each request: its URL, headers and body


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[str, Received]]:
    """A receiver of HubSpot's webhooks: its URL, and what it received (answered 204)."""
    received: Received = []

    async def take(request: web.Request) -> web.Response:
        received.append((str(request.url), dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/hubspot", take)
    async with local_server(app) as base:
        yield f"{base}/hooks/hubspot", received


async def test_webhooks_are_signed_v1_and_v3_and_our_writes_come_back_as_integration(
    fake: HubSpotFake, clock: Clock, hooks: tuple[str, Received]
) -> None:
    url, received = hooks
    contact = fake.add_contact("jane@acme.test")
    fake.subscribe(url, properties=["hubspot_owner_id", "hs_lead_status"])

    fake.change_contact(contact, hubspot_owner_id="55", phone="1")  # a person, in HubSpot
    await adapter_for(fake, clock).sync(record(crm_id=contact, owner=None))  # we change it
    assert await fake.flush_webhooks() == [204]
    assert await fake.send_workflow(url, {"objectId": int(contact), "email": "x"}) == 204

    (_, headers, body), (wf_url, wf_headers, wf_body) = received
    secret = fake.client_secret.encode()
    assert headers["X-HubSpot-Signature-Version"] == "v1"
    assert headers["X-HubSpot-Signature"] == hashlib.sha256(secret + body).hexdigest()
    events = json.loads(body)
    assert [(e["propertyName"], e["changeSource"]) for e in events] == [
        ("hubspot_owner_id", "CRM_UI"),
        ("hs_lead_status", "INTEGRATION"),
    ]
    assert {e["subscriptionType"] for e in events} == {"contact.propertyChange"}
    assert len({e["eventId"] for e in events}) == 2

    stamp = wf_headers["X-HubSpot-Request-Timestamp"]
    signed = b"POST" + wf_url.encode() + wf_body + stamp.encode()
    expected = base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()
    assert wf_headers["X-HubSpot-Signature-v3"] == expected


class Counted:
    """A pace that counts the requests made inside it (the CRM worker's window does the same)."""

    def __init__(self) -> None:
        self.requests = 0
        self.open = 0

    @contextlib.asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        self.requests += 1
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1


async def test_every_request_the_adapter_sends_is_counted_by_its_pace(
    fake: HubSpotFake, clock: Clock
) -> None:
    """HubSpot's limit counts requests: the contact's look-up by email, the owners list, the
    reads that find a note already written, the retried write after a 5xx, each goes through
    the pace, so the CRM worker's window counts them all."""
    fake.add_owner("rita@example.com")
    contact = fake.add_contact("jane@acme.test")
    adapter = adapter_for(fake, clock)
    pace = Counted()
    adapter.pace = pace
    await adapter.note(note("lead-1-event-5", crm_id=contact, fresh=True))
    fake.fail_next(method="POST", path="/crm/v3/objects/notes")
    with pytest.raises(CrmRetry):
        await adapter.note(note())  # by email, the owners, its notes read, the create: 500
    await adapter.note(note())  # a retry: it reads the notes again before creating
    await adapter.sync(record())

    assert len(fake.requests) >= 10
    assert pace.requests == len(fake.requests) and pace.open == 0
    assert len(fake.notes_of(contact)) == 2
    await adapter.aclose()


async def test_an_answer_trickling_in_past_the_timeout_is_given_up_as_unknown(
    fake: HubSpotFake, clock: Clock
) -> None:
    """urllib3 times out each read of the socket, not the whole answer: one that trickles in
    would keep the CRM worker waiting as long as it takes, past the row's lease. The adapter
    stops waiting at its `request_deadline`; the PATCH may have been done, so the write is
    retried as unknown, never counted as done."""
    contact = fake.add_contact("jane@acme.test")
    adapter = HubSpotAdapter(
        Crm(kind="hubspot"), fake.token, fake.base_url, clock=clock, timeout=0.5
    )
    assert adapter.request_deadline == 0.5
    fake.trickle_next(2.0, method="PATCH")
    started = time.monotonic()
    with pytest.raises(CrmRetry) as given_up:
        await adapter.sync(record(crm_id=contact, owner=None))
    assert given_up.value.unknown
    assert time.monotonic() - started < 1.5  # at the deadline, not when the answer ends
    assert fake.contact(contact)["hs_lead_status"] == "OPEN"  # it was done meanwhile
    await adapter.aclose()


async def test_webhooks_come_in_batches_of_at_most_100_events(
    fake: HubSpotFake, clock: Clock, hooks: tuple[str, Received]
) -> None:
    """HubSpot sends a subscription's events in requests of up to 100 events each."""
    url, received = hooks
    contact = fake.add_contact("jane@acme.test")
    fake.subscribe(url, properties=["phone"])
    for number in range(150):
        fake.change_contact(contact, phone=str(number))
    assert await fake.flush_webhooks() == [204, 204]
    assert [len(json.loads(body)) for _, _, body in received] == [100, 50]


async def test_the_fake_merges_two_contacts_as_hubspots_spec_says(
    fake: HubSpotFake, hooks: tuple[str, Received]
) -> None:
    """`POST /crm/v3/objects/contacts/merge` (contacts.json, `PublicMergeInput`): the primary
    stays with its values, the other's fill its empty ones, the other is gone (a read of its id
    answers the primary); a request the spec refuses is a 400, an unknown contact a 404;
    subscribers hear HubSpot's documented `contact.merge` event."""
    hook_url, received = hooks
    fake.subscribe(hook_url)
    old = fake.add_contact("jane@old.test", firstname="Jane", phone="+61 2 5550 1234")
    kept = fake.add_contact("jane@acme.test", firstname="J.", lastname="Doe")
    url = f"{fake.base_url}/crm/v3/objects/contacts/merge"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {fake.token}"}) as session:
        for bad, status in (
            ({"primaryObjectId": kept}, 400),  # objectIdToMerge is required
            ({"primaryObjectId": int(kept), "objectIdToMerge": old}, 400),  # ids are strings
            ({"primaryObjectId": kept, "objectIdToMerge": "31337"}, 404),
            ({"primaryObjectId": kept, "objectIdToMerge": kept}, 400),
        ):
            async with session.post(url, json=bad) as answer:
                assert answer.status == status, (bad, await answer.text())
        assert fake.writes == [] and old in fake.contacts
        body = {"primaryObjectId": kept, "objectIdToMerge": old}
        async with session.post(url, json=body) as answer:
            assert answer.status == 200
            assert (await answer.json())["id"] == kept
        # The other's id answers the merged contact, under its own id (HubSpot's changelog,
        # "Updated merge functionality for contacts and companies"); a PATCH of it is a 404.
        async with session.get(f"{fake.base_url}/crm/v3/objects/contacts/{old}") as answer:
            assert answer.status == 200
            assert (await answer.json())["id"] == kept
        patch = {"properties": {"firstname": "Jane"}}
        async with session.patch(
            f"{fake.base_url}/crm/v3/objects/contacts/{old}", json=patch
        ) as answer:
            assert answer.status == 404
    record = fake.contact(kept)
    assert (record["email"], record["firstname"], record["lastname"]) == (
        "jane@acme.test",
        "J.",
        "Doe",
    )
    assert record["phone"] == "+61 2 5550 1234"
    assert [(w.method, w.path) for w in fake.writes] == [("POST", "/crm/v3/objects/contacts/merge")]

    assert await fake.flush_webhooks() == [204]
    (merged,) = json.loads(received[0][2])
    assert merged["subscriptionType"] == "contact.merge"
    assert (merged["primaryObjectId"], merged["mergedObjectIds"], merged["newObjectId"]) == (
        int(kept),
        [int(old)],
        int(kept),
    )
    assert merged["changeSource"] == "INTEGRATION" and isinstance(merged["eventId"], int)
    assert merged["numberOfPropertiesMoved"] == 1  # the phone


async def test_the_wait_a_migration_asked_for_is_named_as_the_migrations_not_a_429(
    fake: HubSpotFake, clock: Clock
) -> None:
    """A 477 Migration in Progress met by one request (an inbound webhook's read) holds the
    next ones unsent; what they say (the escalations channel's alert and /healthz quote it)
    names the migration, not a rate limit's 429 (HubSpot's "Error handling" guide)."""
    contact = fake.add_contact("jane@acme.test", hs_lead_status="NEW")
    adapter = adapter_for(fake, clock)
    fake.fail_next(status=477, method="GET", retry_after=3600)
    with pytest.raises(CrmRetry):
        await adapter.contact_lead(contact)
    clock.now += 60
    with pytest.raises(CrmRetry) as held:
        await adapter.sync(record(crm_id=contact, owner=None))
    assert "477" in str(held.value) and "429" not in str(held.value)
    assert 3530 <= (held.value.after or 0) <= 3540
    await adapter.aclose()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", "<html><body>Service temporarily unavailable</body></html>"),
        ("application/json", ""),
        ("application/json", '{"properties": {"email": "jane@acme.test"}}'),  # no id
        ("application/json", '{"id": "451", "properties": ["email"]}'),
    ],
)
async def test_a_contact_read_answered_200_with_no_contact_is_a_retry(
    clock: Clock, content_type: str, body: str
) -> None:
    """Something between Handoff and HubSpot (a proxy, a gateway) answers the read of a new
    contact 200 with a page, or JSON that is no contact (HubSpot's contacts.json: an `id`, and
    `properties` an object). That is no answer: CrmRetry, so the webhook that needed the read
    is answered 503 and HubSpot sends it again. Before: a lead taken in as `hubspot:None` tied
    to the contact id "None", a 400 about a missing email, or AttributeError (a 500)."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(status=200, text=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    async with local_server(app) as base:
        adapter = HubSpotAdapter(Crm(kind="hubspot"), "token", base, clock=clock)
        try:
            with pytest.raises(CrmRetry, match=r"no contact|could not be read"):
                await adapter.contact_lead("451")
        finally:
            await adapter.aclose()
