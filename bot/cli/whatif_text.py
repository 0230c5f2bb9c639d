"""`handoff whatif`: the replay (bot/domain/whatif.py) as a compact text table and as JSON."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC
from typing import Any

from bot.domain.whatif import SHARES, Figures, Flip, MqlReplay, Replay, Row, Tally, rows

NOTE = (
    "A replay of facts: the same leads with the times they were really claimed, first touched "
    "and dispositioned; only the tiers, deadlines and escalation ladders change. It does not "
    "simulate how people would have behaved differently under the proposed SLA. Both columns "
    "are replayed the same way (today's from the current SLA file); each lead's current cycle."
)
LABELS = {  # a KPI row's label
    "mqls": "MQLs",
    "first_touch": "First-touch compliance",
    "claim": "Claim compliance",
    "feedback": "Feedback completion",
    "escalations": "Escalations",
    "reassignments": "Reassignments",
}
WEEK_HEADINGS = {  # a share's heading in the week table
    "first_touch": "first touch",
    "claim": "claim",
    "feedback": "feedback",
}


def label(row: Row) -> str:
    """The row's label: a ladder's step indented under Escalations, a tier by its name."""
    kind, _, rest = row.key.partition(".")
    if kind == "escalations" and rest:
        ladder, _, action = rest.partition(".")
        return f"  {ladder} · {action}"
    if kind == "tiers":
        return f"Tier {rest}"
    return LABELS[row.key]


def _shown(value: float | None, unit: str = "share") -> str:
    if value is None:
        return "–"
    return f"{value:.0%}" if unit == "share" else f"{value:.0f}"


def _cell(row: Row, side: int) -> str:
    value = _shown((row.today, row.proposed)[side], row.unit)
    if row.ratios is None:
        return value
    ratio = row.ratios[side]
    return f"{value} ({ratio.met}/{ratio.due})"


def _change(row: Row) -> str:
    change = row.change
    if change is None:
        return "–"
    if row.unit == "share":
        return f"{round(change * 100):+d} pts" if round(change * 100) else "0 pts"
    return f"{change:+.0f}" if change else "0"


MQL_NOTE = (
    "The MQL definition is replayed over every lead received in these weeks, whatever became "
    "of it: each scored with its data and engagement as stored, as of its arrival, under both "
    "files. The clock figures above judge the leads that were MQLs."
)


def _tally(tally: Tally) -> str:
    return f"{tally.mqls} of {tally.leads}"


def _flip_line(flip: Flip) -> str:
    company = f" {flip.company}" if flip.company else ""
    return (
        f"  #{flip.id}{company} ({flip.segment}): score {flip.today} → {flip.proposed}; {flip.why}"
    )


def mql_text(mqls: MqlReplay) -> list[str]:
    """Who would be an MQL under each file: in total, by segment, by source; leads that flip."""
    today, proposed = mqls.total["today"], mqls.total["proposed"]
    lines = [
        f"MQL definition: {today.leads} lead(s) received, scored as of their arrival",
        f"{'':<30}{'today':>18}{'proposed':>18}{'change':>10}",
        f"{'MQLs':<30}{_tally(today):>18}{_tally(proposed):>18}{proposed.mqls - today.mqls:>+10d}",
    ]
    for kind, groups in (("segment", mqls.by_segment), ("source", mqls.by_source)):
        for name in sorted(groups):
            now, new = groups[name]["today"], groups[name]["proposed"]
            heading = f"  {kind} {name}"[:30]
            lines.append(
                f"{heading:<30}{_tally(now):>18}{_tally(new):>18}{new.mqls - now.mqls:>+10d}"
            )
    for kind, words, shown in (
        ("gained", "would become MQLs", mqls.gained),
        ("lost", "would no longer be MQLs", mqls.lost),
    ):
        count = mqls.flipped[kind]
        more = f", {len(shown)} shown" if count > len(shown) else ""
        lines.append(f"Leads that {words}: {count}{more}")
        lines += [_flip_line(flip) for flip in shown]
    if mqls.unreadable:
        lines.append(
            f"{mqls.unreadable} lead(s) left out: their stored data would not pass intake today"
        )
    return lines


def as_text(
    replay: Replay, today_file: str, proposed_file: str, mqls: MqlReplay | None = None
) -> str:
    """A compact table: one row per KPI (today | proposed | change), then one row per week."""
    first, last = replay.weeks[0].label, replay.weeks[-1].label
    at = replay.now.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"What-if replay: {len(replay.weeks)} week(s), {first} – {last} (as of {at})",
        f"today: {today_file} · proposed: {proposed_file}",
        "",
        f"{'':<30}{'today':>18}{'proposed':>18}{'change':>10}",
    ]
    for row in rows(replay.total["today"], replay.total["proposed"]):
        lines.append(f"{label(row):<30}{_cell(row, 0):>18}{_cell(row, 1):>18}{_change(row):>10}")
    heads = [WEEK_HEADINGS[key] for key in SHARES]
    lines += ["", "By week (today → proposed)", _week_line("week", "MQLs", heads)]
    for week in replay.weeks:
        now, new = replay.by_week["today"][week.label], replay.by_week["proposed"][week.label]
        moved = [
            f"{_shown(now.ratio(key).value)} → {_shown(new.ratio(key).value)}" for key in SHARES
        ]
        lines.append(_week_line(week.label, str(now.leads), moved))
    note = NOTE
    if mqls is not None:
        lines += ["", *mql_text(mqls)]
        note = f"{NOTE} {MQL_NOTE}"
    return "\n".join([*lines, "", *textwrap.wrap(note, 96)])


def _week_line(week: str, leads: str, columns: list[str]) -> str:
    return f"{week:<10}{leads:>6}  " + "".join(f"{text:<18}" for text in columns).rstrip()


def _figures_dict(figures: Figures) -> dict[str, Any]:
    ratios = {
        key: {
            "value": figures.ratio(key).value,
            "met": figures.ratio(key).met,
            "due": figures.ratio(key).due,
        }
        for key in SHARES
    }
    return {
        "mqls": figures.leads,
        **ratios,
        "escalations": [
            {"ladder": ladder, "action": action, "fired": n}
            for (ladder, action), n in sorted(figures.escalations.items())
        ],
        "reassignments": figures.reassignments,
        "tiers": dict(sorted(figures.tiers.items())),
    }


def _flip_dict(flip: Flip) -> dict[str, Any]:
    return {
        "id": flip.id,
        "company": flip.company,
        "segment": flip.segment,
        "source": flip.source,
        "score": {"today": flip.today, "proposed": flip.proposed},
        "why": flip.why,
    }


def mql_dict(mqls: MqlReplay) -> dict[str, Any]:
    """The MQL definition's replay for scripts: counts under each file, by segment and source,
    and the leads that flip (id and company only)."""

    def pair(tallies: dict[str, Tally]) -> dict[str, Any]:
        return {name: {"leads": t.leads, "mqls": t.mqls} for name, t in tallies.items()}

    return {
        "note": MQL_NOTE,
        "total": pair(mqls.total),
        "by_segment": {name: pair(mqls.by_segment[name]) for name in sorted(mqls.by_segment)},
        "by_source": {name: pair(mqls.by_source[name]) for name in sorted(mqls.by_source)},
        "gained": {
            "count": mqls.flipped["gained"],
            "examples": [_flip_dict(f) for f in mqls.gained],
        },
        "lost": {"count": mqls.flipped["lost"], "examples": [_flip_dict(f) for f in mqls.lost]},
        "unreadable": mqls.unreadable,
    }


def as_json(
    replay: Replay, today_file: str, proposed_file: str, mqls: MqlReplay | None = None
) -> str:
    """Everything `as_text` shows, for scripts: the KPI rows with changes, totals and each week."""
    files = {"today": today_file, "proposed": proposed_file}
    data = {
        "as_of": replay.now.isoformat(),
        "weeks": [week.label for week in replay.weeks],
        "note": NOTE,
        "sla": {
            name: {"file": files[name], "version": policy.version}
            for name, policy in replay.policies.items()
        },
        "kpis": [
            {
                "key": row.key,
                "label": label(row).strip(),
                "unit": row.unit,
                "today": row.today,
                "proposed": row.proposed,
                "change": row.change,
            }
            for row in rows(replay.total["today"], replay.total["proposed"])
        ],
        "total": {name: _figures_dict(figures) for name, figures in replay.total.items()},
        "by_week": [
            {
                "week": week.label,
                **{name: _figures_dict(replay.by_week[name][week.label]) for name in files},
            }
            for week in replay.weeks
        ],
    }
    if mqls is not None:
        data["mql_definition"] = mql_dict(mqls)
    return json.dumps(data, indent=2)
