"""Events API deliveries taken on once: Slack retries an event it thinks went unanswered."""

from __future__ import annotations

from datetime import datetime

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
