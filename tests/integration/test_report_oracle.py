"""The report against an independent oracle: random weeks of leads lived through the real
services (arrivals on both sides of the week's edges in Sydney, some sent late by a CRM, posts,
claims by the suggested rep or another, attempts, "progressing", dispositions with reasons,
reassignments before and after the claim), counted by SQL, and each KPI worked out again here
from its plain definition (docs/reports.md, seeds 001 and 002) and the facts as they happened,
first-touch compliance, feedback completion and final disposition on time by rep too (the rep
who had the lead when each clock ran: its owner, or the rep it was held for until it was
claimed). Then some of the leads are erased: the week's report must not change.

Each seed is a fixed history (`random.Random(seed)`), so a failure is reproducible."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from bot.domain.policy import Policy
from bot.domain.refusal import Refusal
from bot.domain.report import Period, Report
from bot.services.erasure import forget
from bot.services.leads import Services
from bot.services.reports import Reports
from storage.reports import ReportStore
from storage.repository import Store
from tests.conftest import lead_payload
from tests.integration.conftest import Wakes, services_on

WEEK = Period(2026, 48, "Australia/Sydney")  # Mon 23 – Sun 29 Nov 2026
POOLS = {"enterprise": ("U0REP1", "U0REP2"), "smb": ("U0REP5", "U0REP6")}
SMALL = {"name": "Tiny Co", "employees": 12, "country": "AU"}
OUTCOMES = [
    ("qualified", None),
    ("not_a_fit", "Not ICP"),
    ("not_a_fit", "Wrong territory or segment"),
    ("bad_data", "Wrong contact"),
    ("bad_timing", None),
    ("needs_nurturing", None),
    ("no_response", None),  # refused before the minimum attempts
]
REJECTED = {"not_a_fit", "bad_data"}  # outcome `reject`: never a sales-accepted lead
CONVERSED = {"qualified", "not_a_fit", "bad_data", "bad_timing", "needs_nurturing"}


@dataclass
class Lived:
    """One lead's history as it happened (the oracle's facts)."""

    external_id: str
    received: datetime
    mql: bool
    lead_id: int = 0
    posted: datetime | None = None
    claimed: datetime | None = None
    owner: str | None = None
    attempts: list[datetime] = field(default_factory=list)
    progressing: datetime | None = None
    code: str | None = None
    reason: str | None = None
    closed: datetime | None = None
    handovers: list[tuple[datetime, str | None]] = field(default_factory=list)  # (when, from)

    @property
    def first_touch(self) -> datetime | None:
        """The first attempt, or the moment it was qualified or marked progressing."""
        qualified = self.closed if self.code == "qualified" else None
        spoke = [*self.attempts, self.progressing, qualified]
        return min((at for at in spoke if at is not None), default=None)

    @property
    def feedback(self) -> datetime | None:
        return min((at for at in (self.progressing, self.closed) if at is not None), default=None)


async def live_a_week(rng: random.Random, services: Services, as_of: datetime) -> list[Lived]:
    """Up to 16 leads, each with a random history cut off at `as_of`."""
    lives = []
    for number in range(rng.randint(6, 16)):
        edge = rng.choice([0, 7 * 86400])  # near the week's start or its end, or anywhere
        offset = rng.choice([rng.uniform(0, 7 * 86400), edge + rng.uniform(-3600, 3600)])
        heard = WEEK.start + timedelta(seconds=int(offset))  # when intake heard of it
        if heard > as_of - timedelta(hours=1):
            continue
        late = rng.choice([0, 0, rng.randint(60, 4 * 3600)])  # a CRM that synced late
        fields: dict[str, object] = {}
        if late:
            fields["received_at"] = (heard - timedelta(seconds=late)).isoformat()
        if rng.random() < 0.5:
            fields |= {"company": SMALL, "score": 70}
        if rng.random() < 0.15:
            fields["score"] = 20  # below the bar: not an MQL
        external_id = f"hs-{number}"
        payload = lead_payload(external_id, email=f"{external_id}@x.example", **fields)
        stored = await services.intake(payload, heard)
        assert stored.lead is not None
        lead = stored.lead
        life = Lived(external_id, lead.received_at, lead.stage.value == "mql", lead.id)
        lives.append(life)
        if life.mql:
            await _work(rng, services, life, POOLS[lead.segment], heard, as_of)
    return lives


async def _work(
    rng: random.Random,
    services: Services,
    life: Lived,
    pool: tuple[str, ...],
    heard: datetime,
    as_of: datetime,
) -> None:
    """Post, reassign, claim, attempts, reassign, progressing, reassign and a disposition,
    each maybe."""
    store, lead_id = services.store, life.lead_id
    clock = heard

    def later(longest: int) -> datetime | None:
        nonlocal clock
        clock += timedelta(seconds=rng.randint(60, longest))
        return clock if clock < as_of else None

    if rng.random() < 0.1 or (posted := later(600)) is None:
        return  # not posted yet
    lead = await services.lead(lead_id)
    await store.mark_posted(lead_id, lead.channel, f"1.{lead_id}", posted)
    life.posted = posted
    held_for = lead.suggested_owner  # the rep the unclaimed lead is held for
    if rng.random() < 0.2 and (when := later(3600)) is not None:
        other = next(rep for rep in pool if rep != lead.suggested_owner)
        await services.reassign(lead_id, "U0MGR1", other, when)
        life.handovers.append((when, lead.suggested_owner))
        held_for = other
    rep = rng.choice(pool)
    if rng.random() < 0.2 or (claimed := later(rng.choice([1800, 6 * 3600, 3 * 86400]))) is None:
        return
    await services.claim(lead_id, rep, claimed)
    # A claim from the channel takes the lead from the rep it was held for (maybe the claimer).
    life.handovers.append((claimed, held_for))
    life.claimed, life.owner = claimed, rep
    for _ in range(rng.choice([0, 0, 1, 2, 6, 7])):
        if (when := later(rng.choice([1800, 86400, 2 * 86400]))) is None:
            break
        await services.log_attempt(lead_id, rep, rng.choice(["call", "email"]), when)
        life.attempts.append(when)

    async def hand_on(longest: int) -> None:
        """Maybe a manager's reassignment to the pool's other rep, at most `longest` later
        (past the feedback or the final deadline, or not)."""
        if rng.random() < 0.5 and (when := later(longest)) is not None:
            was = life.owner
            life.owner = next(other for other in pool if other != was)
            await services.reassign(lead_id, "U0MGR1", life.owner, when)
            life.handovers.append((when, was))

    await hand_on(rng.choice([3600, 4 * 86400, 15 * 86400]))
    if rng.random() < 0.25 and (when := later(2 * 86400)) is not None:
        await services.dispose(lead_id, life.owner or rep, "progressing", when)
        life.progressing = when
        await hand_on(rng.choice([3600, 15 * 86400]))  # after feedback in time, or not
    if rng.random() < 0.3 or (when := later(rng.choice([3600, 2 * 86400, 5 * 86400]))) is None:
        return
    code, reason = rng.choice(OUTCOMES)
    try:
        await services.dispose(lead_id, life.owner or rep, code, when, reason, reason and "A note.")
    except Refusal:
        return  # Unable to contact before the minimum attempts
    life.code, life.reason, life.closed = code, reason, when


def answered_by(life: Lived, answered: datetime | None, due: datetime) -> str:
    """Who answers for a deadline by rep: the rep who had the lead when its clock ran (at the
    answer, if it came by the deadline, else at the deadline): the one the first handover
    after that took it from (while the lead was open), or else its owner."""
    ran = answered if answered is not None and answered <= due else due
    after = [
        who
        for when, who in life.handovers
        if when >= ran and (life.closed is None or when <= life.closed)
    ]
    rep = after[0] if after else life.owner
    return rep or "(unclaimed)"


def nearest_rank(values: list[int], fraction: float) -> int | None:
    ordered = sorted(values)
    return ordered[math.ceil(fraction * len(ordered)) - 1] if ordered else None


async def expected(
    lives: list[Lived], services: Services, policy: Policy, as_of: datetime
) -> dict[str, object]:
    """Each KPI from its definition, over the week's leads as they happened; the deadlines the
    SLA gave each lead are read from it (they are the SLA's, not the report's)."""
    week = [life for life in lives if WEEK.start <= life.received < WEEK.end]
    mqls = [life for life in week if life.mql]
    leads = {life.lead_id: await services.lead(life.lead_id) for life in mqls}
    posted = [life for life in mqls if life.posted]
    working = policy.calendar.elapsed
    waiting = [
        life
        for life in posted
        if life.claimed is None and (leads[life.lead_id].claim_due_at or as_of) > as_of
    ]
    accepted = [life for life in posted if life.claimed and life.code not in REJECTED]
    sqls = [life for life in accepted if life.code == "qualified"]

    first_touch = [0, 0]
    by_rep: dict[str, tuple[int, int]] = {}
    speeds, responses = [], []
    for life in mqls:
        touched, due = life.first_touch, leads[life.lead_id].first_touch_due_at
        assert due is not None
        # Rejected untouched inside its window: dealt with in time, not a first touch missed.
        rejected_in_time = (
            touched is None
            and life.code in REJECTED
            and life.closed is not None
            and life.closed <= due
        )
        if not rejected_in_time and (touched is not None or due <= as_of):
            on_time = touched is not None and touched <= due
            first_touch[0] += on_time
            first_touch[1] += 1
            rep = answered_by(life, touched, due)
            met, of = by_rep.get(rep, (0, 0))
            by_rep[rep] = (met + on_time, of + 1)
        ignored = touched is None and due <= as_of and life.closed is None
        if life.posted and (touched is not None or ignored):
            speeds.append(working(life.posted, touched or as_of))
            responses.append(working(life.received, touched or as_of))

    feedback = [0, 0]
    final = [0, 0]
    feedback_by_rep: dict[str, tuple[int, int]] = {}
    final_by_rep: dict[str, tuple[int, int]] = {}
    coverage = [0, 0]
    window_closed_before = as_of - timedelta(weeks=2)  # follow_up.within: 2w, calendar time
    for life in mqls:
        if life.claimed is None:
            continue
        lead = leads[life.lead_id]
        for answered, due, team, reps in (
            (life.feedback, lead.disposition_due_at, feedback, feedback_by_rep),
            (life.closed, lead.final_due_at, final, final_by_rep),
        ):
            if due and (answered or due <= as_of):
                on_time = bool(answered and answered <= due)
                team[0] += on_time
                team[1] += 1
                rep = answered_by(life, answered, due)
                met, of = reps.get(rep, (0, 0))
                reps[rep] = (met + on_time, of + 1)
        if life.closed or life.claimed <= window_closed_before:
            coverage[0] += len(life.attempts) >= 6 or life.code in CONVERSED
            coverage[1] += 1

    mix: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for life in week:
        if life.code:
            mix[life.code] = mix.get(life.code, 0) + 1
        if life.code in REJECTED and life.reason:
            reasons[life.reason] = reasons.get(life.reason, 0) + 1
    return {
        "mql": len(mqls),
        "acceptance": (len(accepted), len(posted) - len(waiting)),
        "sal_to_sql": (len(sqls), len(accepted)),
        "mql_to_sql": (len(sqls), len(posted)),
        "first_touch": tuple(first_touch),
        "first_touch_by_rep": by_rep,
        "feedback_by_rep": feedback_by_rep,
        "final_by_rep": final_by_rep,
        "feedback": tuple(feedback),
        "final": tuple(final),
        "attempts": tuple(coverage),
        "speed_median": nearest_rank(speeds, 0.5),
        "speed_p90": nearest_rank(speeds, 0.9),
        "response_mean": round(sum(responses) / len(responses)) if responses else None,
        "claim_median": nearest_rank(
            [working(life.posted, life.claimed) for life in posted if life.posted and life.claimed],
            0.5,
        ),
        "mix": mix,
        "reasons": reasons,
        # Each MQL under the rep who owns it now; one nobody claimed under "(unclaimed)".
        "mql_by_rep": dict(Counter(life.owner or "(unclaimed)" for life in mqls)),
    }


def reported(report: Report) -> dict[str, object]:
    """The same figures as the report gives them."""
    kpis = {kpi.key: kpi for kpi in report.headline}

    def counted(key: str) -> tuple[int, int]:
        part, _, whole = kpis[key].detail.partition(" of ")
        return int(part), int(whole)

    def minutes(key: str) -> int | None:
        value = kpis[key].value
        return None if value is None else int(value)

    shares = ("acceptance", "sal_to_sql", "mql_to_sql", "first_touch", "feedback", "final")

    def by_rep(key: str) -> dict[str, tuple[int, int]]:
        found = {}
        for rep in report.by_rep:
            (kpi,) = [kpi for kpi in rep.kpis if kpi.key == key]
            part, _, whole = kpi.detail.partition(" of ")
            if whole and int(whole):
                found[rep.name] = (int(part), int(whole))
        return found

    mql_by_rep = {}
    for rep in report.by_rep:
        (kpi,) = [kpi for kpi in rep.kpis if kpi.key == "mql"]
        if kpi.value:
            mql_by_rep[rep.name] = int(kpi.value)
    return {
        "mql": int(kpis["mql"].value or 0),
        **{key: counted(key) for key in (*shares, "attempts")},
        "first_touch_by_rep": by_rep("first_touch"),
        "feedback_by_rep": by_rep("feedback"),
        "final_by_rep": by_rep("final"),
        "mql_by_rep": mql_by_rep,
        **{key: minutes(key) for key in ("speed_median", "speed_p90", "claim_median")},
        "response_mean": minutes("response_mean"),
        "mix": {code: n for code, _, n in report.dispositions if code != "progressing"},
        "reasons": {reason.reason: reason.leads for reason in report.reasons},
    }


def assert_by_rep_adds_up(report: Report) -> None:
    """The by-rep table, "(unclaimed)" included, adds up to the team's figures: every lead
    is counted once, under one rep or under nobody."""
    team = {kpi.key: kpi for kpi in report.headline}
    for key, whole in (("mql", team["mql"].value), ("sql", report.conversion.sql)):
        rows = [kpi for rep in report.by_rep for kpi in rep.kpis if kpi.key == key]
        assert sum(kpi.value or 0 for kpi in rows) == (whole or 0), key
    for key in ("acceptance", "first_touch", "feedback", "final", "attempts"):
        parts = [0, 0]
        for rep in report.by_rep:
            for kpi in rep.kpis:
                if kpi.key == key and kpi.detail:
                    part, _, whole = kpi.detail.partition(" of ")
                    parts[0] += int(part)
                    parts[1] += int(whole)
        part, _, whole = team[key].detail.partition(" of ")
        assert parts == [int(part), int(whole)], key
    assert sum(rep.received for rep in report.by_rep) == report.received


# As of Friday of the week, the Tuesday after it, and three weeks on: each for three seeds.
AFTER = (timedelta(days=-3), timedelta(days=1), timedelta(days=20))


@pytest.mark.parametrize("seed", range(9))
async def test_the_report_agrees_with_the_definitions_and_survives_erasure(
    store: Store, policy: Policy, seed: int
) -> None:
    rng = random.Random(seed)
    as_of = WEEK.end + AFTER[seed % len(AFTER)]
    services = await services_on(store, policy, WEEK.start - timedelta(days=14))
    lives = await live_a_week(rng, services, as_of)
    reports = Reports(ReportStore(store.db), services.policies)
    report = await reports.report(WEEK, as_of)
    assert reported(report) == await expected(lives, services, policy, as_of)
    assert_by_rep_adds_up(report)
    for life in rng.sample(lives, k=len(lives) // 4):
        await forget(store, Wakes(), life.external_id, "cli", as_of - timedelta(minutes=1))
    assert await reports.report(WEEK, as_of) == report
