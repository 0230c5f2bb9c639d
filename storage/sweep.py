"""The escalation sweep's queries: the due leads, locked, and their changes in one transaction.

The sweep reads only leads whose `next_action_at` has come (an indexed range), so it costs
what is due, not what is open. On PostgreSQL concurrent sweeps split the due leads with
`FOR UPDATE SKIP LOCKED`; everywhere, each (lead, cycle, ladder, step) is inserted once under
a unique key before its side effects are written, so a step fires exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping

from bot.domain.effects import Effect
from bot.domain.lead import LeadView
from storage.crm import insert_events
from storage.db import Database, upsert_insert
from storage.outbox import write_effects
from storage.repository import LEADS, lead_view
from storage.tables import EscalationRow, LeadRow, RoundRobin, table

log = logging.getLogger("handoff.sweep")
RETRY_BROKEN = timedelta(minutes=15)
_DUE_NOW = (LeadRow.next_action_at <= bindparam("p_now"),)
_STEPS = (EscalationRow.lead_id, EscalationRow.cycle, EscalationRow.ladder, EscalationRow.step)
_ROTA = select(RoundRobin.segment, RoundRobin.position)


@dataclass
class Change:
    """What the sweep does to one lead (decided by the service, applied here)."""

    next_action_at: datetime | None
    fired: list[tuple[str, int, str]] = field(default_factory=list)  # ladder, step, action
    skipped: list[tuple[str, int, str]] = field(default_factory=list)
    # Done once, fenced like a step, but no escalation (the reports do not count it): the end
    # of a claim window.
    noted: list[tuple[str, int, str]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # type, data
    values: dict[str, Any] = field(default_factory=dict)  # lead columns to set
    effects: list[Effect] = field(default_factory=list)  # what Slack hears of it

    @property
    def acted(self) -> bool:
        """A step fired, or the lead started a new cycle (not only a later look)."""
        return bool(self.fired or self.noted) or "cycle" in self.values


# The service's decision for one locked lead: it may pick a rep (round robin) while deciding.
Picker = Callable[[str, list[str], set[str]], str | None]
Decide = Callable[[LeadView, set[tuple[str, int]], Picker], Change | None]


@dataclass
class DuePage:
    """Leads due at `now`, read without locks, with what deciding them needs."""

    leads: list[LeadView]
    recorded: dict[int, set[tuple[str, int]]]  # (ladder, step) of each lead's cycle so far
    positions: dict[str, int]  # each segment's round robin as read
    marks: dict[int, Any]  # each lead's row version as read (see `_mark`)
    full: bool  # as many as asked for: there may be more


class SweepStore:
    """The sweep decides outside the transaction that locks its leads, so the locks (which a
    claim on the same lead waits for on PostgreSQL) last only as long as the writes: read the
    due page, decide, then lock the leads still due and apply the decisions of those whose row
    and round robin are as they were read. A lead changed in between is decided again, under
    its lock; the outcome is the same as deciding everything under the lock."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def due(self, now: datetime, limit: int) -> DuePage:
        """The leads due for a look, most overdue first (at most `limit`)."""

        def read(db: Connection) -> DuePage:
            rows = db.execute(due_page(db), {"p_now": now, "p_limit": limit}).mappings().all()
            leads = [view for row in rows if (view := lead_view(row))]
            positions = {str(segment): int(position) for segment, position in db.execute(_ROTA)}
            return DuePage(
                leads=leads,
                recorded=_recorded(db, leads),
                positions=positions,
                marks={int(row["id"]): _mark(db, row) for row in rows},
                full=len(rows) == limit,
            )

        return await self.db.run(read)

    async def apply(self, page: DuePage, now: datetime, decide: Decide) -> list[int]:
        """Decide each lead of `page`, then lock those still due and apply; the ids escalated."""
        planned = _Plan(page.positions)
        changes = {
            lead.id: _decided(decide, lead, page.recorded[lead.id], planned.picker(lead.id), now)
            for lead in page.leads
        }
        if not changes:
            return []

        def work(db: Connection) -> list[int]:
            params = {"p_ids": list(changes), "p_now": now}
            locked = db.execute(_lock(db), params).mappings().all()
            marks = {int(row["id"]): _mark(db, row) for row in locked}
            same = {i for i, mark in marks.items() if mark == page.marks[i]}
            rotation = _Rotation(db)
            # The picks stand if the round robin is where it was read and every lead that
            # picked is applied as decided; else all those leads pick again, from where it is.
            repick = any(rotation.hold(seg) != at for seg, at in planned.start.items())
            repick = repick or not planned.pickers <= same
            keep: list[tuple[LeadView, Change]] = []
            again: list[int] = []
            for lead in page.leads:
                if lead.id not in marks:
                    continue  # another sweep has it, or it is not due any more
                if lead.id not in same or (repick and lead.id in planned.pickers):
                    again.append(lead.id)
                elif (change := changes[lead.id]) is not None:
                    keep.append((lead, change))
            if not repick:  # the rotation goes on after the planned picks
                rotation.positions.update(planned.positions)
            keep += _decide_locked(db, again, rotation, now, decide)
            rotation.save()
            _apply(db, keep, now)
            return [lead.id for lead, change in keep if change.acted]

        try:
            return await self.db.run(work)
        except SweepConflict:
            return []  # rolled back; the next sweep reads the state the other one left


def _decided(
    decide: Decide, lead: LeadView, recorded: set[tuple[str, int]], pick: Picker, now: datetime
) -> Change | None:
    try:
        return decide(lead, recorded, pick)
    except Exception:  # one broken lead must not hold up the others
        log.exception("the sweep could not decide lead %d; retrying it later", lead.id)
        return Change(next_action_at=now + RETRY_BROKEN)


def _decide_locked(
    db: Connection, ids: list[int], rotation: _Rotation, now: datetime, decide: Decide
) -> list[tuple[LeadView, Change]]:
    """Decide again, under their locks, the leads that changed since they were read."""
    if not ids:
        return []
    rows = db.execute(select(*_VIEW).where(_ids_in(db, LeadRow.id)), {"p_ids": ids}).mappings()
    found = {view.id: view for row in rows if (view := lead_view(row))}
    leads = [found[lead_id] for lead_id in ids if lead_id in found]  # in the page's order
    recorded = _recorded(db, leads)
    pick = _picker(rotation.take)
    decided = [(lead, _decided(decide, lead, recorded[lead.id], pick, now)) for lead in leads]
    return [(lead, change) for lead, change in decided if change is not None]


# What deciding reads of a lead (a LeadView), and all that tells whether it changed: not the
# intake payload and report facts, which can be large and no rule reads.
_VIEW = [LEADS.c[name] for name in LeadView.__dataclass_fields__]


def _ids_in(db: Connection, column: Any) -> Any:
    """`column` among the ids bound as `p_ids`: PostgreSQL binds them as one array, not one
    parameter each."""
    if db.dialect.name == "postgresql":
        return column == any_(bindparam("p_ids", type_=postgresql.ARRAY(BigInteger)))
    return column.in_(bindparam("p_ids", expanding=True))


def due_page(db: Connection) -> Any:
    return (
        select(*_VIEW, *_version(db))
        .where(*_DUE_NOW)
        .order_by(LeadRow.next_action_at, LeadRow.id)
        .limit(bindparam("p_limit"))
    )


def _lock(db: Connection) -> Any:
    """The leads among `p_ids` still due at `p_now`, locked (PostgreSQL: those another sweep
    has not locked first)."""
    where = (_ids_in(db, LeadRow.id), LeadRow.next_action_at <= bindparam("p_now"))
    if db.dialect.name == "postgresql":
        statement = select(LeadRow.id, *_version(db)).where(*where)
        return statement.with_for_update(skip_locked=True, of=LeadRow)
    return select(*_VIEW).where(*where)  # SQLite: the transaction holds the write lock


def _version(db: Connection) -> list[Any]:
    """PostgreSQL's row version: `xmin`, the transaction that wrote the row's current version
    (every update makes a new one)."""
    if db.dialect.name == "postgresql":
        return [literal_column("leads.xmin").label("row_version")]
    return []


def _mark(db: Connection, row: RowMapping) -> Any:
    """What tells whether a lead changed since it was read: its row version on PostgreSQL; on
    SQLite (one process, a local read) the row itself."""
    if db.dialect.name == "postgresql":
        return row["row_version"]
    return tuple(row[column.name] for column in _VIEW)


def _recorded(db: Connection, leads: list[LeadView]) -> dict[int, set[tuple[str, int]]]:
    """The steps recorded (fired or skipped) in each lead's current cycle."""
    recorded: dict[int, set[tuple[str, int]]] = {lead.id: set() for lead in leads}
    if not leads:
        return recorded
    cycles = {lead.id: lead.cycle for lead in leads}
    rows = db.execute(_recorded_steps(db), {"p_ids": list(cycles)})
    for lead_id, cycle, ladder, step in rows:
        if cycles.get(lead_id) == cycle:
            recorded[lead_id].add((str(ladder), int(step)))
    return recorded


def _recorded_steps(db: Connection) -> Any:
    return select(*_STEPS).where(_ids_in(db, EscalationRow.lead_id))


def _picker(take: Callable[[str], int]) -> Picker:
    """The round robin's next rep of a pool, skipping `avoid`; `take` advances a segment."""

    def pick(segment: str, pool: list[str], avoid: set[str]) -> str | None:
        candidates = [rep for rep in pool if rep not in avoid]
        if not candidates:
            return None
        for _ in range(len(pool)):
            rep = pool[take(segment) % len(pool)]
            if rep not in avoid:
                return rep
        return candidates[0]

    return pick


class _Plan:
    """The round robin as read, advanced in memory by the decisions made before the lock."""

    def __init__(self, positions: dict[str, int]) -> None:
        self.read = positions
        self.start: dict[str, int] = {}  # the segments used, where they stood
        self.positions: dict[str, int] = {}  # and where the picks left them
        self.pickers: set[int] = set()  # leads whose decision picked a rep

    def picker(self, lead_id: int) -> Picker:
        def take(segment: str) -> int:
            self.pickers.add(lead_id)
            if segment not in self.positions:
                self.start[segment] = self.positions[segment] = self.read.get(segment, 0)
            position = self.positions[segment]
            self.positions[segment] = position + 1
            return position

        return _picker(take)


class SweepConflict(Exception):
    """Another sweep recorded a step of this batch first (it writes the effects)."""


class _Rotation:
    """The round robin of the segments a batch reassigns: each segment's row is read (and
    locked until the transaction ends) once, advanced in memory, and written back once."""

    def __init__(self, db: Connection) -> None:
        self.db = db
        self.positions: dict[str, int] = {}
        self.start: dict[str, int] = {}

    def hold(self, segment: str) -> int:
        """The segment's position, its row locked (and created if new)."""
        if segment not in self.start:
            held = self.db.execute(_hold_rotation(self.db), {"p_segment": segment}).scalar_one()
            self.positions[segment] = self.start[segment] = int(held)
        return self.start[segment]

    def take(self, segment: str) -> int:
        self.hold(segment)
        position = self.positions[segment]
        self.positions[segment] = position + 1
        return position

    def save(self) -> None:
        moved = [
            {"p_segment": segment, "p_position": position}
            for segment, position in self.positions.items()
            if position != self.start[segment]
        ]
        if moved:
            self.db.execute(_SAVE_ROTATION, moved)


def _hold_rotation(db: Connection) -> Any:
    """The segment's position, its row created if new and locked (PostgreSQL: the row lock;
    SQLite: the write lock) until the transaction ends: one statement."""
    statement = upsert_insert(db)(table(RoundRobin)).values(
        segment=bindparam("p_segment"), position=0
    )
    return statement.on_conflict_do_update(
        index_elements=[RoundRobin.segment], set_={"position": RoundRobin.position}
    ).returning(RoundRobin.position)


_SAVE_ROTATION = (
    update(table(RoundRobin))
    .where(RoundRobin.segment == bindparam("p_segment"))
    .values(position=bindparam("p_position"))
)


def _apply(db: Connection, changes: list[tuple[LeadView, Change]], now: datetime) -> None:
    """Record every step of the batch (once), then their effects, one statement per kind."""
    steps = [
        {
            "lead_id": lead.id,
            "cycle": lead.cycle,
            "ladder": ladder,
            "step": step,
            "action": action,
            "status": status,
            "at": now,
        }
        for lead, change in changes
        for status, taken in (
            ("fired", change.fired),
            ("skipped", change.skipped),
            ("noted", change.noted),
        )
        for ladder, step, action in taken
    ]
    if steps:
        inserted = _record_steps(db, steps)
        if len(inserted) != len(steps):
            raise SweepConflict  # a concurrent sweep recorded some: undo this batch
    _update_leads(db, changes)
    events = [
        {"lead_id": lead.id, "type": kind, "actor": "handoff", "at": now, "data": data}
        for lead, change in changes
        for kind, data in change.events
    ]
    if events:
        insert_events(db, events)
    # After the leads' new columns: App Homes follow the leads' owners as they are now.
    write_effects(db, [effect for _, change in changes for effect in change.effects], now)


_STEP_COLUMNS = ("lead_id", "cycle", "ladder", "step", "action", "status", "at")
_ESCALATIONS = EscalationRow.__table__
# PostgreSQL: the batch's steps as one array per column, unnested: one statement with seven
# parameters whatever the batch size (a VALUES list binds 7 per row and costs ~4x as much).
_STEP_ARRAYS = (
    func.unnest(
        *[
            bindparam(f"p_{name}", type_=postgresql.ARRAY(_ESCALATIONS.c[name].type))
            for name in _STEP_COLUMNS
        ]
    )
    .table_valued(*_STEP_COLUMNS)
    .render_derived()
)
_RECORD_STEPS_PG = (
    postgresql_insert(table(EscalationRow))
    .from_select(list(_STEP_COLUMNS), select(*[_STEP_ARRAYS.c[name] for name in _STEP_COLUMNS]))
    .on_conflict_do_nothing()
    .returning(EscalationRow.id)
)
_RECORD_STEPS = (
    sqlite_insert(table(EscalationRow)).on_conflict_do_nothing().returning(EscalationRow.id)
)


def _record_steps(db: Connection, steps: list[dict[str, Any]]) -> list[Any]:
    """Insert the steps not recorded yet; the ids of those inserted."""
    if db.dialect.name == "postgresql":
        columns = {f"p_{name}": [step[name] for step in steps] for name in _STEP_COLUMNS}
        return list(db.execute(_RECORD_STEPS_PG, columns).all())
    return list(db.execute(_RECORD_STEPS, steps).all())


def _update_leads(db: Connection, changes: list[tuple[LeadView, Change]]) -> None:
    """Each lead's new columns: one executemany per set of columns changed."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for lead, change in changes:
        values = {"next_action_at": change.next_action_at, **change.values}
        columns = tuple(sorted(values))
        groups.setdefault(columns, []).append(
            {"p_id": lead.id, **{f"p_{name}": value for name, value in values.items()}}
        )
    for columns, rows in groups.items():
        statement = (
            update(table(LeadRow))
            .where(LeadRow.id == bindparam("p_id"))
            .values({name: bindparam(f"p_{name}") for name in columns})
        )
        db.execute(statement, rows)
