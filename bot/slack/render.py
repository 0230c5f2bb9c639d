"""All Block Kit Handoff shows, as pure functions of stored state (safe to re-render any time)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain import escalation
from bot.domain.durations import words
from bot.domain.lead import AttemptKind, LeadView, Stage
from bot.domain.policy import LADDERS, Disposition, Policy
from bot.domain.report import Kpi, Period, Report, Slice
from bot.slack.ids import ActionId, CallbackId, attempt_action, dispose_action
from bot.slack.text import one_line, plain, safe, slack_date, team_time
from storage.repository import EventView

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
CONTEXT_LIMIT = 2000
BUTTON_LIMIT = 75
MAX_BLOCKS = 50
STAGE_WORDS = {
    Stage.MQL: "MQL, waiting for a rep",
    Stage.SAL: "Sales accepted (SAL)",
    Stage.SQL: "Qualified (SQL)",
    Stage.REJECT: "Rejected",
    Stage.NURTURE: "Back to marketing (nurture)",
    Stage.RECYCLE: "Recycle",
}
OUTCOME_ICONS = {"sql": "✅", "reject": "❌", "nurture": "🌱", "recycle": "♻️"}
ENGAGEMENT_SHOWN = 3
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


@dataclass(frozen=True)
class Message:
    text: str  # the notification / screen-reader fallback
    blocks: list[dict[str, Any]]


def _mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object. `verbatim`: Slack must not link-ify or parse mentions in plain
    text (a lead named "@here" stays text); the `<@U…>` Handoff writes itself still works."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text), **extra}


def _context(*texts: str) -> dict[str, Any]:
    elements = [_mrkdwn(t[:CONTEXT_LIMIT]) for t in texts if t][:10]
    return {"type": "context", "elements": elements}


def _button(
    label: str, action_id: str, value: str, style: str | None = None, confirm: Any = None
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": plain(label, BUTTON_LIMIT), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


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


def _clock(lead: LeadView, policy: Policy, now: datetime) -> str:
    zone = policy.timezone
    calendar = policy.calendar_for(lead.owner_zone)
    if lead.stage is Stage.MQL and lead.first_touch_due_at:
        # The colour of the nearest clock: green, amber past its first escalation step, red
        # past its deadline. The message is re-rendered when a step fires, not every minute.
        icon = URGENCY_ICONS[escalation.urgency(lead, policy, now)[0]]
        due = lead.first_touch_due_at
        claim = ""
        if lead.owner is None and lead.claim_due_at and now <= lead.claim_due_at:
            claim = f" · claim by {slack_date(lead.claim_due_at, zone)}"
        if now <= due:
            left = words(calendar.elapsed(now, due))
            return (
                f"{icon} First touch due by {slack_date(due, zone)} "
                f"({left} of working time left){claim}"
            )
        late = words(calendar.elapsed(due, now))
        return f"🔴 First touch was due {slack_date(due, zone)}: overdue by {late} of working time"
    parts: list[str] = []
    if lead.owner and lead.claimed_at and lead.posted_at:
        taken = words(calendar.elapsed(lead.posted_at, lead.claimed_at))
        parts.append(f"Claimed by <@{lead.owner}> after {taken}")
    elif lead.owner:
        parts.append(f"Owner <@{lead.owner}>")
    if lead.first_touch_at and lead.posted_at:
        speed = words(calendar.elapsed(lead.posted_at, lead.first_touch_at))
        on_time = lead.first_touch_due_at is None or lead.first_touch_at <= lead.first_touch_due_at
        parts.append(f"first touch after {speed} {'✅' if on_time else '(late)'}")
    elif lead.stage is Stage.SAL and lead.first_touch_due_at:
        due = lead.first_touch_due_at
        state = "due" if now <= due else "🔴 overdue since"
        parts.append(f"first touch {state} {slack_date(due, zone)}")
    if lead.stage is Stage.SAL and lead.disposition_due_at:
        level, _ = escalation.urgency(lead, policy, now)
        due = lead.disposition_due_at
        parts.append(f"{URGENCY_ICONS[level]} disposition due by {slack_date(due, zone)}")
    return " · ".join(parts)


def _attempts_line(lead: LeadView, policy: Policy) -> str:
    standard = policy.follow_up
    return f"Attempts {lead.attempts}/{standard.min_attempts} (standard: within {standard.within})"


def _facts(lead: LeadView, policy: Policy) -> dict[str, Any]:
    reasons = "; ".join(lead.score_reasons[:3])
    why = f"\n{one_line(reasons, 300)}" if reasons else ""
    fields = [
        f"*Source*\n{one_line(lead.source or 'unknown', 200)}",
        f"*Campaign*\n{one_line(lead.campaign or '—', 300)}",
        f"*Score*\n{lead.score} ({one_line(lead.tier, 40)}){why}",
        f"*Segment*\n{one_line(lead.segment, 100)}",
    ]
    if lead.stage is Stage.MQL and lead.suggested_owner:
        fields.append(f"*Suggested owner*\n<@{lead.suggested_owner}>")
    return {"type": "section", "fields": [_mrkdwn(f) for f in fields]}


def _actions(lead: LeadView, policy: Policy) -> list[dict[str, Any]]:
    value = str(lead.id)
    if lead.stage is Stage.MQL:
        claim = _button("Claim", ActionId.CLAIM, value, style="primary")
        return [{"type": "actions", "block_id": "lead_claim", "elements": [claim]}]
    if lead.stage is not Stage.SAL:
        return []
    attempts = [_button(kind.label, attempt_action(kind.value), value) for kind in AttemptKind]
    blocks = [{"type": "actions", "block_id": "lead_attempts", "elements": attempts}]
    buttons = [_disposition_button(item, value) for item in policy.dispositions]
    for start in range(0, len(buttons), 25):
        block_id = f"lead_dispositions_{start // 25}"
        blocks.append(
            {"type": "actions", "block_id": block_id, "elements": buttons[start : start + 25]}
        )
    return blocks


def _disposition_button(disposition: Disposition, value: str) -> dict[str, Any]:
    action = dispose_action(disposition.code)
    if disposition.reason_required:  # the modal asks for the reason, and is the confirmation
        return _button(disposition.label, action, value)
    confirm = {
        "title": {"type": "plain_text", "text": "Close this lead?"},
        "text": _mrkdwn(plain(f"Mark it “{disposition.label}” ({disposition.outcome}).", 300)),
        "confirm": {"type": "plain_text", "text": plain(disposition.label, 30)},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    style = "primary" if disposition.outcome == "sql" else None
    return _button(disposition.label, action, value, style=style, confirm=confirm)


def _outcome(lead: LeadView, policy: Policy) -> str:
    disposition = policy.disposition(lead.disposition_code or "")
    label = disposition.label if disposition else (lead.disposition_code or lead.stage.value)
    icon = OUTCOME_ICONS.get(disposition.outcome if disposition else "", "•")
    text = f"{icon} *{one_line(label, 100)}* → {STAGE_WORDS[lead.stage]}"
    if lead.owner:
        text += f" by <@{lead.owner}>"
    if lead.dispositioned_at:
        text += f" on {slack_date(lead.dispositioned_at, policy.timezone)}"
    if lead.disposition_reason:
        text += f"\nReason: {one_line(lead.disposition_reason, 200)}"
    if lead.disposition_note:
        text += f"\nNote: {safe(lead.disposition_note, 1500)}"
    return text


def _headline(lead: LeadView) -> str:
    company = f" at {lead.company_name}" if lead.company_name else ""
    return f"{lead.tier.capitalize()} MQL: {lead.display_name}{company}"


def lead_message(lead: LeadView, policy: Policy, now: datetime) -> Message:
    """The lead's one message in its segment channel, for its current state."""
    blocks: list[dict[str, Any]] = [
        _section(f"{_stage_badge(lead)} {one_line(_headline(lead), 400)}"),
        _section(f"{_who(lead)}\n{_company_line(lead)}\n{_contact_line(lead)}"[:SECTION_LIMIT]),
        _facts(lead, policy),
        _section(_engagement(lead, policy.timezone)[:SECTION_LIMIT]),
    ]
    track = policy.talk_track(lead.source)
    if track and lead.stage.is_open:
        blocks.append(_section(f"*Talk track*\n{safe(track, 2500)}"))
    clock = _clock(lead, policy, now)
    if lead.stage is Stage.SAL:
        blocks.append(_context(*(part for part in (clock, _attempts_line(lead, policy)) if part)))
    elif clock:
        blocks.append(_context(clock))
    if not lead.stage.is_open:
        blocks.append(_section(_outcome(lead, policy)[:SECTION_LIMIT]))
    blocks.extend(_actions(lead, policy))
    return Message(text=_fallback(lead, policy), blocks=blocks[:MAX_BLOCKS])


def _stage_badge(lead: LeadView) -> str:
    if lead.stage is Stage.MQL:
        return "🔥" if lead.tier == "hot" else "🆕"
    return {Stage.SAL: "🤝"}.get(lead.stage, OUTCOME_ICONS.get(lead.stage.value, "✅"))


def _fallback(lead: LeadView, policy: Policy) -> str:
    # Escape only the lead's own words: the owner's mention must stay a live mention.
    text = one_line(_headline(lead), 2900)
    if lead.stage is Stage.MQL and lead.first_touch_due_at:
        text += f", first touch due by {team_time(lead.first_touch_due_at, policy.timezone)}"
    elif lead.stage is Stage.SAL:
        text += f", claimed by <@{lead.owner}>"
    else:
        text += f", {STAGE_WORDS[lead.stage]}"
    return text


def feedback_message(lead: LeadView, policy: Policy) -> Message:
    """What marketing hears in its channel about a reject, nurture or recycle."""
    disposition = policy.disposition(lead.disposition_code or "")
    label = disposition.label if disposition else (lead.disposition_code or "?")
    outcome = disposition.outcome if disposition else lead.stage.value
    icon = OUTCOME_ICONS.get(outcome, "•")
    head = f"{icon} *{one_line(label, 100)}* ({outcome}) · {one_line(_headline(lead), 400)}"
    fields = [
        f"*Lead*\n{one_line(lead.display_name, 200)} · {one_line(lead.email, 320)}",
        f"*Source*\n{one_line(lead.source or 'unknown', 200)}",
        f"*Campaign*\n{one_line(lead.campaign or '—', 300)}",
        f"*Code*\n`{one_line(lead.disposition_code or '?', 64)}`",
        f"*Reason*\n{one_line(lead.disposition_reason or '—', 200)}",
        f"*Rep*\n<@{lead.owner}>" if lead.owner else "*Rep*\n—",
    ]
    blocks: list[dict[str, Any]] = [
        _section(head),
        {"type": "section", "fields": [_mrkdwn(f) for f in fields]},
    ]
    if lead.disposition_note:
        blocks.append(_section(f"*Note*\n{safe(lead.disposition_note, 2800)}"))
    blocks.append(
        _context(f"Segment {one_line(lead.segment, 100)} · score {lead.score} · lead {lead.id}")
    )
    text = f"{label} ({outcome}): {lead.display_name}, source {lead.source or 'unknown'}"
    if lead.disposition_reason:
        text += f", reason: {lead.disposition_reason}"
    return Message(text=one_line(text, 3000), blocks=blocks)


def nurture_notice(lead: LeadView) -> Message:
    """A lead that is not an MQL goes back to marketing with its reason, never silently."""
    head = f"🌱 *Not an MQL, kept in nurture* · {one_line(_headline(lead).split(': ', 1)[-1], 400)}"
    reason = one_line(lead.stage_reason or "below the MQL definition", 1000)
    blocks = [
        _section(head),
        _section(
            f"*Why*: {reason}\n*Source*: {one_line(lead.source or 'unknown', 200)} · "
            f"*Campaign*: {one_line(lead.campaign or '—', 300)} · *Score*: {lead.score}"
        ),
        _context(f"{one_line(lead.email, 320)} · external id {one_line(lead.external_id, 255)}"),
    ]
    text = f"Not an MQL: {lead.display_name} ({lead.stage_reason or 'below the MQL definition'})"
    return Message(text=one_line(text, 3000), blocks=blocks)


def disposition_modal(lead: LeadView, disposition: Disposition) -> dict[str, Any]:
    """The modal that asks for a required reason and note before a disposition."""
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
            _section(
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
                    "max_length": 2000,
                    "placeholder": {"type": "plain_text", "text": "What did you learn?"},
                },
            },
        ],
    }


EVENT_WORDS = {
    "received": "received",
    "mql": "qualified as MQL",
    "nurture": "kept in nurture",
    "posted": "posted to Slack",
    "claimed": "claimed",
    "attempt": "contact attempt",
    "first_touch": "first touch",
    "dispositioned": "dispositioned",
    "escalated": "escalated",
    "reassigned": "reassigned",
    "snoozed": "escalations snoozed",
    "recycled_back": "back from recycling: a new cycle",
}
ACTION_WORDS = {
    "remind_channel": "reminder in the channel",
    "remind_owner": "reminder to the owner",
    "notify_manager": "managers alerted",
    "reassign": "reassigned",
}


def _reassigned_detail(data: dict[str, Any]) -> str:
    people = [
        f"{word} <@{data[key]}>"
        for key, word in (("from", "from"), ("to", "to"))
        if isinstance(data.get(key), str) and _USER_ID.fullmatch(data[key])
    ]
    return f" {' '.join(people)}" if people else ""


def lead_card(lead: LeadView, events: list[EventView], policy: Policy, now: datetime) -> Message:
    """`/lead`: the lead as it stands, with its timeline of events (ephemeral)."""
    blocks: list[dict[str, Any]] = [
        _section(
            f"{_stage_badge(lead)} {one_line(_headline(lead), 400)} · *{STAGE_WORDS[lead.stage]}*"
        ),
        _section(f"{_who(lead)}\n{_company_line(lead)}\n{_contact_line(lead)}"[:SECTION_LIMIT]),
        _facts(lead, policy),
    ]
    clock = _clock(lead, policy, now)
    if clock:
        blocks.append(_context(clock))
    if not lead.stage.is_open and lead.disposition_code:
        blocks.append(_section(_outcome(lead, policy)[:SECTION_LIMIT]))
    blocks.append(_section(_timeline(events, policy)))
    blocks.append(_context(f"Lead {lead.id} · external id {one_line(lead.external_id, 255)}"))
    return Message(text=_fallback(lead, policy), blocks=blocks)


def _timeline(events: list[EventView], policy: Policy) -> str:
    """The newest events that fit, as whole lines: a cut line could break a date or a mention."""
    if not events:
        return "*Timeline*\nNo events yet."
    lines: list[str] = []
    room = SECTION_LIMIT - 60  # for the heading and the "earlier events" line
    for event in reversed(events[-40:]):
        line = _event_line(event, policy)
        room -= len(line) + 1
        if room < 0:
            break
        lines.append(line)
    earlier = len(events) - len(lines)
    heading = f"*Timeline*\n…{earlier} earlier events not shown" if earlier else "*Timeline*"
    return "\n".join([heading, *reversed(lines)])


def _event_line(event: EventView, policy: Policy) -> str:
    what = EVENT_WORDS.get(event.type) or one_line(event.type.replace("_", " "), 60)
    # Mention only what is shaped like a Slack user id; anything else is text.
    actor = f"<@{event.actor}>" if _USER_ID.fullmatch(event.actor) else one_line(event.actor, 40)
    detail = ""
    if event.type == "attempt":
        detail = f" ({one_line(event.data.get('kind', ''), 20)} #{event.data.get('number', '?')})"
    elif event.type == "dispositioned":
        detail = f" as {one_line(event.data.get('code', ''), 64)}"
        if event.data.get("reason"):
            detail += f" ({one_line(event.data['reason'], 100)})"
    elif event.type == "nurture":
        detail = f": {one_line(event.data.get('reason', ''), 300)}"
    elif event.type == "escalated":
        action = str(event.data.get("action", ""))
        ladder = one_line(str(event.data.get("ladder", "")).replace("_", " "), 40)
        step = one_line(str(event.data.get("step", "?")), 10)
        done = ACTION_WORDS.get(action) or one_line(action.replace("_", " "), 40)
        detail = f" ({ladder} at {step}%: {done})"
    elif event.type == "reassigned":
        detail = _reassigned_detail(event.data)
    elif event.type == "snoozed" and event.data.get("until"):
        detail = f" until {_stored_instant(event.data['until'], policy.timezone)}"
    return f"• {slack_date(event.at, policy.timezone)} · {what}{detail} · {actor}"


def sla_summary(policy: Policy) -> Message:
    """`/sla`: the whole agreement on one page."""
    hours = policy.business_hours
    holidays = ", ".join(hours.regions) or "none"
    segments = "\n".join(
        f"• *{one_line(s.name, 40)}* → <#{s.channel}> · reps {' '.join(f'<@{r}>' for r in s.reps)}"
        for s in policy.segments
    )
    tiers = "\n".join(
        f"• *{one_line(t.name, 40)}*"
        + (f" (score ≥ {t.when.score_min})" if t.when and t.when.score_min is not None else "")
        + f": first touch within {t.first_touch} of working time"
        for t in policy.tiers
    )
    dispositions = "\n".join(
        f"• *{one_line(d.label, 40)}* → {d.outcome}"
        + (f" (reason: {one_line(', '.join(d.reasons), 300)})" if d.reason_required else "")
        for d in policy.dispositions
    )
    ladders = "\n".join(
        f"• {name.replace('_', ' ')}: {one_line(policy.escalation.describe(name), 400)}"
        for name in LADDERS
    )
    clock = (
        " · a claimed lead's clocks run on its owner's hours in their own time zone"
        if policy.clock == "owner"
        else ""
    )
    required = ", ".join(policy.mql.required_fields)
    targets = policy.targets
    target_bits = []
    if targets.first_touch_compliance is not None:
        target_bits.append(f"first-touch compliance {targets.first_touch_compliance:.0%}")
    if targets.acceptance_rate is not None:
        target_bits.append(f"acceptance rate {targets.acceptance_rate:.0%}")
    for name, count in targets.mql_per_week.items():
        target_bits.append(f"{one_line(name, 40)} {count} MQLs/week")
    blocks = [
        _section(f"📜 *{one_line(policy.name, 200)}* (version `{policy.version}`)"),
        _section(
            f"*Business time*: {' '.join(hours.days)} {hours.start}–{hours.end} "
            f"{policy.timezone}, holidays {one_line(holidays, 100)}{clock}"
        ),
        _section(f"*MQL*: score ≥ {policy.mql.threshold} with {one_line(required, 300)}"),
        _section(f"*Segments* (first match wins)\n{segments}"[:SECTION_LIMIT]),
        _section(f"*Speed to lead*\n{tiers}"[:SECTION_LIMIT]),
        _section(
            f"*Follow-up*: {policy.follow_up.min_attempts} attempts within "
            f"{policy.follow_up.within} · *feedback* within {policy.disposition_deadline}"
            f" · recycled leads return after {policy.recycle_after}"
        ),
        _section(f"*Escalation* (at a share of each clock's window)\n{ladders}"[:SECTION_LIMIT]),
        _section(f"*Dispositions*\n{dispositions}"[:SECTION_LIMIT]),
        _section(f"*Targets*: {', '.join(target_bits) or 'none set'}"),
        _context(f"Managers: {' '.join(f'<@{m}>' for m in policy.managers) or 'none'}"),
    ]
    return Message(text=one_line(f"{policy.name}: the SLA on one page", 3000), blocks=blocks)


_WHAT = {
    "post_lead": "post a lead",
    "update_lead": "update a lead's message",
    "feedback": "post disposition feedback",
    "nurture_notice": "post a nurture notice",
    "upload": "upload a report chart",
}


def delivery_alert(
    kind: str, channel: str, error: str, advice: str | None, lead: LeadView | None
) -> str:
    """The escalations channel hears when Slack refuses a side effect for good."""
    what = _WHAT.get(kind, "post a message")
    about = ""
    if lead is not None:
        about = (
            f" for {one_line(lead.display_name, 200)} (`/lead {one_line(lead.external_id, 255)}`)"
        )
    where = f"<@{channel}>'s DM" if _USER_ID.fullmatch(channel) else f"<#{channel}>"
    text = f":warning: Handoff could not {what}{about} in {where}: Slack said `{error}`."
    return f"{text} {advice}" if advice else text


# --- escalation steps -----------------------------------------------------------------------


def _lead_line(lead: LeadView) -> str:
    company = f" ({one_line(lead.company_name, 200)})" if lead.company_name else ""
    return f"*{one_line(lead.display_name, 200)}*{company}"


def _where(lead: LeadView) -> str:
    return f"<#{lead.message_channel or lead.channel}>"


def channel_reminder(
    lead: LeadView, window: escalation.Window, policy: Policy, now: datetime
) -> str:
    """A thread reply on the lead's post: still unclaimed (never @here: one person is named)."""
    who = f"<@{lead.suggested_owner}>, " if lead.suggested_owner else ""
    state = escalation.time_words(window, now, policy.calendar_for(lead.owner_zone))
    return (
        f"⏰ {who}this lead is still waiting for a claim: {window.what} {state} "
        f"({slack_date(window.due, policy.timezone)})."
    )


def owner_reminder(lead: LeadView, window: escalation.Window, policy: Policy, now: datetime) -> str:
    """A DM to the owner (or the suggested owner)."""
    state = escalation.time_words(window, now, policy.calendar_for(lead.owner_zone))
    return (
        f"⏰ Reminder: {_lead_line(lead)} in {_where(lead)}: {window.what} {state} "
        f"({slack_date(window.due, policy.timezone)}). `/lead {one_line(lead.external_id, 255)}` "
        "shows its timeline."
    )


def manager_alert(
    lead: LeadView, window: escalation.Window, policy: Policy, now: datetime
) -> Message:
    """The post in the escalations channel, with Reassign (the pool) and Snooze 1h."""
    managers = " ".join(f"<@{user}>" for user in policy.managers)
    owner = f"owner <@{lead.owner}>" if lead.owner else "nobody has claimed it"
    state = escalation.time_words(window, now, policy.calendar_for(lead.owner_zone))
    text = (
        f"🚨 {managers} {_lead_line(lead)} in {_where(lead)}: {window.what} {state}; {owner}."
    ).strip()
    segment = policy.segment(lead.segment)
    current = lead.owner or lead.suggested_owner  # handing it to them would change nothing
    pool = [rep for rep in (segment.reps if segment else []) if rep != current]
    value = str(lead.id)
    elements: list[dict[str, Any]] = []
    if pool:
        elements.append(
            {
                "type": "static_select",
                "action_id": ActionId.REASSIGN.value,
                "placeholder": {"type": "plain_text", "text": "Reassign to…"},
                "options": [
                    {
                        "text": {"type": "plain_text", "text": plain(rep, 75)},
                        "value": f"{value}:{rep}",
                    }
                    for rep in pool[:100]
                ],
            }
        )
    elements.append(_button("Snooze 1h", ActionId.SNOOZE.value, value))
    blocks = [_section(text), {"type": "actions", "elements": elements}]
    return Message(text=text, blocks=blocks)


def reassign_note(
    lead: LeadView, old: str | None, new: str, why: str, policy: Policy, now: datetime
) -> str:
    """The thread note on the lead's post when it changes hands."""
    before = f" from <@{old}>" if old else ""
    return f"🔁 Reassigned to <@{new}>{before} at {team_time(now, policy.timezone)}: {why}."


# --- a manager's answer to an alert ---------------------------------------------------------


def reassigned_dm(lead: LeadView, by: str, policy: Policy, now: datetime) -> str:
    """A DM to the rep a manager handed the lead to (`lead` as it is after the change)."""
    ask = "it is yours now" if lead.owner else "claim it there"
    running = escalation.windows(lead, policy)
    clock = ""
    if running:
        window = min(running, key=lambda item: item.due)
        state = escalation.time_words(window, now, policy.calendar_for(lead.owner_zone))
        clock = f" Its {window.what} is {state} ({slack_date(window.due, policy.timezone)})."
    return (
        f"🔁 <@{by}> handed you {_lead_line(lead)} in {_where(lead)}: {ask}.{clock} "
        f"`/lead {one_line(lead.external_id, 255)}` shows its timeline."
    )


def reassigned_alert(lead: LeadView, new: str, by: str) -> str:
    """The manager alert once a manager has reassigned the lead."""
    return f"✅ Reassigned to <@{new}> by <@{by}>: {_lead_line(lead)} in {_where(lead)}."


def snooze_note(by: str, until: datetime, policy: Policy) -> str:
    """The thread note on the lead's post when a manager snoozes its escalations."""
    return (
        f"😴 Snoozed by <@{by}> until {slack_date(until, policy.timezone)}: "
        "no reminders or escalations until then."
    )


def snoozed_alert(lead: LeadView, by: str, until: datetime, policy: Policy) -> str:
    """The manager alert once a manager has snoozed the lead."""
    when = slack_date(until, policy.timezone)
    return f"😴 Snoozed by <@{by}> until {when}: {_lead_line(lead)} in {_where(lead)}."


def settled_alert(text: str) -> Message:
    """A manager alert replaced by what was done about it (its menu and buttons gone)."""
    return Message(text=text, blocks=[_section(text[:SECTION_LIMIT])])


# --- the SLA report ----------------------------------------------------------------------------

RAG_ICONS = {"green": "🟢", "yellow": "🟡", "red": "🔴"}
SHORT_LABELS = {
    "first_touch": "First touch",
    "acceptance": "Acceptance",
    "feedback": "Feedback",
    "attempts": "Attempts",
    "completeness": "Data",
    "icp": "ICP",
}
PROBLEM_WORDS = {"routing": "routing", "data": "data", "definition": "MQL definition"}
REPORT_LINES = 8  # sources and reps shown per section (the rest are counted)


def kpi_value(kpi: Kpi) -> str:
    """`92%`, `1h 20m`, `12`, or `–` when there is nothing to measure."""
    if kpi.value is None:
        return "–"
    if kpi.unit == "share":
        return f"{kpi.value:.0%}"
    if kpi.unit == "minutes":
        return words(int(kpi.value))
    return f"{kpi.value:.0f}"


def kpi_change(kpi: Kpi) -> str:
    """`▲ 4 pts`, `▼ 12m`, `= ` against the previous period; empty when either is unknown."""
    change = kpi.change
    if change is None:
        return ""
    if kpi.unit == "share":
        points = round(change * 100)
        amount = f"{abs(points)} pts"
    elif kpi.unit == "minutes":
        points = round(change)
        amount = words(abs(points))
    else:
        points = round(change)
        amount = str(abs(points))
    return "= same" if points == 0 else f"{'▲' if points > 0 else '▼'} {amount}"


def _kpi_field(kpi: Kpi) -> str:
    icon = f" {RAG_ICONS[kpi.rag]}" if kpi.rag else ""
    target = f" (target {kpi.target:.0%})" if kpi.target is not None and kpi.unit == "share" else ""
    change = kpi_change(kpi)
    lines = [f"*{kpi.label}*", f"{kpi_value(kpi)}{icon}{target}"]
    lines.append(" · ".join(part for part in (kpi.detail, change) if part))
    return "\n".join(line for line in lines if line)[:FIELD_LIMIT]


def _rag_line(kpis: list[Kpi]) -> str:
    parts = [
        f"{RAG_ICONS[k.rag]} {SHORT_LABELS.get(k.key, k.label)} {kpi_value(k)}"
        for k in kpis
        if k.rag is not None
    ]
    return " · ".join(parts) or "No targets in the SLA file to colour against."


def _slice_line(piece: Slice, name: str) -> str:
    parts = []
    for kpi in piece.kpis:
        if kpi.key == "mql":
            parts.append(f"{kpi_value(kpi)} MQL{'' if kpi.value == 1 else 's'}")
        elif kpi.key in ("first_touch", "acceptance", "feedback") and kpi.value is not None:
            icon = f" {RAG_ICONS[kpi.rag]}" if kpi.rag else ""
            parts.append(f"{SHORT_LABELS[kpi.key].lower()} {kpi_value(kpi)}{icon}")
        elif kpi.key == "speed_median" and kpi.value is not None:
            parts.append(f"speed {kpi_value(kpi)}")
    return f"• {name}: {' · '.join(parts)}"


def _slices_text(title: str, slices: list[Slice], name: Any) -> str:
    shown = sorted(slices, key=lambda s: -s.received)[:REPORT_LINES]
    lines = [_slice_line(piece, name(piece.name)) for piece in shown]
    more = len(slices) - len(shown)
    if more > 0:
        lines.append(f"…and {more} more")
    return f"*{title}*\n" + ("\n".join(lines) or "None.")


def _rep_name(rep: str) -> str:
    return f"<@{rep}>" if _USER_ID.fullmatch(rep) else one_line(rep, 60)


def sla_report(
    report: Report,
    policy: Policy,
    shared_by: str | None = None,
    digest: bool = False,
    charts_in_dm: bool = False,
) -> Message:
    """`/sla-report`: the week in ten seconds (ephemeral, shared to a channel, or the digest)."""
    period = report.period
    scope = f" · {one_line(report.segment, 40)}" if report.segment else ""
    progress = " (week in progress)" if report.in_progress else ""
    kind = "Weekly SLA digest" if digest else "SLA report"
    title = f"📊 *{kind} · {period.words()}*{scope}{progress}"
    headline = {kpi.key: kpi for kpi in report.headline}
    blocks: list[dict[str, Any]] = [_section(title)]
    if report.empty:
        blocks.append(_section("No leads this week: every figure below is zero."))
    blocks.append(_section(_rag_line(report.headline)))
    shares = [k for k in report.headline if k.unit == "share"]
    fields = [_mrkdwn(_kpi_field(k)) for k in [headline["mql"], *shares]][:10]
    blocks.append({"type": "section", "fields": fields})
    speed, p90, claim = headline["speed_median"], headline["speed_p90"], headline["claim_median"]
    change = kpi_change(speed)
    blocks.append(
        _section(
            f"*Speed to lead* (posted → first touch, working time): median {kpi_value(speed)}, "
            f"p90 {kpi_value(p90)}{f' ({change})' if change else ''} · *time to claim* median "
            f"{kpi_value(claim)}"
        )
    )
    volume = " · ".join(
        f"{one_line(k.label, 40)} {kpi_value(k)}"
        + (f"/{k.target:.0f}" if k.target is not None else "")
        + (f" {RAG_ICONS[k.rag]}" if k.rag else "")
        for k in report.volume
    )
    mql, sal, sql = report.conversion
    conversion = f"{mql} MQL → {sal} SAL ({_pct(sal, mql)}) → {sql} SQL ({_pct(sql, mql)})"
    blocks.append(
        _section(f"*MQLs vs weekly target*: {volume or 'none'}\n*Conversion*: {conversion}")
    )
    blocks.append(
        _section(
            _slices_text("By segment", report.by_segment, lambda n: f"*{one_line(n, 40)}*")[
                :SECTION_LIMIT
            ]
        )
    )
    blocks.append(
        _section(
            _slices_text("By source", report.by_source, lambda n: one_line(n, 60))[:SECTION_LIMIT]
        )
    )
    blocks.append(_section(_slices_text("By rep", report.by_rep, _rep_name)[:SECTION_LIMIT]))
    blocks.append(_section(_outcomes_text(report)[:SECTION_LIMIT]))
    zone = policy.timezone
    context = (
        f"As of {slack_date(report.as_of, zone)} · changes against {report.previous_period.label}"
        f" · durations in working time ({one_line(zone, 60)})"
    )
    if shared_by:
        context = f"Shared by <@{shared_by}> · {context}"
    if charts_in_dm:
        context = f"📈 The charts are in your DM with Handoff · {context}"
    blocks.append(_context(context))
    if shared_by is None and not digest:
        value = f"{period.label}|{report.segment or ''}"
        share = _button("Share to channel", ActionId.REPORT_SHARE, value)
        blocks.append({"type": "actions", "block_id": "report_actions", "elements": [share]})
    text = f"SLA report {period.label}{scope}: " + _plain_rag(report.headline)
    return Message(text=one_line(text, 3000), blocks=blocks[:MAX_BLOCKS])


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def _plain_rag(kpis: list[Kpi]) -> str:
    return (
        ", ".join(
            f"{SHORT_LABELS.get(k.key, k.label)} {kpi_value(k)}" for k in kpis if k.rag is not None
        )
        or "no targets set"
    )


def _outcomes_text(report: Report) -> str:
    mix = " · ".join(f"{one_line(label, 40)} {n}" for _, label, n in report.dispositions)
    lines = [f"*Dispositions*: {mix or 'none yet'}"]
    if report.reasons:
        split = " · ".join(
            f"{PROBLEM_WORDS.get(problem, 'untagged')} {n}"
            for problem, n in sorted(report.problems.items(), key=lambda item: -item[1])
        )
        lines.append(f"*Why leads were rejected* ({split}):")
        for reason in report.reasons[:5]:
            tag = PROBLEM_WORDS.get(reason.problem or "", "untagged")
            lines.append(f"• {one_line(reason.reason, 80)} ({tag}): {reason.leads}")
    fired = " · ".join(
        f"{ladder.replace('_', ' ')}: {ACTION_WORDS.get(action, action)} {n}"
        for ladder, action, n in report.escalations
    )
    lines.append(f"*Escalations fired*: {fired or 'none'}")
    return "\n".join(lines)


def rejection_summary(
    period: Period, rows: list[tuple[str, str, str, str | None, int]], policy: Policy
) -> Message:
    """Marketing's weekly review: last week's rejections by source and campaign, with the
    problem each reason points at (routing, data, MQL definition)."""
    total = sum(n for *_, n in rows)
    title = f"📬 *Rejections in {period.words()}*, by source and campaign: {total} leads"
    blocks: list[dict[str, Any]] = [_section(title)]
    if not rows:
        blocks.append(_section("No leads were rejected last week."))
    grouped: dict[tuple[str, str], list[tuple[str, str | None, int]]] = {}
    for source, campaign, code, reason, n in rows:
        grouped.setdefault((source, campaign), []).append((code, reason, n))
    ordered = sorted(grouped.items(), key=lambda item: -sum(n for *_, n in item[1]))
    lines = []
    for (source, campaign), reasons in ordered[: REPORT_LINES * 2]:
        parts = []
        for code, reason, n in reasons:
            disposition = policy.disposition(code)
            problem = disposition.problem_of(reason) if disposition else None
            label = one_line(reason or (disposition.label if disposition else code), 80)
            parts.append(f"{label} ({PROBLEM_WORDS.get(problem or '', 'untagged')}) {n}")
        lines.append(f"• *{one_line(source, 60)}* · {one_line(campaign, 80)}: {', '.join(parts)}")
    more = len(ordered) - len(lines)
    if more > 0:
        lines.append(f"…and {more} more source and campaign pairs")
    if lines:
        blocks.append(_section("\n".join(lines)[:SECTION_LIMIT]))
    blocks.append(
        _context("`/sla-report last-week` has the whole week · reasons are tagged in sla.yaml")
    )
    text = f"Rejections in {period.label}: {total} leads"
    return Message(text=text, blocks=blocks)


def compliance_alert(
    weeks: list[tuple[Period, float | None]],
    worst: list[tuple[str, float]],
    below: float,
    policy: Policy,
) -> Message:
    """A DM: first-touch compliance has stayed under the threshold for N weeks running."""
    trend = " → ".join(
        f"{period.label} {value:.0%}" if value is not None else f"{period.label} –"
        for period, value in weeks
    )
    lines = [
        f"⚠️ *First-touch compliance has been under {below:.0%} for {len(weeks)} weeks running.*",
        f"Trend: {trend}",
    ]
    if worst:
        segments = ", ".join(f"{one_line(name, 40)} {value:.0%}" for name, value in worst)
        lines.append(f"Worst segments last week: {segments}")
    lines.append("`/sla-report last-week` shows where the time goes, by segment, source and rep.")
    text = f"First-touch compliance under {below:.0%} for {len(weeks)} weeks: {trend}"
    return Message(text=one_line(text, 3000), blocks=[_section("\n".join(lines))])
