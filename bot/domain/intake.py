"""What marketing systems send: the lead payload of `POST /leads`, validated field by field."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# No whitespace and none of `,;<>"`: a list of addresses, or a display name and its address
# ("Jane" <jane@acme.com>), is not an address.
# An address: no spaces, and none of , ; < > " (a CSV row or a header run into it).
EMAIL_PATTERN = r'^[^@\s,;<>"]+@[^@\s,;<>"]+\.[^@\s,;<>"]+$'
_EMAIL = re.compile(EMAIL_PATTERN)


class FieldError(BaseModel):
    field: str
    message: str


class Clean(BaseModel):
    """Strip whitespace, and drop NUL characters: never text, and PostgreSQL refuses them.
    No field takes true or false: lax validation would read `"score": true` as 1."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must not be true or false")
        return value.replace("\x00", "") if isinstance(value, str) else value


class Company(Clean):
    name: str | None = Field(default=None, max_length=500)
    domain: str | None = Field(default=None, max_length=255)
    employees: int | None = Field(default=None, ge=0, le=10_000_000)
    industry: str | None = Field(default=None, max_length=200)
    country: str | None = Field(default=None, max_length=100)
    state: str | None = Field(default=None, max_length=100)  # state or region
    # Text, or a whole number (2000) stored as its digits: a form or a CRM may send either.
    postcode: str | None = Field(
        default=None,
        max_length=20,
        json_schema_extra={
            "anyOf": [
                {"maxLength": 20, "type": "string"},
                {"minimum": 0, "type": "integer"},
                {"type": "null"},
            ]
        },
    )

    @field_validator("postcode", mode="before")
    @classmethod
    def _postcode(cls, value: Any) -> Any:
        return whole_number_as_text(value)


def whole_number_as_text(value: Any) -> Any:
    """A postcode or an id sent as a whole number is its decimal digits (2000 → "2000"): a
    form or a CRM may send either (HubSpot's ids are numbers). True and false (refused by
    `Clean`), 2000.0 and -2000 are refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("must be a string or a whole number of 0 or more")
        return str(value)
    if isinstance(value, float):
        raise ValueError("must be a string or a whole number of 0 or more")
    return value


def _text_or_whole_number(schema: dict[str, Any]) -> None:
    """The published schema of such a field: text as pydantic wrote it, or a whole number of 0
    or more (`null` stays a choice of its own where the field is optional)."""
    choices = schema.pop("anyOf", None) or [
        {key: schema.pop(key) for key in ("type", "minLength", "maxLength") if key in schema}
    ]
    schema["anyOf"] = [*choices[:1], {"type": "integer", "minimum": 0}, *choices[1:]]


class Engagement(Clean):
    type: str = Field(min_length=1, max_length=100)
    title: str | None = Field(default=None, max_length=2000)
    url: str | None = Field(default=None, max_length=3000)
    at: datetime | None = None

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return None if value is None else sent_instant(value)


class LeadIn(Clean):
    """A lead as intake accepts it. Unknown keys are kept in the raw payload, not rejected."""

    external_id: str = Field(
        min_length=1,
        max_length=255,
        json_schema_extra=_text_or_whole_number,
    )
    email: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=500)
    title: str | None = Field(default=None, max_length=500)
    phone: str | None = Field(default=None, max_length=100)
    company: Company = Field(default_factory=Company)
    source: str | None = Field(default=None, max_length=200)
    campaign: str | None = Field(default=None, max_length=500)
    segment: str | None = Field(default=None, max_length=100)
    score: int | None = Field(default=None, ge=0, le=100)
    engagement: list[Engagement] = Field(default_factory=list, max_length=500)
    received_at: datetime | None = None
    # The lead's record in the CRM (HubSpot contact id, Salesforce Lead id): writes go to it;
    # without it the CRM adapter finds the record by email.
    crm_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        json_schema_extra=_text_or_whole_number,
    )

    @field_validator("external_id", "crm_id", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return whole_number_as_text(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("must be an email address like jane@example.com")
        return value.lower()

    @field_validator("received_at")
    @classmethod
    def _received(cls, value: datetime | None) -> datetime | None:
        return None if value is None else sent_instant(value)

    def value(self, path: str) -> Any:
        """The value at a dotted field path (`company.name`), or None."""
        item: Any = self
        for part in path.split("."):
            item = getattr(item, part, None)
        return item


# A sender's clock may run a little ahead of ours; further ahead is a mistake, not a clock.
CLOCK_SKEW = timedelta(minutes=5)


def arrival_errors(lead: LeadIn, now: datetime) -> list[FieldError]:
    """What is wrong with when the lead says it arrived, as of `now`: not in the future (past
    a clock's drift). A past time is the sender's to give (a CRM that synced late, an import)."""
    if lead.received_at is not None and lead.received_at > now + CLOCK_SKEW:
        return [FieldError(field="received_at", message="must not be in the future")]
    return []


# Instants every time zone can show: Slack date tokens and the team's clock need both.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


NO_ZONE = (
    "must say its time zone, like 2026-11-20T09:30:00Z or 2026-11-20T09:30:00+11:00 "
    "(without one it could be UTC or the sender's own time)"
)


def sent_instant(value: datetime) -> datetime:
    """An instant a sender gives (`received_at`, an engagement's or an activity's `at`), in UTC.
    One without a time zone is refused, not guessed: RFC 3339's date-time (the `format:
    date-time` the intake's schema publishes) carries its offset, and read as UTC a CRM's local
    time would start a lead's clocks hours off (or call one of minutes ago "in the future")."""
    if value.tzinfo is None:
        raise ValueError(NO_ZONE)
    return utc(value)


def utc(value: datetime) -> datetime:
    # A timestamp without a zone is read as UTC (a sender's is refused first: `sent_instant`).
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # its offset pushes it past year 1 or 9999
        moment = _LATEST
    if not _EARLIEST <= moment < _LATEST:
        raise ValueError("must be a date-time between 1970 and 2100")
    return moment


_FRIENDLY = {
    "missing": "is required",
    "string_type": "must be a string",
    "string_unicode": "must be text (it holds a lone surrogate, such as \\ud800)",
    "int_parsing_size": "is too large a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "datetime_type": "must be an ISO-8601 date-time like 2026-11-20T09:30:00Z",
    "datetime_parsing": "must be an ISO-8601 date-time like 2026-11-20T09:30:00Z",
    "datetime_from_date_parsing": "must be an ISO-8601 date-time like 2026-11-20T09:30:00Z",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
}


def field_name(location: tuple[int | str, ...]) -> str:
    name = ""
    for part in location:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(body)"


def error_text(error: Any) -> str:
    kind = error["type"]
    if kind in _FRIENDLY:
        return _FRIENDLY[kind]
    if kind == "string_too_long":
        return f"must be at most {error['ctx']['max_length']} characters"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_long":
        return f"must have at most {error['ctx']['max_length']} items"
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = error["ctx"].get("ge", error["ctx"].get("le"))
        word = "at least" if kind == "greater_than_equal" else "at most"
        return f"must be {word} {bound}"
    return str(error["msg"]).removeprefix("Value error, ")


def parse_lead(payload: Any) -> tuple[LeadIn | None, list[FieldError]]:
    """Validate a decoded JSON body: the lead, or every field error (and no lead)."""
    if not isinstance(payload, dict):
        return None, [FieldError(field="(body)", message="must be a JSON object")]
    try:
        return LeadIn.model_validate(payload), []
    except ValidationError as error:
        errors = [
            FieldError(field=field_name(item["loc"]), message=error_text(item))
            for item in error.errors()
        ]
        return None, errors
