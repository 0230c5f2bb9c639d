"""A lead's cycles: each one it has ended kept as it stood, and every cycle as a report reads it.

A lead back from recycling or nurture starts a new cycle on its row (bot/domain/comeback.py
`new_cycle` clears the stage times). Before that update, in its transaction, `keep_ended`
copies the cycle that ends into `lead_cycles`, where it is never updated. A report counts each
cycle in the week it began: the first at the lead's arrival, a later one when it came back
(`cycles_in`), so a lead coming back never rewrites a week already reported (SPEC: "Stage
timestamps are never overwritten").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    case,
    false,
    func,
    insert,
    select,
    text,
)

from storage.tables import RECYCLED, EventRow, LeadCycleRow, LeadRow, table

# The report facts a cycle keeps, by the same names on the lead's row and in `lead_cycles`.
FACTS = (
    "segment",
    "source",
    "campaign",
    "owner",
    "tier",
    "stage",
    "mql",
    "complete",
    "icp",
    "attempts",
    "touches_counted",
    "disposition_code",
    "disposition_reason",
    "posted_at",
    "claim_due_at",
    "claimed_at",
    "first_touch_due_at",
    "first_touch_at",
    "follow_up_met_at",
    "disposition_due_at",
    "feedback_at",
    "final_due_at",
    "dispositioned_at",
    "opportunity_at",
    "won_at",
    "lost_at",
    "amount",
    "fit_rating",
    "timing_rating",
)

# When the lead's current cycle began, as MQL creation (response time and velocity start
# here): the first at the lead's arrival, which a CRM that synced late sends as `received_at`;
# a later one when it came back.
STARTED = case(
    (LeadRow.cycle > 1, func.coalesce(LeadRow.cycle_started_at, LeadRow.received_at)),
    else_=LeadRow.received_at,
)
_BEFORE = LeadCycleRow.__table__.alias("before")


def came_back(lead_id: Any, cycle: Any, started_at: Any) -> Any:
    """Whether cycle `cycle` of lead `lead_id`, begun at `started_at`, came back from recycling
    or nurture (Recycle → SQL counts it): the cycle before it was closed by sales (Unable to
    contact, Bad timing, Needs nurturing: only those routes back to marketing start another
    cycle), however the lead returned: the sweep after `recycle_after`, its re-engagement
    date, or marketing sending it again so that it re-qualified. Seed 001 gives the KPI to the
    whole "Recycling/Nurture" area ("Defined recycle stages with SLAs for re-engagement" →
    "Recycle→SQL rate"), and seed 003 calls the route "recycle to nurture": one route back. A
    lead nurtured at intake that qualifies later was never sales' (its first cycle has no
    disposition): a first-time MQL, not a recycled one.

    Read from the cycle before, kept as it ended (one lookup by its key); when it ended before
    `lead_cycles` kept cycles (migration 0026), from the audit trail: a "dispositioned" event
    of the lead before this cycle began (only a cycle after the first can be closed to start
    another, and only by a disposition, so one before it means the cycle before was). Both
    outlive an erasure: it leaves the kept cycles as they are, and each event's type and time."""
    before = select(_BEFORE.c.dispositioned_at).where(
        _BEFORE.c.lead_id == lead_id, _BEFORE.c.cycle == cycle - 1
    )
    dispositioned = (
        select(EventRow.id)
        .where(
            EventRow.lead_id == lead_id,
            EventRow.at < started_at,
            EventRow.type == "dispositioned",
        )
        .exists()
    )
    return and_(
        cycle > 1,
        before.where(_BEFORE.c.dispositioned_at.is_not(None)).exists()
        | (~before.exists() & dispositioned),
    )


# The lead's current cycle came back from recycling or nurture (`came_back`).
CAME_BACK = came_back(LeadRow.id, LeadRow.cycle, STARTED)


def keep_ended(db: Connection, *where: Any) -> None:
    """Copy the current cycle of the leads `where` selects into `lead_cycles`, before the
    update that starts their next one, with the same conditions (on PostgreSQL the rows are
    locked as they are read, so the update finds them as copied)."""
    kept = select(
        LeadRow.id, LeadRow.cycle, STARTED, CAME_BACK, *[LeadRow.__table__.c[n] for n in FACTS]
    ).where(*where)
    if db.dialect.name == "postgresql":
        kept = kept.with_for_update(of=LeadRow)
    columns = ["lead_id", "cycle", "started_at", "recycled", *FACTS]
    db.execute(insert(table(LeadCycleRow)).from_select(columns, kept))


class Cycles:
    """One kind of cycle row (the leads in their first cycle, those in a later one, the ended
    ones): each fact by name (`rows.claimed_at`, `rows["stage"]`), with `started_at`,
    `recycled`, `cycle` and `lead_id`, and the conditions that select the period's."""

    def __init__(self, columns: dict[str, Any], where: list[Any]) -> None:
        self.columns = columns
        self.where = where

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["columns"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self.columns[name]


def cycles_in(start: Any, end: Any, where: Callable[[Any], list[Any]]) -> list[Cycles]:
    """Every cycle that began in [start, end), ended or current, as three kinds of rows with
    the same names: a report runs its query on each and adds them up (a query straight on
    each table, cheaper than one over their union). `where` gives the conditions on a kind of
    row from its columns (segment, source, owner: a report's filter). Each reads a range of an
    index: the leads in their first cycle by arrival (`ix_leads_received_at`), those in a later
    one by its start (`ix_leads_cycle_started_recycled`), the ended ones by theirs
    (`ix_lead_cycles_started_at`)."""
    leads = LeadRow.__table__.c
    ended = LeadCycleRow.__table__.c
    facts = {name: leads[name] for name in FACTS}
    first = Cycles(
        facts
        | {
            "started_at": leads.received_at,
            "recycled": false(),
            "cycle": leads.cycle,
            "lead_id": leads.id,
        },
        [leads.cycle == 1, leads.received_at >= start, leads.received_at < end],
    )
    later = Cycles(
        facts
        | {
            "started_at": leads.cycle_started_at,
            "recycled": CAME_BACK,
            "cycle": leads.cycle,
            "lead_id": leads.id,
        },
        # The partial index's predicate as a constant: a prepared statement's `cycle > $1`
        # proves nothing to PostgreSQL's planner about its generic plan.
        [text(f"leads.{RECYCLED}"), leads.cycle_started_at >= start, leads.cycle_started_at < end],
    )
    past = Cycles(
        {name: ended[name] for name in (*FACTS, "started_at", "cycle", "lead_id")}
        # As stored (CAME_BACK as it ended), or `came_back`: a cycle stored when only the
        # sweep's comebacks counted is read by today's rule too.
        | {"recycled": ended.recycled | came_back(ended.lead_id, ended.cycle, ended.started_at)},
        [ended.started_at >= start, ended.started_at < end],
    )
    for rows in (first, later, past):
        rows.where += where(rows)
    return [first, later, past]
