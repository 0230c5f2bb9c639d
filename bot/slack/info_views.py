""" "Request more info" in Slack: the rep's question modal, the question in the marketing
feedback channel with its Answer button, the answer modal, and the notes in the lead's thread.
Pure functions of the lead as stored (and the question's token)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.domain.info import ANSWER_MAX, QUESTION_MAX
from bot.domain.lead import LeadView
from bot.domain.policy import Disposition, Policy
from bot.slack.blocks import Message, actions, button, context, fields, section
from bot.slack.ids import ActionId, CallbackId
from bot.slack.text import named, one_line, person, plain, readable, safe, slack_date


def _headline(lead: LeadView) -> str:
    company = f" at {lead.company_name}" if lead.company_name else ""
    return f"{lead.display_name}{company}"


def question_modal(lead: LeadView, disposition: Disposition) -> dict[str, Any]:
    """The modal that takes the rep's question before the lead goes back to marketing."""
    return {
        "type": "modal",
        "callback_id": CallbackId.INFO_MODAL,
        "private_metadata": json.dumps({"lead_id": lead.id, "code": disposition.code}),
        "title": {"type": "plain_text", "text": plain(disposition.label, 24)},
        "submit": {"type": "plain_text", "text": "Ask marketing"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(
                f"{one_line(_headline(lead), 500)}\nMarketing sees your question in its feedback "
                "channel. The lead's SLA clocks pause until marketing answers; the answer comes "
                "back in the lead's thread."
            ),
            {
                "type": "input",
                "block_id": "question",
                "label": {"type": "plain_text", "text": "Question for marketing"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "question",
                    "multiline": True,
                    "max_length": QUESTION_MAX,
                    "placeholder": {
                        "type": "plain_text",
                        "text": "What do you need to know to work this lead?",
                    },
                },
            },
        ],
    }


def info_request(
    lead: LeadView, policy: Policy, question_token: str, names: Mapping[str, str]
) -> Message:
    """The question in the marketing feedback channel, with its Answer button."""
    asker = named(lead.info_asked_by or "", names, 100) or "a rep"
    question = lead.info_question or ""
    blocks = [
        section(f"❓ *More info needed* · {one_line(_headline(lead), 400)}"),
        section(f"*{asker} asks*\n{safe(question, QUESTION_MAX + 100)}"),
        fields(
            f"*Lead*\n{one_line(lead.email, 320)}",
            f"*Source*\n{one_line(readable(lead.source or 'unknown'), 200)}",
            f"*Campaign*\n{one_line(lead.campaign or '—', 300)}",
            f"*Segment*\n{one_line(readable(lead.segment), 100)}",
        ),
        actions(
            [button("Answer", ActionId.INFO_ANSWER, f"{lead.id}:{question_token}", "primary")],
            f"info_answer_{lead.id}",
        ),
        context(
            f"The lead's clocks are paused until it is answered · external id "
            f"{one_line(lead.external_id, 255)} · lead {lead.id}"
        ),
    ]
    text = f"More info needed on {_headline(lead)}: {question}"
    return Message(text=one_line(text, 3000), blocks=blocks)


def answer_modal(lead: LeadView, question_token: str, channel: str | None) -> dict[str, Any]:
    """The modal marketing answers in."""
    meta = {"lead_id": lead.id, "question": question_token, "channel": channel}
    return {
        "type": "modal",
        "callback_id": CallbackId.ANSWER_MODAL,
        "private_metadata": json.dumps(meta),
        "title": {"type": "plain_text", "text": "Answer the rep"},
        "submit": {"type": "plain_text", "text": "Send answer"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(
                f"{one_line(_headline(lead), 500)}\n*Question*\n"
                f"{safe(lead.info_question or '', QUESTION_MAX + 100)}"
            ),
            {
                "type": "input",
                "block_id": "answer",
                "label": {"type": "plain_text", "text": "Answer"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "answer",
                    "multiline": True,
                    "max_length": ANSWER_MAX,
                },
            },
        ],
    }


def asked_note(lead: LeadView) -> str:
    """The lead's thread hears that it went back to marketing."""
    asker = person(lead.info_asked_by or "", 100)
    return (
        f"❓ {asker} asked marketing for more info; the SLA clocks are paused until marketing "
        f"answers.\n>{one_line(lead.info_question or '', QUESTION_MAX)}"
    )


def answered_note(lead: LeadView, answer: str, by: str) -> str:
    """The answer in the lead's thread, to its owner (the one person who must act)."""
    owner = f"<@{lead.owner}> " if lead.owner else ""
    return (
        f"💬 {owner}marketing answered ({person(by, 100)}); the lead is yours again and its "
        f"clocks run again.\n*Question*: {one_line(lead.info_question or '', QUESTION_MAX)}\n"
        f"*Answer*: {safe(answer, ANSWER_MAX + 100)}"
    )


def answered_post(lead: LeadView, answer: str, by: str, now: datetime, policy: Policy) -> str:
    """Marketing's question post once answered: what was asked, the answer, by whom and when
    (its Answer button gone, so no old question looks open)."""
    return (
        f"✅ *Answered* · {one_line(_headline(lead), 400)}\n"
        f"*Question*: {one_line(lead.info_question or '', QUESTION_MAX)}\n"
        f"*Answer* ({person(by, 100)}, {slack_date(now, policy.timezone)}): "
        f"{safe(answer, ANSWER_MAX + 100)}"
    )


def answered_there(lead: LeadView, by: str) -> str:
    """The question's thread in the marketing channel hears that it was answered."""
    lead_name = one_line(_headline(lead), 300)
    return f"✅ Answered by {person(by, 100)}; {lead_name} is back with its owner."


def waiting_line(lead: LeadView, policy: Policy) -> str:
    """The lead's message while marketing has its question."""
    since = slack_date(lead.info_asked_at, policy.timezone) if lead.info_asked_at else "now"
    return (
        f"⏸ With marketing since {since}, clocks paused: "
        f"“{one_line(lead.info_question or '', 300)}”"
    )
