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
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Connection,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping

from bot.domain.effects import Effect
from bot.domain.lead import LeadView
from bot.domain.rotation import RepLoad
from bot.domain.routing import AccountLead
from storage.crm import insert_events
from storage.cycles import keep_ended
from storage.db import Database
from storage.outbox import write_effects
from storage.repository import LEADS, lead_view
from storage.rotation import (
    HeldRotations,
    Kept,
    RotationAsk,
    RotationRead,
    Suggestion,
    account_lead,
    read_rotations,
)
from storage.tables import OPEN_MQL, OPEN_SAL, EscalationRow, LeadRow, RoundRobin, table

log = logging.getLogger("handoff.sweep")
RETRY_BROKEN = timedelta(minutes=15)
_DUE_NOW = (LeadRow.next_action_at <= bindparam("p_now"),)
_STEPS = (EscalationRow.lead_id, EscalationRow.cycle, EscalationRow.ladder, EscalationRow.step)


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


class Picker(Protocol):
    """The pools' weighted rotations, as the service's decision for one locked lead uses them,
    in the sweep's transaction."""

    def take(self, ask: RotationAsk) -> Suggestion:
        """A turn (`storage.rotation.take`): caps, time away and the rep the lead is taken
        from skipped; the fallback owner, and why, when nobody is available."""
        ...

    def uncount(self, segment: str, rep: str, day: str, week: str) -> None:
        """A lead the rotation counted to `rep` leaves them (`storage.rotation.uncount`)."""
        ...

    def account_lead(self, domain: str, since: datetime, exclude: int) -> AccountLead | None:
        """The account's owned lead other than `exclude` (`storage.rotation.account_lead`)."""
        ...


class _InTransaction:
    """The rotations under the sweep's lock, in its transaction: each segment held and read
    once, turned in memory, written back once before the batch's changes (`save`)."""

    def __init__(self, db: Connection, rotations: HeldRotations) -> None:
        self.db = db
        self.rotations = rotations

    def take(self, ask: RotationAsk) -> Suggestion:
        return self.rotations.take(ask)

    def uncount(self, segment: str, rep: str, day: str, week: str) -> None:
        self.rotations.uncount(segment, rep, day, week)

    def save(self) -> None:
        self.rotations.save()

    def account_lead(self, domain: str, since: datetime, exclude: int) -> AccountLead | None:
        return account_lead(self.db, domain, since, exclude)


Decide = Callable[[LeadView, set[tuple[str, int]], Picker], Change | None]
# What the managers hear of a hand-on, in its transaction: the leads handed on (with their
# changes) and those left where they were.
Summarise = Callable[[list[tuple[LeadView, Change]], list[LeadView]], list[Effect]]


@dataclass
class DuePage:
    """Leads due at `now`, read without locks, with what deciding them needs."""

    leads: list[LeadView]
    recorded: dict[int, set[tuple[str, int]]]  # (ladder, step) of each lead's cycle so far
    marks: dict[int, Any]  # each lead's row version as read (see `_mark`)
    full: bool  # as many as asked for: there may be more
    # The rotations of the leads' segments as read: the turns are planned on them.
    rotations: RotationRead = field(default_factory=lambda: RotationRead(frozenset(), {}, {}))


class SweepStore:
    """The sweep decides outside the transaction that locks its leads, so the locks (which a
    claim on the same lead waits for on PostgreSQL) last only as long as the writes: read the
    due page with its segments' rotations, decide (a reassignment's or new cycle's turn taken
    in memory on the rotation as read), then lock the leads still due and apply the decisions
    of those whose row is as it was read and whose segment's rotation reads as it was planned
    on. The others are decided again under the lock (so is a turn the plan cannot take: an
    open-leads cap, an account look-up). The outcome is the same as deciding everything under
    the lock."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def due(self, now: datetime, limit: int) -> DuePage:
        """The leads due for a look, most overdue first (at most `limit`)."""

        def read(db: Connection) -> DuePage:
            rows = db.execute(due_page(db), {"p_now": now, "p_limit": limit}).mappings().all()
            leads = [view for row in rows if (view := lead_view(row))]
            return DuePage(
                leads=leads,
                recorded=_recorded(db, leads),
                marks={int(row["id"]): _mark(db, row) for row in rows},
                full=len(rows) == limit,
                rotations=read_rotations(db, {lead.segment for lead in leads}),
            )

        return await self.db.run(read)

    async def apply(self, page: DuePage, now: datetime, decide: Decide) -> list[int]:
        """Decide each lead of `page`, then lock those still due and apply; the ids escalated."""
        changes: dict[int, Change | None] = {}
        turns: set[int] = set()  # leads whose decision must take its rotation's turn locked
        planned = _Planned(page.rotations)
        for lead in page.leads:
            try:
                changes[lead.id] = planned.decide(decide, lead, page.recorded[lead.id], now)
            except _Deferred:
                turns.add(lead.id)
        if not page.leads:
            return []

        def work(db: Connection) -> list[int]:
            params = {"p_ids": [lead.id for lead in page.leads], "p_now": now}
            locked = db.execute(_lock(db), params).mappings().all()
            marks = {int(row["id"]): _mark(db, row) for row in locked}
            same = {i for i, mark in marks.items() if mark == page.marks[i]}
            deferred = {lead.segment for lead in page.leads if lead.id in turns}
            _hold_segments(db, deferred | set(planned.held))
            rotations = HeldRotations(db)
            # A segment's planned turns stand if every lead that took one is applied as decided
            # and the segment reads as planned on; else those leads are decided again, locked.
            replan: set[int] = set()
            for segment in sorted(planned.held):
                users = planned.users.get(segment, set())
                if not (users <= same and rotations.adopt(planned.held[segment])):
                    replan |= users
            keep: list[tuple[LeadView, Change]] = []
            again: list[int] = []
            for lead in page.leads:
                if lead.id not in marks:
                    continue  # another sweep has it, or it is not due any more
                if lead.id in turns or lead.id in replan or lead.id not in same:
                    again.append(lead.id)
                elif (change := changes[lead.id]) is not None:
                    keep.append((lead, change))
            keep += _decide_locked(db, again, now, decide, rotations)
            rotations.save()
            _apply(db, keep, now)
            return [lead.id for lead, change in keep if change.acted]

        try:
            return await self.db.run(work)
        except SweepConflict:
            return []  # rolled back; the next sweep reads the state the other one left

    async def held_versions(self, rep: str) -> set[str]:
        """The SLA versions of the open leads `rep` holds (read without locks: what deciding
        them needs loaded before `hand_on`)."""

        def read(db: Connection) -> set[str]:
            return {lead.sla_version for lead in _held_by(db, rep, lock=False)}

        return await self.db.run(read)

    async def hand_on(
        self, rep: str, now: datetime, decide: Decide, summarise: Summarise
    ) -> list[int]:
        """Decide, under their locks, every open lead `rep` holds (owned, or suggested and
        unclaimed) and apply the changes with the effects `summarise` adds (also when there is
        none: `summarise([], [])`), in one transaction;
        the ids of the leads changed. Exactly once: a concurrent hand-on of the same rep waits
        for the locks and then no longer finds the leads this one moved (PostgreSQL reads a
        locked row again as its holder left it); on SQLite one writer runs at a time."""

        def work(db: Connection) -> list[int]:
            leads = _held_by(db, rep)
            if not leads:  # nothing to hand on: what `summarise` says of that still goes
                write_effects(db, summarise([], []), now)
                return []
            _hold_segments(db, {lead.segment for lead in leads})
            rotations = HeldRotations(db)
            pick = _InTransaction(db, rotations)
            recorded = _recorded(db, leads)
            handed: list[tuple[LeadView, Change]] = []
            left: list[LeadView] = []
            for lead in leads:
                kept = rotations.kept()
                try:
                    change = decide(lead, recorded[lead.id], pick)
                except Exception:  # one broken lead must not hold up the others: it stays
                    log.exception("could not hand on lead %d; it stays where it is", lead.id)
                    change = None
                if change is None:  # it stays: no turn of the rotation for it
                    rotations.restore(kept)
                    left.append(lead)
                else:
                    handed.append((lead, change))
            rotations.save()
            _apply(db, handed, now)
            write_effects(db, summarise(handed, left), now)
            return [lead.id for lead, _ in handed]

        return await self.db.run(work)


def _decided(
    decide: Decide,
    lead: LeadView,
    recorded: set[tuple[str, int]],
    pick: Picker,
    rotations: HeldRotations,
    now: datetime,
) -> Change | None:
    """`decide` for one lead, `pick` taking its turns on `rotations`. A decision that fails
    (it is tried again later) or changes nothing leaves no turn behind: the batch saves only
    the turns of the leads whose change it writes, so no rep is counted a lead that never
    moved to them."""
    kept = rotations.kept()
    try:
        change = decide(lead, recorded, pick)
    except _Deferred:
        rotations.restore(kept)
        raise
    except Exception:  # one broken lead must not hold up the others
        log.exception("the sweep could not decide lead %d; retrying it later", lead.id)
        rotations.restore(kept)
        return Change(next_action_at=now + RETRY_BROKEN)
    if change is None:
        rotations.restore(kept)
    return change


def _decide_locked(
    db: Connection, ids: list[int], now: datetime, decide: Decide, rotations: HeldRotations
) -> list[tuple[LeadView, Change]]:
    """Decide, under their locks, the leads that changed since they were read and those whose
    decision takes a turn of a rotation (taken here, in this transaction)."""
    if not ids:
        return []
    rows = db.execute(select(*_VIEW).where(_ids_in(db, LeadRow.id)), {"p_ids": ids}).mappings()
    found = {view.id: view for row in rows if (view := lead_view(row))}
    leads = [found[lead_id] for lead_id in ids if lead_id in found]  # in the page's order
    recorded = _recorded(db, leads)
    pick = _InTransaction(db, rotations)
    decided = [
        (lead, _decided(decide, lead, recorded[lead.id], pick, rotations, now)) for lead in leads
    ]
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


def _held_by(db: Connection, rep: str, lock: bool = True) -> list[LeadView]:
    """The open leads `rep` holds, by id, locked: those they own (claimed) and those suggested
    to them that nobody claimed. Each query repeats a partial index's predicate word for word
    (`ix_leads_owner_open`, `ix_leads_suggested_open`), so it reads only the rep's leads."""
    kept = LeadRow.erased_at.is_(None)
    owned = (text(OPEN_SAL), LeadRow.owner == rep, kept)
    suggested = (text(OPEN_MQL), LeadRow.suggested_owner == rep, LeadRow.owner.is_(None), kept)
    found: dict[int, LeadView] = {}
    for where in (owned, suggested):
        statement = select(*_VIEW).where(*where).order_by(LeadRow.id)
        if lock and db.dialect.name == "postgresql":
            statement = statement.with_for_update(of=LeadRow)
        for row in db.execute(statement).mappings():
            if (view := lead_view(row)) is not None:
                found[view.id] = view
    return [found[lead_id] for lead_id in sorted(found)]


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


class SweepConflict(Exception):
    """Another sweep recorded a step of this batch first (it writes the effects)."""


class _Deferred(Exception):
    """Raised by the rotations offered before the lock: this lead's decision uses a pool's
    rotation, so it is made under the lock, where the turn is taken and stored."""


class _Planned(HeldRotations):
    """The rotations before the lock, as read with the due page: turns of a segment read
    there, without a cap on open leads, are taken in memory and kept if the segment reads the
    same under the lock; any other use (an open-leads cap, a segment not read, an account
    look-up) defers the lead's decision to the lock."""

    def __init__(self, read: RotationRead) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # never touches the database
        self.read = read
        self.users: dict[str, set[int]] = {}  # each segment's planned turns, by lead
        self.lead = 0

    def _read(self, ask: RotationAsk, with_open: bool) -> tuple[float, dict[str, RepLoad]]:
        if with_open or ask.segment not in self.read.segments:
            raise _Deferred
        return self.read.clocks.get(ask.segment, 0.0), self.read.loads(
            ask.segment, ask.day, ask.week
        )

    def take(self, ask: RotationAsk) -> Suggestion:
        if ask.rules.cap_open is not None:
            raise _Deferred
        suggestion = super().take(ask)
        self.users.setdefault(ask.segment, set()).add(self.lead)
        return suggestion

    def uncount(self, segment: str, rep: str, day: str, week: str) -> None:
        if segment not in self.held:  # held: in memory, whatever periods it was counted in
            raise _Deferred
        super().uncount(segment, rep, day, week)
        self.users.setdefault(segment, set()).add(self.lead)

    def account_lead(self, domain: str, since: datetime, exclude: int) -> AccountLead | None:
        raise _Deferred

    def restore(self, kept: Kept) -> None:
        super().restore(kept)
        for leads in self.users.values():  # the lead being decided took none of the turns
            leads.discard(self.lead)

    def decide(
        self, decide: Decide, lead: LeadView, recorded: set[tuple[str, int]], now: datetime
    ) -> Change | None:
        """Decide `lead` on the plan; `_Deferred` (the plan as it was) if it must wait."""
        self.lead = lead.id
        return _decided(decide, lead, recorded, self, self, now)


_HOLD_SEGMENTS = (
    select(RoundRobin.segment)
    .where(RoundRobin.segment.in_(bindparam("p_segments", expanding=True)))
    .order_by(RoundRobin.segment)
    .with_for_update()
)


def _hold_segments(db: Connection, segments: set[str]) -> None:
    """Lock the rotations a batch's turns use, in the order of their names, before any turn:
    two sweeps whose batches share segments then wait for each other instead of deadlocking
    (PostgreSQL; SQLite's one writer holds them all already). A segment whose rotation has
    no row yet is created by its first turn."""
    if segments and db.dialect.name == "postgresql":
        db.execute(_HOLD_SEGMENTS, {"p_segments": sorted(segments)})


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
    ending = [lead.id for lead, change in changes if "cycle" in change.values]
    if ending:  # the cycles that end, kept as they stand before their next one begins
        keep_ended(db, LeadRow.id.in_(ending))
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
