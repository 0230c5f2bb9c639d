"""The weighted rotation's state and the account lookups routing reads.

Every turn of a segment's rotation runs under the lock of that segment's `round_robin` row
(PostgreSQL: a row lock, held to the commit; SQLite: the one writer), so concurrent intake on
several replicas takes turns one after the other and no rep is counted twice or skipped. The
pick itself is the domain's (`bot.domain.rotation.take_turn`); here it is read and written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    Float,
    Integer,
    String,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.domain.lead import Stage
from bot.domain.rotation import PoolRules, RepLoad, take_turn
from bot.domain.routing import COUNTED_ON, AccountLead, fallback_rep
from storage.away import away_reps, everyone_away
from storage.db import fetch_driven
from storage.outbox import home_requests
from storage.tables import HomeOpener, LeadRow, RotationRep, RoundRobin, TimeAway, table

LEADS = LeadRow.__table__


@dataclass(frozen=True)
class RotationAsk:
    """One turn of a segment's rotation, as the use case asks for it."""

    segment: str
    rules: PoolRules
    day: str  # the business day (team zone), ISO date: `cap.per_day` and "today" count in it
    week: str  # the week's Monday, ISO date: "3 of 12 this week"
    away: frozenset[str] = frozenset()
    reason: dict[str, Any] = field(default_factory=dict)  # the route reason so far
    fallback: str | None = None  # who gets the lead when nobody is available
    # Who may, in order (the fallback owner, then the managers): the first not away takes it.
    fallbacks: tuple[str, ...] = ()
    avoid: frozenset[str] = frozenset()  # a reassignment: the rep the lead is taken from
    # Of `avoid`, the reps the SLA took the lead from earlier in its cycle: "already had it".
    had: frozenset[str] = frozenset()
    # The rep the rotation counted the lead to before (a reassignment): when the turn hands it
    # to someone else, it leaves their counts (their credit stays) of the day and week it was
    # counted in (`leaving_periods`; None: this turn's), where those are still counting.
    leaving: str | None = None
    leaving_periods: tuple[str, str] | None = None
    # A claimed lead's owner (a reassignment): the lead leaves their open leads for the rep
    # picked (what `cap.open` counts; a batch's turns follow it in memory).
    claimed_by: str | None = None
    # Who of the pool is away at this time is read with the turn (stored time away): on
    # PostgreSQL in the statement that takes the segment's lock, no round trip of its own.
    away_at: datetime | None = None


@dataclass(frozen=True)
class Suggestion:
    rep: str | None
    reason: dict[str, Any]
    # The rep's App Home was asked for with the turn's own write (PostgreSQL, `take`'s
    # `home_at`): the caller leaves that request out of its own.
    home_asked: bool = False


_COLUMNS = ("settled", "since", "weight", "day", "today", "week", "this_week")
_REPS_OF = select(RotationRep.rep, *(RotationRep.__table__.c[name] for name in _COLUMNS)).where(
    RotationRep.segment == bindparam("p_segment")
)  # (rep, *_COLUMNS)
_OPEN_OF = (
    select(LeadRow.owner, func.count())
    .where(LeadRow.stage == Stage.SAL.value, LeadRow.owner.in_(bindparam("p_reps", expanding=True)))
    .group_by(LeadRow.owner)
)


def _away_of() -> Any:
    """PostgreSQL: who of the pool (`p_reps`: one array parameter; an expanding list would be
    rendered again at every execution, a placeholder per rep) is away at `p_now`, as one
    array (a scalar subquery)."""
    return select(func.array_agg(TimeAway.user_id)).where(
        TimeAway.user_id == any_(bindparam("p_reps", type_=ARRAY(String))),
        or_(
            TimeAway.until.is_(None),
            TimeAway.until > bindparam("p_now", type_=table(TimeAway).c.until.type),
        ),
    )


@cache
def _hold_statement(dialect: str) -> Any:
    insert_row = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_row(table(RoundRobin)).values(
        segment=bindparam("p_segment"), position=1, clock=0.0
    )
    held = statement.on_conflict_do_update(
        index_elements=[RoundRobin.segment], set_={"position": RoundRobin.position + 1}
    )
    return held.returning(RoundRobin.clock)


@cache
def _hold_read_pg(with_away: bool) -> Any:
    """PostgreSQL: the segment's row locked (created if new, its position moved on), its clock,
    who of the pool is away (`with_away`) and the pool's rep rows, in ONE statement.

    A statement's reads share the snapshot taken when it started, before the lock was granted
    (a turn may wait for another replica's). So the rep rows are read by a VOLATILE function
    (`rotation_reps_as_locked`, migration 0023), which takes a snapshot of its own when it
    runs: on the locked row, so once the lock is granted, and the rows are as the replica
    that held it committed them (every writer of a segment's rep rows holds its lock)."""
    upsert = postgresql_insert(table(RoundRobin)).values(
        segment=bindparam("p_segment"), position=1, clock=0.0
    )
    held = (
        upsert.on_conflict_do_update(
            index_elements=[RoundRobin.segment], set_={"position": RoundRobin.position + 1}
        )
        .returning(RoundRobin.clock, RoundRobin.segment)
        .cte("held")
    )
    reps = (
        func.rotation_reps_as_locked(held.c.segment)
        .table_valued(*(column.name for column in table(RotationRep).c))
        .lateral("reps")
    )
    away = _away_of().scalar_subquery() if with_away else null()
    return select(
        held.c.clock, away.label("away"), *(reps.c[name] for name in ("rep", *_COLUMNS))
    ).select_from(held.outerjoin(reps, true()))


def _hold(db: Connection, ask: RotationAsk) -> tuple[float, frozenset[str]]:
    """Hold the segment's rotation row (created if new) until the transaction ends, and read
    its clock (its position counts the changes to the rotation); with `ask.away_at`, who of
    the pool is away then (SQLite: in-process, a statement of its own costs no trip)."""
    clock = float(
        fetch_driven(db, _hold_statement(db.dialect.name), {"p_segment": ask.segment})[0][0]
    )
    if ask.away_at is None:
        return clock, frozenset()
    return clock, away_reps(db, ask.rules.reps, ask.away_at)


def _hold_read(
    db: Connection, ask: RotationAsk, with_open: bool
) -> tuple[float, frozenset[str], dict[str, RepLoad]]:
    """Hold the segment's rotation row until the transaction ends and read what a turn reads:
    its clock, who of the pool is away (with `ask.away_at`) and the reps' loads (open leads
    too, `with_open`). PostgreSQL: the lock and the reads are one round trip (`_hold_read_pg`),
    also after a wait for another replica's lock."""
    if db.dialect.name != "postgresql":
        clock, away = _hold(db, ask)
        loads = read_loads(db, ask.segment, ask.day, ask.week, ask.rules.reps, with_open)
        return clock, away, loads
    params: dict[str, Any] = {"p_segment": ask.segment}
    if ask.away_at is not None:
        params |= {"p_reps": sorted(set(ask.rules.reps)), "p_now": ask.away_at}
    # (clock, away, rep, *_COLUMNS): the held row alone, or once per rep row
    rows = fetch_driven(db, _hold_read_pg(ask.away_at is not None), params)
    clock, away_now = rows[0][:2]
    day, week = ask.day, ask.week
    loads = {row[2]: _loaded(row[3:], day, week) for row in rows if row[2]}
    if with_open:
        _add_open(db, loads, ask.rules.reps)
    return clock, frozenset(away_now or ()), loads


@cache
def _save_statement(dialect: str) -> Any:
    insert_row = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_row(table(RotationRep))
    return statement.on_conflict_do_update(
        index_elements=[RotationRep.segment, RotationRep.rep],
        set_={name: statement.excluded[name] for name in _COLUMNS},
    )


_CLOCK_OF = select(RoundRobin.clock).where(RoundRobin.segment == bindparam("p_segment"))
_SET_CLOCK = (
    update(table(RoundRobin))
    .where(RoundRobin.segment == bindparam("p_segment"))
    .values(clock=bindparam("p_clock"), position=RoundRobin.position + bindparam("p_more"))
)  # `p_more`: the turns after the first of a batch (the hold counted the first)


def read_loads(
    db: Connection, segment: str, day: str, week: str, reps: Iterable[str], with_open: bool
) -> dict[str, RepLoad]:
    """The reps' loads as stored (a count of a past day or week reads 0)."""
    rows = fetch_driven(db, _REPS_OF, {"p_segment": segment})
    loads = {row[0]: _loaded(row[1:], day, week) for row in rows}
    if with_open:
        _add_open(db, loads, reps)
    return loads


def _add_open(db: Connection, loads: dict[str, RepLoad], reps: Iterable[str]) -> None:
    """The reps' open leads (what `cap.open` counts) into `loads`."""
    for rep, count in db.execute(_OPEN_OF, {"p_reps": list(reps)}).all():
        loads[str(rep)] = replace(loads.get(str(rep), RepLoad()), open=int(count))


def _load(row: Any, day: str, week: str) -> RepLoad:
    """A rep's load from their `rotation_reps` row (a count of a past day or week reads 0)."""
    return _loaded([row[name] for name in _COLUMNS], day, week)


def _loaded(values: Sequence[Any], day: str, week: str) -> RepLoad:
    """A rep's load from their row's `_COLUMNS`' values, in order, on business day `day` of
    week `week`."""
    settled, since, weight, row_day, today, row_week, this_week = values
    return RepLoad(
        float(settled),
        None if since is None else float(since),
        int(weight),
        today if row_day == day else 0,
        this_week if row_week == week else 0,
    )


_SEGMENTS: Any = bindparam("p_segments", expanding=True)
_REPS_OF_SEGMENTS = select(RotationRep).where(RotationRep.segment.in_(_SEGMENTS))
_CLOCKS_OF = select(RoundRobin.segment, RoundRobin.clock).where(RoundRobin.segment.in_(_SEGMENTS))


@dataclass(frozen=True)
class RotationRead:
    """Segments' rotations as read without a lock: the sweep plans its turns on them before
    it locks anything, and keeps the plan if the rotation reads the same under the lock."""

    segments: frozenset[str]
    clocks: dict[str, float]
    rows: dict[str, list[dict[str, Any]]]  # each segment's `rotation_reps` rows

    def loads(self, segment: str, day: str, week: str) -> dict[str, RepLoad]:
        return {str(row["rep"]): _load(row, day, week) for row in self.rows.get(segment, [])}


def read_rotations(db: Connection, segments: Iterable[str]) -> RotationRead:
    """The clocks and reps of `segments`' rotations (two statements, no lock)."""
    wanted = sorted(set(segments))
    if not wanted:
        return RotationRead(frozenset(), {}, {})
    clocks = {str(s): float(c) for s, c in db.execute(_CLOCKS_OF, {"p_segments": wanted})}
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in db.execute(_REPS_OF_SEGMENTS, {"p_segments": wanted}).mappings():
        rows.setdefault(str(row["segment"]), []).append(dict(row))
    return RotationRead(frozenset(wanted), clocks, rows)


def read_standing(
    db: Connection, segment: str, day: str, week: str, reps: Iterable[str]
) -> tuple[float, dict[str, RepLoad]]:
    """The segment's clock and its reps' loads, open leads included (no lock: a read)."""
    clock = db.execute(_CLOCK_OF, {"p_segment": segment}).scalar()
    return float(clock or 0.0), read_loads(db, segment, day, week, reps, True)


def _save(db: Connection, ask: RotationAsk, loads: dict[str, RepLoad], reps: Iterable[str]) -> None:
    """Write the loads of `reps` (those a turn changed)."""
    rows = [
        {
            "segment": ask.segment,
            "rep": rep,
            "settled": loads[rep].settled,
            "since": loads[rep].since,
            "weight": loads[rep].weight,
            "day": ask.day,
            "today": loads[rep].today,
            "week": ask.week,
            "this_week": loads[rep].week,
        }
        for rep in sorted(reps)
    ]
    if rows:
        db.execute(_save_statement(db.dialect.name), rows)


def _rows(ask: RotationAsk, loads: dict[str, RepLoad], reps: Iterable[str]) -> dict[str, Any]:
    """The loads of `reps` as one array per column (PostgreSQL's one-statement write)."""
    chosen = sorted(reps)
    return {
        "p_segment": ask.segment,
        "p_day": ask.day,
        "p_week": ask.week,
        "p_reps": chosen,
        "p_settled": [loads[rep].settled for rep in chosen],
        "p_since": [loads[rep].since for rep in chosen],
        "p_weight": [loads[rep].weight for rep in chosen],
        "p_today": [loads[rep].today for rep in chosen],
        "p_this_week": [loads[rep].week for rep in chosen],
    }


@cache
def _turn_write_pg(with_lead: bool, with_home: bool = False) -> Any:
    """PostgreSQL: a turn's writes as one statement (one round trip, the segment's lock held
    the less): the reps it changed, the segment's clock and, `with_lead`, the lead's
    suggested owner and why, and `with_home` the request for that rep's App Home (if they
    opened it and none waits: storage/outbox.py). Data-modifying CTEs always run,
    referenced or not."""
    arrays = (
        func.unnest(
            bindparam("p_reps", type_=ARRAY(String)),
            bindparam("p_settled", type_=ARRAY(Float)),
            bindparam("p_since", type_=ARRAY(Float)),
            bindparam("p_weight", type_=ARRAY(Integer)),
            bindparam("p_today", type_=ARRAY(Integer)),
            bindparam("p_this_week", type_=ARRAY(Integer)),
        )
        .table_valued("rep", "settled", "since", "weight", "today", "this_week")
        .render_derived()
    )
    rows = select(
        bindparam("p_segment", type_=String),
        arrays.c.rep,
        arrays.c.settled,
        arrays.c.since,
        arrays.c.weight,
        bindparam("p_day", type_=String),
        arrays.c.today,
        bindparam("p_week", type_=String),
        arrays.c.this_week,
    )
    columns = ["segment", "rep", *_COLUMNS]
    insert_reps = postgresql_insert(table(RotationRep)).from_select(columns, rows)
    saved = insert_reps.on_conflict_do_update(
        index_elements=[RotationRep.segment, RotationRep.rep],
        set_={name: insert_reps.excluded[name] for name in _COLUMNS},
    ).cte("saved_reps")
    if not with_lead:
        return _SET_CLOCK.add_cte(saved)
    written = _SUGGEST.add_cte(saved).add_cte(_SET_CLOCK.cte("set_clock"))
    if with_home:
        home = home_requests(HomeOpener.user_id == bindparam("p_rep", type_=String))
        written = written.add_cte(home.cte("home"))
    return written


@cache
def _turn_in_sql_pg(with_lead: bool, with_home: bool) -> Any:
    """PostgreSQL: a whole turn in one statement (`rotation_take_turn`, migration 0024: the
    lock, the reads, the domain's pick and the write), and, `with_lead`, the lead's suggested
    owner and why (`p_reason` with the turn's figures), `with_home` the request for the
    rep's App Home. Its row: the rep (None: nobody available, nothing written), their leads
    this week, the pool's, and the clock."""
    turned = (
        func.rotation_take_turn(
            bindparam("p_segment", type_=String),
            bindparam("p_reps", type_=ARRAY(String)),
            bindparam("p_weights", type_=ARRAY(Integer)),
            bindparam("p_cap_open", type_=Integer),
            bindparam("p_cap_day", type_=Integer),
            bindparam("p_catch_up", type_=Boolean),
            bindparam("p_away", type_=ARRAY(String)),
            bindparam("p_away_at", type_=table(TimeAway).c.until.type),
            bindparam("p_day", type_=String),
            bindparam("p_week", type_=String),
        )
        .table_valued("rep", "week", "week_total", "weight", "clock")
        .render_derived()
    )
    turn = select(*turned.c).cte("turn")
    answer = select(turn.c.rep, turn.c.week, turn.c.week_total, turn.c.clock)
    if not with_lead:
        return answer
    figures = func.jsonb_build_object(
        "rep",
        turn.c.rep,
        "week",
        turn.c.week,
        "week_total",
        turn.c.week_total,
        "weight",
        turn.c.weight,
        "cap",
        bindparam("p_cap", type_=Integer),
        COUNTED_ON,
        bindparam("p_day", type_=String),
    )
    reason = cast(bindparam("p_reason", type_=JSONB), JSONB).op("||")(figures)
    suggested = (
        update(table(LeadRow))
        .where(LeadRow.id == bindparam("p_lead_id"), turn.c.rep.is_not(None))
        .values(suggested_owner=turn.c.rep, route_reason=cast(reason, JSON))
    )
    answer = answer.add_cte(suggested.cte("suggested"))
    if with_home:
        picked = select(turn.c.rep).scalar_subquery()
        answer = answer.add_cte(home_requests(HomeOpener.user_id == picked).cte("home"))
    return answer


def _fall_back(db: Connection, ask: RotationAsk, away: frozenset[str], why: str) -> Suggestion:
    """Nobody in the pool is available: the first of `ask.fallbacks` who is not away (read
    now, in the turn's transaction, when the ask leaves time away to storage), else
    `ask.fallback`; the reason says why, and whom it passed."""
    candidates = ask.fallbacks or ((ask.fallback,) if ask.fallback else ())
    if len(candidates) > 1 and ask.away_at is not None:
        away = away | everyone_away(db, ask.away_at)
    rep = fallback_rep(candidates, away) if candidates else None
    reason = ask.reason | {"rule": "fallback", "rep": rep, "why": why}
    if candidates and rep != candidates[0]:
        passed = [{"rule": "fallback", "rep": candidates[0]}]
        reason["passed"] = [*ask.reason.get("passed", []), *passed]
    return Suggestion(rep, reason)


def _turn_reason(ask: RotationAsk, rep: str, week: int, week_total: int) -> dict[str, Any]:
    """Why the turn chose `rep` ("Round robin: Ben, 3 of 12 this week, weight 1, cap 10"), and
    the business day it counts the lead in (`COUNTED_ON`: what the lead leaving them later
    takes off): the same figures whichever way the turn was taken (`_turn_in_sql_pg` too)."""
    figures = {"rep": rep, "week": week, "week_total": week_total, COUNTED_ON: ask.day}
    return ask.reason | figures | {"weight": ask.rules.weight(rep), "cap": ask.rules.cap}


def _leave(ask: RotationAsk, loads: dict[str, RepLoad]) -> str | None:
    """Take the lead off the counts of the rep it leaves (`ask.leaving`), in `loads` (read for
    the ask's day and week): its day's count if it was counted today, its week's if this week,
    each never below 0 (a count of an earlier period has restarted: nothing to take off). The
    rep, if their load is to be written."""
    leaving = ask.leaving if ask.leaving in loads else None
    if leaving is None:
        return None
    day, week = ask.leaving_periods or (ask.day, ask.week)
    load = loads[leaving]
    today = max(load.today - 1, 0) if day == ask.day else load.today
    this_week = max(load.week - 1, 0) if week == ask.week else load.week
    loads[leaving] = replace(load, today=today, week=this_week)
    return leaving


def _changes_hands(ask: RotationAsk, rep: str | None) -> bool:
    """Whether the lead goes to `rep`: someone, not the rep it is taken from (`avoid` but for
    those who `had` it; a fallback owner who has it already leaves it where it was)."""
    return rep is not None and rep not in ask.avoid - ask.had


def _turn_in_sql(
    db: Connection, ask: RotationAsk, lead_id: int | None, home_at: datetime | None
) -> Suggestion | None:
    """PostgreSQL: the turn in one statement (`_turn_in_sql_pg`); None when nobody is
    available (the segment is held now: `take` says why and falls back)."""
    rules = ask.rules
    pool = list(dict.fromkeys(rules.reps))
    params: dict[str, Any] = {
        "p_segment": ask.segment,
        "p_reps": pool,
        "p_weights": [rules.weight(rep) for rep in pool],
        "p_cap_open": rules.cap_open,
        "p_cap_day": rules.cap_per_day,
        "p_catch_up": rules.catch_up,
        "p_away": sorted(ask.away),
        "p_away_at": ask.away_at,
        "p_day": ask.day,
        "p_week": ask.week,
    }
    if lead_id is not None:
        params |= {"p_lead_id": lead_id, "p_reason": ask.reason, "p_cap": rules.cap}
        if home_at is not None:
            params["p_now"] = home_at
    with_home = lead_id is not None and home_at is not None
    rep, week, week_total, _ = fetch_driven(
        db, _turn_in_sql_pg(lead_id is not None, with_home), params
    )[0]
    if rep is None:
        return None
    return Suggestion(rep, _turn_reason(ask, rep, week, week_total), home_asked=with_home)


def take(
    db: Connection, ask: RotationAsk, lead_id: int | None = None, home_at: datetime | None = None
) -> Suggestion:
    """Take one turn of the segment's rotation (locked, read, picked, written) and say why;
    the fallback, with the reason nobody was available, when the turn finds nobody. With
    `lead_id`, the lead's suggested owner and why are stored with the turn; with `home_at`
    too, on PostgreSQL, the rep's App Home is asked for (at that time) in the same statement
    (`Suggestion.home_asked`). On PostgreSQL a turn that takes a lead from nobody is one
    statement (`_turn_in_sql`): the segment's lock is held for no round trip of its own."""
    rules = ask.rules
    if db.dialect.name == "postgresql" and ask.leaving is None and not ask.avoid:
        taken = _turn_in_sql(db, ask, lead_id, home_at)
        if taken is not None:
            return taken
    clock, away, loads = _hold_read(db, ask, rules.cap_open is not None)
    leaving = _leave(ask, loads)  # out of its counts first: the turn's figures are as they end
    turn = take_turn(rules, loads, ask.away | away, clock, ask.avoid, ask.had)
    if turn.rep is None:
        fell_back = _fall_back(db, ask, ask.away | away, f"nobody available ({turn.why_nobody})")
        if leaving is not None and _changes_hands(ask, fell_back.rep):
            _save(db, ask, loads, [leaving])
        if lead_id is not None:
            _store_suggestion(db, lead_id, fell_back)
        return fell_back
    week_total = sum(load.week for load in turn.loads.values())
    reason = _turn_reason(ask, turn.rep, turn.loads[turn.rep].week, week_total)
    suggestion = Suggestion(turn.rep, reason)
    changed = turn.changed | ({leaving} if leaving else set())
    if db.dialect.name == "postgresql":
        params = _rows(ask, turn.loads, changed) | {"p_clock": turn.clock, "p_more": 0}
        if lead_id is not None:
            params |= {"p_lead_id": lead_id, "p_rep": turn.rep, "p_reason": reason}
        with_home = lead_id is not None and home_at is not None
        if with_home:
            params["p_now"] = home_at
        fetch_driven(db, _turn_write_pg(lead_id is not None, with_home), params)
        return replace(suggestion, home_asked=with_home)
    _save(db, ask, turn.loads, changed)
    db.execute(_SET_CLOCK, {"p_segment": ask.segment, "p_clock": turn.clock, "p_more": 0})
    if lead_id is not None:
        _store_suggestion(db, lead_id, suggestion)
    return suggestion


@dataclass
class _Held:
    """One segment's rotation as a batch holds it: read once, turned in memory."""

    ask: RotationAsk  # the first turn's ask: its segment, business day and week
    clock: float
    loads: dict[str, RepLoad]
    with_open: bool
    turns: int = 0
    changed: set[str] = field(default_factory=set)
    start: tuple[float, dict[str, RepLoad]] = (0.0, {})  # the clock and loads as read
    away: frozenset[str] = frozenset()  # who of the pool is away, read with the lock (`away_at`)

    def copy(self) -> _Held:
        return replace(self, loads=dict(self.loads), changed=set(self.changed))


Kept = dict[str, _Held]  # held rotations as they stood (`HeldRotations.kept`), to go back to


class HeldRotations:
    """The rotations a sweep's batch takes turns of, in its transaction: each segment's row is
    held (locked) and its reps read once, the turns taken in memory, and the result written
    back once (`save`), so a batch of 100 reassignments costs a few statements, not 300. The
    same turns as `take` one by one (`tests/integration/test_sweep_rotation.py`)."""

    def __init__(self, db: Connection) -> None:
        self.db = db
        self.held: dict[str, _Held] = {}
        self.away: dict[str, frozenset[str]] = {}  # who is away, by segment, read with its lock

    def hold(self, ask: RotationAsk) -> None:
        """Hold `ask`'s segment now (its row locked, its reps read), before any turn of it."""
        self._hold(ask)

    def _hold(self, ask: RotationAsk) -> _Held:
        held = self.held.get(ask.segment)
        wants_open = ask.rules.cap_open is not None
        if held is None:
            clock, loads = self._read(ask, wants_open)
            away = self.away.get(ask.segment, frozenset())
            held = _Held(ask, clock, loads, wants_open, start=(clock, dict(loads)), away=away)
            self.held[ask.segment] = held
        elif wants_open and not held.with_open:  # a later SLA version caps open leads
            opened = read_loads(self.db, ask.segment, ask.day, ask.week, ask.rules.reps, True)
            for rep, load in opened.items():
                held.loads[rep] = replace(held.loads.get(rep, load), open=load.open)
            held.with_open = True
        return held

    def _read(self, ask: RotationAsk, with_open: bool) -> tuple[float, dict[str, RepLoad]]:
        """The segment's clock and loads, its row held (locked) until the transaction ends;
        who of the pool is away (`away_at`) is kept in `away`."""
        clock, self.away[ask.segment], loads = _hold_read(self.db, ask, with_open)
        return clock, loads

    def adopt(self, planned: _Held) -> bool:
        """Take over turns planned before the lock if the segment reads as they were planned
        on (its clock and reps; caps on open leads are never planned); False if it changed."""
        held = self._hold(planned.ask)
        if held.turns or (held.clock, held.loads) != planned.start or held.with_open:
            return False
        self.held[planned.ask.segment] = replace(planned.copy(), start=held.start, away=held.away)
        return True

    def take(self, ask: RotationAsk) -> Suggestion:
        """A turn, as `take` takes it, in memory."""
        held = self._hold(ask)
        loads = dict(held.loads)
        leaving = _leave(ask, loads)
        away = ask.away | held.away if ask.away_at is not None else ask.away
        turn = take_turn(ask.rules, loads, away, held.clock, ask.avoid, ask.had)
        held.turns += 1
        if turn.rep is None:
            fell_back = _fall_back(self.db, ask, away, f"nobody available ({turn.why_nobody})")
            if leaving is not None and _changes_hands(ask, fell_back.rep):
                held.loads, held.changed = loads, held.changed | {leaving}
            return fell_back
        after = dict(turn.loads)
        if ask.claimed_by is not None:  # an open lead moves from its owner to the rep picked
            old = after.get(ask.claimed_by, RepLoad())
            after[ask.claimed_by] = replace(old, open=max(old.open - 1, 0))
            after[turn.rep] = replace(after[turn.rep], open=after[turn.rep].open + 1)
        held.loads, held.clock = after, turn.clock
        held.changed |= turn.changed | ({leaving} if leaving else set())
        week_total = sum(load.week for load in after.values())
        return Suggestion(turn.rep, _turn_reason(ask, turn.rep, after[turn.rep].week, week_total))

    def kept(self) -> Kept:
        """The held rotations as they stand now, for `restore`."""
        return {segment: held.copy() for segment, held in self.held.items()}

    def restore(self, kept: Kept) -> None:
        """Back to the rotations as `kept`: the turns taken since (by a lead whose change is
        not written: its decision failed, or changed nothing) are not saved. A segment held
        since is read again if a later turn takes it (it is still locked)."""
        self.held = dict(kept)

    def uncount(self, segment: str, rep: str, day: str, week: str) -> None:
        """`uncount`, in memory for a segment held (its loads are of the held day and week:
        a count of another period is not one they hold), else at once."""
        held = self.held.get(segment)
        if held is None:
            uncount(self.db, segment, rep, day, week)
            return
        ask = replace(held.ask, leaving=rep, leaving_periods=(day, week))
        if _leave(ask, held.loads) is not None:
            held.changed.add(rep)

    def save(self) -> None:
        """Write each held segment's changed reps, its clock and its turns: one statement on
        PostgreSQL, two or three on SQLite."""
        for segment, held in self.held.items():
            if not held.turns and not held.changed:
                continue
            more = max(held.turns - 1, 0)
            if self.db.dialect.name == "postgresql":
                params = _rows(held.ask, held.loads, held.changed)
                fetch_driven(
                    self.db, _turn_write_pg(False), params | {"p_clock": held.clock, "p_more": more}
                )
                continue
            _save(self.db, held.ask, held.loads, held.changed)
            params = {"p_segment": segment, "p_clock": held.clock, "p_more": more}
            self.db.execute(_SET_CLOCK, params)


def _store_suggestion(db: Connection, lead_id: int, suggestion: Suggestion) -> None:
    params = {"p_lead_id": lead_id, "p_rep": suggestion.rep, "p_reason": suggestion.reason}
    db.execute(_SUGGEST, params)


_SUGGEST = (
    update(table(LeadRow))
    .where(LeadRow.id == bindparam("p_lead_id"))
    .values(suggested_owner=bindparam("p_rep"), route_reason=bindparam("p_reason"))
)


def _of_account(domain: Any, since: Any) -> list[Any]:
    """A lead whose owner a new lead of account `domain` goes to: owned, and open, won, or
    closed since `since`."""
    return [
        LeadRow.account_domain == domain,
        LeadRow.owner.is_not(None),
        or_(
            LeadRow.stage == Stage.SAL.value,
            LeadRow.won_at.is_not(None),
            LeadRow.dispositioned_at >= since,
        ),
    ]


_ACCOUNT_LEAD = (
    select(LeadRow.id, LeadRow.owner)
    .where(
        *_of_account(
            bindparam("p_domain"),
            bindparam("p_since", type_=LEADS.c.dispositioned_at.type),
        )
    )
    .order_by(LeadRow.id.desc())
    .limit(1)
)


@cache
def account_lead_pg() -> Any:
    """PostgreSQL: `account_leads_pg` for one account (`p_domain`, `p_since`; `asked` 1): a
    statement of plain parameters, which PostgreSQL plans once and keeps (an array's length
    is unknown to a kept plan, so it planned the array form again at every execution)."""
    found = (
        select(LeadRow.id, LeadRow.owner)
        .where(
            *_of_account(
                bindparam("p_domain", type_=String),
                bindparam("p_since", type_=LEADS.c.dispositioned_at.type),
            )
        )
        .order_by(LeadRow.id.desc())
        .limit(1)
        .subquery("found")
    )
    return select(literal(1, BigInteger).label("asked"), found.c.id, found.c.owner)


@cache
def account_leads_pg() -> Any:
    """PostgreSQL: `account_lead` for several accounts at once, to join to a statement that
    runs anyway (one row per account asked that has a lead: `asked`, its 1-based place in
    `p_domains` / `p_sinces`, with the lead's `id` and `owner`)."""
    asks = (
        func.unnest(
            bindparam("p_domains", type_=ARRAY(String)),
            bindparam("p_sinces", type_=ARRAY(LEADS.c.dispositioned_at.type)),
        )
        .table_valued("domain", "since", with_ordinality="asked")
        .render_derived()
    )
    found = (
        select(LeadRow.id, LeadRow.owner)
        .where(*_of_account(asks.c.domain, asks.c.since))
        .order_by(LeadRow.id.desc())
        .limit(1)
        .lateral("found")
    )
    return select(asks.c.asked, found.c.id, found.c.owner).select_from(asks.join(found, true()))


_OTHER_ACCOUNT_LEAD = _ACCOUNT_LEAD.where(LeadRow.id != bindparam("p_exclude"))


def suggest(
    db: Connection, lead_id: int, ask: RotationAsk, home_at: datetime | None = None
) -> Suggestion:
    """Take a turn for the lead and store its suggested owner and why (`home_at`: `take`'s)."""
    return take(db, ask, lead_id, home_at)


def take_all(db: Connection, asks: Sequence[RotationAsk]) -> list[Suggestion]:
    """A turn for each ask, in order, each segment's row held (locked) once, in the order of
    the segments' names so replicas taking batches never wait on each other in a circle, its
    reps read once, the turns taken in memory and written back once (`HeldRotations`)."""
    held = HeldRotations(db)
    first: dict[str, RotationAsk] = {}
    for ask in asks:
        first.setdefault(ask.segment, ask)
    for segment in sorted(first):
        held.hold(first[segment])
    picks = [held.take(ask) for ask in asks]
    held.save()
    return picks


def suggest_all(
    db: Connection, turns: Sequence[tuple[int, RotationAsk]], home_at: datetime | None = None
) -> list[Suggestion]:
    """Take a turn for each lead, in order, and store each one's suggested owner and why: the
    same turns as `suggest` one lead after the other (an intake batch), but each segment's
    row held (locked) once, in the order of the segments' names so replicas taking batches
    never wait on each other in a circle, its reps read once and written back once. A batch
    of one is `suggest` (one statement on PostgreSQL writes the turn, the lead and, with
    `home_at`, the request for the rep's App Home)."""
    if len(turns) == 1:
        lead_id, ask = turns[0]
        return [suggest(db, lead_id, ask, home_at)]
    suggestions = take_all(db, [ask for _, ask in turns])
    db.execute(
        _SUGGEST,
        [
            {"p_lead_id": lead_id, "p_rep": suggestion.rep, "p_reason": suggestion.reason}
            for (lead_id, _), suggestion in zip(turns, suggestions, strict=True)
        ],
    )
    return suggestions


def account_lead(
    db: Connection, domain: str, recent_since: datetime, exclude: int | None = None
) -> AccountLead | None:
    """The newest owned lead of the account `domain` that is open, won, or closed since
    `recent_since`, other than lead `exclude`: whose owner a new (or returning) lead of the
    account goes to."""
    params: dict[str, Any] = {"p_domain": domain, "p_since": recent_since}
    statement = _ACCOUNT_LEAD
    if exclude is not None:
        statement, params["p_exclude"] = _OTHER_ACCOUNT_LEAD, exclude
    rows = fetch_driven(db, statement, params)
    return AccountLead(int(rows[0][0]), str(rows[0][1])) if rows else None


def uncount(db: Connection, segment: str, rep: str, day: str, week: str) -> None:
    """A lead the rotation counted to `rep` leaves them (the sweep hands it to another rep):
    it leaves their count of business day `day` and of week `week` (the periods it was counted
    in), where those are the periods their counts are of still (a count of an earlier period
    has restarted since: nothing to take off). Their credit is left alone: a lead let lapse
    is not owed back. Under the segment's lock, its position moved on (a turn waits for this,
    and reads the rep rows as this leaves them)."""
    db.execute(_MOVED, {"p_segment": segment})
    for period, count, current in (
        (RotationRep.day, RotationRep.today, day),
        (RotationRep.week, RotationRep.this_week, week),
    ):
        db.execute(
            _uncount_statement(period.key, count.key),
            {"p_segment": segment, "p_rep": rep, "p_period": current},
        )


_MOVED = (
    update(table(RoundRobin))
    .where(RoundRobin.segment == bindparam("p_segment"))
    .values(position=RoundRobin.position + 1)
)  # a change to the segment's rotation: its row locked, its position moved on


@cache
def _uncount_statement(period: str, count: str) -> Any:
    reps = table(RotationRep)
    column = reps.c[count]
    return (
        update(reps)
        .where(
            reps.c.segment == bindparam("p_segment"),
            reps.c.rep == bindparam("p_rep"),
            reps.c[period] == bindparam("p_period"),
        )
        .values({count: case((column > 0, column - 1), else_=0)})
    )


def count_reassignment(
    db: Connection,
    segment: str,
    old: str | None,
    new: str,
    now: datetime,
    old_periods: tuple[str, str] | None = None,
) -> tuple[str, str] | None:
    """The rotation counts follow a manager's reassignment: one lead of `segment` moves from
    `old` (the rep the rotation counted it to; None: nobody) to `new`, in the transaction that
    stores the reassignment (so both happen or neither). The lead leaves `old`'s counts of the
    day and week it was counted in (`old_periods`; None: the current ones) and joins `new`'s
    (the segment's latest day and week any turn recorded: a rep whose counts are of an
    earlier period starts that period at this lead), under the segment's rotation lock.
    The weighted credit is left alone: a manager's choice is not the rotation's turn. The
    day and week it counted the lead to `new` in (None: the rotation has not turned yet),
    for the lead's route reason (`COUNTED_ON`: what the lead leaving `new` later takes off)."""
    del now
    reps = table(RotationRep)
    # The rotation's lock, its position moved on: turns wait for this, and read the rep rows
    # as this leaves them (`_hold_read_pg`).
    db.execute(_MOVED, {"p_segment": segment})
    latest = db.execute(
        select(func.max(RotationRep.day), func.max(RotationRep.week)).where(
            RotationRep.segment == segment
        )
    ).one()
    if None in latest:
        return None  # the rotation has not turned yet: nothing is counted
    for rep, step, (day, week) in ((old, -1, old_periods or latest), (new, 1, latest)):
        if rep is None:
            continue
        mine = (RotationRep.segment == segment, RotationRep.rep == rep)
        for period, count, current in (
            (RotationRep.day, RotationRep.today, day),
            (RotationRep.week, RotationRep.this_week, week),
        ):
            db.execute(
                update(reps)
                .where(*mine, period == current)
                .values({count.key: case((count + step < 0, 0), else_=count + step)})
            )
            if step > 0:  # an earlier period: this lead starts the current one
                db.execute(
                    update(reps)
                    .where(*mine, period != current)
                    .values({period.key: current, count.key: 1})
                )
    return str(latest[0]), str(latest[1])
