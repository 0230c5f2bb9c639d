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

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.domain.lead import LeadView
from storage.db import Database
from storage.outbox import Kind, enqueue, enqueue_update
from storage.repository import LEADS, _rotate, _view
from storage.tables import EscalationRow, EventRow, LeadRow

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

            def pick(segment: str, pool: list[str], avoid: set[str]) -> str | None:
                candidates = [rep for rep in pool if rep not in avoid]
                if not candidates:
                    return None
                for _ in range(len(pool)):
                    rep = pool[_rotate(db, segment) % len(pool)]
                    if rep not in avoid:
                        return rep
                return candidates[0]

            changed: list[int] = []
            for lead in leads:
                try:
                    change = decide(lead, recorded[lead.id], pick)
                except Exception:  # one broken lead must not hold up the others
                    log.exception("the sweep could not decide lead %d; retrying it later", lead.id)
                    change = Change(next_action_at=now + RETRY_BROKEN)
                if change is not None and _apply(db, lead, change, now):
                    changed.append(lead.id)
            return changed

        try:
            return await self.db.run(work)
        except SweepConflict:
            return []  # rolled back; the next sweep reads the state the other one left


def _insert(db: Connection) -> Any:
    return postgresql_insert if db.dialect.name == "postgresql" else sqlite_insert


class SweepConflict(Exception):
    """Another sweep recorded a step of this batch first (it writes the effects)."""


def _apply(db: Connection, lead: LeadView, change: Change, now: datetime) -> bool:
    """Record the steps (once), then their effects; True if a step fired or a cycle began."""
    rows = [
        {
            "lead_id": lead.id,
            "cycle": lead.cycle,
            "ladder": ladder,
            "step": step,
            "action": action,
            "status": status,
            "at": now,
        }
        for status, steps in (("fired", change.fired), ("skipped", change.skipped))
        for ladder, step, action in steps
    ]
    if rows:
        inserted = db.execute(
            _insert(db)(EscalationRow)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(EscalationRow.id)
        ).all()
        if len(inserted) != len(rows):
            raise SweepConflict  # a concurrent sweep recorded them: undo this batch
    values = {"next_action_at": change.next_action_at, **change.values}
    db.execute(update(LeadRow).where(LeadRow.id == lead.id).values(**values))
    events = [
        {"lead_id": lead.id, "type": kind, "actor": "handoff", "at": now, "data": data}
        for kind, data in change.events
    ]
    if events:
        db.execute(insert(EventRow), events)
    for index, message in enumerate(change.messages):
        payload: dict[str, Any] = {"text": message.text}
        if message.blocks:
            payload["blocks"] = message.blocks
        if message.thread_ts:
            payload["thread_ts"] = message.thread_ts
        key = f"sweep:{lead.id}:{lead.cycle}:{now.isoformat()}:{index}"
        enqueue(db, Kind.MESSAGE, message.channel, now, lead_id=lead.id, key=key, payload=payload)
    if change.repost:
        cycle = int(change.values.get("cycle", lead.cycle))
        key = f"{Kind.POST_LEAD}:{lead.id}:{cycle}"
        enqueue(
            db,
            Kind.POST_LEAD,
            lead.channel,
            now,
            lead_id=lead.id,
            key=key,
            payload={"cycle": cycle},
        )
    elif change.refresh:
        enqueue_update(db, lead.id, now)
    return bool(change.fired or change.repost)
