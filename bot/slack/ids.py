"""Every action id, callback id and metadata type Handoff puts in Slack, in one place."""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    CLAIM = "lead_claim"
    ATTEMPT = "lead_attempt"  # + "_<kind>": lead_attempt_email, lead_attempt_call, ...
    DISPOSE = "lead_dispose"  # + "_<code>": lead_dispose_qualified, ...
    REASSIGN = "reassign"  # managers only (bot/domain/access.py): the alert's rep picker
    LEAD_REASSIGN = "lead_reassign"  # managers only: the lead message's and /lead's rep picker
    REPORT_SHARE = "report_share"  # managers and reporters: post the report to the channel
    SNOOZE = "snooze"  # managers only: the alert's Snooze 1h button
    INFO_ANSWER = "lead_info_answer"  # marketing (feedback channel) and managers: answer a question
    RATE = "lead_rate"  # + "_fit" / "_timing": the owner's 1–5 menus on a closed lead


class CallbackId(StrEnum):
    DISPOSE_MODAL = "lead_dispose_modal"
    INFO_MODAL = "lead_info_modal"  # a rep's question for marketing ("request more info")
    ANSWER_MODAL = "lead_info_answer_modal"  # marketing's answer to it


LEAD_METADATA_TYPE = "handoff_lead"  # a lead's own message
MESSAGE_METADATA_TYPE = "handoff_message"  # every other message Handoff posts


def attempt_action(kind: str) -> str:
    return f"{ActionId.ATTEMPT}_{kind}"


def dispose_action(code: str) -> str:
    return f"{ActionId.DISPOSE}_{code}"


def rate_action(rated: str) -> str:
    return f"{ActionId.RATE}_{rated}"
