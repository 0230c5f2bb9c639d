"""The "request more info" views: pure functions of the lead as stored."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.domain.lead import EventView, LeadView, Stage
from bot.domain.policy import Policy
from bot.slack import info_views
from bot.slack.lead_views import lead_card, lead_message

ASKED = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def waiting() -> LeadView:
    return LeadView(
        id=7,
        external_id="hs-7",
        email="sam@northwind.example",
        stage=Stage.SAL,
        segment="enterprise",
        channel="C0ENT",
        tier="hot",
        score=85,
        sla_version="v1",
        received_at=ASKED,
        name="Sam <Lee>",
        company={"name": "Northwind"},
        owner="U0REP1",
        claimed_at=ASKED,
        info_question="Budget <!channel>?",
        info_asked_at=ASKED,
        info_asked_by="U0REP1",
    )


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "button"
    ]


def test_the_marketing_post_has_the_question_and_one_answer_button(policy: Policy) -> None:
    message = info_views.info_request(waiting(), policy, "123", {"U0REP1": "Maya Chen"})
    (answer,) = buttons(message.blocks)
    assert (answer["action_id"], answer["value"]) == ("lead_info_answer", "7:123")
    text = json.dumps(message.blocks)
    assert "Maya Chen asks" in text and "<@U0REP1>" not in text  # named, not pinged
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text  # the lead's words escaped
    assert (
        message.text == "More info needed on Sam &lt;Lee&gt; at Northwind: Budget &lt;!channel&gt;?"
    )


def test_the_marketing_post_names_the_segment_and_source_as_the_lead_post_does(
    policy: Policy,
) -> None:
    lead = replace(waiting(), segment="mid_market", source="paid_search")
    text = json.dumps(info_views.info_request(lead, policy, "123", {}).blocks)
    assert "*Segment*\\nmid market" in text and "mid_market" not in text
    assert "*Source*\\npaid search" in text


def test_a_lead_with_marketing_shows_its_question_and_has_no_buttons(policy: Policy) -> None:
    message = lead_message(waiting(), policy, ASKED)
    assert buttons(message.blocks) == []
    assert "With marketing since" in json.dumps(message.blocks)
    answered = replace(waiting(), info_question=None, info_asked_at=None, info_asked_by=None)
    assert "Log call" in [
        b["text"]["text"] for b in buttons(lead_message(answered, policy, ASKED).blocks)
    ]


def test_a_lead_back_for_a_new_cycle_points_to_its_history(policy: Policy) -> None:
    lead = replace(waiting(), stage=Stage.MQL, owner=None, cycle=2, info_asked_at=None)
    assert "Back for cycle 2" in json.dumps(lead_message(lead, policy, ASKED).blocks)
    assert "Back for cycle" not in json.dumps(
        lead_message(replace(lead, cycle=1), policy, ASKED).blocks
    )


def test_the_answer_note_mentions_only_the_owner(policy: Policy) -> None:
    note = info_views.answered_note(waiting(), "EMEA", "Jo (marketing)")
    assert note.startswith("💬 <@U0REP1> marketing answered (Jo (marketing))")
    assert "*Answer*: EMEA" in note
    modal = info_views.answer_modal(waiting(), "123", "C0MKTFEED")
    assert json.loads(modal["private_metadata"]) == {
        "lead_id": 7,
        "question": "123",
        "channel": "C0MKTFEED",
    }


def test_the_timeline_shows_the_question_the_answer_and_where_a_cycle_came_from(
    policy: Policy,
) -> None:
    events = [
        EventView(7, "requalified", "api", ASKED, {"cycle": 1, "outcome": "nurture"}),
        EventView(7, "info_requested", "U0REP1", ASKED, {"question": "Budget?"}),
        EventView(7, "info_answered", "Jo", ASKED, {"answer": "AUD 40k <!here>"}),
    ]
    text = json.dumps(lead_card(waiting(), events, policy, ASKED).blocks, ensure_ascii=False)
    assert "re-qualified, a new cycle (cycle 1 was nurture)" in text
    assert "a question: “Budget?”" in text
    assert "back with its owner: “AUD 40k &lt;!here&gt;”" in text


def test_a_longest_answer_to_a_longest_question_shows_whole_in_the_answered_post(
    policy: Policy,
) -> None:
    """The modal takes a question of 1,000 characters and an answer of 2,000; marketing's
    question post, replaced by what was answered, shows both whole: a section's text is at
    most 3,000 characters (block-kit/blocks/section-block), so the answer may not be cut
    with "…" to fit one section with the question."""
    from bot.simulator.blockkit import validate_blocks
    from bot.slack.alert_views import settled_alert

    question = "Which budget line pays for this? " * 30  # 990 characters
    answer = ("The EMEA field budget, approved in Q3. " * 52)[:2000]
    lead = replace(waiting(), info_question=question.strip())
    text = info_views.answered_post(lead, answer, "Jo (marketing)", ASKED, policy)
    message = settled_alert(text)
    assert validate_blocks(message.blocks) == []
    shown = "".join(block["text"]["text"] for block in message.blocks)
    assert answer.strip() in shown and "…" not in shown
    assert question.strip() in shown
    assert len(message.text) <= 4000  # chat.update's text
