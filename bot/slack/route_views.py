"""Routing in words: the "why this rep" line on every lead, `/handoff routing` for managers,
and a rep's own share in App Home. Pure functions of stored state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.domain.lead import LeadView
from bot.domain.report import leads_count
from bot.domain.rotation import RepLoad, SegmentRotation, Skip, skip_reason
from bot.domain.route_words import Style, why
from bot.slack.away_views import until_words
from bot.slack.blocks import MAX_BLOCKS, SECTION_LIMIT, Message, context, header, section
from bot.slack.text import one_line, person, whole_parts


def _rep(value: Any) -> str:
    return person(str(value), 40) if value else "nobody"


# The words live in the domain (a CRM's `route_reason` field says the same, as plain text):
# here a rep is a live mention and lead text is escaped for mrkdwn.
SLACK_WORDS = Style(rep=person, text=one_line)


def why_line(lead: LeadView) -> str | None:
    """Why the lead's suggested owner was chosen, in one line ("Named account of <@U…>"); a
    lead the SLA took from its rep says so first ("Reassigned by the SLA from <@U…> (claim
    overdue) · Round robin: …"). None for a lead routing never ran for (not an MQL)."""
    return why(lead, SLACK_WORDS)


SHARE_WORDS = (
    "Share: each rep's part of this week's leads by weight, counting only the leads they could "
    "take (not while away or at a cap; with catch-up, time away counts too)."
)


def _rep_line(rotation: SegmentRotation, rep: str, zone: str) -> str:
    rules, load = rotation.rules, rotation.loads.get(rep, RepLoad())
    weight = rules.weight(rep)
    line = f"{_rep(rep)}: {load.week} this week (share {rotation.share(rep):.1f}, weight {weight})"
    line += f", {load.today} today"
    if rules.cap_per_day is not None:
        line += f" of {rules.cap_per_day}"
    line += f", {load.open} open"
    if rules.cap_open is not None:
        line += f" of {rules.cap_open}"
    skipped = skip_reason(rules, rep, load, rotation.away)
    if skipped == Skip.AWAY and rep in rotation.away_until:
        skipped += f" until {until_words(rotation.away_until[rep], zone)}"
    return line + (f" · skipped now: {skipped}" if skipped else "")


def _sections(title: str, lines: Sequence[str]) -> list[list[str]]:
    """The rep `lines` as bullets, grouped so that each group (the first under `title`) is a
    section text of at most Slack's 3,000 characters: cut only between lines, never inside a
    mention (`<@U0` shows as is)."""
    groups: list[list[str]] = [[]]
    size = len(title)
    for line in lines:
        bullet = f"• {line}"
        if size + 1 + len(bullet) > SECTION_LIMIT:
            groups.append([])
            size = -1  # no line break before a section's first bullet
        groups[-1].append(bullet)
        size += 1 + len(bullet)
    return groups


def _segment_key(name: str) -> str:
    """A segment's name as people type it: `Mid market` asks for `mid_market`."""
    return " ".join(name.replace("_", " ").lower().split())


TEXT_LIMIT = 2000  # the notification text, kept short: the blocks show everything


def routing_view(
    rotations: Sequence[SegmentRotation], week: str, zone: str, asked: str = ""
) -> Message:
    """This week's distribution per segment and rep against their share, weights, caps and
    time away (until when, in the team's `zone`), and who the rotation picks next; `asked`: one
    segment's name, or all. Every rep is shown within Slack's limits (3,000 characters a
    section, 50 blocks a message); past them, the answer says how many reps are not, and
    where to see them."""
    wanted = asked.strip()
    if wanted:
        key = _segment_key(wanted)
        chosen = [rotation for rotation in rotations if _segment_key(rotation.name) == key]
        if not chosen:
            listed = [one_line(rotation.name, 40) for rotation in rotations]
            names = whole_parts(listed, ", ", SECTION_LIMIT - 100)  # whole names, in a section
            text = f"No segment is called {one_line(wanted, 40)}. The segments: {names}."
            return Message(text=text, blocks=[section(text)])
        rotations = chosen
    blocks: list[dict[str, Any]] = [header(f"Routing, week of {week}")]
    room = MAX_BLOCKS - 2  # kept for the words on the share and a line on reps not shown
    summary: list[str] = []
    unshown, cut = 0, []
    for rotation in rotations:
        reps = list(rotation.rules.reps)
        total = sum(rotation.loads.get(rep, RepLoad()).week for rep in reps)
        picks = ", ".join(_rep(rep) for rep in rotation.next_picks) or "nobody (all skipped)"
        title = f"*{one_line(rotation.name, 40)}*: {leads_count(total)} by round robin this week"
        groups = _sections(title, [_rep_line(rotation, rep, zone) for rep in reps])
        fits = groups[: max(room - len(blocks) - 1, 0)]  # and a block for its next picks
        if len(fits) < len(groups):
            unshown += sum(len(group) for group in groups[len(fits) :])
            cut.append(one_line(rotation.name, 40))
        if fits:
            fits[0] = [title, *fits[0]]
            blocks.extend(section("\n".join(group)) for group in fits)
            blocks.append(context(f"Next picks: {picks}"))
        summary.append(f"{one_line(rotation.name, 40)}: {total} this week; next {picks}")
    blocks.append(context(SHARE_WORDS))
    if unshown:
        where = "each rep sees their own share in App Home"
        if not wanted:
            where = "`/handoff routing &lt;segment&gt;` shows one segment"
        reps_word = "1 rep" if unshown == 1 else f"{unshown} reps"
        blocks.append(
            context(
                f"{reps_word} of {', '.join(cut)} not shown (Slack shows {MAX_BLOCKS} blocks "
                f"in a message at most): {where}."
            )
        )
    # The notification text: whole segments, escaped once (Slack's "Escaping text", api.slack.com/
    # reference/surfaces/formatting#escaping); a cut at a fixed length split a mention or an
    # `&amp;` in half.
    text = "Routing: " + whole_parts(summary, "; ", TEXT_LIMIT - len("Routing: "))
    return Message(text=text, blocks=blocks)


def own_share(rotations: Sequence[SegmentRotation], rep: str) -> str | None:
    """A rep's own share for App Home ("enterprise: 3 of 12 this week, weight 2"; the weight
    only in a pool whose reps are weighted)."""
    parts = []
    for rotation in rotations:
        rules = rotation.rules
        if rep not in rules.reps:
            continue
        total = sum(load.week for load in rotation.loads.values())
        mine = rotation.loads.get(rep, RepLoad()).week
        weighted = any(rules.weight(other) != 1 for other in rules.reps)
        weight = f", weight {rules.weight(rep)}" if weighted else ""
        parts.append(f"{one_line(rotation.name, 40)}: {mine} of {total} this week{weight}")
    return "Your round-robin share: " + "; ".join(parts) if parts else None
