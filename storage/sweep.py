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

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.domain.lead import LeadView
from storage.db import Database, upsert_insert
from storage.outbox import Kind, enqueue_homes, enqueue_updates, outbox_row
from storage.repository import LEADS, _view
from storage.tables import EscalationRow, EventRow, LeadRow, OutboxRow, RoundRobin, table

log = logging.getLogger("handoff.sweep")
RETRY_BROKEN = timedelta(minutes=15)
_DUE = (
    select(LeadRow.id, LeadRow.sla_version)
    .where(LeadRow.next_action_at <= bindparam("p_now"))
    .order_by(LeadRow.next_action_at)
    .limit(bindparam("p_limit"))
)
_RECORDED = select(EscalationRow.lead_id, EscalationRow.ladder, EscalationRow.step).where(
    EscalationRow.lead_id.in_(bindparam("p_ids", expanding=True)),
)


@dataclass
class Message:
    """A Slack message a step sends (through the outbox)."""

    channel: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None


@dataclass
class Change:
    """What the sweep does to one lead (decided by the service, applied here)."""

    next_action_at: datetime | None
    fired: list[tuple[str, int, str]] = field(default_factory=list)  # ladder, step, action
    skipped: list[tuple[str, int, str]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # type, data
    values: dict[str, Any] = field(default_factory=dict)  # lead columns to set
    refresh: bool = False  # re-render the lead's message
    repost: bool = False  # a new cycle: post the lead again


# The service's decision for one locked lead: it may pick a rep (round robin) while deciding.
Picker = Callable[[str, list[str], set[str]], str | None]
Decide = Callable[[LeadView, set[tuple[str, int]], Picker], Change | None]


class SweepStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def due(self, now: datetime, limit: int) -> list[tuple[int, str]]:
        """(lead id, SLA version) of the leads due for a look, most overdue first."""
        params = {"p_now": now, "p_limit": limit}
        return await self.db.run(
            lambda db: [(int(r[0]), str(r[1])) for r in db.execute(_DUE, params)]
        )

    async def apply(self, ids: list[int], now: datetime, decide: Decide) -> list[int]:
        """Lock the leads still due among `ids`, decide each, apply; the ids escalated."""

        def work(db: Connection) -> list[int]:
            statement = select(LEADS).where(LeadRow.id.in_(ids), LeadRow.next_action_at <= now)
            if db.dialect.name == "postgresql":
                statement = statement.with_for_update(skip_locked=True, of=LeadRow)
            leads = [view for row in db.execute(statement).mappings() if (view := _view(row))]
            if not leads:
                return []
            recorded: dict[int, set[tuple[str, int]]] = {lead.id: set() for lead in leads}
            cycles = {lead.id: lead.cycle for lead in leads}
            rows = db.execute(
                select(
                    EscalationRow.lead_id,
                    EscalationRow.cycle,
                    EscalationRow.ladder,
                    EscalationRow.step,
                ).where(EscalationRow.lead_id.in_([lead.id for lead in leads]))
            )
            for lead_id, cycle, ladder, step in rows:
                if cycles.get(lead_id) == cycle:
                    recorded[lead_id].add((str(ladder), int(step)))

            rotation = _Rotation(db)

            def pick(segment: str, pool: list[str], avoid: set[str]) -> str | None:
                candidates = [rep for rep in pool if rep not in avoid]
                if not candidates:
                    return None
                for _ in range(len(pool)):
                    rep = pool[rotation.take(segment) % len(pool)]
                    if rep not in avoid:
                        return rep
                return candidates[0]

            changes: list[tuple[LeadView, Change]] = []
            for lead in leads:
                try:
                    change = decide(lead, recorded[lead.id], pick)
                except Exception:  # one broken lead must not hold up the others
                    log.exception("the sweep could not decide lead %d; retrying it later", lead.id)
                    change = Change(next_action_at=now + RETRY_BROKEN)
                if change is not None:
                    changes.append((lead, change))
            rotation.save()
            _apply(db, changes, now)
            return [lead.id for lead, change in changes if change.fired or change.repost]

        try:
            return await self.db.run(work)
        except SweepConflict:
            return []  # rolled back; the next sweep reads the state the other one left


class SweepConflict(Exception):
    """Another sweep recorded a step of this batch first (it writes the effects)."""


class _Rotation:
    """The round robin of the segments a batch reassigns: each segment's row is read (and
    locked until the transaction ends) once, advanced in memory, and written back once."""

    def __init__(self, db: Connection) -> None:
        self.db = db
        self.positions: dict[str, int] = {}
        self.start: dict[str, int] = {}

    def take(self, segment: str) -> int:
        if segment not in self.positions:
            held = self.db.execute(_hold_rotation(self.db), {"p_segment": segment}).scalar_one()
            self.positions[segment] = self.start[segment] = int(held)
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
        for status, taken in (("fired", change.fired), ("skipped", change.skipped))
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
        db.execute(insert(table(EventRow)), events)
    effects = [row for lead, change in changes for row in _effects(lead, change, now)]
    if effects:
        db.execute(upsert_insert(db)(table(OutboxRow)).on_conflict_do_nothing(), effects)
    refreshes = [lead.id for lead, change in changes if change.refresh and not change.repost]
    if refreshes:
        enqueue_updates(db, refreshes, now)
    # App Homes: the people of each lead that changed, and the reps reassignments took one from.
    taken_from = [
        lead.owner or lead.suggested_owner
        for lead, change in changes
        if any(kind == "reassigned" for kind, _ in change.events)
    ]
    changed = [lead.id for lead, change in changes if change.refresh or change.repost]
    enqueue_homes(db, now, users=taken_from, lead_ids=changed)


def _effects(lead: LeadView, change: Change, now: datetime) -> list[dict[str, Any]]:
    """The outbox rows of one lead's change: its messages, and its new post for a new cycle."""
    rows = [
        outbox_row(
            Kind.MESSAGE,
            message.channel,
            now,
            lead_id=lead.id,
            key=f"sweep:{lead.id}:{lead.cycle}:{now.isoformat()}:{index}",
            payload=_payload(message),
        )
        for index, message in enumerate(change.messages)
    ]
    if change.repost:
        cycle = int(change.values.get("cycle", lead.cycle))
        key = f"{Kind.POST_LEAD}:{lead.id}:{cycle}"
        payload = {"cycle": cycle}
        rows.append(
            outbox_row(Kind.POST_LEAD, lead.channel, now, lead_id=lead.id, key=key, payload=payload)
        )
    return rows


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


def _payload(message: Message) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": message.text}
    if message.blocks:
        payload["blocks"] = message.blocks
    if message.thread_ts:
        payload["thread_ts"] = message.thread_ts
    return payload


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
