"""The clocks on a lead and the escalation ladders that police them: pure rules over `now`.

A lead runs up to four clocks (windows from a start to a deadline, each on the clock of the
duration that set it: calendar or business time): `unclaimed` (nobody owns it; from the cycle's
start, or its release back to the pool, to the claim deadline), `no_touch` (no contact
attempt yet; to the first-touch deadline), `no_feedback` (owned, no feedback yet; from the
claim to `disposition_deadline`) and `no_outcome` (owned, no final disposition; from the
claim to the final disposition deadline, by default the follow-up cadence's end). The first
feedback stops `no_feedback` (any disposition, "progressing" too); a final disposition stops
both. Each clock has a ladder of steps at a share of its window in its own clock (50%, 100%,
150%…). When a sweep finds steps due, only the strongest one fires (after downtime: the most
advanced); the ones it passed over are recorded as skipped, so a sweep after downtime never
floods anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.domain.businesstime import BusinessCalendar, carried
from bot.domain.cadence import next_touch_carried
from bot.domain.durations import Clock, Duration, span_words
from bot.domain.info import MORE_INFO
from bot.domain.lead import LeadView, Pause, Stage
from bot.domain.policy import EscalationStep, Policy, Tier

LADDER_WORDS = {
    "unclaimed": "claim",
    "no_touch": "first touch",
    "no_feedback": "first feedback (a disposition)",
    "no_outcome": "final disposition",
}
# Why the SLA hands on a member's leads at once, not at a deadline: Slack says they can no
# longer work them (users.info `deleted`, `is_restricted` / `is_ultra_restricted`).
GONE_WORDS = {"deactivated": "deactivated in Slack", "guest": "made a guest in Slack"}


SEVERITY = {"remind_channel": 1, "remind_owner": 2, "notify_manager": 3, "reassign": 4}

ATTEMPT = "attempt"  # a contact attempt, logged in Slack or made in the CRM (`clocks_met`)


def clocks_met(lead: LeadView, done: str) -> frozenset[str] | None:
    """The clocks of `lead` (as it was before) that what a rep did meets, so the managers'
    alerts about them are answered: `done` is an attempt (`ATTEMPT`) or a disposition's
    outcome (`progressing`, `more_info`, a final one). None: every clock (a final disposition
    closes the lead).

    - The first attempt meets `no_touch`.
    - *Contacted – progressing* is the first feedback (`no_feedback`), and the first touch
      too when none was logged (it says the rep reached the person).
    - A question to marketing is the rep's feedback on the lead in words: it answers
      `no_feedback`. It touches nobody and settles no outcome: `no_touch` and `no_outcome`
      stay owed (their clocks only pause until the answer).
    - Nothing here meets `unclaimed`: only a claim does.
    """
    untouched = frozenset({"no_touch"}) if lead.first_touch_at is None else frozenset()
    if done == ATTEMPT:
        return untouched
    if done == "progressing":
        return frozenset({"no_feedback"}) | untouched
    if done == MORE_INFO:
        return frozenset({"no_feedback"})
    return None


@dataclass(frozen=True)
class Window:
    """One clock: `ladder` runs from `start` to its deadline `due`, counting `clock` time.
    `pauses`: the questions to marketing asked once `due` had passed; its steps still to come
    at each wait it out (`step_times`)."""

    ladder: str
    start: datetime
    due: datetime
    clock: Clock = Clock.BUSINESS
    pauses: tuple[Pause, ...] = ()

    @property
    def what(self) -> str:
        return LADDER_WORDS[self.ladder]


@dataclass(frozen=True)
class DueStep:
    ladder: str
    index: int
    step: EscalationStep
    at: datetime
    window: Window


@dataclass(frozen=True)
class Plan:
    """What a sweep does to one lead now."""

    fire: list[DueStep] = field(default_factory=list)  # at most one
    skip: list[DueStep] = field(default_factory=list)  # passed over after downtime
    next_at: datetime | None = None  # when to look at the lead again (None: never)
    recycle: bool = False  # a recycled or nurtured lead's re-engagement date has come


def claim_window(tier: Tier) -> Duration:
    """The duration that sets a tier's claim deadline (its `claim`, else its first touch)."""
    return tier.claim or tier.first_touch


def windows(lead: LeadView, policy: Policy) -> list[Window]:
    """The clocks running on the lead now, each on its duration's clock (calendar or business).

    A window is as long as the SLA duration that set its deadline, counted back from that
    deadline on the window's calendar, so its steps stay at their shares of the time the SLA
    gives: when a deadline is set again (a lead released while its owner is away, the time
    left after an answer from marketing or after a change of owner) its window moves with
    it, as if it had started then. A deadline already passed when marketing was asked a
    question stays passed (the SLA was missed), but the question paused its clock all the
    same: the window keeps the cycle's pauses that began at or after its deadline, and the
    steps it had still to come wait them out."""
    if lead.waiting_for_info:
        return []
    tier = policy.tier(lead.tier)

    def window(ladder: str, due: datetime, duration: Duration) -> Window:
        start = calendar_of(ladder, lead, policy).before(due, duration)
        pauses = tuple(pause for pause in lead.info_pauses if due <= pause[0])
        return Window(ladder, start, due, duration.clock, pauses)

    running: list[Window] = []
    if lead.stage is Stage.MQL and lead.owner is None and lead.claim_due_at is not None:
        running.append(window("unclaimed", lead.claim_due_at, claim_span(policy, tier)))
    open_stage = lead.stage in (Stage.MQL, Stage.SAL)
    if open_stage and lead.first_touch_at is None and lead.first_touch_due_at is not None:
        running.append(window("no_touch", lead.first_touch_due_at, tier.first_touch))
    claimed = lead.claimed_at if lead.stage is Stage.SAL else None
    if claimed and lead.disposition_due_at and lead.feedback_at is None:
        running.append(window("no_feedback", lead.disposition_due_at, policy.disposition_deadline))
    if claimed and lead.final_due_at:
        running.append(window("no_outcome", lead.final_due_at, policy.final_deadline))
    return running


TEAM_CLOCKS = frozenset({"unclaimed", "no_touch"})
"""The clocks whose deadlines are set at arrival, on the team's calendar, before anyone owns
the lead: a claim does not move them, so they keep counting on the team's calendar."""


def calendar_of(ladder: str, lead: LeadView, policy: Policy) -> BusinessCalendar:
    """The calendar the lead's `ladder` clock counts on: the one its deadline was set on. The
    claim and the first touch are the team's; the two deadlines a claim sets are the owner's
    (`clock: owner`). A share of a window read on another calendar than its deadline's can
    be no time at all (a Sydney morning is a London night)."""
    return policy.calendar if ladder in TEAM_CLOCKS else policy.calendar_for(lead.owner_zone)


def handed_over(
    lead: LeadView, policy: Policy, rep: str, zone: str | None, now: datetime
) -> LeadView:
    """The open lead handed to `rep` (working in `zone`) at `now`: its owner if it is claimed,
    else its suggested owner. A claimed lead's zone moves with it, and when the two owners'
    calendars differ (`clock: owner`), each of the deadlines its claim set on the old owner's
    hours that is still ahead keeps the working time it had left on them, from `now` on the
    new owner's (`carried`; one already passed stays passed): read on other hours, a window
    can hold no working time at all, and every step of it would fall due at once."""
    if lead.owner is None:
        return replace(lead, suggested_owner=rep)
    handed = replace(lead, owner=rep, suggested_owner=rep, owner_zone=zone)
    was, will = policy.calendar_for(lead.owner_zone), policy.calendar_for(zone)
    if was is will:
        return handed
    since = lead.info_asked_at or now  # with marketing: its clocks stand at the question
    feedback, final = policy.disposition_deadline.clock, policy.final_deadline.clock
    # Before any attempt the next touch is the first touch: the team's, it does not move.
    within = policy.follow_up.within.clock
    following = next_touch_carried(lead, within, since, since, was, will)
    return replace(
        handed,
        disposition_due_at=carried(lead.disposition_due_at, feedback, since, since, was, will),
        final_due_at=carried(lead.final_due_at, final, since, since, was, will),
        next_touch_due_at=following,
    )


HANDED_DEADLINES = ("disposition_due_at", "final_due_at", "next_touch_due_at")
"""The lead's deadlines a handover may move (`handed_over`): what storage writes with it."""


def clocks_moved(lead: LeadView, handed: LeadView) -> bool:
    """Whether handing the lead over (`handed_over`) moved a running clock's deadline, and so
    its steps: the sweep then looks at the lead again at once, not when it had planned to. A
    lead with marketing runs no clock until the answer, which has the sweep look again."""
    moved = any(getattr(lead, name) != getattr(handed, name) for name in HANDED_DEADLINES)
    return moved and not lead.waiting_for_info


def window_duration(window: Window, lead: LeadView, policy: Policy) -> Duration:
    """The SLA duration that set the window's deadline, for saying which clock it runs on."""
    tier = policy.tier(lead.tier)
    return {
        "unclaimed": claim_window(tier),
        "no_touch": tier.first_touch,
        "no_feedback": policy.disposition_deadline,
        "no_outcome": policy.final_deadline,
    }[window.ladder]


def step_times(
    window: Window, steps: list[EscalationStep], calendar: BusinessCalendar
) -> list[datetime]:
    """When each step of the window's ladder comes due: its share of the window, in the
    window's clock (elapsed time for a calendar window, working time for a business one). A
    step is a message to people (a reminder, a manager's alert, a reassignment), so one of a
    calendar window that falls at night, on a weekend or a holiday waits for working time to
    open (`at_work`); the deadline itself does not move. A step not yet due when a question
    to marketing was asked past the deadline (`Window.pauses`) comes as much of the window's
    clock after the answer as it was after the question."""
    span = calendar.elapsed(window.start, window.due, window.clock)
    if window.clock is Clock.CALENDAR:
        times = [
            calendar.at_work(window.start + timedelta(minutes=round(step.at * span)))
            for step in steps
        ]
    else:
        times = calendar.add_all(window.start, [round(step.at * span) for step in steps])
    return [_waited(at, window, calendar) for at in times] if window.pauses else times


def _waited(at: datetime, window: Window, calendar: BusinessCalendar) -> datetime:
    """The step due at `at` moved on by each of the window's pauses it had not come due by,
    in turn (`carried`: the time it had left at the question, from the answer)."""
    for asked, answered in window.pauses:
        at = carried(at, window.clock, asked, answered, calendar) or at
    return calendar.at_work(at) if window.clock is Clock.CALENDAR else at


JUST_AFTER = timedelta(microseconds=1)  # the first instant a stored time can be after another


MISSES = frozenset({"notify_manager", "reassign"})
"""The steps that tell the managers of a miss (the escalations channel) or act on one."""


def fires_at(at: datetime, window: Window, step: EscalationStep, offers: bool = False) -> datetime:
    """When a step timed `at` may fire: then, unless it tells of a miss (`MISSES`) and comes
    at its window's deadline, which it then waits out: the report counts an answer at the
    deadline itself as in time (a touch at it is on time, a rejection at it leaves the lead
    out of first-touch compliance: storage/reports.py `_deadline_counts`, `first_touch_due`),
    so the escalations channel must not tell of a miss at that instant. A reminder may come
    at the deadline ("due now"). `offers`: the lead's rep is away, so any step at its
    deadline acts on a miss (bot/services/sweep.py `decide` offers the lead to the pool)."""
    if (step.do not in MISSES and not offers) or at < window.due:
        return at
    return max(at, window.due + JUST_AFTER)


def plan(
    lead: LeadView,
    policy: Policy,
    now: datetime,
    recorded: set[tuple[str, int]],
    offers: bool = False,
) -> Plan:
    """Which steps fire now, which are skipped, and when the lead is due again.

    `recorded` holds the (ladder, step index) pairs of this cycle already fired or skipped.
    `offers`: the lead's rep (or the rep it is suggested to) is away (`fires_at`).
    """
    if lead.stage in (Stage.RECYCLE, Stage.NURTURE):
        back = lead.next_action_at
        return Plan(recycle=back is not None and back <= now, next_at=back)
    ripe_all: list[DueStep] = []
    upcoming: list[datetime] = []
    snoozed = lead.snoozed_until is not None and now < lead.snoozed_until
    for window in windows(lead, policy):
        steps = policy.escalation.ladder(window.ladder)
        times = step_times(window, steps, calendar_of(window.ladder, lead, policy))
        ripe = [
            DueStep(window.ladder, index, step, at, window)
            for index, (step, at) in enumerate(zip(steps, times, strict=True))
            if fires_at(at, window, step, offers) <= now and (window.ladder, index) not in recorded
        ]
        upcoming += [
            fires_at(at, window, step, offers)
            for index, (step, at) in enumerate(zip(steps, times, strict=True))
            if fires_at(at, window, step, offers) > now and (window.ladder, index) not in recorded
        ]
        if not snoozed:  # a manager said "not now": look again when the snooze ends
            ripe_all += ripe
    if snoozed and lead.snoozed_until is not None:
        upcoming.append(lead.snoozed_until)
    next_at = min(upcoming) if upcoming else None
    if not ripe_all:
        return Plan(next_at=next_at)
    # One step per lead per sweep: the strongest due one (after downtime, the most advanced);
    # every other due step is recorded as skipped, so a restart never floods anyone.
    best = max(ripe_all, key=lambda due: (SEVERITY[due.step.do], due.at))
    return Plan(fire=[best], skip=[due for due in ripe_all if due is not best], next_at=next_at)


def first_check(lead: LeadView, policy: Policy) -> datetime | None:
    """When a new (or newly claimed) lead first needs a look: its earliest step (at once when
    a step is due from the start: a share of a short window that rounds to 0 minutes), or the
    end of its claim window (the post then says it is open to the pool), whichever is first."""
    start = lead.cycle_started_at or lead.received_at
    snoozed = lead.snoozed_until is not None and start < lead.snoozed_until
    if lead.stage in (Stage.RECYCLE, Stage.NURTURE) or snoozed:
        planned = plan(lead, policy, start, set())
        step = start if planned.fire or planned.skip else planned.next_at
    else:
        step = _earliest_step(lead, policy, start)
    window = lead.claim_opens_at if lead.owner is None else None
    return min(filter(None, (step, window)), default=None)


def _earliest_step(lead: LeadView, policy: Policy, start: datetime) -> datetime | None:
    """What `plan` at `start`, nothing recorded, says of when to look first: `start` if a step
    is due by then, else the earliest step. Only each ladder's first step is timed (a step's
    time rises with its share of the window), not its whole ladder: intake asks this of every
    lead (issue 15)."""
    earliest: datetime | None = None
    for window in windows(lead, policy):
        steps = policy.escalation.ladder(window.ladder)
        if steps:
            first = min(steps, key=lambda step: step.at)
            timed = step_times(window, [first], calendar_of(window.ladder, lead, policy))[0]
            at = fires_at(timed, window, first)
            earliest = at if earliest is None else min(earliest, at)
    return None if earliest is None else max(start, earliest)


def urgency(lead: LeadView, policy: Policy, now: datetime) -> tuple[str, Window | None]:
    """How the lead's nearest clock looks now: "ok", "near" (past its first step) or "overdue"."""
    running = windows(lead, policy)
    if not running:
        return "ok", None
    window = min(running, key=lambda w: w.due)
    if now > window.due:  # an answer at the deadline's instant is on time (the report's rule)
        return "overdue", window
    steps = policy.escalation.ladder(window.ladder)
    times = step_times(window, steps, calendar_of(window.ladder, lead, policy))
    if times and now >= times[0]:
        return "near", window
    return "ok", window


def time_words(window: Window, now: datetime, calendar: BusinessCalendar) -> str:
    """ "due in 40m of business time", "overdue by 2d 3h" (calendar time), for people."""
    if now < window.due:
        return f"due in {span_words(calendar.elapsed(now, window.due, window.clock), window.clock)}"
    late = calendar.elapsed(window.due, now, window.clock)
    return f"overdue by {span_words(late, window.clock)}" if late else "due now"


def claim_span(policy: Policy, tier: Tier) -> Duration:
    """How long a lead of `tier` has to be claimed: the tier's `claim`, else half its
    first-touch window (on the first touch's clock, in whole minutes, at least one)."""
    if tier.claim is not None:
        return tier.claim
    if tier.first_touch.is_calendar:
        half = tier.first_touch.delta // 2
        return Duration(minutes=max(1, half // timedelta(minutes=1)), clock=Clock.CALENDAR)
    minutes = tier.first_touch.total_minutes(policy.calendar.minutes_per_day)
    return Duration(minutes=max(1, minutes // 2), clock=Clock.BUSINESS)


def claim_deadline(policy: Policy, tier: Tier, start: datetime) -> datetime:
    """When a lead whose claim clock starts at `start` must be claimed (`claim_span`)."""
    return policy.calendar.add(start, claim_span(policy, tier))


def feedback_check(
    policy: Policy, claimed: datetime, due: datetime, owner_zone: str | None = None
) -> datetime | None:
    """The first step of the no-feedback ladder of a lead claimed at `claimed`."""
    window = Window("no_feedback", claimed, due, policy.disposition_deadline.clock)
    return _first_step(policy, window, owner_zone)


def _first_step(policy: Policy, window: Window, owner_zone: str | None) -> datetime | None:
    steps = policy.escalation.ladder(window.ladder)
    calendar = policy.calendar_for(owner_zone)
    return fires_at(step_times(window, steps[:1], calendar)[0], window, steps[0]) if steps else None


def feedback_deadline(
    policy: Policy, claimed: datetime, owner_zone: str | None
) -> tuple[datetime, datetime | None]:
    """A lead claimed at `claimed`: its first-feedback deadline and the first step towards it."""
    due = policy.calendar_for(owner_zone).add(claimed, policy.disposition_deadline)
    return due, feedback_check(policy, claimed, due, owner_zone)


@dataclass(frozen=True)
class Deadlines:
    """A claim's two deadlines: the first feedback and the final disposition, and the first
    escalation step of either (when the sweep first needs to look)."""

    feedback: datetime
    final: datetime
    check: datetime | None


def claim_deadlines(policy: Policy, claimed: datetime, owner_zone: str | None) -> Deadlines:
    """A lead claimed at `claimed` (by an owner in `owner_zone`): when its first feedback and
    its final disposition are due (`disposition_deadline`; `final_disposition_deadline`, by
    default the follow-up cadence's end), each on its own clock."""
    feedback, first = feedback_deadline(policy, claimed, owner_zone)
    final = policy.calendar_for(owner_zone).add(claimed, policy.final_deadline)
    window = Window("no_outcome", claimed, final, policy.final_deadline.clock)
    steps = [at for at in (first, _first_step(policy, window, owner_zone)) if at is not None]
    return Deadlines(feedback, final, min(steps) if steps else None)
