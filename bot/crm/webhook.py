"""The signed outbound webhook: every lead event as JSON to `HANDOFF_WEBHOOK_URL`, for a CRM
Handoff has no adapter for (Pipedrive, Zoho) or a data warehouse.

Requests follow the Standard Webhooks specification (standardwebhooks.com), signed with the
`standardwebhooks` package: `webhook-id` is the outbox row's key (the same on every retry,
so a receiver drops a repeat by it), `webhook-timestamp` the time of sending, and
`webhook-signature` `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the secret
`HANDOFF_WEBHOOK_SECRET` (`whsec_` + base64). docs/crm.md shows a receiver verifying it.

The body:
    {"type": "lead.<event type>", "timestamp": "<ISO-8601: when the event happened>",
     "data": {"lead_id", "external_id", "crm_id", "event", "actor", "at", "data",
              "stage", "owner", "segment", "source", "campaign"}}
`stage`, `owner`, `segment`, `source` and `campaign` are the lead's as it is when the event is
sent (a rejection goes back to the source and campaign that brought the lead). `timestamp` is
when the event happened, as the specification says (the same as `data.at`, on every retry).

2xx: delivered. 429, 5xx, a timeout or a broken connection: tried again (`Retry-After` honoured,
in seconds or as an HTTP-date, for at most `MAX_BACKOFF`). 401, 403, 404: refused (the receiver
must be fixed; the events wait). Any other 4xx: refused too, naming the status. 410 Gone: the
receiver wants no more webhooks, so, as the specification says, the endpoint is disabled:
nothing more is sent to it until Handoff restarts (the events wait). A 3xx is not followed (the
specification counts it a failure; followed, a 301 or 302 would turn the POST into a GET without
the event): refused, naming where the receiver says it moved.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
from standardwebhooks import Webhook

from bot.crm.port import MAX_BACKOFF, UNPACED, CrmRefused, CrmRetry, Pace
from bot.domain.crm import CrmEvent, CrmNote, CrmRecord
from bot.domain.retry_after import retry_after_seconds

# aiohttp's `total` bounds the whole request: the wait for a connection, the sending and the
# whole answer's read.
REQUEST_SECONDS = 15.0
TIMEOUT = aiohttp.ClientTimeout(total=REQUEST_SECONDS, connect=5)


def body_of(event: CrmEvent) -> dict[str, object]:
    """The JSON body of one event."""
    return {
        "type": f"lead.{event.type}",
        "timestamp": event.at.isoformat(),
        "data": {
            "lead_id": event.lead_id,
            "external_id": event.external_id,
            "crm_id": event.crm_id,
            "event": event.type,
            "actor": event.actor,
            "at": event.at.isoformat(),
            "data": event.data,
            "stage": event.stage,
            "owner": event.owner,
            "segment": event.segment,
            "source": event.source,
            "campaign": event.campaign,
        },
    }


class WebhookAdapter:
    """The `webhook` CRM: events only (no record, no notes)."""

    name = "webhook"
    request_deadline = REQUEST_SECONDS

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.clock = clock  # Unix seconds, to count a `Retry-After` date from: the injected one
        self.signer = Webhook(secret)
        self._session = session
        self.pace: Pace = UNPACED  # the CRM worker's: each POST is counted
        self.gone: str | None = None  # the receiver answered 410 Gone: what it said

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def sync(self, record: CrmRecord) -> str | None:
        return None

    async def note(self, note: CrmNote) -> str | None:
        return None

    async def event(self, event: CrmEvent) -> None:
        if self.gone is not None:
            raise CrmRefused(self.gone, resent=False)
        async with self.pace.request():  # the receiver's limit counts requests
            status, text, retry_after, location = await self._post(event)
        if 200 <= status < 300:
            return
        said = f"HTTP {status}" + (f" ({text.strip()})" if text.strip() else "")
        if 300 <= status < 400:
            moved = f"it moved to {location}" if location else "it sends Handoff elsewhere"
            said = f"HTTP {status}: {moved}; set HANDOFF_WEBHOOK_URL to the receiver's address"
        if status == 410:
            self.gone = (
                f"the webhook receiver at {self.url} answered {said}, which asks for no more "
                "webhooks"
            )
            raise CrmRefused(self.gone, resent=False)
        if status == 429 or status >= 500:
            after = wait(retry_after, self.clock())
            raise CrmRetry(f"the webhook receiver answered {said}", after=after)
        raise CrmRefused(f"the webhook receiver at {self.url} answered {said}")

    async def _post(self, event: CrmEvent) -> tuple[int, str, str | None, str | None]:
        """One signed POST of the event: its status, the start of its body, `Retry-After`,
        `Location`."""
        body = json.dumps(body_of(event), separators=(",", ":"), default=str).encode()
        # The signature's timestamp is the real time: receivers refuse one 5 minutes off.
        stamp = datetime.now(UTC)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event.key,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": self.signer.sign(event.key, stamp, body),
            "User-Agent": "Handoff-Webhooks/1",
        }
        try:
            async with self._client().post(
                self.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                text = (await response.text())[:200]
                answer = response.headers
                return response.status, text, answer.get("Retry-After"), answer.get("Location")
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            # It may have arrived: the retry carries the same webhook-id.
            raise CrmRetry(f"{type(error).__name__}: {error}", unknown=True) from error

    async def check(self) -> list[str]:
        """Problems with the set-up: a URL that does not answer or refuses a signed test."""
        probe = CrmEvent(
            key="handoff-doctor-check",
            lead_id=0,
            external_id="handoff-doctor-check",
            type="check",
            actor="handoff",
            at=datetime.now(UTC),
        )
        try:
            await self.event(probe)
        except CrmRefused as error:
            return [f"{error}: check HANDOFF_WEBHOOK_URL and the receiver's secret."]
        except CrmRetry as error:
            return [f"the webhook receiver at {self.url} could not be reached: {error}."]
        return []

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def wait(value: str | None, now: float) -> float | None:
    """A `Retry-After` in seconds from `now` (Unix seconds), at most `MAX_BACKOFF` (a receiver
    cannot hold every write for a day); None without a readable one. RFC 9110 §10.2.3: a number
    of seconds or an HTTP-date (`Fri, 31 Dec 1999 23:59:59 GMT`; §5.6.7's obsolete forms too,
    always in GMT); a date already past is no wait; `inf`, `nan` or a negative number is none
    (bot/domain/retry_after.py)."""
    return retry_after_seconds(value, now, default=None, most=MAX_BACKOFF)
