"""Nurture and recycle come back, and "request more info": the pure rules, hand-computed.

The example SLA scoring with the built-in definition (its signals: the section "with the file's
signals"): Sydney business hours 09:00–17:00 Mon–Fri, MQL threshold 60, required fields
email, company.name and title; `nurture_after` 90 working days until compact durations become
calendar time (issue 12 item 1)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain import escalation
from bot.domain.comeback import arrives_again, new_cycle, new_engagement, rescore
from bot.domain.durations import Clock, Duration
from bot.domain.info import (
    QUESTION_MAX,
    asked_at_of,
    check_answer_text,
    check_answerer,
    check_question,
    is_current,
    resumed,
    token,
)
from bot.domain.intake import parse_lead
from bot.domain.lead import LeadView, Stage, check_work, comes_back_at, earlier_cycle_post
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.domain.refusal import Reason, Refusal
from bot.domain.routing import OWN_SCORE
from bot.services.sweep import decide
from storage.rotation import RotationAsk, Suggestion
from tests.unit.test_policy_escalation import example, one_problem

MONDAY_1PM = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 13:00 in Sydney (AEDT)


def builtin() -> dict[str, Any]:
    """The example SLA file without its fit and intent signals: the built-in definition."""
    data = example()
    data["mql"].pop("fit", None)
    data["mql"].pop("intent", None)
    return data


@pytest.fixture
def policy() -> Policy:
    """The example SLA scoring with the built-in definition: the scores here are hand-computed
    from its fixed weights (the file's own signals come back below, and in test_scoring.py)."""
    return parse_policy(builtin())


@pytest.fixture
def shipped() -> Policy:
    return parse_policy(example())


WEBINAR = {"type": "webinar", "title": "Fixing lead leakage", "url": None, "at": None}
DEMO = {"type": "demo_request", "title": "Book a demo", "url": None, "at": None}


def nurtured(**fields: Any) -> LeadView:
    """A lead nurtured at intake: a manager at a 2,400-person company, one webinar: 20 + 20 +
    15 = 55, under the threshold of 60."""
    lead = LeadView(
        id=7,
        external_id="hs-7",
        email="sam@northwind.example",
        stage=Stage.NURTURE,
        segment="enterprise",
        channel="C0ENT",
        tier="warm",
        score=55,
        sla_version="v0",
        received_at=MONDAY_1PM,
        name="Sam Lee",
        title="Operations Manager",
        company={"name": "Northwind", "employees": 2400, "country": "AU"},
        source="webinar",
        engagement=[WEBINAR],
        score_reasons=["manager-level title (+20)", "2,400 employees (+20)"],
        stage_reason="score 55 is below the MQL threshold 60",
        cycle_started_at=MONDAY_1PM,
    )
    return replace(lead, **fields)


def sent(**fields: Any) -> Any:
    payload: dict[str, Any] = {"external_id": "hs-7", "email": "sam@northwind.example"}
    payload |= fields
    lead_in, errors = parse_lead(payload)
    assert lead_in is not None, errors
    return lead_in


# --- new engagement ---------------------------------------------------------------------------


def test_new_engagement_is_what_the_lead_has_not_had_by_type_title_url_and_time() -> None:
    again = {**WEBINAR, "type": "WEBINAR "}  # the same entry, spelled differently
    assert new_engagement([WEBINAR], [again]) == []
    assert new_engagement([WEBINAR], [WEBINAR, DEMO, DEMO]) == [DEMO]  # each once, in order
    later = {**WEBINAR, "at": "2026-12-01T00:00:00Z"}  # the same webinar, another time
    assert new_engagement([WEBINAR], [later]) == [later]
    other = {**WEBINAR, "title": "Forecasting that holds"}  # another webinar
    recording = {**WEBINAR, "url": "https://northwind.example/recording"}
    assert new_engagement([WEBINAR], [other, recording]) == [other, recording]


def test_a_duplicate_with_nothing_new_is_a_duplicate(policy: Policy) -> None:
    assert arrives_again(nurtured(), sent(engagement=[WEBINAR]), policy).kind == "duplicate"
    assert arrives_again(nurtured(), sent(), policy).kind == "duplicate"
    assert arrives_again(nurtured(), sent(score=40), policy).kind == "duplicate"  # lower


def test_a_nurtured_lead_with_a_demo_request_requalifies(policy: Policy) -> None:
    # 20 (manager) + 20 (employees) + min(15 + 30, 50) = 85 ≥ 60: an MQL, in enterprise.
    again = arrives_again(nurtured(), sent(engagement=[DEMO]), policy)
    assert again.kind == "requalified"
    assert again.rescored is not None and again.rescored.routing.score.value == 85
    assert again.engagement == [WEBINAR, DEMO]


def test_a_higher_score_sent_by_the_marketing_system_is_new(policy: Policy) -> None:
    again = arrives_again(nurtured(), sent(score=70), policy)
    assert again.kind == "requalified"
    assert again.rescored is not None and again.rescored.routing.score.value == 70
    own = nurtured(score=50, score_reasons=[OWN_SCORE])
    assert arrives_again(own, sent(score=58), policy).kind == "still_nurture"
    assert arrives_again(own, sent(score=58), policy).reason == (
        "score 58 is below the MQL threshold 60"
    )


def test_new_engagement_that_is_not_enough_keeps_the_lead_in_nurture(policy: Policy) -> None:
    page = {"type": "page", "title": "Blog", "url": None, "at": None}  # any other type: +10
    lead = nurtured(title="Analyst", score=35)  # 0 + 20 + 15 = 35; with a page 45
    again = arrives_again(lead, sent(engagement=[page]), policy)
    assert again.kind == "still_nurture"
    assert again.rescored is not None and again.rescored.routing.score.value == 45
    assert again.engagement == [WEBINAR, page]


def test_an_open_or_rejected_lead_only_stores_new_engagement(policy: Policy) -> None:
    for stage in (Stage.MQL, Stage.SAL, Stage.REJECT, Stage.SQL):
        again = arrives_again(nurtured(stage=stage), sent(engagement=[DEMO]), policy)
        assert (again.kind, again.engagement) == ("engagement", [WEBINAR, DEMO])


def test_a_recycled_lead_with_new_engagement_requalifies(policy: Policy) -> None:
    recycled = nurtured(stage=Stage.RECYCLE, score=88, disposition_code="no_response")
    assert arrives_again(recycled, sent(engagement=[DEMO]), policy).kind == "requalified"


# --- re-engagement date -------------------------------------------------------------------------


def test_a_nurtured_lead_comes_back_after_nurture_after(policy: Policy) -> None:
    assert policy.nurture_after == Duration(days=90, clock=Clock.CALENDAR)  # 90 calendar days
    back = comes_back_at(nurtured(), policy, Stage.NURTURE, MONDAY_1PM)
    # 90 days end on Sunday 21 Feb 2027: the lead comes back when work opens, Monday 09:00.
    assert MONDAY_1PM + timedelta(days=90) == datetime(2027, 2, 21, 2, 0, tzinfo=UTC)
    assert back == datetime(2027, 2, 21, 22, 0, tzinfo=UTC)  # Mon 22 Feb 09:00 AEDT


def test_the_sweep_plans_a_nurtured_lead_only_when_its_date_has_come(policy: Policy) -> None:
    back = datetime(2027, 4, 1, tzinfo=UTC)
    lead = nurtured(next_action_at=back)
    early = escalation.plan(lead, policy, back.replace(day=1, month=3), set())
    assert (early.recycle, early.next_at, early.fire) == (False, back, [])
    assert escalation.plan(lead, policy, back, set()).recycle


def test_rescoring_without_anything_new_keeps_a_nurtured_lead(policy: Policy) -> None:
    rescored = rescore(nurtured(), policy)
    assert not rescored.qualifies and rescored.routing.score.value == 55


def test_a_new_cycle_takes_the_new_score_segment_tier_and_clocks(policy: Policy) -> None:
    rescored = rescore(nurtured(), policy, [DEMO])
    cycle = new_cycle(nurtured(attempts=2), policy, MONDAY_1PM, "U0REP2", rescored)
    fresh = cycle.lead
    assert fresh.attempts == 0  # the new post counts its own attempts: 0/6, not 2/6
    assert (fresh.stage, fresh.cycle, fresh.score, fresh.tier) == (Stage.MQL, 2, 85, "hot")
    assert (fresh.segment, fresh.channel, fresh.suggested_owner) == (
        "enterprise",
        "C0ENT",
        "U0REP2",
    )
    assert fresh.sla_version == policy.version and fresh.stage_reason is None
    # hot: 2 working hours to first touch (13:00 → 15:00), half of it to claim (14:00).
    assert fresh.first_touch_due_at == datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    assert fresh.claim_due_at == datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    assert cycle.values["stage"] == "mql" and cycle.values["engagement"] == [WEBINAR, DEMO]
    assert cycle.previous["cycle"] == 1 and cycle.previous["stage"] == "nurture"
    # The reports count it as an MQL now, and its timeline says the score it came back with.
    assert cycle.values["mql"] is True
    assert (cycle.previous["score"], cycle.previous["new_score"]) == (55, 85)


def test_a_lead_routed_home_to_another_segment_takes_its_channel_and_claim_window(
    policy: Policy,
) -> None:
    """A recycled enterprise lead the routing rules send to mid market (a named account's
    owner, say): its new cycle is posted there, held for the suggested rep for mid market's
    window (15 business minutes from 13:00), not run by enterprise's open claim."""
    data = snapshot(policy)
    for segment in data["segments"]:
        if segment["name"] == "mid_market":
            segment |= {"claim": "assigned", "claim_window": "15 business minutes"}
    windowed = parse_policy(data)
    home = windowed.segment("mid_market")
    assert home is not None
    recycled = nurtured(stage=Stage.RECYCLE, score=88, disposition_code="no_response")
    fresh = new_cycle(recycled, windowed, MONDAY_1PM, "U0REP3", home=home).lead
    assert (fresh.segment, fresh.channel) == ("mid_market", home.channel)
    assert fresh.claim_opens_at == MONDAY_1PM + timedelta(minutes=15)


# --- request more info --------------------------------------------------------------------------


def test_a_question_is_required_and_limited() -> None:
    assert check_question("  Which product line?  ") == "Which product line?"
    for text in ("", "   ", None, "x" * (QUESTION_MAX + 1)):
        with pytest.raises(Refusal) as refused:
            check_question(text)
        assert set(refused.value.fields) == {"question"}
    with pytest.raises(Refusal) as refused:
        check_answer_text(" ")
    assert set(refused.value.fields) == {"answer"}


def test_a_question_token_names_its_time() -> None:
    asked = datetime(2026, 11, 23, 2, 0, 0, 123456, tzinfo=UTC)
    assert token(asked) == "1795399200123456"
    assert asked_at_of(token(asked)) == asked
    assert asked_at_of("12:34") is None and asked_at_of("") is None
    assert asked_at_of("9" * 20) is None  # a forged button: no year holds it
    lead = nurtured(stage=Stage.SAL, owner="U0REP1", info_asked_at=asked)
    assert is_current(lead, asked) and not is_current(replace(lead, info_asked_at=None), asked)


def test_marketing_answers_in_its_channel_managers_anywhere(policy: Policy) -> None:
    check_answerer("U0MKT1", policy.channels.marketing_feedback, policy)
    check_answerer("U0MGR1", None, policy)
    with pytest.raises(Refusal) as refused:
        check_answerer("U0MKT1", "C0ENT", policy)
    assert refused.value.reason is Reason.NOT_ALLOWED


def waiting(**fields: Any) -> LeadView:
    claimed = nurtured(stage=Stage.SAL, owner="U0REP1", claimed_at=MONDAY_1PM, score=85)
    asked = {"info_question": "Budget?", "info_asked_at": MONDAY_1PM, "info_asked_by": "U0REP1"}
    return replace(claimed, **(asked | fields))


def test_while_marketing_has_the_question_no_clock_runs_and_the_owner_waits(
    policy: Policy,
) -> None:
    lead = waiting(disposition_due_at=datetime(2026, 11, 23, 4, 0, tzinfo=UTC))
    assert escalation.windows(lead, policy) == []
    assert escalation.windows(replace(lead, info_asked_at=None), policy) != []
    with pytest.raises(Refusal) as refused:
        check_work(lead, "U0REP1", policy, "log an attempt")
    assert refused.value.reason is Reason.NOT_READY and "Budget?" in refused.value.message


def test_the_answer_gives_each_deadline_the_time_it_had_left_in_its_clock(policy: Policy) -> None:
    # Asked Mon 13:00 with the feedback due Mon 15:00 (2 hours left) and the first touch
    # overdue since Mon 12:00; answered Tue 16:00. In business time (`72 business hours`):
    # Tue 17:00 + 1h = Wed 10:00. In calendar time (`72h`, the fixture's): Tue 16:00 + 2h.
    lead = waiting(
        disposition_due_at=datetime(2026, 11, 23, 4, 0, tzinfo=UTC),
        first_touch_due_at=datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
    )
    tuesday_4pm = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    assert policy.disposition_deadline.clock is Clock.CALENDAR
    calendar_back = resumed(lead, policy, tuesday_4pm)
    assert calendar_back.disposition_due_at == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # 18:00
    business = policy.model_copy(update={"disposition_deadline": Duration.parse("72bh")})
    back = resumed(lead, business, tuesday_4pm)
    assert back.disposition_due_at == datetime(2026, 11, 24, 23, 0, tzinfo=UTC)  # Wed 10:00
    assert back.first_touch_due_at == lead.first_touch_due_at  # overdue already: as it was
    assert (back.info_question, back.info_asked_at, back.waiting_for_info) == (None, None, False)


def test_after_the_answer_the_next_touch_follows_the_cadence(policy: Policy) -> None:
    """Before any attempt the next touch is the first touch (bot/domain/cadence.py), moved as
    it is; after one, a calendar-time touch moved past the pause still falls in working time
    (it fell on a Sunday, earlier than the first touch)."""
    asked = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Mon 11:00 AEDT
    first = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Mon 13:00: two working hours left
    lead = waiting(info_asked_at=asked, first_touch_due_at=first, next_touch_due_at=first)
    answered = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # Fri 16:00
    back = resumed(lead, policy, answered)
    assert back.first_touch_due_at == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)  # Mon 10:00
    assert back.next_touch_due_at == back.first_touch_due_at
    touched = replace(lead, touches_counted=1, first_touch_at=asked)
    later = resumed(touched, policy, answered)  # the pause onto Mon 13:00: Fri 18:00, after work
    assert later.next_touch_due_at == datetime(2026, 11, 29, 22, 0, tzinfo=UTC)  # Mon 09:00


def test_the_sla_file_refuses_a_more_info_code_that_needs_reasons_or_attempts() -> None:
    def ask_with(**extra: Any) -> Any:
        code = {"code": "ask_sales_ops", "label": "Ask", "outcome": "more_info"}
        return lambda data: data["dispositions"].append(code | extra)

    for extra in ({"requires_attempts": True}, {"reason_required": True, "reasons": ["Budget"]}):
        problem = one_problem(ask_with(**extra))
        assert "a more_info code asks marketing a question" in problem
    problem = one_problem(lambda data: data.update(nurture_after="3 months"))
    assert problem.startswith("nurture_after: ") and "month" in problem


# --- the sweep at a re-engagement date ------------------------------------------------------------


def test_at_its_date_a_nurtured_lead_is_scored_under_the_sla_in_force(policy: Policy) -> None:
    data = builtin()
    data["mql"]["threshold"] = 50  # the SLA was changed since the lead was nurtured: 55 ≥ 50
    current = parse_policy(data)
    due = datetime(2027, 4, 1, tzinfo=UTC)
    lead = nurtured(next_action_at=due, sla_version=policy.version)

    class First:  # the rotation's turn: its first rep
        def take(self, ask: RotationAsk) -> Suggestion:
            return Suggestion(ask.rules.reps[0], ask.reason | {"rep": ask.rules.reps[0]})

        def uncount(self, segment: str, rep: str, day: str, week: str) -> None:
            raise AssertionError("a new cycle takes the lead from nobody")

    pick = First()

    kept = decide(lead, set(), pick, {policy.version: policy}, due)
    assert kept is not None and kept.values == {} and kept.effects == []  # quiet
    assert kept.next_action_at == comes_back_at(lead, policy, Stage.NURTURE, due)
    assert kept.events == [
        (
            "nurture_checked",
            {"cycle": 1, "score": 55, "reason": "score 55 is below the MQL threshold 60"},
        )
    ]
    back = decide(lead, set(), pick, {policy.version: policy}, due, current=current)
    assert back is not None and back.acted
    assert (back.values["cycle"], back.values["stage"], back.values["suggested_owner"]) == (
        2,
        "mql",
        "U0REP1",
    )
    assert back.values["sla_version"] == current.version
    assert back.values["route_reason"] == {"rule": "round_robin", "rep": "U0REP1"}  # why, shown
    assert [kind for kind, _ in back.events] == ["nurture_reengaged"]
    assert len(back.effects) == 2  # its post in C0ENT, and App Homes


# --- with the file's signals ---------------------------------------------------------------------


def _ago(days: float, before: datetime = MONDAY_1PM) -> str:
    return (before - timedelta(days=days)).isoformat()


EBOOK = {"type": "content_download", "title": "Enterprise ebook", "url": None, "at": _ago(12)}


def nurtured_by_signals(**fields: Any) -> LeadView:
    """Nurtured at intake under the shipped file: 240 employees +20, the enterprise ebook
    12 days before +20 = 40, under 60."""
    lead = nurtured(
        title="Analyst",
        company={"name": "Acme", "employees": 240},
        segment="mid_market",
        engagement=[EBOOK],
        score=40,
        score_reasons=["240 employees +20", "Enterprise ebook 12 days ago +20"],
    )
    return replace(lead, **fields)


def test_sent_again_it_is_scored_as_of_its_return(shipped: Policy) -> None:
    """A pricing visit a day before it is sent again, three days after it arrived: as of the
    return it is recent (+20), and the ebook, 15 days old by then, still counts: 60."""
    back = MONDAY_1PM + timedelta(days=3)
    visit = {"type": "page_view", "url": "https://acme.example/pricing", "at": _ago(1, back)}
    again = arrives_again(nurtured_by_signals(), sent(engagement=[visit]), shipped, back)
    assert again.kind == "requalified"
    assert again.rescored is not None
    score = again.rescored.routing.score
    assert (score.value, score.reasons[1]) == (60, "Pricing page 1 day ago +20")
    # As of its first arrival the visit had not happened yet.
    then = arrives_again(nurtured_by_signals(), sent(engagement=[visit]), shipped)
    assert then.kind == "still_nurture" and then.rescored is not None
    assert then.rescored.routing.score.value == 40


def test_at_its_date_old_engagement_has_run_out_of_its_window(shipped: Policy) -> None:
    due = MONDAY_1PM + timedelta(days=90)
    rescored = rescore(nurtured_by_signals(), shipped, as_of=due)
    assert not rescored.qualifies
    assert rescored.routing.score.reasons == ["240 employees +20"]  # the ebook is 102 days old
    demo = {"type": "demo", "title": "Book a demo", "at": _ago(0.5, due)}
    rescored = rescore(nurtured_by_signals(), shipped, [demo], as_of=due)
    assert rescored.qualifies and rescored.routing.score.qualified_by == "Demo request"
    cycle = new_cycle(nurtured_by_signals(), shipped, due, "U0REP3", rescored)
    assert cycle.values["handoff_score"] == 60 and cycle.values["score"] == 60


def test_a_new_cycle_starts_with_no_questions_counted(policy: Policy) -> None:
    """The pauses of the cycle it leaves move none of the new cycle's steps."""
    asked, answered = MONDAY_1PM - timedelta(days=3), MONDAY_1PM - timedelta(days=2)
    lead = nurtured(info_pauses=((asked, answered),))
    cycle = new_cycle(lead, policy, MONDAY_1PM, "U0REP2", rescore(lead, policy, [DEMO]))
    assert cycle.lead.info_pauses == () and cycle.values["info_pauses"] == ()


def test_a_pick_is_of_an_earlier_cycle_by_the_cycle_its_post_shows() -> None:
    """The cycle carried in the rating menu decides; the post's ts only for a post rendered
    before the menus carried it (a copy of the current cycle posted again has another ts)."""
    back = nurtured(stage=Stage.SQL, cycle=2, message_ts="200.2")
    assert earlier_cycle_post(back, "100.1", 1) is not None  # the first cycle's post
    assert earlier_cycle_post(back, "100.1", 2) is None  # an old copy of cycle 2's post
    assert earlier_cycle_post(back, "200.2", 2) is None
    assert earlier_cycle_post(back, "100.1") is not None  # no cycle carried: by its ts
    assert earlier_cycle_post(back, "200.2") is None
    assert earlier_cycle_post(nurtured(stage=Stage.SQL, message_ts="200.2"), "100.1") is None
