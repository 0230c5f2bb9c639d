"""Members' time zones from Slack (`users.info`), for SLA files with `clock: owner`.

A claimed lead's clocks then run on its owner's working hours in the owner's own zone. The
zones are read from the database at start (so a restart needs no Slack call), refreshed from
Slack in the background at start and once a day, and kept in the one mapping the use cases
and the sweep read. A member Slack cannot describe keeps the team's clock.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.policies import PolicyBook
from storage.repository import Store

log = logging.getLogger("handoff.people")


class People:
    def __init__(
        self,
        client: AsyncWebClient,
        store: Store,
        policies: PolicyBook,
        zones: dict[str, str],
    ) -> None:
        self.client = client
        self.store = store
        self.policies = policies
        self.zones = zones  # shared with Services and the Sweeper: updated in place

    @property
    def wanted(self) -> bool:
        return self.policies.current.clock == "owner"

    def members(self) -> list[str]:
        """The people who may own a lead under the current SLA: pool reps and managers."""
        policy = self.policies.current
        people = [rep for segment in policy.segments for rep in segment.reps] + policy.managers
        return list(dict.fromkeys(people))

    async def load(self) -> None:
        self.zones.update(await self.store.zones())

    async def refresh(self, now: datetime) -> dict[str, str]:
        """Ask Slack for each member's time zone; remember (as of `now`) and return the ones
        it gave."""
        found: dict[str, str] = {}
        for user in self.members():
            try:
                answer = await self.client.users_info(user=user)
            except SlackApiError as error:
                reason = error.response.get("error") if error.response is not None else error
                log.warning("no time zone for %s (users.info: %s): team clock", user, reason)
                continue
            except Exception as error:  # Slack unreachable: try again at the next refresh
                log.warning("no time zone for %s (%s): team clock until the next try", user, error)
                continue
            zone = str((answer.get("user") or {}).get("tz") or "")
            if _known(zone):
                found[user] = zone
        if found:
            await self.store.save_zones(found, now)
            self.zones.update(found)
        return found


def _known(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return bool(zone)
