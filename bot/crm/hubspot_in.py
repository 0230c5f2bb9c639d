"""HubSpot's webhooks, inbound: verify their signature and read the changes they report.

Two kinds of request reach `POST /crm/hubspot`:

- webhook subscriptions (an app's "contact.creation", "contact.propertyChange", ..., or their
  generic "object.creation", "object.propertyChange", ... with `objectTypeId` "0-1"): a JSON
  array of events, each with its `eventId`; HubSpot retries them, so each is handled once;
- a workflow's "Send a webhook" action: one contact object (`objectId` or the older `vid`, and
  its `properties`), a new lead to take in.

Signatures, as HubSpot documents them ("Validating requests from HubSpot",
https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests, and
the SDK's own `hubspot.utils.signature`):

- v3 (`X-HubSpot-Signature-v3`): base64 HMAC-SHA256, keyed with the app's client secret, of
  method + URI + body + `X-HubSpot-Request-Timestamp` (Unix time in *milliseconds*); refused
  when the timestamp is more than 5 minutes old. The URI is the full URL the request was sent
  to, with the percent-escapes of the table below decoded.
- v1 and v2 (`X-HubSpot-Signature` with `X-HubSpot-Signature-Version`) come beside v3 "for
  backwards compatibility". They sign no time, so a request recorded once would pass again
  whenever it is sent: a request that carries only them is refused. (A webhook subscription's
  older signature is v1, but v3 comes with it: HubSpot's changelog "Introducing version 3 of
  Webhook signatures" adds `X-HubSpot-Signature-v3` and `X-HubSpot-Request-Timestamp` to its
  outgoing requests, "such as those for webhooks or CRM cards", the older ones kept beside.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.crm.port import BadPayload, BadSignature, json_body
from bot.domain.crm import Change, CrmChange

log = logging.getLogger("handoff.crm")
MAX_AGE = timedelta(minutes=5)
# The escapes HubSpot decodes in the URI before signing it (v3), and only these.
_DECODED = {
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
# `lifecyclestage` values that tell us about the deal (HubSpot's default stages).
_STAGES = {"opportunity": "opportunity", "customer": "won"}
_DELETIONS = ("contact.deletion", "contact.privacyDeletion")
_MERGE = "contact.merge"
# Only these are read further: other events need not have our fields (an association change
# has `fromObjectId` and `toObjectId`, no `objectId`), and one must not refuse their batch.
_FOLLOWED = ("contact.creation", "contact.propertyChange", _MERGE, *_DELETIONS)
# HubSpot's generic format ("Public Beta: Generic Webhook Subscriptions", developers.hubspot.com/
# changelog/public-beta-generic-webhook-subscriptions; a project app's `crmObjects`, beside its
# `legacyCrmObjects`): `object.*` for every object, the object named by the event's
# `objectTypeId` "in raw ID format (e.g., 0-1 for contacts)". A contact's is read as its legacy
# counterpart; `contact.privacyDeletion` has none (it stays a legacy `hubEvents` type).
# `object.restore` and `object.associationChange` are not followed, as their legacy ones are not.
_GENERIC = {
    "object.creation": "contact.creation",
    "object.propertyChange": "contact.propertyChange",
    "object.merge": _MERGE,
    "object.deletion": "contact.deletion",
}
_CONTACT_TYPE = "0-1"
# The inbox keeps a notification's key in 200 characters: a longer one is shortened by a digest.
_KEY_LENGTH = 200
_EVENT_FIELDS = ("eventId", "objectId")


class HubSpotReader(Protocol):
    """What the outbound adapter reads for the inbound side (bot/crm/hubspot.py)."""

    async def contact_lead(self, crm_id: str) -> dict[str, object] | None: ...

    async def owner_email(self, owner_id: str) -> str | None: ...


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever its case (aiohttp's headers are case-blind; a dict is not)."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value.strip()
    return ""


def signing_uri(url: str) -> str:
    """The URI as HubSpot signs it (v3): the escapes of `_DECODED` decoded, in either case."""
    out, index = [], 0
    while index < len(url):
        chunk = url[index : index + 3].upper()
        if url[index] == "%" and chunk in _DECODED:
            out.append(_DECODED[chunk])
            index += 3
        else:
            out.append(url[index])
            index += 1
    return "".join(out)


def sign_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """The `X-HubSpot-Signature-v3` value of a request (for HubSpot's side in tests, too)."""
    source = method.upper().encode() + signing_uri(url).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def _same(given: str, expected: str) -> bool:
    """Constant time whatever the lengths (digests of both compared)."""
    left = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
    right = hashlib.sha256(expected.encode()).digest()
    return hmac.compare_digest(left, right)


class HubSpotInbound:
    """The inbound side of HubSpot (`CrmInbound`): `reader` reads contacts and owners through
    the official client where a payload does not carry them (None: nothing is read)."""

    name = "hubspot"

    def __init__(
        self, client_secret: str, reader: HubSpotReader | None = None, portal: int | None = None
    ) -> None:
        self.client_secret = client_secret
        self.reader = reader
        self.portal = portal  # `crm.portal`: another portal's events are ignored

    def verify(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> None:
        """Raise BadSignature unless HubSpot signed the request with its v3 signature and it
        is fresh. HubSpot sends v3 on every request and the older signatures beside it "for
        backwards compatibility" ("Validating requests"); those sign no time, so a recorded
        delivery would pass again: they are not accepted alone."""
        v3 = _header(headers, "X-HubSpot-Signature-v3")
        if v3:
            self._verify_v3(method, url, headers, body, now, v3)
            return
        older = " (an older X-HubSpot-Signature alone is not enough: it signs no time)"
        raise BadSignature(
            "unauthorized: no X-HubSpot-Signature-v3 header"
            + (older if _header(headers, "X-HubSpot-Signature") else "")
            + " (HubSpot signs every request with the app's client secret, "
            "HUBSPOT_CLIENT_SECRET; docs/crm-inbound.md)"
        )

    def _verify_v3(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        now: datetime,
        signature: str,
    ) -> None:
        timestamp = _header(headers, "X-HubSpot-Request-Timestamp")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 15):
            raise BadSignature(
                "unauthorized: X-HubSpot-Request-Timestamp must be Unix time in milliseconds"
            )
        # Compared as numbers: a timestamp far off is refused, not turned into a date.
        skew = abs(int(timestamp) / 1000 - now.timestamp())
        if skew > MAX_AGE.total_seconds():
            raise BadSignature(
                "unauthorized: X-HubSpot-Request-Timestamp is more than 5 minutes away from the "
                "server's clock (a replayed request, or a clock that is off)"
            )
        expected = sign_v3(self.client_secret, method, url, body, timestamp)
        if not _same(signature, expected):
            # HubSpot signs the URL it called, "exactly" ("Validating requests": the protocol
            # too): a proxy that ends TLS or rewrites Host changes the one checked here, so
            # the answer names it (what the caller itself sent, nothing secret).
            raise BadSignature(
                "unauthorized: X-HubSpot-Signature-v3 does not match the request signed with "
                "HUBSPOT_CLIENT_SECRET (method + URI + body + timestamp), URI checked: "
                f"{signing_uri(url)[:300]} (behind a proxy that ends TLS, it must send "
                "X-Forwarded-Proto: https and the Host HubSpot called)"
            )

    def parse(self, body: bytes) -> list[CrmChange]:
        """The changes in a verified body: a subscription's event array, or a workflow's
        contact; BadPayload naming the fields for any other shape."""
        data = json_body(body)
        if isinstance(data, list):
            ours = self._of_our_portal(data)
            return parse_events(ours) if ours or not data else []  # another portal's: none
        if isinstance(data, dict):
            return [parse_workflow(data, hashlib.sha256(body).hexdigest()[:16])]
        raise BadPayload(
            [("(body)", "must be an array of webhook events or a workflow's contact object")]
        )

    def _of_our_portal(self, events: list[Any]) -> list[Any]:
        """The events of `crm.portal` (all of them when it is unset): another portal's, signed
        with the same app's secret (a sandbox install), would change this portal's leads."""
        if self.portal is None:
            return events
        ours = [e for e in events if not isinstance(e, dict) or e.get("portalId") == self.portal]
        if len(ours) < len(events):
            portals = sorted({str(e.get("portalId")) for e in events if e not in ours})
            log.warning(
                "HubSpot: %d event(s) from portal %s ignored (crm.portal is %d)",
                len(events) - len(ours),
                ", ".join(portals)[:100],
                self.portal,
            )
        return ours

    async def lead_of(self, change: CrmChange) -> dict[str, object] | None:
        if change.lead is not None:
            return change.lead
        if self.reader is None or change.crm_id is None:
            return None
        return await self.reader.contact_lead(change.crm_id)

    async def owner_email(self, owner_crm_id: str) -> str | None:
        if self.reader is None:
            return None
        return await self.reader.owner_email(owner_crm_id)


def _id(value: Any) -> str | None:
    """A HubSpot id (a number, or its digits as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 30:
        return value.strip()
    return None


def _when(value: Any) -> datetime | None:
    """`occurredAt`: Unix time in milliseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 10**14:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return None


def parse_events(events: list[Any]) -> list[CrmChange]:
    """A subscription delivery's events as changes; properties we do not follow are left out
    (not an error). BadPayload names every field that is missing or of the wrong type."""
    if not events:
        raise BadPayload([("(body)", "must hold at least one webhook event")])
    problems: list[tuple[str, str]] = []
    changes: list[CrmChange] = []
    for index, event in enumerate(events):
        where = f"[{index}]"
        if not isinstance(event, dict):
            problems.append((where, "must be a webhook event object"))
            continue
        kind = event.get("subscriptionType")
        if not isinstance(kind, str):
            said = "is required" if kind is None else "must be text like contact.creation"
            problems.append((f"{where}.subscriptionType", said))
            continue
        sent = kind
        if kind in _GENERIC:
            if (contact_kind := _contact_kind(event, kind, where, problems)) is None:
                continue  # another object's, or no object type (a problem named)
            kind = contact_kind
        elif kind not in _FOLLOWED:
            continue  # another object or event, whatever its fields: not ours to follow
        if kind == _MERGE:  # its ids are fields of its own: no `objectId` is asked of it
            merge = _merge_change(event, where, problems)
            if merge is not None:
                changes.append(merge)
            continue
        missing = [name for name in _EVENT_FIELDS if name not in event]
        problems += [(f"{where}.{name}", "is required") for name in missing]
        if missing:
            continue
        event_id, object_id = _id(event["eventId"]), _id(event["objectId"])
        if event_id is None:
            problems.append((f"{where}.eventId", "must be a HubSpot id (digits)"))
        if object_id is None:
            problems.append((f"{where}.objectId", "must be a HubSpot id (digits)"))
        if event_id is None or object_id is None:
            continue
        change = _event_change(event, event_id, object_id, kind, where, problems, sent)
        if change is not None:
            changes.append(change)
    if problems:
        raise BadPayload(problems)
    return changes


def _contact_kind(
    event: dict[str, Any], kind: str, where: str, problems: list[tuple[str, str]]
) -> str | None:
    """The legacy `contact.*` type a generic `object.*` event stands for when its object is a
    contact (`objectTypeId` "0-1"); None for another object's (not ours) or when the object
    type is missing or not text: a problem is then named, since the event might be a contact's
    (its deletion an erasure request) and HubSpot's retry of a refused batch can bring it."""
    object_type = event.get("objectTypeId")
    if object_type is None:
        problems.append((f"{where}.objectTypeId", f"is required for {kind} (0-1 is a contact)"))
        return None
    if not isinstance(object_type, str):
        problems.append((f"{where}.objectTypeId", "must be text like 0-1 (a contact)"))
        return None
    return _GENERIC[kind] if object_type.strip() == _CONTACT_TYPE else None


def _event_change(
    event: dict[str, Any],
    event_id: str,
    object_id: str,
    kind: str,
    where: str,
    problems: list[tuple[str, str]],
    sent: str,
) -> CrmChange | None:
    at = _when(event.get("occurredAt"))
    # HubSpot's `eventId` "is not guaranteed to be unique" (its webhook payload reference): one
    # change that sets two properties may come as two notifications with one id. A retry
    # repeats all of these fields, so together they name one notification. A contact's generic
    # `object.*` event is keyed by its legacy type: it is the same notification either way.
    key = f"{event_id}:{kind}:{object_id}"
    common: dict[str, Any] = {"event_id": key, "crm_id": object_id, "at": at}
    common["external_id"] = f"hubspot:{object_id}"
    if kind == "contact.creation":
        return CrmChange(change=Change.CREATED, **common)
    if kind in _DELETIONS:
        return CrmChange(change=Change.DELETED, **common)
    name, value = event.get("propertyName"), event.get("propertyValue")
    if not isinstance(name, str):
        problems.append((f"{where}.propertyName", f"is required for {sent}"))
        return None
    common["event_id"] = f"{key}:{name}"
    if value is not None and not isinstance(value, str | int):
        problems.append((f"{where}.propertyValue", "must be text"))
        return None
    text = None if value is None or value == "" else str(value)
    if name == "hubspot_owner_id":
        return CrmChange(change=Change.OWNER, owner_crm_id=text, **common)
    if name == "hs_lead_status":
        return CrmChange(change=Change.STATUS, value=text, **common)
    if name == "lifecyclestage" and text in _STAGES:
        return CrmChange(change=Change.STAGE, value=_STAGES[text], **common)
    return None


def _merge_change(
    event: dict[str, Any], where: str, problems: list[tuple[str, str]]
) -> CrmChange | None:
    """A `contact.merge` event as a MERGED change: the ids that are gone, and the contact that
    remains. HubSpot's developer changelog ("New subscription types for Webhooks",
    developers.hubspot.com/changelog/new-subscription-types-for-webhooks) names its fields:

    - `primaryObjectId`: "The object id of the resulting primary contact.";
    - `mergedObjectIds`: "An array of Ids that represent the secondary contacts. [...] This
      field is an array because in some cases multiple objects can be merged into one
      primaryObject.";
    - `newObjectId`: "the Id of the object that was created from the result of the merge.
      This is separate from primaryObjectId because in some cases a new object is created
      from the result of a merge."

    So the contact that remains is `newObjectId`, and when it differs from the primary, the
    primary's id is gone too. The docs do not say `newObjectId` is always sent: without it,
    the primary is taken as the result (the safe reading: no lead is moved to an id HubSpot
    did not name, and the primary's leads stay where they are)."""
    start = len(problems)
    event_id, primary = _id(event.get("eventId")), _id(event.get("primaryObjectId"))
    for name, value in (("eventId", event_id), ("primaryObjectId", primary)):
        if value is None:
            said = "must be a HubSpot id (digits)" if event.get(name) is not None else None
            problems.append((f"{where}.{name}", said or "is required"))
    raw = event.get("mergedObjectIds")
    merged: list[str] = []
    if not isinstance(raw, list) or not raw:
        problems.append((f"{where}.mergedObjectIds", "must be an array of HubSpot ids"))
    else:
        for index, value in enumerate(raw):
            if (merged_id := _id(value)) is None:
                problems.append((f"{where}.mergedObjectIds[{index}]", "must be a HubSpot id"))
            else:
                merged.append(merged_id)
    new = event.get("newObjectId")
    result = primary if new is None else _id(new)
    if result is None and new is not None:
        problems.append((f"{where}.newObjectId", "must be a HubSpot id (digits)"))
    if len(problems) > start or event_id is None or primary is None or result is None:
        return None
    gone = tuple(dict.fromkeys(i for i in (primary, *merged) if i != result))
    return CrmChange(
        event_id=_merge_key(event_id, primary, merged),
        change=Change.MERGED,
        crm_id=result,
        merged_ids=gone,
        at=_when(event.get("occurredAt")),
    )


def _merge_key(event_id: str, primary: str, merged: list[str]) -> str:
    """The merge's key, like the other notifications' (`eventId` is "not guaranteed to be
    unique"): its event id, type and ids, which a retry repeats; many ids, by their digest."""
    ids = "+".join(merged)
    key = f"{event_id}:{_MERGE}:{primary}:{ids}"
    if len(key) <= _KEY_LENGTH:
        return key
    return f"{event_id}:{_MERGE}:{primary}:{hashlib.sha256(ids.encode()).hexdigest()[:32]}"


def _property(properties: dict[str, Any], name: str) -> str | None:
    """A workflow contact's property: a plain value, or HubSpot's `{"value": ...}` object."""
    value = properties.get(name)
    if isinstance(value, dict):
        value = value.get("value")
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def lead_from_contact(contact_id: str, properties: dict[str, Any]) -> dict[str, object]:
    """A HubSpot contact's properties as intake JSON (`POST /leads`'s shape); intake
    validates it (a missing email is its 400, naming `email`)."""
    name = " ".join(
        p for p in (_property(properties, "firstname"), _property(properties, "lastname")) if p
    )
    company: dict[str, object] = {}
    for ours, theirs in (("name", "company"), ("domain", "website"), ("industry", "industry")):
        if (value := _property(properties, theirs)) is not None:
            company[ours] = value
    if (country := _property(properties, "country")) is not None:
        company["country"] = country
    employees = _property(properties, "numemployees")
    if employees is not None and employees.isdigit():
        company["employees"] = int(employees)
    lead: dict[str, object] = {
        "external_id": f"hubspot:{contact_id}",
        "email": _property(properties, "email") or "",
        "crm_id": contact_id,
        "company": company,
    }
    optional = {
        "name": name or None,
        "title": _property(properties, "jobtitle"),
        "phone": _property(properties, "phone"),
        "source": _property(properties, "hs_analytics_source"),
    }
    lead |= {key: value for key, value in optional.items() if value}
    score = _property(properties, "hubspotscore")
    if score is not None and score.isdigit() and int(score) <= 100:
        lead["score"] = int(score)
    return lead


def parse_workflow(data: dict[str, Any], digest: str = "") -> CrmChange:
    """A workflow's "Send a webhook" contact as a CREATED change carrying its lead. It has
    no event id: `digest` (of the body) stands in, so a retry of the same request is one
    notification, while the contact sent again later with new properties is another (intake
    then decides: a duplicate, new engagement, or a re-qualified lead)."""
    problems: list[tuple[str, str]] = []
    raw_id = data.get("objectId", data.get("vid"))
    contact_id = _id(raw_id)
    if raw_id is None:
        problems.append(("objectId", "is required (or vid): the contact's id"))
    elif contact_id is None:
        problems.append(("objectId", "must be a HubSpot id (digits)"))
    properties = data.get("properties")
    if not isinstance(properties, dict):
        problems.append(("properties", "is required: an object of the contact's properties"))
    if problems or contact_id is None or not isinstance(properties, dict):
        raise BadPayload(problems)
    return CrmChange(
        event_id=f"workflow:contact:{contact_id}:{digest}",
        change=Change.CREATED,
        crm_id=contact_id,
        email=_property(properties, "email"),
        external_id=f"hubspot:{contact_id}",
        lead=lead_from_contact(contact_id, properties),
    )
