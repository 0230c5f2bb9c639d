"""Salesforce's changes, inbound: one documented JSON shape, sent by a Flow's HTTP callout or
by Apex to `POST /crm/salesforce` with `Authorization: Bearer <HANDOFF_SALESFORCE_WEBHOOK_TOKEN>`.

The body is one change or a list of them (docs/crm-inbound.md):

    {"event_id": "…", "type": "created|owner|status|stage|deleted", "lead_id": "00Q…",
     "email": "…", "owner_id": "005…", "owner_email": "…", "status": "…",
     "stage": "opportunity|won|lost", "amount": 1200.5, "at": "2026-11-23T00:00:00Z",
     "lead": {…intake JSON…}}

Strict: an unknown key or a value of the wrong type is a 400 naming it, so a Flow that drifts
from the shape is told at once rather than half understood.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.crm.port import BadPayload, BadSignature, json_body
from bot.domain.crm import Change, CrmChange
from bot.domain.intake import error_text, field_name, sent_instant

# A Salesforce record id: 15 characters, or 18 with the case-safe suffix.
_SALESFORCE_ID = r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$"
MAX_CHANGES = 500  # one callout; a Flow sends one, Apex batches of up to 200


class SalesforceReader(Protocol):
    """What the outbound adapter reads for the inbound side (bot/crm/salesforce.py)."""

    async def lead_record(self, lead_id: str) -> dict[str, object] | None: ...

    async def owner_email(self, user_id: str) -> str | None: ...


class SalesforceChange(BaseModel):
    """One change as a Flow or Apex sends it."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    event_id: str = Field(min_length=1, max_length=200)
    type: Literal["created", "owner", "status", "stage", "deleted"]
    lead_id: str = Field(pattern=_SALESFORCE_ID)
    email: str | None = Field(default=None, max_length=320)
    owner_id: str | None = Field(default=None, pattern=_SALESFORCE_ID)
    owner_email: str | None = Field(default=None, max_length=320)
    status: str | None = Field(default=None, max_length=255)
    stage: Literal["opportunity", "won", "lost"] | None = None
    amount: float | int | None = Field(default=None, ge=0, le=999_999_999_999)
    at: datetime | None = None
    lead: dict[str, Any] | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _iso(cls, value: Any) -> Any:
        # Strict mode takes no text for a datetime; ISO 8601 text is the shape's own. Without
        # its zone it is refused, as intake refuses it (`sent_instant`): a stage change is
        # recorded like an activity, whose `at` must say its time zone.
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("must be an ISO 8601 time like 2026-11-23T00:00:00Z") from None
            return sent_instant(moment)
        return value


_NEEDS: dict[str, tuple[str, ...]] = {
    "owner": ("owner_id",),
    "status": ("status",),
    "stage": ("stage",),
}


def _checked(index: int | None, change: SalesforceChange) -> list[tuple[str, str]]:
    prefix = "" if index is None else f"[{index}]."
    problems = []
    for name in _NEEDS.get(change.type, ()):
        if getattr(change, name) is None:
            article = "an" if change.type == "owner" else "a"
            problems.append((f"{prefix}{name}", f"is required for {article} {change.type} change"))
    return problems


def parse_changes(data: Any) -> list[CrmChange]:
    """A body (one change, or a list) as changes; BadPayload naming each bad field."""
    items = data if isinstance(data, list) else [data]
    if isinstance(data, list) and not data:
        raise BadPayload([("(body)", "must hold at least one change")])
    if len(items) > MAX_CHANGES:
        raise BadPayload([("(body)", f"at most {MAX_CHANGES} changes in one request")])
    problems: list[tuple[str, str]] = []
    changes: list[CrmChange] = []
    for index, item in enumerate(items):
        at = index if isinstance(data, list) else None
        prefix: tuple[int | str, ...] = () if at is None else (at,)
        if not isinstance(item, dict):
            problems.append((field_name(prefix), "must be a change object"))
            continue
        try:
            change = SalesforceChange.model_validate(item)
        except ValidationError as error:
            named: set[str] = set()
            for detail in error.errors():
                # The field only: a union's members (`amount.float`, `amount.int`) are one field.
                where = field_name(prefix + tuple(detail["loc"][:1]))
                if where in named:
                    continue
                named.add(where)
                message = (
                    "is not a field of a change (see docs/crm-inbound.md)"
                    if detail["type"] == "extra_forbidden"
                    else error_text(detail)
                )
                problems.append((where, message))
            continue
        problems += _checked(at, change)
        changes.append(_crm_change(change))
    if problems:
        raise BadPayload(problems)
    return changes


def _crm_change(change: SalesforceChange) -> CrmChange:
    lead = change.lead
    if change.type == "created" and lead is not None:
        lead = {"external_id": f"salesforce:{change.lead_id}", **lead, "crm_id": change.lead_id}
    value = change.status if change.type == "status" else change.stage
    return CrmChange(
        event_id=change.event_id,
        change=Change(change.type),
        crm_id=change.lead_id,
        email=change.email.lower() if change.email else None,
        external_id=f"salesforce:{change.lead_id}",
        owner_crm_id=change.owner_id,
        owner_email=change.owner_email.lower() if change.owner_email else None,
        value=value,
        amount=float(change.amount) if change.amount is not None else None,
        at=change.at,
        lead=lead,
    )


_BEARER = re.compile(r"^bearer\s+(\S+)\s*$", re.IGNORECASE)


class SalesforceInbound:
    """The inbound side of Salesforce (`CrmInbound`): a shared bearer token, compared in
    constant time; `reader` reads Leads and Users through simple-salesforce (None: none)."""

    name = "salesforce"

    def __init__(self, token: str, reader: SalesforceReader | None = None) -> None:
        self.token = token
        self.reader = reader

    def verify(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> None:
        authorization = next(
            (value for key, value in headers.items() if key.lower() == "authorization"), ""
        )
        match = _BEARER.match(authorization.strip())
        given = match.group(1) if match else ""
        # Header bytes aiohttp could not read as text arrive as surrogates: kept, not raised on.
        digests = [
            hashlib.sha256(text.encode(errors="surrogateescape")).digest()
            for text in (given, self.token)
        ]
        if not hmac.compare_digest(digests[0], digests[1]) or match is None:
            raise BadSignature(
                "unauthorized: bad or missing bearer token (see HANDOFF_SALESFORCE_WEBHOOK_TOKEN)"
            )

    def parse(self, body: bytes) -> list[CrmChange]:
        return parse_changes(json_body(body))

    async def lead_of(self, change: CrmChange) -> dict[str, object] | None:
        if change.lead is not None:
            return change.lead
        if self.reader is None or change.crm_id is None:
            return None
        return await self.reader.lead_record(change.crm_id)

    async def owner_email(self, owner_crm_id: str) -> str | None:
        if self.reader is None:
            return None
        return await self.reader.owner_email(owner_crm_id)
