"""Erasure: what `handoff forget` removes from a lead, and what it keeps.

A person may ask to be forgotten. Their lead keeps only anonymous facts, so the reports do not
change: its segment, source, campaign, tier, score, stages and their times, outcome code and
picklist reason, the firmographics that routed it (employees, industry, country) and the
engagement types and times. Everything that identifies or describes the person goes: email,
name, title, phone, company name and domain, engagement titles and links, the raw payload, the
rep's free-text note, the question asked of marketing, and the same inside the lead's events.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from bot.domain.lead import LeadView

ERASED = "(erased)"
# Firmographics: about the employer, not the person; they routed the lead and fill the reports.
_COMPANY_KEPT = ("employees", "industry", "country")
# Event data a report or a rule reads, none of it free text about the person.
_EVENT_KEPT = frozenset(
    {
        "code", "stage", "reason", "kind", "tier", "from", "to", "by", "why", "channel", "ts",
        "source", "currency", "activity_id", "until", "ladder", "action", "step", "segment",
        "rule", "rep", "territory",
        "feedback_due", "final_due",  # the deadlines an offer kept (the report reads them)
    }
)  # fmt: skip


TOMBSTONE = "erased:"  # every digest an erasure leaves starts so, keyed or not
KEYED = TOMBSTONE + "hmac:"
# A key a person could guess would let anyone with the database test guessed ids against it.
KEY_MIN_LENGTH = 32


def digest_key_id(digest: str) -> str | None:
    """The id of the key a keyed digest names (`erased:hmac:<key id>:…`); None for anything
    else (an unkeyed digest, a plain id)."""
    if not digest.startswith(KEYED):
        return None
    return digest[len(KEYED) :].partition(":")[0]


def unkeyed_tombstone(value: str) -> str:
    """The digest erasures made before the erasure key (a plain SHA-256): still recognised,
    never made any more. Anyone with the database can test a guessed id against it."""
    return TOMBSTONE + hashlib.sha256(value.encode()).hexdigest()[:48]


@dataclass(frozen=True)
class ErasureKey:
    """The installation's secret (`HANDOFF_ERASURE_KEY`) that keys what an erased lead keeps of
    its external id and CRM id: an HMAC-SHA256, so the same record sent again (intake, a CRM's
    retried deletion) is known as erased, while the id can be neither read back nor tested
    against a list of guesses without the key, which the database does not hold. Without one
    (`secret` None: the setting is optional, so an install from SPEC's settings still starts),
    the digests are plain SHA-256, as before the key, and the server says so at its start."""

    secret: str | None = field(repr=False)

    @property
    def keyed(self) -> bool:
        return self.secret is not None

    @cached_property
    def key_id(self) -> str:
        """Names the key in each digest it made (8 hex characters that tell nothing of it), so
        a server started with another key (or none) refuses to start rather than forget the
        erasures. Without a key: `unkeyed`, which no digest names."""
        return self._mac(b"handoff erasure key id")[:8] if self.keyed else "unkeyed"

    def tombstone(self, value: str) -> str:
        """What an erasure keeps of an id: `erased:hmac:<key id>:<40 hex>` (61 characters: it
        fits the CRM id's column); without a key, the plain digest."""
        if not self.keyed:
            return unkeyed_tombstone(value)
        return f"{KEYED}{self.key_id}:{self._mac(value.encode())[:40]}"

    def tombstones(self, value: str) -> tuple[str, str]:
        """Every digest an erasure may have left of `value`: this key's, and the unkeyed one
        of an erasure made before the key."""
        return self.tombstone(value), unkeyed_tombstone(value)

    @cached_property
    def _keyed_hmac(self) -> hmac.HMAC:  # the key's inner and outer pads, made once
        return hmac.new((self.secret or "").encode(), digestmod=hashlib.sha256)

    def _mac(self, message: bytes) -> str:
        mac = self._keyed_hmac.copy()
        mac.update(message)
        return mac.hexdigest()


def erased_email(lead_id: int) -> str:
    """An address that names no one (`.invalid` is reserved: it can never be delivered)."""
    return f"erased-{lead_id}@erased.invalid"


def erased_values(lead: LeadView, now: datetime, key: ErasureKey) -> dict[str, Any]:
    """The lead's columns after erasure (the columns not named keep their values)."""
    company = {key: lead.company[key] for key in _COMPANY_KEPT if key in lead.company}
    engagement = [
        {key: item[key] for key in ("type", "at") if key in item}
        for item in lead.engagement
        if isinstance(item, dict)
    ]
    return {
        "external_id": key.tombstone(lead.external_id),
        "email": erased_email(lead.id),
        "name": None,
        "title": None,
        "phone": None,
        "company": company,
        "engagement": engagement,
        "payload": {},
        "score_reasons": [],
        "disposition_note": None,
        "info_question": None,
        "info_asked_at": None,  # no answer is awaited: an answer modal still open is refused
        "next_action_at": None,  # no reminder or escalation about it any more
        "account_domain": None,  # the company's domain names the person's employer
        # The CRM record that was the person (deleted there, or to be): its retried deletion
        # is known by the digest.
        "crm_id": key.tombstone(lead.crm_id) if lead.crm_id else None,
        "route_reason": erased_event_data(lead.route_reason) or None,  # the rule, not the domain
        "erased_at": now,
    }


def erased_event_data(data: dict[str, Any] | None) -> dict[str, Any]:
    """An event's data without anything about the person: numbers, flags and the known
    picklist values stay; free text, lists and objects go."""
    kept: dict[str, Any] = {}
    for key, value in (data or {}).items():
        if isinstance(value, bool | int | float) or value is None:
            kept[key] = value
        elif isinstance(value, str) and key in _EVENT_KEPT:
            kept[key] = value
    return kept
