"""Events API deliveries taken on once: Slack retries an event it thinks went unanswered."""

from __future__ import annotations

from datetime import datetime

from bot.services.leads import Notifier
from storage.outbox import OutboxStore
from storage.slack_events import SlackEventStore


class SlackEvents:
    """Which Slack events have been taken on, by `event_id`, in the database (so a retry that
    reaches another replica, or arrives after a restart, is recognised too)."""

    def __init__(self, rows: SlackEventStore) -> None:
        self.rows = rows

    async def first_time(self, event_id: str, now: datetime) -> bool:
        """True once per `event_id`: the delivery that should run; False for every repeat."""
        return await self.rows.take(event_id, now)

    async def failed(self, event_id: str) -> None:
        """Its handling failed: let Slack's retry of it run."""
        await self.rows.release(event_id)


class Channels:
    """A channel Slack said was unarchived (`channel_unarchive`, `group_unarchive`), or that the
    app joined (`member_joined_channel` for the app itself: invited back)."""

    def __init__(self, rows: OutboxStore, notifier: Notifier) -> None:
        self.rows, self.notifier = rows, notifier

    async def unarchived(self, channel: str, now: datetime) -> int:
        """Every open lead whose post to `channel` Slack refused is posted there again, as it
        is now, once, and every message to marketing and weekly or monthly report refused there
        is sent again, once; the managers' alert about the refusals says so. How many leads."""
        again = await self.rows.mended(channel, now)
        self.notifier.deliver_soon()
        return again

    async def joined(self, channel: str, now: datetime) -> int:
        """The app is a member of `channel` again: what Slack refused there comes back as on
        `unarchived`, the report charts refused for want of membership included. How many
        leads."""
        again = await self.rows.joined(channel, now)
        self.notifier.deliver_soon()
        return again
