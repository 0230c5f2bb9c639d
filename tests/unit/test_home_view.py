"""App Home rendering: a rep's queue and a manager's week, valid for Slack, inert lead text."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.lead import LeadView, Stage
from bot.domain.policy import PlanSettings, Policy
from bot.domain.report import Counts, Facts, Group, Report, build_report
from bot.domain.scoring import OWN_SCORE
from bot.simulator.blockkit import validate_view
from bot.slack.home import (
    HOME_BLOCKS,
    HOME_BYTES,
    OVERDUE_SHOWN,
    Dashboard,
    HomeState,
    Queue,
    home_view,
    most_overdue,
)
from bot.slack.lead_views import lead_message
from tests.unit.test_render import (
    AFTER_DUE,
    BEFORE_DUE,
    DUE,
    HUGE,
    OWNER,
    POSTED,
    assert_no_live_markup,
    assert_valid_blocks,
    buttons,
    hostile_view,
    strings,
    view,
)
from tests.unit.test_report_kpis import AS_OF, BEFORE, FACTS, WEEK

MANAGER = "U0MGR1"


def owned(lead_id: int = 7, **fields: Any) -> LeadView:
    return view(Stage.SAL, id=lead_id, external_id=f"hs-{lead_id}", **fields)


def suggested(lead_id: int = 8, **fields: Any) -> LeadView:
    return view(Stage.MQL, id=lead_id, external_id=f"hs-{lead_id}", **fields)


def queue(mine: list[LeadView], offered: list[LeadView], rep: bool = True) -> Queue:
    return Queue(mine, offered, len(mine), len(offered), rep)


def week(policy: Policy) -> Report:
    return build_report(WEEK, FACTS, BEFORE, policy, AS_OF)


def state(
    policy: Policy,
    mine: Queue | None = None,
    dashboard: Dashboard | None = None,
    notice: str | None = None,
) -> HomeState:
    return HomeState(policy, {policy.version: policy, "v1": policy}, mine, dashboard, notice)


def assert_valid_view(home: dict[str, Any]) -> None:
    """What views.publish accepts (the simulator checks like Slack), and the render suite's
    limits on every block but the Reassign menus (its checks read buttons only)."""
    assert validate_view(home) == []
    assert home["type"] == "home" and len(home["blocks"]) <= HOME_BLOCKS
    plain = [
        block
        for block in home["blocks"]
        if not any(e.get("type") == "static_select" for e in block.get("elements", []))
    ]
    assert_valid_blocks(plain, max_blocks=HOME_BLOCKS)


def text_of(home: dict[str, Any]) -> str:
    return "\n".join(strings(home))


def actions(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(button["action_id"], button["value"]) for button in buttons(blocks)]


def block_ids(home: dict[str, Any]) -> list[str]:
    return [block["block_id"] for block in home["blocks"] if "block_id" in block]


# --- a rep's queue -------------------------------------------------------------------------------


def test_a_rep_sees_their_leads_with_the_buttons_of_their_messages(policy: Policy) -> None:
    mine, offered = owned(), suggested()
    home = home_view(state(policy, queue([mine], [offered])), BEFORE_DUE)

    assert_valid_view(home)
    text = text_of(home)
    assert "Your open leads" in text and "Suggested for you" in text
    assert "Attempts 2/6" in text and "`/lead hs-7`" in text and "<#C0ENT>" in text
    # The same action ids and values as the lead messages, so the same listeners answer.
    expected = actions(lead_message(mine, policy, BEFORE_DUE).blocks) + actions(
        lead_message(offered, policy, BEFORE_DUE).blocks
    )
    assert actions(home["blocks"]) == expected
    assert ("lead_claim", "8") in expected and ("lead_attempt_call", "7") in expected
    assert len(block_ids(home)) == len(set(block_ids(home)))  # unique in the view


def test_each_lead_shows_its_deadline_and_clock_colour(policy: Policy) -> None:
    home = home_view(state(policy, queue([], [suggested()])), BEFORE_DUE)
    assert "First touch due by <!date^" in text_of(home)
    late = home_view(state(policy, queue([], [suggested()])), AFTER_DUE)
    assert "🔴 First touch was due" in text_of(late)
    claimed = owned(disposition_due_at=DUE + timedelta(days=3))
    working = home_view(state(policy, queue([claimed], [])), BEFORE_DUE)
    assert "feedback due by <!date^" in text_of(working)
    assert "72 hours" in text_of(working)


def test_a_suggested_lead_shows_the_crm_score_beside_ours(policy: Policy) -> None:
    """A lead its CRM scored keeps that score, and App Home shows ours beside it, as the post."""
    offered = suggested(score=72, handoff_score=65, score_reasons=[OWN_SCORE])
    text = text_of(home_view(state(policy, queue([], [offered])), BEFORE_DUE))
    assert "MQL, CRM score 72 · Handoff 65, suggested for you" in text
    ours = suggested(score=72, handoff_score=None, score_reasons=[])  # the score is ours alone
    alone = text_of(home_view(state(policy, queue([], [ours])), BEFORE_DUE))
    assert "MQL, score 72, suggested for you" in alone


def test_a_rep_with_nothing_open(policy: Policy) -> None:
    home = home_view(state(policy, queue([], [])), BEFORE_DUE)
    assert_valid_view(home)
    assert "Nothing open" in text_of(home)
    assert buttons(home["blocks"]) == []


def test_someone_leads_never_go_to_is_told_so(policy: Policy) -> None:
    home = home_view(state(policy, queue([], [], rep=False)), BEFORE_DUE)
    assert_valid_view(home)
    assert "not in a segment's pool" in text_of(home)


def test_hostile_lead_text_stays_inert_in_every_part(policy: Policy) -> None:
    mine = replace(hostile_view(Stage.SAL), id=1)
    offered = replace(hostile_view(Stage.MQL), id=2)
    late = replace(hostile_view(Stage.SAL), id=3, owner=OWNER)
    dashboard = Dashboard(week(policy), [late], more=False)
    home = home_view(state(policy, queue([mine], [offered]), dashboard), AFTER_DUE)

    assert_valid_view(home)
    # The only markup is Handoff's own: the lead's channel, its owner, Slack's date tokens.
    assert_no_live_markup(json.loads(json.dumps(home).replace("<#C0ENT>", "#C0ENT")))
    assert "Smith &amp; Sons" in text_of(home)


def test_a_long_queue_stays_within_slacks_limits_and_counts_the_rest(policy: Policy) -> None:
    mine = [owned(i, name=HUGE) for i in range(1, 61)]
    offered = [suggested(100 + i, company={"name": HUGE}) for i in range(60)]
    late = [owned(200 + i, disposition_due_at=POSTED) for i in range(OVERDUE_SHOWN)]
    dashboard = Dashboard(week(policy), late, more=True)
    home = home_view(state(policy, queue(mine, offered), dashboard, notice="Done."), AFTER_DUE)

    assert_valid_view(home)
    assert len(home["blocks"]) <= HOME_BLOCKS
    text = text_of(home)
    assert "more: the channel has them all" in text  # the leads that did not fit are counted
    assert "most overdue are shown" in text
    assert len(block_ids(home)) == len(set(block_ids(home)))
    shown = {value for _, value in actions(home["blocks"])}
    assert "1" in shown and "100" in shown  # both kinds of lead got room


def test_the_answer_to_a_press_comes_first(policy: Policy) -> None:
    notice = "Too late: this lead was already claimed by <@U0REP1>."
    home = home_view(state(policy, queue([], []), notice=notice), BEFORE_DUE)
    assert_valid_view(home)
    first = home["blocks"][0]
    assert first["type"] == "section" and notice in first["text"]["text"]


# --- a manager's week ----------------------------------------------------------------------------


def test_a_manager_sees_the_week_and_the_overdue_leads_with_controls(policy: Policy) -> None:
    unclaimed = suggested(9, suggested_owner=OWNER, claim_due_at=POSTED + timedelta(hours=1))
    dashboard = Dashboard(week(policy), [unclaimed], more=False)
    home = home_view(state(policy, None, dashboard), AFTER_DUE)

    assert_valid_view(home)
    text = text_of(home)
    assert "This week's SLA" in text and "2026-W48" in text
    rag_line = home["blocks"][1]["text"]["text"].split("\n")[1]
    assert rag_line.index("🔴") < rag_line.index("🟢")  # the worst first
    assert "Your open leads" not in text  # a manager without leads of their own
    assert "Claim overdue by" in text and f"suggested <@{OWNER}>" in text
    (controls,) = [b for b in home["blocks"] if b["type"] == "actions"]
    menu, snooze = controls["elements"]
    assert menu["action_id"] == "reassign"
    # the pool but the rep it is suggested to already (U0REP2)
    assert [option["value"] for option in menu["options"]] == ["9:U0REP1"]
    assert (snooze["action_id"], snooze["value"]) == ("snooze", "9")


def test_a_manager_sees_every_headline_figure_of_the_week(policy: Policy) -> None:
    report = week(policy)
    assert len(report.headline) > 10  # more than one section's fields hold
    home = home_view(state(policy, None, Dashboard(report, [], more=False)), AFTER_DUE)

    assert_valid_view(home)
    text = text_of(home)
    missing = [kpi.label for kpi in report.headline if f"*{kpi.label}*" not in text]
    assert missing == []


def test_a_manager_with_nothing_overdue(policy: Policy) -> None:
    nothing = Facts({}, {}, {}, [])
    empty = build_report(WEEK, nothing, nothing, policy, AS_OF)
    home = home_view(state(policy, None, Dashboard(empty, [], more=False)), AFTER_DUE)
    assert_valid_view(home)
    assert "No open lead is past a deadline" in text_of(home)


def test_a_manager_who_is_also_a_rep_sees_both(policy: Policy) -> None:
    dashboard = Dashboard(week(policy), [], more=False)
    home = home_view(state(policy, queue([owned()], []), dashboard), BEFORE_DUE)
    assert_valid_view(home)
    text = text_of(home)
    assert text.index("Your open leads") < text.index("This week's SLA")


def test_most_overdue_first_whichever_deadline_made_it_late(policy: Policy) -> None:
    now = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    versions = {"v1": policy}
    unclaimed = suggested(1, claim_due_at=now - timedelta(hours=5), first_touch_due_at=now)
    untouched = owned(2, first_touch_due_at=now - timedelta(hours=9))
    no_feedback = owned(
        3,
        first_touch_at=POSTED,
        first_touch_due_at=POSTED,
        disposition_due_at=now - timedelta(hours=1),
    )
    on_time = owned(4, first_touch_due_at=now + timedelta(hours=1))
    ranked = most_overdue([unclaimed, untouched, no_feedback, on_time], versions, now)
    assert [lead.id for lead in ranked] == [2, 1, 3]


def test_a_managers_week_shows_amounts_in_the_slas_currency(policy: Policy) -> None:
    """Pipeline and won amounts read as `/sla-report` writes them (`AUD 48k`), not as bare
    numbers beside them (`48k`)."""
    priced = policy.model_copy(update={"plan": PlanSettings(currency="AUD")})
    deals = Facts(
        {
            Group("enterprise", "webinar", "U0REP1"): Counts(
                received=1, mql=1, posted=1, opportunities=1, pipeline=48_000, won_amount=12_500
            )
        },
        {},
        {},
        [],
    )
    report = build_report(WEEK, deals, Facts({}, {}, {}, []), priced, AS_OF)
    home = home_view(state(priced, None, Dashboard(report, [], more=False)), AFTER_DUE)
    assert_valid_view(home)
    text = text_of(home)
    assert "*Pipeline generated*\nAUD 48k" in text
    assert "*Won*\nAUD 12k" in text


def test_a_managers_empty_week_does_not_say_no_figure_is_against_a_target(
    policy: Policy,
) -> None:
    """As `/sla-report` says it: with no rate or time to colour but the week's MQL volume
    coloured against its target (0/10 🔴), the week's colour line does not say that no figure
    is against the SLA's targets."""
    nothing = Facts({}, {}, {}, [])
    empty = build_report(WEEK, nothing, nothing, policy, AS_OF)
    assert any(kpi.rag for kpi in empty.volume)
    text = text_of(home_view(state(policy, None, Dashboard(empty, [], more=False)), AFTER_DUE))
    assert "Only MQL volume is coloured yet" in text
    assert "Nothing to colour yet" not in text


def test_a_manager_who_is_a_rep_keeps_room_for_both_with_a_crowded_pool(policy: Policy) -> None:
    """Ten overdue cards, each with a Reassign menu of 100 long Cyrillic names (6 bytes a
    character as sent), and a queue of long emoji leads: the overdue cards take half the room,
    the queue the rest, and the view stays within views.publish's 250 kB."""
    reps = [f"U0R{n:04d}" for n in range(100)]
    segments = [
        s.model_copy(update={"reps": reps}) if s.name == "enterprise" else s
        for s in policy.segments
    ]
    crowded = policy.model_copy(update={"segments": segments})
    names = {rep: f"Александра Владимировна Константинопольская {rep}" for rep in reps}
    late = [suggested(200 + i, claim_due_at=POSTED, suggested_owner=reps[0]) for i in range(10)]
    emoji = "👩" * 500
    mine = [owned(i, owner=reps[1], name=emoji, title=emoji) for i in range(1, 41)]
    dashboard = Dashboard(week(crowded), late, more=False)
    home = home_view(
        HomeState(
            crowded,
            {crowded.version: crowded, "v1": crowded},
            queue(mine, []),
            dashboard,
            names=names,
        ),
        AFTER_DUE,
    )

    assert validate_view(home) == []
    assert len(json.dumps(home)) <= HOME_BYTES
    shown = {value for _, value in actions(home["blocks"])}
    assert "1" in shown and "200" in shown  # a lead of each part
    assert "more: the channel has them all" in text_of(home)
    assert "most overdue are shown" in text_of(home)


def test_a_manager_in_a_pool_with_nothing_open_gets_the_whole_room_for_the_overdue_list(
    policy: Policy,
) -> None:
    """A manager who is also a rep has a queue, empty or short: it took half the room whatever
    it held, and the overdue list of a crowded pool showed half the cards that fit, saying
    "The 3 most overdue are shown" with room left for as many again."""
    reps = [f"U0R{n:04d}" for n in range(100)]
    segments = [
        s.model_copy(update={"reps": reps}) if s.name == "enterprise" else s
        for s in policy.segments
    ]
    crowded = policy.model_copy(update={"segments": segments})
    names = {rep: f"Александра Владимировна Константинопольская {rep}" for rep in reps}
    late = [suggested(200 + i, claim_due_at=POSTED, suggested_owner=reps[0]) for i in range(10)]
    versions = {crowded.version: crowded, "v1": crowded}

    def snoozes(mine: Queue | None) -> int:
        dashboard = Dashboard(week(crowded), late, more=False)
        home = home_view(HomeState(crowded, versions, mine, dashboard, names=names), AFTER_DUE)
        assert validate_view(home) == [] and len(json.dumps(home)) <= HOME_BYTES
        return sum(1 for action, _ in actions(home["blocks"]) if action == "snooze")

    alone = snoozes(None)
    assert 1 < alone < 10
    assert snoozes(queue([], [])) == alone  # nothing open: the queue needs one line
    assert snoozes(queue([owned(1, owner=reps[1])], [])) == alone  # one lead: a card
