"""What the sweep, a reassignment and a snooze send: reminders, escalation alerts, the notes in a
lead's thread, the DMs, and the alerts once settled; and the escalations channel's word when
Slack refuses a delivery for good."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.domain import escalation
from bot.domain.access import Action, anyone_may
from bot.domain.effects import (
    MONTHLY_DIGEST,
    REJECTION_REVIEW,
    WEEKLY_DIGEST,
    Moved,
    ReportPart,
    Resent,
)
from bot.domain.lead import LeadView
from bot.domain.policy import Disposition, Policy
from bot.slack.blocks import (
    EDIT_TEXT_LIMIT,
    MAX_BLOCKS,
    SECTION_LIMIT,
    Message,
    actions,
    button,
    section,
)
from bot.slack.ids import ActionId
from bot.slack.text import (
    clip,
    is_user_id,
    one_line,
    person,
    plain,
    readable,
    slack_date,
    team_time,
)

# --- what Slack refused for good -------------------------------------------------------------

_WHAT = {
    "post_lead": "post a lead",
    "update_lead": "update a lead's message",
    "feedback": "post disposition feedback",
    "nurture_notice": "post a nurture notice",
    "upload": "upload a report chart",
    "retire_post": "update the post of a lead's earlier cycle",
}


def delivery_alert(
    kind: str,
    channel: str,
    error: str,
    advice: str | None,
    lead: LeadView | None,
    report: ReportPart | None = None,
) -> str:
    """The escalations channel hears when Slack refuses a side effect for good: what it was
    (a report's message or chart by its report: "post the weekly digest of 2026-W48")."""
    what = _what(kind, report)
    about = ""
    if lead is not None:
        about = (
            f" for {one_line(lead.display_name, 200)} (`/lead {one_line(lead.external_id, 255)}`)"
        )
    where = f"<@{channel}>'s DM" if is_user_id(channel) else f"<#{channel}>"
    text = f":warning: Handoff could not {what}{about} in {where}: Slack said `{error}`."
    return f"{text} {advice}" if advice else text


def _what(kind: str, report: ReportPart | None) -> str:
    """What Handoff could not do, in words: "post a lead", "post the rejection review of
    2026-W48", "upload a chart of the monthly digest of 2026-11"."""
    if report is None:
        return _WHAT.get(kind, "post a message")
    name = f"the {_REPORT_WORDS.get(report.what, 'report')} of {one_line(report.period, 40)}"
    return f"upload a chart of {name}" if kind == "upload" else f"post {name}"


def refusals_alert(
    kind: str,
    channel: str,
    error: str,
    advice: str | None,
    lead: LeadView | None,
    *,
    refused: int,
    mended: bool,
    reposted: int,
    resent: Resent | None = None,
    report: ReportPart | None = None,
    moved: Sequence[Moved] = (),
) -> str:
    """The escalations channel's one alert about the messages Slack refused to `channel` with
    `error` (re-rendered in place as they add up): how many, the latest, where sla.yaml now
    posts the segments of the leads refused there (`moved`: each segment's channel now and how
    many of those leads Handoff posted there), and whether the channel takes messages again,
    which leads were posted there again and what else was sent there again (marketing's
    rejections and other feedback, reports and their charts, the edits retiring the posts of
    leads' earlier cycles), each kind with its count, and nothing of a kind with none.
    `report`: the report the latest was part of, named as it is."""
    if refused <= 1:
        text = delivery_alert(kind, channel, error, advice, lead, report)
    else:
        where = f"<@{channel}>'s DM" if is_user_id(channel) else f"<#{channel}>"
        text = f":warning: {refused} messages to {where} were refused: Slack said `{error}`."
        text = f"{text} {advice}" if advice else text
        latest = _what(kind, report)
        if lead is not None:
            latest += (
                f" for {one_line(lead.display_name, 200)} "
                f"(`/lead {one_line(lead.external_id, 255)}`)"
            )
        text = f"{text}\nThe latest: Handoff could not {latest}."
    tail = _mended_words(channel, reposted, resent) if mended else ""
    room = EDIT_TEXT_LIMIT - len(text) - len(tail)
    # Re-rendered with chat.update, whose `text` "cannot exceed 4,000 characters" (its
    # `msg_too_long`): the segments moved that do not fit are counted in one line.
    return clip(text + _moved_lines(moved, channel, room) + tail, EDIT_TEXT_LIMIT)


def _mended_words(channel: str, reposted: int, resent: Resent | None) -> str:
    """The end of a refusals alert once its channel takes messages again: what came back."""
    where = f"<@{channel}>'s DM" if is_user_id(channel) else f"<#{channel}>"
    text = f"\n:white_check_mark: {where} takes messages again"
    others = _resent_words(resent or Resent())
    if reposted:
        leads = "1 lead" if reposted == 1 else f"{reposted} leads"
        text = (
            f"{text}: Handoff posted again the {leads} it could not post there, as they are "
            "now, with their buttons."
        )
        return f"{text} It also sent again {others}." if others else text
    return (
        f"{text}. Handoff sent again what it could not send there: {others}."
        if others
        else f"{text}."
    )


def _moved_lines(moved: Sequence[Moved], old: str, room: int) -> str:
    """A line for each segment sla.yaml moved from `old`, within `room` characters: those
    that do not fit are told together, with how many leads they took."""
    lines = [f"\n{_moved_words(segment, old)}" for segment in moved]
    if sum(len(line) for line in lines) <= room:
        return "".join(lines)
    shown: list[str] = []
    for index, line in enumerate(lines):
        rest = moved[index:]
        leads = sum(segment.leads for segment in rest)
        segments = "1 more segment" if len(rest) == 1 else f"{len(rest)} more segments"
        summary = (
            f"\n:arrow_right: sla.yaml moved {segments} to other channels: Handoff posts "
            f"there the {'1 lead' if leads == 1 else f'{leads} leads'} it could not post in "
            f"<#{old}>."
        )
        if sum(map(len, shown)) + len(line) + len(summary) > room:
            return "".join(shown) + summary
        shown.append(line)
    return "".join(shown)


def _moved_words(moved: Moved, old: str) -> str:
    """A manager reading the alert must not think those leads are still lost: where they are.
    Said of the move as it was, so it stays true when sla.yaml changes again (the segment moved
    on, or back), and once the posts are queued as when they landed."""
    leads = "1 lead" if moved.leads == 1 else f"{moved.leads} leads"
    return (
        f":arrow_right: sla.yaml moved the `{one_line(moved.segment, 40)}` segment to "
        f"<#{moved.channel}>: Handoff posts there the {leads} it could not post in <#{old}>."
    )


_REPORT_WORDS = {
    WEEKLY_DIGEST: "weekly digest",
    REJECTION_REVIEW: "rejection review",
    MONTHLY_DIGEST: "monthly digest",
}


def _the(count: int, one: str, many: str) -> str:
    return f"the {count} {one if count == 1 else many}"


def _resent_words(resent: Resent) -> str:
    """What else came back to a mended channel, each kind with its count, in plain words (the
    managers tell by it that marketing got its feedback); "" if nothing else did."""
    parts = []
    if resent.rejections:
        parts.append(_the(resent.rejections, "rejection", "rejections"))
    if resent.dispositions:
        parts.append(
            _the(resent.dispositions, "lead put back", "leads put back")
            + " in nurture or recycling"
        )
    if resent.notices:
        parts.append(_the(resent.notices, '"not an MQL" notice', '"not an MQL" notices'))
    by_what: dict[str, list[str]] = {}
    for what, period in resent.reports:
        by_what.setdefault(what, []).append(one_line(period, 40))
    for what, periods in by_what.items():
        name = _REPORT_WORDS.get(what, "report")
        plural = "s" if len(periods) > 1 else ""
        parts.append(f"the {name}{plural} of {_and(periods)}")
    if resent.charts:
        parts.append(_the(resent.charts, "report chart", "report charts"))
    if resent.retired:
        parts.append(
            _the(
                resent.retired,
                "update of the post of a lead's earlier cycle",
                "updates of the posts of leads' earlier cycles",
            )
        )
    return _and(parts)


def _and(parts: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else "".join(parts)


def reposted_alert(lead: LeadView, channel: str) -> str:
    """The escalations channel hears, once, that someone deleted a lead's post in Slack."""
    name = one_line(lead.display_name, 200)
    return (
        f":wastebasket: The post of {name} (`/lead {one_line(lead.external_id, 255)}`) in "
        f"<#{channel}> was deleted in Slack, so Handoff posted it again there, as the lead is "
        "now. Notes sent to its thread before Handoff noticed stay with the deleted post."
    )


def history_unreadable(channel: str, error: str) -> str:
    """The escalations channel hears when a post whose answer was lost had to be sent again
    without checking, because the channel's history cannot be read."""
    return (
        f":warning: Handoff could not read the history of <#{channel}> (Slack said `{error}`), "
        "so a message whose answer from Slack was lost was posted again without checking "
        "whether it had arrived: it may show twice. Invite the app to that channel "
        "(`/invite @Handoff`) so it can check."
    )


def publish_failed(user: str, error: str, advice: str | None) -> str:
    """The escalations channel hears when Slack refuses a person's App Home for good."""
    text = f":warning: Handoff could not publish <@{user}>'s App Home: Slack said `{error}`."
    return f"{text} {advice}" if advice else text


def escalations_refused(channel: str, error: str, advice: str | None) -> str:
    """Each manager hears by DM, once a day per error, when Slack refuses the escalations
    channel itself: the alerts meant for it (overdue leads, leads handed on, refusals of other
    channels) reach nobody there, so where the leads still show."""
    text = (
        f":rotating_light: Handoff cannot post in <#{channel}>, the escalations channel: Slack "
        f"said `{error}`."
    )
    text = f"{text} {advice}" if advice else text
    return (
        f"{text}\nUntil then the managers' alerts (overdue leads, leads handed on, messages "
        "Slack refused elsewhere) reach nobody there: your App Home lists the overdue leads, "
        "and `/lead` shows any lead as it is. Told again tomorrow if Slack still refuses it."
    )


def homes_refused(error: str, advice: str | None, waiting: int) -> str:
    """The escalations channel hears, once a day, when Slack refuses every App Home (the app's
    Home tab is off): how many people's homes wait to be published."""
    homes = "1 person's App Home waits" if waiting == 1 else f"{waiting} people's App Homes wait"
    text = f":warning: Slack refuses every App Home Handoff publishes: it said `{error}`."
    text = f"{text} {advice}" if advice else text
    return (
        f"{text}\n{homes} to be published: Handoff publishes each once, as it is then, when "
        "Slack takes App Homes again (told here again tomorrow if it still refuses them)."
    )


# --- escalation steps -----------------------------------------------------------------------


def _lead_line(lead: LeadView) -> str:
    company = f" ({one_line(lead.company_name, 200)})" if lead.company_name else ""
    return f"*{one_line(lead.display_name, 200)}*{company}"


def _where(lead: LeadView) -> str:
    return f"<#{lead.message_channel or lead.channel}>"


def clock_words(lead: LeadView, window: escalation.Window, policy: Policy) -> str:
    """`SLA: 72 hours after the claim`: the deadline's duration, its clock in the words."""
    duration = escalation.window_duration(window, lead, policy)
    start = "after the claim" if window.ladder in ("no_feedback", "no_outcome") else "after arrival"
    if window.ladder == "unclaimed" and lead.claimed_at is not None:
        # Claimed once and back in the pool (its owner away): its claim clock runs from then.
        start = "after its release to the pool"
    if window.ladder == "unclaimed" and policy.tier(lead.tier).claim is None:
        return f"SLA: half of {duration.words} {start}"
    return f"SLA: {duration.words} {start}"


def progress_note(lead: LeadView, actor: str, disposition: Disposition, policy: Policy) -> str:
    """The thread hears "Contacted – progressing": feedback given, the lead stays open."""
    final = ""
    if lead.final_due_at is not None:
        final = (
            f"; its final disposition is due by {slack_date(lead.final_due_at, policy.timezone)} "
            f"(SLA: {policy.final_deadline.words} after the claim)"
        )
    return (
        f"📞 <@{actor}> gave feedback: *{one_line(disposition.label, 100)}*. The lead stays "
        f"open with its owner{final}."
    )


def channel_reminder(
    lead: LeadView, window: escalation.Window, policy: Policy, now: datetime
) -> str:
    """A thread reply on the lead's post: still unclaimed (never @here: one person is named)."""
    who = f"<@{lead.suggested_owner}>, " if lead.suggested_owner else ""
    state = escalation.time_words(window, now, escalation.calendar_of(window.ladder, lead, policy))
    return (
        f"⏰ {who}this lead is still waiting for a claim: {window.what} {state} "
        f"({slack_date(window.due, policy.timezone)}; {clock_words(lead, window, policy)})."
    )


def owner_reminder(lead: LeadView, window: escalation.Window, policy: Policy, now: datetime) -> str:
    """A DM to the owner (or the suggested owner)."""
    state = escalation.time_words(window, now, escalation.calendar_of(window.ladder, lead, policy))
    return (
        f"⏰ Reminder: {_lead_line(lead)} in {_where(lead)}: {window.what} {state} "
        f"({slack_date(window.due, policy.timezone)}; {clock_words(lead, window, policy)}). "
        f"`/lead {one_line(lead.external_id, 255)}` shows its timeline."
    )


def touch_reminder(lead: LeadView, touch: int, due: datetime, policy: Policy) -> str:
    """A thread reply on the lead's post: its owner's next touch of the cadence is overdue."""
    standard = policy.follow_up
    what = f"touch {touch} of {standard.min_attempts}"
    if touch > standard.min_attempts:
        what = f"a touch on another channel ({standard.channels} channels needed)"
    return (
        f"⏰ <@{lead.owner}>, {what} was due "
        f"{slack_date(due, policy.timezone)} (the SLA asks for {standard.min_attempts} attempts "
        f"within {standard.within.words}). Log it with the buttons above when you make it."
    )


MAX_MENU_OPTIONS = 100  # a static select's options (Slack's Block Kit reference)


def manager_alert(
    lead: LeadView,
    window: escalation.Window,
    policy: Policy,
    now: datetime,
    names: Mapping[str, str] | None = None,
) -> Message:
    """The post in the escalations channel, with Reassign (the pool, by name: an option's
    plain text cannot show a mention) and Snooze 1h; neither when the SLA names no managers
    (only they may use them: the alert is words alone)."""
    known = names or {}
    managers = " ".join(f"<@{user}>" for user in policy.managers)
    owner = f"owner <@{lead.owner}>" if lead.owner else "nobody has claimed it"
    state = escalation.time_words(window, now, escalation.calendar_of(window.ladder, lead, policy))
    text = (
        f"🚨 {managers} {_lead_line(lead)} in {_where(lead)}: {window.what} {state} "
        f"({clock_words(lead, window, policy)}); {owner}."
    ).strip()
    menu = reassign_menu(lead, policy, known, ActionId.REASSIGN)
    elements = [menu] if menu else []
    if anyone_may(Action.SNOOZE, policy):
        elements.append(button("Snooze 1h", ActionId.SNOOZE.value, str(lead.id)))
    blocks = [section(text)]
    if elements:  # an actions block holds at least one element (Block Kit)
        blocks.append(actions(elements, block_id=f"{ActionId.REASSIGN.value}_{lead.id}"))
    return Message(text=text, blocks=blocks)


def reassign_menu(
    lead: LeadView, policy: Policy, names: Mapping[str, str], action: ActionId
) -> dict[str, Any] | None:
    """A manager's "Reassign to…" picker of the lead's pool, but for the rep who has it (the
    pool by name: an option's plain text cannot show a mention); None for a pool of one, or
    when the SLA names no managers (only they reassign: every pick would be refused). Its
    actions block's id must end in `_<lead id>` (a large pool's user picker names no lead)."""
    if not anyone_may(Action.REASSIGN, policy):
        return None
    segment = policy.segment(lead.segment)
    current = lead.owner or lead.suggested_owner  # handing it to them would change nothing
    pool = [rep for rep in (segment.reps if segment else []) if rep != current]
    # A channel message is the same for everyone: the menu says whose it is.
    placeholder = {"type": "plain_text", "text": "Reassign to… (managers)"}
    if len(pool) > MAX_MENU_OPTIONS:
        # A static select holds 100 options (docs.slack.dev/reference/block-kit/block-elements/
        # select-menu-element): a larger pool picks from the workspace's people; the lead rides
        # in the block id, and a pick outside the pool is refused by the use case.
        return {"type": "users_select", "action_id": action.value, "placeholder": placeholder}
    if not pool:
        return None
    options = [
        {"text": {"type": "plain_text", "text": label}, "value": f"{lead.id}:{rep}"}
        for rep, label in zip(pool, _pool_labels(pool, names), strict=True)
    ]
    return {
        "type": "static_select",
        "action_id": action.value,
        "placeholder": placeholder,
        "options": options,
    }


def _pool_labels(pool: list[str], names: Mapping[str, str]) -> list[str]:
    """Each rep's option text: their name (an option's text is plain, at most 75 characters:
    composition-objects/option-object); a name two reps of the pool share carries the member's
    Slack id, so the manager can tell them apart ("Alex (U0REP7)")."""
    shown = [plain(names.get(rep, rep), 75) for rep in pool]
    counts = Counter(label.casefold() for label in shown)
    return [
        label
        if counts[label.casefold()] == 1
        else f"{plain(names.get(rep, rep), 75 - len(rep) - 3)} ({rep})"
        for rep, label in zip(pool, shown, strict=True)
    ]


def reassign_note(
    lead: LeadView, old: str | None, new: str, why: str, policy: Policy, now: datetime
) -> str:
    """The thread note on the lead's post when it changes hands."""
    before = f" from <@{old}>" if old else ""
    return f"🔁 Reassigned to <@{new}>{before} at {team_time(now, policy.timezone)}: {why}."


def away_offer_note(
    lead: LeadView, away: str, rep: str | None, policy: Policy, now: datetime
) -> str:
    """The thread note on the lead's post when its owner is away past a deadline: the lead is
    open again, for the pool to claim."""
    suggested = f" (suggested: <@{rep}>)" if rep else ""
    pool = one_line(readable(lead.segment), 80)
    return (
        f"🌴 Open again at {team_time(now, policy.timezone)}: <@{away}> is away, so this lead is "
        f"back with the {pool} pool{suggested}. Press *Claim* on the post to take it."
    )


def away_offer_alert(lead: LeadView, away: str, policy: Policy, now: datetime) -> str:
    """To the managers, when an away owner's lead is open again and nobody in its pool is
    available, and why, in the turn's words its route reason keeps ("nobody available (all at
    cap)", as its post's why line says): not "everyone is away" when the others are at their
    caps or already had it."""
    why = one_line(str((lead.route_reason or {}).get("why") or "nobody available"), 200)
    return (
        f"🌴 {_lead_line(lead)} in {_where(lead)} is open again at "
        f"{team_time(now, policy.timezone)}: <@{away}> is away and the "
        f"{one_line(readable(lead.segment), 80)} pool has {why}. Claim it or hand it on: "
        f"`/lead {one_line(lead.external_id, 255)}` shows its timeline."
    )


GONE_LISTED = 20  # leads named one by one in the managers' message; the rest are counted


def gone_alert(
    rep: str,
    why: str,
    handed: list[tuple[LeadView, str, bool]],
    left: list[LeadView],
    policy: Policy,
    now: datetime,
) -> str:
    """To the managers, once, when a member Slack deactivated or made a guest (`why`) held
    open leads: those handed on (lead as it was, its new rep, whether to the fallback owner
    because nobody in its pool was available) and those left with them for a manager to hand
    on (feedback given, or no pool to hand them to)."""
    words = escalation.GONE_WORDS.get(why, why)
    lines = [
        f"🚪 <@{rep}> was {words} at {team_time(now, policy.timezone)} with "
        f"{_count(len(handed) + len(left), 'open lead')}."
    ]
    if handed:
        lines.append("Handed on now, by each pool's rotation:")
        for lead, new, fell_back in handed[:GONE_LISTED]:
            note = " (fallback: nobody in its pool available)" if fell_back else ""
            lines.append(f"• {_lead_line(lead)} in {_where(lead)} → <@{new}>{note}")
        lines += _more(len(handed))
    if left:
        lines.append("Left with them for you to hand on (Reassign in `/lead`):")
        for lead in left[:GONE_LISTED]:
            lines.append(
                f"• {_lead_line(lead)} in {_where(lead)}: `/lead {one_line(lead.external_id, 255)}`"
            )
        lines += _more(len(left))
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _more(number: int) -> list[str]:
    return [f"…and {number - GONE_LISTED} more."] if number > GONE_LISTED else []


def away_reminder(
    lead: LeadView, away: str, window: escalation.Window, policy: Policy, now: datetime
) -> str:
    """A thread reply in place of the owner's reminder while they are away: the pool hears."""
    state = escalation.time_words(window, now, escalation.calendar_of(window.ladder, lead, policy))
    return (
        f"⏰ <@{away}> is away: {window.what} {state} "
        f"({slack_date(window.due, policy.timezone)}). If it passes while they're away, the "
        "lead goes back to the pool."
    )


# --- a manager's answer to an alert ---------------------------------------------------------


def reassigned_dm(
    lead: LeadView, by: str, policy: Policy, now: datetime, by_words: str | None = None
) -> str:
    """A DM to the rep a manager handed the lead to (`lead` as it is after the change);
    `by_words` names who did it when it was not a person (the CRM)."""
    ask = "it is yours now" if lead.owner else "claim it there"
    running = escalation.windows(lead, policy)
    clock = ""
    if running:
        window = min(running, key=lambda item: item.due)
        state = escalation.time_words(
            window, now, escalation.calendar_of(window.ladder, lead, policy)
        )
        clock = f" Its {window.what} is {state} ({slack_date(window.due, policy.timezone)})."
    who = by_words or f"<@{by}>"
    return (
        f"🔁 {who} handed you {_lead_line(lead)} in {_where(lead)}: {ask}.{clock} "
        f"`/lead {one_line(lead.external_id, 255)}` shows its timeline."
    )


def reassigned_away_dm(lead: LeadView, new: str, by: str, by_words: str | None = None) -> str:
    """A DM to the rep a manager took the lead from (`lead` as it was before the change);
    `by_words` names who did it when it was not a person (the CRM)."""
    had = "your lead" if lead.owner else "the lead suggested to you"
    who = by_words or f"<@{by}>"
    return (
        f"🔁 {who} reassigned {had} {_lead_line(lead)} in {_where(lead)} to <@{new}>: it is "
        f"off your list, nothing more to do on it. `/lead {one_line(lead.external_id, 255)}` "
        "shows its timeline."
    )


def reassigned_alert(
    lead: LeadView,
    new: str,
    by: str,
    policy: Policy,
    now: datetime,
    by_words: str | None = None,
) -> str:
    """A manager alert once a manager has reassigned the lead (`lead` as it was), in the
    words of the SLA's own reassignment; `by_words` names who did it when it was not a person
    (the CRM)."""
    old = lead.owner or lead.suggested_owner
    before = f" from <@{old}>" if old and is_user_id(old) else ""
    who = by_words or f"<@{by}>"
    return _settled(f"🔁 Reassigned to <@{new}>{before} by {who}", lead, policy, now)


def _settled(
    what: str, lead: LeadView, policy: Policy, now: datetime, before: str = "", after: str = ""
) -> str:
    """A managers' alert replaced in place once settled: what happened, by whom, at what time,
    to which lead ("✅ Claimed by @maya at Mon 14:00 AEDT: *Priya* (Northwind) in #ent.")."""
    return (
        f"{what} at {team_time(now, policy.timezone)}: {before}{_lead_line(lead)} in "
        f"{_where(lead)}{after}."
    )


def claimed_alert(lead: LeadView, by: str, policy: Policy, now: datetime) -> str:
    """A manager alert once a rep (or a manager) has claimed the lead; a claim of a lead
    suggested to someone else (or to nobody) names them, as the claim's event does (its
    `from`): the first touch's miss stays theirs (docs/reports.md "By rep")."""
    taken = ""
    if lead.suggested_owner != by:
        held = lead.suggested_owner
        taken = f" (suggested to {person(held, 40) if held is not None else 'nobody'})"
    return _settled(f"✅ Claimed by <@{by}>{taken}", lead, policy, now)


def closed_alert(
    lead: LeadView, by: str, disposition: Disposition, policy: Policy, now: datetime
) -> str:
    """A manager alert once the lead is closed with a disposition."""
    return _settled(
        f"✅ Closed as {one_line(disposition.label, 100)} by <@{by}>", lead, policy, now
    )


def feedback_alert(
    lead: LeadView, by: str, disposition: Disposition, policy: Policy, now: datetime
) -> str:
    """A manager alert about missing feedback once the rep gave it and the lead stays open:
    "Contacted – progressing", or a question to marketing (its clocks wait for the answer)."""
    if disposition.outcome == "more_info":
        after = "waits for marketing's answer to the rep's question (its clocks paused)"
    else:
        after = "stays open with its owner"
    label = one_line(disposition.label, 100)
    return _settled(f"💬 Feedback given by <@{by}>", lead, policy, now, f"{label}. ", f" {after}")


def touched_alert(lead: LeadView, by: str, kind: str, policy: Policy, now: datetime) -> str:
    """A manager alert about a missing first touch once one is made (`kind`: the attempt's
    channel in words); `by` a user id, or the CRM's name for whoever logged it there."""
    who = f"<@{by}>" if is_user_id(by) else "the CRM"
    return _settled(f"📞 First touch ({one_line(kind, 40)}) by {who}", lead, policy, now)


def sla_reassigned_alert(
    lead: LeadView, old: str | None, new: str, why: str, policy: Policy, now: datetime
) -> str:
    """A manager alert once the SLA itself has reassigned the lead (`lead` as it was)."""
    before = f" from <@{old}>" if old else ""
    return _settled(
        f"🔁 Reassigned to <@{new}>{before} by the SLA", lead, policy, now, "", f", {why}"
    )


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


def stale_alert(lead: LeadView, settled: str) -> str:
    """A manager's private answer to a press on an alert that was settled already (`settled`:
    what replaced it, as sent): nothing was changed, and where the lead can still be acted on."""
    return (
        f"Nothing was changed: this alert was settled already. {settled} "
        f"`/lead {one_line(lead.external_id, 255)}` shows where the lead stands now, with its "
        "Reassign menu if it still needs one."
    )


def settled_alert(text: str) -> Message:
    """A manager alert replaced by what was done about it (its menu and buttons gone). A text
    past a section's 3,000 characters (block-kit/blocks/section-block) goes in as many
    sections as its lines need, never cut: marketing's answered question holds a question of
    1,000 characters and an answer of 2,000 (bot/domain/info.py)."""
    if len(text) <= SECTION_LIMIT:
        return Message(text=text, blocks=[section(text)])
    parts: list[str] = []
    for line in text.split("\n"):
        if parts and len(parts[-1]) + 1 + len(line) <= SECTION_LIMIT:
            parts[-1] += "\n" + line
        else:
            parts.append(line)
    return Message(text=text, blocks=[section(part) for part in parts if part][:MAX_BLOCKS])
