"""The CRM's notifications already handled: each (source, event id) once, as CRMs retry.

A notification is taken (`take`) before its change is applied and done once it is (`done`,
or `finish` in the transaction that writes the change, where a second apply would not be
harmless: docs/crm-inbound.md, "Once"):
a process killed in between (kill -9, OOM) leaves its row taken but not done, and the CRM's
retry of it after `LEASE` takes it again and applies it, so nothing is lost (SPEC: nothing
is lost on kill -9); a retry within `LEASE` is the same delivery on another replica, still
applying it: not applied twice (bot/services/crm_inbound.py answers it 503). A row keeps when
the notification first arrived (`first_received_at`) across its takes, and across a `release`
after a failure (its row stays, taken by nobody, for the CRM's retry to take at once): a change
whose CRM gives it no time of its own is ordered by that, so a retry is not taken for a newer
change.

A key names the CRM record in plain (HubSpot's `<eventId>:<type>:<objectId>`), so a row is
kept only while the CRM may still retry it (`KEEP`), and an erasure drops the rows of the
person's records at once (`storage.repository.Store.erase`)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.engine import Connection

from storage.db import Database, upsert_insert
from storage.tables import CrmInboxRow, table

log = logging.getLogger(__name__)

# What `take` found when it did not take the notification: "done" (applied already: a retry),
# "applying" (taken less than `LEASE` ago and not done: another replica is applying it).
Busy = Literal["done", "applying"]


@dataclass(frozen=True)
class Notification:
    """A notification as this call took it: its CRM (`source`), its event id, when it was
    taken (`take`'s `now`, its row's `received_at` while the take is this call's), and when it
    first arrived (`first_received_at`: an earlier take's, killed before its done mark)."""

    source: str
    event_id: str
    taken_at: datetime
    first_received_at: datetime | None = None

    @property
    def arrived_at(self) -> datetime:
        """When Handoff first received it: the time of a change the CRM gives none (a
        Salesforce Flow's without `at`), which a retry must keep, not take as now."""
        return self.first_received_at or self.taken_at


class NotOurs(Exception):
    """The notification is no longer the take's that applies it (done, or taken again by
    another replica after `LEASE`): `finish` raised it, so the transaction applying its
    change is rolled back, and nothing of it is written twice."""


def finish(db: Connection, notification: Notification, now: datetime) -> None:
    """Mark the notification done in the transaction that applies its change (the caller's):
    the change and its done mark are committed together or not at all, so no kill -9 comes
    between them and the CRM's retry never applies it a second time. NotOurs (the caller's
    writes rolled back) when the take is not this one's any more: done by another, or taken
    again after `LEASE` by another replica, which applies it."""
    statement = update(table(CrmInboxRow)).where(*_mine(notification)).values(done_at=now)
    if db.execute(statement).rowcount != 1:
        raise NotOurs(f"{notification.source} notification {notification.event_id}")


# When a row's notification first arrived (a row of a replica from before 0037 has none: its
# `received_at`). A released row's `received_at` is before it; a taken one's is not.
_FIRST = func.coalesce(CrmInboxRow.first_received_at, CrmInboxRow.received_at)


def _one(source: str, event_id: str) -> tuple[Any, Any]:
    """The conditions naming one notification's row."""
    return CrmInboxRow.source == source, CrmInboxRow.event_id == event_id


def _mine(notification: Notification) -> tuple[Any, ...]:
    """The conditions of its row while it is still this take's: taken at `taken_at` and not
    done. A replica slower than `LEASE` finds its row taken again by another (which is
    applying it) or done by it, and must leave it so."""
    return (
        *_one(notification.source, notification.event_id),
        CrmInboxRow.received_at == notification.taken_at,
        CrmInboxRow.done_at.is_(None),
    )


class CrmInboxStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def take(
        self, source: str, event_id: str, now: datetime, crm_id: str | None = None
    ) -> Notification | Busy:
        """Take the notification (about the CRM record `crm_id`) on, to apply it: this call's
        take when it is new, was released (`release`), or was taken `LEASE` ago or more and
        never done (the process applying it died: it is taken again, by one replica only);
        taken again, it keeps when it first arrived. "done" when it was applied already (the
        CRM's retry); "applying" when another call took it less than `LEASE` ago (the same
        delivery on another replica at once: it is applying it). `received_at` is when it was
        last taken."""

        def work(db: Connection) -> Notification | Busy:
            statement = (
                upsert_insert(db)(table(CrmInboxRow))
                .values(
                    source=source,
                    event_id=event_id,
                    received_at=now,
                    first_received_at=now,
                    crm_id=crm_id,
                    done_at=None,
                )
                .on_conflict_do_nothing()
            )
            if db.execute(statement).rowcount == 1:
                return Notification(source, event_id, now, now)
            found = select(
                CrmInboxRow.received_at, CrmInboxRow.first_received_at, CrmInboxRow.done_at
            ).where(*_one(source, event_id))
            row = db.execute(found).first()
            if row is None or row.done_at is not None:
                return "applying" if row is None else "done"  # None: pruned or erased just now
            # A row a replica of before 0037 took has no first arrival: its `received_at` is.
            first = row.first_received_at or row.received_at
            # A released row's `received_at` is `LEASE` before its first arrival: over too.
            if row.received_at > now - LEASE:
                return "applying"
            # Conditional: of replicas taking it at once, one updates it; the others then see it
            # taken now (PostgreSQL re-reads the row once the winner commits).
            again = (
                update(table(CrmInboxRow))
                .where(
                    *_one(source, event_id),
                    CrmInboxRow.done_at.is_(None),
                    CrmInboxRow.received_at <= now - LEASE,
                )
                .values(received_at=now, first_received_at=first)
            )
            if db.execute(again).rowcount != 1:
                return "applying"
            if row.received_at >= first:  # not released: its process stopped
                log.warning(
                    "%s notification %s was taken but never applied (the process stopped): "
                    "its retry applies it now",
                    source,
                    event_id,
                )
            return Notification(source, event_id, now, first)

        return await self.db.run(work)

    async def done(self, notification: Notification, now: datetime) -> None:
        """Mark the notification done: its change is applied (by this take, maybe slower than
        `LEASE` and taken over: applied all the same), and the CRM's retries of it are ignored
        from now on. One `finish` marked already is left so."""
        statement = (
            update(table(CrmInboxRow))
            .where(*_one(notification.source, notification.event_id), CrmInboxRow.done_at.is_(None))
            .values(done_at=now)
        )
        await self.db.run(lambda db: db.execute(statement))

    async def release(self, notification: Notification) -> None:
        """Give the notification up: handling it failed (or its lead is not known yet), so the
        CRM's retry of it must run. Its row stays, taken by nobody: its `received_at` is put
        `LEASE` before its first arrival, so the retry takes it at once and keeps that first
        arrival (a change without the CRM's time is as old as it, not newer than a manager's
        call made meanwhile); pruned `KEEP` after it. Only this take (`_mine`), else a third
        delivery would apply it again at once while another replica applies it, or a retry
        of one done applied again."""
        first = notification.arrived_at
        statement = (
            update(table(CrmInboxRow))
            .where(*_mine(notification))
            .values(received_at=first - LEASE, first_received_at=first)
        )
        await self.db.run(lambda db: db.execute(statement))

    async def drop(self, notification: Notification) -> None:
        """Forget the notification: it is about a person Handoff erased, whose record its key
        names, so nothing of it is kept (its retry is ignored again all the same). Only this
        take (`_mine`)."""
        statement = delete(table(CrmInboxRow)).where(*_mine(notification))
        await self.db.run(lambda db: db.execute(statement))

    async def taken(self, source: str, event_id: str) -> bool:
        """Whether the notification is taken, being applied or done (for tests and operators):
        one released (`release`) is not, its row kept for its first arrival only."""
        statement = select(CrmInboxRow.event_id).where(
            *_one(source, event_id), CrmInboxRow.received_at >= _FIRST
        )
        return await self.db.run(lambda db: db.execute(statement).first() is not None)

    async def is_done(self, source: str, event_id: str) -> bool:
        """Whether the notification's change is applied (for tests and operators)."""
        statement = select(CrmInboxRow.event_id).where(
            *_one(source, event_id),
            CrmInboxRow.done_at.is_not(None),
        )
        return await self.db.run(lambda db: db.execute(statement).first() is not None)

    async def count(self) -> int:
        statement = select(CrmInboxRow.event_id)
        return await self.db.run(lambda db: len(db.execute(statement).all()))

    async def prune(self, before: datetime, batch: int = 1000) -> int:
        """Retention: drop the notifications received (last taken) before `before` (now -
        `KEEP`), and the released ones that first arrived before `before` + `LEASE` (their
        `received_at` is `LEASE` before it); how many. In batches, each its own short
        transaction."""
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

# How long a notification taken and not done is another replica's to apply: a retry after
# it takes the notification again (the process applying it died). Applying waits at most
# `READS_BOUND` (3 s, bot/services/crm_inbound.py) for the CRM's and Slack's reads, then a
# few database writes: 2 minutes is far past that, and well within the CRM's retries
# (HubSpot's are "spread out over the next 24 hours": its Webhooks API guide, "Retries").
LEASE = timedelta(minutes=2)
