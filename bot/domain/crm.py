"""What the CRM must learn, and what a CRM's change means here: pure rules, no I/O.

The SLA file's `crm:` section (`Crm`, in `bot/domain/policy.py`) picks an adapter and maps our
states and fields to the CRM's properties and picklist values. Every event row a change writes
is turned here into CRM writes (`writes_for`), which storage puts in the CRM outbox in the same
transaction. Three kinds of write:

- `SYNC`: the record's current state (owner, status, lifecycle stage, the mapped fields). Never
  stored: it is rendered from the lead when it is sent (`record_of`), so repeated changes
  collapse into one PATCH and a late retry never writes an older state.
- `NOTE`: a disposition (and, when `attempt_notes`, an attempt) told once as a note (HubSpot) or
  a Task (Salesforce), carrying our idempotency key.
- `EVENT`: the event itself, for the signed outbound webhook (every lead event).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.domain.lead import LeadView, Stage
from bot.domain.route_words import why_text


class Write(StrEnum):
    SYNC = "crm_sync"
    NOTE = "crm_note"
    EVENT = "crm_event"


# HubSpot's default `hs_lead_status` options (contacts' "Lead status" property), by our state:
# `{kind: hubspot}` alone works with these (docs/crm.md).
HUBSPOT_STATUS: dict[str, str] = {
    "new": "NEW",
    "claimed": "OPEN",
    "attempted": "ATTEMPTED_TO_CONTACT",
    "sql": "CONNECTED",
    "reject": "UNQUALIFIED",
    "nurture": "BAD_TIMING",
    "recycle": "ATTEMPTED_TO_CONTACT",
}
# HubSpot's default lifecycle stages (`lifecyclestage`); a stage not listed is left as it is.
# A stage earlier than the contact's is kept by HubSpot (a stage moves back only after a clear,
# which the adapter never sends): a rejection or a reopened lead never demotes a contact.
HUBSPOT_LIFECYCLE: dict[str, str] = {"new": "marketingqualifiedlead", "sql": "salesqualifiedlead"}
# Salesforce's default Lead Status picklist (Open - Not Contacted, Working - Contacted, Closed -
# Converted, Closed - Not Converted).
SALESFORCE_STATUS: dict[str, str] = {
    "new": "Open - Not Contacted",
    "claimed": "Working - Contacted",
    "attempted": "Working - Contacted",
    "sql": "Closed - Converted",
    "reject": "Closed - Not Converted",
    "nurture": "Closed - Not Converted",
    "recycle": "Closed - Not Converted",
}

# Our fields a `fields:` map may send (key: ours; value: the CRM's property or field name).
FIELDS = (
    "disposition_code",
    "disposition_label",
    "disposition_reason",
    "disposition_note",
    "handoff_score",
    "stage",
    "route_reason",
    "claimed_at",
    "first_touch_at",
)


@dataclass(frozen=True)
class CrmRecord:
    """The CRM record of a lead as it should be now, in the CRM's own terms."""

    lead_id: int
    external_id: str
    email: str
    crm_id: str | None  # HubSpot contact id / Salesforce Lead id; None: look it up by email
    owner: str | None  # the Slack user id of the owner (None: nobody has it yet)
    owner_crm_id: str | None  # from the `owners:` map; None: find the owner by email
    status: str | None  # the lead status value (None: leave it)
    lifecycle: str | None  # HubSpot's lifecycle stage (None: leave it)
    fields: dict[str, str] = field(default_factory=dict)  # CRM property name -> value


@dataclass(frozen=True)
class CrmNote:
    """A disposition or an attempt, told once: `key` is our idempotency key, written into the
    note (or the Task) so a repeated create can be found and adopted."""

    key: str
    lead_id: int
    external_id: str
    email: str
    crm_id: str | None
    kind: Literal["disposition", "attempt"]
    subject: str
    body: str
    at: datetime
    rep: str | None  # Slack user id
    rep_crm_id: str | None  # from the `owners:` map
    attempt_kind: str | None = None  # email | call | linkedin
    # True only when no earlier attempt to send this note can have reached the CRM (count an
    # attempt before sending it): the adapter then skips looking for a note with `key`.
    fresh: bool = False
    # The date of `at` on the lead's clock (the team's; with `clock: owner`, its owner's): a
    # date-only field (Salesforce's ActivityDate) is shown as written, so it is the day the
    # rep worked it; None: `at`'s own.
    day: date | None = None


@dataclass(frozen=True)
class CrmEvent:
    """A lead event for the outbound webhook (`key`: its `webhook-id`)."""

    key: str
    lead_id: int
    external_id: str
    type: str
    actor: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    # The lead as it is when the event is sent (rendered then, like a sync).
    crm_id: str | None = None
    stage: str | None = None
    owner: str | None = None
    segment: str | None = None
    source: str | None = None  # where marketing got the lead, as intake took it
    campaign: str | None = None


class Change(StrEnum):
    """What a CRM says changed (inbound)."""

    CREATED = "created"  # a new record: a lead to take in
    OWNER = "owner"  # its owner changed
    STATUS = "status"  # its lead status changed
    STAGE = "stage"  # opportunity / won / lost (with an amount)
    DELETED = "deleted"  # the person was deleted (erase their data)
    MERGED = "merged"  # records merged: `merged_ids` are gone, `crm_id` is the one left


@dataclass(frozen=True)
class CrmChange:
    """One change from the CRM, parsed from its webhook by the adapter."""

    event_id: str  # the CRM's id of this notification: each is handled once
    change: Change
    crm_id: str | None = None
    email: str | None = None
    external_id: str | None = None
    owner_crm_id: str | None = None  # OWNER: the new owner's CRM id
    owner_email: str | None = None  # OWNER: the new owner's email, where the payload has it
    value: str | None = None  # STATUS: the new value; STAGE: opportunity | won | lost
    amount: float | None = None
    at: datetime | None = None
    lead: dict[str, Any] | None = None  # CREATED: the intake JSON, where the payload has it
    merged_ids: tuple[str, ...] = ()  # MERGED: the records merged away (their leads: crm_id)


@dataclass(frozen=True)
class OwnerChanged:
    """A lead's last change of owner (a claim or a reassignment): when Handoff applied it
    (`at`, our clock), and when it was made (`made`: the CRM's time for a change the CRM made,
    kept as told, maybe ahead of our clock; else `at`)."""

    at: datetime
    made: datetime


def late_owner_change(
    last: OwnerChanged, told: datetime | None, arrived: datetime, now: datetime
) -> bool:
    """Whether a CRM owner change is older than the lead's last change of owner, so applying
    it would undo a newer owner (docs/crm-inbound.md, "Late"). With the CRM's time (`told`):
    made before the last was made, by the CRM's clock where the CRM made both. Without it:
    first `arrived` before the last was applied (or made, for a CRM change delivered late),
    and before `now`: only a retry taken again after a kill can be late, never a first
    delivery, and never for a CRM time ahead of our clock that it had not reached when the
    change arrived (the timeless change made after it in the CRM would be lost)."""
    if told is not None:
        return told < last.made
    return arrived < min(last.made, last.at, now)


def _state_of(lead: LeadView) -> str:
    """The key of the lead's state in the status maps."""
    if lead.stage is Stage.MQL:
        return "new"
    if lead.stage is Stage.SAL:
        return "attempted" if lead.attempts else "claimed"
    return lead.stage.value


def status_of(crm: Any, lead: LeadView) -> tuple[str | None, str | None]:
    """The lead status and lifecycle stage the CRM should show (None: leave it). A
    disposition code's own entry wins over its outcome's."""
    state = _state_of(lead)
    code = lead.disposition_code if not lead.stage.is_open else None
    defaults: Mapping[str, str] = {}
    lifecycle_defaults: Mapping[str, str] = {}
    if crm.kind == "hubspot":
        defaults, lifecycle_defaults = HUBSPOT_STATUS, HUBSPOT_LIFECYCLE
    elif crm.kind == "salesforce":
        defaults = SALESFORCE_STATUS
    status_map = {**defaults, **crm.status}
    lifecycle_map = {**lifecycle_defaults, **crm.lifecycle}
    status = status_map.get(code or "") or status_map.get(state)
    lifecycle = lifecycle_map.get(code or "") or lifecycle_map.get(state)
    return status, lifecycle


def _field_value(lead: LeadView, name: str, labels: Mapping[str, str]) -> str | None:
    if name == "disposition_label":
        return labels.get(lead.disposition_code or "")
    if name == "stage":
        return lead.stage.value
    if name == "route_reason":
        # What the Slack post's why line says, as plain text (docs/crm.md), not the stored
        # reason: RevOps reads it in the CRM.
        return why_text(lead)
    value = getattr(lead, name, None)
    if value is None:
        return None
    return crm_time(value) if isinstance(value, datetime) else str(value)


def crm_time(when: datetime) -> str:
    """A time as both CRMs document a date-and-time value: UTC to the millisecond with the
    designator Z, `2026-12-07T10:04:00.123Z` (HubSpot's API FAQ, "How should I format
    timestamps": `YYYY-MM-DDThh:mm:ss.sTZD`, e.g. `2020-02-29T03:30:17.000Z`; Salesforce's
    "Valid Date Format in Records": `yyyy-MM-ddTHH:mm:ss.SSSZ`). Both keep milliseconds."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_of(crm: Any, lead: LeadView, crm_id: str | None, labels: Mapping[str, str]) -> CrmRecord:
    """The CRM record of `lead` as it is now (`labels`: disposition code -> label)."""
    status, lifecycle = status_of(crm, lead)
    fields: dict[str, str] = {}
    for ours, theirs in crm.fields.items():
        value = _field_value(lead, ours, labels)
        fields[theirs] = "" if value is None else value
    owner = lead.owner
    return CrmRecord(
        lead_id=lead.id,
        external_id=lead.external_id,
        email=lead.email,
        crm_id=crm_id,
        owner=owner,
        owner_crm_id=crm.owners.get(owner) if owner else None,
        status=status,
        lifecycle=lifecycle,
        fields=fields,
    )


# The events that change what the CRM record shows.
SYNCED = frozenset(
    {"posted", "claimed", "reassigned", "attempt", "dispositioned", "recycled_back", "reopened"}
)


def writes_for(crm: Any, event: Mapping[str, Any]) -> list[tuple[Write, dict[str, Any]]]:
    """The CRM writes an event row causes, each with its payload (`event`: the row as
    written: lead_id, type, actor, at, data). The CRM's own changes (actor `crm`) are never
    told back to it: that would echo."""
    kind, actor = event["type"], event["actor"]
    if crm.kind == "webhook":
        if crm.events and kind not in crm.events:
            return []
        return [(Write.EVENT, {"type": kind, "actor": actor, "data": dict(event["data"])})]
    if actor == "crm":
        return []
    writes: list[tuple[Write, dict[str, Any]]] = []
    if kind in SYNCED:
        writes.append((Write.SYNC, {}))
    data = event["data"]
    if data.get("source") == "crm":
        # An attempt the CRM told us of (POST /leads/{id}/activity) is in the CRM already: a
        # note of it would echo. The record's state may still move (attempted), so sync.
        return writes
    if kind == "dispositioned":
        writes.append((Write.NOTE, {"kind": "disposition", "rep": actor, **_note_data(data)}))
    elif kind == "attempt" and crm.attempt_notes:
        writes.append((Write.NOTE, {"kind": "attempt", "rep": actor, "via": data.get("kind")}))
    return writes


def _note_data(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: data.get(k) for k in ("code", "stage", "reason", "note")}


def note_of(
    crm: Any,
    lead: LeadView,
    crm_id: str | None,
    key: str,
    payload: Mapping[str, Any],
    at: datetime,
    labels: Mapping[str, str],
    names: Mapping[str, str],
    day: date | None = None,
) -> CrmNote:
    """The note a NOTE write tells (`labels`: code -> label; `names`: user id -> name; `day`:
    the date of `at` on the lead's clock)."""
    rep = payload.get("rep")
    who = names.get(rep or "", rep or "someone")
    if payload.get("kind") == "attempt":
        via = payload.get("via") or "attempt"
        subject = f"Handoff: {via} attempt by {who}"
        body = f"{who} logged a {via} attempt in Handoff (lead {lead.external_id})."
        kind: Literal["disposition", "attempt"] = "attempt"
    else:
        code = payload.get("code") or ""
        label = labels.get(code, code)
        subject = f"Handoff disposition: {label}"
        lines = [f"Disposition: {label} ({code})", f"Rep: {who}"]
        if payload.get("reason"):
            lines.append(f"Reason: {payload['reason']}")
        if payload.get("note"):
            lines.append(f"Note: {payload['note']}")
        body = "\n".join(lines)
        kind = "disposition"
    return CrmNote(
        key=key,
        lead_id=lead.id,
        external_id=lead.external_id,
        email=lead.email,
        crm_id=crm_id,
        kind=kind,
        subject=subject,
        body=f"{body}\n[handoff:{key}]",
        at=at,
        rep=rep,
        rep_crm_id=crm.owners.get(rep) if rep else None,
        attempt_kind=payload.get("via"),
        day=day,
    )


def next_midnight(now: datetime, zone: str) -> datetime:
    """The first midnight in `zone` after `now` (aware, in `zone`): when a CRM's daily request
    limit counted in that zone starts again."""
    day = now.astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
    return datetime.combine(day, time(0), ZoneInfo(zone))
