"""The HubSpot adapter: what a lead's change looks like in HubSpot, written with the official
`hubspot-api-client` (synchronous, so every call runs in a thread).

- `sync`: one PATCH of the contact's owner (`hubspot_owner_id`), lead status, lifecycle stage
  and mapped fields. The contact is the record's `crm_id`, else found by email; the owner is
  the `owners:` map's, else the HubSpot owner with the Slack member's email.
- A lifecycle stage only moves forward. HubSpot keeps a contact's later stage when a PATCH
  sets an earlier one (its API reference: the stage is not designed to move backwards; an
  earlier stage is set only after the property was cleared to "" by an earlier request). The
  adapter never clears it, so a rep's rejection or a recycled lead never demotes an
  opportunity or a customer; the PATCH's answer shows the stage kept, which is logged. This
  costs no request: HubSpot compares in the portal's own order of stages (custom ones too),
  at the moment it writes.
- `note`: a note associated with the contact, carrying our key `[handoff:KEY]`. Before
  creating one it reads the contact's notes and adopts a note with the key: a create whose
  answer was lost is never repeated as a second note. (A note marked `fresh`, on its first
  attempt, is created without the look: one request instead of two or three; a 400 to that
  create, which makes nothing, takes the look then, as a contact merged or deleted since is
  refused as an association.) The note goes on the contact the read answers with (a merged
  contact answers under the remaining contact's id). The contact's
  read shows at most 100 of its notes; for one with more, the notes are listed with the v4
  associations API, 500 a page, so a note of ours beyond the first 100 is found too.
- Errors become the port's: 429 → CrmRetry(after=HubSpot's wait), and the adapter sends nothing
  more until that wait is over; a 429 for the account's daily limit (`policyName` DAILY, or
  `X-HubSpot-RateLimit-Daily-Remaining: 0`) → CrmDailyLimit, which stops the writes until
  midnight (hours away, not the rolling window's seconds); 423 Locked and 477 Migration in
  Progress → CrmRetry after their wait (2 s, or the 477's `Retry-After`); 5xx, a broken
  connection, a lost
  answer or none within `timeout` seconds → CrmRetry (`unknown` for writes); 401/403 →
  CrmRefused; a property HubSpot does not have (or a value it will not take) → CrmRefused
  naming the property; a contact that is not there → CrmMissing.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC
from typing import Any

import hubspot
import urllib3
from hubspot.crm.associations.v4 import exceptions as association_errors
from hubspot.crm.contacts import exceptions as contact_errors
from hubspot.crm.objects.notes import exceptions as note_errors
from hubspot.crm.owners import exceptions as owner_errors

from bot.crm.port import UNPACED, CrmDailyLimit, CrmMissing, CrmRefused, CrmRetry, Pace
from bot.domain.crm import CrmEvent, CrmNote, CrmRecord
from bot.domain.policy import Crm
from bot.domain.retry_after import HUBSPOT_MOST, retry_after_seconds

log = logging.getLogger("handoff.crm.hubspot")

HUBSPOT_API_URL = "https://api.hubapi.com"
NOTE_TO_CONTACT = 202  # HubSpot's default association type: note → contact
STANDARD = ("hubspot_owner_id", "hs_lead_status", "lifecyclestage")
# The contact properties read to build a lead (`contact_lead`).
LEAD_PROPERTIES = [
    "email",
    "firstname",
    "lastname",
    "jobtitle",
    "phone",
    "company",
    "website",
    "hs_email_domain",
    "numemployees",
    "industry",
    "country",
    "hs_analytics_source",
    "hubspotscore",
    "hubspot_owner_id",
]
# HubSpot's codes for a property value it will not take: the set-up must change.
_PROPERTY_CODES = ("PROPERTY_DOESNT_EXIST", "INVALID_OPTION", "INVALID_OWNER_ID", "READ_ONLY_VALUE")
_API_ERRORS = (
    contact_errors.ApiException,
    note_errors.ApiException,
    owner_errors.ApiException,
    association_errors.ApiException,
)
# HubSpot's "Error handling" guide: 423 Locked ("Locks will last for 2 seconds, so ... include
# a delay of at least 2 seconds between your API requests") and 477 Migration in Progress.
LOCKED, MIGRATING = 423, 477
LOCK_SECONDS = 2.0
# The v4 associations list gives at most 500 a page (its reference: "Limit 500 per call").
ASSOCIATIONS_PAGE = 500
# An owner id as `GET /crm/v3/owners/{ownerId}` takes it: crmOwners.json types `ownerId` as
# {"type": "integer", "format": "int32"} (HubSpot's ids are never negative).
_INT32_MAX = 2**31 - 1

Emails = Callable[[str], Awaitable[str | None]]


class HubSpotAdapter:
    """One HubSpot portal, reached with a private app's access token. `timeout`: the longest,
    in seconds, one request may take, all told."""

    name = "hubspot"

    def __init__(
        self,
        crm: Crm,
        token: str,
        base_url: str = HUBSPOT_API_URL,
        *,
        emails: Emails | None = None,
        clock: Callable[[], float] = time.monotonic,
        owner_ttl: float = 300.0,
        timeout: float = 30.0,
    ) -> None:
        self.crm = crm
        self._emails = emails
        self._clock = clock
        self._owner_ttl = owner_ttl
        self._timeout = timeout
        # The client takes `timeout` as urllib3's `Timeout(total=…)`, which bounds the connect
        # and each read of the socket (by what the connect left), not the whole answer: one
        # trickling in never times out, and a call may first wait for a free thread. So
        # `_call` stops waiting at this.
        self.request_deadline = timeout
        # No retries inside the client: the CRM worker decides when to try again.
        client = hubspot.HubSpot(access_token=token, host=base_url.rstrip("/"), retry=False)
        self._contacts = client.crm.contacts.basic_api
        self._contact_search = client.crm.contacts.search_api
        self._notes = client.crm.objects.notes.basic_api
        self._notes_batch = client.crm.objects.notes.batch_api
        self._associations = client.crm.associations.v4.basic_api
        self._owners = client.crm.owners.owners_api
        self._owner_ids: dict[str, str] = {}  # email (lower case) -> owner id
        self._owner_emails: dict[str, str] = {}  # owner id -> email
        self._owners_at: float | None = None
        self._owners_lock = asyncio.Lock()
        self._quiet_until = 0.0  # after a 429: nothing is sent before this (clock seconds)
        self._quiet_why = "429"  # what asked for that wait (a 429, a 423 or a 477)
        self.pace: Pace = UNPACED  # the CRM worker's: HubSpot's limit counts every request

    # -- the port ---------------------------------------------------------------------------

    async def sync(self, record: CrmRecord) -> str | None:
        """PATCH the contact to show `record`; returns the contact id. An owner, status or
        lifecycle of None is left as HubSpot has it."""
        properties: dict[str, str] = {}
        owner = record.owner_crm_id or await self._owner_of(record.owner)
        if owner:
            properties["hubspot_owner_id"] = owner
        if record.status is not None:
            properties["hs_lead_status"] = record.status
        if record.lifecycle is not None:
            properties["lifecyclestage"] = record.lifecycle
        properties.update(record.fields)
        if properties.get("lifecyclestage") == "":
            # A clear is HubSpot's way to move a stage back (the next set may then be earlier):
            # never sent, so no mapping can demote a contact.
            del properties["lifecyclestage"]
        contact_id = record.crm_id or await self._contact_by_email(record.email)
        if not properties:
            return contact_id
        body = hubspot.crm.contacts.SimplePublicObjectInput(properties=properties)
        try:
            answer = await self._call(True, self._contacts.update, contact_id, body)
        except CrmMissing:
            if record.crm_id is None:
                raise
            # The stored id is gone: the contact it was merged into, else (deleted) the contact
            # with the email, if any.
            contact_id = await self._remaining(record.crm_id, record.email)
            answer = await self._call(True, self._contacts.update, contact_id, body)
        sent = properties.get("lifecyclestage")
        kept = (getattr(answer, "properties", None) or {}).get("lifecyclestage")
        if sent and kept and kept != sent:
            log.info(
                "HubSpot kept contact %s at lifecycle stage %s: %s is earlier, and a stage "
                "never moves back",
                contact_id,
                kept,
                sent,
            )
        return contact_id

    async def note(self, note: CrmNote) -> str | None:
        """Create the note on the contact, unless a note with our key is there already. The
        look costs one or two reads; a `fresh` note (no earlier attempt) skips it. Returns the
        id of the contact the note is on: another than `note.crm_id` when that contact was
        merged away (its read answers the one that remains) or deleted (found by email), so
        the worker ties the lead to it, as it does with `sync`'s, and the next note is one
        request again, not a 400 and a look each time."""
        contact_id = note.crm_id or await self._contact_by_email(note.email)
        if not note.fresh:
            try:
                contact_id, existing = await self._note_with_key(contact_id, note.key)
            except CrmMissing:
                if note.crm_id is None:
                    raise
                # The stored id is gone (merged or deleted): the contact with the email.
                contact_id = await self._contact_by_email(note.email)
                contact_id, existing = await self._note_with_key(contact_id, note.key)
            if existing is not None:
                return contact_id
        properties = {
            "hs_note_body": note_html(note),
            "hs_timestamp": note.at.astimezone(UTC).isoformat(timespec="milliseconds"),
        }
        owner = note.rep_crm_id or await self._owner_of(note.rep)
        if owner:
            properties["hubspot_owner_id"] = owner
        models = hubspot.crm.objects.notes
        association = models.PublicAssociationsForObject(
            to=models.PublicObjectId(id=contact_id),
            types=[
                models.AssociationSpec(
                    association_category="HUBSPOT_DEFINED", association_type_id=NOTE_TO_CONTACT
                )
            ],
        )
        body = models.SimplePublicObjectInputForCreate(
            properties=properties, associations=[association]
        )
        try:
            await self._call(True, self._notes.create, body)
        except CrmRefused as refused:
            if not note.fresh or getattr(refused, "status", None) != 400 or refused.property:
                raise
            # A 400 creates nothing (a validation error). A fresh note skipped the look that
            # reads the contact, and a contact merged or deleted since is refused as an
            # association: so the note takes that look now (its id, then the email: a gone
            # contact is CrmMissing, not a set-up to change). A 400 for another cause
            # comes again, and is refused then.
            return await self.note(replace(note, fresh=False))
        return contact_id

    async def event(self, event: CrmEvent) -> None:
        """HubSpot learns our changes as properties and notes: nothing to send."""

    async def check(self) -> list[str]:
        """Each mapped contact property HubSpot does not have, each mapped owner it does not
        know, or the refused token. A property is probed with a search filter on it (the specs
        hold no properties endpoint): it reads nothing and changes nothing."""
        problems: list[str] = []
        names = dict.fromkeys([*STANDARD, *self.crm.fields.values()])
        try:
            for name in names:
                try:
                    await self._call(False, self._contact_search.do_search, _has(name))
                except CrmRefused as refused:
                    # A 400 to a filter on the property: HubSpot does not have it (whether or
                    # not its message names it); a 401/403 is the token's problem.
                    if refused.property is None and getattr(refused, "status", None) != 400:
                        raise
                    problems.append(
                        f"HubSpot has no contact property `{name}`"
                        + (" (named in crm.fields)" if name not in STANDARD else "")
                        + ": create it in HubSpot, or change the map in the SLA file"
                    )
            await self._call(False, self._owners.get_page, limit=1)  # the owners scope
            for member, owner_id in self.crm.owners.items():
                if not owner_id_valid(owner_id):
                    problems.append(
                        f"crm.owners maps {member} to {owner_id!r}, which is not a HubSpot "
                        "owner id (a number, as HubSpot's owners list shows it)"
                    )
                elif await self.owner_email(owner_id) is None:
                    problems.append(
                        f"crm.owners maps {member} to HubSpot owner {owner_id}, "
                        "which HubSpot does not have"
                    )
        except CrmRefused as refused:
            problems.append(str(refused))
        except CrmRetry as retry:
            problems.append(f"HubSpot could not be checked now: {retry}")
        return problems

    async def aclose(self) -> None:
        for api in (
            self._contacts,
            self._contact_search,
            self._notes,
            self._notes_batch,
            self._associations,
            self._owners,
        ):
            await asyncio.to_thread(api.api_client.rest_client.pool_manager.clear)

    # -- the inbound side's reads ------------------------------------------------------------

    async def contact_lead(self, crm_id: str) -> dict[str, Any] | None:
        """The contact as intake JSON (`POST /leads`), or None when HubSpot has no such contact."""
        try:
            contact = await self._call(
                False, self._contacts.get_by_id, crm_id, properties=LEAD_PROPERTIES
            )
        except CrmMissing:
            return None
        contact_id, properties = getattr(contact, "id", None), getattr(contact, "properties", None)
        if not contact_id or not isinstance(properties, dict | None):
            # A 200 that is no contact (contacts.json: an `id`, `properties` an object): a proxy's
            # page, a truncated answer. No answer, then: the webhook is answered 503 and sent again.
            raise CrmRetry(f"HubSpot's answer to the read of contact {crm_id} is no contact")
        return lead_of(str(contact_id), properties or {})

    async def owner_email(self, owner_id: str) -> str | None:
        """The email of a HubSpot owner, or None when HubSpot has no such owner (an id that is
        no int32, which the owners API does not take, is not asked about)."""
        if not owner_id_valid(owner_id):
            return None
        if owner_id in self._owner_emails and self._owners_fresh():
            return self._owner_emails[owner_id]
        try:
            owner = await self._call(False, self._owners.get_by_id, owner_id)
        except CrmMissing:
            return None
        return owner.email or None

    # -- lookups -----------------------------------------------------------------------------

    async def _contact_by_email(self, email: str) -> str:
        """The id of the contact with this email. Read by `idProperty=email` rather than
        searched: HubSpot's search index lags a new contact by a few seconds, a read does not."""
        try:
            contact = await self._call(
                False, self._contacts.get_by_id, email, id_property="email", properties=["email"]
            )
        except CrmMissing:
            raise CrmMissing("HubSpot has no contact with the lead's email") from None
        return str(contact.id)

    async def _remaining(self, gone: str, email: str) -> str:
        """The contact that remains of `gone`, whose PATCH was a 404: a contact merged away
        answers a read under the id of the one it was merged into (HubSpot's changelog "Updated
        merge functionality for contacts and companies": "fetching any records using the
        original IDs will return the new merged record with the new ID"), which need not have
        the lead's email as its own; a deleted one is a 404, and the contact with the email is
        taken (CrmMissing: none)."""
        try:
            contact = await self._call(False, self._contacts.get_by_id, gone, properties=["email"])
        except CrmMissing:
            return await self._contact_by_email(email)
        found = str(contact.id)
        return found if found != gone else await self._contact_by_email(email)

    async def _owner_of(self, member: str | None) -> str | None:
        """The HubSpot owner of a Slack member, found by email (None: not found, left as is)."""
        if member is None or self._emails is None:
            return None
        email = await self._emails(member)
        if not email:
            return None
        owners = await self._owner_map()
        owner = owners.get(email.lower())
        if owner is None:
            log.warning("HubSpot has no owner with the email of %s; owner left as it is", member)
        return owner

    def _owners_fresh(self) -> bool:
        return self._owners_at is not None and self._clock() - self._owners_at < self._owner_ttl

    async def _owner_map(self) -> dict[str, str]:
        """Every HubSpot owner by email, read again after `owner_ttl` seconds."""
        async with self._owners_lock:
            if self._owners_fresh():
                return self._owner_ids
            ids: dict[str, str] = {}
            after: str | None = None
            while True:
                kwargs: dict[str, Any] = {"limit": 100}
                if after:
                    kwargs["after"] = after
                page = await self._call(False, self._owners.get_page, **kwargs)
                for owner in page.results:
                    if owner.email:
                        ids[owner.email.lower()] = str(owner.id)
                after = page.paging.next.after if page.paging and page.paging.next else None
                if not after:
                    break
            self._owner_ids = ids
            self._owner_emails = {v: k for k, v in ids.items()}
            self._owners_at = self._clock()
            return ids

    async def _note_with_key(self, contact_id: str, key: str) -> tuple[str, str | None]:
        """The contact's id as HubSpot answers it (a contact merged into another answers under
        the other's id: HubSpot's changelog "Updated merge functionality for contacts and
        companies"), and the id of its note that carries our key, if there is one."""
        contact = await self._call(
            False,
            self._contacts.get_by_id,
            contact_id,
            properties=["email"],
            associations=["notes"],
        )
        found_id = str(contact.id)
        linked = (contact.associations or {}).get("notes")
        ids = [str(a.id) for a in (linked.results if linked else [])]
        if linked is not None and linked.paging and linked.paging.next:
            # More than the read shows (HubSpot shows 100 associations and pages the rest:
            # developers.hubspot.com/changelog/announcing-a-change-to-how-v3-crm-apis-return-
            # association-data). Its cursor belongs to that read, so the whole list is read
            # from the v4 associations API, whose own cursor pages it. The contact's id is
            # the one HubSpot answered with (a merged contact's new id).
            ids = await self._all_notes_of(found_id)
        marker = f"[handoff:{key}]"
        models = hubspot.crm.objects.notes
        for start in range(0, len(ids), 100):
            body = models.BatchReadInputSimplePublicObjectId(
                inputs=[models.SimplePublicObjectId(id=i) for i in ids[start : start + 100]],
                properties=["hs_note_body"],
                properties_with_history=[],
            )
            found = await self._call(False, self._notes_batch.read, body)
            for existing in found.results:
                if marker in ((existing.properties or {}).get("hs_note_body") or ""):
                    return found_id, str(existing.id)
        return found_id, None

    async def _all_notes_of(self, contact_id: str) -> list[str]:
        """The ids of every note associated with the contact, page by page."""
        ids: list[str] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": ASSOCIATIONS_PAGE}
            if after:
                kwargs["after"] = after
            page = await self._call(
                False, self._associations.get_page, "contacts", contact_id, "notes", **kwargs
            )
            ids += [str(a.to_object_id) for a in page.results]
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return list(dict.fromkeys(ids))

    # -- calls and errors --------------------------------------------------------------------

    async def _call(self, write: bool, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One client call (one HTTP request, counted by `pace`) in a thread, waited for at
        most `request_deadline` seconds, its failure turned into the port's errors."""
        wait = self._quiet_until - self._clock()
        if wait > 0:
            raise CrmRetry(
                f"HubSpot asked us to wait {wait:.1f}s more ({self._quiet_why})", after=wait
            )
        try:
            async with self.pace.request():
                call = asyncio.to_thread(fn, *args, _request_timeout=self._timeout, **kwargs)
                try:
                    answer = await asyncio.wait_for(call, self.request_deadline)
                except _API_ERRORS as error:
                    # Mapped inside the pace, which so learns of a daily limit from any request
                    # (an inbound webhook's read too) and sends none more until it resets.
                    raise self._error(error, write) from error
        except TimeoutError as error:
            # Given up, not cancelled: the thread may still send it, so a write may be done.
            raise CrmRetry(
                f"HubSpot did not answer within {self.request_deadline:g}s", unknown=write
            ) from error
        except (AttributeError, TypeError, ValueError) as error:
            if write:
                raise
            # A read's answer the client cannot make a record of (a 200 that is a proxy's page,
            # JSON of another shape): no answer, tried again; not a 500 for the webhook waiting.
            raise CrmRetry(
                f"HubSpot's answer could not be read ({type(error).__name__}: {str(error)[:100]})"
            ) from error
        except urllib3.exceptions.HTTPError as error:
            sent = not isinstance(
                error,
                urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError,
            )
            raise CrmRetry(f"HubSpot did not answer: {error}", unknown=write and sent) from error
        if write and getattr(answer, "id", None) is None:
            # HubSpot answers a create or an update with the object (contacts.json, notes.json:
            # its `id`); anything else is a page from something between (a proxy's 200), and the
            # write may or may not have reached HubSpot: tried again, and a note adopted.
            raise CrmRetry(
                f"HubSpot's answer to a write was not HubSpot's ({type(answer).__name__})",
                unknown=True,
            )
        return answer

    def _quiet(self, seconds: float, why: str) -> None:
        """Nothing is sent for `seconds` (HubSpot's wait), the requests meanwhile refused
        unsent, saying `why` (the longest wait asked for names itself)."""
        until = self._clock() + seconds
        if until >= self._quiet_until:
            self._quiet_until, self._quiet_why = until, why

    def _error(self, error: Any, write: bool) -> Exception:
        """The port's error for a HubSpot error answer (its HTTP status kept as `status`)."""
        status = int(error.status or 0)
        mapped = self._mapped(status, error, write)
        mapped.status = status  # type: ignore[attr-defined]
        return mapped

    def _mapped(self, status: int, error: Any, write: bool) -> Exception:
        headers: Mapping[str, str] = error.headers or {}
        body = _json(error.body)
        message = str(body.get("message") or error.reason or "")
        if status == 429 and daily_limit(headers, body):
            return CrmDailyLimit(
                "HubSpot's daily limit of API requests is used up for the whole account (its "
                "private apps share it) until midnight in the account's time zone (429, policy "
                "DAILY)"
            )
        if status == 429:
            after = retry_after(headers)
            self._quiet(after, "429")
            return CrmRetry(f"HubSpot rate limit: {message}", after=after)
        if status in (LOCKED, MIGRATING):
            # Waits, not a set-up to fix (HubSpot's "Error handling" guide): 423 Locked, "Locks
            # will last for 2 seconds"; 477 Migration in Progress, the account moving between
            # data hosting locations, with "a Retry-After response header indicating how many
            # seconds to wait before retrying the request (typically up to 24 hours)". Nothing
            # was written. Nothing is sent before the wait is over, as after a 429.
            given = headers.get("Retry-After")
            wait = retry_after({"Retry-After": given}) if given is not None else None
            if wait is None and status == LOCKED:
                wait = LOCK_SECONDS
            if wait is None:  # a 477 without its wait: the worker's backoff
                return CrmRetry(f"HubSpot's account is being migrated ({status}): {message}")
            what = "locked" if status == LOCKED else "being migrated"
            self._quiet(wait, f"{status}: the account is {what}")
            return CrmRetry(f"HubSpot's account is {what} ({status}): {message}", after=wait)
        if status == 401:
            return CrmRefused(f"HubSpot refuses the access token (401): {message}")
        if status == 403:
            scopes = sorted(
                {
                    scope
                    for detail in body.get("errors") or []
                    for scope in (detail.get("context") or {}).get("requiredGranularScopes") or []
                }
            )
            needed = f"; the private app needs the scope {' or '.join(scopes)}" if scopes else ""
            return CrmRefused(f"HubSpot refuses this call (403){needed}: {message}")
        if status == 404:
            return CrmMissing(f"HubSpot has no such record: {message}")
        if status >= 500 or status == 0:
            return CrmRetry(f"HubSpot failed ({status}): {message}", unknown=write)
        name, code = refused_property(body)
        if name is not None:
            return CrmRefused(
                f"HubSpot refuses the contact property `{name}` ({code})", property=name
            )
        return CrmRefused(f"HubSpot refused the request ({status}): {message}")


def owner_id_valid(owner_id: str) -> bool:
    """Whether `owner_id` is one `GET /crm/v3/owners/{ownerId}` takes: an int32 (crmOwners.json,
    `#/paths/~1crm~1v3~1owners~1{ownerId}/get/parameters/0/schema`)."""
    return owner_id.isascii() and owner_id.isdigit() and int(owner_id) <= _INT32_MAX


def _has(name: str) -> Any:
    return hubspot.crm.contacts.PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": name, "operator": "HAS_PROPERTY"}]}],
        properties=[],
        limit=1,
        after="0",
        sorts=[],
    )


def _json(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def daily_limit(headers: Mapping[str, str], body: Mapping[str, Any]) -> bool:
    """Whether a 429 is for the account's daily limit, not the burst window. HubSpot's "API
    usage guidelines" (developers.hubspot.com/docs/api/usage-details): the 429's "message and
    policyName will indicate which limit you hit (either daily or secondly)", `policyName`
    DAILY for the day's (TEN_SECONDLY_ROLLING or SECONDLY for the burst's); and its rate-limit
    headers' `X-HubSpot-RateLimit-Daily-Remaining` is "the number of API requests still
    allowed for the current day" (changelog 2018-11-06). "The daily limits reset at midnight
    based on the time zone setting of the HubSpot account" (developers.hubspot.com/apisbytier)."""
    if body.get("policyName") == "DAILY":
        return True
    return str(headers.get("X-HubSpot-RateLimit-Daily-Remaining", "")).strip() == "0"


def retry_after(headers: Mapping[str, str]) -> float:
    """HubSpot's wait after a 429, in seconds: `Retry-After` where sent, else the rolling
    window (`X-HubSpot-RateLimit-Interval-Milliseconds`), else ten seconds. At most
    HUBSPOT_MOST: a value that is no wait (`inf`, `nan`, negative) is not read, and one of years
    would overflow the worker's clock or hold every write for ever (bot/domain/retry_after.py)."""
    now = time.time()  # an HTTP-date's wait is counted from the wall clock: HubSpot's is one
    given = retry_after_seconds(headers.get("Retry-After"), now, default=None, most=HUBSPOT_MOST)
    if given is not None:
        return given
    window = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
    millis = retry_after_seconds(window, now, default=None, most=HUBSPOT_MOST * 1000)
    return millis / 1000 if millis is not None else 10.0


def refused_property(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The property a HubSpot 400 names, and its code: from `errors[].context.propertyName`,
    else from the "Property values were not valid: [...]" message HubSpot sends."""
    for detail in body.get("errors") or []:
        names = (detail.get("context") or {}).get("propertyName") or []
        if names and detail.get("code") in _PROPERTY_CODES:
            return str(names[0]), str(detail["code"])
    message = str(body.get("message") or "")
    start = message.find("[")
    if message.startswith("Property values were not valid") and start >= 0:
        try:
            for item in json.loads(message[start:]):
                if item.get("error") in _PROPERTY_CODES:
                    return str(item.get("name")), str(item["error"])
        except (ValueError, AttributeError):
            pass
    match = re.search(r'Property "([^"]+)" does not exist', message)
    return (match.group(1), "PROPERTY_DOESNT_EXIST") if match else (None, None)


def note_html(note: CrmNote) -> str:
    """The note's body as HubSpot shows it (rich text): the subject in bold, one line each."""
    lines = [f"<strong>{html.escape(note.subject)}</strong>"]
    lines += [html.escape(line) for line in note.body.splitlines()]
    return "<br>".join(lines)


def _employees(value: str | None) -> int | None:
    """HubSpot's employee ranges ("100-500", "1000+") as their lower bound; numbers as they are."""
    match = re.match(r"\s*(\d+)", value or "")
    return int(match.group(1)) if match else None


def _domain(properties: Mapping[str, str | None]) -> str | None:
    website = properties.get("website") or ""
    host = re.sub(r"^[a-z]+://", "", website.strip().lower()).split("/")[0]
    host = host.removeprefix("www.")
    return host or properties.get("hs_email_domain") or None


def lead_of(contact_id: str, properties: Mapping[str, str | None]) -> dict[str, Any]:
    """A HubSpot contact as intake JSON (`external_id` = `hubspot:<id>`); empty values left out."""
    p = properties
    name = " ".join(x for x in (p.get("firstname"), p.get("lastname")) if x) or None
    company = {
        "name": p.get("company"),
        "domain": _domain(p),
        "employees": _employees(p.get("numemployees")),
        "industry": p.get("industry"),
        "country": p.get("country"),
    }
    lead: dict[str, Any] = {
        "external_id": f"hubspot:{contact_id}",
        "email": p.get("email"),
        "name": name,
        "title": p.get("jobtitle"),
        "phone": p.get("phone"),
        "company": {k: v for k, v in company.items() if v not in (None, "")},
        "source": p.get("hs_analytics_source"),
        "crm_id": contact_id,
    }
    score = p.get("hubspotscore")
    if score not in (None, ""):
        try:
            lead["score"] = max(0, min(100, round(float(str(score)))))  # intake takes 0..100
        except ValueError:
            pass
    return {k: v for k, v in lead.items() if v not in (None, "")}
