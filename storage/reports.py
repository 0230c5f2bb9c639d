"""The report's queries: a period's leads counted in the database, by segment × source × rep.

The rows are the period's cycles (storage/cycles.py: each a time range on an index) and its
escalations (`ix_escalations_fired_at`), so a week's report costs the week, not the history.
The counts are SQL aggregates (an aggregate FILTER); the stage times of the period's MQLs are
read as rows, because business-time durations need the team's calendar (bot/domain/report.py
turns them into medians and percentiles).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    Integer,
    and_,
    any_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    text,
    type_coerce,
)

from bot.domain.effects import Effect
from bot.domain.lead import Stage
from bot.domain.report import (
    AMOUNTS,
    NOT_ACCEPTED,
    RESOLVED_WITHOUT_ATTEMPTS,
    AttemptStandard,
    Counts,
    Facts,
    Group,
    Period,
    Times,
)
from storage.cycles import Cycles, cycles_in
from storage.db import Database, upsert_insert
from storage.outbox import write_effects
from storage.tables import (
    FIRED,
    HANDOVERS,
    EscalationRow,
    EventRow,
    LeadRow,
    ReportRun,
    SlaVersion,
    table,
)

LEADS = LeadRow.__table__
_INSTANT = LEADS.c.received_at.type


@dataclass(frozen=True)
class Filter:
    """Which of a period's leads a report covers (None: all)."""

    segment: str | None = None
    source: str | None = None
    rep: str | None = None

    def conditions(self, lead: Any = LEADS.c) -> list[Any]:
        """The filter on rows with `lead`'s columns (a lead's row, or a cycle's)."""
        found = []
        if self.segment is not None:
            found.append(lead.segment == self.segment)
        if self.source is not None:
            found.append(lead.source == self.source)
        if self.rep is not None:
            found.append(lead.owner == self.rep)
        return found

    def keeps(self, group: Group) -> bool:
        """Whether a group of counts is the filter's (a rep's own: see `handed_over`)."""
        return self.rep is None or group.rep == self.rep

    @property
    def any(self) -> bool:
        return any(value is not None for value in (self.segment, self.source, self.rep))


# The events that take a lead from the rep who had it (their `from`: that rep, or the one it
# was suggested to while unclaimed): a reassignment (a manager's, the sweep's, the CRM's), an
# offer to the pool while the rep is away, and a claim by anyone but the rep the lead was held
# for. Written as the predicate of their partial index (migration 0032), a constant: a bound
# parameter proves nothing to a planner.
_HANDOVERS = {dialect: text(f"({where})") for dialect, where in HANDOVERS.items()}


def first_touch_due(lead: Any) -> Any:
    """The first-touch deadline a cycle is measured against: none (out of first-touch
    compliance, neither on time nor missed) when it was rejected (Not a fit, Bad data) by that
    deadline without a touch. Seed 001 sets sales "first-response time" apart from "a maximum
    time-to-disposition for unqualified leads", and seed 002's "Bad Data - Wrong
    Contact/Company" is an outcome with nobody to contact: a lead disqualified inside its
    window was dealt with in time, and is measured by feedback and final disposition instead.
    Rejected after the deadline without a touch, it had waited past it: a miss."""
    due = lead.first_touch_due_at
    rejected_untouched = and_(
        lead.first_touch_at.is_(None),
        lead.dispositioned_at <= due,
        lead.stage.in_([stage.value for stage in NOT_ACCEPTED]),
    )
    return case((rejected_untouched, null()), else_=due)


# The deadlines the by-rep table charges to the rep who had the lead when each ran: each
# clock's counts (those of `_deadline_counts`), its answer and its deadline (`_clocks`).
CLOCKS = {
    "touch": ("touch_due", "touched_on_time"),
    "feedback": ("feedback_due", "feedback_on_time"),
    "final": ("final_due", "final_on_time"),
}


def _clocks(lead: Any, dues: Mapping[str, Any] | None = None) -> dict[str, tuple[Any, Any]]:
    """Each clock of `CLOCKS` as (the answer that stops it, its deadline) on rows `lead`: the
    first touch (a rejection untouched in its window: no deadline, `first_touch_due`), the
    first feedback (any disposition, "progressing" too: `disposition_deadline`) and the final
    disposition (seed 001: "a maximum time-to-disposition"). `dues`: a clock's deadline in
    the place of the row's (an offer's kept deadline: `cycle_dues`)."""
    dues = dues or {}
    return {
        "touch": (lead.first_touch_at, first_touch_due(lead)),
        "feedback": (lead.feedback_at, dues.get("feedback", lead.disposition_due_at)),
        "final": (lead.dispositioned_at, dues.get("final", lead.final_due_at)),
    }


def _deadline_counts(
    lead: Any, now: Any, dues: Mapping[str, Any] | None = None
) -> dict[str, tuple[Any, ...]]:
    """The conditions of each clock's counts (`CLOCKS`) on rows `lead`, as of `now`: due
    (answered, or past the deadline by then) and answered by the deadline (`dues`: as
    `_clocks`). The team's counts (`_counts_query`) and the by-rep moves (`handed_over`) both
    read them from here, so the by-rep table adds up to the team's figures."""
    clocks = _clocks(lead, dues)
    touch_due, touched = first_touch_due(lead), lead.first_touch_at
    feedback, feedback_due = clocks["feedback"]
    closed, final_due = clocks["final"]
    return {
        # First-touch compliance: a lead rejected untouched inside its window is out of it.
        "touch_due": (touch_due.is_not(None), touched.is_not(None) | (touch_due <= now)),
        "touched_on_time": (touched.is_not(None), touched <= touch_due),
        # The first feedback (any disposition, "progressing" too) within disposition_deadline.
        "feedback_due": (
            lead.claimed_at.is_not(None),
            feedback_due.is_not(None),
            feedback.is_not(None) | (feedback_due <= now),
        ),
        "feedback_on_time": (
            feedback.is_not(None),
            feedback_due.is_not(None),
            feedback <= feedback_due,
        ),
        # The final disposition within its deadline (seed 001: a maximum time to disposition).
        "final_due": (final_due.is_not(None), closed.is_not(None) | (final_due <= now)),
        "final_on_time": (closed.is_not(None), final_due.is_not(None), closed <= final_due),
    }


# The deadlines an offer to the pool while the rep is away clears after they had run (answered
# or passed), kept in its event (bot/services/sweep.py `kept_deadlines`), by clock.
KEPT = {"feedback": "feedback_due", "final": "final_due"}
_OFFERS = EventRow.__table__.alias("offers")


def _event_instant(dialect: str, value: Any) -> Any:
    """An ISO UTC time an event keeps (`2026-11-26T00:05:00.000000+00:00`) as a stored time:
    PostgreSQL casts it; SQLite compares the text it stores (`2026-11-26 00:05:00.000000`)."""
    if dialect == "postgresql":
        return cast(value, _INSTANT)
    return type_coerce(func.replace(func.substr(value, 1, 26), "T", " "), _INSTANT)


def _kept_dues(lead: Cycles, dialect: str, clocks: Iterable[str]) -> dict[str, Any]:
    """Each of `clocks` in `KEPT`: the deadline the first offer of cycle rows `lead` kept
    (NULL: none). An offer while the rep is away clears the lead's feedback and final
    deadlines (the next claim sets new ones), but one that had already run stays the cycle's:
    a miss stays a miss, and an answer in time stays one, of the rep who had the lead then
    (seed 003: "The SLA isn't a punishment device. The point is shared accountability"; nor
    is a miss to be lost by the lead changing hands)."""
    offer = _OFFERS.c  # its own name: the handovers' lookup reads `events` in the same query
    dues = {}
    for clock, key in KEPT.items():
        if clock not in clocks:
            continue
        kept = offer.data[key].as_string()
        dues[clock] = (
            select(_event_instant(dialect, kept))
            .where(
                offer.lead_id == lead.lead_id,
                offer.type == "offered",
                # Only a claimed cycle has deadlines an offer keeps (it keeps them when it
                # releases a claimed lead), and from its first claim: a cycle that ended with
                # no disposition (nurtured at intake) has no end to bound a later cycle's by.
                offer.at >= lead.claimed_at,
                lead.dispositioned_at.is_(None) | (offer.at <= lead.dispositioned_at),
                kept.is_not(None),
            )
            .order_by(offer.at, offer.id)
            .limit(1)
            # Tied to the cycle's row, whatever else reads `events` around it.
            .correlate_except(_OFFERS)
            .scalar_subquery()
        )
    return dues


# The columns of a cycle row the by-rep moves read (`handed_over`): its group, its clocks'.
_HANDED_COLUMNS = (
    *("segment", "source", "owner", "campaign", "lead_id", "cycle", "stage", "claimed_at"),
    *("first_touch_due_at", "first_touch_at", "disposition_due_at", "feedback_at"),
    *("final_due_at", "dispositioned_at"),
)


def cycle_dues(
    lead: Cycles, dialect: str, clocks: Iterable[str], *where: Any
) -> tuple[Cycles, dict[str, Any]]:
    """Cycle rows `lead` that meet `where` (and `lead.where`), and the deadlines of those of
    `clocks` in `KEPT` on them: the one the cycle's first offer kept (`_kept_dues`), else
    the row's. The rows are then a CTE that looks the kept deadlines up once per row,
    MATERIALIZED so that neither database folds it into the query that reads it: there each
    deadline is read some seven times (its counts, and the moment its clock ran), and the
    lookup inlined in each read cost a handed-over row fourteen lookups."""
    kept = _kept_dues(lead, dialect, clocks)
    if not kept:
        return Cycles(lead.columns, [*lead.where, *where]), {}
    found = (
        select(
            *[lead[name].label(name) for name in _HANDED_COLUMNS],
            *[due.label(f"kept_{clock}") for clock, due in kept.items()],
        )
        .where(*lead.where, *where)
        .cte("handed")
        .prefix_with("MATERIALIZED")
    )
    rows = Cycles({name: found.c[name] for name in _HANDED_COLUMNS}, [])
    own = {"feedback": rows.disposition_due_at, "final": rows.final_due_at}
    dues = {clock: func.coalesce(found.c[f"kept_{clock}"], own[clock]) for clock in kept}
    return rows, dues


def handed_over(
    lead: Cycles, since: datetime, as_of: datetime, dialect: str, clocks: Iterable[str] = CLOCKS
) -> Any:
    """The rows of one kind of the period's cycles (from `since`) that were handed over since
    it began, each with, for each of `clocks` (`CLOCKS`: first touch, feedback, final
    disposition), `<clock>_rep`: the rep who had the lead when that clock ran (at its answer,
    if it came by the deadline, else at the deadline), when a handover took it from them at or
    after that: the `from` of the first one until the cycle closed ('' when it had nobody; a
    claim's is the rep the lead was held for); NULL when none came after it (its owner answers
    for it). With that clock's counts (`_deadline_counts`), 0 or 1 each. Only the handovers
    since the period began are read (a range of `ix_events_handovers`), and their leads
    looked up by key, so the query costs those leads, not the period's every lead: one
    lookup of the lead's first handover after each clock ran (on `ix_events_lead_at`).

    The feedback and final clocks are counted by the deadlines an offer kept (`cycle_dues`:
    looked up once per row), and also as the team's counts read the row (`<name>_was`), so
    that the team's figures take the difference (`_charges`)."""
    handover = _HANDOVERS[dialect]
    now = literal(as_of, _INSTANT)
    since_began = (handover, EventRow.at >= since)
    if dialect == "postgresql":  # probed on the key (a semi-join hashed the period's leads)
        ids = select(func.array_agg(EventRow.lead_id)).where(*since_began)
        handed = lead.lead_id == any_(cast(ids.scalar_subquery(), ARRAY(BigInteger)))
    else:  # SQLite looks each one up by its rowid already
        handed = lead.lead_id.in_(select(EventRow.lead_id).where(*since_began))
    clocks = tuple(clocks)
    row, dues = cycle_dues(lead, dialect, clocks, handed)
    conditions = _deadline_counts(row, now, dues)
    was = _deadline_counts(row, now)
    every = _clocks(row, dues)
    columns, deadlines = [], []
    for clock in clocks:
        answered, due = every[clock]
        deadlines.append(due.is_not(None))
        if clock in KEPT:
            for name in CLOCKS[clock]:
                columns.append(case((and_(*was[name]), 1), else_=0).label(f"{name}_was"))
        ran = case((answered <= due, answered), else_=due)
        first = (
            select(func.coalesce(EventRow.data["from"].as_string(), ""))
            .where(
                EventRow.lead_id == row.lead_id,
                EventRow.at >= ran,
                row.dispositioned_at.is_(None) | (EventRow.at <= row.dispositioned_at),
                handover,
            )
            .order_by(EventRow.at, EventRow.id)
            .limit(1)
            .scalar_subquery()
        )
        columns.append(first.label(f"{clock}_rep"))
        for name in CLOCKS[clock]:
            columns.append(case((and_(*conditions[name]), 1), else_=0).label(name))
    return select(
        row.lead_id.label("lead_id"),
        row.cycle.label("cycle"),
        *_group_columns(row),
        *columns,
    ).where(*row.where, or_(*deadlines))


# A clock's counts (`CLOCKS`) on one cycle, by name: plain integers, added up by group once
# (`_Changes`), since a quarter has tens of thousands of them and a whole `Counts` each (and
# one more to take it away) cost the quarter's report about a second.
Moved = dict[str, int]
Charges = dict[tuple[int, int, str], tuple[Group, str | None, Moved]]
Kept = list[tuple[Group, Moved]]


def _charges(
    db: Connection,
    kinds: list[Cycles],
    since: datetime,
    as_of: datetime,
    clocks: tuple[str, ...] = tuple(CLOCKS),
) -> tuple[Charges, Kept]:
    """The period's cycles whose deadlines (`clocks`) a rep other than their owner answers
    for, by (lead, cycle, clock): the owner's group, that rep (None: nobody had it) and the
    counts that go; and what the deadlines an offer kept (`cycle_dues`) change in the team's
    counts, by the owner's group."""
    found, kept = {}, []
    for kind in kinds:
        query = handed_over(kind, since, as_of, db.dialect.name, clocks)
        for row in db.execute(query).mappings():
            group = _group(row)
            for clock in clocks:
                names = CLOCKS[clock]
                counts = {name: row[name] for name in names}
                if clock in KEPT:
                    was = {name: row[f"{name}_was"] for name in names}
                    if counts != was:
                        kept.append((group, {name: counts[name] - was[name] for name in names}))
                rep = row[f"{clock}_rep"]
                if rep is None or (rep or None) == group.rep:
                    continue
                found[(row["lead_id"], row["cycle"], clock)] = (group, rep or None, counts)
    return found, kept


class _Changes:
    """What the handovers change in the counts, by group, added up as plain integers and
    applied to the groups' `Counts` once (`into`). Every group changed gets a row of counts,
    as adding a `Counts` to it each time did, in the order they were first changed."""

    def __init__(self) -> None:
        self.by_group: dict[Group, dict[str, int]] = {}

    def add(self, group: Group, moved: Moved, sign: int = 1) -> None:
        found = self.by_group.get(group)
        if found is None:
            found = self.by_group[group] = {}
        for name, value in moved.items():
            found[name] = found.get(name, 0) + sign * value

    def into(self, counts: dict[Group, Counts]) -> None:
        for group, change in self.by_group.items():
            counts[group] = counts.get(group, Counts()) + Counts(**change)


def _count(*conditions: Any) -> Any:
    """The rows that meet every condition (an aggregate FILTER: cheaper than SUM(CASE …))."""
    return func.count().filter(and_(*conditions))


def _days(dialect: str, start: Any, end: Any) -> Any:
    """Calendar days from `start` to `end` (0 when `end` is not after it), in SQL."""
    if dialect == "postgresql":
        spent = func.date_part("epoch", end - start) / 86400.0
    else:
        spent = func.julianday(end) - func.julianday(start)
    return case((end > start, spent), else_=0.0)


def _velocity_columns(dialect: str, lead: Any, accepted: tuple[Any, ...]) -> dict[str, Any]:
    """Lead velocity as sums of calendar days and counts of leads, step by step (seed 002),
    over cycle rows `lead` (the MQL's creation: its cycle's start)."""
    created = lead.started_at
    sql = (lead.mql.is_(True), lead.stage == Stage.SQL.value, lead.dispositioned_at.is_not(None))
    steps = {
        "mql_to_sal": ((lead.mql.is_(True), *accepted[2:]), created, lead.claimed_at),
        "sal_to_sql": (
            (*sql, lead.claimed_at.is_not(None)),
            lead.claimed_at,
            lead.dispositioned_at,
        ),
        "sql_to_opportunity": (
            (*sql, lead.opportunity_at.is_not(None)),
            lead.dispositioned_at,
            lead.opportunity_at,
        ),
        "opportunity_to_won": (
            (lead.mql.is_(True), lead.opportunity_at.is_not(None), lead.won_at.is_not(None)),
            lead.opportunity_at,
            lead.won_at,
        ),
    }
    columns: dict[str, Any] = {}
    for step, (conditions, begins, ends) in steps.items():
        days = _days(dialect, begins, ends)
        columns[f"{step}_days"] = func.coalesce(
            func.sum(case((and_(*conditions), days), else_=0.0)), 0.0
        )
        columns[f"{step}_leads"] = _count(*conditions)
    return columns


# A hash of the groups needs this much memory by PostgreSQL's estimate of a quarter's groups
# (tens of thousands: each grouped column's values multiplied; a quarter holds a few hundred):
# below it, the planner sorts the quarter's rows instead, on disk, at twice the time.
GROUPS_MEMORY = "32MB"


def _hashed_groups(db: Connection) -> None:
    """Let PostgreSQL group the counts in memory (`GROUPS_MEMORY`), for this transaction."""
    if db.dialect.name == "postgresql":
        db.exec_driver_sql(f"SET LOCAL work_mem = '{GROUPS_MEMORY}'")


def _counts_query(lead: Cycles, as_of: datetime, standard: AttemptStandard, dialect: str) -> Any:
    """The counts of one kind of the period's cycle rows (storage/cycles.py)."""
    now = literal(as_of, _INSTANT)
    closed_before = literal(standard.closed_before, _INSTANT)
    deadlines = _deadline_counts(lead, now)
    posted = (lead.mql.is_(True), lead.posted_at.is_not(None))
    accepted = (
        *posted,
        lead.claimed_at.is_not(None),
        lead.stage.not_in([stage.value for stage in NOT_ACCEPTED]),
    )
    window_closed = (
        lead.mql.is_(True),
        lead.claimed_at.is_not(None),
        (lead.dispositioned_at.is_not(None)) | (lead.claimed_at <= closed_before),
    )
    columns = {
        "received": func.count(),
        "dispositioned": _count(lead.dispositioned_at.is_not(None)),  # the disposition mix
        # ...with the open leads whose feedback so far is "Contacted – progressing"
        "progressing": _count(lead.feedback_at.is_not(None), lead.dispositioned_at.is_(None)),
        "mql": _count(lead.mql.is_(True)),
        "complete": _count(lead.complete.is_(True)),
        "complete_known": _count(lead.complete.is_not(None)),
        "icp": _count(lead.icp.is_(True)),
        "icp_known": _count(lead.icp.is_not(None)),
        "posted": _count(*posted),
        "claimed": _count(*posted, lead.claimed_at.is_not(None)),
        # Acceptance's base: a lead still inside its claim window is not "not accepted" yet.
        "accept_due": _count(
            *posted,
            lead.claimed_at.is_not(None) | lead.claim_due_at.is_(None) | (lead.claim_due_at <= now),
        ),
        "accepted": _count(*accepted),
        "sql": _count(*accepted, lead.stage == Stage.SQL.value),
        # First touch, feedback and the final disposition, each by its deadline (the by-rep
        # moves, `handed_over`, count them by the same conditions).
        "touch_due": _count(*deadlines["touch_due"]),
        "touched_on_time": _count(*deadlines["touched_on_time"]),
        "attempts_closed": _count(*window_closed),
        "attempts_covered": _count(
            *window_closed,
            _standard_met(lead, now, standard)
            | lead.stage.in_([stage.value for stage in RESOLVED_WITHOUT_ATTEMPTS]),
        ),
        "feedback_due": _count(*deadlines["feedback_due"]),
        "feedback_on_time": _count(*deadlines["feedback_on_time"]),
        "final_due": _count(*deadlines["final_due"]),
        "final_on_time": _count(*deadlines["final_on_time"]),
        "sqo": _count(*accepted, lead.stage == Stage.SQL.value, lead.opportunity_at.is_not(None)),
        "opportunities": _count(lead.mql.is_(True), lead.opportunity_at.is_not(None)),
        "won": _count(lead.mql.is_(True), lead.won_at.is_not(None)),
        "lost": _count(lead.mql.is_(True), lead.lost_at.is_not(None)),
        "pipeline": _amount(lead, lead.mql.is_(True), lead.opportunity_at.is_not(None)),
        "won_amount": _amount(lead, lead.mql.is_(True), lead.won_at.is_not(None)),
        "fit_rated": _count(lead.fit_rating.is_not(None)),
        "fit_total": func.coalesce(func.sum(lead.fit_rating), 0),
        "timing_rated": _count(lead.timing_rating.is_not(None)),
        "timing_total": func.coalesce(func.sum(lead.timing_rating), 0),
        **_velocity_columns(dialect, lead, accepted),
        # Recycle → SQL: the cycles that began because the lead came back from recycling.
        "recycled": _count(lead.recycled.is_(True)),
        "recycled_sql": _count(lead.recycled.is_(True), lead.stage == Stage.SQL.value),
    }
    # Grouped by disposition too, so the disposition mix comes from the same pass over the
    # period (a quarter's second scan cost a third as much again); and apart, the leads
    # nurtured at intake (never MQLs): by rep, they are not "(unclaimed)".
    nurtured = lead.mql.is_(False).label("nurtured")
    group = (*_group_columns(lead), nurtured, lead.disposition_code, lead.disposition_reason)
    labelled = [c.label(n) for n, c in columns.items()]
    return select(*group, *labelled).where(*lead.where).group_by(*group)


def _group_columns(lead: Any) -> tuple[Any, ...]:
    return (lead.segment, lead.source, lead.owner, lead.campaign)


def _amount(lead: Any, *conditions: Any) -> Any:
    return func.coalesce(func.sum(case((and_(*conditions), lead.amount), else_=0)), 0)


def _standard_met(lead: Any, as_of: Any, standard: AttemptStandard) -> Any:
    """The follow-up standard met by `as_of` (bot/domain/cadence.py: every attempt counts),
    as bot/domain/lead.py's `follow_up_met` reads it: a lead whose cadence was stored under an
    older rule is judged by its count of attempts (all logged before Handoff kept the cadence,
    migration 0014: none counted; or stored when attempts close together did not count, fewer
    counted than logged, unless the standard asks for channels)."""
    older = lead.touches_counted == 0
    if standard.channels is None:
        older = older | (lead.touches_counted < lead.attempts)
    return (lead.follow_up_met_at <= as_of) | (older & (lead.attempts >= standard.min_attempts))


# The stage times of the period's MQLs, as seconds since the epoch: tens of thousands of rows
# convert several times faster from floats than through the datetime type (SQLite stores text).
# A cycle's start stands for its arrival and its MQL creation both (read once).
_STAGE_TIMES = (
    "started_at",
    "posted_at",
    "claimed_at",
    "first_touch_at",
    "first_touch_due_at",
    "dispositioned_at",
)


def epoch(db: Connection, column: Any) -> Any:
    if db.dialect.name == "postgresql":
        return func.date_part("epoch", column)  # double precision
    # julianday's double carries ~40 µs of noise at today's dates: to the millisecond, in SQL
    # (whole milliseconds through an integer: several times cheaper than ROUND(x, 3)).
    milliseconds = cast((func.julianday(column) - 2440587.5) * 86400000.0 + 0.5, Integer)
    return milliseconds / 1000.0


def _times_query(db: Connection, lead: Cycles) -> Any:
    """The stage times of one kind of the period's MQL cycle rows (and the cycle's key); the
    first-touch deadline as first-touch compliance measures it (`first_touch_due`)."""
    measured = {"first_touch_due_at": first_touch_due(lead)}
    epochs = [epoch(db, measured.get(name, lead[name])) for name in _STAGE_TIMES]
    found = select(*_group_columns(lead), *epochs, lead.tier, lead.lead_id, lead.cycle)
    return found.where(*lead.where, lead.mql.is_(True))


def _group(row: Any) -> Group:
    # `in`, not `row.get`: a row mapping without the key raises inside `get` (the handovers'
    # rows have no `nurtured`), ten times the cost, once per handed-over cycle.
    return Group(
        row["segment"],
        row["source"] or "(none)",
        row["owner"],
        row["campaign"] or "(none)",
        "nurtured" in row and bool(row["nurtured"]),
    )


def instant(seconds: float | None) -> datetime | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(round(float(seconds), 3), UTC)


SLICE = 2_000  # stage-time rows turned into `Times` between two pauses (a few ms)


def _no_pause() -> None:
    pass


def _stage_times(
    rows: Iterable[Any],
    groups: dict[tuple[Any, ...], Group | None],
    moved: dict[tuple[int, int], str | None],
    keeps: Callable[[Group], bool],
) -> Iterator[Times]:
    """Each stage-time row as `Times`, its group shared with the rows of the same (`groups`:
    None for a group the filter does not keep, whose rows are left out); a cycle in `moved`
    goes to the rep who answers for its first touch (speed to lead)."""
    for row in rows:
        seg, src, owner, campaign, received, posted, claimed, touched, due, closed = row[:10]
        if moved and (row[11], row[12]) in moved:
            owner = moved[(row[11], row[12])]
        key = (seg, src, owner, campaign)
        found = groups.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = Group(seg, src or "(none)", owner, campaign or "(none)")
            found = groups[key] = found if keeps(found) else None
        if found is not None:
            yield Times(found, received, posted, claimed, touched, due, received, row[10], closed)


_UNSEEN = Group("", "", None, "")  # a group `_stage_times` has not met yet


def _slices(db: Connection, query: Any) -> Iterator[Sequence[Any]]:
    """The rows of `query` in slices of `SLICE`. SQLite's come straight from its cursor, as
    plain tuples (the stage times need no conversion: numbers and text), a third cheaper on a
    quarter's 223,000 rows than through SQLAlchemy's rows; PostgreSQL's stream from a
    server-side cursor."""
    if db.dialect.name != "sqlite":
        yield from db.execute(query.execution_options(yield_per=SLICE)).partitions(SLICE)
        return
    result = db.execute(query)
    try:
        while rows := result.cursor.fetchmany(SLICE):
            yield rows
    finally:
        result.close()


class ReportStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def both_periods(
        self,
        period: Period,
        earlier: Period,
        as_of: datetime,
        standard: AttemptStandard,
        where: Filter,
        durations: bool,
        pause: Callable[[], None] = _no_pause,
    ) -> tuple[Facts, Facts]:
        """A report's two reads at once: `period`, and `earlier` to compare with (its stage
        times only with `durations`; `pause`: `facts`')."""
        return await asyncio.gather(
            self.facts(period.start, period.end, as_of, standard, where, pause=pause),
            self.facts(earlier.start, earlier.end, as_of, standard, where, durations, pause=pause),
        )

    async def facts(
        self,
        start: datetime,
        end: datetime,
        as_of: datetime,
        standard: AttemptStandard,
        where: Filter,
        with_times: bool = True,
        *,
        pause: Callable[[], None] = _no_pause,
    ) -> Facts:
        """What the database says about the leads received in [start, end); `with_times`:
        with each MQL's stage times (a comparison period of a month or more goes without).
        `pause()` is called before each query and between slices of `SLICE` stage-time rows
        (the report worker gives way to Slack's requests there)."""
        escalation_query = select(EscalationRow.ladder, EscalationRow.action, func.count()).where(
            EscalationRow.at >= start, EscalationRow.at < end, text(f"escalations.{FIRED}")
        )
        if where.any:
            escalation_query = escalation_query.join(
                LeadRow, LeadRow.id == EscalationRow.lead_id
            ).where(*where.conditions())
        escalation_query = escalation_query.group_by(EscalationRow.ladder, EscalationRow.action)
        cycles = cycles_in(start, end, where.conditions)
        # A rep's report counts the deadlines they answer for on leads others own now.
        everyone = cycles_in(start, end, replace(where, rep=None).conditions)

        def work(db: Connection, charged: tuple[Charges, Kept] | None = None) -> Facts:
            counts: dict[Group, Counts] = {}
            mix: dict[tuple[str, str | None], int] = {}
            _hashed_groups(db)
            for rows in cycles:
                pause()
                query = _counts_query(rows, as_of, standard, db.dialect.name)
                for row in db.execute(query).mappings():
                    group = _group(row)
                    values: dict[str, Any] = {
                        name: (float if name in AMOUNTS else int)(row[name])
                        for name in Counts.__dataclass_fields__
                        if name in row
                    }
                    counts[group] = counts.get(group, Counts()) + Counts(**values)
                    if row.get("dispositioned"):
                        key = (str(row["disposition_code"]), row["disposition_reason"])
                        mix[key] = mix.get(key, 0) + int(row["dispositioned"])
            pause()
            charges, kept = charged if charged is not None else _charges(db, everyone, start, as_of)
            changes = _Changes()
            # A deadline that had run when an offer cleared it stays the cycle's.
            for group, change in kept:
                if where.keeps(group):
                    changes.add(group, change)
            # Each deadline a rep other than the owner answers for goes to them (by rep).
            answering: dict[tuple[Group, str | None], Group] = {}
            for group, rep, moved in charges.values():
                if where.keeps(group):
                    changes.add(group, moved, -1)
                answers = answering.get((group, rep))
                if answers is None:
                    answers = answering[(group, rep)] = replace(group, rep=rep)
                if where.keeps(answers):
                    changes.add(answers, moved)
            changes.into(counts)
            pause()
            fired = {(str(lad), str(act)): int(n) for lad, act, n in db.execute(escalation_query)}
            return Facts(counts, mix, fired, [])

        def stage_times(db: Connection, charges: Charges) -> list[Times]:
            groups: dict[tuple[Any, ...], Group | None] = {}
            times: list[Times] = []
            # Speed to lead goes with the first touch.
            moved = {
                (lead, cycle): rep
                for (lead, cycle, clock), (_, rep, _) in charges.items()
                if clock == "touch"
            }
            for kind in everyone:  # a rep's: theirs by first touch (`keeps`), not by owner
                pause()
                # Streamed, so that turning them into Python is sliced too.
                for rows in _slices(db, _times_query(db, kind)):
                    times += _stage_times(rows, groups, moved, where.keeps)
                    pause()
            return times

        if not with_times:
            return await self.db.read(work)

        def handed(db: Connection) -> tuple[Charges, Kept]:
            pause()
            return _charges(db, everyone, start, as_of)

        # The handovers are read once, for the counts and the stage times (speed to lead goes
        # with the first touch): a second pass of the first touch alone cost them again. Then
        # the counts and the stage times are read at once (on SQLite, on two readers).
        charged = await self.db.read(handed)
        facts, times = await asyncio.gather(
            self.db.read(lambda db: work(db, charged)),
            self.db.read(lambda db: stage_times(db, charged[0])),
        )
        return replace(facts, times=times)


class RunStore:
    """Weekly digests and alerts: recorded once per (kind, period) with their messages."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def send_once(
        self, kind: str, period: str, effects: Sequence[Effect], now: datetime
    ) -> bool:
        """Record the run and write its effects in one transaction; False if it was sent."""

        def work(db: Connection) -> bool:
            insert_row = upsert_insert(db)
            recorded = db.execute(
                insert_row(table(ReportRun))
                .values(kind=kind, period=period, at=now)
                .on_conflict_do_nothing()
                .returning(ReportRun.kind)
            ).first()
            if recorded is None:
                return False
            write_effects(db, effects, now)
            return True

        return await self.db.run(work)

    async def send(self, effects: Sequence[Effect], now: datetime) -> None:
        """Write effects (a requester's charts) with no once-per-period record."""
        await self.db.run(lambda db: write_effects(db, effects, now))

    async def running_before(self, at: datetime) -> bool:
        """Whether Handoff had started by `at` (its first SLA version was recorded before it):
        a post due then was this installation's to send."""
        statement = select(SlaVersion.version).where(SlaVersion.loaded_at < at).limit(1)
        return await self.db.run(lambda db: db.execute(statement).first() is not None)

    async def sent(self, kind: str, period: str) -> bool:
        statement = select(ReportRun.kind).where(ReportRun.kind == kind, ReportRun.period == period)
        return await self.db.run(lambda db: db.execute(statement).first() is not None)

    async def rejections(
        self, start: datetime, end: datetime
    ) -> list[tuple[str, str, str, str | None, int]]:
        """The leads rejected in the period by source, campaign, code and reason (most first)."""
        statement = (
            select(
                func.coalesce(LeadRow.source, "(none)"),
                func.coalesce(LeadRow.campaign, "(none)"),
                LeadRow.disposition_code,
                LeadRow.disposition_reason,
                func.count(),
            )
            .where(
                LeadRow.dispositioned_at >= start,
                LeadRow.dispositioned_at < end,
                LeadRow.stage == Stage.REJECT.value,
            )
            .group_by(
                LeadRow.source,
                LeadRow.campaign,
                LeadRow.disposition_code,
                LeadRow.disposition_reason,
            )
            .order_by(func.count().desc())
        )
        return await self.db.run(
            lambda db: [
                (str(src), str(camp), str(code), reason, int(n))
                for src, camp, code, reason, n in db.execute(statement)
            ]
        )
