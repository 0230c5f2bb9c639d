"""The Slack members' emails, for the CRM adapters: an owner is found in the CRM by email
(HubSpot owners, Salesforce Users) unless the SLA file's `crm.owners` maps them."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.crm.port import CrmRetry
from bot.domain.retry_after import SLACK_MOST, header_seconds

log = logging.getLogger("handoff.crm")
USERS_INFO = "users.info"
# Slack errors that say "not now", not "never" (its common errors: any method may answer them).
_NOT_NOW = frozenset({"ratelimited", "internal_error", "fatal_error", "request_timeout"})


class SlackPace(Protocol):
    """The delivery worker's pacer (bot/slack/pacing.py `Pacer`): Slack's rate limits are the
    app's, per method, so every read of a method waits its turn there, and a 429 pauses the
    method for everyone."""

    async def wait(self, method: str, channel: str | None) -> None: ...

    def pause(self, method: str, channel: str | None, seconds: float) -> None: ...


class SlackEmails:
    """`await emails(user_id)`: the member's email from Slack's users.info (`profile.email`,
    which needs the `users:read.email` scope), or None. Cached: a rep's email rarely changes,
    and a burst of writes for one owner makes one call. Paced with `pacer` (`serve` gives the
    delivery worker's: HANDOFF_SLACK_CALLS_PER_MINUTE per method, under users.info's Tier 4),
    as the members' own reads are (bot/services/people.py)."""

    def __init__(self, client: AsyncWebClient, pacer: SlackPace | None = None) -> None:
        self.client = client
        self.pacer = pacer
        self._cache: dict[str, str | None] = {}

    async def __call__(self, user_id: str) -> str | None:
        if user_id in self._cache:
            return self._cache[user_id]
        try:
            if self.pacer is not None:
                await self.pacer.wait(USERS_INFO, None)
            answer = await self.client.users_info(user=user_id)
        except SlackApiError as error:
            status = error.response.status_code
            data = error.response.data
            code = data.get("error") if isinstance(data, dict) else None
            # Slack's answer is a JSON object with its `ok` (its Web API basics); one without
            # is a proxy's page (bot/slack/publisher.py NoSlackAnswer): Slack said nothing yet.
            said = isinstance(data, dict) and "ok" in data
            if status == 429 or status >= 500 or code in _NOT_NOW or not said:
                # Slack will answer later: the write waits (a CrmRetry) rather than going out
                # without its owner. A 429 is the app's limit for the method (after the
                # client's retries): nothing more to it, from here or the members' reads,
                # until its Retry-After.
                # No readable Retry-After: None, the worker's backoff (not a wait of 0 s).
                wait = (
                    header_seconds(
                        error.response.headers, time.time(), default=None, most=SLACK_MOST
                    )
                    if status == 429
                    else None
                )
                if wait is not None and self.pacer is not None:
                    self.pacer.pause(USERS_INFO, None, wait)
                why = code or (f"HTTP {status}" if said else str(error).splitlines()[0])
                raise CrmRetry(
                    f"Slack did not give the owner's email now ({why})", after=wait
                ) from None
            log.warning("no email for %s from Slack (%s)", user_id, code)
            if code == "user_not_found":
                self._cache[user_id] = None
            return None
        profile = (answer.get("user") or {}).get("profile") or {}
        email = profile.get("email")
        if not email:
            log.warning("Slack gives no email for %s: does the app have users:read.email?", user_id)
        self._cache[user_id] = str(email).lower() if email else None
        return self._cache[user_id]


def retry_after(error: Exception) -> float:
    """A 429's Retry-After, in seconds (0 when it carries none or none readable, or `error` is
    no Slack answer), at most SLACK_MOST (bot/domain/retry_after.py); the members' reads
    (bot/services/people.py) wait it out too."""
    headers = error.response.headers if isinstance(error, SlackApiError) else None
    return header_seconds(headers, time.time(), default=0.0, most=SLACK_MOST)
