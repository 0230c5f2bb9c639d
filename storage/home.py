"""App Home's queries: who has opened it, a rep's queue, the overdue leads, and home requests.

Every lead query reads open leads through a partial index that holds only them (see
`storage/tables.py`), and repeats the index's predicate word for word so that SQLite and
PostgreSQL can use it: a home costs what its person has open, the overdue list what is overdue
(a range of each deadline's index, bounded). An erased lead is in none of them: it is nobody's
to work any more (`handoff forget`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, or_, select, text, update

from bot.domain.effects import Effect
from bot.domain.lead import LeadView
from bot.domain.rotation import RepLoad
from storage.db import Database, upsert_insert
from storage.outbox import Kind, enqueue, write_effects
from storage.repository import LEADS, lead_views
from storage.rotation import read_standing
from storage.tables import (
    HOME_PENDING,
    OPEN,
    OPEN_MQL,
    OPEN_SAL,
    UNTOUCHED,
    HomeOpener,
    LeadRow,
    OutboxRow,
    Person,
    table,
)

_USER: Any = bindparam("p_user")
_LIMIT: Any = bindparam("p_limit")
# An owned lead's nearest deadline: first touch while there is none, else the first feedback
# while there is none, else the final disposition.
_FEEDBACK_DUE = case(
    (LeadRow.feedback_at.is_(None), LeadRow.disposition_due_at), else_=LeadRow.final_due_at
)
_NEAREST_DUE = case(
    (
        and_(
            LeadRow.first_touch_at.is_(None),
            LeadRow.first_touch_due_at < _FEEDBACK_DUE,
        ),
        LeadRow.first_touch_due_at,
    ),
    else_=_FEEDBACK_DUE,
)


@dataclass(frozen=True)
class _Queries:
    owned: Any
    suggested: Any
    owned_count: Any
    suggested_count: Any
    overdue: tuple[Any, ...]  # unclaimed, untouched, no feedback, no outcome: most overdue first


@cache
def _queries(sqlite: bool) -> _Queries:
    def stage(predicate: str) -> Any:
        # SQLite has no table statistics unless ANALYZE ran: its planner then takes `stage = …`
        # for a rare value and reads every open lead of the stage through ix_leads_stage. Said
        # to hold for most rows, it reads the partial index of the person or the deadline.
        return text(f"likelihood({predicate}, 0.9)" if sqlite else predicate)

    kept = LeadRow.erased_at.is_(None)

    def past(column: Any, *where: Any) -> Any:
        return (
            select(LEADS)
            .where(*where, column <= bindparam("p_now"), kept)
            .order_by(column, LeadRow.id)
            .limit(_LIMIT)
        )

    owned = (stage(OPEN_SAL), LeadRow.owner == _USER, kept)
    suggested = (stage(OPEN_MQL), LeadRow.suggested_owner == _USER, LeadRow.owner.is_(None), kept)
    return _Queries(
        owned=select(LEADS).where(*owned).order_by(_NEAREST_DUE, LeadRow.id).limit(_LIMIT),
        suggested=(
            select(LEADS)
            .where(*suggested)
            .order_by(LeadRow.claim_due_at.is_(None), LeadRow.claim_due_at, LeadRow.id)
            .limit(_LIMIT)
        ),
        owned_count=select(func.count()).select_from(LEADS).where(*owned),
        suggested_count=select(func.count()).select_from(LEADS).where(*suggested),
        overdue=(
            past(LeadRow.claim_due_at, stage(OPEN_MQL)),
            past(LeadRow.first_touch_due_at, stage(OPEN), text(UNTOUCHED)),
            past(LeadRow.disposition_due_at, stage(OPEN_SAL), LeadRow.feedback_at.is_(None)),
            past(LeadRow.final_due_at, stage(OPEN_SAL)),
        ),
    )


def _for(db: Connection) -> _Queries:
    return _queries(db.dialect.name == "sqlite")


@dataclass(frozen=True)
class RepLeads:
    """A rep's open leads, nearest deadline first, and how many there are in all."""

    owned: list[LeadView]  # claimed by them, not dispositioned (SAL)
    suggested: list[LeadView]  # MQLs suggested to them that nobody has claimed
    owned_total: int
    suggested_total: int


class HomeStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def opened(self, user: str, now: datetime, effects: Sequence[Effect] = ()) -> None:
        """Remember that `user` opened App Home, with `effects` (its publication)."""

        def work(db: Connection) -> None:
            _remember(db, user, now)
            write_effects(db, effects, now)

        await self.db.run(work)

    async def rotation_standing(
        self, segment: str, reps: Sequence[str], day: str, week: str
    ) -> tuple[float, dict[str, RepLoad]]:
        """The segment's rotation as stored (a rep's own share in App Home)."""
        return await self.db.run(lambda db: read_standing(db, segment, day, week, reps))

    async def notice(self, user: str, notice: str, now: datetime) -> None:
        """Publish `user`'s App Home again with `notice` on top (the private answer to a press
        in it): the request waiting for that home takes the notice, else a new one does."""
        payload = {"notice": notice}
        waiting = (
            update(table(OutboxRow))
            .where(OutboxRow.channel == user, text(HOME_PENDING), OutboxRow.unknown.is_(False))
            .values(payload=payload)
        )

        def work(db: Connection) -> None:
            _remember(db, user, now)
            if db.execute(waiting).rowcount == 0:
                enqueue(db, Kind.HOME, user, now, payload=payload)

        await self.db.run(work)

    async def gone(self, user: str) -> bool:
        """Whether Slack last described `user` as a guest or deactivated (on any replica: the
        database has it as soon as its `user_change` is saved)."""
        statement = select(Person.user_id).where(
            Person.user_id == user, or_(Person.guest.is_(True), Person.deactivated.is_(True))
        )
        return await self.db.run(lambda db: db.execute(statement).first() is not None)

    async def openers(self) -> list[str]:
        """Everyone who has opened App Home."""
        statement = select(HomeOpener.user_id).order_by(HomeOpener.user_id)
        return await self.db.run(lambda db: [str(user) for user in db.execute(statement).scalars()])

    async def rep_leads(self, user: str, limit: int) -> RepLeads:
        """Up to `limit` of each: the leads `user` owns, and the MQLs suggested to them."""
        params = {"p_user": user, "p_limit": limit}

        def work(db: Connection) -> RepLeads:
            queries = _for(db)
            return RepLeads(
                owned=lead_views(db.execute(queries.owned, params)),
                suggested=lead_views(db.execute(queries.suggested, params)),
                owned_total=int(db.execute(queries.owned_count, params).scalar() or 0),
                suggested_total=int(db.execute(queries.suggested_count, params).scalar() or 0),
            )

        return await self.db.run(work)

    async def overdue(self, now: datetime, limit: int) -> list[LeadView]:
        """Open leads past a deadline: for each kind of deadline (claim, first touch,
        disposition) the `limit` most overdue, once each. The `limit` most overdue leads overall
        are among them, whichever deadline makes each one late."""
        params = {"p_now": now, "p_limit": limit}

        def work(db: Connection) -> list[LeadView]:
            found: dict[int, LeadView] = {}
            for statement in _for(db).overdue:
                for lead in lead_views(db.execute(statement, params)):
                    found.setdefault(lead.id, lead)
            return list(found.values())

        return await self.db.run(work)


def _remember(db: Connection, user: str, now: datetime) -> None:
    insert_row = upsert_insert(db)
    statement = insert_row(table(HomeOpener)).values(
        user_id=user, first_opened_at=now, last_opened_at=now
    )
    db.execute(
        statement.on_conflict_do_update(
            index_elements=[HomeOpener.user_id], set_={"last_opened_at": now}
        )
    )
