"""Why a lead went to its rep, in words: one wording for every place a person reads it (the
Slack post's why line, the CRM field `route_reason`). Pure: the caller says how a rep and a
piece of lead text are written (a Slack mention and escaped mrkdwn, or plain text)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.domain.escalation import GONE_WORDS, LADDER_WORDS
from bot.domain.lead import LeadView
from bot.domain.routing import BY_CRM, BY_MANAGER, OFFERED


@dataclass(frozen=True)
class Style:
    """How the words are written: `rep` turns a rep's name (a Slack user id, or any other name
    such as a CRM user's) into text; `text` puts lead text (a domain, a territory, a reason) on
    one line, at most the given length."""

    rep: Callable[[str, int], str]
    text: Callable[[object, int], str]


def why(lead: LeadView, style: Style) -> str | None:
    """Why the lead's suggested owner was chosen, in one line ("Named account of U…"); a lead
    the SLA took from its rep says so first ("Reassigned by the SLA from U… (claim overdue) ·
    Round robin: …"). None for a lead routing never ran for (not an MQL)."""
    reason = lead.route_reason
    if not reason:
        # Stored before routing said why: the plain round robin was all there was.
        if not lead.suggested_owner:
            return None
        return f"Round robin: {_rep(lead.suggested_owner, style)}"
    line = _rule_line(reason, style)
    passed = _passed(reason, style)
    if passed and line is not None:
        line = f"{passed} → {line}"
    taken = _taken_by_the_sla(reason, style)
    if taken is None or line is None:
        return line
    return f"{taken} · {line}"


def _rep(value: Any, style: Style) -> str:
    return style.rep(str(value), 40) if value else "nobody"


_PASSED = {
    "named_account": "Named account of {rep}",
    "account_match": "Same account as an earlier lead of {rep}",
    "partner": "Partner manager {rep}",
    "fallback": "Fallback owner {rep}",
}


def _passed(reason: dict[str, Any], style: Style) -> str | None:
    """The rules the lead passed because their rep was away ("Named account of U…: away"), or
    None."""
    words = []
    for rule in reason.get("passed") or []:
        if isinstance(rule, dict) and (shape := _PASSED.get(str(rule.get("rule")))):
            words.append(shape.format(rep=_rep(rule.get("rep"), style)) + ": away")
    return " · ".join(words) or None


def _taken_by_the_sla(reason: dict[str, Any], style: Style) -> str | None:
    """A lead the sweep's `reassign` step moved (its reason names the ladder that ran out):
    "Reassigned by the SLA from U… (claim overdue)", or one handed on because its rep left:
    "… (deactivated in Slack)"; None for any other."""
    ladder = reason.get("reassigned")
    if not ladder:
        return None
    before = f" from {_rep(reason['from'], style)}" if reason.get("from") else ""
    if str(ladder) in GONE_WORDS:
        return f"Reassigned by the SLA{before} ({GONE_WORDS[str(ladder)]})"
    what = LADDER_WORDS.get(str(ladder), "a deadline")
    return f"Reassigned by the SLA{before} ({what} overdue)"


def _rule_line(reason: dict[str, Any], style: Style) -> str | None:
    """The routing rule that chose the rep, in words."""
    rule, rep = reason.get("rule"), reason.get("rep")
    text = style.text
    domain = f" ({text(reason['domain'], 100)})" if reason.get("domain") else ""
    if rule == "named_account":
        return f"Named account{domain} of {_rep(rep, style)}"
    if rule == "account_match":
        # The earlier lead is not named: Handoff's row id ("lead #123") means nothing to a
        # rep and reads as a channel in Slack, and its person's name would outlive their
        # erasure on this post. The account and the rep who holds it are the reason.
        return f"Same account{domain} as an earlier lead of {_rep(rep, style)}"
    if rule == "partner":
        return f"Partner-sourced: partner manager {_rep(rep, style)}"
    if rule == "round_robin":
        where = reason.get("territory")
        territory = f" in territory {text(where, 40)}" if where else ""
        figures = f", {int(reason.get('week', 0))} of {int(reason.get('week_total', 0))} this week"
        weight = int(reason.get("weight", 1))
        if weight != 1:  # a rep not weighted weighs 1: saying so on every lead is noise
            figures += f", weight {weight}"
        if reason.get("cap") is not None:
            figures += f", cap {int(reason['cap'])}"
        return f"Round robin{territory}: {_rep(rep, style)}{figures}"
    before = f" from {_rep(reason['from'], style)}" if reason.get("from") else ""
    if rule == BY_MANAGER:
        return f"Reassigned by {_rep(reason.get('by'), style)}{before}"
    if rule == BY_CRM:
        return f"Owner changed in the CRM{before}"
    why_none = text(reason.get("why") or "nobody available", 200)
    if rule == OFFERED:  # its rep away and nobody else available: suggested to nobody
        away = f": {_rep(reason['from'], style)} away" if reason.get("from") else ""
        return f"Offered to the pool{away} · {why_none}"
    if rule == "fallback":
        anyone = ", anyone in the pool may claim"
        return f"Fallback: {why_none}" + (f" → {_rep(rep, style)}" if rep else anyone)
    return None


# Characters no plain text field should hold: controls (line breaks included: the text is one
# line), and bidi overrides that would reorder what a reader sees.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def plain_line(value: object, limit: int) -> str:
    """`value` as plain text on one line, at most `limit` characters (cut with "…")."""
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# A CRM reads the words as plain text: a Slack member is named by their id (`U0REP1`), which a
# CRM cannot resolve as a mention but RevOps can look up; nothing is escaped.
PLAIN = Style(rep=plain_line, text=plain_line)

# Salesforce's Text field holds at most 255 characters (its Text data type), the shortest field
# a CRM's `route_reason` is likely mapped to: the line is cut there, with an ellipsis.
WHY_TEXT_LIMIT = 255


def why_text(lead: LeadView) -> str | None:
    """`why` as plain text for a CRM field: no Slack markup, one line, at most 255 characters."""
    line = why(lead, PLAIN)
    return None if line is None else plain_line(line, WHY_TEXT_LIMIT)
