"""The SLA report use case: parse what was asked, count the period and the one before it in the
database, and build the KPIs (bot/domain/report.py). Used by `/sla-report` and `handoff report`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from bot.domain.policy import Policy
from bot.domain.refusal import Refusal
from bot.domain.report import (
    AttemptStandard,
    Period,
    Report,
    attempt_standard,
    build_report,
    parse_period,
    parse_request,
    segment_named,
    share,
)
from bot.services.policies import PolicyBook
from bot.services.report_process import ReportProcess, collector_paused, give_way
from bot.slack.charts import daily_compliance_png, speed_to_lead_png
from storage.reports import Filter, ReportStore


@dataclass(frozen=True)
class Chart:
    """A report chart as a PNG, with its file name and title."""

    filename: str
    title: str
    png: bytes


def charts(report: Report, pause: Callable[[], None] = lambda: None) -> list[Chart]:
    """The report's two charts as PNGs: speed to lead with each tier's window and the
    report's first-touch compliance, daily compliance (`pause()` before each: the report
    worker gives way to Slack's requests there)."""
    label = report.period.label + (f" · {report.segment}" if report.segment else "")
    target = next((k.target for k in report.headline if k.key == "first_touch"), None)
    name = f"handoff-{report.period.label}" + (f"-{report.segment}" if report.segment else "")
    pause()
    speed = speed_to_lead_png(
        report.speed_minutes,
        report.window_minutes,
        f"Speed to lead, {label}",
        report.speed_on_time,
        report.first_touch,
        elapsed=report.elapsed,
    )
    pause()
    title = f"First-touch compliance by day, {label}"
    daily = daily_compliance_png(report.daily_compliance, target, title)
    return [
        Chart(f"{name}-speed-to-lead.png", f"Speed to lead, {label}", speed),
        Chart(f"{name}-first-touch.png", title, daily),
    ]


class Reports:
    def __init__(
        self, store: ReportStore, policies: PolicyBook, process: ReportProcess | None = None
    ) -> None:
        self.store = store
        self.policies = policies
        self.process = process  # builds reports in a worker process (None: in this one)

    async def ask(self, text: str | None, now: datetime) -> Report:
        """`/sla-report [period] [segment]` as typed; a Refusal says what is valid."""
        period, segment = parse_request(text, now, self.policies.current)
        return await self.report(period, now, segment=segment)

    async def named(self, period: str | None, now: datetime, segment: str | None = None) -> Report:
        """`handoff report --period … --segment …`, and a shared report's button (whose value
        holds the period's label)."""
        policy = self.policies.current
        if segment is not None:
            names = [s.name for s in policy.segments]
            named = segment_named(segment, names)
            if named is None:
                shown = ", ".join(names)
                raise Refusal(f"{segment!r} is not a segment of the SLA: use one of {shown}.")
            segment = named
        return await self.report(parse_period(period, now, policy.timezone), now, segment=segment)

    async def report(
        self,
        period: Period,
        now: datetime,
        *,
        segment: str | None = None,
        source: str | None = None,
        rep: str | None = None,
    ) -> Report:
        policy = self.policies.current
        where = Filter(segment, source, rep)
        standard = attempt_standard(policy, now)
        earlier = period.previous()
        # A week compares its durations with the week before; a longer period compares its
        # counts and shares only (its stage times would double a quarter's cost). Both
        # periods are read at once (on SQLite, each on a reader of its own).
        durations = period.kind == "week"
        if self.process is not None:
            work = self.process.building(
                period, earlier, now, standard, where, durations, policy, segment
            )
            built = await self.process.run(work, "this report")
            if built is not None:
                return built
        # As in the worker: the collector paused for the reads and the build, and back once
        # their rows are freed (they go with `_read_and_build`'s frame).
        with collector_paused():
            return await self._read_and_build(
                period, earlier, now, standard, where, durations, policy, segment
            )

    async def _read_and_build(
        self,
        period: Period,
        earlier: Period,
        now: datetime,
        standard: AttemptStandard,
        where: Filter,
        durations: bool,
        policy: Policy,
        segment: str | None,
    ) -> Report:
        facts, before = await self.store.both_periods(
            period, earlier, now, standard, where, durations
        )
        # Building it is CPU work on up to a quarter's rows: beside the event loop, so Slack's
        # acks never wait behind it (the reads already run off the loop).
        return await asyncio.to_thread(build_report, period, facts, before, policy, now, segment)

    async def charts(self, report: Report) -> list[Chart]:
        """The report's charts, drawn in the worker process with the report (drawing is CPU
        work: in a thread of the server it would hold the interpreter's lock from the acks);
        in a thread when there is no worker."""
        if self.process is not None:
            drawn = await self.process.run(partial(charts, report, give_way), "these charts")
            if drawn is not None:
                return drawn
        return await asyncio.to_thread(charts, report)

    async def first_touch(
        self, period: Period, now: datetime
    ) -> tuple[float | None, dict[str, float]]:
        """First-touch compliance of a period, overall and by segment (for the alert)."""
        standard = attempt_standard(self.policies.current, now)
        facts = await self.store.facts(period.start, period.end, now, standard, Filter())
        due: dict[str, int] = {}
        met: dict[str, int] = {}
        for group, counts in facts.counts.items():
            due[group.segment] = due.get(group.segment, 0) + counts.touch_due
            met[group.segment] = met.get(group.segment, 0) + counts.touched_on_time
        overall = share(sum(met.values()), sum(due.values()))
        return overall, {name: met[name] / due[name] for name in due if due[name]}
