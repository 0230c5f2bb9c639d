"""What-if replay: the stored history judged by a proposed SLA file, next to today's.

A replay of facts. Each MQL keeps the times it was really claimed, first touched and
dispositioned; only the tiers, deadlines and escalation ladders change. It does not simulate how
people would have behaved under the other SLA (a stricter ladder reminds people sooner, and they
might have answered sooner). Both columns come from this same replay (today's column replays the
current SLA file), so a difference between them is the files' difference and nothing else.

Per lead and SLA: its tier (`choose_tier` by score and source); its claim and first-touch
deadlines from its clocks' start (the start of its current cycle) and its disposition deadline
from its claim, in the SLA's business time; whether the real times met them; and the ladder steps
that would have fired: each step due before the event that stops its clock (claim stops
`unclaimed`, first touch `no_touch`, disposition `no_feedback`; a disposition stops all three)
and before `now`. Steps of one lead due at the same instant count once, as the strongest (a sweep
fires one step per lead). A fired `reassign` step is a reassignment.

The shares are defined as in the SLA report (bot/domain/report.py): of the leads touched, or
past the deadline by `now`, the share touched by it; likewise claims, and feedback (of the
claimed leads). Leads are grouped by the ISO week they were received in, in the team's zone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from bot.domain.businesstime import BusinessCalendar
from bot.domain.comeback import as_sent, own_score
from bot.domain.escalation import SEVERITY, Window, claim_deadline, claim_window, step_times
from bot.domain.intake import LeadIn
from bot.domain.lead import LeadView
from bot.domain.policy import LADDERS, STEP_ACTIONS, Policy
from bot.domain.report import Period, share, week_of
from bot.domain.routing import Score, choose_tier, route

MAX_WEEKS = 104


@dataclass(frozen=True)
class History:
    """One MQL as stored: the stage times of its current cycle and what picks its tier."""

    received_at: datetime
    started_at: datetime  # when its clocks started: its arrival, or its cycle's return
    claimed_at: datetime | None
    first_touch_at: datetime | None
    dispositioned_at: datetime | None
    score: int
    source: str | None
    owner_zone: str | None = None  # for `clock: owner` (the feedback clock)
    rejected: bool = False  # closed with a `reject` outcome (Not a fit, Bad data)


@dataclass(frozen=True)
class Fired:
    ladder: str
    action: str
    at: datetime


@dataclass(frozen=True)
class Verdict:
    """What one SLA says about one lead. A `met` of None: not measured (still running; for the
    first touch, also a lead rejected untouched by its deadline, as the SLA report counts it)."""

    tier: str
    claim_due: datetime
    first_touch_due: datetime
    disposition_due: datetime | None  # None: never claimed
    claim_met: bool | None
    first_touch_met: bool | None
    feedback_met: bool | None
    fired: tuple[Fired, ...]

    @property
    def reassignments(self) -> int:
        return sum(1 for step in self.fired if step.action == "reassign")


def _met(event: datetime | None, due: datetime, now: datetime) -> bool | None:
    if event is not None and event <= due:
        return True
    return False if event is not None or due <= now else None


def _first_touch_met(
    lead: History, touched: datetime | None, closed: datetime | None, due: datetime, now: datetime
) -> bool | None:
    """As the SLA report measures it (docs/reports.md, storage/reports.py `first_touch_due`): a
    lead rejected without a touch by the file's deadline is neither met nor missed (seed 001
    sets "first-response time" apart from "a maximum time-to-disposition for unqualified
    leads")."""
    if lead.rejected and touched is None and closed is not None and closed <= due:
        return None
    return _met(touched, due, now)


def _first(*instants: datetime | None) -> datetime | None:
    known = [at for at in instants if at is not None]
    return min(known) if known else None


def judge(lead: History, policy: Policy, now: datetime) -> Verdict:
    """What `policy` would have said about `lead` by `now`, from the lead's real times."""
    # As of `now`: what happened later had not happened yet.
    claimed, touched, closed = (
        at if at is not None and at <= now else None
        for at in (lead.claimed_at, lead.first_touch_at, lead.dispositioned_at)
    )
    tier = choose_tier(lead.score, lead.source, policy)
    start, team = lead.started_at, policy.calendar
    claim_at, touch_at = claim_deadline(policy, tier, start), team.add(start, tier.first_touch)
    clocks = [
        (
            Window("unclaimed", start, claim_at, claim_window(tier).clock),
            _first(claimed, closed),
            team,
        ),
        (
            Window("no_touch", start, touch_at, tier.first_touch.clock),
            _first(touched, closed),
            team,
        ),
    ]
    feedback_at = feedback_met = None
    if claimed is not None:
        calendar = policy.calendar_for(lead.owner_zone)
        feedback_at = calendar.add(claimed, policy.disposition_deadline)
        feedback_met = _met(closed, feedback_at, now)
        window = Window("no_feedback", claimed, feedback_at, policy.disposition_deadline.clock)
        clocks.append((window, closed, calendar))
    return Verdict(
        tier=tier.name,
        claim_due=claim_at,
        first_touch_due=touch_at,
        disposition_due=feedback_at,
        claim_met=_met(claimed, claim_at, now),
        first_touch_met=_first_touch_met(lead, touched, closed, touch_at, now),
        feedback_met=feedback_met,
        fired=_fired(clocks, policy, now),
    )


def _fired(
    clocks: list[tuple[Window, datetime | None, BusinessCalendar]], policy: Policy, now: datetime
) -> tuple[Fired, ...]:
    strongest: dict[datetime, Fired] = {}
    for window, stopped, calendar in clocks:
        steps = policy.escalation.ladder(window.ladder)
        for step, at in zip(steps, step_times(window, steps, calendar), strict=True):
            if at > now or (stopped is not None and at >= stopped):
                continue
            held = strongest.get(at)
            if held is None or SEVERITY[step.do] > SEVERITY[held.action]:
                strongest[at] = Fired(window.ladder, step.do, at)
    return tuple(strongest[at] for at in sorted(strongest))


# --- figures ---------------------------------------------------------------------------------


@dataclass
class Ratio:
    """Of the leads due (the event happened, or its deadline passed by `now`), those on time."""

    met: int = 0
    due: int = 0

    def count(self, met: bool | None) -> None:
        if met is not None:
            self.due += 1
            self.met += int(met)

    @property
    def value(self) -> float | None:
        return share(self.met, self.due)


SHARES = ("first_touch", "claim", "feedback")  # the replay's shares, in the order shown


@dataclass
class Figures:
    """What one SLA says about a group of leads."""

    leads: int = 0
    first_touch: Ratio = field(default_factory=Ratio)
    claim: Ratio = field(default_factory=Ratio)
    feedback: Ratio = field(default_factory=Ratio)  # of the claimed leads
    reassignments: int = 0
    escalations: Counter[tuple[str, str]] = field(default_factory=Counter)  # (ladder, action)
    tiers: Counter[str] = field(default_factory=Counter)

    def add(self, verdict: Verdict) -> None:
        self.leads += 1
        self.tiers[verdict.tier] += 1
        self.first_touch.count(verdict.first_touch_met)
        self.claim.count(verdict.claim_met)
        self.feedback.count(verdict.feedback_met)
        self.escalations.update((step.ladder, step.action) for step in verdict.fired)
        self.reassignments += verdict.reassignments

    @property
    def escalated(self) -> int:
        return sum(self.escalations.values())

    def ratio(self, key: str) -> Ratio:
        ratio: Ratio = getattr(self, key)
        return ratio


def last_weeks(now: datetime, zone: str, weeks: int) -> list[Period]:
    """The `weeks` ISO weeks up to and including the one `now` is in, oldest first."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"--weeks {weeks}: replay 1 to {MAX_WEEKS} weeks")
    today = now.astimezone(ZoneInfo(zone)).date()
    return [week_of(today - timedelta(weeks=back), zone) for back in range(weeks - 1, -1, -1)]


class Replay:
    """Today's SLA and a proposed one over the same leads, fed a batch at a time."""

    def __init__(self, today: Policy, proposed: Policy, now: datetime, weeks: int) -> None:
        self.policies = {"today": today, "proposed": proposed}
        self.now = now
        self.weeks = last_weeks(now, today.timezone, weeks)
        self.zone = today.timezone
        self.by_week = {
            name: {week.label: Figures() for week in self.weeks} for name in self.policies
        }
        self.total = {name: Figures() for name in self.policies}

    @property
    def start(self) -> datetime:
        """The leads to read: received from here…"""
        return self.weeks[0].start

    @property
    def end(self) -> datetime:
        """…to here (exclusive)."""
        return min(self.now, self.weeks[-1].end)

    @property
    def empty(self) -> bool:
        return self.total["today"].leads == 0

    def add(self, leads: Iterable[History]) -> None:
        zone = ZoneInfo(self.zone)
        for lead in leads:
            label = week_of(lead.received_at.astimezone(zone).date(), self.zone).label
            for name, policy in self.policies.items():
                verdict = judge(lead, policy, self.now)
                self.by_week[name][label].add(verdict)
                self.total[name].add(verdict)


# --- side by side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One KPI under both SLAs: `key` names it ("mqls", "claim", "escalations.unclaimed.reassign",
    "tiers.hot")."""

    key: str
    unit: str  # "share" or "count"
    today: float | None
    proposed: float | None
    ratios: tuple[Ratio, Ratio] | None = None  # the counts behind a share

    @property
    def change(self) -> float | None:
        if self.today is None or self.proposed is None:
            return None
        return self.proposed - self.today


def rows(today: Figures, proposed: Figures) -> list[Row]:
    """The KPIs side by side: MQLs, the three shares, escalations, reassignments, tiers."""
    found = [Row("mqls", "count", today.leads, proposed.leads)]
    for key in SHARES:
        now, new = today.ratio(key), proposed.ratio(key)
        found.append(Row(key, "share", now.value, new.value, (now, new)))
    found.append(Row("escalations", "count", today.escalated, proposed.escalated))
    for ladder in LADDERS:
        for action in STEP_ACTIONS:
            pair = (today.escalations[(ladder, action)], proposed.escalations[(ladder, action)])
            if any(pair):
                found.append(Row(f"escalations.{ladder}.{action}", "count", *pair))
    found.append(Row("reassignments", "count", today.reassignments, proposed.reassignments))
    for tier in sorted(today.tiers.keys() | proposed.tiers.keys()):
        found.append(Row(f"tiers.{tier}", "count", today.tiers[tier], proposed.tiers[tier]))
    return found


# --- the MQL definition replayed ---------------------------------------------------------------

EXAMPLES = 5  # leads shown of each way a lead flips


@dataclass(frozen=True)
class Candidate:
    """A stored lead as intake read it (any stage), for the MQL definition's replay. Only its
    id and company are ever shown."""

    id: int
    company: str | None
    segment: str
    source: str | None
    lead: LeadIn | None  # its data and engagement as stored, its own score if its sender gave
    # one; None: stored data intake would refuse today (kept out of the counts, and counted)
    as_of: datetime  # when it was scored: its arrival, or the start of a later cycle


@dataclass
class Tally:
    leads: int = 0
    mqls: int = 0


@dataclass(frozen=True)
class Flip:
    """A lead the proposed definition judges differently: its id, company and both scores."""

    id: int
    company: str | None
    segment: str
    source: str | None
    today: int
    proposed: int
    why: str  # what decides it under the proposed file: its problems, or what qualifies it


class MqlReplay:
    """Today's MQL definition and a proposed one over the same stored leads: how many would be
    MQLs under each, by segment and by source, and a few leads that flip each way. Each lead is
    scored as of when it was scored (its arrival), with the data and engagement it has now."""

    def __init__(self, today: Policy, proposed: Policy, examples: int = EXAMPLES) -> None:
        self.policies = {"today": today, "proposed": proposed}
        self.examples = examples
        self.total = {name: Tally() for name in self.policies}
        self.by_segment: dict[str, dict[str, Tally]] = {}
        self.by_source: dict[str, dict[str, Tally]] = {}
        self.gained: list[Flip] = []  # MQLs under the proposed file only
        self.lost: list[Flip] = []  # MQLs under today's file only
        self.flipped = Counter[str]()  # "gained", "lost"
        self.unreadable = 0

    @property
    def empty(self) -> bool:
        return self.total["today"].leads == 0

    def add(self, leads: Iterable[Candidate]) -> None:
        for item in leads:
            lead = item.lead
            if lead is None:
                self.unreadable += 1
                continue
            routed = {name: route(lead, p, item.as_of) for name, p in self.policies.items()}
            segment = self.by_segment.setdefault(item.segment, _pair())
            source = self.by_source.setdefault(item.source or "unknown", _pair())
            for name, routing in routed.items():
                for tally in (self.total[name], segment[name], source[name]):
                    tally.leads += 1
                    tally.mqls += int(routing.is_mql)
            now, new = routed["today"], routed["proposed"]
            if now.is_mql == new.is_mql:
                continue
            kind, shown = ("gained", self.gained) if new.is_mql else ("lost", self.lost)
            self.flipped[kind] += 1
            if len(shown) < self.examples:
                why = "; ".join(new.problems) or _qualifies(new.score)
                scores = (now.score.value, new.score.value)
                shown.append(Flip(item.id, item.company, item.segment, item.source, *scores, why))


def candidate(lead: LeadView) -> Candidate:
    """A stored lead as the replay scores it: as intake would read it today (its own score if
    its sender gave one), as of its arrival, or the start of its cycle if it came back."""
    as_of = lead.received_at if lead.cycle <= 1 else (lead.cycle_started_at or lead.received_at)
    company = lead.company.get("name")
    try:
        sent: LeadIn | None = as_sent(lead, lead.engagement, own_score(lead))
    except ValidationError:  # stored before a check intake makes today
        sent = None
    return Candidate(
        id=lead.id,
        company=str(company) if company else None,
        segment=lead.segment,
        source=lead.source,
        lead=sent,
        as_of=as_of,
    )


def _pair() -> dict[str, Tally]:
    return {"today": Tally(), "proposed": Tally()}


def _qualifies(score: Score) -> str:
    if score.qualified_by is not None:
        return f"{score.qualified_by} qualifies it alone"
    return f"score {score.value}"
