"""The Slack members' emails, for the CRM adapters: an owner is found in the CRM by email
(HubSpot owners, Salesforce Users) unless the SLA file's `crm.owners` maps them."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("handoff.crm")


class SlackEmails:
    """`await emails(user_id)`: the member's email from Slack's users.info (`profile.email`,
    which needs the `users:read.email` scope), or None. Cached: a rep's email rarely changes,
    and a burst of writes for one owner makes one call."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._cache: dict[str, str | None] = {}

    async def __call__(self, user_id: str) -> str | None:
        if user_id in self._cache:
            return self._cache[user_id]
        try:
            answer = await self.client.users_info(user=user_id)
        except SlackApiError as error:
            code = error.response.get("error")
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
