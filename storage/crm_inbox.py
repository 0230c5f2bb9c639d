"""The CRM's notifications already handled: each (source, event id) once, as CRMs retry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from storage.db import Database, upsert_insert
from storage.tables import CrmInboxRow, table


class CrmInboxStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def take(self, source: str, event_id: str, now: datetime) -> bool:
        """Record the notification as taken on; False if it already was (a retry, or the same
        delivery on another replica at once)."""

        def work(db: Connection) -> bool:
            statement = (
                upsert_insert(db)(table(CrmInboxRow))
                .values(source=source, event_id=event_id, received_at=now)
                .on_conflict_do_nothing()
            )
            return bool(db.execute(statement).rowcount == 1)

        return await self.db.run(work)

    async def release(self, source: str, event_id: str) -> None:
        """Forget the notification: handling it failed, so the CRM's retry of it must run."""
        statement = delete(table(CrmInboxRow)).where(
            CrmInboxRow.source == source, CrmInboxRow.event_id == event_id
        )
        await self.db.run(lambda db: db.execute(statement))

    async def taken(self, source: str, event_id: str) -> bool:
        """Whether the notification is recorded (for tests and operators)."""
        statement = select(CrmInboxRow.event_id).where(
            CrmInboxRow.source == source, CrmInboxRow.event_id == event_id
        )
        return await self.db.run(lambda db: db.execute(statement).first() is not None)

    async def count(self) -> int:
        statement = select(CrmInboxRow.event_id)
        return await self.db.run(lambda db: len(db.execute(statement).all()))
