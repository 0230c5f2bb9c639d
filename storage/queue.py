"""What the Slack outbox (storage/outbox.py) and the CRM outbox (storage/crm.py) share: a table
of rows to deliver, each pending until done or failed, taken by a worker with a lease. Each
function takes the table's mapped class, `OutboxRow` or `CrmOutboxRow`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, bindparam, cast, delete, func, or_, select, update

from storage.db import Database
from storage.tables import CrmOutboxRow, OutboxRow, table

PENDING, DONE, FAILED = "pending", "done", "failed"

Queue = type[OutboxRow] | type[CrmOutboxRow]


def is_due(row: Queue) -> tuple[Any, ...]:
    """The conditions of a row that may be taken now (`p_wall`): pending, not waiting for a
    retry's time, and not leased."""
    return (
        row.state == PENDING,
        or_(row.not_before.is_(None), row.not_before <= bindparam("p_wall")),
        or_(row.lease_until.is_(None), row.lease_until < bindparam("p_wall")),
    )


def pending_by_kind(row: Queue) -> Any:
    """(kind, how many, the oldest's `created_at`) of the pending rows."""
    return (
        select(row.kind, func.count(), func.min(row.created_at))
        .where(row.state == PENDING)
        .group_by(row.kind)
    )


def backlog(db: Connection, statement: Any) -> tuple[dict[str, int], datetime | None]:
    """The pending rows by kind, and when the oldest of them was written (`statement`: the
    queue's `pending_by_kind`)."""
    rows = db.execute(statement).all()
    depth = {str(kind): int(count) for kind, count, _ in rows}
    oldest = min((at for _, _, at in rows if at is not None), default=None)
    return depth, oldest


def _prunable(row: Queue) -> Any:
    return select(row.id, row.key).where(
        row.state == DONE,
        row.done_at < bindparam("p_before", type_=table(row).c.done_at.type),
        or_(row.key.is_(None), cast(row.payload, Text) != "{}"),
    )


def _prune_batch(db: Connection, row: Queue, before: datetime, batch: int) -> int:
    found = db.execute(_prunable(row).order_by(row.id).limit(batch), {"p_before": before}).all()
    unkeyed = [row_id for row_id, key in found if key is None]
    keyed = [row_id for row_id, key in found if key is not None]
    if unkeyed:
        db.execute(delete(table(row)).where(row.id.in_(unkeyed)))
    if keyed:
        db.execute(update(table(row)).where(row.id.in_(keyed)).values(payload={}))
    return len(found)


async def prune(database: Database, row: Queue, before: datetime, batch: int) -> int:
    """Retention: empty the rows done before `before`; how many were pruned. A row without a
    key is deleted; a keyed row only loses its payload, so its key stays taken for ever (the
    stores say why that matters). Rows pending or given up are kept. In batches, each its own
    short transaction."""
    pruned = 0
    while True:
        found = await database.run(lambda db: _prune_batch(db, row, before, batch))
        pruned += found
        if found < batch:
            return pruned


def release_leases(db: Connection, row: Queue, wall: datetime) -> int:
    """End every lease now (at start-up, when this process is the database's only user)."""
    statement = (
        update(table(row))
        .where(row.state == PENDING, row.lease_until > wall)
        .values(lease_until=wall)
    )
    return int(db.execute(statement).rowcount or 0)


def all_rows(db: Connection, row: Queue) -> list[dict[str, Any]]:
    """Every row, in id order (tests and operators)."""
    statement = select(table(row)).order_by(row.id)
    return [dict(found) for found in db.execute(statement).mappings()]
