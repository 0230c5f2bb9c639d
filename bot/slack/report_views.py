"""The SLA report (`/sla-report`, shared to a channel, the weekly digest), marketing's weekly
review of rejections, the compliance alert, and the one way a KPI's value and change are
written (Slack and `handoff report` alike)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.domain.durations import words
from bot.domain.policy import Policy
from bot.domain.report import (
    VELOCITY_LABELS,
    Kpi,
    Period,
    Report,
    Slice,
    leads_count,
    responds_in_calendar_time,
    target_minutes,
)
from bot.slack.blocks import (
    MAX_BLOCKS,
    SECTION_LIMIT,
    Message,
    actions,
    button,
    context,
    field_sections,
    section,
)
from bot.slack.ids import ActionId
from bot.slack.lead_views import ACTION_WORDS, ladder_words
from bot.slack.text import clip, named, one_line, person, readable, slack_date

RAG_ICONS = {"green": "🟢", "yellow": "🟡", "red": "🔴"}
SHORT_LABELS = {
    "first_touch": "First touch",
    "acceptance": "MQL→SAL",
    "sal_to_sql": "SAL→SQL",
    "mql_to_sql": "MQL→SQL",
    "feedback": "Feedback",
    "final": "Final disposition",
    "attempts": "Coverage",
    "completeness": "Data",
    "icp": "ICP",
    "sql_to_sqo": "SQL→SQO",
    "win_rate": "Win rate",
    "recycle_to_sql": "Recycle→SQL",
    "response_mean": "Response",
    "response_median": "Response (median)",
    "speed_median": "Speed",
    "speed_p90": "Speed p90",
    "claim_median": "Claim",
    "velocity_mql_to_sal": "MQL→SAL days",
    "velocity_sal_to_sql": "SAL→SQL days",
    "velocity_sql_to_opportunity": "SQL→opp days",
    "velocity_opportunity_to_won": "opp→won days",
    "pipeline": "Pipeline",
    "won_amount": "Won",
    "quality_fit": "Fit",
    "quality_timing": "Timing",
}
PROBLEM_WORDS = {"routing": "routing", "data": "data", "definition": "MQL definition"}
REPORT_LINES = 8  # segments and reps shown per section (the rest are counted)
REASONS_SHOWN = 5  # rejection reasons listed, most first (the rest are counted)


def _short_label(kpi: Kpi) -> str:
    """`MQL→SAL`, `Speed p90 (hot)`: a KPI's name in a line of several."""
    key, _, tier = kpi.key.partition(".")
    short = SHORT_LABELS.get(key, kpi.label)
    return f"{short} ({one_line(readable(tier), 40)})" if tier else short


def money(value: float, currency: str | None = None) -> str:
    """`AUD 40k`, `AUD 1.25M`, `AUD 950`: an amount in a line of a report."""
    unit = f"{currency} " if currency else ""
    size = abs(value)
    if size >= 1_000_000:
        return f"{unit}{value / 1_000_000:.2f}M".replace(".00M", "M")
    if size >= 10_000:
        return f"{unit}{value / 1000:.0f}k"
    if size >= 1000:
        return f"{unit}{value / 1000:.1f}k".replace(".0k", "k")
    return f"{unit}{value:.0f}"


def kpi_value(
    kpi: Kpi, share_places: int = 0, missing: str = "–", currency: str | None = None
) -> str:
    """`92%`, `1h 20m`, `3.5 days`, `AUD 40k`, `3.7/5`, `12`, or `missing` when there is
    nothing to measure. Shares get `share_places` decimals (`handoff report` prints `91.7%`),
    more where a share under its target would read as the target (179 of 200 is `89.5%`, not
    a yellow `90%` beside "target 90%")."""
    if kpi.unit == "share" and kpi.value is not None:
        return share_text(kpi.value, kpi.target, share_places)
    return _amount(kpi.unit, kpi.value, share_places, missing, currency)


def share_text(value: float, target: float | None = None, places: int = 0) -> str:
    """`92%`; a share under `target` gets up to two more decimals rather than read as it."""
    text = f"{value:.{places}%}"
    for more in (1, 2):
        if target is None or value >= target or text != f"{target:.{places + more - 1}%}":
            break
        text = f"{value:.{places + more}%}"
    return text


def _amount(
    unit: str, value: float | None, share_places: int, missing: str, currency: str | None
) -> str:
    if value is None:
        return missing
    if unit == "share":
        return f"{value:.{share_places}%}"
    if unit == "minutes":
        return words(int(value))
    if unit == "days":  # calendar time: under a day in hours and minutes
        return words(round(value * 24 * 60)) if value < 1 else f"{value:.1f} days"
    if unit == "amount":
        return money(value, currency)
    if unit == "score":
        return f"{value:.1f}/5"
    return f"{value:.0f}"


def kpi_target(kpi: Kpi, currency: str | None = None) -> str:
    """`target 70%`, `target 2h`, `target ≤ 3.0 days`: empty without a target."""
    if kpi.target is None:
        return ""
    at_most = "≤ " if kpi.unit in ("minutes", "days") else ""
    return f"target {at_most}{_amount(kpi.unit, kpi.target, 0, '–', currency)}"


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
    elif kpi.unit in ("days", "score"):
        points = round(change * 10)  # tenths
        amount = f"{abs(change):.1f}" + (" days" if kpi.unit == "days" else "")
    elif kpi.unit == "amount":
        points = round(change)
        amount = money(abs(change))
    else:
        points = round(change)
        amount = str(abs(points))
    return "= same" if points == 0 else f"{'▲' if points > 0 else '▼'} {amount}"


def _kpi_field(kpi: Kpi, currency: str | None = None) -> str:
    icon = f" {RAG_ICONS[kpi.rag]}" if kpi.rag else ""
    target = f" ({kpi_target(kpi, currency)})" if kpi.target is not None else ""
    change = kpi_change(kpi)
    lines = [f"*{kpi.label}*", f"{kpi_value(kpi, currency=currency)}{icon}{target}"]
    lines.append(" · ".join(part for part in (kpi.detail, change) if part))
    return "\n".join(line for line in lines if line)


def _rag_line(kpis: list[Kpi], volume: Sequence[Kpi] = ()) -> str:
    """The KPIs by colour, red first, each named once (their figures are below it)."""
    parts = []
    for colour in ("red", "yellow", "green"):
        names = [_short_label(k) for k in kpis if k.rag == colour]
        if names:
            parts.append(f"{RAG_ICONS[colour]} {', '.join(names)}")
    return " · ".join(parts) or nothing_coloured(kpis, volume)


def nothing_coloured(kpis: list[Kpi], volume: Sequence[Kpi] = ()) -> str:
    """Why no KPI has a colour: no target to colour against, or no figure yet to colour; or,
    when the report's MQL volume is coloured below it (`volume`), that only it is."""
    if any(kpi.rag for kpi in volume):
        return (
            "Only MQL volume is coloured yet: no other figure against the SLA's targets in "
            "this period."
        )
    if any(kpi.target is not None for kpi in kpis):
        return "Nothing to colour yet: no figures against the SLA's targets in this period."
    return "No targets in the SLA file to colour against."


def _slice_line(piece: Slice, name: str) -> str:
    parts = []
    for kpi in piece.kpis:
        if kpi.key == "mql":
            parts.append(f"{kpi_value(kpi)} MQL{'' if kpi.value == 1 else 's'}")
        elif kpi.key in ("first_touch", "acceptance", "feedback") and kpi.value is not None:
            icon = f" {RAG_ICONS[kpi.rag]}" if kpi.rag else ""
            parts.append(f"{SHORT_LABELS[kpi.key]} {kpi_value(kpi)}{icon}")
        elif kpi.key == "speed_median" and kpi.value is not None:
            parts.append(f"speed {kpi_value(kpi)}")
    return f"• {name}: {' · '.join(parts)}"


def _slices_text(title: str, slices: list[Slice], name: Any) -> str:
    shown = sorted(slices, key=_by_mqls)[:REPORT_LINES]
    lines = [_slice_line(piece, name(piece.name)) for piece in shown]
    more = len(slices) - len(shown)
    if more > 0:
        lines.append(f"…and {more} more")
    return f"*{title}*\n" + ("\n".join(lines) or "None.")


def sla_report(
    report: Report,
    policy: Policy,
    shared_by: str | None = None,
    digest: bool = False,
    charts_in_dm: bool = False,
    names: Mapping[str, str] | None = None,
    shareable: bool = True,
) -> Message:
    """`/sla-report`: the period in ten seconds (ephemeral, shared to a channel, or the digest).

    Privately, reps are mentions (Slack shows their names, and nobody is notified); in a
    channel (shared, or the digest) they are named by `names`, so a report pings nobody.
    `shareable`: with *Share to channel* (an ephemeral answer's: its press's response URL posts
    where the command was typed; not a DM's, where it would post in the DM)."""
    in_channel = bool(shared_by) or digest
    known = names or {}
    period = report.period
    scope = f" · {one_line(readable(report.segment), 40)}" if report.segment else ""
    progress = f" ({report.period.noun} in progress)" if report.in_progress else ""
    kind = f"{period.adjective.capitalize()} SLA digest" if digest else "SLA report"
    title = f"📊 *{kind} · {period.words()}*{scope}{progress}"
    headline = {kpi.key: kpi for kpi in report.headline}
    blocks: list[dict[str, Any]] = [section(title)]
    if report.empty:
        blocks.append(section(f"No leads this {period.noun}: every figure below is zero."))
    blocks.append(section(_rag_line(report.headline, report.volume)))
    currency = policy.currency
    shares = [headline["mql"], *(k for k in report.headline if k.unit == "share")]
    blocks.extend(field_sections(_kpi_field(k, currency) for k in shares))
    mixed = _mixed_target(headline["response_mean"], policy)
    blocks.append(section(_timing_text(report.headline, _response_clock(policy), mixed)))
    blocks.append(section(_pipeline_text(headline, report, currency)))
    volume = " · ".join(
        f"{one_line(readable(k.label), 40)} {kpi_value(k)}"
        + (f"/{k.target:.0f}" if k.target is not None else "")
        + (f" {RAG_ICONS[k.rag]}" if k.rag else "")
        for k in report.volume
    )
    goal = f"*MQLs vs {period.adjective} target*: {volume or 'none'}"
    blocks.append(section(f"{goal}\n*Conversion*: {funnel_counts(report)}"))
    by_segment = _slices_text(
        "By segment", report.by_segment, lambda n: f"*{one_line(readable(n), 40)}*"
    )
    blocks.append(section(by_segment))
    by_rep = (lambda n: named(n, known, 60)) if in_channel else (lambda n: person(n, 60))
    after = [
        section(_slices_text("By rep", report.by_rep, by_rep)),
        section(_outcomes_text(report)),
    ]
    zone = policy.timezone
    footer = (
        f"As of {slack_date(report.as_of, zone)} · changes against {report.previous_period.label}"
        f" · response times in {_response_clock(policy, zone=True)}, lead velocity in calendar time"
    )
    if shared_by:
        footer = f"Shared by {named(shared_by, known, 80)} · {footer}"
    if charts_in_dm:
        footer = f"📈 The charts are in your DM with Handoff · {footer}"
    after.append(context(footer))
    if shared_by is None and not digest and shareable:
        value = f"{period.label}|{report.segment or ''}"
        share = button("Share to channel", ActionId.REPORT_SHARE, value)
        after.append(actions([share], "report_actions"))
    room = MAX_BLOCKS - len(blocks) - len(after)  # marketing's table gets the blocks left
    blocks += [section(text) for text in marketing_sections(report, currency, room)]
    blocks += after
    # The notification is mrkdwn too: its words are escaped once, here (`scope` is already).
    named_scope = f" · {readable(report.segment)}" if report.segment else ""
    text = f"SLA report {period.label}{named_scope}: " + _plain_rag(report.headline, report.volume)
    return Message(text=one_line(text, 3000), blocks=blocks[:MAX_BLOCKS])


def _pct(value: float | None, missing: str = "–") -> str:
    return missing if value is None else f"{value:.0%}"


def _mql_count(count: int) -> str:
    """`1 MQL`, `14 MQLs`."""
    return f"{count} MQL{'' if count == 1 else 's'}"


def funnel_counts(report: Report) -> str:
    """`14 MQLs posted → 8 SAL → 3 SQL`: the funnel's stages (its rates are the report's MQL →
    SAL, SAL → SQL and MQL → SQL, each shown once, with its target)."""
    funnel = report.conversion
    base = (
        f"{_mql_count(funnel.mql)} posted"
        if funnel.posted == funnel.mql
        else f"{_mql_count(funnel.mql)} ({funnel.posted} posted)"
    )
    waiting = f" ({funnel.waiting} in their claim window)" if funnel.waiting else ""
    return f"{base} → {funnel.sal} SAL{waiting} → {funnel.sql} SQL"


def conversion(report: Report, arrow: str = "→", missing: str = "–") -> str:
    """`18 MQLs posted → 12 SAL (MQL → SAL 67%) → 3 SQL (SAL → SQL 25%) · MQL → SQL 17%`:
    each rate named, so nobody reads MQL → SQL where SAL → SQL belongs."""
    funnel = report.conversion
    base = (
        f"{_mql_count(funnel.mql)} posted"
        if funnel.posted == funnel.mql
        else f"{_mql_count(funnel.mql)} ({funnel.posted} posted)"
    )
    waiting = f"; {funnel.waiting} in their claim window" if funnel.waiting else ""
    return (
        f"{base} {arrow} {funnel.sal} SAL (MQL {arrow} SAL {_pct(funnel.mql_to_sal, missing)}"
        f"{waiting}) "
        f"{arrow} {funnel.sql} SQL (SAL {arrow} SQL {_pct(funnel.sal_to_sql, missing)}) · "
        f"MQL {arrow} SQL {_pct(funnel.mql_to_sql, missing)}"
    )


def _response_clock(policy: Policy, *, zone: bool = False) -> str:
    """The clock response times are measured in, in words (the SLA's first-touch clock)."""
    if responds_in_calendar_time(policy):
        return "calendar time"
    return f"working time ({one_line(policy.timezone, 60)})" if zone else "working time"


def _coloured(kpi: Kpi, currency: str | None = None) -> str:
    """`2h 6m 🟡`: a figure with its colour, when it has a target."""
    icon = f" {RAG_ICONS[kpi.rag]}" if kpi.rag else ""
    return f"{kpi_value(kpi, currency=currency)}{icon}"


def _aside(*parts: str) -> str:
    """` (target ≤ 2h, ▲ 5m)`, or nothing when every part is empty."""
    shown = ", ".join(part for part in parts if part)
    return f" ({shown})" if shown else ""


def _mixed_target(mean: Kpi, policy: Policy) -> bool:
    """Whether the mean response time's target is the leads' mix of tiers (a warm lead's
    business day in it), not `targets.response_time` itself."""
    return mean.target is not None and mean.target != target_minutes(
        policy.targets.response_time, policy
    )


def _timing_text(kpis: list[Kpi], clock: str, mixed: bool = False) -> str:
    """Seed 002's response time (from MQL creation) beside speed to lead (from the post),
    overall and by tier, each figure coloured against its own target (`mixed`: the mean's is
    the measured leads' mix of tiers, and says so)."""
    headline = {kpi.key: kpi for kpi in kpis}
    mean, median = headline["response_mean"], headline["response_median"]
    speed, p90, claim = headline["speed_median"], headline["speed_p90"], headline["claim_median"]
    tiers = []
    for kpi in kpis:
        key, _, tier = kpi.key.partition(".")
        if key == "speed_median" and tier and kpi.value is not None:  # a tier with leads
            tail = headline[f"speed_p90.{tier}"]
            tiers.append(
                f"{one_line(readable(tier), 40)} median {_coloured(kpi)}, p90 {_coloured(tail)}"
                f"{_aside(kpi_target(kpi), kpi.detail)}"
            )
    by_tier = f" · by tier: {' · '.join(tiers)}" if tiers else ""
    return (
        f"*Response time* (MQL creation → first touch, {clock}): mean {_coloured(mean)}"
        f"{_aside(kpi_target(mean) + (' for these tiers' if mixed else ''), kpi_change(mean))}"
        f", median {kpi_value(median)}\n"
        f"*Speed to lead* (posted → first touch): median {_coloured(speed)}, p90 "
        f"{_coloured(p90)}{_aside(kpi_target(speed))}{by_tier}\n"
        f"*Time to claim*: median {_coloured(claim)}{_aside(kpi_target(claim))}"
    )


def _pipeline_text(headline: Mapping[str, Kpi], report: Report, currency: str | None) -> str:
    """Lead velocity, the pipeline, and the reps' ratings: one line each."""

    def part(key: str, name: str) -> str:
        return f"{name} {_coloured(headline[key], currency)}"

    steps = " · ".join(part(f"velocity_{step}", label) for step, label in VELOCITY_LABELS.items())
    pipeline, won = headline["pipeline"], headline["won_amount"]
    return (
        f"*Lead velocity* (mean calendar time in each step): {steps}\n"
        f"*Pipeline generated* {part('pipeline', '').strip()} ({pipeline.detail}) · "
        f"*won* {part('won_amount', '').strip()} ({won.detail})\n"
        f"*Lead quality* (reps' rating, 1–5): {part('quality_fit', 'fit')} · "
        f"{part('quality_timing', 'timing')} ({headline['quality_fit'].detail})"
    )


MARKETING_COLUMNS = "MQLs · MQL→SAL · SQLs · opps · pipeline · won · win rate · fit/timing"


def marketing_table(
    report: Report, currency: str | None = None, lines: int = 6, emphasis: bool = True
) -> str:
    """Marketing's view (seed 000: which sources convert): by source, then by campaign, the
    MQLs, acceptance, SQLs, opportunities, pipeline, won amount, win rate and the ratings;
    `lines` rows of each, the largest first (the rest are counted)."""
    bold, italic = ("*", "_") if emphasis else ("", "")
    text = [f"{bold}Sources and campaigns{bold} ({MARKETING_COLUMNS})"]
    for title, rows in _marketing_rows(report, currency):
        text.append(f"{italic}{title}{italic}")
        text.extend(rows[:lines])
        if len(rows) > lines:
            text.append(f"…and {len(rows) - lines} more")
        if not rows:
            text.append("None.")
    return "\n".join(text)


def marketing_sections(report: Report, currency: str | None, room: int) -> list[str]:
    """Marketing's table in Slack: every row that fits in `room` sections of Slack's 3,000
    characters each, in order; only rows that do not fit are counted ("…and 13 more")."""
    lines = marketing_table(report, currency, lines=len(report.by_campaign) + len(report.by_source))
    return _pack(lines.split("\n"), max(1, room))


def _pack(lines: list[str], room: int, limit: int = SECTION_LIMIT) -> list[str]:
    """`lines` in order, in at most `room` texts of at most `limit` characters; when they run
    out, the rows (`• …`) left are counted on the last text's last line instead."""
    texts: list[list[str]] = [[]]
    for index, line in enumerate(lines):
        if _length([*texts[-1], line]) <= limit:
            texts[-1].append(line)
        elif len(texts) < room:
            texts.append([line])
        else:
            last, rest = texts[-1], lines[index:]
            more = f"…and {sum(row.startswith('• ') for row in rest)} more"
            while last and _length([*last, more]) > limit:
                rest.insert(0, last.pop())  # make room for the count
                more = f"…and {sum(row.startswith('• ') for row in rest)} more"
            last.append(more)
            break
    return ["\n".join(text) for text in texts if text]


def _length(lines: list[str]) -> int:
    return sum(map(len, lines)) + len(lines) - 1


def _marketing_rows(report: Report, currency: str | None) -> list[tuple[str, list[str]]]:
    """The table's rows by source and by campaign, each the largest first."""

    def row(piece: Slice, name: str) -> str:
        kpis = {k.key: k for k in piece.kpis}
        fit, timing = kpis["quality_fit"], kpis["quality_timing"]
        rating = (
            "–"
            if fit.value is None and timing.value is None
            else f"{_score(fit.value)}/{_score(timing.value)}"
        )
        cells = [
            kpi_value(kpis["mql"]),
            kpi_value(kpis["acceptance"]),
            kpi_value(kpis["sql"]),
            kpi_value(kpis["opportunities"]),
            kpi_value(kpis["pipeline"], currency=currency),
            kpi_value(kpis["won_amount"], currency=currency),
            kpi_value(kpis["win_rate"]),
            rating,
        ]
        return f"• {name}: {' · '.join(cells)}"

    def campaign(name: str) -> str:
        source, _, rest = name.partition(" · ")  # bot.domain.report.campaign_of
        return f"{one_line(readable(source), 60)} · {one_line(rest, 60)}"

    sources = [
        row(s, one_line(readable(s.name), 60)) for s in sorted(report.by_source, key=_by_mqls)
    ]
    campaigns = [row(s, campaign(s.name)) for s in sorted(report.by_campaign, key=_by_mqls)]
    return [("Source", sources), ("Campaign", campaigns)]


def _by_mqls(piece: Slice) -> tuple[float, str]:
    """The order of a list of slices: the most MQLs first, then by name."""
    return -_mqls(piece), readable(piece.name).casefold()


def _mqls(piece: Slice) -> float:
    return next((k.value or 0.0 for k in piece.kpis if k.key == "mql"), 0.0)


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _plain_rag(kpis: list[Kpi], volume: Sequence[Kpi] = ()) -> str:
    """The coloured KPIs with their figures, for the notification; without any, the same words
    as the blocks' colour line (no target, or no figure against one yet)."""
    return ", ".join(
        f"{_short_label(k)} {kpi_value(k)}" for k in kpis if k.rag is not None
    ) or nothing_coloured(kpis, volume)


def _outcomes_text(report: Report) -> str:
    mix = " · ".join(f"{one_line(label, 40)} {n}" for _, label, n in report.dispositions)
    lines = [f"*Dispositions*: {mix or 'none yet'}"]
    if report.reasons:
        split = " · ".join(
            f"{PROBLEM_WORDS.get(problem, 'untagged')} {n}"
            for problem, n in sorted(report.problems.items(), key=lambda item: -item[1])
        )
        lines.append(f"*Why leads were rejected* ({split}):")
        for reason in report.reasons[:REASONS_SHOWN]:
            tag = PROBLEM_WORDS.get(reason.problem or "", "untagged")
            lines.append(f"• {one_line(reason.reason, 80)} ({tag}): {reason.leads}")
        rest = report.reasons[REASONS_SHOWN:]
        if rest:  # the bullets add up to the heading's counts with them
            more = f"{len(rest)} more reason{'' if len(rest) == 1 else 's'}"
            lines.append(f"…and {more} ({leads_count(sum(r.leads for r in rest))})")
    # Each clock as `/sla` and `handoff report` name it ("first touch overdue"), not by its key.
    fired = " · ".join(
        f"{one_line(ladder_words(ladder), 60)}: {one_line(ACTION_WORDS.get(act, act), 40)} {n}"
        for ladder, act, n in report.escalations
    )
    lines.append(f"*Escalations fired*: {fired or 'none'}")
    return "\n".join(lines)


def rejection_summary(
    period: Period, rows: list[tuple[str, str, str, str | None, int]], policy: Policy
) -> Message:
    """Marketing's weekly review: last week's rejections by source and campaign, with the
    problem each reason points at (routing, data, MQL definition)."""
    total = sum(n for *_, n in rows)
    title = f"📬 *Rejections in {period.words()}*, by source and campaign: {leads_count(total)}"
    blocks: list[dict[str, Any]] = [section(title)]
    if not rows:
        blocks.append(section("No leads were rejected last week."))
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
        lines.append(
            f"• *{one_line(readable(source), 60)}* · {one_line(campaign, 80)}: {', '.join(parts)}"
        )
    more = len(ordered) - len(lines)
    if more > 0:
        lines.append(f"…and {more} more source and campaign pairs")
    # Whole lines in as many sections as they take (3,000 characters a section text,
    # docs.slack.dev/reference/block-kit/blocks/section-block): one section clipped the pairs
    # past its limit mid-line, and the count of those not shown with them.
    room = MAX_BLOCKS - len(blocks) - 1  # - 1: the context below
    blocks += [section(text) for text in _pack([clip(line, SECTION_LIMIT) for line in lines], room)]
    # Counted when made, as marketing reviews them: the report counts the rejections of the
    # leads received in its period (docs/reports.md), so the two can differ for one week.
    blocks.append(
        context(
            f"These are the rejections made in {period.label}; `/sla-report {period.label}` "
            "counts those of the leads that came in that week · reasons are tagged in sla.yaml"
        )
    )
    text = f"Rejections in {period.label}: {leads_count(total)}"
    return Message(text=text, blocks=blocks)


def compliance_alert(
    weeks: list[tuple[Period, float | None]],
    worst: list[tuple[str, float]],
    below: float,
    policy: Policy,
) -> Message:
    """A DM: first-touch compliance has stayed under the threshold for N weeks running."""
    trend = " → ".join(
        f"{period.label} {share_text(value, below)}" if value is not None else f"{period.label} –"
        for period, value in weeks
    )
    # `compliance_alert.weeks` may be 1: "for 1 week", not "1 weeks running".
    span = "1 week" if len(weeks) == 1 else f"{len(weeks)} weeks running"
    lines = [
        f"⚠️ *First-touch compliance has been under {below:.0%} for {span}.*",
        f"Trend: {trend}",
    ]
    if worst:
        segments = ", ".join(
            f"{one_line(readable(name), 40)} {share_text(value, below)}" for name, value in worst
        )
        lines.append(f"Worst segments last week: {segments}")
    lines.append("`/sla-report last-week` shows where the time goes, by segment, source and rep.")
    count = "1 week" if len(weeks) == 1 else f"{len(weeks)} weeks"
    text = f"First-touch compliance under {below:.0%} for {count}: {trend}"
    return Message(text=one_line(text, 3000), blocks=[section("\n".join(lines))])
