"""`/sla`: the whole agreement on one page, a pure function of the SLA file."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.domain.escalation import LADDER_WORDS
from bot.domain.policy import LADDERS, Policy, policy_warnings
from bot.slack.blocks import (
    CONTEXT_LIMIT,
    MAX_BLOCKS,
    MAX_CONTEXT_ELEMENTS,
    SECTION_LIMIT,
    Message,
    context,
    section,
)
from bot.slack.kpi_words import KPI_WORDS, target_words
from bot.slack.lead_views import ACTION_WORDS
from bot.slack.text import escape, one_line, readable


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
    segments = _groups(SEGMENTS_TITLE, _segment_lines(policy))
    dispositions = _groups(DISPOSITIONS_TITLE, _disposition_lines(policy))
    managers = -(-len(_manager_texts(policy.managers)) // MAX_CONTEXT_ELEMENTS)
    rooms = _shares([len(segments), len(dispositions), managers], MAX_BLOCKS - OTHER_BLOCKS)
    blocks = [
        section(f"📜 *{one_line(policy.name, 200)}* (version `{policy.version}`)"),
        section(
            f"*Business time*: {days} {hours.start}–{hours.end} "
            f"{policy.timezone}, holidays {one_line(holidays, 100)}{clock}{_warnings(policy)}"
        ),
        section(
            f"*MQL*: score ≥ {policy.mql.threshold}, with these fields filled in: {required}"
            f"{_signals(policy)}"
        ),
        *_fitted(segments, rooms[0], _reps_not_shown),
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
        *_fitted(dispositions, rooms[1], _dispositions_not_shown),
        *kpi_sections(policy),
        *manager_blocks(policy.managers, rooms[2]),
    ]
    return Message(text=one_line(f"{policy.name}: the SLA on one page", 3000), blocks=blocks)


def _warnings(policy: Policy) -> str:
    """What `handoff check` warns of in the file's `timezone` (one without the daylight saving
    its place has), a line each in the same words; none: nothing."""
    lines = [line for line in policy_warnings(policy) if line.startswith("timezone")]
    return "".join(f"\n⚠️ {escape(line)}" for line in lines)


SEGMENTS_TITLE = "*Segments* (first match wins)"
DISPOSITIONS_TITLE = "*Dispositions*"
# The summary's blocks but the segments', the dispositions' and the managers': 6 sections, 2 of
# KPIs. Those three share the rest of a message's 50 blocks.
OTHER_BLOCKS = 8
NOT_SHOWN = f"not shown (Slack shows {MAX_BLOCKS} blocks in a message at most)"

# A line of a section, and what it shows (a segment's or a disposition's index).
Line = tuple[int, str]


def _shares(needs: list[int], room: int) -> list[int]:
    """`room` blocks shared among parts needing `needs` blocks: a block each in turn, so a part
    too large for its share leaves every other part at least one."""
    given = [0] * len(needs)
    while room > 0 and any(have < need for have, need in zip(given, needs, strict=True)):
        for index, need in enumerate(needs):
            if room > 0 and given[index] < need:
                given[index] += 1
                room -= 1
    return given


def _wrapped(
    index: int, first: str, more: str, items: list[str], separator: str, end: str = ""
) -> list[Line]:
    """`first`, then `items` joined by `separator`, on as many lines as a section's width takes:
    the lines after the first start with `more`, and each item is whole (a mention or an entity
    cut in half shows as is). `end` closes the first line."""
    width = SECTION_LIMIT - len(SEGMENTS_TITLE) - 1  # the longer title
    lines: list[Line] = []
    chunk: list[str] = []
    prefix, closing = first, end
    size = len(prefix) + len(closing)
    for item in items:
        if chunk and size + len(separator) + len(item) > width:
            lines.append((index, prefix + separator.join(chunk) + closing))
            prefix, closing, chunk = more, "", []
            size = len(prefix)
        size += (len(separator) if chunk else 0) + len(item)
        chunk.append(item)
    lines.append((index, (prefix + separator.join(chunk)).rstrip() + closing))
    return lines


def _segment_lines(policy: Policy) -> list[Line]:
    """A line per segment with its channel and reps; a pool too large for one section goes on
    over further lines (`• *enterprise*, more reps: …`), each mention whole."""
    lines = []
    for index, segment in enumerate(policy.segments):
        name = one_line(segment.name, 40)
        first = f"• *{name}* → <#{segment.channel}> · reps "
        mentions = [f"<@{rep}>" for rep in segment.reps]
        lines += _wrapped(index, first, f"• *{name}*, more reps: ", mentions, " ")
    return lines


def _disposition_lines(policy: Policy) -> list[Line]:
    """A line per disposition with what it does and every reason to choose from; a list too
    long for one section goes on over further lines (`• *Not a fit*, more reasons: …`), each
    reason whole (at most 75 characters, so at most 375 escaped)."""
    lines = []
    for index, item in enumerate(policy.dispositions):
        label = one_line(item.label, 40)
        head = f"• *{label}* → {OUTCOME_WORDS.get(item.outcome, item.outcome)}"
        if not item.reason_required:
            lines.append((index, head))
            continue
        reasons = [one_line(reason, 400) for reason in item.reasons]
        more = f"• *{label}*, more reasons: "
        lines += _wrapped(index, f"{head} (reason: ", more, reasons, ", ", ")")
    return lines


def _groups(title: str, lines: list[Line]) -> list[list[Line]]:
    """`lines` under `title`, grouped so that each group is a section text of at most 3,000
    characters (docs.slack.dev/reference/block-kit/blocks/section-block): cut only between
    lines. A section clipped there lost the lines after the cut behind an ellipsis."""
    groups: list[list[Line]] = [[(-1, title)]]
    size = len(title)
    for line in lines:
        if size + 1 + len(line[1]) > SECTION_LIMIT:
            groups.append([])
            size = -1  # no line break before a section's first line
        groups[-1].append(line)
        size += 1 + len(line[1])
    return groups


def _fitted(
    groups: list[list[Line]], room: int, unshown: Callable[[list[Line]], str]
) -> list[dict[str, object]]:
    """A section per group, in `room` blocks (a message holds 50): past them, the last says in
    words (`unshown`) what the groups left out hold."""
    if len(groups) <= room:
        return [section("\n".join(text for _, text in group)) for group in groups]
    left_out = [line for group in groups[room - 1 :] for line in group]
    shown = [section("\n".join(text for _, text in group)) for group in groups[: room - 1]]
    return [*shown, context(unshown(left_out))]


def _reps_not_shown(lines: list[Line]) -> str:
    reps = sum(text.count("<@") for _, text in lines)
    return (
        f"{reps} more reps {NOT_SHOWN}: `/handoff routing &lt;segment&gt;` shows a segment's "
        "whole pool."
    )


def _dispositions_not_shown(lines: list[Line]) -> str:
    count = len({index for index, _ in lines if index >= 0})
    return (
        f"{count} disposition{'' if count == 1 else 's'} not shown in full (Slack shows "
        f"{MAX_BLOCKS} blocks in a message at most): `handoff check` lists them all."
    )


def _manager_texts(managers: Sequence[str]) -> list[str]:
    """`Managers: <@U…> …` in context elements of at most 2,000 characters each (docs.slack.dev/
    reference/block-kit/blocks/context-block), each mention whole."""
    texts = ["Managers:"]
    for manager in managers:
        mention = f" <@{manager}>"
        if len(texts[-1]) + len(mention) > CONTEXT_LIMIT:
            texts.append("")
        texts[-1] = (texts[-1] + mention).lstrip()
    return texts if managers else ["Managers: none"]


def manager_blocks(managers: Sequence[str], room: int) -> list[dict[str, object]]:
    """Every manager, in context blocks of up to 10 elements, within `room` blocks; past them,
    the managers left out are counted. One line clipped at 2,000 characters lost the rest."""
    texts = _manager_texts(managers)
    if len(texts) > room * MAX_CONTEXT_ELEMENTS:
        texts = texts[: room * MAX_CONTEXT_ELEMENTS - 1]
        unshown = len(managers) - sum(text.count("<@") for text in texts)
        texts.append(f"{unshown} more managers {NOT_SHOWN}: `handoff check` lists them all.")
    step = MAX_CONTEXT_ELEMENTS
    return [context(*texts[start : start + step]) for start in range(0, len(texts), step)]


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
