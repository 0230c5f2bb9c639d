"""The CRM outbox: what the CRM must learn, written with the change that causes it, delivered
later by the CRM worker (bot/crm/worker.py), in order per lead.

Every event row goes through `insert_events`. With a `crm:` section (`Database.crm`, copied
into each unit of work's connection), the same call adds the CRM writes the event causes
(`bot.domain.crm.writes_for`) in the same transaction: the lead's change and the rows that
will tell the CRM are committed together or not at all. Without one, it is the plain INSERT
it always was, with no statement added.

`CrmOutboxStore` is what the worker uses: find due rows (a lead's row is due only when no
earlier row of the same lead is pending), lease one, record its outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import aliased

from bot.domain.crm import Write, writes_for
from bot.domain.lead import LeadView, Stage
from storage.db import CRM_INFO, Database, insert_many
from storage.queue import (
    DONE,
    PENDING,
    all_rows,
    backlog,
    is_due,
    pending_by_kind,
    prune,
    release_leases,
)
from storage.tables import CrmOutboxRow, EventRow, LeadRow, table

CRM_OUTBOX = CrmOutboxRow.__table__
# A note's payload: its lead's owner's time zone when it was written (None: none known).
OWNER_ZONE = "owner_zone"


_INSERT_EVENT = insert(table(EventRow))
_INSERT_ROWS = insert(table(CrmOutboxRow))

# A lead's sync row, unless one is waiting that has not started: that one will render the
# lead as it is when it is sent (repeated changes collapse into one PATCH).
_SYNC_WAITING = exists().where(
    CrmOutboxRow.lead_id == LeadRow.id,
    CrmOutboxRow.kind == Write.SYNC.value,
    CrmOutboxRow.state == PENDING,
    CrmOutboxRow.unknown.is_(False),  # not in flight
)
_ADD_SYNC = insert(table(CrmOutboxRow)).from_select(
    ["kind", "lead_id", "payload", "state", "created_at", "attempts", "unknown"],
    select(
        bindparam("p_kind", Write.SYNC.value),
        LeadRow.id,
        bindparam("p_payload", {}, type_=CRM_OUTBOX.c.payload.type),
        bindparam("p_state", PENDING),
        bindparam("p_now", type_=CRM_OUTBOX.c.created_at.type),
        bindparam("p_zero", 0),
        bindparam("p_false", False),
    ).where(LeadRow.id == bindparam("p_lead_id"), ~_SYNC_WAITING),
)


def crm_of(db: Connection) -> Any:
    """The `crm:` section the unit of work runs under (None: no CRM)."""
    return db.info.get(CRM_INFO)


def insert_events(db: Connection, events: Mapping[str, Any] | list[dict[str, Any]]) -> None:
    """Insert event rows (one mapping or a list; each: lead_id, type, actor, at, data) and,
    when a CRM is configured, the CRM writes they cause, in the caller's transaction."""
    if not events:
        return
    if isinstance(events, Mapping):
        db.execute(_INSERT_EVENT, events)
    else:
        insert_many(db, _INSERT_EVENT, events)
    crm = crm_of(db)
    if crm is None:
        return
    rows = [events] if isinstance(events, Mapping) else events
    add_crm_writes(db, crm, rows)


def add_crm_writes(db: Connection, crm: Any, events: Iterable[Mapping[str, Any]]) -> None:
    """The CRM outbox rows `events` cause under `crm`: keyed notes and events, and one sync
    row per lead unless one waits already."""
    rows: list[dict[str, Any]] = []
    synced: list[int] = []
    now: datetime | None = None
    for event in events:
        at = event["at"]
        now = now or at
        for write, payload in writes_for(crm, event):
            if write is Write.SYNC:
                if event["lead_id"] not in synced:
                    synced.append(event["lead_id"])
                continue
            rows.append(
                {
                    "kind": write.value,
                    "lead_id": event["lead_id"],
                    "key": uuid.uuid4().hex,
                    "payload": {**payload, "at": at.isoformat()},
                    "state": PENDING,
                    "created_at": at,
                    "attempts": 0,
                    "unknown": False,
                }
            )
    notes = [row for row in rows if row["kind"] == Write.NOTE.value]
    if notes:
        # The owner's time zone as the rep works the lead: a Salesforce Task is dated on the
        # lead's clock then (`clock: owner`), not on that of whoever owns it when the CRM takes
        # the write (reassigned, or back with the pool, while the CRM refused or was down).
        ids = sorted({row["lead_id"] for row in notes})
        found = db.execute(select(LeadRow.id, LeadRow.owner_zone).where(LeadRow.id.in_(ids)))
        zones = {int(lead_id): zone for lead_id, zone in found}
        for row in notes:
            row["payload"][OWNER_ZONE] = zones.get(int(row["lead_id"]))
    # The sync first: a disposition's record changes before its note is added.
    if synced:
        db.execute(_ADD_SYNC, [{"p_lead_id": lead, "p_now": now} for lead in synced])
    if rows:
        db.execute(_INSERT_ROWS, rows)


def forget_crm(db: Connection, lead_id: int, now: datetime) -> None:
    """After an erasure, in its transaction: no CRM row of the lead keeps the person's data
    (its payload, or a CRM's answer that may quote them), and none still to deliver is sent
    (each is done, with nothing sent)."""
    crm = table(CrmOutboxRow)
    db.execute(
        update(crm).where(CrmOutboxRow.lead_id == lead_id).values(payload={}, last_error=None)
    )
    db.execute(
        update(crm)
        .where(CrmOutboxRow.lead_id == lead_id, CrmOutboxRow.state == PENDING)
        .values(state=DONE, done_at=now, last_error="erased before it was sent", lease_until=None)
    )


@dataclass(frozen=True)
class CrmItem:
    """A leased CRM outbox row."""

    id: int
    kind: str
    lead_id: int
    key: str | None
    payload: dict[str, Any]
    attempts: int
    unknown: bool  # an earlier request may have reached the CRM
    created_at: datetime


_EARLIER = aliased(CrmOutboxRow)
_NONE_EARLIER = ~(
    select(_EARLIER.id)
    .where(
        _EARLIER.lead_id == CrmOutboxRow.lead_id,
        _EARLIER.state == PENDING,
        _EARLIER.id < CrmOutboxRow.id,
    )
    .exists()
)
_IS_DUE = is_due(CrmOutboxRow)
_DUE = (
    select(CrmOutboxRow.id, CrmOutboxRow.lead_id)
    .where(*_IS_DUE, _NONE_EARLIER)
    .order_by(CrmOutboxRow.id)
    .limit(bindparam("p_limit"))
)
# A conditional update: of two workers leasing the same row (PostgreSQL replicas) the second
# finds it leased when its UPDATE gets the row, and changes nothing.
_LEASE = (
    update(table(CrmOutboxRow))
    .where(CrmOutboxRow.id == bindparam("p_id"), *_IS_DUE, _NONE_EARLIER)
    .values(
        unknown=True,  # until this request's outcome is known
        lease_until=bindparam("p_until"),
        attempts=CrmOutboxRow.attempts + 1,
    )
    .returning(
        CrmOutboxRow.id,
        CrmOutboxRow.kind,
        CrmOutboxRow.lead_id,
        CrmOutboxRow.key,
        CrmOutboxRow.payload,
        CrmOutboxRow.attempts,
        CrmOutboxRow.unknown,
        CrmOutboxRow.created_at,
    )
)
# A longer lease, for the worker that holds it: its lease's end is its fence (a worker whose
# lease ran out, and was taken by another, changes nothing).
_EXTEND = (
    update(table(CrmOutboxRow))
    .where(
        CrmOutboxRow.id == bindparam("p_id"),
        CrmOutboxRow.state == PENDING,
        CrmOutboxRow.lease_until == bindparam("p_until"),
    )
    .values(lease_until=bindparam("p_longer"))
)
_UNKNOWN = select(CrmOutboxRow.unknown).where(CrmOutboxRow.id == bindparam("p_id"))
_FINISH = (
    update(table(CrmOutboxRow))
    .where(CrmOutboxRow.id == bindparam("p_id"))
    .values(
        state=bindparam("p_state"),
        done_at=bindparam("p_now"),
        last_error=bindparam("p_error"),
        lease_until=None,
        unknown=False,
    )
)
_RETRY = (
    update(table(CrmOutboxRow))
    .where(CrmOutboxRow.id == bindparam("p_id"))
    .values(
        not_before=bindparam("p_not_before"),
        last_error=bindparam("p_error"),
        unknown=bindparam("p_unknown"),
        lease_until=None,
    )
)
_PENDING_BY_KIND = pending_by_kind(CrmOutboxRow)
_OLDEST_PENDING_ID = select(func.min(CrmOutboxRow.id)).where(CrmOutboxRow.state == PENDING)
_VIEW = [name for name in LeadView.__dataclass_fields__ if name != "stage"]
_LEAD = select(table(LeadRow)).where(LeadRow.id == bindparam("p_lead_id"))


def lead_view_of(db: Connection, lead_id: int) -> LeadView | None:
    row = db.execute(_LEAD, {"p_lead_id": lead_id}).mappings().first()
    if row is None:
        return None
    return LeadView(stage=Stage(row["stage"]), **{name: row[name] for name in _VIEW})


# Only over the id the write started from (none, or the one it found gone): a lead tied
# meanwhile to another record (a merge told by the CRM) keeps it; an erased lead gets none
# (its id is a digest, or none at all when it had none: the record found is not kept in plain).
_SET_CRM_ID = (
    update(table(LeadRow))
    .where(
        LeadRow.id == bindparam("p_lead_id"),
        LeadRow.erased_at.is_(None),
        or_(LeadRow.crm_id.is_(None), LeadRow.crm_id == bindparam("p_was")),
    )
    .values(crm_id=bindparam("p_crm_id"))
)


class CrmOutboxStore:
    """The CRM worker's queries: each one short transaction."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def due(self, wall: datetime, limit: int = 200) -> list[tuple[int, int]]:
        """(id, lead id) of rows that may be sent now, oldest first: the first pending row of
        each lead, when it is due."""
        params = {"p_wall": wall, "p_limit": limit}
        return await self.db.run(
            lambda db: [(int(r[0]), int(r[1])) for r in db.execute(_DUE, params)]
        )

    async def lease(self, row_id: int, wall: datetime, until: datetime) -> CrmItem | None:
        """Take the row until `until`; None if it is done, not due, waits behind an earlier
        row of its lead, or another worker has it."""
        params = {"p_id": row_id, "p_wall": wall, "p_until": until}

        def work(db: Connection) -> CrmItem | None:
            before = db.execute(_UNKNOWN, {"p_id": row_id}).scalar()
            row = db.execute(_LEASE, params).mappings().first()
            if row is None:
                return None
            return CrmItem(
                id=int(row["id"]),
                kind=str(row["kind"]),
                lead_id=int(row["lead_id"]),
                key=row["key"],
                payload=dict(row["payload"] or {}),
                attempts=int(row["attempts"]),
                unknown=bool(before),
                created_at=row["created_at"],
            )

        return await self.db.run(work)

    async def extend(self, row_id: int, until: datetime, longer: datetime) -> bool:
        """Hold the row leased until `longer`, if this worker's lease (until `until`) still
        holds it; False when it does not (it ran out, and another worker may have the row)."""
        params = {"p_id": row_id, "p_until": until, "p_longer": longer}
        return bool(await self.db.run(lambda db: db.execute(_EXTEND, params).rowcount == 1))

    async def lead(self, lead_id: int) -> LeadView | None:
        """The lead as it is now (its CRM id with it)."""
        return await self.db.run(lambda db: lead_view_of(db, lead_id))

    async def done(
        self,
        item: CrmItem,
        now: datetime,
        crm_id: str | None = None,
        error: str | None = None,
        *,
        was: str | None = None,
    ) -> None:
        """The write happened (or there was nothing to write to: `error` says why). A CRM id
        the write found (by email, or the record a merged-away or deleted one lives on in) is
        kept on the lead, so the next write needs no lookup: in place of none, or of `was`,
        the id the write started from, and of no other (one set meanwhile stands)."""

        def work(db: Connection) -> None:
            params = {"p_id": item.id, "p_state": DONE, "p_now": now, "p_error": error}
            db.execute(_FINISH, params)
            if crm_id:
                tie = {"p_lead_id": item.lead_id, "p_crm_id": crm_id[:64], "p_was": was}
                db.execute(_SET_CRM_ID, tie)

        await self.db.run(work)

    async def retry(
        self, item: CrmItem, not_before: datetime, error: str, *, unknown: bool
    ) -> None:
        """Try again at `not_before` (wall clock); `unknown`: a request so far may have
        reached the CRM."""
        params = {
            "p_id": item.id,
            "p_not_before": not_before,
            "p_error": error[:1000],
            "p_unknown": unknown,
        }
        await self.db.run(lambda db: db.execute(_RETRY, params))

    async def backlog(self) -> tuple[dict[str, int], datetime | None]:
        """The pending rows by kind, and when the oldest of them was written."""

        return await self.db.run(lambda db: backlog(db, _PENDING_BY_KIND))

    async def oldest_pending(self) -> datetime | None:
        return (await self.backlog())[1]

    async def oldest_pending_id(self) -> int | None:
        """The id of the oldest row still to send (None: none waits)."""
        return await self.db.run(lambda db: db.execute(_OLDEST_PENDING_ID).scalar())

    async def pending(self) -> int:
        return sum((await self.backlog())[0].values())

    async def prune(self, before: datetime, batch: int = 1000) -> int:
        """Retention: empty the CRM writes done before `before`; how many were pruned.

        The same guarantee as the Slack outbox (`OutboxStore.prune`): a row without a key (a
        sync, which renders the lead when it is sent) is deleted; a keyed row (a note, an
        event: its key is what the CRM or the receiver knows it by) only loses its payload,
        so its key stays taken for ever. A done row is never sent again, and rows are only
        written with their change, so pruning cannot cause a second delivery. Rows pending
        or given up are kept."""
        return await prune(self.db, CrmOutboxRow, before, batch)

    async def release_leases(self, wall: datetime) -> int:
        """End every lease now (start-up, when this process is the database's only user)."""
        return await self.db.run(lambda db: release_leases(db, CrmOutboxRow, wall))

    async def rows(self) -> list[dict[str, Any]]:
        """Every row, in id order (tests and operators)."""
        return await self.db.run(lambda db: all_rows(db, CrmOutboxRow))
