"""Salesforce: a Lead's owner, status and mapped fields, and a Task per disposition or attempt.

Written with `simple-salesforce` (synchronous, so every call runs in a thread) on a session
token (`SALESFORCE_INSTANCE_URL`, `SALESFORCE_ACCESS_TOKEN`; docs/crm-salesforce.md).

- `sync`: PATCH the Lead (`record.crm_id`, else the newest unconverted Lead with the email)
  with `Status`, the mapped fields and `OwnerId`: the `owners:` map, else the active User with
  the Slack member's email. A member with no such User leaves the owner as it is (logged).
- `note`: a completed `Task` on the Lead. A Task's `Description` is a long text area, which
  SOQL cannot filter on, so our idempotency key also ends the `Subject` (`… [handoff:KEY]`):
  before creating, a Task on the Lead whose Subject carries the key is looked for and adopted.
- A converted Lead (`CANNOT_UPDATE_CONVERTED_LEAD`) lives on as its `ConvertedContactId`:
  Tasks go to that Contact (also when the email finds no open Lead, only a converted one);
  `sync` leaves it as it is (LeadConverted, a CrmMissing: a Contact has no Lead Status).
- Errors: `INVALID_SESSION_ID` asks `refresh` once for a new token (none, or a refused
  refresh: CrmRefused; a token endpoint that is down, unreachable or slow: CrmRetry);
  `INVALID_FIELD*` and other refusals of our data: CrmRefused naming the field;
  `ENTITY_IS_DELETED` / `NOT_FOUND`: CrmMissing; the org's
  daily API requests used up (`TotalRequests Limit exceeded`): CrmRefused; other
  `REQUEST_LIMIT_EXCEEDED`, 5xx, a broken connection, no answer within `timeout` seconds:
  CrmRetry (`unknown` when a write may have been applied).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import urlparse

import requests
from simple_salesforce import Salesforce, SFType
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from bot.crm.port import UNPACED, CrmError, CrmMissing, CrmRefused, CrmRetry, Pace
from bot.domain.crm import SALESFORCE_STATUS, CrmEvent, CrmNote, CrmRecord
from bot.domain.policy import Crm

log = logging.getLogger(__name__)

T = TypeVar("T")
Emails = Callable[[str], Awaitable[str | None]]
Refresh = Callable[[], Awaitable[str | None]]

API_VERSION = "59.0"
SUBJECT_LENGTH = 255  # Task.Subject is a 255-character text field
# Task.Type's default values and Task.TaskSubtype's (a restricted picklist: only the values
# every org has), by attempt kind; any other kind (linkedin) is a plain "Other" task.
TASK_TYPE = {"call": "Call", "email": "Email"}
TASK_SUBTYPE = {"call": "Call", "email": "Email"}
# Salesforce's codes for "that record is not there".
MISSING = frozenset({"ENTITY_IS_DELETED", "NOT_FOUND"})
# A Lead converted to a Contact is there, but can no longer be updated or referenced
# (CANNOT_UPDATE_CONVERTED_LEAD): the person now lives at its ConvertedContactId.
CONVERTED = "CANNOT_UPDATE_CONVERTED_LEAD"
# ...and for "not now": too many long requests at once, or a record another transaction holds
# (UNABLE_TO_LOCK_ROW). Tried again later; no alert, no pause for a set-up problem.
PASSING = frozenset({"REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW"})
# REQUEST_LIMIT_EXCEEDED's message when the org's requests over a rolling 24 hours are used
# up: hours away, so told like a refusal (one alert), not retried quietly as the same code for
# too many long-running requests at once (ConcurrentRequests, ConcurrentPerOrgLongTxn) is.
DAILY_LIMIT = "TotalRequests Limit exceeded"
# The org's Lead Status values (the LeadStatus object: one record per picklist value; a Lead's
# Status holds its ApiName, IsConverted marks the values lead conversion sets).
LEAD_STATUS_QUERY = "SELECT ApiName, MasterLabel, IsConverted FROM LeadStatus"
# The Lead field types that hold text up to a length (describe's `type`; `length`: "the
# maximum size of the field in Unicode characters"), and the code of a value that was longer.
TEXT_TYPES = frozenset({"string", "textarea"})
TOO_LONG = "STRING_TOO_LONG"
_NO_SUCH_COLUMN = re.compile(r"No such column '([^']+)'")
_UNABLE_FIELDS = re.compile(r"Unable to create/update fields: ([\w, ]+)\.")


class LeadConverted(CrmMissing):
    """Salesforce's CANNOT_UPDATE_CONVERTED_LEAD: the Lead was converted. Missing for the
    Lead's own fields; a Task goes to its Contact instead."""


class _Session(requests.Session):
    """A requests session that always uses our timeout and our CA setting: requests lets
    `REQUESTS_CA_BUNDLE` override a session's own `verify`, so it is passed per request."""

    def __init__(self, timeout: float, verify: str | bool) -> None:
        super().__init__()
        self.timeout, self.ca = timeout, verify

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.ca)
        return super().request(method, url, *args, **kwargs)


class SalesforceAdapter:
    """The CRM port on Salesforce (see the module docstring). `emails(user_id)` gives a Slack
    member's email; `refresh()` a new session token when Salesforce says the session expired
    (None: no way to refresh). `verify`: a CA bundle path, or True for the system's.
    `timeout`: the longest, in seconds, one API request may take, all told."""

    name = "salesforce"

    def __init__(
        self,
        crm: Crm,
        instance_url: str,
        token: str,
        emails: Emails,
        refresh: Refresh | None = None,
        *,
        verify: str | bool = True,
        timeout: float = 30.0,
        version: str = API_VERSION,
    ) -> None:
        self.crm = crm
        self.instance_url = instance_url
        self._emails, self._refresh = emails, refresh
        self._verify, self._timeout, self._version = verify, timeout, version
        # requests takes `timeout` for the connect and for each read of the socket, not for
        # the whole answer: one trickling in never times out, and a call may first wait for a
        # free thread. So `_call` stops waiting at this.
        self.request_deadline = timeout
        self._client = self._connect(token)
        self._users: dict[str, str] = {}  # Slack user id -> Salesforce User Id
        # The Lead's text fields (name, lowercase) -> their length: read once, when a mapped
        # field first has a value, and again after Salesforce says a value was too long.
        self._lengths: dict[str, int] | None = None
        self._renewing = asyncio.Lock()
        self.pace: Pace = UNPACED  # the CRM worker's: every API request is counted

    def _connect(self, token: str) -> Salesforce:
        return Salesforce(
            instance_url=self.instance_url,
            session_id=token,
            version=self._version,
            session=_Session(self._timeout, self._verify),
            object_pairs_hook=dict,
        )

    # -- the port --------------------------------------------------------------------------

    async def sync(self, record: CrmRecord) -> str | None:
        """PATCH the Lead with the record's owner, status and fields; its Id. A converted
        Lead is left as it is (LeadConverted): its Contact has no Lead Status."""
        body = await self._lead_body(record)

        async def patch(lead_id: str) -> None:
            try:
                await self._update("Lead", lead_id, body)
            except CrmRefused as error:
                if TOO_LONG in str(error):
                    self._lengths = None  # a field made shorter since: read them again
                raise
            except LeadConverted as error:
                contact = await self._contact_of(lead_id)
                raise LeadConverted(
                    f"the Lead {lead_id} was converted to the Contact {contact}, which has no "
                    "Lead Status: its status and fields are left as they are (Tasks go to the "
                    "Contact)"
                ) from error

        return await self._on_lead(record.crm_id, record.email, patch)

    async def note(self, note: CrmNote) -> str | None:
        """A completed Task on the Lead, once: a Task carrying the key is adopted. For a
        converted Lead, the Task goes to its Contact (`ConvertedContactId`). Returns None: the
        Lead is kept as the lead's record (the worker stores no other)."""
        marker = f"[handoff:{note.key}]"
        task: dict[str, Any] = {
            "Subject": task_subject(note.subject, marker),
            "Description": note.body,
            "ActivityDate": (note.day or note.at.date()).isoformat(),
            "Status": "Completed",
        }
        if note.kind == "attempt":
            task["Type"] = TASK_TYPE.get(note.attempt_kind or "", "Other")
            task["TaskSubtype"] = TASK_SUBTYPE.get(note.attempt_kind or "", "Task")
        owner = await self._user_of(note.rep, note.rep_crm_id) if note.rep else None
        if owner:
            task["OwnerId"] = owner

        async def create_once(who: str) -> None:
            found = await self._call(
                lambda sf: sf.query(
                    f"SELECT Id FROM Task WHERE WhoId = {soql_string(who)} "
                    f"AND Subject LIKE {soql_like('%' + marker)} LIMIT 1"
                )
            )
            if found["records"]:
                log.info("salesforce task for %s exists already: adopted", note.key)
                return
            body = {**task, "WhoId": who}
            await self._call(lambda sf: sobject(sf, "Task").create(body), write=True)

        async def create_on(who: str) -> None:
            try:
                await create_once(who)
            except LeadConverted:
                # Salesforce moved the Lead's activities to the Contact when it converted it,
                # so a Task our lost answer left is looked for there too.
                await create_once(await self._contact_of(who))

        await self._on_lead(note.crm_id, note.email, create_on, contacts=True)
        return None

    async def event(self, event: CrmEvent) -> None:
        """Salesforce is told through records and Tasks, not events."""

    async def check(self) -> list[str]:
        """What is wrong with the set-up: a session Salesforce refuses, a mapped field the
        Lead lacks or cannot be written, a status value the Lead Status picklist lacks or that
        is a converted status, an `owners:` entry that is not an active User."""
        try:
            fields = {f["name"].lower(): f for f in await self._lead_fields()}
        except CrmRefused as error:
            return [f"Salesforce refuses Handoff: {error}"]
        except CrmError as error:
            return [f"Salesforce could not be asked about the Lead's fields: {error}"]
        problems = []
        for ours, theirs in self.crm.fields.items():
            found = fields.get(theirs.lower())
            if found is None:
                problems.append(
                    f"Salesforce's Lead has no field {theirs!r} (crm.fields.{ours}): create it "
                    "or fix the field map"
                )
            elif not found.get("updateable"):
                problems.append(
                    f"Salesforce's Lead field {theirs!r} (crm.fields.{ours}) is read-only for "
                    "Handoff's user: check its field-level security"
                )
        problems.extend(await self._check_statuses())
        for member, user_id in self.crm.owners.items():
            problems.extend(await self._check_owner(member, user_id))
        return problems

    async def aclose(self) -> None:
        self._client.session.close()

    # -- the inbound side's look-ups -------------------------------------------------------

    async def owner_email(self, user_id: str) -> str | None:
        """The email of the Salesforce User `user_id` (None: no such User)."""
        try:
            user = await self._call(lambda sf: sobject(sf, "User").get(user_id))
        except CrmMissing:
            return None
        return user.get("Email") or None

    async def lead_record(self, lead_id: str) -> dict[str, Any] | None:
        """The Lead `lead_id` as `POST /leads` intake JSON (None: the Lead is gone)."""
        try:
            lead = await self._call(lambda sf: sobject(sf, "Lead").get(lead_id))
        except CrmMissing:
            return None
        return intake_of(lead)

    # -- helpers ---------------------------------------------------------------------------

    async def _lead_body(self, record: CrmRecord) -> dict[str, Any]:
        body: dict[str, Any] = {name: value or None for name, value in record.fields.items()}
        if any(body.values()):
            lengths = await self._text_lengths()
            for name, value in body.items():
                body[name] = cut(value, lengths.get(name.lower()))
        if record.status:
            body["Status"] = record.status
        if record.owner:
            owner = await self._user_of(record.owner, record.owner_crm_id)
            if owner:
                body["OwnerId"] = owner
            else:
                log.warning(
                    "salesforce: no active User has the email of %s; the Lead's owner is "
                    "left as it is (map them under crm.owners)",
                    record.owner,
                )
        return body

    async def _on_lead(
        self,
        crm_id: str | None,
        email: str,
        write: Callable[[str], Awaitable[None]],
        *,
        contacts: bool = False,
    ) -> str:
        """Write to the Lead `crm_id`, else to the one with the email; its Id. A Lead Id that
        is gone (deleted, or merged into another) is looked up again by email once; a
        converted one is not (the person is its Contact now). `contacts`: with no open Lead
        with the email, write to the Contact of the last Lead with it that was converted."""
        lead_id = crm_id or await self._lead_by_email(email, contacts)
        try:
            await write(lead_id)
        except LeadConverted:
            raise
        except CrmMissing:
            if crm_id is None:
                raise
            other = await self._lead_by_email(email, contacts)
            if other == lead_id:
                raise
            await write(other)
            lead_id = other
        return lead_id

    async def _lead_fields(self) -> list[dict[str, Any]]:
        """The Lead's fields as describe gives them (`check`'s, and the writes' lengths), their
        text fields' lengths kept for the writes."""
        described = await self._call(lambda sf: sobject(sf, "Lead").describe())
        fields: list[dict[str, Any]] = described["fields"]
        self._lengths = {
            str(f["name"]).lower(): int(f["length"])
            for f in fields
            if f.get("type") in TEXT_TYPES and f.get("length")
        }
        return fields

    async def _text_lengths(self) -> dict[str, int]:
        """The Lead's text fields and their lengths, in characters (describe's `length`):
        Salesforce refuses a longer value whole (STRING_TOO_LONG)."""
        if self._lengths is None:
            await self._lead_fields()
        return self._lengths or {}

    async def _lead_by_email(self, email: str, contacts: bool = False) -> str:
        """The newest open Lead with the email; with `contacts`, else the Contact the most
        recently converted Lead with the email became."""
        found = await self._call(
            lambda sf: sf.query(
                f"SELECT Id FROM Lead WHERE Email = {soql_string(email)} "
                "AND IsConverted = false ORDER BY CreatedDate DESC LIMIT 1"
            )
        )
        if found["records"]:
            return str(found["records"][0]["Id"])
        if contacts:
            converted = await self._call(
                lambda sf: sf.query(
                    f"SELECT ConvertedContactId FROM Lead WHERE Email = {soql_string(email)} "
                    "AND IsConverted = true ORDER BY ConvertedDate DESC LIMIT 1"
                )
            )
            for lead in converted["records"]:
                if lead.get("ConvertedContactId"):
                    return str(lead["ConvertedContactId"])
        raise CrmMissing("Salesforce has no open Lead with the lead's email")

    async def _contact_of(self, lead_id: str) -> str:
        """The Contact the converted Lead `lead_id` became (Lead.ConvertedContactId)."""
        found = await self._call(
            lambda sf: sf.query(
                f"SELECT ConvertedContactId FROM Lead WHERE Id = {soql_string(lead_id)} LIMIT 1"
            )
        )
        contact = next((r.get("ConvertedContactId") for r in found["records"]), None)
        if not contact:
            raise CrmMissing(f"the Lead {lead_id} was converted, but to no Contact")
        return str(contact)

    async def _user_of(self, member: str, mapped: str | None) -> str | None:
        """The Salesforce User for a Slack member: the map, else the active User with the
        member's email (remembered once found)."""
        if mapped:
            return mapped
        if member in self._users:
            return self._users[member]
        email = await self._emails(member)
        if not email:
            return None
        found = await self._call(
            lambda sf: sf.query(
                f"SELECT Id FROM User WHERE Email = {soql_string(email)} "
                "AND IsActive = true LIMIT 1"
            )
        )
        if not found["records"]:
            return None
        self._users[member] = str(found["records"][0]["Id"])
        return self._users[member]

    async def _check_statuses(self) -> list[str]:
        """Each mapped status the org's Lead Status picklist lacks, and each that is a
        converted status (LeadStatus.IsConverted: the value lead conversion sets, Object
        Reference, LeadStatus), in one query. A plain update converts nothing: a Lead would
        show a converted status with no Contact, if Salesforce takes the write at all."""
        try:
            found = await self._call(lambda sf: sf.query(LEAD_STATUS_QUERY))
        except CrmError as error:
            return [f"Salesforce did not list its Lead Status values (LeadStatus): {error}"]
        values = {str(r["ApiName"]): bool(r.get("IsConverted")) for r in found["records"]}
        labels = {str(r.get("MasterLabel")): str(r["ApiName"]) for r in found["records"]}
        usable = ", ".join(repr(v) for v, converted in values.items() if not converted)
        problems = []
        for key, value in {**SALESFORCE_STATUS, **self.crm.status}.items():
            default = "" if key in self.crm.status else "Handoff's default"
            if value not in values:
                api = labels.get(value)
                fix = (
                    f"it is the label of {api!r}, and a Lead's Status holds the API name: map "
                    f"crm.status.{key} to {api!r}"
                    if api
                    else "add it to the Lead Status picklist, or map "
                    f"crm.status.{key} to one of {usable}"
                )
                problems.append(
                    f"Salesforce's Lead Status has no value {value!r} (crm.status.{key}"
                    f"{default and ', ' + default}), which Handoff would write: {fix}"
                )
            elif values[value]:
                problems.append(
                    f"crm.status.{key}{default and f' ({default})'} is {value!r}, a "
                    "converted Lead Status: Salesforce sets it when it converts a Lead, and "
                    f"Handoff's plain update converts nothing. Map crm.status.{key} to a status "
                    f"that is not converted (one of {usable}), and leave conversion to "
                    "Salesforce (a rep, or your Flow)"
                )
        return problems

    async def _check_owner(self, member: str, user_id: str) -> list[str]:
        try:
            user = await self._call(lambda sf: sobject(sf, "User").get(user_id))
        except CrmMissing:
            return [f"crm.owners maps {member} to {user_id!r}, which is no Salesforce User"]
        except CrmError as error:
            return [f"crm.owners.{member}: Salesforce did not say who {user_id!r} is: {error}"]
        if not user.get("IsActive"):
            return [f"crm.owners maps {member} to {user_id!r}, an inactive Salesforce User"]
        return []

    async def _update(self, name: str, record_id: str, body: dict[str, Any]) -> None:
        await self._call(lambda sf: sobject(sf, name).update(record_id, body), write=True)

    async def _call(self, call: Callable[[Salesforce], T], *, write: bool = False) -> T:
        """Run one client call (one API request, counted by `pace`) in a thread, waited for at
        most `request_deadline` seconds, with Salesforce's errors as ours; an expired session
        is refreshed once and the call made again (a second request, counted too)."""
        for attempt in (1, 2):
            client = self._client
            try:
                async with self.pace.request():
                    thread = asyncio.to_thread(call, client)
                    return await asyncio.wait_for(thread, self.request_deadline)
            except TimeoutError as error:
                # Given up, not cancelled: the thread may still send it, so a write may be done.
                raise CrmRetry(
                    f"Salesforce did not answer within {self.request_deadline:g}s", unknown=write
                ) from error
            except SalesforceExpiredSession as error:
                if attempt == 2:
                    raise CrmRefused(
                        "Salesforce refused the refreshed session too (INVALID_SESSION_ID)"
                    ) from error
                await self._renew(client)
            except SalesforceError as error:
                raise translate(error, write) from error
            except requests.RequestException as error:
                unknown = write and not isinstance(error, requests.ConnectTimeout)
                raise CrmRetry(f"Salesforce did not answer: {error}", unknown=unknown) from error
        raise AssertionError("unreachable")

    async def _renew(self, stale: Salesforce) -> None:
        """A new session from `refresh`, unless another call renewed it meanwhile; a renewal
        that takes longer than `request_deadline` is given up (CrmRetry)."""
        async with self._renewing:
            if self._client is not stale:
                return
            if self._refresh is None:
                raise CrmRefused(
                    "Salesforce says the session expired or is invalid (INVALID_SESSION_ID), "
                    "and Handoff has no way to refresh it: set SALESFORCE_ACCESS_TOKEN anew"
                )
            try:
                # As long as one request may take: a token endpoint that trickles its answer
                # would otherwise hold every write (all wait for this lock) for as long.
                token = await asyncio.wait_for(self._refresh(), self.request_deadline)
            except TimeoutError as error:
                raise CrmRetry(
                    f"Salesforce did not renew the session within {self.request_deadline:g}s"
                ) from error
            except CrmRetry as error:
                # The token endpoint is down or out of reach: the refresh token may be fine.
                raise CrmRetry(
                    f"Salesforce's session expired and could not be renewed now: {error}"
                ) from error
            except Exception as error:
                raise CrmRefused(
                    f"Salesforce's session expired and refreshing it failed: {error}"
                ) from error
            if not token:
                raise CrmRefused("Salesforce's session expired and no new token was given")
            # The stale client is not closed: a call of another task may still be using it.
            self._client = self._connect(token)


def oauth_refresh(
    instance_url: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    *,
    verify: str | bool = True,
    timeout: float = 30.0,
) -> Refresh:
    """A `refresh` for the adapter: the connected app's refresh-token grant at
    `{instance_url}/services/oauth2/token` (env `SALESFORCE_CLIENT_ID`,
    `SALESFORCE_CLIENT_SECRET`, `SALESFORCE_REFRESH_TOKEN`). A refused grant (a 4xx with
    OAuth's `error`, e.g. 400 `invalid_grant` for a revoked or expired refresh token: RFC 6749
    5.2, and Salesforce's "OAuth 2.0 Refresh Token Flow for Renewed Sessions") raises
    CrmRefused with Salesforce's own `error_description`; a 5xx or 429, a broken connection or
    a timeout says nothing about the refresh token and raises CrmRetry."""
    url = f"{instance_url.rstrip('/')}/services/oauth2/token"
    form = {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
    }

    def post() -> str:
        try:
            with _Session(timeout, verify) as session:
                answer = session.post(url, data=form)
        except requests.RequestException as error:
            raise CrmRetry(f"Salesforce's token endpoint did not answer: {error}") from error
        try:
            body = answer.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        status = answer.status_code
        said = body.get("error_description") or body.get("error") or answer.text[:200]
        if status >= 500 or status == 429:
            raise CrmRetry(f"Salesforce's token endpoint failed ({status}: {said})")
        if status != 200 or not body.get("access_token"):
            code = f" {body['error']}" if body.get("error") else ""
            raise CrmRefused(f"Salesforce refused the refresh token ({status}{code}: {said})")
        return str(body["access_token"])

    async def refresh() -> str:
        return await asyncio.to_thread(post)

    return refresh


def sobject(client: Salesforce, name: str) -> SFType:
    """`client.Lead` and the like, typed."""
    return cast(SFType, getattr(client, name))


def translate(error: SalesforceError, write: bool) -> CrmError:
    """Salesforce's answer as one of the port's errors, naming the code and the field."""
    first: Mapping[str, Any] = {}
    if isinstance(error.content, list) and error.content and isinstance(error.content[0], dict):
        first = error.content[0]
    code = str(first.get("errorCode") or f"HTTP {error.status}")
    message = str(first.get("message") or error.content)
    fields = [str(f) for f in first.get("fields") or []]
    said = f"Salesforce answered {error.status} {code}: {message}"
    if code == CONVERTED:
        return LeadConverted(said)
    if code in MISSING or (code == "INVALID_CROSS_REFERENCE_KEY" and fields == ["WhoId"]):
        return CrmMissing(said)
    if code == "REQUEST_LIMIT_EXCEEDED" and DAILY_LIMIT in message:
        return CrmRefused(
            f"{said} (the org's API requests of the last 24 hours are used up: every API "
            "client of the org is refused until older requests roll out of the 24 hours)"
        )
    if code in PASSING or error.status >= 500:
        return CrmRetry(said, unknown=write and error.status >= 500)
    if code.startswith("INVALID_FIELD"):
        named = _NO_SUCH_COLUMN.search(message) or _UNABLE_FIELDS.search(message)
        field = fields[0] if fields else (named.group(1) if named else None)
        return CrmRefused(said, property=field)
    return CrmRefused(said, property=fields[0] if fields else None)


def cut(value: Any, length: int | None) -> Any:
    """A text `value` cut to a field's `length` with an ellipsis; any other as it is. The
    length is counted as Salesforce counts it, in UTF-16 units: a character outside the Basic
    Multilingual Plane (an emoji) is a surrogate pair there and counts two (Salesforce Help
    005166849, "Surrogate Pair Characters Are Treated as Two Characters"). Such a character
    is kept whole or left out, never split."""
    if not isinstance(value, str) or length is None or utf16_length(value) <= length:
        return value
    room, kept = length - 1, 0  # "…" is one unit
    for index, char in enumerate(value):
        kept += 2 if ord(char) > 0xFFFF else 1
        if kept > room:
            return value[:index] + "…"
    return value


def utf16_length(value: str) -> int:
    """`value`'s length in UTF-16 units, as Salesforce measures a text field's value."""
    return len(value.encode("utf-16-le")) // 2


def soql_string(value: str) -> str:
    """`value` as a quoted SOQL string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"'{escaped}'"


def soql_like(pattern: str) -> str:
    """A LIKE pattern where only a leading or trailing `%` is a wildcard: every `%` and `_`
    in between is matched as itself."""
    head = "%" if pattern.startswith("%") else ""
    tail = "%" if pattern.endswith("%") and len(pattern) > 1 else ""
    core = pattern[len(head) : len(pattern) - len(tail)]
    literal = soql_string(core)[1:-1].replace("%", "\\%").replace("_", "\\_")
    return f"'{head}{literal}{tail}'"


def task_subject(subject: str, marker: str) -> str:
    """The Task's Subject: ours, clipped so the key marker always fits at its end."""
    room = SUBJECT_LENGTH - len(marker) - 1
    return f"{subject[:room].rstrip()} {marker}" if room > 0 else marker[:SUBJECT_LENGTH]


def intake_of(lead: Mapping[str, Any]) -> dict[str, Any]:
    """A Salesforce Lead as `POST /leads` intake JSON (empty values left out)."""
    name = lead.get("Name") or " ".join(
        str(part) for part in (lead.get("FirstName"), lead.get("LastName")) if part
    )
    website = str(lead.get("Website") or "")
    host = urlparse(website if "//" in website else f"//{website}").hostname or ""
    company = {
        "name": lead.get("Company"),
        "domain": host.removeprefix("www.") or None,
        "employees": lead.get("NumberOfEmployees"),
        "industry": lead.get("Industry"),
        "country": lead.get("Country"),
        "state": lead.get("State"),
        "postcode": lead.get("PostalCode"),
    }
    intake = {
        "external_id": f"salesforce:{lead['Id']}",
        "email": lead.get("Email"),
        "name": name or None,
        "title": lead.get("Title"),
        "phone": lead.get("Phone"),
        "company": {k: v for k, v in company.items() if v not in (None, "")},
        "source": lead.get("LeadSource"),
        "crm_id": lead["Id"],
    }
    return {k: v for k, v in intake.items() if v not in (None, "")}
