"""Slack's Events API event ids already taken on: exactly-once for retried events."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from storage.db import Database, upsert_insert
from storage.tables import HandledEvent, table

# Slack retries an event three times within about an hour and a half; a day is plenty.
KEPT_FOR = timedelta(days=1)
PRUNE_EVERY = timedelta(hours=1)


class SlackEventStore:
    def __init__(self, database: Database) -> None:
        self.db = database
        self._next_prune: datetime | None = None

    async def take(self, event_id: str, now: datetime) -> bool:
        """Record `event_id` as taken on; False if it already was (a retry, or a concurrent
        delivery on another replica). Ids older than a day are pruned, at most once an hour
        per process (an indexed range delete)."""
        prune = self._next_prune is None or now >= self._next_prune
        if prune:
            self._next_prune = now + PRUNE_EVERY

        old = delete(table(HandledEvent)).where(HandledEvent.handled_at < now - KEPT_FOR)

        def work(db: Connection) -> bool:
            if prune:
                db.execute(old)
            statement = (
                upsert_insert(db)(table(HandledEvent))
                .values(event_id=event_id, handled_at=now)
                .on_conflict_do_nothing()
            )
            return bool(db.execute(statement).rowcount == 1)

        return await self.db.run(work)

    async def release(self, event_id: str) -> None:
        """Forget `event_id`: its handling failed, so Slack's retry of it must run."""
        statement = delete(table(HandledEvent)).where(HandledEvent.event_id == event_id)
        await self.db.run(lambda db: db.execute(statement))

    async def taken(self, event_id: str) -> bool:
        """Whether `event_id` is recorded (for tests and operators)."""
        statement = select(HandledEvent.event_id).where(HandledEvent.event_id == event_id)
        return await self.db.run(lambda db: db.execute(statement).first() is not None)
