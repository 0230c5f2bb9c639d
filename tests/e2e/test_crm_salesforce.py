"""The Salesforce adapter through `simple-salesforce` against the local Salesforce fake on a
real TLS port: owners, statuses, fields, Tasks told once, sessions refreshed, errors named."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from bot.crm.port import CrmMissing, CrmRefused, CrmRetry
from bot.crm.salesforce import SalesforceAdapter, oauth_refresh, sobject
from bot.crmfake.salesforce import LeadStatus, SalesforceFake
from bot.domain.crm import CrmNote, CrmRecord, record_of
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Crm

AT = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
EMAILS = {"U_ANN": "ann@example.com", "U_BOB": "bob@example.com", "U_NEW": "new@example.com"}
FIELDS = {"disposition_code": "Handoff_Disposition__c", "disposition_reason": "Handoff_Reason__c"}


async def emails(user_id: str) -> str | None:
    return EMAILS.get(user_id)


@pytest.fixture
async def fake() -> AsyncIterator[SalesforceFake]:
    server = SalesforceFake(
        lead_fields={"Handoff_Disposition__c": "string", "Handoff_Reason__c": "textarea"}
    )
    await server.start()
    yield server
    await server.stop()


Make = Callable[..., SalesforceAdapter]


@pytest.fixture
async def make(fake: SalesforceFake) -> AsyncIterator[Make]:
    made: list[SalesforceAdapter] = []

    def build(
        refresh: Callable[[], Awaitable[str | None]] | None = None,
        timeout: float = 10.0,
        **crm: Any,
    ) -> SalesforceAdapter:
        adapter = SalesforceAdapter(
            Crm(kind="salesforce", **{"fields": FIELDS, **crm}),
            fake.instance_url,
            fake.token,
            emails=emails,
            refresh=refresh,
            verify=fake.ca_file,
            timeout=timeout,
        )
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        await adapter.aclose()


def record(crm_id: str | None, **changes: Any) -> CrmRecord:
    values: dict[str, Any] = {
        "lead_id": 7,
        "external_id": "web-7",
        "email": "jane@acme.test",
        "crm_id": crm_id,
        "owner": "U_ANN",
        "owner_crm_id": None,
        "status": "Working - Contacted",
        "lifecycle": None,
        "fields": {"Handoff_Disposition__c": "", "Handoff_Reason__c": ""},
    }
    return CrmRecord(**{**values, **changes})


def note(crm_id: str | None, key: str = "crm_note:41", **changes: Any) -> CrmNote:
    values: dict[str, Any] = {
        "key": key,
        "lead_id": 7,
        "external_id": "web-7",
        "email": "jane@acme.test",
        "crm_id": crm_id,
        "kind": "disposition",
        "subject": "Handoff disposition: Sales qualified",
        "body": f"Disposition: Sales qualified (sql)\nRep: Ann\n[handoff:{key}]",
        "at": AT,
        "rep": "U_ANN",
        "rep_crm_id": None,
    }
    return CrmNote(**{**values, **changes})


def user_queries(fake: SalesforceFake) -> int:
    return sum(1 for c in fake.calls if c.query and " FROM User " in c.query)


async def test_sync_sets_owner_by_email_status_and_fields(fake: SalesforceFake, make: Make) -> None:
    ann = fake.add_user("Ann@Example.com", "Ann Rep")
    lead = fake.add_lead("jane@acme.test", Handoff_Reason__c="old reason")
    adapter = make()

    fields = {"Handoff_Disposition__c": "sql", "Handoff_Reason__c": ""}
    assert await adapter.sync(record(lead, fields=fields)) == lead

    shown = fake.lead(lead)
    assert shown["OwnerId"] == ann
    assert shown["Status"] == "Working - Contacted"
    assert shown["Handoff_Disposition__c"] == "sql"
    assert shown["Handoff_Reason__c"] is None  # an empty value clears the field
    # The User is looked up once per member, then remembered.
    await adapter.sync(record(lead, status="Closed - Converted"))
    assert fake.lead(lead)["Status"] == "Closed - Converted"
    assert user_queries(fake) == 1


async def test_a_value_longer_than_its_lead_field_is_cut_to_the_fields_length(
    fake: SalesforceFake, make: Make
) -> None:
    """A rep's note holds up to 2,000 characters; a Text field holds what its length says (255
    at most: Salesforce's Text data type), and Salesforce refuses a longer value whole
    (STRING_TOO_LONG), which would hold every CRM write behind it. The adapter reads the
    Lead's field lengths (describe: `length`, in characters) and cuts a longer value there,
    with an ellipsis."""
    fake.lead_fields |= {"Handoff_Note__c": "string", "Handoff_Why__c": "string:80"}
    lead = fake.add_lead("jane@acme.test")
    adapter = make(fields={**FIELDS, "disposition_note": "Handoff_Note__c"})
    note_text, why = "Frozen until Q3. " * 30, "Round robin in territory ANZ: U0REP1 " * 4
    fields = {"Handoff_Note__c": note_text, "Handoff_Why__c": why, "Handoff_Reason__c": "short"}
    assert await adapter.sync(record(lead, owner=None, fields=fields)) == lead
    shown = fake.lead(lead)
    assert shown["Handoff_Note__c"] == note_text[:254] + "…"
    assert shown["Handoff_Why__c"] == why[:79] + "…"
    assert shown["Handoff_Reason__c"] == "short"
    # The lengths are read once, not before every write.
    await adapter.sync(record(lead, owner=None, fields=fields))
    assert sum(1 for c in fake.calls if c.path.endswith("Lead/describe")) == 1
    # A field made shorter since: refused once (the worker tries again), read again, cut.
    fake.lead_fields["Handoff_Why__c"] = "string:40"
    with pytest.raises(CrmRefused, match="STRING_TOO_LONG"):
        await adapter.sync(record(lead, owner=None, fields=fields))
    await adapter.sync(record(lead, owner=None, fields=fields))
    assert fake.lead(lead)["Handoff_Why__c"] == why[:39] + "…"


async def test_a_long_note_with_emoji_is_cut_to_what_salesforce_counts(
    fake: SalesforceFake, make: Make
) -> None:
    """Salesforce counts a character outside the Basic Multilingual Plane (an emoji, a rare
    kanji) as two: it is a surrogate pair in its UTF-16 strings (Salesforce Help 005166849,
    "Surrogate Pair Characters Are Treated as Two Characters"). A rep's note with a 👍 cut to
    255 code points is still too long for a Text(255) field; refused (STRING_TOO_LONG), it
    would hold every CRM write behind it, each probe refused again. The value is cut to the
    field's length as Salesforce counts it, never inside a pair."""
    fake.lead_fields |= {"Handoff_Note__c": "string"}
    lead = fake.add_lead("jane@acme.test")
    adapter = make(fields={**FIELDS, "disposition_note": "Handoff_Note__c"})
    text = "Great call 👍 " * 40  # 13 code points, 14 UTF-16 units each
    fields = {"Handoff_Note__c": text}
    assert await adapter.sync(record(lead, owner=None, fields=fields)) == lead
    shown = fake.lead(lead)["Handoff_Note__c"]
    assert len(shown.encode("utf-16-le")) // 2 <= 255 and shown.endswith("…")
    assert text.startswith(shown[:-1].rstrip())
    # An emoji right at the cut is left out whole, not split into half a pair.
    edge = "x" * 253 + "👍" + "y" * 10
    await adapter.sync(record(lead, owner=None, fields={"Handoff_Note__c": edge}))
    assert fake.lead(lead)["Handoff_Note__c"] == "x" * 253 + "…"


async def test_claim_and_first_touch_times_reach_date_time_fields_as_salesforce_takes_them(
    fake: SalesforceFake, make: Make
) -> None:
    """`claimed_at` and `first_touch_at` as the domain renders them (a time with microseconds,
    as the clock gives it) go to Date/Time fields in the format Salesforce documents for
    dateTime values (`yyyy-MM-ddTHH:mm:ss.SSSZ`); a time not there yet clears its field."""
    fake.lead_fields |= {"Handoff_Claimed__c": "datetime", "Handoff_Touched__c": "datetime"}
    lead_id = fake.add_lead("jane@acme.test", Handoff_Touched__c="2026-03-01T09:00:00.000Z")
    crm = Crm(
        kind="salesforce",
        fields={"claimed_at": "Handoff_Claimed__c", "first_touch_at": "Handoff_Touched__c"},
    )
    claimed = datetime(2026, 3, 4, 15, 30, 12, 345678, tzinfo=UTC)
    view = LeadView(
        id=7,
        external_id="web-7",
        email="jane@acme.test",
        stage=Stage.SAL,
        segment="smb",
        channel="C0SMB",
        tier="warm",
        score=50,
        sla_version="v1",
        received_at=AT,
        claimed_at=claimed,
    )
    adapter = make(fields=crm.fields)
    await adapter.sync(record_of(crm, view, lead_id, {}))
    shown = fake.lead(lead_id)
    assert shown["Handoff_Claimed__c"] == "2026-03-04T15:30:12.345Z"
    assert shown["Handoff_Touched__c"] is None


async def test_sync_owner_from_the_map_and_the_lead_found_by_email(
    fake: SalesforceFake, make: Make
) -> None:
    fake.add_user("ann@example.com")  # the map wins over the email
    mapped = fake.add_user("ann.sales@example.com")
    fake.add_lead("jane@acme.test", IsConverted=True)  # converted: not ours to update
    open_lead = fake.add_lead("JANE@acme.test")
    adapter = make(owners={"U_ANN": mapped})

    assert await adapter.sync(record(None, owner_crm_id=mapped)) == open_lead
    assert fake.lead(open_lead)["OwnerId"] == mapped
    assert user_queries(fake) == 0


async def test_sync_leaves_the_owner_of_a_member_with_no_user(
    fake: SalesforceFake, make: Make
) -> None:
    queue_owner = fake.add_user("queue@example.com")
    lead = fake.add_lead("jane@acme.test", OwnerId=queue_owner)
    fake.add_user("new@example.com", active=False)

    await make().sync(record(lead, owner="U_NEW"))

    assert fake.lead(lead)["OwnerId"] == queue_owner
    assert fake.lead(lead)["Status"] == "Working - Contacted"


async def test_no_lead_with_the_email_is_missing(fake: SalesforceFake, make: Make) -> None:
    with pytest.raises(CrmMissing, match="no open Lead with the lead's email"):
        await make().sync(record(None))


async def test_a_task_is_created_once_even_when_the_answer_is_dropped(
    fake: SalesforceFake, make: Make
) -> None:
    ann = fake.add_user("ann@example.com")
    lead = fake.add_lead("jane@acme.test")
    # A Task whose Subject only matches if `_` were a wildcard: it must not be adopted.
    decoy = fake.add_task(lead, "x [handoff:crmXnote:41]")
    fake.drop(method="POST", path="sobjects/Task*")
    adapter = make()

    with pytest.raises(CrmRetry) as dropped:
        await adapter.note(note(lead))
    assert dropped.value.unknown  # the Task may exist: the worker tries again
    await adapter.note(note(lead))  # the retry adopts the Task the lost answer created

    tasks = [t for t in fake.tasks(lead) if t["Id"] != decoy]
    assert len(tasks) == 1
    task = tasks[0]
    assert task["Subject"] == "Handoff disposition: Sales qualified [handoff:crm_note:41]"
    assert "[handoff:crm_note:41]" in task["Description"]
    assert task["Status"] == "Completed"
    assert task["ActivityDate"] == "2026-03-04"
    assert task["OwnerId"] == ann
    assert [w.sobject for w in fake.writes] == ["Task"]  # one create applied, never two


async def test_an_attempt_task_has_its_type(fake: SalesforceFake, make: Make) -> None:
    lead = fake.add_lead("jane@acme.test")
    adapter = make()
    long_subject = "Handoff: call attempt by " + "A" * 300

    await adapter.note(note(None, "n1", kind="attempt", attempt_kind="call", subject=long_subject))
    await adapter.note(note(lead, "n2", kind="attempt", attempt_kind="linkedin", rep=None))

    call, linkedin = fake.tasks(lead)
    assert (call["Type"], call["TaskSubtype"]) == ("Call", "Call")
    assert len(call["Subject"]) == 255 and call["Subject"].endswith(" [handoff:n1]")
    assert (linkedin["Type"], linkedin["TaskSubtype"]) == ("Other", "Task")


async def test_an_expired_session_is_refreshed(fake: SalesforceFake, make: Make) -> None:
    lead = fake.add_lead("jane@acme.test")
    asked: list[str] = []

    async def refresh() -> str:
        asked.append("new")
        return "sf-session-2"

    adapter = make(refresh)
    fake.token = "sf-session-2"  # the old token is now refused: INVALID_SESSION_ID

    # Two writes meet the expired session at once: one refresh serves both.
    await asyncio.gather(adapter.sync(record(lead, owner=None)), adapter.note(note(lead, rep=None)))
    await adapter.note(note(lead, "crm_note:42", rep=None))

    assert fake.lead(lead)["Status"] == "Working - Contacted"
    assert len(fake.tasks(lead)) == 2
    assert asked == ["new"]  # refreshed once, then the new session is used


async def test_the_oauth_refresh_token_grant_renews_the_session(
    fake: SalesforceFake, make: Make
) -> None:
    lead = fake.add_lead("jane@acme.test")
    grant = oauth_refresh(
        fake.instance_url, "handoff-app", "handoff-secret", "sf-refresh-1", verify=fake.ca_file
    )
    revoked = oauth_refresh(
        fake.instance_url, "handoff-app", "handoff-secret", "revoked", verify=fake.ca_file
    )
    renewing, failing = make(grant), make(revoked)
    fake.expire_session()  # Salesforce ended the session: the next request is refused

    await renewing.sync(record(lead, owner=None))
    assert fake.token == "sf-session-2"
    assert fake.lead(lead)["Status"] == "Working - Contacted"

    with pytest.raises(CrmRefused, match="expired access/refresh token"):
        await failing.sync(record(lead, owner=None))


async def test_a_token_endpoint_outage_is_tried_again_later_not_a_refused_token(
    fake: SalesforceFake, make: Make
) -> None:
    """Salesforce's token endpoint answers 503 once, then closes the connection once: each is
    a CrmRetry (tried again later, no "check the token" alert), and the next try renews the
    session and writes. Only a refused grant (OAuth's 400 `invalid_grant`) is CrmRefused."""
    lead = fake.add_lead("jane@acme.test")
    grant = oauth_refresh(
        fake.instance_url, "handoff-app", "handoff-secret", "sf-refresh-1", verify=fake.ca_file
    )
    adapter = make(grant)
    fake.token = "ended-elsewhere"  # the adapter's session is over: every request renews first

    fake.fail(503, method="POST", path="oauth2/token")
    with pytest.raises(CrmRetry, match="503") as outage:
        await adapter.sync(record(lead, owner=None))
    assert not outage.value.unknown  # nothing was written
    fake.drop(method="POST", path="oauth2/token", after=False)
    with pytest.raises(CrmRetry) as dropped:
        await adapter.sync(record(lead, owner=None))
    assert not dropped.value.unknown
    assert fake.lead(lead)["Status"] == "Open - Not Contacted"

    await adapter.sync(record(lead, owner=None))  # the endpoint is back: renewed, written
    assert fake.token.startswith("sf-session-")
    assert fake.lead(lead)["Status"] == "Working - Contacted"

    revoked = make(
        oauth_refresh(
            fake.instance_url, "handoff-app", "handoff-secret", "revoked", verify=fake.ca_file
        )
    )
    fake.token = "ended-again"
    with pytest.raises(CrmRefused, match=r"invalid_grant.*expired access/refresh token"):
        await revoked.sync(record(lead, owner=None))


async def test_a_renewal_that_hangs_is_given_up_at_the_deadline(
    fake: SalesforceFake, make: Make
) -> None:
    """The token endpoint trickles its answer: requests' timeout (per read) never fires, and
    every write would wait behind the renewal as long as it takes."""
    lead = fake.add_lead("jane@acme.test")
    grant = oauth_refresh(
        fake.instance_url, "handoff-app", "handoff-secret", "sf-refresh-1", verify=fake.ca_file
    )
    adapter = make(grant, timeout=0.5)
    fake.expire_session()
    fake.trickle(3.0, method="POST", path="oauth2/token")
    started = time.monotonic()
    with pytest.raises(CrmRetry):
        await adapter.sync(record(lead, owner=None))
    assert time.monotonic() - started < 1.5  # at the deadline, not when the answer ends
    assert fake.lead(lead)["Status"] == "Open - Not Contacted"


async def test_a_session_that_cannot_be_refreshed_is_refused(
    fake: SalesforceFake, make: Make
) -> None:
    lead = fake.add_lead("jane@acme.test")

    async def broken() -> str:
        raise RuntimeError("the refresh token was revoked")

    async def stale() -> str:
        return "still-wrong"

    without, failing, wrong = make(), make(broken), make(stale)
    fake.token = "rotated"
    with pytest.raises(CrmRefused, match="no way to refresh"):
        await without.sync(record(lead, owner=None))
    with pytest.raises(CrmRefused, match="revoked"):
        await failing.sync(record(lead, owner=None))
    with pytest.raises(CrmRefused, match="refreshed session too"):
        await wrong.sync(record(lead, owner=None))
    assert fake.lead(lead)["Status"] == "Open - Not Contacted"
    assert fake.writes == []


async def test_an_unknown_or_read_only_field_is_refused_naming_it(
    fake: SalesforceFake, make: Make
) -> None:
    lead = fake.add_lead("jane@acme.test")

    unknown = make(fields={"disposition_code": "Disposition_Code__c"})
    with pytest.raises(CrmRefused) as refused:
        await unknown.sync(record(lead, owner=None, fields={"Disposition_Code__c": "sql"}))
    assert refused.value.property == "Disposition_Code__c"
    assert "INVALID_FIELD" in str(refused.value)

    with pytest.raises(CrmRefused) as read_only:
        await make().sync(record(lead, owner=None, fields={"IsConverted": "true"}))
    assert read_only.value.property == "IsConverted"
    assert "INVALID_FIELD_FOR_INSERT_UPDATE" in str(read_only.value)
    assert fake.lead(lead)["Status"] == "Open - Not Contacted"  # nothing half-written


async def test_a_deleted_lead_is_missing(fake: SalesforceFake, make: Make) -> None:
    lead = fake.add_lead("jane@acme.test")
    fake.delete(lead)
    adapter = make()

    # Salesforce answers ENTITY_IS_DELETED; no other Lead has the email either.
    with pytest.raises(CrmMissing, match="no open Lead with the lead's email"):
        await adapter.sync(record(lead, owner=None))
    with pytest.raises(CrmMissing, match="no open Lead with the lead's email"):
        await adapter.note(note(lead, rep=None))
    assert fake.tasks() == []
    refused = [c for c in fake.calls if c.status >= 400]
    assert [(c.method, c.status) for c in refused] == [("PATCH", 404), ("POST", 400)]


async def test_a_merged_lead_is_found_again_by_email(fake: SalesforceFake, make: Make) -> None:
    loser = fake.add_lead("jane@acme.test")
    winner = fake.add_lead("jane@acme.test")
    fake.delete(loser)  # a merge deletes the losing record

    adapter = make()

    assert await adapter.sync(record(loser, owner=None)) == winner
    assert fake.lead(winner)["Status"] == "Working - Contacted"
    await adapter.note(note(loser, rep=None))
    assert len(fake.tasks(winner)) == 1


async def test_a_converted_leads_tasks_go_to_its_contact_and_its_status_is_left(
    fake: SalesforceFake, make: Make
) -> None:
    ann = fake.add_user("ann@example.com")
    lead = fake.add_lead("jane@acme.test")
    adapter = make()
    # A disposition's Task is created on the Lead, but its answer is lost; then a rep
    # converts the Lead, and Salesforce moves its activities to the new Contact.
    fake.drop(method="POST", path="sobjects/Task*")
    with pytest.raises(CrmRetry):
        await adapter.note(note(lead))
    contact = fake.convert(lead)

    await adapter.note(note(lead))  # the retry finds it on the Contact: adopted, not doubled
    await adapter.note(note(lead, "crm_note:42", subject="Handoff attempt: call"))

    assert fake.tasks(lead) == []
    first, second = fake.tasks(contact)
    assert first["Subject"].endswith("[handoff:crm_note:41]")
    assert second["Subject"] == "Handoff attempt: call [handoff:crm_note:42]"
    assert (second["OwnerId"], second["Status"]) == (ann, "Completed")
    # A Contact has no Lead Status: the status write has nowhere to go, and says so.
    with pytest.raises(CrmMissing, match=f"converted to the Contact {contact}"):
        await adapter.sync(record(lead, owner=None))
    assert [w.sobject for w in fake.writes] == ["Task", "Task"]
    assert fake.lead(lead)["Status"] == "Closed - Converted"


async def test_a_lead_found_by_email_that_was_converted_gets_its_tasks_on_the_contact(
    fake: SalesforceFake, make: Make
) -> None:
    first = fake.add_lead("jane@acme.test")
    older = fake.convert(first)
    fake.lead(first)["ConvertedDate"] = "2026-01-05"  # converted before the other one was
    contact = fake.convert(fake.add_lead("Jane@acme.test"))
    adapter = make()

    await adapter.note(note(None, rep=None))  # no open Lead has the email: the Contact does

    assert fake.tasks(older) == [] and len(fake.tasks(contact)) == 1
    with pytest.raises(CrmMissing, match="no open Lead with the lead's email"):
        await adapter.sync(record(None, owner=None))


async def test_limits_and_outages_are_retried_later(fake: SalesforceFake, make: Make) -> None:
    lead = fake.add_lead("jane@acme.test")
    adapter = make()

    # Too many long-running requests at once: it passes.
    concurrent = "ConcurrentPerOrgLongTxn Limit exceeded."
    fake.fail(403, "REQUEST_LIMIT_EXCEEDED", method="PATCH", message=concurrent)
    with pytest.raises(CrmRetry, match="REQUEST_LIMIT_EXCEEDED") as limited:
        await adapter.sync(record(lead, owner=None))
    assert not limited.value.unknown
    # The org's requests of the last 24 hours are used up: hours away, told like a refusal.
    fake.fail(403, "REQUEST_LIMIT_EXCEEDED", method="PATCH")
    with pytest.raises(CrmRefused, match="24 hours"):
        await adapter.sync(record(lead, owner=None))
    # Another transaction holds the record: it passes (not a set-up problem to alert on).
    fake.fail(400, "UNABLE_TO_LOCK_ROW", method="PATCH")
    with pytest.raises(CrmRetry, match="UNABLE_TO_LOCK_ROW") as locked:
        await adapter.sync(record(lead, owner=None))
    assert not locked.value.unknown
    fake.fail(503, method="PATCH")
    with pytest.raises(CrmRetry, match="503") as outage:
        await adapter.sync(record(lead, owner=None))
    assert outage.value.unknown
    assert fake.lead(lead)["Status"] == "Open - Not Contacted"

    await adapter.sync(record(lead, owner=None))
    assert fake.lead(lead)["Status"] == "Working - Contacted"


async def test_check_names_every_problem(fake: SalesforceFake, make: Make) -> None:
    ann = fake.add_user("ann@example.com")
    gone = fake.add_user("gone@example.com", active=False)

    assert await make(owners={"U_ANN": ann}, status={"sql": "Working - Contacted"}).check() == []

    problems = await make(
        fields={**FIELDS, "disposition_note": "Handoff_Note__c", "stage": "IsConverted"},
        status={"reject": "Closed - Disqualified"},
        owners={"U_ANN": ann, "U_BOB": gone, "U_OLD": "005000000000999AAA"},
    ).check()
    text = "\n".join(problems)
    assert len(problems) == 6, text
    assert "crm.status.sql (Handoff's default) is 'Closed - Converted', a converted" in text
    assert "no field 'Handoff_Note__c' (crm.fields.disposition_note)" in text
    assert "'IsConverted' (crm.fields.stage) is read-only" in text
    assert "no value 'Closed - Disqualified' (crm.status.reject)" in text
    assert "U_BOB" in text and "inactive" in text
    assert "U_OLD" in text and "no Salesforce User" in text

    fake.lead_statuses.append(LeadStatus("Qualified", api_name="Qualified_API"))
    (label,) = await make(status={"sql": "Qualified"}).check()
    assert label.startswith("Salesforce's Lead Status has no value 'Qualified' (crm.status.sql)")
    assert label.endswith("map crm.status.sql to 'Qualified_API'")
    fake.fail(400, "INVALID_TYPE", method="GET", path="query*", times=1)
    (unlisted,) = await make(status={"sql": "Qualified_API"}).check()
    assert unlisted.startswith("Salesforce did not list its Lead Status values"), unlisted

    stale = make()
    fake.token = "rotated"
    refused = await stale.check()
    assert len(refused) == 1 and "INVALID_SESSION_ID" in refused[0]


async def test_owner_email_and_lead_record_for_the_inbound_side(
    fake: SalesforceFake, make: Make
) -> None:
    ann = fake.add_user("ann@example.com")
    lead = fake.add_lead(
        "jane@acme.test",
        FirstName="Jane",
        LastName="Doe",
        Title="CTO",
        Phone="+1 555 0100",
        Company="Acme",
        Website="https://www.acme.test/about",
        NumberOfEmployees=250,
        Industry="Software",
        Country="US",
        LeadSource="Web",
    )
    adapter = make()

    assert await adapter.owner_email(ann) == "ann@example.com"
    assert await adapter.owner_email("005000000000999AAA") is None
    assert await adapter.lead_record(lead) == {
        "external_id": f"salesforce:{lead}",
        "email": "jane@acme.test",
        "name": "Jane Doe",
        "title": "CTO",
        "phone": "+1 555 0100",
        "company": {
            "name": "Acme",
            "domain": "acme.test",
            "employees": 250,
            "industry": "Software",
            "country": "US",
        },
        "source": "Web",
        "crm_id": lead,
    }
    fake.delete(lead)
    assert await adapter.lead_record(lead) is None


async def test_the_fake_lists_its_lead_statuses_as_the_leadstatus_object_does(
    fake: SalesforceFake,
) -> None:
    """The LeadStatus object (Object Reference: ApiName, MasterLabel, IsConverted, IsDefault,
    SortOrder; query() only) as a fresh org has it, and as a test configures it; its values
    are the Lead's Status picklist, and a Lead starts at the default one."""
    client = Salesforce(
        instance_url=fake.instance_url, session_id=fake.token, session=Trusting(fake.ca_file)
    )
    fake.lead_statuses.append(LeadStatus("Qualified", api_name="Qualified_API"))

    def run() -> None:
        found = client.query("SELECT ApiName, MasterLabel, IsConverted FROM LeadStatus")
        rows = [(r["ApiName"], r["MasterLabel"], r["IsConverted"]) for r in found["records"]]
        assert rows == [
            ("Open - Not Contacted", "Open - Not Contacted", False),
            ("Working - Contacted", "Working - Contacted", False),
            ("Closed - Converted", "Closed - Converted", True),
            ("Closed - Not Converted", "Closed - Not Converted", False),
            ("Qualified_API", "Qualified", False),
        ]
        assert found["records"][0]["attributes"]["type"] == "LeadStatus"
        converted = client.query(
            "SELECT MasterLabel FROM LeadStatus WHERE IsConverted = true ORDER BY SortOrder"
        )
        assert [r["MasterLabel"] for r in converted["records"]] == ["Closed - Converted"]
        default = client.query("SELECT ApiName, SortOrder FROM LeadStatus WHERE IsDefault = true")
        assert default["records"][0]["ApiName"] == "Open - Not Contacted"
        for bad in (
            "SELECT ApiName, Color FROM LeadStatus",
            "SELECT ApiName FROM LeadStatus WHERE IsConverted = true OR IsDefault = true",
        ):
            try:
                client.query(bad)
            except SalesforceError as error:
                assert error.content[0]["errorCode"] in ("INVALID_FIELD", "MALFORMED_QUERY")
            else:
                raise AssertionError(f"the fake accepted {bad}")
        picklist = sobject(client, "Lead").describe()["fields"]
        status = next(f for f in picklist if f["name"] == "Status")
        assert [v["value"] for v in status["picklistValues"]][-1] == "Qualified_API"

    await asyncio.to_thread(run)
    lead = fake.add_lead("jane@acme.test")
    assert fake.lead(lead)["Status"] == "Open - Not Contacted"
    fake.convert(lead)
    assert fake.lead(lead)["Status"] == "Closed - Converted"


class Trusting(requests.Session):
    """A session trusting the fake's CA (requests lets REQUESTS_CA_BUNDLE override a
    session's own `verify`, so it is given per request)."""

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self.ca_file = ca_file

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        return super().request(method, url, *args, verify=self.ca_file, **kwargs)


async def test_the_fake_answers_as_salesforce_does(fake: SalesforceFake) -> None:
    """The fake's own contract, seen through simple-salesforce: strict SOQL, Salesforce's
    error list, a bearer token, TLS."""
    lead = fake.add_lead("jane@acme.test")
    client = Salesforce(
        instance_url=fake.instance_url, session_id=fake.token, session=Trusting(fake.ca_file)
    )

    def errors(call: Callable[[], object]) -> list[dict[str, Any]]:
        try:
            call()
        except SalesforceError as error:
            return list(error.content)
        raise AssertionError("the fake accepted it")

    def run() -> None:
        malformed = errors(
            lambda: client.query("SELECT Id FROM Lead WHERE Email = 'a' OR Id = 'b'")
        )
        assert malformed[0]["errorCode"] == "MALFORMED_QUERY"
        long_text = errors(lambda: client.query("SELECT Id FROM Task WHERE Description LIKE '%x%'"))
        assert long_text[0]["message"] == "field 'Description' can not be filtered in a query call"
        found = client.query(f"SELECT Id, Status FROM Lead WHERE Id = '{lead}'")
        assert found["records"][0]["Status"] == "Open - Not Contacted"
        missing = errors(lambda: sobject(client, "Lead").get("00Q000000000999AAA"))
        assert missing[0]["errorCode"] == "NOT_FOUND"
        bad_value = errors(
            lambda: sobject(client, "Task").create({"WhoId": lead, "TaskSubtype": "Fax"})
        )
        assert bad_value[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        assert bad_value[0]["fields"] == ["TaskSubtype"]
        assert sobject(client, "Lead").update(lead, {"status": "Working - Contacted"}) == 204
        fake.token = "rotated"
        expired = errors(lambda: client.query("SELECT Id FROM Lead"))
        assert expired == [
            {
                "message": "Session expired or invalid",
                "errorCode": "INVALID_SESSION_ID",
                "fields": [],
            }
        ]

    await asyncio.to_thread(run)
    assert fake.lead(lead)["Status"] == "Working - Contacted"
    assert fake.calls[-1].status == 401


class Counted:
    """A pace that counts the requests made inside it (the CRM worker's window does the same)."""

    def __init__(self) -> None:
        self.requests = 0

    @contextlib.asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        self.requests += 1
        yield


async def test_every_api_request_the_adapter_sends_is_counted_by_its_pace(
    fake: SalesforceFake, make: Make
) -> None:
    """The org's limits count API requests: the Lead found by email, the User by email, the
    look for a Task with the key, the create, and a request made again after a refreshed
    session, each goes through the pace (the token refresh is OAuth, not the API)."""
    fake.add_user("ann@example.com", "Ann Rep")
    lead = fake.add_lead("jane@acme.test")

    async def refresh() -> str:
        return "sf-session-2"

    adapter = make(refresh)
    pace = Counted()
    adapter.pace = pace
    await adapter.sync(record(None))
    fake.token = "sf-session-2"  # the next request meets an expired session
    await adapter.note(note(None))

    api = [call for call in fake.calls if call.path != "oauth2/token"]
    assert len(api) >= 6
    assert pace.requests == len(api)
    assert len(fake.tasks(lead)) == 1


async def test_an_answer_trickling_in_past_the_timeout_is_given_up_as_unknown(
    fake: SalesforceFake, make: Make
) -> None:
    """requests times out each read of the socket, not the whole answer: one that trickles in
    would keep the CRM worker waiting as long as it takes, past the row's lease. The adapter
    stops waiting at its `request_deadline`; the Task may have been created, so the write is
    retried as unknown (never counted as done), and the retry adopts the Task."""
    fake.add_user("ann@example.com", "Ann Rep")
    lead = fake.add_lead("jane@acme.test")
    adapter = make(timeout=0.5)
    assert adapter.request_deadline == 0.5
    fake.trickle(2.0, method="POST", path="sobjects/Task*")
    started = time.monotonic()
    with pytest.raises(CrmRetry) as given_up:
        await adapter.note(note(lead))
    assert given_up.value.unknown
    assert time.monotonic() - started < 1.5  # at the deadline, not when the answer ends
    await adapter.note(note(lead))
    assert len(fake.tasks(lead)) == 1
