"""The what-if replay, pure and hand-computed: deadlines in business time under two SLA files,
the steps each set of ladders would have fired, and the figures side by side."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.cli.whatif_text import as_json, as_text
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy, parse_policy
from bot.domain.whatif import Fired, History, MqlReplay, Replay, candidate, judge, rows
from tests.conftest import ROOT

SYDNEY = ZoneInfo("Australia/Sydney")  # AEDT (UTC+11) on every date below

# The proposed SLA: hot leads touched within 1 business hour (so claimed within 30 business
# minutes), feedback within 24 business hours, and sharper ladders: no_touch reminds at half
# time and never reassigns.
STRICT: dict[str, Any] = {
    "tiers": [
        {"name": "hot", "when": {"score_min": 80}, "first_touch": "1 business hour"},
        {"name": "warm", "first_touch": "24 business hours"},
    ],
    "disposition_deadline": "24 business hours",
    "escalation": {
        "unclaimed": [
            {"at": "50%", "do": "remind_channel"},
            {"at": "100%", "do": "notify_manager"},
            {"at": "150%", "do": "reassign"},
        ],
        "no_touch": [{"at": "50%", "do": "remind_owner"}, {"at": "100%", "do": "notify_manager"}],
    },
}


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SYDNEY).astimezone(UTC)  # type: ignore[misc]


@pytest.fixture(scope="module")
def strict() -> Policy:
    data = yaml.safe_load((ROOT / "sla.yaml").read_text())
    return parse_policy({**data, **STRICT}, "strict.yaml")


def lead(
    started: datetime,
    claimed: datetime | None = None,
    touched: datetime | None = None,
    closed: datetime | None = None,
    score: int = 88,
) -> History:
    return History(started, started, claimed, touched, closed, score, "webinar")


def steps(fired: tuple[Fired, ...]) -> list[tuple[str, str, datetime]]:
    return [(step.ladder, step.action, step.at) for step in fired]


def minutes(count: int) -> timedelta:
    return timedelta(minutes=count)


LATER = local(2026, 12, 18, 12, 0)  # long after every lead below


def test_touched_in_90_working_minutes_meets_a_2h_tier_and_misses_a_1h_one(
    policy: Policy, strict: Policy
) -> None:
    monday = lead(local(2026, 11, 23, 11, 0), touched=local(2026, 11, 23, 12, 30))
    today, proposed = judge(monday, policy, LATER), judge(monday, strict, LATER)
    assert (today.tier, proposed.tier) == ("hot", "hot")
    assert today.first_touch_due == local(2026, 11, 23, 13, 0)
    assert proposed.first_touch_due == local(2026, 11, 23, 12, 0)
    assert (today.first_touch_met, proposed.first_touch_met) == (True, False)
    warm = judge(lead(local(2026, 11, 23, 11, 0), score=70), strict, LATER)
    assert warm.tier == "warm" and warm.first_touch_due == local(2026, 11, 26, 11, 0)  # 3 days


@pytest.mark.parametrize(
    ("arrived", "touched", "due_2h", "due_1h"),
    [
        # Friday 16:30 → Monday 10:00 is 30 + 60 working minutes: the weekend does not count.
        (
            (2026, 11, 27, 16, 30),
            (2026, 11, 30, 10, 0),
            (2026, 11, 30, 10, 30),
            (2026, 11, 30, 9, 30),
        ),
        # Australia Day (Tuesday 26 January 2027, an AU-NSW holiday) does not count either.
        ((2027, 1, 25, 16, 30), (2027, 1, 27, 10, 0), (2027, 1, 27, 10, 30), (2027, 1, 27, 9, 30)),
        # Nor do the file's closed day (24 Dec), Christmas and the Boxing Day holiday (Mon 28).
        (
            (2026, 12, 23, 16, 30),
            (2026, 12, 29, 10, 0),
            (2026, 12, 29, 10, 30),
            (2026, 12, 29, 9, 30),
        ),
    ],
)
def test_deadlines_skip_weekends_holidays_and_closed_days(
    policy: Policy,
    strict: Policy,
    arrived: tuple[int, ...],
    touched: tuple[int, ...],
    due_2h: tuple[int, ...],
    due_1h: tuple[int, ...],
) -> None:
    history = lead(local(*arrived), touched=local(*touched))
    later = local(2027, 3, 1, 9, 0)
    today, proposed = judge(history, policy, later), judge(history, strict, later)
    assert (today.first_touch_due, proposed.first_touch_due) == (local(*due_2h), local(*due_1h))
    assert (today.first_touch_met, proposed.first_touch_met) == (True, False)


def test_steps_fire_under_both_ladders_until_the_event_that_stops_their_clock(
    policy: Policy, strict: Policy
) -> None:
    history = lead(
        local(2026, 11, 23, 11, 0),
        claimed=local(2026, 11, 23, 11, 40),
        touched=local(2026, 11, 23, 12, 15),
        closed=local(2026, 11, 27, 11, 40),  # 4 working days after the claim
    )
    today, proposed = judge(history, policy, LATER), judge(history, strict, LATER)
    # Today's claim window is 11:00–12:00: only its 50% reminder comes before the claim; the
    # no_touch reminder at 75% of 11:00–13:00 (12:30) comes after the first touch. Feedback
    # was due 72 hours after the claim (Thursday 11:40), a day before the disposition.
    assert steps(today.fired) == [
        ("unclaimed", "remind_channel", local(2026, 11, 23, 11, 30)),
        ("no_feedback", "remind_owner", local(2026, 11, 26, 11, 40)),
    ]
    assert (today.claim_met, today.first_touch_met, today.feedback_met) == (True, True, False)
    # Proposed: claim window 11:00–11:30, first touch 11:00–12:00. At 11:30 the unclaimed
    # manager alert and the no_touch reminder fall due together: one step, the strongest.
    # Feedback was due 3 working days after the claim: its reminder fired, the manager alert
    # (at 150%, Friday 15:40) came after the disposition.
    assert steps(proposed.fired) == [
        ("unclaimed", "remind_channel", local(2026, 11, 23, 11, 15)),
        ("unclaimed", "notify_manager", local(2026, 11, 23, 11, 30)),
        ("no_touch", "notify_manager", local(2026, 11, 23, 12, 0)),
        ("no_feedback", "remind_owner", local(2026, 11, 26, 11, 40)),
    ]
    assert proposed.disposition_due == local(2026, 11, 26, 11, 40)
    assert (proposed.claim_met, proposed.first_touch_met, proposed.feedback_met) == (
        False,
        False,
        False,
    )


def test_reassignments_count_the_reassign_steps_fired_before_now(
    policy: Policy, strict: Policy
) -> None:
    ignored = lead(local(2026, 11, 23, 11, 0))  # never claimed, never touched
    # Today's ladders, a week on: the channel at 11:30, the managers at 12:00, a reassignment
    # at 12:30 (the no_touch reminder due then too is the weaker), the managers again at 13:00
    # for the first touch, and a second reassignment at 15:00 (200% of 11:00–13:00).
    today = judge(ignored, policy, LATER)
    assert [(s.ladder, s.action) for s in today.fired] == [
        ("unclaimed", "remind_channel"),
        ("unclaimed", "notify_manager"),
        ("unclaimed", "reassign"),
        ("no_touch", "notify_manager"),
        ("no_touch", "reassign"),
    ]
    assert today.reassignments == 2
    assert judge(ignored, strict, LATER).reassignments == 1  # its no_touch ladder never does
    # Only the steps before `now` count: at 12:45 the 13:00 and 15:00 steps are still ahead.
    early = judge(ignored, policy, local(2026, 11, 23, 12, 45))
    assert len(early.fired) == 3 and early.reassignments == 1


def test_clocks_still_running_at_now_are_not_measured(policy: Policy) -> None:
    fresh = lead(local(2026, 11, 23, 11, 0), touched=local(2026, 11, 23, 12, 30))
    verdict = judge(fresh, policy, local(2026, 11, 23, 11, 20))  # the touch is still to come
    assert (verdict.claim_met, verdict.first_touch_met, verdict.feedback_met) == (None, None, None)
    assert verdict.fired == ()
    late = judge(fresh, policy, local(2026, 11, 23, 13, 0))  # touched, never claimed
    assert (late.claim_met, late.first_touch_met, late.feedback_met) == (False, True, None)


def test_the_replay_adds_up_by_week_and_prints_side_by_side(policy: Policy, strict: Policy) -> None:
    now = local(2026, 12, 2, 12, 0)  # Wednesday of 2026-W49
    replay = Replay(policy, strict, now, weeks=3)
    assert [week.label for week in replay.weeks] == ["2026-W47", "2026-W48", "2026-W49"]
    assert replay.start == local(2026, 11, 16, 0, 0) and replay.end == now
    replay.add(
        [
            lead(wed := local(2026, 11, 18, 11, 0), wed + minutes(25), wed + minutes(90)),  # W47
            lead(mon := local(2026, 11, 23, 11, 0), mon + minutes(20), mon + minutes(30)),  # W48
            lead(local(2026, 11, 24, 11, 0)),  # W48: never claimed
        ]
    )
    today, proposed = replay.total["today"], replay.total["proposed"]
    assert today.leads == 3
    assert (today.first_touch.met, today.first_touch.due) == (2, 3)
    assert (proposed.first_touch.met, proposed.first_touch.due) == (1, 3)
    assert replay.by_week["proposed"]["2026-W47"].first_touch.value == 0.0
    assert replay.by_week["today"]["2026-W49"].leads == 0
    by_key = {row.key: row for row in rows(today, proposed)}
    assert by_key["first_touch"].change == pytest.approx(-1 / 3)
    assert (by_key["reassignments"].today, by_key["reassignments"].proposed) == (2, 1)

    text = as_text(replay, "sla.yaml", "strict.yaml")
    table = {line[:30].strip(): re.split(r"\s{2,}", line[30:].strip()) for line in text.split("\n")}
    assert table["First-touch compliance"] == ["67% (2/3)", "33% (1/3)", "-33 pts"]
    assert table["Reassignments"] == ["2", "1", "-1"]
    assert table["unclaimed · remind_channel"] == ["1", "3", "+2"]
    assert re.search(r"^2026-W47 +1 +100% → 0% +100% → 100% +0% → 0%$", text, re.M)
    assert re.search(r"^2026-W49 +0 +– → – +– → – +– → –$", text, re.M)
    assert "It does not simulate how people would have behaved differently" in " ".join(
        text.split()
    )
    data = json.loads(as_json(replay, "sla.yaml", "strict.yaml"))
    assert data["total"]["proposed"]["first_touch"] == {"value": 1 / 3, "met": 1, "due": 3}
    assert data["by_week"][1]["week"] == "2026-W48" and data["by_week"][1]["today"]["mqls"] == 2
    assert data["sla"]["proposed"] == {"file": "strict.yaml", "version": strict.version}


def test_weeks_out_of_range_are_refused(policy: Policy) -> None:
    with pytest.raises(ValueError, match="replay 1 to 104 weeks"):
        Replay(policy, policy, LATER, weeks=0)
    assert len(Replay(policy, policy, LATER + timedelta(days=1), weeks=1).weeks) == 1


# --- the MQL definition replayed ---------------------------------------------------------------


def stored_lead(lead_id: int, **fields: Any) -> LeadView:
    lead = LeadView(
        id=lead_id,
        external_id=f"hs-{lead_id}",
        email=f"lead{lead_id}@acme.example",
        stage=Stage.NURTURE,
        segment="mid_market",
        channel="C0MID",
        tier="warm",
        score=40,
        sla_version="v0",
        received_at=datetime(2026, 11, 23, tzinfo=UTC),
        title="Analyst",
        company={"name": f"Acme {lead_id}", "employees": 240},
        source="content",
        engagement=[
            {"type": "ebook", "title": "Enterprise guide", "at": "2026-11-20T00:00:00+00:00"}
        ],
    )
    return replace(lead, **fields)


def test_the_mql_replay_counts_flips_and_leaves_out_what_it_cannot_read(policy: Policy) -> None:
    data = yaml.safe_load((ROOT / "sla.yaml").read_text())
    data["mql"]["threshold"] = 40
    looser = parse_policy(data)
    replay = MqlReplay(policy, looser, examples=1)
    leads = [stored_lead(1), stored_lead(2), stored_lead(3, email="not an email")]
    replay.add(candidate(lead) for lead in leads)
    assert (replay.total["today"].mqls, replay.total["proposed"].mqls) == (0, 2)
    assert replay.flipped == {"gained": 2} and replay.unreadable == 1
    (flip,) = replay.gained  # one example asked for
    assert (flip.id, flip.company, flip.today, flip.proposed) == (1, "Acme 1", 40, 40)
    assert flip.why == "score 40"
    assert replay.by_source["content"]["proposed"].mqls == 2


def test_a_lead_rejected_untouched_inside_a_files_window_is_not_measured_on_first_touch(
    policy: Policy, strict: Policy
) -> None:
    """As the SLA report counts it: a lead rejected (Not a fit, Bad data) without a touch by
    the file's first-touch deadline is neither met nor missed; rejected after it, a miss.
    Monday 11:00, hot: today's deadline is 13:00, the strict file's 12:00."""
    spam = lead(local(2026, 11, 23, 11, 0), closed=local(2026, 11, 23, 11, 45))
    late = lead(local(2026, 11, 23, 11, 0), closed=local(2026, 11, 23, 12, 30))
    spam, late = replace(spam, rejected=True), replace(late, rejected=True)
    assert (
        judge(spam, policy, LATER).first_touch_met,
        judge(spam, strict, LATER).first_touch_met,
    ) == (None, None)
    assert (
        judge(late, policy, LATER).first_touch_met,
        judge(late, strict, LATER).first_touch_met,
    ) == (None, False)
    nurtured = lead(local(2026, 11, 23, 11, 0), closed=local(2026, 11, 23, 11, 45))
    assert judge(nurtured, policy, LATER).first_touch_met is False  # closed, not rejected


def test_a_lead_rejected_untouched_at_a_files_deadline_is_inside_it(
    policy: Policy, strict: Policy
) -> None:
    """The boundary as the SLA report draws it (storage/reports.py `first_touch_due`: closed
    at the deadline is inside it, as a touch at the deadline is on time): Monday 11:00, hot,
    closed *Bad data* untouched at 12:00, the strict file's deadline to the second; a second
    later it is the strict file's miss. Today's file (13:00) measures neither."""
    at_edge = lead(local(2026, 11, 23, 11, 0), closed=local(2026, 11, 23, 12, 0))
    after = lead(local(2026, 11, 23, 11, 0), closed=local(2026, 11, 23, 12, 0, 1))
    at_edge, after = replace(at_edge, rejected=True), replace(after, rejected=True)
    assert judge(at_edge, strict, LATER).first_touch_due == local(2026, 11, 23, 12, 0)
    assert judge(at_edge, strict, LATER).first_touch_met is None
    assert judge(after, strict, LATER).first_touch_met is False
    assert judge(after, policy, LATER).first_touch_met is None
