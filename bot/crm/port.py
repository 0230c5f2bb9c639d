"""The CRM port: what every adapter does, and the errors it raises.

The CRM delivery worker (`bot/crm/worker.py`) decides *when* and how often; an adapter decides
*how* a write looks in its CRM. Adapters are async; one wrapping a synchronous client (the
official `hubspot-api-client`, `simple-salesforce`) runs its calls in a thread, and waits for
each at most its `request_deadline` (the client's own timeout does not bound a whole request).

A CRM limits HTTP requests, not writes, and one write may take several: so an adapter sends
each request inside `pace.request()` (the worker's rolling window), the reads included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from bot.domain import strict_json
from bot.domain.crm import CrmChange, CrmEvent, CrmNote, CrmRecord

# Seconds: the longest the CRM worker waits before trying a write again, and the longest
# wait a receiver's `Retry-After` may ask for (the webhook's).
MAX_BACKOFF = 600.0


class CrmError(Exception):
    """A write the CRM did not take."""


class CrmRetry(CrmError):
    """Try again later, as it is: a 429 (`after`: the CRM's own wait, in seconds), a 5xx, a
    broken connection or a dropped answer (`unknown`: the write may have been done)."""

    def __init__(self, message: str, *, after: float | None = None, unknown: bool = False) -> None:
        super().__init__(message)
        self.after = after
        self.unknown = unknown


class CrmRefused(CrmError):
    """The CRM refuses our writes until someone fixes the set-up: 401/403, an expired session
    that cannot be refreshed, a property or field the CRM does not have (`property`). The row
    waits; the worker raises one alert and shows the CRM as degraded. `resent` False: the
    adapter sends nothing more until Handoff restarts (a webhook receiver's 410 Gone)."""

    def __init__(self, message: str, *, property: str | None = None, resent: bool = True) -> None:
        super().__init__(message)
        self.property = property
        self.resent = resent


class CrmDailyLimit(CrmRefused):
    """The CRM account's requests for the day are used up (HubSpot's 429 with `policyName`
    DAILY): every request is refused until the limit resets at midnight. The worker sends
    nothing before the next midnight of the SLA file's time zone (`resumes`, set by the
    worker's pace), and tells the escalations channel once, as for any refusal; an inbound
    webhook that needs a read meanwhile is answered 503 until then."""

    def __init__(self, message: str, *, resumes: datetime | None = None) -> None:
        super().__init__(message)
        self.resumes = resumes


class CrmMissing(CrmError):
    """The record is not in the CRM (deleted, or no record with the lead's email): nothing to
    write to. The row is done, with a warning."""


class BadSignature(Exception):
    """An inbound webhook whose signature is missing, wrong or stale (answer 401)."""


class BadPayload(Exception):
    """An inbound body of an unknown shape (answer 400): `fields` names what is wrong."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in fields))
        self.fields = fields


def json_body(body: bytes) -> Any:
    """An inbound body as JSON, as strictly as intake reads its own (`strict_json`);
    BadPayload naming `(body)` when it is not."""
    try:
        return strict_json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise BadPayload([("(body)", f"not JSON: not UTF-8 (byte {error.start})")]) from None
    except strict_json.NotJson as error:
        raise BadPayload([("(body)", f"not JSON: {str(error)[:200]}")]) from None


class Pace(Protocol):
    """The CRM's rate limit, as the adapter meets it: `async with pace.request():` around every
    HTTP request sent to the CRM (a write, a read, a retry), so each one is counted."""

    def request(self) -> contextlib.AbstractAsyncContextManager[object]: ...


class Unpaced:
    """No pacing (`handoff doctor`'s few requests): a request goes at once."""

    def request(self) -> contextlib.AbstractAsyncContextManager[object]:
        return contextlib.nullcontext()


UNPACED = Unpaced()


class CrmAdapter(Protocol):
    """One CRM. Every method raises CrmRetry, CrmRefused or CrmMissing when a write fails."""

    name: str  # hubspot | salesforce | webhook
    pace: Pace  # set by the CRM worker: every HTTP request goes through `pace.request()`
    # The longest, in seconds, one request may keep the worker waiting (a wait for a thread
    # included); past it the request is given up as CrmRetry. The worker's lease covers it.
    request_deadline: float

    async def sync(self, record: CrmRecord) -> str | None:
        """Make the record show `record` (owner, status, lifecycle, fields): a PATCH of the
        current state, safe to repeat. Returns the CRM id used (found by email when
        `record.crm_id` is None), or None for a CRM without records (the webhook)."""
        ...

    async def note(self, note: CrmNote) -> str | None:
        """Create the note (or Task) once: when a note carrying `note.key` exists already (an
        earlier attempt whose answer was lost), adopt it instead of creating a second. Returns
        the CRM id of the record the note went on (HubSpot: the contact, which is another than
        `note.crm_id` when that one was merged away or deleted), as `sync` does; None for a CRM
        whose adapter does not say (Salesforce, the webhook)."""
        ...

    async def event(self, event: CrmEvent) -> None:
        """Send one lead event (the webhook adapter; the others do nothing)."""
        ...

    async def check(self) -> list[str]:
        """Problems with the set-up, in plain words, each naming what is wrong (a mapped
        property the CRM does not have, credentials it refuses): `handoff doctor`."""
        ...

    async def aclose(self) -> None: ...


class CrmInbound(Protocol):
    """The inbound side of an adapter: verify and parse the CRM's webhooks."""

    def verify(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> None:
        """Raise BadSignature unless the request is signed by the CRM and fresh."""
        ...

    def parse(self, body: bytes) -> list[CrmChange]:
        """The changes a verified body reports; BadPayload for an unknown shape."""
        ...

    async def lead_of(self, change: CrmChange) -> dict[str, object] | None:
        """A CREATED change's lead as intake JSON (`POST /leads`'s shape), read from the CRM
        where the payload does not carry it; None when the record is gone."""
        ...

    async def owner_email(self, owner_crm_id: str) -> str | None:
        """The email of a CRM owner (to find the Slack member), or None."""
        ...
