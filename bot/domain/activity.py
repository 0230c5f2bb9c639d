"""What a CRM sends to `POST /leads/{external_id}/activity`, validated field by field, and the
rules for applying it to a lead: an attempt made in the CRM, or a deal's stage change.

A deal's stage times are set once and never overwritten; a won or lost deal is an opportunity
too (it was one before it closed), and a won deal's amount is final.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from bot.domain.intake import (
    CLOCK_SKEW,
    Clean,
    FieldError,
    error_text,
    field_name,
    sent_instant,
)
from bot.domain.refusal import Reason, Refusal

ACTIVITY_TYPES = ("attempt", "stage", "info")
DealStage = Literal["opportunity", "won", "lost"]
MAX_AMOUNT = 999_999_999_999  # what the `amount` column holds: 12 digits and cents
_SLACK_USER = r"^[UW][A-Z0-9]{2,20}$"


class _ActivityIn(Clean):
    id: str | None = Field(default=None, min_length=1, max_length=200)  # the CRM's activity id
    at: datetime | None = None

    @field_validator("at")
    @classmethod
    def _at(cls, value: datetime | None) -> datetime | None:
        return None if value is None else sent_instant(value)


class AttemptIn(_ActivityIn):
    """A contact attempt made in the CRM: counted like a button press in Slack."""

    type: Literal["attempt"]
    kind: Literal["email", "call", "linkedin"]
    actor: str | None = Field(default=None, pattern=_SLACK_USER)  # the rep's Slack user id


class StageIn(_ActivityIn):
    """A deal's stage change in the CRM, with its amount when known."""

    type: Literal["stage"]
    stage: DealStage
    amount: float | None = Field(default=None, ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


class InfoIn(_ActivityIn):
    """Marketing's answer to the question a rep asked ("request more info")."""

    type: Literal["info"]
    answer: str = Field(min_length=1, max_length=2000)
    by: str | None = Field(default=None, min_length=1, max_length=200)  # who answered


Activity = AttemptIn | StageIn | InfoIn
_MODELS: dict[str, type[AttemptIn] | type[StageIn] | type[InfoIn]] = {
    "attempt": AttemptIn,
    "stage": StageIn,
    "info": InfoIn,
}
_CHOICES = {
    "kind": "must be one of email, call, linkedin",
    "stage": "must be one of opportunity, won, lost",
    "actor": "must be a Slack user id like U0123ABCD",
    "currency": "must be a three-letter currency code like AUD",
}


def parse_activity(payload: Any) -> tuple[Activity | None, list[FieldError]]:
    """Validate a decoded JSON body: the activity, or every field error (and no activity)."""
    if not isinstance(payload, dict):
        return None, [FieldError(field="(body)", message="must be a JSON object")]
    kind = payload.get("type")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return None, [FieldError(field="type", message='must be "attempt", "stage" or "info"')]
    try:
        return model.model_validate(payload), []
    except ValidationError as error:
        return None, [_field_error(item) for item in error.errors()]


def _field_error(item: Any) -> FieldError:
    name = field_name(item["loc"])
    if item["type"] in ("literal_error", "string_pattern_mismatch") and name in _CHOICES:
        return FieldError(field=name, message=_CHOICES[name])
    if item["type"] in ("finite_number", "float_parsing", "float_type"):
        return FieldError(field=name, message="must be a number")
    if item["type"] in ("greater_than_equal", "less_than_equal"):  # 0, not 0.0
        bounds = {key: f"{value:.12g}" for key, value in item["ctx"].items()}
        item = {**item, "ctx": bounds}
    return FieldError(field=name, message=error_text(item))


def activity_time(at: datetime | None, received_at: datetime, now: datetime) -> datetime:
    """When an activity happened, as Handoff records it: `now` when the CRM gave no time; never
    before the lead arrived (a speed to lead is not negative) nor after `now`.

    Raises ValueError for a time further in the future than a clock's drift."""
    if at is None:
        return now
    if at > now + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return max(received_at, min(at, now))


@dataclass(frozen=True)
class Deal:
    """A lead's deal as the CRM reported it."""

    opportunity_at: datetime | None = None
    won_at: datetime | None = None
    lost_at: datetime | None = None
    amount: float | None = None


def apply_stage(deal: Deal, stage: DealStage, at: datetime, amount: float | None) -> Deal:
    """The deal after a stage change at `at` (equal to `deal` when nothing changes).

    Raises Refusal when the change contradicts the outcome already recorded."""
    if stage == "won" and deal.lost_at is not None:
        raise Refusal(
            f"this deal was recorded as lost on {deal.lost_at:%Y-%m-%d}; not won too",
            Reason.CONFLICT,
        )
    if stage == "lost" and deal.won_at is not None:
        raise Refusal(
            f"this deal was recorded as won on {deal.won_at:%Y-%m-%d}; not lost too",
            Reason.CONFLICT,
        )
    changed = replace(deal, opportunity_at=deal.opportunity_at or at)
    if stage == "won":
        changed = replace(changed, won_at=deal.won_at or at)
    if stage == "lost":
        changed = replace(changed, lost_at=deal.lost_at or at)
    if amount is not None and deal.won_at is None and not _same(amount, deal.amount):
        changed = replace(changed, amount=amount)  # the latest estimate, until the deal is won
    return changed


def _same(amount: float, stored: float | None) -> bool:
    return stored is not None and math.isclose(amount, stored, abs_tol=0.005)
