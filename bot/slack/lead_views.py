"""The lead's own views: its message in the segment channel, its `/lead` card, the disposition
modal, and what marketing hears about it (feedback, the nurture notice). Each is a pure function
of stored state, so a retry or a re-render is always safe."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.domain import escalation
from bot.domain.claim import Reservation, held_for_nobody, opened, reservation
from bot.domain.durations import Clock, Duration, span_words
from bot.domain.info import MORE_INFO
from bot.domain.lead import (
    NOTE_MAX,
    RATED,
    RATINGS,
    AttemptKind,
    EventView,
    LeadView,
    Stage,
    counted_attempts,
    follow_up_met,
)
from bot.domain.policy import Disposition, Policy
from bot.domain.routing import BY_CRM, BY_MANAGER
from bot.domain.scoring import is_own
from bot.slack import info_views, route_views
from bot.slack.alert_views import reassign_menu
from bot.slack.blocks import (
    MAX_BLOCKS,
    SECTION_LIMIT,
    Message,
    actions,
    button,
    context,
    fields,
    section,
)
from bot.slack.ids import ActionId, CallbackId, attempt_action, dispose_action, rate_action
from bot.slack.text import (
    clip,
    is_user_id,
    one_line,
    person,
    plain,
    readable,
    safe,
    slack_date,
    team_time,
)

STAGE_WORDS = {
    Stage.MQL: "MQL, waiting for a rep",
    Stage.SAL: "Sales accepted (SAL)",
    Stage.SQL: "Qualified (SQL)",
    Stage.REJECT: "Rejected",
    Stage.NURTURE: "Back to marketing (nurture)",
    Stage.RECYCLE: "Recycled",
}
OUTCOME_ICONS = {"sql": "✅", "reject": "❌", "nurture": "🌱", "recycle": "♻️", "progressing": "📞"}
ENGAGEMENT_SHOWN = 3


def _who(lead: LeadView) -> str:
    name = one_line(lead.display_name, 200)
    title = f" · {one_line(lead.title, 200)}" if lead.title else ""
    return f"*{name}*{title}"


def _company_line(lead: LeadView) -> str:
    company = lead.company
    parts = [f"*{one_line(company['name'], 200)}*" if company.get("name") else "*Company unknown*"]
    if company.get("employees") is not None:
        parts.append(f"{int(company['employees']):,} employees")
    for key in ("industry", "country", "domain"):
        if company.get(key):
            parts.append(one_line(company[key], 100))
    return " · ".join(parts)


def _contact_line(lead: LeadView) -> str:
    parts = [one_line(lead.email, 320)]
    if lead.phone:
        parts.append(one_line(lead.phone, 60))
    return " · ".join(parts)


def _engagement(lead: LeadView, zone: str) -> str:
    items = sorted(lead.engagement, key=lambda item: item.get("at") or "", reverse=True)
    if not items:
        return "*Recent engagement*\nNone recorded."
    lines = []
    for item in items[:ENGAGEMENT_SHOWN]:
        kind = one_line(str(item.get("type", "activity")).replace("_", " ").capitalize(), 60)
        title = one_line(item.get("title") or "(untitled)", 150)
        when = _engagement_date(item.get("at"), zone)
        lines.append(f"• {kind}: {title}{when}")
    more = len(items) - ENGAGEMENT_SHOWN
    if more > 0:
        lines.append(f"…and {more} more")
    return "*Recent engagement*\n" + "\n".join(lines)


def _engagement_date(value: Any, zone: str) -> str:
    # Stored before intake checked instants, or by an import: show none rather than fail.
    try:
        return f" ({slack_date(datetime.fromisoformat(str(value)), zone, '{date_short_pretty}')})"
    except (ValueError, OverflowError):
        return ""


def _stored_instant(value: Any, zone: str) -> str:
    try:
        return slack_date(datetime.fromisoformat(str(value)), zone)
    except (ValueError, OverflowError):
        return one_line(str(value), 40)


URGENCY_ICONS = {"ok": "🟢", "near": "🟠", "overdue": "🔴"}


def clock_line(lead: LeadView, policy: Policy, now: datetime, live: bool = True) -> str:
    """The lead's clocks in one line: the first touch due or overdue, its claim, feedback and
    final disposition deadlines, coloured by urgency, each with the SLA duration that set it
    in words that name its clock (`2 business hours`, `72 hours`); empty when no clock runs.

    `live`: rendered as it is read (`/lead`, App Home), so it may say the time left or how
    late (`(1h 20m left)`, `overdue by 35m`). A channel post is re-rendered only when something
    happens, so it gets the deadlines alone (`live=False`), which stay true however late it
    is read: each reader sees the due time in their own zone."""
    if lead.waiting_for_info:  # its clocks are paused
        return info_views.waiting_line(lead, policy)
    zone = policy.timezone
    calendar = policy.calendar  # the claim's and the first touch's: escalation.TEAM_CLOCKS
    tier = policy.tier(lead.tier)
    touch = tier.first_touch
    # An MQL touched already (back in the pool after its owner touched it) has no first
    # touch left to run: it says when it came, as a claimed lead's does (below).
    if lead.stage is Stage.MQL and lead.first_touch_due_at and lead.first_touch_at is None:
        # The colour of the nearest clock: green, amber past its first escalation step, red
        # past its deadline. The message is re-rendered when a step fires, not every minute.
        icon = URGENCY_ICONS[escalation.urgency(lead, policy, now)[0]]
        due = lead.first_touch_due_at
        claim = ""
        if lead.owner is None and lead.claim_due_at and now <= lead.claim_due_at:
            claim = f" · claim by {slack_date(lead.claim_due_at, zone)}"
        if now <= due:
            left = ""
            if live:
                left = f" ({span_words(calendar.elapsed(now, due, touch.clock), touch.clock)} left)"
            if lead.owner is None and lead.claim_due_at and now > lead.claim_due_at:
                # The colour is the overdue claim's: say so first, then the time still left.
                return (
                    f"{icon} Claim was due {slack_date(lead.claim_due_at, zone)} · first touch "
                    f"due by {slack_date(due, zone)} · {touch.words}{left}"
                )
            return f"{icon} First touch due by {slack_date(due, zone)} · {touch.words}{left}{claim}"
        late = _overdue(calendar.elapsed(due, now, touch.clock), touch.clock, live)
        return f"🔴 First touch was due {slack_date(due, zone)} · {touch.words}: {late}"
    parts: list[str] = []
    # Spans count from where the deadlines do: the lead's arrival (its cycle's start), not its
    # post, so "after 1h 59m" and "(late)" against a 2-hour deadline cannot both show.
    start = lead.cycle_started_at or lead.received_at
    if lead.owner and lead.claimed_at and lead.posted_at:
        clock = escalation.claim_window(tier).clock
        taken = span_words(calendar.elapsed(start, lead.claimed_at, clock), clock)
        slow = lead.claim_due_at is not None and lead.claimed_at > lead.claim_due_at
        late = " (late)" if slow else ""
        before, suggested = reassigned_from(lead), suggested_to(lead)
        if before is None:
            parts.append(f"Claimed by <@{lead.owner}>{suggested} after {taken}{late}")
        else:  # the claim's time is the first claim's: not necessarily the owner's
            parts.append(
                f"Owner <@{lead.owner}>{suggested} · claimed after {taken}{late}; reassigned "
                f"from {person(before, 40)}"
            )
    elif lead.owner:
        parts.append(f"Owner <@{lead.owner}>")
    if lead.first_touch_at and lead.posted_at:
        took = calendar.elapsed(start, lead.first_touch_at, touch.clock)
        on_time = lead.first_touch_due_at is None or lead.first_touch_at <= lead.first_touch_due_at
        speed = span_words(took, touch.clock)
        parts.append(f"first touch after {speed} {'✅' if on_time else '(late)'}")
    elif lead.stage is Stage.SAL and lead.first_touch_due_at:
        due = lead.first_touch_due_at
        state = "due" if now <= due else "🔴 overdue since"
        parts.append(f"first touch {state} {slack_date(due, zone)} · {touch.words}")
    if lead.stage is Stage.SAL:
        parts += _feedback_parts(lead, policy, now, live)
    return " · ".join(parts)


def _overdue(minutes: int, clock: Clock, live: bool) -> str:
    """`overdue by 35m of business time` when rendered as it is read (`live`), else `overdue`:
    a span baked into a post would stop growing."""
    return f"overdue by {span_words(minutes, clock)}" if live else "overdue"


def reassigned_from(lead: LeadView) -> str | None:
    """Whom the lead was last taken from, if its route reason says it changed hands (a
    manager's or the CRM's reassignment, or the SLA's `reassign` step), else None: its owner
    then need not be who claimed it, nor the `claimed_at` theirs."""
    reason = lead.route_reason or {}
    before = reason.get("from")
    moved = reason.get("rule") in (BY_MANAGER, BY_CRM) or bool(reason.get("reassigned"))
    return str(before) if moved and before else None


def suggested_to(lead: LeadView) -> str:
    """` (suggested to @maya)` after an owner who claimed the lead suggested to another rep,
    as `/lead`'s timeline tells the claim (`_claimed_line`): a claim leaves the suggested owner
    as it was, and a reassignment of an owned lead makes it the owner, so an owner who is not
    the suggested one is who claimed it from them. Empty for a claim by the suggested rep, and
    for one of a lead suggested to nobody: it was taken from no one."""
    held = lead.suggested_owner
    if lead.owner is None or held is None or held == lead.owner:
        return ""
    return f" (suggested to {person(held, 40)})"


def _feedback_parts(lead: LeadView, policy: Policy, now: datetime, live: bool) -> list[str]:
    """An owned lead's two deadlines: the first feedback (until given) and the final outcome;
    a deadline that has passed says so (🔴 … was due …: overdue by …, or only `overdue` when
    not `live`), whichever is nearer."""
    zone, parts = policy.timezone, []
    level, window = escalation.urgency(lead, policy, now)
    icon = URGENCY_ICONS[level]
    calendar = policy.calendar_for(lead.owner_zone)

    def deadline(what: str, due: datetime, length: Duration, mine: str) -> str:
        if now > due:
            late = _overdue(calendar.elapsed(due, now, length.clock), length.clock, live)
            return f"🔴 {what} was due {slack_date(due, zone)} · {length.words}: {late}"
        return f"{mine} {what} due by {slack_date(due, zone)} · {length.words}"

    if lead.feedback_at is not None:
        parts.append(f"feedback given {slack_date(lead.feedback_at, zone)} ✅")
    elif lead.disposition_due_at:
        mine = icon if window is None or window.ladder == "no_feedback" else "⏳"
        parts.append(
            deadline("feedback", lead.disposition_due_at, policy.disposition_deadline, mine)
        )
    if lead.final_due_at:
        mine = icon if window is not None and window.ladder == "no_outcome" else "⏳"
        parts.append(deadline("final disposition", lead.final_due_at, policy.final_deadline, mine))
    return parts


NOBODY_HOLDS = "nobody to reserve it for"  # a `claim: assigned` lead suggested to nobody


def claim_line(lead: LeadView, policy: Policy, now: datetime) -> str:
    """Who may claim an unclaimed lead under `claim: assigned` (bot/domain/claim.py): "Reserved
    for @Ana until 10:15", then "Open to the pool since 10:15"; "Open to the pool: nobody to
    reserve it for" when it is suggested to nobody (no time: no reservation ever ended); empty
    for any other lead."""
    held = reservation(lead, now)
    if held is not None:
        until = slack_date(held.until, policy.timezone)
        return f"🔒 Reserved for <@{held.rep}> until {until}; then open to the pool"
    if held_for_nobody(lead):
        return f"🔓 Open to the pool: {NOBODY_HOLDS}"
    since = opened(lead, now)
    if since is not None:
        return f"🔓 Open to the pool since {slack_date(since, policy.timezone)}"
    return ""


def reserved_refusal(held: Reservation, policy: Policy) -> str:
    """The private answer to a claim inside someone else's window: whose it is, and when it
    opens to the pool (plain words, as every refusal: the team's time, named)."""
    until = team_time(held.until, policy.timezone)
    return (
        f"This lead is reserved for <@{held.rep}> until {until}; after that anyone in the pool "
        "can claim it. Nothing was changed."
    )


def reassign_control(
    lead: LeadView, policy: Policy, names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """A manager's "Reassign to…" menu under an open lead (a rep who picks is refused
    privately; bot/domain/access.py); nothing for a closed lead, one with marketing (it waits
    for the answer), a pool of one or an SLA that names no managers."""
    if not lead.stage.is_open or lead.waiting_for_info:
        return []
    menu = reassign_menu(lead, policy, names or {}, ActionId.LEAD_REASSIGN)
    if menu is None:
        return []
    return [actions([menu], f"{ActionId.LEAD_REASSIGN.value}_{lead.id}")]


def attempts_line(lead: LeadView, policy: Policy) -> str:
    """`Attempts 2/6 (standard: within 2 weeks)`: the lead's attempts against the standard
    (every attempt counts: bot/domain/cadence.py)."""
    standard = policy.follow_up
    return (
        f"Attempts {counted_attempts(lead)}/{standard.min_attempts} "
        f"(standard: within {standard.within.words})"
    )


def next_touch_line(lead: LeadView, policy: Policy, now: datetime) -> str:
    """The cadence of a claimed, open lead (bot/domain/cadence.py): `Next touch due Thu 10:00
    AEDT · attempt 3 of 6`, or that the standard is met; empty for any other lead, and while
    marketing has the lead's question (its clocks are paused: no touch is due)."""
    if lead.stage is not Stage.SAL or lead.waiting_for_info:
        return ""
    standard = policy.follow_up
    variety = f" on {standard.channels}+ channels" if standard.channels else ""
    if follow_up_met(lead, policy):
        met = f"{standard.min_attempts} within {standard.within.words}{variety}"
        return f"✅ Follow-up standard met ({met})"
    due = lead.next_touch_due_at
    if due is None:
        return ""
    touch = counted_attempts(lead) + 1
    what = f"attempt {touch} of {standard.min_attempts}"
    if touch > standard.min_attempts:
        what = f"an attempt on another channel ({standard.channels} channels needed)"
    state = "Next touch due" if now <= due else "🔴 Next touch was due"
    return f"{state} {slack_date(due, policy.timezone)} · {what}"


REASONS_SHOWN = 3


def _scores(lead: LeadView) -> tuple[int | None, str]:
    """Ours beside a score its sender gave (None: the score is ours, or stored before we kept
    ours), and the top reasons with their points and dates, each escaped and clipped on one
    line."""
    reasons = lead.score_reasons
    ours = None
    if is_own(reasons):
        reasons = reasons[1:]
        ours = lead.handoff_score
    shown = [one_line(reason, 100) for reason in reasons[:REASONS_SHOWN]]
    rest = reasons[REASONS_SHOWN:]
    if rest:  # the points shown then add up: `+2 more (+20)`
        points = sum(int(found.group(1)) for r in rest if (found := _POINTS.search(r)))
        shown.append(f"+{len(rest)} more" + (f" (+{points})" if points else ""))
    return ours, " · ".join(shown)


_POINTS = re.compile(r"\+(\d+)\)?(?: \(qualifies\))?$")  # a reason's points: `… +20`, `(+20)`


def score_words(lead: LeadView) -> str:
    """The score alone: `88`, or `CRM score 72 · Handoff 65` beside one its sender gave."""
    ours = _scores(lead)[0]
    return str(lead.score) if ours is None else f"CRM score {lead.score} · Handoff {ours}"


def score_phrase(lead: LeadView) -> str:
    """The score inside a sentence: `score 88`, or `CRM score 72 · Handoff 65`."""
    return f"score {lead.score}" if _scores(lead)[0] is None else score_words(lead)


def score_text(lead: LeadView) -> str:
    """`88 (hot)`, or beside a score its sender gave, ours, the tier by the score in force:
    `CRM score 72 (warm) · Handoff 65`; then the top reasons:
    `Pricing page 2 days ago +20 · 240 employees +15`."""
    ours, top = _scores(lead)
    # A tier is a response promise to sales: a lead that never qualified has none.
    tier = "" if _never_qualified(lead) else f"({one_line(lead.tier, 40)})"
    if ours is None:
        score = f"{lead.score} {tier}".rstrip()
    else:
        score = f"CRM score {lead.score} {tier}".rstrip() + f" · Handoff {ours}"
    return f"{score}\n{top}" if top else score


def _facts(lead: LeadView, policy: Policy) -> dict[str, Any]:
    facts = [
        f"*Source*\n{one_line(readable(lead.source or 'unknown'), 200)}",
        f"*Campaign*\n{one_line(lead.campaign or '—', 300)}",
        f"*Score*\n{score_text(lead)}",
        f"*Segment*\n{one_line(readable(lead.segment), 100)}",
    ]
    if lead.stage is Stage.MQL and lead.suggested_owner:
        facts.append(f"*Suggested owner*\n<@{lead.suggested_owner}>")
    return fields(*facts)


RATING_WORDS = {
    "fit": ("Fit", ("1 poor fit", "2 weak fit", "3 fair fit", "4 good fit", "5 ideal fit")),
    "timing": (
        "Timing",
        ("1 no project", "2 a year out", "3 this year", "4 this quarter", "5 buying now"),
    ),
}


def _rating_options(rated: str, lead: LeadView | None) -> list[dict[str, Any]]:
    """1–5 with words; a message's option names its lead and the cycle the post shows
    (`12:4:2`: a pick on a post of an ended cycle is told apart from one on a copy of the
    current cycle's post, whatever the post's ts), a modal's only the number."""
    _, words = RATING_WORDS[rated]
    return [
        {
            "text": {"type": "plain_text", "text": text},
            "value": f"{lead.id}:{number}:{lead.cycle}" if lead is not None else str(number),
        }
        for number, text in enumerate(words, start=1)
    ]


def rating_menus(lead: LeadView) -> dict[str, Any]:
    """The owner's one-click rating of a closed lead: two menus (fit, timing), each showing
    the rating given, if any. Anyone else who picks is told privately that it is the owner's."""
    menus = []
    for rated, current in (("fit", lead.fit_rating), ("timing", lead.timing_rating)):
        label, _ = RATING_WORDS[rated]
        options = _rating_options(rated, lead)
        menu: dict[str, Any] = {
            "type": "static_select",
            "action_id": rate_action(rated),
            "placeholder": {"type": "plain_text", "text": f"Rate {label.lower()} 1–5"},
            "options": options,
        }
        if current in RATINGS:
            menu["initial_option"] = options[current - 1]
        menus.append(menu)
    return {"type": "actions", "block_id": f"lead_rating_{lead.id}", "elements": menus}


def lead_actions(lead: LeadView, policy: Policy) -> list[dict[str, Any]]:
    """The lead's buttons for its stage (Claim; the attempts and dispositions), the same in its
    channel message and in App Home, so a press goes through the same listeners."""
    value = str(lead.id)
    if lead.stage is Stage.MQL:
        claim = button("Claim", ActionId.CLAIM, value, style="primary")
        return [actions([claim], "lead_claim")]
    if lead.stage is not Stage.SAL or lead.waiting_for_info:  # with marketing: it waits
        return []
    attempts = [button(kind.label, attempt_action(kind.value), value) for kind in AttemptKind]
    blocks = [actions(attempts, "lead_attempts")]
    # "Contacted – progressing" is feedback, given once: then only the final outcomes remain.
    given = lead.feedback_at is not None
    choices = [d for d in policy.dispositions if not (given and d.outcome == "progressing")]
    buttons = [_disposition_button(item, value) for item in choices]
    for start in range(0, len(buttons), 25):
        blocks.append(actions(buttons[start : start + 25], f"lead_dispositions_{start // 25}"))
    return blocks


def _plain(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object: a confirmation dialog takes no other (its text shows as typed)."""
    return {"type": "plain_text", "text": plain(text, limit)}


def _disposition_button(disposition: Disposition, value: str) -> dict[str, Any]:
    action = dispose_action(disposition.code)
    if disposition.reason_required or disposition.outcome == MORE_INFO:  # its modal confirms
        return button(disposition.label, action, value)
    if disposition.outcome == "progressing":
        keep = {
            "title": {"type": "plain_text", "text": "Record feedback?"},
            "text": _plain(
                f"Mark it “{disposition.label}”: the lead stays open and yours; pick its "
                "final disposition when the follow-up ends.",
                300,
            ),
            "confirm": {"type": "plain_text", "text": plain(disposition.label, 30)},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
        return button(disposition.label, action, value, confirm=keep)
    confirm = {
        "title": {"type": "plain_text", "text": "Close this lead?"},
        "text": _plain(f"Mark it “{disposition.label}” ({_outcome_word(disposition)}).", 300),
        "confirm": {"type": "plain_text", "text": plain(disposition.label, 30)},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    style = "primary" if disposition.outcome == "sql" else None
    return button(disposition.label, action, value, style=style, confirm=confirm)


def _outcome_word(disposition: Disposition) -> str:
    """`SQL` as the lifecycle stage is written (seed 001), else the outcome (`nurture`)."""
    return "SQL" if disposition.outcome == "sql" else disposition.outcome


def disposition_actor(events: Sequence[EventView]) -> str | None:
    """Who made the lead's disposition: the actor of its last `dispositioned` event (its owner,
    a manager, the CRM), or None without one."""
    return next((event.actor for event in reversed(events) if event.type == "dispositioned"), None)


NOTE_ROOM = 2400  # a disposition note in the outcome section of the lead's post


def _outcome(lead: LeadView, policy: Policy, by: str | None = None) -> str:
    """The closed lead's outcome; who made it (`by`, from its audit trail) when known. The
    owner is named apart: a manager may disposition a rep's lead, so the owner is not
    necessarily who did it."""
    disposition = policy.disposition(lead.disposition_code or "")
    label = disposition.label if disposition else (lead.disposition_code or lead.stage.value)
    icon = OUTCOME_ICONS.get(disposition.outcome if disposition else "", "•")
    stage = stage_words(lead)
    if stage.lower().startswith(label.lower()):  # "Qualified (SQL)", not "Qualified → Qualified"
        text = f"{icon} *{one_line(stage, 100)}*"
    else:
        text = f"{icon} *{one_line(label, 100)}* → {stage}"
    if by:
        text += f" by {person(by, 40)}"
    if lead.dispositioned_at:
        text += f" on {slack_date(lead.dispositioned_at, policy.timezone)}"
    if lead.owner and by != lead.owner:
        text += f"; owner <@{lead.owner}>"
    if lead.disposition_reason:
        text += f"\nReason: {one_line(lead.disposition_reason, 200)}"
    if lead.disposition_note:
        # The modal takes NOTE_MAX (2,000) characters; the rest of this section is at most
        # ~550, and a section holds 3,000: a note as written shows whole (escapes take room).
        text += f"\nNote: {safe(lead.disposition_note, NOTE_ROOM)}"
    return text


def _rated(lead: LeadView) -> bool:
    return lead.fit_rating is not None or lead.timing_rating is not None


def _rating_prompt(lead: LeadView) -> str:
    """Asks the owner how good the lead was, or says what they answered."""
    given = [
        f"{word.lower()} {value}"
        for rated, value in (("fit", lead.fit_rating), ("timing", lead.timing_rating))
        if value is not None
        for word in (RATING_WORDS[rated][0],)
    ]
    if given:
        return f"Rated by <@{lead.owner}>: {', '.join(given)}"
    return f"<@{lead.owner}>: how good was this lead? (optional)"


def _never_qualified(lead: LeadView) -> bool:
    """A lead kept in nurture at intake: it was never an MQL, and sales never had it."""
    return lead.stage is Stage.NURTURE and lead.posted_at is None


def _headline(lead: LeadView) -> str:
    company = f" at {lead.company_name}" if lead.company_name else ""
    if _never_qualified(lead):
        return f"Not an MQL: {lead.display_name}{company}"
    return f"{lead.tier.capitalize()} MQL: {lead.display_name}{company}"


def stage_words(lead: LeadView) -> str:
    """The lead's stage in words: `Qualified (SQL)`, or `Kept in nurture` for a lead that never
    qualified (not `Back to marketing`: sales never had it)."""
    return "Kept in nurture" if _never_qualified(lead) else STAGE_WORDS[lead.stage]


ERASED_TEXT = "🗑️ This message was about a person whose data was erased at their request."


def erased_message() -> Message:
    """What a message about an erased person becomes (`handoff forget`): nothing of them."""
    return Message(text=ERASED_TEXT, blocks=[section(ERASED_TEXT)])


POSTED_AGAIN = "🔁 Posted again: the earlier post of this lead was deleted in Slack."


def posted_again(message: Message) -> Message:
    """The lead's post, posted again after its earlier post was deleted in Slack: says so
    under its headline (until the next change re-renders it)."""
    blocks = [*message.blocks[:1], context(POSTED_AGAIN), *message.blocks[1:]]
    return Message(text=message.text, blocks=blocks[:MAX_BLOCKS])


def deal_line(lead: LeadView, policy: Policy) -> str | None:
    """`🏆 Deal won in the CRM · AUD 42,500`: the lead's deal as the CRM reported it, or None
    while it has none."""
    if lead.won_at is not None:
        words = "🏆 Deal won in the CRM"
    elif lead.lost_at is not None:
        words = "Deal lost in the CRM"
    elif lead.opportunity_at is not None:
        words = "💼 An opportunity in the CRM"
    else:
        return None
    if lead.amount is None:
        return words
    currency = policy.currency
    return f"{words} · {currency + ' ' if currency else ''}{lead.amount:,.0f}"


def lead_message(
    lead: LeadView,
    policy: Policy,
    now: datetime,
    names: Mapping[str, str] | None = None,
    dispositioned_by: str | None = None,
    came_back: str | None = None,
) -> Message:
    """The lead's one message in its segment channel, for its current state (`names`: the
    members' display names, for the Reassign menu's options; `dispositioned_by`: who made a
    closed lead's disposition, from its audit trail, if the caller read it; `came_back`: the
    line of a post whose cycle ended, shown instead of its controls: `ended_cycle_post`)."""
    if lead.erased_at is not None:  # only what the reports keep, and no buttons
        facts = f"Lead {lead.id} · {one_line(readable(lead.segment), 100)} · {lead.stage.value}"
        text = "🗑️ This lead's personal data was erased at the person's request."
        return Message(text=text, blocks=[section(text), context(facts)])
    blocks: list[dict[str, Any]] = [
        section(f"{_stage_badge(lead)} {one_line(_headline(lead), 400)}"),
        section(f"{_who(lead)}\n{_company_line(lead)}\n{_contact_line(lead)}"),
        _facts(lead, policy),
        section(_engagement(lead, policy.timezone)),
    ]
    if why := route_views.why_line(lead):  # "why this rep", on every routed lead
        blocks.append(context(why))
    if lead.cycle > 1:  # it came back: its history is one command away
        history = f"`/lead {one_line(lead.external_id, 255)}`"
        blocks.append(context(f"♻️ Back for cycle {lead.cycle}: earlier cycles in {history}"))
    track = policy.talk_track(lead.source)
    if track and lead.stage.is_open:
        blocks.append(section(f"*Talk track*\n{safe(track, 2500)}"))
    clock = clock_line(lead, policy, now, live=False)  # the post is not re-rendered each minute
    if lead.stage is Stage.SAL:
        touch = next_touch_line(lead, policy, now)
        parts = (clock, attempts_line(lead, policy), touch)
        blocks.append(context(*(part for part in parts if part)))
    elif clock:
        blocks.append(context(clock))
    claim = claim_line(lead, policy, now)
    if claim:
        blocks.append(context(claim))
    if deal := deal_line(lead, policy):
        blocks.append(context(deal))
    if not lead.stage.is_open:
        blocks.append(section(_outcome(lead, policy, dispositioned_by)))
        if came_back is not None and lead.owner and _rated(lead):
            blocks.append(context(_rating_prompt(lead)))  # what was answered, no menus
        elif came_back is None and lead.owner and lead.dispositioned_at:
            blocks.append(rating_menus(lead))  # a rating can still be changed
            blocks.append(context(_rating_prompt(lead)))
    if came_back is not None:  # an ended cycle's post: nothing to press, where it went
        blocks.append(context(came_back))
        text = f"{_fallback(lead, policy, now)}, came back as cycle {lead.cycle + 1}"
        return Message(text=text, blocks=blocks[:MAX_BLOCKS])
    blocks.extend(lead_actions(lead, policy))
    blocks.extend(reassign_control(lead, policy, names))
    return Message(text=_fallback(lead, policy, now), blocks=blocks[:MAX_BLOCKS])


def ended_cycle_post(lead: LeadView, policy: Policy, now: datetime, channel: str) -> Message:
    """The post of the cycle `lead` ends (as the lead stands before its new cycle), once it
    came back at `now` as its next cycle, posted in `channel`: that cycle as it ended, with no
    control (a pick there could only be refused: bot/domain/lead.py `earlier_cycle_post`)
    and a line saying it came back. No link: Handoff keeps no permalink of the new post, and
    it is posted after this is rendered; `/lead` has the history. Rendered by the use case
    (the sweep reads no audit trail), so its outcome names the owner, not who closed it."""
    line = (
        f"♻️ Came back as cycle {lead.cycle + 1} on {slack_date(now, policy.timezone)}: "
        f"its new post is in <#{channel}>; this post shows cycle {lead.cycle} as it ended."
    )
    return lead_message(lead, policy, now, came_back=line)


def _stage_badge(lead: LeadView) -> str:
    if lead.stage is Stage.MQL:
        return "🔥" if lead.tier == "hot" else "🆕"
    return {Stage.SAL: "🤝"}.get(lead.stage, OUTCOME_ICONS.get(lead.stage.value, "✅"))


def _fallback(lead: LeadView, policy: Policy, now: datetime) -> str:
    """The message's `text`: what notifications, screen readers and search show of it (Slack:
    chat.update's `text` replaces it), so it tells the state its blocks tell."""
    # Escape only the lead's own words: the owner's mention must stay a live mention. The
    # headline leaves room for the longest owner part (three names of 40), or the longest
    # clock part (a claim and a first touch overdue, open to the pool), within 3000.
    text = one_line(_headline(lead), 2800)
    if lead.stage is Stage.MQL and lead.first_touch_due_at and lead.first_touch_at is None:
        text += _clock_fallback(lead, lead.first_touch_due_at, policy, now)
    elif lead.stage is Stage.SAL and (before := reassigned_from(lead)) is not None:
        owner = f"<@{lead.owner}>{suggested_to(lead)}"
        text += f", owner {owner}, reassigned from {person(before, 40)}"
    elif lead.stage is Stage.SAL:
        text += f", claimed by <@{lead.owner}>{suggested_to(lead)}"
    else:
        text += f", {stage_words(lead)}"
    held = reservation(lead, now)
    if held is not None:
        text += f", reserved for <@{held.rep}> until {team_time(held.until, policy.timezone)}"
    elif held_for_nobody(lead):
        text += f", open to the pool ({NOBODY_HOLDS})"
    elif (since := opened(lead, now)) is not None:
        text += f", open to the pool since {team_time(since, policy.timezone)}"
    return text


def _clock_fallback(lead: LeadView, due: datetime, policy: Policy, now: datetime) -> str:
    """An unclaimed lead's clocks as its post's clock line tells them (`clock_line`, not
    live): the first touch due by its deadline (`due`), the claim overdue before it, or the first
    touch overdue since its deadline. An instant, not a span: a span would stop growing in a
    text rendered only when something happens."""
    zone, touch = policy.timezone, policy.tier(lead.tier).first_touch
    if now > due:
        return f", first touch overdue since {team_time(due, zone)} · {touch.words}"
    claim = ""
    if lead.owner is None and lead.claim_due_at and now > lead.claim_due_at:
        claim = f", claim overdue since {team_time(lead.claim_due_at, zone)}"
    return f"{claim}, first touch due by {team_time(due, zone)} · {touch.words}"


def feedback_message(lead: LeadView, policy: Policy) -> Message:
    """What marketing hears in its channel about a reject, nurture or recycle."""
    disposition = policy.disposition(lead.disposition_code or "")
    label = disposition.label if disposition else (lead.disposition_code or "?")
    outcome = disposition.outcome if disposition else lead.stage.value
    icon = OUTCOME_ICONS.get(outcome, "•")
    head = f"{icon} *{one_line(label, 100)}* ({outcome}) · {one_line(_headline(lead), 400)}"
    facts = [
        f"*Lead*\n{one_line(lead.display_name, 200)} · {one_line(lead.email, 320)}",
        f"*Source*\n{one_line(readable(lead.source or 'unknown'), 200)}",
        f"*Campaign*\n{one_line(lead.campaign or '—', 300)}",
        f"*Rep*\n<@{lead.owner}>" if lead.owner else "*Rep*\n—",
    ]
    if lead.disposition_reason:
        facts.insert(3, f"*Reason*\n{one_line(lead.disposition_reason, 200)}")
    blocks: list[dict[str, Any]] = [
        section(head),
        fields(*facts),
    ]
    if lead.disposition_note:
        blocks.append(section(f"*Note*\n{safe(lead.disposition_note, 2800)}"))
    # The lead by the id marketing's systems gave it (and the code, for those systems): not a
    # `/lead` pointer, which only the SLA's viewers may run.
    code = one_line(lead.disposition_code or "?", 64)
    facts_line = (
        f"Segment {one_line(readable(lead.segment), 100)} · {score_phrase(lead)} · "
        f"external id {one_line(lead.external_id, 255)} · code `{code}`"
    )
    facts_line += _comes_back(lead, policy)
    blocks.append(context(facts_line))
    source = readable(lead.source or "unknown")  # as the blocks name it
    text = f"{label} ({outcome}): {lead.display_name}, source {source}"
    if lead.disposition_reason:
        text += f", reason: {lead.disposition_reason}"
    return Message(text=one_line(text, 3000), blocks=blocks)


def _comes_back(lead: LeadView, policy: Policy) -> str:
    """When a nurtured lead is scored again, or a recycled one returns ("" if never)."""
    if lead.next_action_at is None or lead.stage not in (Stage.NURTURE, Stage.RECYCLE):
        return ""
    what = "scored again" if lead.stage is Stage.NURTURE else "back in its queue"
    return f" · {what} {slack_date(lead.next_action_at, policy.timezone)}"


def _nurture_score(lead: LeadView) -> str:
    """`40 (240 employees +20 · Enterprise ebook 12 days ago +20)`: what it earned."""
    score = score_words(lead)
    top = _scores(lead)[1]
    return f"{score} ({top})" if top else score


def nurture_notice(lead: LeadView, policy: Policy | None = None) -> Message:
    """A lead that is not an MQL goes back to marketing with its reason, never silently."""
    head = f"🌱 *Not an MQL, kept in nurture* · {one_line(_headline(lead).split(': ', 1)[-1], 400)}"
    reason = one_line(lead.stage_reason or "below the MQL definition", 1000)
    blocks = [
        section(head),
        section(
            f"*Why*: {reason}\n*Source*: {one_line(readable(lead.source or 'unknown'), 200)} · "
            f"*Campaign*: {one_line(lead.campaign or '—', 300)} · *Score*: {_nurture_score(lead)}"
        ),
        context(
            f"{one_line(lead.email, 320)} · external id {one_line(lead.external_id, 255)}"
            + (_comes_back(lead, policy) if policy else "")
        ),
    ]
    text = f"Not an MQL: {lead.display_name} ({lead.stage_reason or 'below the MQL definition'})"
    return Message(text=one_line(text, 3000), blocks=blocks)


def disposition_modal(
    lead: LeadView, disposition: Disposition, viewer: str | None = None
) -> dict[str, Any]:
    """The modal that asks for a required reason and note before a disposition; the optional
    fit and timing ratings only for the lead's owner (`viewer`): a rating is the owner's
    judgement, and a manager who dispositions for them is not asked for it."""
    owner = viewer is not None and viewer == lead.owner
    ratings = [_rating_input(rated) for rated in RATED] if owner else []
    options = [
        {"text": {"type": "plain_text", "text": plain(reason, 75)}, "value": reason[:150]}
        for reason in disposition.reasons[:100]
    ]
    metadata = json.dumps({"lead_id": lead.id, "code": disposition.code})
    return {
        "type": "modal",
        "callback_id": CallbackId.DISPOSE_MODAL,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": plain(disposition.label, 24)},
        "submit": {"type": "plain_text", "text": "Send to marketing"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(
                f"{one_line(_headline(lead), 500)}\nMarketing will see the reason and your note."
            ),
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {
                    "type": "static_select",
                    "action_id": "reason",
                    "placeholder": {"type": "plain_text", "text": "Pick a reason"},
                    "options": options,
                },
            },
            {
                "type": "input",
                "block_id": "note",
                "label": {"type": "plain_text", "text": "Note for marketing"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "note",
                    "multiline": True,
                    "max_length": NOTE_MAX,
                    "placeholder": {"type": "plain_text", "text": "What did you learn?"},
                },
            },
            *ratings,
        ],
    }


def _rating_input(rated: str) -> dict[str, Any]:
    """An optional 1–5 menu in the disposition modal (one click, or none)."""
    label, _ = RATING_WORDS[rated]
    return {
        "type": "input",
        "block_id": rated,
        "optional": True,
        "label": {"type": "plain_text", "text": f"Lead {label.lower()} (optional)"},
        "element": {
            "type": "static_select",
            "action_id": rated,
            "placeholder": {"type": "plain_text", "text": "1 to 5"},
            "options": _rating_options(rated, None),
        },
    }


EVENT_WORDS = {
    "received": "received",
    "mql": "qualified as MQL",
    "nurture": "kept in nurture",
    "posted": "posted to Slack",
    "reposted": "posted to Slack again: its earlier post was deleted there",
    "claimed": "claimed",
    "attempt": "contact attempt",
    "first_touch": "first touch",
    "dispositioned": "dispositioned",
    "feedback": "feedback (the lead stays open)",
    "escalated": "escalated",
    "reassigned": "reassigned",
    "offered": "open to the pool again: its owner is away",
    "snoozed": "escalations snoozed",
    "recycled_back": "back from recycling: a new cycle",
    "nurture_reengaged": "back from nurture at its re-engagement date: a new cycle",
    "nurture_checked": "scored again at its re-engagement date: still nurture",
    "requalified": "sent again with new engagement: re-qualified, a new cycle",
    "engagement": "sent again with new engagement",
    "info_requested": "sent back to marketing with a question",
    "info_answered": "marketing answered: back with its owner",
    "touch_due": "next touch overdue: owner reminded",
    "rated": "rated by the owner",
    "claim_opened": "claim window over: open to the pool",
    "crm_merged": "its CRM record was merged: now tied to the record that remains",
}
ACTION_WORDS = {
    "remind_channel": "reminder in the channel",
    "remind_owner": "reminder to the owner",
    "notify_manager": "managers alerted",
    "reassign": "reassigned",
}


def ladder_words(ladder: str) -> str:
    """`first touch overdue`: an escalation ladder as `/sla` names it, not by its key in the
    SLA file (`no_touch`); a key it does not know, readable (not escaped: the caller escapes)."""
    known = escalation.LADDER_WORDS.get(ladder)
    return f"{known} overdue" if known else readable(ladder)


def _reassigned_detail(data: dict[str, Any]) -> str:
    people = [
        f"{word} <@{data[key]}>"
        for key, word in (("from", "from"), ("to", "to"))
        if isinstance(data.get(key), str) and is_user_id(data[key])
    ]
    return f" {' '.join(people)}" if people else ""


def _claimed_line(event: EventView) -> str | None:
    """A claim that took the lead from the rep it was suggested to (its `from`; None: nobody)
    names both: the first touch's miss is that rep's in the weekly report (docs/reports.md "By
    rep"), so a manager must see why it is not the claimer's. A claim without `from` (by the
    suggested rep, or written before claims said so) is told as before: None."""
    if "from" not in event.data or event.data["from"] == event.actor:
        return None
    before = event.data["from"]
    if before is None:
        suggested = "nobody"
    elif isinstance(before, str):
        suggested = person(before, 40)
    else:
        return None
    return f"claimed by {person(event.actor, 40)} (suggested to {suggested})"


def lead_card(
    lead: LeadView,
    events: list[EventView],
    policy: Policy,
    now: datetime,
    viewer: str | None = None,
    names: Mapping[str, str] | None = None,
    notice: str | None = None,
) -> Message:
    """`/lead`: the lead as it stands, with its timeline of events (ephemeral); a manager
    (`viewer`) also gets the Reassign menu of an open lead. `notice`: the answer to what the
    viewer just did from the card (Slack text), on top of the card shown again."""
    head = [section(clip(notice, 2900))] if notice else []
    blocks: list[dict[str, Any]] = [
        *head,
        section(f"{_stage_badge(lead)} {one_line(_headline(lead), 400)} · *{stage_words(lead)}*"),
        section(f"{_who(lead)}\n{_company_line(lead)}\n{_contact_line(lead)}"),
        _facts(lead, policy),
    ]
    clock, touch = clock_line(lead, policy, now), next_touch_line(lead, policy, now)
    claim = claim_line(lead, policy, now)
    if clock or touch or claim:
        blocks.append(context(*(part for part in (clock, touch, claim) if part)))
    if not lead.stage.is_open and lead.disposition_code:
        blocks.append(section(_outcome(lead, policy, disposition_actor(events))))
    blocks.append(section(_timeline(events, policy)))
    blocks.append(context(f"Lead {lead.id} · external id {one_line(lead.external_id, 255)}"))
    if viewer is not None and policy.is_manager(viewer):
        blocks.extend(reassign_control(lead, policy, names))
    return Message(text=_fallback(lead, policy, now), blocks=blocks)


def _timeline(events: list[EventView], policy: Policy) -> str:
    """The newest events that fit, as whole lines: a cut line could break a date or a mention."""
    if not events:
        return "*Timeline*\nNo events yet."
    # Look-ups are folded into one line: fifty of them must not push the history out.
    views = [event for event in events if event.type == "viewed"]
    events = [event for event in events if event.type != "viewed"]
    looked = ""
    if views:
        last = views[-1]
        times = "once" if len(views) == 1 else f"{len(views)} times"
        looked = (
            f"• looked up {times}, last {slack_date(last.at, policy.timezone)} by "
            f"{person(last.actor, 40)}"
        )
    lines: list[str] = []
    room = SECTION_LIMIT - 60 - len(looked)  # for the heading, "earlier events", look-ups
    for event in reversed(events[-40:]):
        line = _event_line(event, policy)
        room -= len(line) + 1
        if room < 0:
            break
        lines.append(line)
    earlier = len(events) - len(lines)
    heading = f"*Timeline*\n…{earlier} earlier events not shown" if earlier else "*Timeline*"
    return "\n".join(line for line in [heading, *reversed(lines), looked] if line)


def _event_line(event: EventView, policy: Policy) -> str:
    when = slack_date(event.at, policy.timezone)
    if event.type == "claimed" and (claimed := _claimed_line(event)) is not None:
        return f"• {when} · {claimed}"  # names the claimer itself
    what = EVENT_WORDS.get(event.type) or one_line(event.type.replace("_", " "), 60)
    # Mention only what is shaped like a Slack user id; anything else is text.
    actor = person(event.actor, 40)
    detail = ""
    if event.type == "attempt":
        kind = str(event.data.get("kind", ""))
        known = kind in {member.value for member in AttemptKind}
        how = AttemptKind(kind).words if known else one_line(kind, 20)
        detail = f" ({how} #{one_line(str(event.data.get('number', '?')), 10)})"
    elif event.type in ("dispositioned", "feedback"):
        code = str(event.data.get("code", ""))
        disposition = policy.disposition(code)
        detail = f" as {one_line(disposition.label if disposition else code, 64)}"
        if event.data.get("reason"):
            detail += f" ({one_line(event.data['reason'], 100)})"
    elif event.type in ("nurture", "nurture_checked"):
        detail = f": {one_line(event.data.get('reason', ''), 300)}"
    elif event.type in ("info_requested", "info_answered"):
        said = event.data.get("answer" if event.type == "info_answered" else "question")
        detail = f": “{one_line(said or '', 200)}”"
    elif event.type == "requalified":
        was = one_line(event.data.get("outcome", "?"), 64)
        detail = f" (cycle {one_line(event.data.get('cycle', '?'), 10)} was {was})"
    elif event.type == "rated":
        given = [f"{name} {event.data[name]}/5" for name in RATED if name in event.data]
        detail = f" ({one_line(', '.join(given), 60)})"
    elif event.type == "escalated":
        action = str(event.data.get("action", ""))
        ladder = one_line(ladder_words(str(event.data.get("ladder", ""))), 60)
        step = one_line(str(event.data.get("step", "?")).rstrip("%"), 10)  # stored as "200%"
        done = ACTION_WORDS.get(action) or one_line(action.replace("_", " "), 40)
        detail = f" ({ladder} at {step}%: {done})"
    elif event.type == "reassigned":
        detail = _reassigned_detail(event.data)
    elif event.type == "touch_due":
        detail = f" (touch {one_line(str(event.data.get('touch', '?')), 10)})"
    elif event.type == "snoozed" and event.data.get("until"):
        detail = f" until {_stored_instant(event.data['until'], policy.timezone)}"
    return f"• {when} · {what}{detail} · {actor}"
