"""`/sla`: the whole agreement on one page, a pure function of the SLA file."""

from __future__ import annotations

from bot.domain.escalation import LADDER_WORDS
from bot.domain.policy import LADDERS, Policy
from bot.slack.blocks import MAX_BLOCKS, SECTION_LIMIT, Message, context, section
from bot.slack.kpi_words import KPI_WORDS, target_words
from bot.slack.lead_views import ACTION_WORDS
from bot.slack.text import one_line, readable


def _final(policy: Policy) -> str:
    if policy.final_disposition_deadline is None:
        return f"{policy.final_deadline.words} of the claim (the cadence's end)"
    return f"{policy.final_deadline.words} of the claim"


def sla_summary(policy: Policy) -> Message:
    """`/sla`: the whole agreement on one page."""
    hours = policy.business_hours
    holidays = ", ".join(hours.regions) or "none"
    tiers = "\n".join(
        f"• *{one_line(t.name, 40)}*"
        + (f" (score ≥ {t.when.score_min})" if t.when and t.when.score_min is not None else "")
        + f": first touch within {t.first_touch.words}"
        + (f", claim within {t.claim.words}" if t.claim else "")
        for t in policy.tiers
    )
    dispositions = "\n".join(
        f"• *{one_line(d.label, 40)}* → {OUTCOME_WORDS.get(d.outcome, d.outcome)}"
        + (f" (reason: {one_line(', '.join(d.reasons), 300)})" if d.reason_required else "")
        for d in policy.dispositions
    )
    ladders = "\n".join(
        f"• {LADDER_WORDS.get(name, readable(name))} overdue: {_ladder(policy, name)}"
        for name in LADDERS
    )
    clock = (
        " · a claimed lead's clocks run on its owner's hours in their own time zone"
        if policy.clock == "owner"
        else ""
    )
    required = one_line(", ".join(f.replace(".", " ") for f in policy.mql.required_fields), 300)
    days = ", ".join(day.capitalize() for day in hours.days)
    blocks = [
        section(f"📜 *{one_line(policy.name, 200)}* (version `{policy.version}`)"),
        section(
            f"*Business time*: {days} {hours.start}–{hours.end} "
            f"{policy.timezone}, holidays {one_line(holidays, 100)}{clock}"
        ),
        section(
            f"*MQL*: score ≥ {policy.mql.threshold}, with these fields filled in: {required}"
            f"{_signals(policy)}"
        ),
        *segment_sections(policy, MAX_BLOCKS - OTHER_BLOCKS),
        section(f"*Speed to lead*\n{tiers}"),
        section(
            f"*Follow-up*: {policy.follow_up.min_attempts} attempts within "
            f"{policy.follow_up.within.words} of the claim{_cadence(policy)} · *first feedback* "
            f"within {policy.disposition_deadline.words} of the claim (any disposition, "
            f"“progressing” too) · *final disposition* within {_final(policy)} · recycled "
            f"leads return after {policy.recycle_after.words}"
            f" · nurtured leads are scored again after {policy.nurture_after.words}"
        ),
        section(
            "*Escalation* (at a share of each clock's window, in that clock: calendar time, "
            f"or business time where the SLA says so)\n{ladders}"
        ),
        section(f"*Dispositions*\n{dispositions}"),
        *kpi_sections(policy),
        context(f"Managers: {' '.join(f'<@{m}>' for m in policy.managers) or 'none'}"),
    ]
    return Message(text=one_line(f"{policy.name}: the SLA on one page", 3000), blocks=blocks)


SEGMENTS_TITLE = "*Segments* (first match wins)"
OTHER_BLOCKS = 10  # the summary's blocks but the segments': 7 sections, 2 of KPIs, a context


def _segment_lines(policy: Policy) -> list[str]:
    """A line per segment with its channel and reps; a pool too large for one section goes on
    over further lines (`• *enterprise*, more reps: …`), each mention whole."""
    width = SECTION_LIMIT - len(SEGMENTS_TITLE) - 1
    lines = []
    for segment in policy.segments:
        name = one_line(segment.name, 40)
        line = f"• *{name}* → <#{segment.channel}> · reps"
        for rep in segment.reps:
            mention = f" <@{rep}>"
            if len(line) + len(mention) > width:
                lines.append(line)
                line = f"• *{name}*, more reps:"
            line += mention
        lines.append(line)
    return lines


def segment_sections(policy: Policy, room: int) -> list[dict[str, object]]:
    """Every segment and every rep of its pool, in as many sections as they take: a section's
    text is at most 3,000 characters (docs.slack.dev/reference/block-kit/blocks/section-block),
    and one clipped there lost the reps and the segments after it. Cut only between lines; past
    `room` blocks (a message holds 50), the reps left out are counted."""
    groups: list[list[str]] = [[SEGMENTS_TITLE]]
    size = len(SEGMENTS_TITLE)
    for line in _segment_lines(policy):
        if size + 1 + len(line) > SECTION_LIMIT:
            groups.append([])
            size = -1  # no line break before a section's first line
        groups[-1].append(line)
        size += 1 + len(line)
    if len(groups) <= room:
        return [section("\n".join(group)) for group in groups]
    unshown = sum(line.count("<@") for group in groups[room - 1 :] for line in group)
    more = context(
        f"{unshown} more reps not shown (Slack shows {MAX_BLOCKS} blocks in a message at most): "
        "`/handoff routing &lt;segment&gt;` shows a segment's whole pool."
    )
    return [*(section("\n".join(group)) for group in groups[: room - 1]), more]


def _signals(policy: Policy) -> str:
    """The MQL definition's signals, a line each (the file's words, escaped); none: the
    built-in definition."""
    mql = policy.mql
    if not mql.has_signals:
        return " (built-in scoring: title, company size, engagement)"
    lines = [f"• fit: {one_line(item.describe(), 200)}" for item in mql.fit]
    lines += [f"• intent: {one_line(item.describe(), 200)}" for item in mql.intent]
    return "\n" + "\n".join(lines)


def _cadence(policy: Policy) -> str:
    """` on 2+ channels, a touch every 2d8h after the latest attempt (every attempt counts)`
    (bot/domain/cadence.py)."""
    standard = policy.follow_up
    variety = f" on {standard.channels}+ channels" if standard.channels else ""
    every = standard.interval(policy.calendar.minutes_per_day)
    return f"{variety}, a touch every {every.words} after the latest attempt (every attempt counts)"


def _ladder(policy: Policy, name: str) -> str:
    """`at 50% a reminder in the channel → at 100% managers alerted → at 150% reassigned`."""
    steps = policy.escalation.ladder(name)
    return " → ".join(f"at {s.percent} {ACTION_WORDS.get(s.do, s.do)}" for s in steps) or "off"


# What each outcome does to the lead, for people (the file says `sql`, `reject`, …).
OUTCOME_WORDS = {
    "sql": "Qualified (SQL)",
    "reject": "rejected: marketing hears the reason",
    "nurture": "back to marketing's nurture",
    "recycle": "recycled: back in the queue later as a new cycle",
    "progressing": "feedback: the lead stays open",
    "more_info": "a question for marketing (the lead's clocks pause)",
}


def kpi_sections(policy: Policy) -> list[dict[str, object]]:
    """Every KPI with its plain definition and its target (`targets.<key>` in sla.yaml), in
    two sections so each stays within Slack's 3,000 characters."""
    lines = [
        f"• *{item.name}*: {item.definition} · {target_words(item.target_key, policy)}"
        for item in KPI_WORDS
    ]
    half = (len(lines) + 1) // 2
    return [
        section("*KPIs and targets* (`/sla-report` measures them)\n" + "\n".join(lines[:half])),
        section("\n".join(lines[half:])),
    ]
