"""The SLA report as plain text, JSON and CSV, for `handoff report` and scripts."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from bot.domain.durations import words
from bot.domain.escalation import LADDER_WORDS
from bot.domain.report import Kpi, Report, leads_count
from bot.slack.lead_views import ACTION_WORDS
from bot.slack.report_views import conversion, kpi_target, kpi_value, marketing_table
from bot.slack.text import readable

RAG_WORDS = {"green": "GREEN", "yellow": "YELLOW", "red": "RED"}


def _value(kpi: Kpi) -> str:
    """As in Slack, with a decimal on shares and an ASCII dash for nothing measured."""
    return kpi_value(kpi, share_places=1, missing="-")


def _kpi_dict(kpi: Kpi) -> dict[str, Any]:
    return {
        "key": kpi.key,
        "label": kpi.label,
        "unit": kpi.unit,
        "value": kpi.value,
        "target": kpi.target,
        "rag": kpi.rag,
        "previous": kpi.previous,
        "change": kpi.change,
        "detail": kpi.detail,
    }


def as_dict(report: Report) -> dict[str, Any]:
    def slices(items: list[Any]) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "received": s.received, "kpis": [_kpi_dict(k) for k in s.kpis]}
            for s in items
        ]

    funnel = report.conversion
    return {
        "period": report.period.label,
        "start": report.period.start.isoformat(),
        "end": report.period.end.isoformat(),
        "previous_period": report.previous_period.label,
        "as_of": report.as_of.isoformat(),
        "in_progress": report.in_progress,
        "segment": report.segment,
        "received": report.received,
        "headline": [_kpi_dict(k) for k in report.headline],
        "mql_volume": [_kpi_dict(k) for k in report.volume],
        "conversion": {
            "mql": funnel.mql,
            "posted": funnel.posted,
            "sal": funnel.sal,  # accepted: claimed and not rejected
            "sql": funnel.sql,
            "mql_to_sal": funnel.mql_to_sal,
            "sal_to_sql": funnel.sal_to_sql,
            "mql_to_sql": funnel.mql_to_sql,
        },
        "by_segment": slices(report.by_segment),
        "by_source": slices(report.by_source),
        "by_campaign": slices(report.by_campaign),
        "by_rep": slices(report.by_rep),
        "dispositions": [
            {"code": code, "label": label, "leads": n} for code, label, n in report.dispositions
        ],
        "rejection_reasons": [
            {"code": r.code, "reason": r.reason, "problem": r.problem, "leads": r.leads}
            for r in report.reasons
        ],
        "rejections_by_problem": report.problems,
        "escalations": [
            {"ladder": ladder, "action": action, "fired": n}
            for ladder, action, n in report.escalations
        ],
        "daily_first_touch_compliance": [
            {"day": day.isoformat(), "compliance": value} for day, value in report.daily_compliance
        ],
    }


def as_json(report: Report) -> str:
    return json.dumps(as_dict(report), indent=2, ensure_ascii=False)


def as_csv(report: Report) -> str:
    """One row per KPI: period, section, name, kpi, value, target, rag, previous, detail, unit
    (share, minutes, count, days, amount or score: what the numbers are)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["period", "section", "name", "kpi", "value", "target", "rag", "previous", "detail", "unit"]
    )
    label = report.period.label

    def rows(section: str, name: str, kpis: list[Kpi]) -> None:
        for kpi in kpis:
            writer.writerow(
                [
                    label,
                    section,
                    _text(name),
                    kpi.key,
                    _csv(kpi.value),
                    _csv(kpi.target),
                    kpi.rag or "",
                    _csv(kpi.previous),
                    kpi.detail,
                    kpi.unit,
                ]
            )

    rows("headline", report.segment or "all", report.headline)
    rows("mql_volume", "", report.volume)
    for section, slices in (
        ("segment", report.by_segment),
        ("source", report.by_source),
        ("campaign", report.by_campaign),
        ("rep", report.by_rep),
    ):
        for piece in slices:
            rows(section, piece.name, piece.kpis)
    for reason in report.reasons:
        writer.writerow(
            [
                label,
                "rejection_reason",
                _text(reason.reason),
                reason.problem or "untagged",
                reason.leads,
                "",
                "",
                "",
                reason.code,
                "count",
            ]
        )
    for ladder, action, n in report.escalations:
        writer.writerow([label, "escalations", ladder, action, n, "", "", "", "", "count"])
    return out.getvalue()


# OWASP, CSV Injection: a cell starting with one of these is a formula in a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _text(value: str) -> str:
    """Text as a spreadsheet shows it, never run as a formula: a source or campaign comes from
    web forms, so one starting with =, +, -, @, a tab or a line break gets a leading `'`."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


def as_text(report: Report, names: Mapping[str, str] | None = None) -> str:
    """The report for a terminal; `names`: Slack display names by user id, so a rep reads
    `@maya (U0REP1)` where Slack knows them (JSON and CSV keep the ids alone)."""
    period = report.period
    scope = f", segment {report.segment}" if report.segment else ""
    lines = [
        f"SLA report {period.words()}{scope}"
        + (f" ({report.period.noun} in progress)" if report.in_progress else "")
    ]
    if report.empty:
        lines.append(f"No leads this {period.noun}.")
    lines.append("")
    width = max(len(k.label) for k in report.headline)
    for kpi in report.headline:
        colour = f" {RAG_WORDS[kpi.rag]}" if kpi.rag else ""
        target = f" ({kpi_target(kpi)})" if kpi.target is not None else ""
        change = (
            "" if kpi.change is None else f"  vs {report.previous_period.label}: {_change(kpi)}"
        )
        detail = f"  [{kpi.detail}]" if kpi.detail else ""
        lines.append(f"  {kpi.label:<{width}}  {_value(kpi):>8}{colour}{target}{detail}{change}")
    lines.append("")
    lines.append(
        f"MQLs vs {period.adjective} target: "
        + ", ".join(
            f"{k.label} {_value(k)}"
            + (f"/{k.target:.0f}" if k.target is not None else "")
            + (f" {RAG_WORDS[k.rag]}" if k.rag else "")
            for k in report.volume
        )
    )
    lines.append("Conversion: " + conversion(report, arrow="->", missing="-"))
    lines.append("")
    shown = len(report.by_source) + len(report.by_campaign)
    lines.extend(marketing_table(report, lines=shown, emphasis=False).splitlines())
    lines.append("")
    for title, slices in (
        ("By segment", report.by_segment),
        ("By source", report.by_source),
        ("By campaign", report.by_campaign),
        ("By rep", report.by_rep),
    ):
        lines.append(f"{title}:")
        for piece in slices:
            parts = [f"{k.label} {_value(k)}" for k in piece.kpis if k.value is not None]
            if title == "By campaign":  # `source · campaign` (campaign_of): the source as
                source, _, campaign = piece.name.partition(" · ")  # the Campaign table names it
                name = f"{readable(source)} · {campaign}"
            else:
                name = readable(piece.name)
            if title == "By rep":
                known = (names or {}).get(piece.name)
                name = f"@{known} ({piece.name})" if known else piece.name
            lines.append(f"  {name}: {leads_count(piece.received)}; " + "; ".join(parts))
    if report.dispositions:
        lines.append(
            "Dispositions: " + ", ".join(f"{lab} {n}" for _, lab, n in report.dispositions)
        )
    for reason in report.reasons:
        lines.append(f"  rejected: {reason.reason} ({reason.problem or 'untagged'}) {reason.leads}")
    if report.escalations:
        lines.append(
            "Escalations fired: "
            + ", ".join(
                f"{LADDER_WORDS.get(ladder, readable(ladder))} overdue: "
                f"{ACTION_WORDS.get(action, readable(action))} {n}"
                for ladder, action, n in report.escalations
            )
        )
    return "\n".join(lines)


def _change(kpi: Kpi) -> str:
    change = kpi.change or 0.0
    if kpi.unit == "share":
        return f"{change * 100:+.0f} pts"
    if kpi.unit == "minutes":
        return ("+" if change >= 0 else "-") + words(abs(int(change)))
    if kpi.unit in ("days", "score"):
        return f"{change:+.1f}"
    return f"{change:+,.0f}"
