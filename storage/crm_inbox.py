"""The CRM's notifications already handled: each (source, event id) once, as CRMs retry.

A key names the CRM record in plain (HubSpot's `<eventId>:<type>:<objectId>`), so a row is
kept only while the CRM may still retry it (`KEEP`), and an erasure drops the rows of the
person's records at once (`storage.repository.Store.erase`)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_
from sqlalchemy.engine import Connection

from storage.db import Database, upsert_insert
from storage.tables import CrmInboxRow, table


class CrmInboxStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def take(
        self, source: str, event_id: str, now: datetime, crm_id: str | None = None
    ) -> bool:
        """Record the notification (about the CRM record `crm_id`) as taken on; False if it
        already was (a retry, or the same delivery on another replica at once)."""

        def work(db: Connection) -> bool:
            statement = (
                upsert_insert(db)(table(CrmInboxRow))
                .values(source=source, event_id=event_id, received_at=now, crm_id=crm_id)
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

    async def prune(self, before: datetime, batch: int = 1000) -> int:
        """Retention: drop the notifications received before `before` (now - `KEEP`); how
        many. In batches, each its own short transaction."""
        oldest = (
            select(CrmInboxRow.source, CrmInboxRow.event_id)
            .where(CrmInboxRow.received_at < before)
            .limit(batch)
        )
        key = tuple_(CrmInboxRow.source, CrmInboxRow.event_id)
        statement = delete(table(CrmInboxRow)).where(key.in_(oldest))

        def work(db: Connection) -> int:
            return int(db.execute(statement).rowcount or 0)

        pruned = 0
        while True:
            found = await self.db.run(work)
            pruned += found
            if found < batch:
                return pruned


def forget_records(db: Connection, crm_ids: Collection[str]) -> None:
    """Drop the notifications about these CRM records (an erasure's, in its transaction)."""
    if crm_ids:
        db.execute(delete(table(CrmInboxRow)).where(CrmInboxRow.crm_id.in_(sorted(crm_ids))))


# How long a notification's key is kept. HubSpot resends a webhook subscription's failed
# notification (any 4xx or 5xx) up to 10 times, "spread out over the next 24 hours" (its
# Webhooks API guide, "Retries"; its changelog "Updated Webhook Retry Logic", 2018, replaced the
# older overview's doubling from 2 minutes), and a workflow's "Send a webhook" call
# that failed with a 5xx "over the next 3 days" (developers.hubspot.com/docs/methods/workflows/
# webhook_information). Salesforce resends nothing itself but a failed flow's time-based retry,
# scheduled minutes later ("Troubleshooting Flow Retries", Salesforce Help); Apex resends on
# its own terms (docs/crm-inbound.md asks it to stay within 3 days). The longest window, 3
# days, and four more for clocks, queues and a resend by hand: a key pruned after this
# refuses no retry that can still come.
KEEP = timedelta(days=7)
