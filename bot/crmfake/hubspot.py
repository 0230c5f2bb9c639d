"""A local HubSpot: the CRM v3 API paths Handoff uses, served by aiohttp, held to HubSpot's specs.

Every request is checked against HubSpot's published OpenAPI files (`specs/hubspot/`, copied
unchanged from `HubSpot/HubSpot-public-api-spec-collection`) with `openapi-core`; a request
they refuse gets HubSpot's error shape (400, category `VALIDATION_ERROR`). Every answer the fake
gives is checked too: an answer the specs refuse is a bug in the fake, so it is recorded in
`violations` and `stop()` raises `SpecViolation` (the test fails loudly).

What it serves: contacts (read by id or email, PATCH, create, search, merge), owners (list, by
id), notes (create with associations, read, batch read, search), plus the contact's associated
notes: `GET …/contacts/{id}?associations=notes` shows at most 100 of them, with a
`paging.next.after` cursor when there are more (HubSpot's changelog "Announcing a change to how
v3 CRM APIs return association data": "if your request returns more than 100 associations, you
will need to use the value of the after field ... to get the next set"), and the v4 list
`GET /crm/v4/objects/contacts/{id}/associations/notes` gives them all, at most `limit` (500,
the most HubSpot gives: "Limit 500 per call") a page. The v4 associations spec is not among the
files in `specs/`, so that one route is checked by hand (its `limit`, its cursor, the token and
the contacts scope), and answers in its reference's shape. It knows each object's properties:
writing a property HubSpot does not have answers 400 `PROPERTY_DOESNT_EXIST` naming it, an
enumeration value outside its options `INVALID_OPTION`, an unknown owner `INVALID_OWNER_ID`, a
custom `date` or `datetime` property's value HubSpot does not take for its type `INVALID_DATE`
(a date's time must be midnight UTC).
A contact's `lifecyclestage` only moves forward, as HubSpot documents: a PATCH to an earlier
stage answers 200 as usual but keeps the later stage (its answer shows the stage kept); the
stage moves back only once it was cleared (set to "") by an earlier request.
The specs hold no properties endpoint (`/crm/v3/properties/...`), so the fake keeps the
property list itself (`contact_properties`; add custom ones with `add_property`) and refuses a
search filter on a property it does not have, which `check()` uses as a harmless probe.

The token is checked (401), and with `scopes` given, the scopes each call's spec asks for
(403 `MISSING_SCOPES`).

Tests drive it: seed `add_contact` / `add_owner`, read `writes` (method, path, body, time),
`requests` (every request, with `received` times; `most_in_window`) or `story()` (plain
lines, for the demo), inject faults (`throttle_next`, `fail_next`, `drop_next`,
`trickle_next`, a burst limit, whose 429s are kept in `limited`, and the account's daily
limit, `use_up_today`, which resets at midnight in the account's `time_zone`), and send signed
webhooks (`send_subscription`, `send_workflow`, or `subscribe` + `flush_webhooks` to have the
fake tell a subscriber about every contact change, API writes included, as HubSpot does), in
HubSpot's legacy `contact.*` format or, with `webhook_format="generic"`, its generic
`object.*` one.

This module imports nothing of ours beyond the fakes (an import-linter contract says so).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import itertools
import json
import math
import re
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Any, Literal

from aiohttp import ClientSession, web
from multidict import CIMultiDict
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.datatypes import RequestParameters

from bot.crmfake.slow import trickled

Json = dict[str, Any]
SPECS = Path(__file__).parent / "specs" / "hubspot"
SPEC_HOST = "https://api.hubapi.com"  # the specs' server: requests are checked as if sent there

# Which spec file answers for which path prefix.
_SPEC_FILES = (
    ("/crm/v3/objects/contacts", "contacts.json"),
    ("/crm/v3/objects/notes", "notes.json"),
    ("/crm/v3/owners", "crmOwners.json"),
    ("/crm/v3/objects/leads", "leads.json"),
    ("/crm/v3/objects/0-3", "deals.json"),
)

# HubSpot's default association type "note to contact" (HUBSPOT_DEFINED 202) and back (201).
NOTE_TO_CONTACT = 202
CONTACT_TO_NOTE = 201
# The most associations of one type a read of an object shows; the rest are paged (see above).
EMBEDDED_ASSOCIATIONS = 100
# The v4 associations list (`GET /crm/v4/objects/{objectType}/{objectId}/associations/
# {toObjectType}`, `limit` default 500), the one route not in `specs/`.
ASSOCIATIONS_V4 = re.compile(r"^/crm/v4/objects/(contacts|0-1)/([^/]+)/associations/(notes|0-46)$")
ASSOCIATIONS_V4_LIMIT = 500

# Contact properties HubSpot has by default that Handoff reads or writes, with the options of
# the enumerations (HubSpot's default `hs_lead_status` and `lifecyclestage` options).
LEAD_STATUSES = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)
# In HubSpot's default order: a stage moves forward only (see `_backwards`).
LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
ANALYTICS_SOURCES = (
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "REFERRALS",
    "OTHER_CAMPAIGNS",
    "DIRECT_TRAFFIC",
    "OFFLINE",
    "PAID_SOCIAL",
)
# A search's bounds, which contacts.json states in words in PublicObjectSearchRequest
# (`#/components/schemas/PublicObjectSearchRequest/properties`): `limit` "The maximum results
# to return, up to 200 objects", `filterGroups` "Up to 6 groups of filters", `query` "The
# search query string, up to 3000 characters".
SEARCH_LIMIT = 200
SEARCH_GROUPS = 6
SEARCH_QUERY = 3000
EMPLOYEE_RANGES = ("1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000+")
READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})


def _default_contact_properties() -> dict[str, tuple[str, ...] | None]:
    """name -> enumeration options (None: any string)."""
    free = (
        "email firstname lastname jobtitle phone mobilephone company website city state zip "
        "country industry hubspotscore hubspot_owner_id hs_object_id createdate "
        "lastmodifieddate hs_email_domain annualrevenue"
    ).split()
    props: dict[str, tuple[str, ...] | None] = dict.fromkeys(free)
    props["hs_lead_status"] = LEAD_STATUSES
    props["lifecyclestage"] = LIFECYCLE_STAGES
    props["hs_analytics_source"] = ANALYTICS_SOURCES
    props["numemployees"] = EMPLOYEE_RANGES
    return props


NOTE_PROPERTIES: dict[str, tuple[str, ...] | None] = dict.fromkeys(
    "hs_note_body hs_timestamp hubspot_owner_id hs_attachment_ids hs_object_id createdate "
    "lastmodifieddate".split()
)


class SpecViolation(AssertionError):
    """The fake answered something HubSpot's specs do not allow: a bug in the fake."""


@dataclass(frozen=True)
class Write:
    """One write the fake took (or was asked to take): for tests and the demo."""

    method: str
    path: str
    body: Any
    at: float  # the fake's clock, seconds


@dataclass
class Fault:
    """An injected misbehaviour for the next request: `throttle` (429), `error` (5xx), `drop`
    (the write is done, then the connection is closed without an answer), `trickle` (the
    write is done, and its answer arrives a few bytes at a time over `seconds`) or `page` (the
    write is done, and a proxy between answers 200 with its own HTML page instead)."""

    kind: Literal["throttle", "error", "drop", "trickle", "page"]
    status: int = 503
    retry_after: float = 1.0
    method: str | None = None  # only a request with this method (None: any)
    path: str | None = None  # only a request whose path starts so (None: any)
    seconds: float = 0.0  # trickle: how long the answer takes to arrive

    def applies(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or path.startswith(self.path)
        )


@dataclass
class _Object:
    id: str
    properties: dict[str, str]
    created: float
    updated: float
    associations: dict[str, list[str]] = field(default_factory=dict)


class _ApiError(Exception):
    """Answer with HubSpot's error shape."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.category, self.message, self.extra = status, category, message, extra


class _SpecRequest:
    """An aiohttp request as `openapi-core` reads it, addressed to HubSpot's own host."""

    host_url = SPEC_HOST

    def __init__(
        self,
        method: str,
        path: str,
        query: Any,
        headers: Any,
        body: bytes | None,
        content_type: str,
    ) -> None:
        self.method, self.path, self.body, self.content_type = method, path, body, content_type
        self.parameters = RequestParameters(query=query, header=headers, cookie={})


class _SpecResponse:
    def __init__(self, status: int, data: bytes, headers: Mapping[str, str]) -> None:
        self.status_code, self.data = status, data
        self.content_type = "application/json"
        self.headers = CIMultiDict(headers)


@cache
def _spec(name: str) -> OpenAPI:
    # The error answers are declared as `*/*`: read them as the JSON HubSpot sends.
    config = Config(extra_media_type_deserializers={"*/*": json.loads})
    return OpenAPI.from_file_path(str(SPECS / name), config=config)


@cache
def _security(name: str) -> list[tuple[re.Pattern[str], str, list[list[str]]]]:
    """Each operation of a spec file: its path as a pattern, its method, and the scope sets
    that allow it (any one set suffices). Literal paths first (`/search` before `/{id}`)."""
    paths = json.loads((SPECS / name).read_text())["paths"]
    out = []
    for template in sorted(paths, key=lambda t: t.count("{")):
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        for method, operation in paths[template].items():
            if isinstance(operation, dict) and "security" in operation:
                sets = [
                    sorted({s for scheme in alt.values() for s in scheme})
                    for alt in operation["security"]
                ]
                out.append((pattern, method.upper(), sets))
    return out


def required_scopes(method: str, path: str) -> list[list[str]] | None:
    """The scope sets HubSpot's spec asks of this call (None: the spec does not say)."""
    if ASSOCIATIONS_V4.match(path):
        # The v4 reference lets any CRM object scope list associations; a contact's notes
        # are read with the contacts scope.
        return [["crm.objects.contacts.read"], ["crm.objects.contacts.write"]]
    for prefix, name in _SPEC_FILES:
        if path == prefix or path.startswith(prefix + "/"):
            for pattern, verb, sets in _security(name):
                if verb == method and pattern.match(path):
                    return sets
    return None


def _spec_for(path: str) -> OpenAPI | None:
    for prefix, name in _SPEC_FILES:
        if path == prefix or path.startswith(prefix + "/"):
            return _spec(name)
    return None


def _problems(errors: Iterable[Exception]) -> list[str]:
    """Plain descriptions of openapi-core's errors, with the schema's own words."""
    out: list[str] = []
    for error in errors:
        cause = error.__cause__
        details = getattr(cause, "schema_errors", None)
        if details:
            for detail in details:
                where = ".".join(str(p) for p in detail.path) or "body"
                out.append(f"{where}: {detail.message}")
        else:
            out.append(str(cause or error))
    return out


def _archived(query: Mapping[str, Any]) -> bool:
    return str(query.get("archived", "false")).lower() == "true"


def sign_v1(client_secret: str, body: bytes) -> str:
    """HubSpot's v1 signature: hex SHA-256 of client secret + body.
    https://developers.hubspot.com/docs/faq/v1-request-validation"""
    return hashlib.sha256(client_secret.encode() + body).hexdigest()


# The escapes HubSpot decodes in the URI before it signs it (v3), from the table of
# "Validating requests"; every other escape (%20, say) is signed as it is.
_SIGNED_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def sign_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    """HubSpot's v3 signature: base64 HMAC-SHA256 keyed by the client secret of method + URI
    (the escapes of `_SIGNED_DECODED` decoded) + body + timestamp (ms, sent as
    `X-HubSpot-Request-Timestamp`).
    https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests"""
    signed = re.sub("%[0-9A-Fa-f]{2}", lambda m: _SIGNED_DECODED.get(m[0].upper(), m[0]), uri)
    message = method.encode() + signed.encode() + body + str(timestamp_ms).encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _iso(seconds: float) -> str:
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


# A contact's legacy subscription types and their generic counterparts ("Create generic webhook
# subscriptions (BETA)", developers.hubspot.com/docs/guides/webhooks/create-generic-webhook-
# subscriptions: "the subscriptionType will follow the format of object.* [...] For creation,
# deletion, merge, restore, and property change events, the associated object type will be
# provided in the objectTypeId field"; `contact.privacyDeletion` has none: it stays legacy).
WebhookFormat = Literal["legacy", "generic"]
PropertyType = Literal["string", "date", "datetime"]  # a custom contact property's type
GENERIC_TYPES = {
    "contact.creation": "object.creation",
    "contact.propertyChange": "object.propertyChange",
    "contact.merge": "object.merge",
    "contact.deletion": "object.deletion",
    "contact.restore": "object.restore",
}
CONTACT_TYPE_ID = "0-1"


class HubSpotFake:
    """A HubSpot portal with one private app (`token`) and one public app (`client_secret`,
    which signs the webhooks it sends)."""

    def __init__(
        self,
        *,
        token: str = "pat-na1-fake-token",
        client_secret: str = "fake-client-secret",
        portal_id: int = 62515,
        app_id: int = 54321,
        clock: Callable[[], float] = time.time,
        burst: tuple[int, float] | None = None,
        daily: int = 250_000,
        time_zone: tzinfo = UTC,
        scopes: Iterable[str] | None = None,
        webhook_format: WebhookFormat = "legacy",
    ) -> None:
        self.token, self.client_secret = token, client_secret
        # The format of the subscription events it sends: HubSpot's legacy `contact.*`, or the
        # generic `object.*` with `objectTypeId` "0-1" of apps on its current platform.
        self.webhook_format = webhook_format
        self.portal_id, self.app_id = portal_id, app_id
        self.clock = clock
        self.burst = burst  # (requests, seconds): HubSpot's rolling limit, e.g. (100, 10.0)
        # The account's daily limit, and its time zone setting: the limit resets at midnight
        # there (HubSpot's "API usage guidelines": "The daily limits reset at midnight based on
        # the time zone setting of the HubSpot account").
        self.daily, self.time_zone = daily, time_zone
        self._used: dict[date, int] = {}  # requests counted against the daily limit, by day
        # The private app's scopes (None: every scope); a call the spec asks more of is 403.
        self.scopes = frozenset(scopes) if scopes is not None else None
        self.contacts: dict[str, _Object] = {}
        self.notes: dict[str, _Object] = {}
        self.owners: dict[str, Json] = {}
        self.contact_properties = _default_contact_properties()
        self.property_types: dict[str, PropertyType] = {}  # a custom property's, when not text
        self.writes: list[Write] = []
        self.requests: list[tuple[str, str]] = []  # every (method, path) received
        self.answered_retry_after: str | None = None  # the last webhook answer's `Retry-After`
        self.received: list[float] = []  # when each of `requests` came (`clock`)
        self.limited: list[tuple[str, str]] = []  # the requests the burst limit answered 429
        self.limited_daily: list[tuple[str, str]] = []  # ...and the daily limit
        self.violations: list[str] = []
        self.faults: deque[Fault] = deque()
        self.subscribers: list[str] = []
        self.pending_events: list[Json] = []
        self.merged_into: dict[str, str] = {}  # a contact merged away -> the contact it is now
        self.watched: set[str] | None = None  # the properties whose changes are told
        self._ids = itertools.count(1001)
        self._event_ids = itertools.count(1)
        self._window: deque[float] = deque()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> HubSpotFake:
        """Serve on host:port (0: any free port); `base_url` is the HUBSPOT_API_URL."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._host, self._port = host, int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Stop serving; raise SpecViolation if the fake ever answered outside the specs."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.violations:
            raise SpecViolation("; ".join(self.violations))

    async def __aenter__(self) -> HubSpotFake:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("HubSpotFake is not started; await fake.start() first")
        return f"http://{self._host}:{self._port}"

    # -- seeding --------------------------------------------------------------------------

    def _new_id(self) -> str:
        return str(next(self._ids))

    def add_owner(self, email: str, first: str = "", last: str = "") -> str:
        """A HubSpot user who can own records; returns the owner id."""
        owner_id = self._new_id()
        now = _iso(self.clock())
        self.owners[owner_id] = {
            "id": owner_id,
            "email": email,
            "firstName": first,
            "lastName": last,
            "userId": int(owner_id) + 5000,
            "type": "PERSON",
            "teams": [],
            "archived": False,
            "createdAt": now,
            "updatedAt": now,
        }
        return owner_id

    def add_contact(self, email: str, **properties: str) -> str:
        """A contact (properties by HubSpot name); returns its id."""
        contact = self._store(self.contacts, {"email": email, **properties})
        return contact.id

    def add_note(self, contact_id: str, body: str) -> str:
        """A note someone wrote on the contact in HubSpot; returns its id."""
        now = _iso(self.clock())
        obj = self._store(self.notes, {"hs_note_body": body, "hs_timestamp": now})
        obj.associations["contacts"] = [contact_id]
        self.contacts[contact_id].associations.setdefault("notes", []).append(obj.id)
        return obj.id

    def add_property(
        self, name: str, options: Iterable[str] | None = None, type: PropertyType = "string"
    ) -> None:
        """A custom contact property (an enumeration when `options` is given; a `date` or a
        `datetime` takes only the values HubSpot documents for its type, see `_time_problem`)."""
        self.contact_properties[name] = tuple(options) if options is not None else None
        if type == "string":
            self.property_types.pop(name, None)
        else:
            self.property_types[name] = type

    def change_contact(self, contact_id: str, **properties: str) -> None:
        """A person changes the contact in HubSpot: subscribers hear of it (`flush_webhooks`)."""
        contact = self.contacts[contact_id]
        contact.properties.update(properties)
        contact.updated = self.clock()
        for name, value in properties.items():
            self._event("contact.propertyChange", contact.id, name, value, "CRM_UI")

    def delete_contact(self, contact_id: str) -> None:
        """A person deletes the contact in HubSpot: subscribers hear `contact.deletion`
        (`object.deletion` in the generic format); a read of it is a 404 from then on."""
        del self.contacts[contact_id]
        if self.subscribers:
            self.pending_events.append(self.subscription_event("contact.deletion", contact_id))

    def merge_contacts(self, primary: str, merged: str) -> str:
        """A person merges contact `merged` into `primary` in HubSpot: subscribers hear of it
        (`flush_webhooks`); returns the id of the contact that remains."""
        return self._merge(primary, merged, "CRM_UI")["id"]

    def contact(self, contact_id: str) -> dict[str, str]:
        """A contact's properties as stored now."""
        return dict(self.contacts[contact_id].properties)

    def notes_of(self, contact_id: str) -> list[dict[str, str]]:
        """The notes associated with a contact, oldest first."""
        ids = self.contacts[contact_id].associations.get("notes", [])
        return [dict(self.notes[i].properties) for i in ids]

    def story(self) -> list[str]:
        """The writes HubSpot took, one plain line each (for `handoff demo`)."""
        lines = []
        for write in self.writes:
            properties = write.body.get("properties", {}) if isinstance(write.body, dict) else {}
            if write.method == "PATCH":
                contact = write.path.rsplit("/", 1)[-1]
                shown = ", ".join(f"{k}={v}" for k, v in properties.items())
                lines.append(f"contact {contact}: {shown}")
            elif write.path.endswith("/notes"):
                text = re.sub(r"<br>", " | ", properties.get("hs_note_body", ""))
                lines.append("note: " + html.unescape(re.sub(r"<[^>]+>", "", text)))
            else:
                lines.append(f"{write.method} {write.path}")
        return lines

    def _store(self, table: dict[str, _Object], properties: Mapping[str, str]) -> _Object:
        now = self.clock()
        obj = _Object(self._new_id(), {}, now, now)
        obj.properties = {**properties, "hs_object_id": obj.id, "createdate": _iso(now)}
        table[obj.id] = obj
        return obj

    # -- faults ---------------------------------------------------------------------------

    def throttle_next(
        self,
        n: int = 1,
        retry_after: float = 1.0,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """The next n requests (of `method` to `path`, when given) answer 429 with HubSpot's
        rate-limit headers."""
        self.faults.extend(Fault("throttle", 429, retry_after, method, path) for _ in range(n))

    def use_up_today(self) -> None:
        """The account's requests for today (its own day) are used up, by other apps of the
        account too: every request answers HubSpot's daily 429 until midnight in `time_zone`."""
        self._used[self._today()] = self.daily

    def _today(self) -> date:
        return datetime.fromtimestamp(self.clock(), self.time_zone).date()

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next n requests (of `method` to `path`, when given) answer an error, change
        nothing: a 5xx, or another of HubSpot's "Error handling" guide (423 Locked, 477
        Migration in Progress, which sends a `Retry-After`: give `retry_after`)."""
        wait = -1.0 if retry_after is None else retry_after
        self.faults.extend(Fault("error", status, wait, method, path) for _ in range(n))

    def drop_next(self, n: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """The next n requests (of `method` to `path`, when given) are done, then the connection
        is closed without an answer."""
        self.faults.extend(Fault("drop", 0, 1.0, method, path) for _ in range(n))

    def page_next(self, n: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """The next n requests (of `method` to `path`, when given) are done, and answered 200
        with a proxy's HTML page instead of HubSpot's answer."""
        self.faults.extend(Fault("page", 0, 1.0, method, path) for _ in range(n))

    def trickle_next(
        self, seconds: float, n: int = 1, *, method: str | None = None, path: str | None = None
    ) -> None:
        """The next n requests (of `method` to `path`, when given) are done, and their answers
        arrive a few bytes at a time over `seconds`: no read of the socket waits long."""
        self.faults.extend(
            Fault("trickle", 0, 1.0, method, path, seconds=seconds) for _ in range(n)
        )

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.applies(method, path):
                self.faults.remove(fault)
                return fault
        return None

    # -- webhooks -------------------------------------------------------------------------

    def subscribe(self, url: str, properties: Iterable[str] | None = None) -> None:
        """Send contact.creation / contact.propertyChange events to `url` (`flush_webhooks`).
        HubSpot subscribes to the changes of named properties: `properties` (None: every one)."""
        self.subscribers.append(url)
        if properties is not None:
            self.watched = (self.watched or set()) | set(properties)

    def _event(
        self, kind: str, object_id: str, name: str | None, value: str | None, source: str
    ) -> None:
        if not self.subscribers or (name and self.watched is not None and name not in self.watched):
            return
        self.pending_events.append(
            self.subscription_event(
                kind, object_id, property_name=name, property_value=value, change_source=source
            )
        )

    def subscription_event(
        self,
        subscription_type: str,
        object_id: str | int,
        *,
        property_name: str | None = None,
        property_value: str | None = None,
        change_source: str = "CRM_UI",
        occurred_at_ms: int | None = None,
        event_id: int | None = None,
    ) -> Json:
        """One event of a webhook subscription, as HubSpot sends it (docs: "Webhooks API",
        https://developers.hubspot.com/docs/api/webhooks#webhook-payloads). `subscription_type`
        is named in the legacy format; with `webhook_format` "generic", a contact's event goes
        as its `object.*` type with `objectTypeId` "0-1" (GENERIC_TYPES)."""
        generic = self.webhook_format == "generic" and subscription_type in GENERIC_TYPES
        event: Json = {
            "eventId": event_id if event_id is not None else next(self._event_ids),
            "subscriptionId": 12345,
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": occurred_at_ms or int(self.clock() * 1000),
            "subscriptionType": subscription_type,
            "attemptNumber": 0,
            "objectId": int(object_id),
            "changeSource": change_source,
        }
        if generic:
            event["subscriptionType"] = GENERIC_TYPES[subscription_type]
            event["objectTypeId"] = CONTACT_TYPE_ID
        if subscription_type.endswith(".creation"):
            event["changeFlag"] = "NEW"
        if property_name is not None:
            event["propertyName"] = property_name
            event["propertyValue"] = property_value
        if change_source == "INTEGRATION":
            event["sourceId"] = str(self.app_id)
        return event

    def merge_event(
        self,
        primary: str | int,
        merged: Iterable[str | int],
        *,
        new: str | int | None = None,
        change_source: str = "CRM_UI",
        event_id: int | None = None,
        moved: int = 0,
    ) -> Json:
        """A `contact.merge` event (`object.merge` in the generic format), with the fields
        HubSpot's developer changelog names ("New
        subscription types for Webhooks"): `primaryObjectId` ("The object id of the resulting
        primary contact"), `mergedObjectIds` ("An array of Ids that represent the secondary
        contacts"), `newObjectId` ("the Id of the object that was created from the result of
        the merge. This is separate from primaryObjectId because in some cases a new object is
        created from the result of a merge": the primary's own id when none was) and
        `numberOfPropertiesMoved`."""
        result = int(new if new is not None else primary)
        event = self.subscription_event(
            "contact.merge", result, change_source=change_source, event_id=event_id
        )
        return event | {
            "primaryObjectId": int(primary),
            "mergedObjectIds": [int(i) for i in merged],
            "newObjectId": result,
            "numberOfPropertiesMoved": moved,
        }

    def _signed_headers(
        self, method: str, url: str, body: bytes, timestamp_ms: int | None
    ) -> dict[str, str]:
        """HubSpot sends the v3 signature on every request it makes, and an older one (v1 for
        webhook subscriptions) for backward compatibility (docs: "Validating requests",
        https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests)."""
        ts = timestamp_ms if timestamp_ms is not None else int(self.clock() * 1000)
        return {
            "Content-Type": "application/json",
            "X-HubSpot-Request-Timestamp": str(ts),
            "X-HubSpot-Signature-v3": sign_v3(self.client_secret, method, url, body, ts),
        }

    async def send_subscription(
        self, url: str, events: list[Json], *, timestamp_ms: int | None = None
    ) -> int:
        """POST a batch of subscription events (a JSON array), signed v1 and v3; the status."""
        body = json.dumps(events, separators=(",", ":")).encode()
        headers = self._signed_headers("POST", url, body, timestamp_ms)
        headers["X-HubSpot-Signature"] = sign_v1(self.client_secret, body)
        headers["X-HubSpot-Signature-Version"] = "v1"
        return await self._post(url, body, headers)

    async def send_workflow(
        self, url: str, payload: Json, *, timestamp_ms: int | None = None
    ) -> int:
        """POST a workflow "Send a webhook" payload, signed v3; the status."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return await self._post(url, body, self._signed_headers("POST", url, body, timestamp_ms))

    async def flush_webhooks(self) -> list[int]:
        """Tell every subscriber about the changes since the last flush, in arrays of at most
        100 events, as HubSpot batches them ("Webhooks API"); the status of each request."""
        events, self.pending_events = self.pending_events, []
        batches = [events[start : start + 100] for start in range(0, len(events), 100)]
        return [await self.send_subscription(url, b) for url in self.subscribers for b in batches]

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        async with ClientSession() as session, session.post(url, data=body, headers=headers) as r:
            await r.read()
            self.answered_retry_after = r.headers.get("Retry-After")
            return r.status

    # -- the API --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        path = request.path.rstrip("/") or "/"  # HubSpot takes `/crm/v3/owners/` as well
        self.requests.append((request.method, path))
        self.received.append(self.clock())
        spec = _spec_for(path)
        by_hand = ASSOCIATIONS_V4.match(path)
        if spec is None and by_hand is None:
            return self._error(404, "OBJECT_NOT_FOUND", f"No API at {path}", None, None)
        spec_request = _SpecRequest(
            request.method.lower(),
            path,
            request.query,
            request.headers,
            raw or None,
            request.content_type,
        )
        try:
            self._authorize(request, path)
            self._count(request.method, path)
            fault = self._take_fault(request.method, path)
            if fault is not None and fault.kind == "throttle":
                raise _ApiError(
                    429,
                    "RATE_LIMITS",
                    "You have reached your secondly limit.",
                    errorType="RATE_LIMIT",
                    policyName="TEN_SECONDLY_ROLLING",
                    _retry_after=fault.retry_after,
                )
            if fault is not None and fault.kind == "error":
                wait = {"_retry_after": fault.retry_after} if fault.retry_after >= 0 else {}
                raise _ApiError(
                    fault.status, "INTERNAL_ERROR", "Internal error, please retry", **wait
                )
            if spec is None and by_hand is not None:
                status, answer = 200, self._associations_v4(request.method, by_hand, request.query)
            else:
                assert spec is not None
                unmarshalled = self._unmarshal(spec, spec_request)
                status, answer = self._route(request.method, path, unmarshalled, raw)
        except _ApiError as error:
            return self._error(
                error.status, error.category, error.message, spec, spec_request, error.extra
            )
        if fault is not None and fault.kind == "drop":
            # The write is done; the answer never arrives.
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=204)
        if fault is not None and fault.kind == "page":
            page = "<html><body>502 Bad Gateway (proxy)</body></html>"
            return web.Response(status=200, text=page, content_type="text/html")
        response = self._answer(status, answer, spec, spec_request)
        if fault is not None and fault.kind == "trickle":
            return await trickled(request, response, fault.seconds)
        return response

    def _authorize(self, request: web.Request, path: str) -> None:
        """The token, then its scopes against the ones the spec asks of this call."""
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            raise _ApiError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        sets = required_scopes(request.method, path)
        if self.scopes is None or not sets or any(set(s) <= self.scopes for s in sets):
            return
        raise _ApiError(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. Read more "
            "about required scopes here: https://developers.hubspot.com/scopes.",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": sorted({x for s in sets for x in s})},
                }
            ],
            links={"scopes": "https://developers.hubspot.com/scopes"},
        )

    def most_in_window(self, seconds: float) -> int:
        """The most requests received (answered 429 or not) in any `seconds`, as HubSpot's
        rolling window counts them."""
        times = sorted(self.received)
        most, start = 0, 0
        for end, at in enumerate(times):
            while times[start] <= at - seconds:
                start += 1
            most = max(most, end - start + 1)
        return most

    def _count(self, method: str, path: str) -> None:
        """HubSpot's burst limit: `burst[0]` requests in any `burst[1]` seconds (HubSpot's
        "API usage guidelines and limits": 100 per 10 s for a private app on Free and Starter,
        190 on Professional and Enterprise), every request counted, reads included; and its
        daily limit, first."""
        self._count_daily(method, path)
        if self.burst is None:
            return
        limit, seconds = self.burst
        now = self.clock()
        while self._window and self._window[0] <= now - seconds:
            self._window.popleft()
        if len(self._window) >= limit:
            self.limited.append((method, path))
            wait = self._window[0] + seconds - now
            raise _ApiError(
                429,
                "RATE_LIMITS",
                "You have reached your secondly limit.",
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
                _retry_after=wait,
            )
        self._window.append(now)

    def _count_daily(self, method: str, path: str) -> None:
        """The account's daily limit. Used up, HubSpot answers 429 in the shape its "API usage
        guidelines" show: `errorType` RATE_LIMIT, `policyName` DAILY ("The message and
        policyName will indicate which limit you hit (either daily or secondly)"), and
        `X-HubSpot-RateLimit-Daily-Remaining: 0`; no `Retry-After` (none is documented)."""
        today = self._today()
        if self._used.get(today, 0) >= self.daily:
            self.limited_daily.append((method, path))
            raise _ApiError(
                429,
                "RATE_LIMITS",
                "You have reached your daily limit.",
                errorType="RATE_LIMIT",
                policyName="DAILY",
                requestId=str(uuid.uuid4()),
            )
        self._used[today] = self._used.get(today, 0) + 1

    def _rate_headers(self, retry_after: float | None) -> dict[str, str]:
        """HubSpot's `X-HubSpot-RateLimit-*` headers (docs: "API usage guidelines and limits",
        https://developers.hubspot.com/docs/api/usage-details); `Retry-After` on a 429."""
        limit, seconds = self.burst or (100, 10.0)
        remaining = 0 if retry_after is not None else max(0, limit - len(self._window))
        headers = {
            "X-HubSpot-RateLimit-Daily": str(self.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(
                max(0, self.daily - self._used.get(self._today(), 0))
            ),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(seconds * 1000)),
            "X-HubSpot-RateLimit-Max": str(limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
        }
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return headers

    def _unmarshal(self, spec: OpenAPI, spec_request: _SpecRequest) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openapi-core cannot check oauth2: we check tokens
            result = spec.unmarshal_request(spec_request)
        if result.errors:
            names = {type(e).__name__ for e in result.errors}
            if names & {"PathNotFound", "OperationNotFound"}:
                raise _ApiError(404, "OBJECT_NOT_FOUND", f"No API at {spec_request.path}")
            raise _ApiError(
                400,
                "VALIDATION_ERROR",
                "Invalid input: " + "; ".join(_problems(result.errors)),
            )
        return result

    def _answer(
        self,
        status: int,
        answer: Json,
        spec: OpenAPI | None,
        spec_request: _SpecRequest | None,
        retry_after: float | None = None,
    ) -> web.Response:
        data = json.dumps(answer).encode()
        headers = self._rate_headers(retry_after)
        if spec is not None and spec_request is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = spec.unmarshal_response(spec_request, _SpecResponse(status, data, headers))
            if result.errors:
                problem = f"{spec_request.method.upper()} {spec_request.path} -> {status}: "
                self.violations.append(problem + "; ".join(_problems(result.errors)))
        return web.Response(
            status=status, body=data, headers=headers, content_type="application/json"
        )

    def _error(
        self,
        status: int,
        category: str,
        message: str,
        spec: OpenAPI | None,
        spec_request: _SpecRequest | None,
        extra: Mapping[str, Any] | None = None,
    ) -> web.Response:
        extra = dict(extra or {})
        retry_after = extra.pop("_retry_after", None)
        body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            **extra,
        }
        return self._answer(status, body, spec, spec_request, retry_after)

    # -- routes ---------------------------------------------------------------------------

    def _route(self, method: str, path: str, request: Any, raw: bytes) -> tuple[int, Json]:
        query = request.parameters.query  # the body was validated; routes read the raw JSON
        parts = path.split("/")[3:]  # after /crm/v3/
        if parts[0] == "owners":
            if len(parts) == 1:
                return 200, self._owners_page(query)
            return 200, self._owner(parts[1], query)
        kind = parts[1]  # objects/<kind>/...
        table = self.contacts if kind == "contacts" else self.notes
        known = self.contact_properties if kind == "contacts" else NOTE_PROPERTIES
        if kind not in ("contacts", "notes"):
            raise _ApiError(404, "OBJECT_NOT_FOUND", f"The fake holds no {kind}")
        rest = parts[2:]
        if rest == [] and method == "POST":
            return 201, self._create(kind, table, known, json.loads(raw))
        if rest == ["merge"] and kind == "contacts" and method == "POST":
            body = json.loads(raw)
            merged = self._merge(body["primaryObjectId"], body["objectIdToMerge"], "INTEGRATION")
            self.writes.append(Write("POST", path, body, self.clock()))
            return 200, merged
        if rest == ["search"]:
            return 200, self._search(table, known, json.loads(raw))
        if rest == ["batch", "read"]:
            found = self._batch_read(table, json.loads(raw))
            return (207 if found.get("errors") else 200), found
        if len(rest) == 1 and method == "GET":
            return 200, self._read(kind, table, rest[0], query)
        if len(rest) == 1 and method == "PATCH":
            return 200, self._update(kind, table, known, rest[0], query, json.loads(raw))
        raise _ApiError(405, "VALIDATION_ERROR", f"The fake does not serve {method} {path}")

    def _owners_page(self, query: Mapping[str, Any]) -> Json:
        # `archived` (crmOwners.json: "Whether to return only results that have been
        # archived", default false): the live owners, or only the archived ones.
        archived = _archived(query)
        owners = [o for o in self.owners.values() if o["archived"] == archived]
        if query.get("email"):
            owners = [o for o in owners if o["email"].lower() == query["email"].lower()]
        return self._page(owners, query)

    def archive_owner(self, owner_id: str) -> None:
        """Deactivate an owner, as removing a user from the portal does."""
        self.owners[owner_id]["archived"] = True

    @staticmethod
    def _page(items: list[Json], query: Mapping[str, Any], most: int = 100) -> Json:
        """A page of `items`; `after` is an opaque cursor (`NextPage.after`: a list's are base64,
        like the spec's example `NTI1Cg%3D%3D`; a search's are offsets, `"0"` first), `limit`
        1 to `most` (a search's: SEARCH_LIMIT)."""
        after, limit = str(query.get("after") or ""), query.get("limit", 100)
        try:
            cursor = after if after.isdigit() else base64.b64decode(after, validate=True)
            start = int(cursor) if after else 0
        except (ValueError, TypeError):
            raise _ApiError(
                400, "VALIDATION_ERROR", f"Invalid paging cursor after={after!r}"
            ) from None
        if not str(limit).lstrip("-").isdigit() or not 1 <= int(limit) <= most:
            raise _ApiError(400, "VALIDATION_ERROR", f"limit must be 1 to {most}, not {limit!r}")
        end = start + int(limit)
        page: Json = {"results": items[start:end]}
        if end < len(items):
            page["paging"] = {"next": {"after": base64.b64encode(str(end).encode()).decode()}}
        return page

    def _owner(self, owner_id: str, query: Mapping[str, Any]) -> Json:
        owner = self.owners.get(owner_id)
        if query.get("idProperty") == "userId":
            owner = next((o for o in self.owners.values() if str(o["userId"]) == owner_id), None)
        if owner is None or owner["archived"] != _archived(query):
            raise _ApiError(404, "OBJECT_NOT_FOUND", f"Owner {owner_id} not found")
        return owner

    def _find(
        self, kind: str, table: dict[str, _Object], object_id: str, id_property: str | None
    ) -> _Object:
        if id_property and id_property != "hs_object_id":
            found = next(
                (
                    o
                    for o in table.values()
                    if o.properties.get(id_property, "").lower() == object_id.lower()
                ),
                None,
            )
        else:
            found = table.get(object_id)
        if found is None:
            raise _ApiError(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [object_id]},
            )
        return found

    def _view(self, obj: _Object, properties: Iterable[str] | None) -> Json:
        """An object as HubSpot shows it: the asked-for properties that have a value (HubSpot
        ignores names it does not have), or its default few."""
        # `properties=a&properties=b` or `properties=a,b`: HubSpot reads both.
        names = [n for p in properties or ("email", "firstname", "lastname") for n in p.split(",")]
        names += ["hs_object_id", "createdate", "lastmodifieddate"]
        shown = {n: obj.properties[n] for n in names if obj.properties.get(n) not in (None, "")}
        shown["lastmodifieddate"] = _iso(obj.updated)
        return {
            "id": obj.id,
            "properties": shown,
            "createdAt": _iso(obj.created),
            "updatedAt": _iso(obj.updated),
            "archived": False,
        }

    def _read(
        self, kind: str, table: dict[str, _Object], object_id: str, query: Mapping[str, Any]
    ) -> Json:
        if kind == "contacts" and query.get("idProperty") in (None, "hs_object_id"):
            # HubSpot's changelog ("Updated merge functionality for contacts and companies"):
            # "fetching any records using the original IDs will return the new merged record
            # with the new ID".
            object_id = self.merged_into.get(object_id, object_id)
        obj = self._find(kind, table, object_id, query.get("idProperty"))
        view = self._view(obj, query.get("properties"))
        wanted = [a for a in query.get("associations") or [] if a in obj.associations]
        if wanted:
            singular = kind.rstrip("s")
            view["associations"] = {}
            for a in wanted:
                ids = obj.associations[a]
                shown: Json = {
                    "results": [
                        {"id": i, "type": f"{singular}_to_{a.rstrip('s')}"}
                        for i in ids[:EMBEDDED_ASSOCIATIONS]
                    ]
                }
                if len(ids) > EMBEDDED_ASSOCIATIONS:
                    # HubSpot pages the rest (its changelog above); the cursor is opaque.
                    after = base64.b64encode(f"{a}:{EMBEDDED_ASSOCIATIONS}".encode()).decode()
                    shown["paging"] = {"next": {"after": after}}
                view["associations"][a] = shown
        return view

    def _associations_v4(self, method: str, match: re.Match[str], query: Mapping[str, Any]) -> Json:
        """A page of a contact's notes from the v4 associations list, in its reference's
        shape (`CollectionResponseMultiAssociatedObjectWithLabelForwardPaging`)."""
        if method != "GET":
            raise _ApiError(405, "VALIDATION_ERROR", f"The fake does not serve {method} here")
        contact_id = self.merged_into.get(match.group(2), match.group(2))
        contact = self.contacts.get(contact_id)
        if contact is None:
            raise _ApiError(404, "OBJECT_NOT_FOUND", f"No contact {match.group(2)}")
        limit = str(query.get("limit", ASSOCIATIONS_V4_LIMIT))
        if not limit.lstrip("-").isdigit() or not 1 <= int(limit) <= ASSOCIATIONS_V4_LIMIT:
            raise _ApiError(
                400,
                "VALIDATION_ERROR",
                f"limit must be 1 to {ASSOCIATIONS_V4_LIMIT}, not {limit!r}",
            )
        after = str(query.get("after") or "")
        try:
            start = int(base64.b64decode(after, validate=True)) if after else 0
        except (ValueError, TypeError):
            raise _ApiError(
                400, "VALIDATION_ERROR", f"Invalid paging cursor after={after!r}"
            ) from None
        ids = contact.associations.get("notes", [])
        end = start + int(limit)
        page: Json = {
            "results": [
                {
                    "toObjectId": i,
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": CONTACT_TO_NOTE}
                    ],
                }
                for i in ids[start:end]
            ]
        }
        if end < len(ids):
            page["paging"] = {"next": {"after": base64.b64encode(str(end).encode()).decode()}}
        return page

    def _check_properties(
        self, known: Mapping[str, tuple[str, ...] | None], values: Mapping[str, Any]
    ) -> None:
        """HubSpot's answer to property values it will not take: every one, named."""
        problems: list[Json] = []
        for name, value in values.items():
            text = "" if value is None else str(value)
            if name not in known:
                problems.append(
                    self._invalid(
                        name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
                    )
                )
            elif name in READ_ONLY:
                problems.append(
                    self._invalid(
                        name,
                        "READ_ONLY_VALUE",
                        f'"{name}" is a read only property; its value cannot be set.',
                    )
                )
            elif name == "hubspot_owner_id" and text and text not in self.owners:
                problems.append(
                    self._invalid(name, "INVALID_OWNER_ID", f"{text} is not a valid owner id")
                )
            elif (
                known is self.contact_properties
                and (kind := self.property_types.get(name))
                and text
                and (problem := _time_problem(kind, text))
            ):
                problems.append(self._invalid(name, *problem))
            elif (options := known[name]) is not None and text and text not in options:
                problems.append(
                    self._invalid(
                        name,
                        "INVALID_OPTION",
                        f"{text} was not one of the allowed options: {', '.join(options)}",
                    )
                )
        if problems:
            raise _ApiError(
                400,
                "VALIDATION_ERROR",
                "Property values were not valid: " + json.dumps(problems),
                errors=[
                    {
                        "message": p["message"],
                        "code": p["error"],
                        "context": {"propertyName": [p["name"]]},
                    }
                    for p in problems
                ],
            )

    @staticmethod
    def _invalid(name: str, code: str, message: str) -> Json:
        return {
            "isValid": False,
            "message": message,
            "error": code,
            "name": name,
            "localizedErrorMessage": message,
        }

    def _update(
        self,
        kind: str,
        table: dict[str, _Object],
        known: Mapping[str, tuple[str, ...] | None],
        object_id: str,
        query: Mapping[str, Any],
        body: Json,
    ) -> Json:
        obj = self._find(kind, table, object_id, query.get("idProperty"))
        values = {k: "" if v is None else str(v) for k, v in body["properties"].items()}
        self._check_properties(known, values)
        self.writes.append(Write("PATCH", f"/crm/v3/objects/{kind}/{obj.id}", body, self.clock()))
        applied = dict(values)
        if kind == "contacts" and self._backwards(known, obj, values.get("lifecyclestage")):
            del applied["lifecyclestage"]  # taken without an error, and not applied
        changed = {k: v for k, v in applied.items() if obj.properties.get(k, "") != v}
        obj.properties.update(applied)
        obj.updated = self.clock()
        if kind == "contacts":
            for name, value in changed.items():
                self._event("contact.propertyChange", obj.id, name, value, "INTEGRATION")
        return self._view(obj, values.keys())

    @staticmethod
    def _backwards(
        known: Mapping[str, tuple[str, ...] | None], contact: _Object, stage: str | None
    ) -> bool:
        """Whether `stage` is earlier than the contact's lifecycle stage, in the portal's order
        of stages (the property's options, in order). HubSpot's API reference (contacts, "Update
        an existing contact by email", property notes) says the stage is not designed to move
        backwards: to set an earlier one, first set it to "" (an empty string), then set it. A
        direct set to an earlier stage is answered as a success and changes nothing (HubSpot's
        developer forum, "Update Lifecycle Stage Using API"). A clear ("") is applied. Sources:
        developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/v1/
        post-contacts-v1-contact-email-email-profile and
        integrate.hubspot.com/t/update-lifecycle-stage-using-api/1333 (docs/crm-hubspot.md)."""
        order = known.get("lifecyclestage") or ()
        now = contact.properties.get("lifecyclestage") or ""
        if not stage or stage not in order or now not in order:
            return False
        return order.index(stage) < order.index(now)

    def _create(
        self,
        kind: str,
        table: dict[str, _Object],
        known: Mapping[str, tuple[str, ...] | None],
        body: Json,
    ) -> Json:
        values = {k: "" if v is None else str(v) for k, v in body["properties"].items()}
        self._check_properties(known, values)
        if kind == "notes" and not values.get("hs_timestamp"):
            raise _ApiError(400, "VALIDATION_ERROR", "hs_timestamp is required for notes")
        if kind == "contacts" and any(
            c.properties.get("email", "").lower() == values.get("email", "").lower()
            for c in table.values()
        ):
            raise _ApiError(409, "CONFLICT", f"Contact already exists: {values.get('email')}")
        targets = []
        for association in body.get("associations") or []:
            to = str(association["to"]["id"])
            types = {
                (t["associationCategory"], t["associationTypeId"]) for t in association["types"]
            }
            if kind != "notes" or ("HUBSPOT_DEFINED", NOTE_TO_CONTACT) not in types:
                raise _ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"The fake knows notes to contacts (HUBSPOT_DEFINED {NOTE_TO_CONTACT}) only",
                )
            if to not in self.contacts:
                raise _ApiError(400, "VALIDATION_ERROR", f"No contact {to} to associate with")
            targets.append(to)
        self.writes.append(Write("POST", f"/crm/v3/objects/{kind}", body, self.clock()))
        obj = self._store(table, values)
        for to in targets:
            obj.associations.setdefault("contacts", []).append(to)
            self.contacts[to].associations.setdefault("notes", []).append(obj.id)
        if kind == "contacts":
            self._event("contact.creation", obj.id, None, None, "INTEGRATION")
        return self._view(obj, values.keys())

    def _merge(self, primary_id: str, merged_id: str, source: str) -> Json:
        """Merge contact `merged_id` into `primary_id` (`POST /crm/v3/objects/contacts/merge`,
        `PublicMergeInput` of contacts.json): the primary is "the record that the merge will
        generally set as the current value", so its values stay and the other's fill only its
        empty properties; the other's notes move to it, and the other is gone: a read of its id
        answers the primary, under the primary's id (HubSpot's changelog, "Updated merge
        functionality for contacts and companies"), a PATCH of it is a 404. The primary keeps
        its id (HubSpot may give a merge a new id: `merge_event(new=...)` sends
        that case). Subscribers hear a `contact.merge` event."""
        primary = self._find("contacts", self.contacts, primary_id, None)
        merged = self._find("contacts", self.contacts, merged_id, None)
        if primary is merged:
            raise _ApiError(400, "VALIDATION_ERROR", "A contact cannot be merged into itself")
        moved = {
            name: value
            for name, value in merged.properties.items()
            if name not in READ_ONLY and value and not primary.properties.get(name)
        }
        primary.properties.update(moved)
        for note_id in merged.associations.get("notes", []):
            primary.associations.setdefault("notes", []).append(note_id)
            note = self.notes[note_id].associations
            note["contacts"] = [primary.id if c == merged.id else c for c in note["contacts"]]
        del self.contacts[merged.id]
        self.merged_into[merged.id] = primary.id
        for gone, into in self.merged_into.items():
            if into == merged.id:
                self.merged_into[gone] = primary.id
        primary.updated = self.clock()
        if self.subscribers:
            self.pending_events.append(
                self.merge_event(primary.id, [merged.id], change_source=source, moved=len(moved))
            )
        return self._view(primary, None)

    def _search(
        self, table: dict[str, _Object], known: Mapping[str, tuple[str, ...] | None], body: Json
    ) -> Json:
        groups = body.get("filterGroups") or []
        problems = []
        if body["limit"] > SEARCH_LIMIT:
            problems.append(f"limit must be at most {SEARCH_LIMIT}, not {body['limit']}")
        if len(groups) > SEARCH_GROUPS:
            problems.append(f"at most {SEARCH_GROUPS} filterGroups, not {len(groups)}")
        if len(body.get("query") or "") > SEARCH_QUERY:
            problems.append(f"query must be at most {SEARCH_QUERY} characters")
        if problems:
            raise _ApiError(400, "VALIDATION_ERROR", "Invalid input: " + "; ".join(problems))
        for group in groups:
            for f in group["filters"]:
                name = f["propertyName"]
                if name not in known:
                    # An assumption: HubSpot refuses a filter on a property it does not have.
                    problem = f'Property "{name}" does not exist'
                    raise _ApiError(
                        400,
                        "VALIDATION_ERROR",
                        f"There was a problem with the request: {problem}",
                        errors=[
                            {
                                "message": problem,
                                "code": "PROPERTY_DOESNT_EXIST",
                                "context": {"propertyName": [name]},
                            }
                        ],
                    )
        found = [
            o
            for o in table.values()
            if not groups or any(all(_matches(o, f) for f in g["filters"]) for g in groups)
        ]
        views = [self._view(o, body.get("properties")) for o in found]
        page = self._page(
            views, {"after": body.get("after"), "limit": body["limit"] or 10}, SEARCH_LIMIT
        )
        return {"total": len(found), **page}

    def _batch_read(self, table: dict[str, _Object], body: Json) -> Json:
        """The objects found; ids the fake does not have make the answer the spec's 207
        (`BatchResponseSimplePublicObjectWithErrors`: `errors` of `StandardError`, with
        `numErrors`), as HubSpot answers a batch read that names a deleted object."""
        now = _iso(self.clock())
        results = [
            self._view(table[i["id"]], body.get("properties"))
            for i in body["inputs"]
            if i["id"] in table
        ]
        answer: Json = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": now,
            "completedAt": now,
        }
        missing = list(dict.fromkeys(i["id"] for i in body["inputs"] if i["id"] not in table))
        if missing:
            answer["numErrors"] = 1
            answer["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some objects, they may be deleted or not exist. "
                    "Check that ids are valid.",
                    "context": {"ids": missing},
                    "errors": [],
                    "links": {},
                }
            ]
        return answer


# HubSpot's API FAQ, "How should I format timestamps for HubSpot's APIs?": a date is
# `YYYY-MM-DD` (2020-02-29), a date and time `YYYY-MM-DDThh:mm:ss.sTZD` (2020-02-29T03:30:17.000Z),
# or either as a UNIX timestamp in milliseconds; a `date` property "must be set to midnight UTC
# for the date you want. If you try to set a value that is not midnight UTC, you will receive an
# error." The error's code is an assumption (its message is the one HubSpot gives).
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_MILLISECONDS = re.compile(r"-?\d{1,15}")


def _time_problem(kind: PropertyType, text: str) -> tuple[str, str] | None:
    """Why a `date` or `datetime` property refuses `text` (code, message), or None."""
    when: datetime | None = None
    try:
        if _MILLISECONDS.fullmatch(text):
            when = datetime.fromtimestamp(int(text) / 1000, UTC)
        elif kind == "date" and _ISO_DAY.fullmatch(text):
            return None
        elif _ISO_TIME.fullmatch(text):
            when = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        when = None
    if when is None:
        return "INVALID_DATE", f"{text} is not a valid {kind}"
    if kind == "date" and when.time() != datetime.min.time():
        at = when.strftime("%H:%M:%S.") + f"{when.microsecond // 1000:03d}"
        return "INVALID_DATE", f"{text} is at {at} UTC, not midnight!"
    return None


def _matches(obj: _Object, f: Json) -> bool:
    """One search filter (HubSpot compares emails and tokens without case)."""
    value = obj.properties.get(f["propertyName"], "")
    wanted = str(f.get("value", "")).lower()
    op = f["operator"]
    if op == "HAS_PROPERTY":
        return value != ""
    if op == "NOT_HAS_PROPERTY":
        return value == ""
    if op == "EQ":
        return value.lower() == wanted
    if op == "NEQ":
        return value.lower() != wanted
    if op == "IN":
        return value.lower() in {str(v).lower() for v in f.get("values") or []}
    if op == "CONTAINS_TOKEN":
        return wanted in re.split(r"[\s]+", value.lower())
    raise _ApiError(400, "VALIDATION_ERROR", f"The fake does not filter with {op}")


async def serve(port: int = 8099) -> None:  # pragma: no cover - a manual run
    """Run the fake alone (python -m bot.crmfake.hubspot) until interrupted."""
    fake = await HubSpotFake().start(port=port)
    print(f"HubSpot fake on {fake.base_url} (token {fake.token})")
    await asyncio.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(serve())
