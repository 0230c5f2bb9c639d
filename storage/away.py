"""Time away: who is away, set by hand (`/handoff away`) or read from a Slack status.

One row per rep. A row counts while its `until` is ahead (None: until the rep is back), so an
expired row needs no clean-up to stop counting. A hand-set row always wins over one read from
a Slack status: a status refresh only writes over rows it wrote itself (or expired ones), and
removes only its own when the status is cleared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, bindparam, delete, or_, select

from bot.domain.effects import Effect
from storage.db import Database, fetch_driven, upsert_insert
from storage.outbox import write_effects
from storage.tables import TimeAway, table

SLACK_STATUS = "slack:status"  # `set_by` of a row read from the rep's Slack status


@dataclass(frozen=True)
class Away:
    """A rep's time away as stored."""

    user: str
    until: datetime | None  # None: until they are back
    note: str | None
    set_by: str
    set_at: datetime

    @property
    def from_status(self) -> bool:
        return self.set_by == SLACK_STATUS


@dataclass(frozen=True)
class StatusAway:
    """A Slack status that counts as away: until its expiration (None: none set)."""

    until: datetime | None
    note: str


def _current(now: Any) -> ColumnElement[bool]:
    return or_(TimeAway.until.is_(None), TimeAway.until > now)


# Everyone away at `p_now`: a row per person at most, so the pool is picked from it here, and
# the statement is the same whatever the pool (a list of reps in it was expanded into its SQL
# on every read: intake reads it for every segment of every batch).
_AWAY_NOW = select(TimeAway.user_id).where(
    _current(bindparam("p_now", type_=TimeAway.__table__.c.until.type))
)
# The same, at `p_away_now`, to join to another statement (intake's first read, PostgreSQL).
AWAY_AT = select(TimeAway.user_id).where(
    _current(bindparam("p_away_now", type_=TimeAway.__table__.c.until.type))
)


def everyone_away(db: Connection, now: datetime) -> frozenset[str]:
    """Everyone away at `now`, inside the caller's transaction (intake's routing rules)."""
    return frozenset(str(user) for (user,) in fetch_driven(db, _AWAY_NOW, {"p_now": now}))


def away_reps(db: Connection, reps: Iterable[str], now: datetime) -> frozenset[str]:
    """Who of `reps` is away at `now`, inside the caller's transaction (intake's rotation)."""
    wanted = set(reps)
    if not wanted:
        return frozenset()
    found = fetch_driven(db, _AWAY_NOW, {"p_now": now})
    return frozenset(user for (user,) in found if user in wanted)


def _away(row: Row[Any]) -> Away:
    r = row._mapping
    return Away(str(r["user_id"]), r["until"], r["note"], str(r["set_by"]), r["set_at"])


class AwayStore:
    """The time-away table: each method one short transaction."""

    stored = True  # intake reads it in its own transaction (bot/services/routing.py)

    def __init__(self, database: Database) -> None:
        self.db = database

    async def away(self, reps: Iterable[str], now: datetime) -> frozenset[str]:
        """Who of `reps` is away at `now`."""
        wanted = list(reps)
        return await self.db.run(lambda db: away_reps(db, wanted, now))

    async def get(self, user: str, now: datetime) -> Away | None:
        """`user`'s time away if it counts at `now`."""
        statement = select(table(TimeAway)).where(TimeAway.user_id == user, _current(now))
        row = await self.db.run(lambda db: db.execute(statement).first())
        return None if row is None else _away(row)

    async def everyone(self, now: datetime) -> list[Away]:
        """Everyone away at `now`, by name of user."""
        statement = select(table(TimeAway)).where(_current(now)).order_by(TimeAway.user_id)
        rows = await self.db.run(lambda db: db.execute(statement).all())
        return [_away(row) for row in rows]

    async def set(
        self,
        user: str,
        until: datetime | None,
        note: str | None,
        set_by: str,
        now: datetime,
        effects: Sequence[Effect] = (),
    ) -> Away:
        """Set `user` away until `until` (by hand: over whatever was there), and write
        `effects` (the rep's DM) in the same transaction, only if that changed something: the
        same time away set again (a retried command) is left as it was and says nothing."""
        away = Away(user, until, note, set_by, now)
        row = {"user_id": user, "until": until, "note": note, "set_by": set_by, "set_at": now}

        def work(db: Connection) -> Away:
            statement = select(table(TimeAway)).where(TimeAway.user_id == user, _current(now))
            found = db.execute(statement).first()
            if found is not None:
                was = _away(found)
                if (was.until, was.note, was.set_by) == (until, note, set_by):
                    return was
            upsert = upsert_insert(db)(table(TimeAway)).values(**row)
            changes = {key: value for key, value in row.items() if key != "user_id"}
            db.execute(
                upsert.on_conflict_do_update(index_elements=[TimeAway.user_id], set_=changes)
            )
            write_effects(db, effects, now)
            return away

        return await self.db.run(work)

    async def clear(self, user: str, now: datetime, effects: Sequence[Effect] = ()) -> Away | None:
        """`user` is back: their row goes; the time away that counted until now, if any.
        `effects` (the rep's DM) are written in the same transaction, only if they were away."""

        def work(db: Connection) -> Away | None:
            statement = select(table(TimeAway)).where(TimeAway.user_id == user, _current(now))
            found = db.execute(statement).first()
            db.execute(delete(table(TimeAway)).where(TimeAway.user_id == user))
            if found is None:
                return None
            write_effects(db, effects, now)
            return _away(found)

        return await self.db.run(work)

    async def sync_statuses(
        self, checked: Iterable[str], found: Mapping[str, StatusAway], now: datetime
    ) -> None:
        """The Slack statuses of `checked` as read at `now`: those in `found` are away (unless
        set by hand, which wins), the others' status rows go."""
        users = list(checked)
        rows = [
            {"user_id": user, "until": away.until, "note": away.note[:200]}
            | {"set_by": SLACK_STATUS, "set_at": now}
            for user, away in found.items()
        ]
        cleared = [user for user in users if user not in found]

        def work(db: Connection) -> None:
            if cleared:
                db.execute(
                    delete(table(TimeAway)).where(
                        TimeAway.user_id.in_(cleared), TimeAway.set_by == SLACK_STATUS
                    )
                )
            if rows:
                statement = upsert_insert(db)(table(TimeAway))
                new = statement.excluded
                db.execute(
                    statement.on_conflict_do_update(
                        index_elements=[TimeAway.user_id],
                        set_={
                            "until": new.until,
                            "note": new.note,
                            "set_by": new.set_by,
                            "set_at": new.set_at,
                        },
                        where=or_(
                            TimeAway.set_by == SLACK_STATUS,
                            TimeAway.until.is_not(None) & (TimeAway.until <= now),
                        ),
                    ),
                    rows,
                )

        await self.db.run(work)
