"""`handoff whatif`: the replay (bot/domain/whatif.py) as a compact text table and as JSON."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC
from typing import Any

from bot.domain.whatif import SHARES, Figures, Replay, Row, rows

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


def as_text(replay: Replay, today_file: str, proposed_file: str) -> str:
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
    return "\n".join([*lines, "", *textwrap.wrap(NOTE, 96)])


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


def as_json(replay: Replay, today_file: str, proposed_file: str) -> str:
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
    return json.dumps(data, indent=2)
