"""App Home: a rep's own queue and a manager's week, as pure functions of stored state.

A lead reads and acts here as in its channel: the same clock line and the same buttons (same
action ids and values, from `lead_views`), so a press in App Home goes through the same
listeners. The home use case (`Homes`) reads one person's state into a `HomeState`; the outbox
publishes it (`Kind.HOME`), so every publish of a person's home runs in one lane, in order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain import escalation
from bot.domain.lead import LeadView
from bot.domain.policy import Policy
from bot.domain.report import Kpi, Report
from bot.slack.alert_views import clock_words, manager_alert
from bot.slack.blocks import context, divider, field_sections, header, section

# The lead's clock line and buttons must be exactly those of its channel message.
from bot.slack.lead_views import (
    attempts_line,
    claim_line,
    clock_line,
    lead_actions,
    next_touch_line,
    score_phrase,
)
from bot.slack.report_views import (
    RAG_ICONS,
    SHORT_LABELS,
    kpi_change,
    kpi_value,
    nothing_coloured,
)
from bot.slack.text import clip, one_line, slack_date

HOME_BLOCKS = 100  # Slack's limit for a home view
# views.publish's `view_too_large`: "greater than 250kb", as the SDK sends it (JSON that escapes
# every non-ASCII character: 12 bytes an emoji), less room for the rest of the request.
HOME_BYTES = 240 * 1024
OVERDUE_SHOWN = 10
LEADS_READ = 40  # of each kind, per rep: more than fit
RAG_ORDER = {"red": 0, "yellow": 1, "green": 2}
AWAY_LINE = (
    "🌴 You're away: new leads skip you, and an open lead of yours goes back to the pool when "
    "its next deadline passes. `/handoff back` when you're back."
)


@dataclass(frozen=True)
class Queue:
    """A rep's open leads, nearest deadline first, and how many there are in all."""

    owned: list[LeadView]  # claimed, not dispositioned
    suggested: list[LeadView]  # MQLs suggested to them that nobody has claimed
    owned_total: int
    suggested_total: int
    rep: bool  # in a segment's pool (else: a manager's or an outsider's own leads)


@dataclass(frozen=True)
class Dashboard:
    """A manager's week: the report of this week and the most overdue open leads."""

    report: Report
    overdue: list[LeadView]  # most overdue first
    more: bool  # more leads are overdue than shown


@dataclass(frozen=True)
class HomeState:
    """Everything one person's App Home shows."""

    policy: Policy  # the current SLA
    versions: Mapping[str, Policy]  # the SLA version of each lead shown
    queue: Queue | None  # None: a manager with no leads of their own
    dashboard: Dashboard | None  # managers only
    notice: str | None = None  # the answer to their last press in App Home
    names: Mapping[str, str] = field(default_factory=dict)  # members' display names
    share: str | None = None  # a rep's own share of the round robin this week
    away: bool = False  # the rep is away now (set by hand, or a Slack status the SLA lists)


def home_view(state: HomeState, now: datetime) -> dict[str, Any]:
    """The App Home view: the notice, the person's queue, a manager's dashboard."""
    head = [section(f"💬 {clip(state.notice, 2900)}")] if state.notice else []
    tail = [
        context(
            f"{one_line(state.policy.name, 200)} · `/sla` shows the whole agreement · "
            "`/lead &lt;email|external id&gt;` shows a lead's timeline"
        )
    ]
    room = Room(HOME_BLOCKS, HOME_BYTES).less([*head, *tail, divider()])
    dashboard: list[dict[str, Any]] = []
    if state.dashboard:
        # Its overdue cards carry their pool's Reassign menu (up to 100 names): they take
        # what fits, leaving the queue what it needs, half the room at most.
        wanted = Room(0, 0)
        if state.queue:
            whole = _queue(state.queue, state, now, Room(HOME_BLOCKS, 10 * HOME_BYTES))
            wanted = Room(len(whole) + 1, _size(whole) + COUNT_BYTES)  # + 1: the divider
        dashboard = _dashboard(state.dashboard, state, now, room, wanted)
    budget = room.less(dashboard)
    queue = _queue(state.queue, state, now, budget) if state.queue else []
    between = [divider()] if queue and dashboard else []
    return {"type": "home", "blocks": [*head, *queue, *between, *dashboard, *tail]}


# --- a rep's queue -----------------------------------------------------------------------------


def _lead_title(lead: LeadView) -> str:
    title = f" · {one_line(lead.title, 150)}" if lead.title else ""
    company = f" at {one_line(lead.company_name, 200)}" if lead.company_name else ""
    where = f"<#{lead.message_channel or lead.channel}>"
    return f"*{one_line(lead.display_name, 200)}*{title}{company} in {where}"


def _lookup(lead: LeadView) -> str:
    return f"`/lead {one_line(lead.external_id, 255)}`"


def _card(lead: LeadView, policy: Policy, now: datetime, text: str) -> list[dict[str, Any]]:
    """A lead as the rep works it: what it is, its clock, the buttons of its message (their
    block ids made unique in the view)."""
    blocks = [section(text)]
    clock, claim = clock_line(lead, policy, now), claim_line(lead, policy, now)
    if clock or claim:  # a suggested lead's claim window: whether it is still theirs alone
        blocks.append(context(clock, claim))
    for block in lead_actions(lead, policy):
        blocks.append({**block, "block_id": f"home_{lead.id}_{block['block_id']}"})
    return blocks


def owned_card(lead: LeadView, policy: Policy, now: datetime) -> list[dict[str, Any]]:
    text = f"🤝 {_lead_title(lead)}\n{attempts_line(lead, policy)} · {_lookup(lead)}"
    touch = next_touch_line(lead, policy, now)
    return _card(lead, policy, now, f"{text}\n{touch}" if touch else text)


def suggested_card(lead: LeadView, policy: Policy, now: datetime) -> list[dict[str, Any]]:
    badge = "🔥" if lead.tier == "hot" else "🆕"
    tier = one_line(lead.tier.capitalize(), 40)
    text = (
        f"{badge} {_lead_title(lead)}\n{tier} MQL, {score_phrase(lead)}, suggested for you: "
        f"nobody has claimed it yet · {_lookup(lead)}"
    )
    return _card(lead, policy, now, text)


@dataclass(frozen=True)
class Room:
    """What a part of the view may still take: blocks, and bytes as they are sent."""

    blocks: int
    size: int

    def less(self, blocks: list[dict[str, Any]]) -> Room:
        return Room(self.blocks - len(blocks), self.size - _size(blocks))

    def share(self, wanted: Room) -> Room:
        """Half of this room at least, more if `wanted` (what comes after) leaves more."""
        return Room(
            max(self.blocks // 2, self.blocks - wanted.blocks),
            max(self.size // 2, self.size - wanted.size),
        )


def _size(blocks: list[dict[str, Any]]) -> int:
    """Bytes of `blocks` as the SDK sends them (json.dumps escapes non-ASCII: one byte a char)."""
    return len(json.dumps(blocks))


COUNT_BYTES = 200  # the line counting the leads that did not fit


def _fit(cards: list[list[dict[str, Any]]], room: Room, total: int) -> list[dict[str, Any]]:
    """Whole cards while they fit in `room` (blocks and bytes), and a line counting the rest."""
    blocks: list[dict[str, Any]] = []
    shown, size = 0, 0
    for card in cards:
        card_size = _size(card)
        if len(blocks) + len(card) > room.blocks - 1:  # one block stays for the count
            break
        if size + card_size > room.size - COUNT_BYTES:
            break
        blocks.extend(card)
        shown, size = shown + 1, size + card_size
    if total > shown:
        blocks.append(context(f"…and {total - shown} more: the channel has them all."))
    return blocks


def _queue(queue: Queue, state: HomeState, now: datetime, room: Room) -> list[dict[str, Any]]:
    blocks = [header("Your open leads")]
    if state.away:
        blocks.append(context(AWAY_LINE))
    if state.share:
        blocks.append(context(state.share))
    if not queue.owned and not queue.suggested:
        if queue.rep:
            empty = "Nothing open. New leads appear in your segment channel, and here too."
        else:
            empty = (
                "No leads come to you: you are not in a segment's pool of reps. "
                "`/sla` shows who works which leads."
            )
        return [*blocks, section(empty)]
    owned = [owned_card(lead, state.versions[lead.sla_version], now) for lead in queue.owned]
    suggested = [
        suggested_card(lead, state.versions[lead.sla_version], now) for lead in queue.suggested
    ]
    title = [header("Suggested for you")] if suggested else []
    room = room.less([*blocks, *title])
    wanted = Room(
        sum(len(card) for card in suggested) + 1, sum(map(_size, suggested)) + COUNT_BYTES
    )
    if owned:
        shown = _fit(owned, room.share(wanted), queue.owned_total)
    else:
        shown = [section("None claimed yet: the leads below are suggested for you.")]
    blocks.extend(shown)
    if suggested:
        blocks.extend(title)
        blocks.extend(_fit(suggested, room.less(shown), queue.suggested_total))
    return blocks


# --- a manager's week --------------------------------------------------------------------------


def _rag(kpis: list[Kpi], currency: str | None = None, volume: Sequence[Kpi] = ()) -> str:
    """The coloured KPIs, the worst first; none: why, as `/sla-report` says it (`volume`: the
    week's MQL volume, coloured against its targets though not shown here)."""
    coloured = [(RAG_ORDER[k.rag], RAG_ICONS[k.rag], k) for k in kpis if k.rag]
    coloured.sort(key=lambda item: item[0])
    shown = [
        f"{icon} {SHORT_LABELS.get(k.key, k.label)} {kpi_value(k, currency=currency)}"
        for _, icon, k in coloured
    ]
    return " · ".join(shown) or nothing_coloured(kpis, volume)


def _kpi(kpi: Kpi, currency: str | None = None) -> str:
    """A headline figure as `/sla-report` writes it: amounts in the SLA's currency."""
    icon = f" {RAG_ICONS[kpi.rag]}" if kpi.rag else ""
    change = kpi_change(kpi)
    value = kpi_value(kpi, currency=currency)
    return f"*{kpi.label}*\n{value}{icon}" + (f" · {change}" if change else "")


def overdue_window(lead: LeadView, policy: Policy, now: datetime) -> escalation.Window | None:
    """The lead's clock that ran out first, of those past their deadline now."""
    late = [window for window in escalation.windows(lead, policy) if window.due <= now]
    return min(late, key=lambda window: window.due) if late else None


def most_overdue(
    leads: list[LeadView], versions: Mapping[str, Policy], now: datetime
) -> list[LeadView]:
    """The leads past a deadline, the longest overdue first."""
    late = [
        (window.due, lead.id, lead)
        for lead in leads
        if (window := overdue_window(lead, versions[lead.sla_version], now))
    ]
    return [lead for _, _, lead in sorted(late, key=lambda item: item[:2])]


def overdue_card(
    lead: LeadView, policy: Policy, now: datetime, names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """An overdue lead with the escalation alert's controls (Reassign, Snooze 1h)."""
    window = overdue_window(lead, policy, now)
    if window is None:
        return []
    zone = policy.timezone
    late = escalation.time_words(window, now, escalation.calendar_of(window.ladder, lead, policy))
    if lead.owner:
        who = f"owner <@{lead.owner}>"
    elif lead.suggested_owner:
        who = f"unclaimed (suggested <@{lead.suggested_owner}>)"
    else:
        who = "unclaimed"
    snoozed = ""
    if lead.snoozed_until and lead.snoozed_until > now:
        snoozed = f" · 😴 snoozed until {slack_date(lead.snoozed_until, zone)}"
    text = (
        f"🔴 {_lead_title(lead)}\n{window.what.capitalize()} {late} (due "
        f"{slack_date(window.due, zone)}; {clock_words(lead, window, policy)}) · {who}{snoozed}"
        f" · {_lookup(lead)}"
    )
    alert = manager_alert(lead, window, policy, now, names)
    controls = [
        {**block, "block_id": f"home_overdue_{lead.id}"}
        for block in alert.blocks
        if block["type"] == "actions"
    ]
    return [section(text), *controls]


def _dashboard(
    dashboard: Dashboard, state: HomeState, now: datetime, room: Room, queue: Room
) -> list[dict[str, Any]]:
    """The week and the overdue cards that fit in `room`, leaving what the `queue` shown
    below wants of it (half of it at most)."""
    report = dashboard.report
    progress = " (week in progress)" if report.in_progress else ""
    currency = state.policy.currency
    colours = _rag(report.headline, currency, report.volume)
    blocks: list[dict[str, Any]] = [
        header("This week's SLA"),
        section(f"📊 *{report.period.words()}*{progress}\n{colours}"),
        *field_sections(_kpi(kpi, currency) for kpi in report.headline),
        context(
            f"As of {slack_date(report.as_of, state.policy.timezone)} · changes against "
            f"{report.previous_period.label} · `/sla-report` has the whole report by segment, "
            "source and rep"
        ),
        header("Overdue now"),
    ]
    if not dashboard.overdue:
        return [*blocks, section("No open lead is past a deadline.")]
    room = room.less(blocks).share(queue)
    shown = 0
    for lead in dashboard.overdue:
        card = overdue_card(lead, state.versions[lead.sla_version], now, state.names)
        if len(card) > room.blocks - 1 or _size(card) > room.size - COUNT_BYTES:
            break  # one block and its bytes stay for the line below
        blocks.extend(card)
        room, shown = room.less(card), shown + 1
    if shown == 0:
        blocks.append(section("Too long to show here: the escalations channel has every alert."))
    elif dashboard.more or shown < len(dashboard.overdue):
        blocks.append(
            context(f"The {shown} most overdue are shown; the escalations channel has every alert.")
        )
    return blocks
