"""The weekly digest and the compliance alert: once per week each, whatever the replicas.

At the SLA's `report.weekly_digest` day and time (team time zone), last week's report goes to
`channels.digest` and the week's rejections, by source and campaign, to marketing's feedback
channel. When first-touch compliance has stayed under `report.compliance_alert.below` for
`weeks` weeks running, each person in `notify` gets one DM (weighed once a week: a week that
does not send it is recorded too). Each run is recorded under a unique (kind, week) key in the
transaction that queues its messages (storage/reports.py `RunStore`), so a second replica, a
retry or a restart sends nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.domain.businesstime import WEEKDAYS
from bot.domain.effects import (
    MONTHLY_DIGEST,
    REJECTION_REVIEW,
    WEEKLY_DIGEST,
    Effect,
    ReportPart,
    Send,
    Upload,
)
from bot.domain.policy import MonthlyDigest, Policy, WeeklyDigest
from bot.domain.report import Period, Report, parse_period
from bot.services.leads import Notifier
from bot.services.policies import PolicyBook
from bot.services.reports import Chart, Reports
from bot.slack import report_views
from bot.slack.blocks import Message
from storage.reports import RunStore

log = logging.getLogger("handoff.digest")
# A run the scheduler missed by at most this long is still made. A server (re)starting later
# sends the latest one due if Handoff was running before it came due (SPEC: nothing is lost
# after "a restart after hours of downtime"); a new installation posts no week before it.
CATCH_UP = timedelta(hours=1)


def _posting_at(day: date, at: str, zone: str) -> datetime:
    """`at` (HH:MM) on `day` in `zone`. A time the clocks skip that day is read with the offset
    before the jump (00:30 on a night whose midnight becomes 01:00 is 01:30), one they repeat
    at its first reading: the job's trigger (`next_posting`) and the due check read it alike."""
    hour, minute = (int(part) for part in at.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def monthly_digest_time(month: Period, setting: MonthlyDigest) -> datetime:
    """When the monthly digest of `month` is due: the next month's `day` at `time`, team time."""
    return _posting_at(month.last_day + timedelta(days=setting.day), setting.time, month.zone)


def digest_time(week: Period, setting: WeeklyDigest) -> datetime:
    """When the digest of `week` is due: its next week's digest day and time, team time."""
    day = week.first_day + timedelta(days=7 + WEEKDAYS.index(setting.day))
    return _posting_at(day, setting.time, week.zone)


def next_posting(
    start: datetime, at: str, zone: str, *, weekday: str | None = None, day: int | None = None
) -> datetime:
    """The first time at or after `start` that a post at `at` (team time) on `weekday` (a
    week's) or on the month's `day` is due, as `digest_time` and `monthly_digest_time` read
    it: every such day has one, also when the clocks skip or repeat `at`."""
    local = start.astimezone(ZoneInfo(zone)).date() - timedelta(days=1)
    for offset in range(32 * 12):
        candidate = local + timedelta(days=offset)
        if weekday is not None and WEEKDAYS[candidate.weekday()] != weekday:
            continue
        if day is not None and candidate.day != day:
            continue
        due = _posting_at(candidate, at, zone)
        if due >= start:
            return due
    raise ValueError(f"no day matches {weekday or day} in a year")


class Digests:
    def __init__(
        self,
        reports: Reports,
        runs: RunStore,
        policies: PolicyBook,
        notifier: Notifier,
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.names = names if names is not None else {}  # members' display names
        self.reports = reports
        self.runs = runs
        self.policies = policies
        self.notifier = notifier

    def schedule(self) -> WeeklyDigest:
        """The day and time the weekly runs happen (the digest's, or Monday 09:00)."""
        return self.policies.current.report.weekly_digest or WeeklyDigest()

    async def run(self, now: datetime, *, catch_up: timedelta | None = None) -> list[str]:
        """Send last week's digest and alert if they are due at `now` and not sent yet.

        `catch_up`: a (re)start's run: see `_due`."""
        policy = self.policies.current
        last = parse_period("last-week", now, policy.timezone)
        due = digest_time(last, self.schedule())
        if now < due and catch_up is not None:  # the latest due is the week before's
            last = last.previous()
            due = digest_time(last, self.schedule())
        if not await self._due(due, now, catch_up):
            return []
        sent = []
        if policy.report.weekly_digest is not None and await self._digest(policy, last, now):
            sent.append("weekly digest")
        if policy.report.compliance_alert is not None and await self._alert(policy, last, now):
            sent.append("compliance alert")
        if sent:
            log.info("%s for %s queued", " and ".join(sent), last.label)
            self.notifier.deliver_soon()
        return sent

    async def run_monthly(self, now: datetime, *, catch_up: timedelta | None = None) -> list[str]:
        """Send last month's report to `channels.digest` if `report.monthly_digest` says it is
        due at `now` and it was not sent yet (recorded once per month, like the weekly one).

        `catch_up`: a (re)start's run: see `_due`."""
        policy = self.policies.current
        setting = policy.report.monthly_digest
        if setting is None or not policy.channels.digest:
            return []
        month = parse_period("last-month", now, policy.timezone)
        due = monthly_digest_time(month, setting)
        if now < due and catch_up is not None:  # the latest due is the month before's
            month = month.previous()
            due = monthly_digest_time(month, setting)
        if not await self._due(due, now, catch_up):
            return []
        if await self.runs.sent("monthly_digest", month.label):
            return []
        effects = await self._report_effects(policy, month, now, "monthly_digest")
        if not await self.runs.send_once("monthly_digest", month.label, effects, now):
            return []
        log.info("monthly digest for %s queued", month.label)
        self.notifier.deliver_soon()
        return ["monthly digest"]

    async def _due(self, due: datetime, now: datetime, catch_up: timedelta | None) -> bool:
        """Whether a run due at `due` is to be made at `now`: by the scheduler, at its time; by
        a (re)start (`catch_up`), within that look back, or later if Handoff was running before
        `due` (servers down over it: its week or month is sent late, not lost; `run` and
        `run_monthly` only ever look at the latest one due: on a restart before the time of
        the week or month just ended, the one before it, whose time may have passed while the
        servers were down, as a Friday digest over a weekend's outage)."""
        if now < due:
            return False
        if catch_up is None or now - due <= catch_up:
            return True
        return await self.runs.running_before(due)

    async def _report_effects(
        self, policy: Policy, period: Period, now: datetime, kind: str
    ) -> list[Effect]:
        """The period's report and its charts, posted to `channels.digest`."""
        if not policy.channels.digest:
            return []
        report = await self.reports.report(period, now)
        key = f"{kind}:{period.label}"
        # Each message and chart says which report it is (the alerts about a refused one name
        # it: storage/outbox.py).
        part = ReportPart(
            MONTHLY_DIGEST if kind == "monthly_digest" else WEEKLY_DIGEST, period.label
        )
        message = report_views.sla_report(report, policy, digest=True, names=self.names)
        effects: list[Effect] = [_send(policy.channels.digest, message, f"{key}:0", part)]
        drawn = await self.reports.charts(report)
        effects += [
            _upload(policy.channels.digest, chart, f"{key}:{index}", report=part)
            for index, chart in enumerate(drawn, start=1)
        ]
        return effects

    async def _digest(self, policy: Policy, week: Period, now: datetime) -> bool:
        if await self.runs.sent("weekly_digest", week.label):
            return False  # the common case after the first replica: no report to build
        key = f"weekly_digest:{week.label}"
        effects = await self._report_effects(policy, week, now, "weekly_digest")
        rejections = await self.runs.rejections(week.start, week.end)
        summary = report_views.rejection_summary(week, rejections, policy)
        review = ReportPart(REJECTION_REVIEW, week.label)
        effects.append(
            _send(policy.channels.marketing_feedback, summary, f"{key}:{len(effects)}", review)
        )
        return await self.runs.send_once("weekly_digest", week.label, effects, now)

    async def charts_to(self, user: str, report: Report, now: datetime) -> None:
        """The report's charts in the requester's DM (an ephemeral answer carries no file)."""
        drawn = await self.reports.charts(report)
        comment = f"Charts for your `/sla-report` of {report.period.label}"
        key = f"charts:{user}:{report.period.label}:{now.isoformat()}"
        effects: list[Effect] = [
            _upload(user, chart, f"{key}:{index}", comment if index == 0 else None)
            for index, chart in enumerate(drawn)
        ]
        await self.runs.send(effects, now)
        self.notifier.deliver_soon()

    async def _alert(self, policy: Policy, week: Period, now: datetime) -> bool:
        alert = policy.report.compliance_alert
        assert alert is not None
        if await self.runs.sent("compliance_alert", week.label):
            return False
        weeks = [week]
        while len(weeks) < alert.weeks:
            weeks.insert(0, weeks[0].previous())
        trend: list[tuple[Period, float | None]] = []
        worst: list[tuple[str, float]] = []
        for each in weeks:
            overall, by_segment = await self.reports.first_touch(each, now)
            trend.append((each, overall))
            if each == week:  # the segments under the threshold, worst first (none at 100%)
                under = [item for item in by_segment.items() if item[1] < alert.below]
                worst = sorted(under, key=lambda item: item[1])[:3]
        if not all(value is not None and value < alert.below for _, value in trend):
            # Weighed once a week, at the digest's time (or the first start after it): recorded
            # with nothing to send, so a restart later in the week, with figures moved on,
            # does not decide again.
            await self.runs.send_once("compliance_alert", week.label, [], now)
            return False
        message = report_views.compliance_alert(trend, worst, alert.below, policy)
        key = f"compliance_alert:{week.label}"
        effects: list[Effect] = [
            _send(user, message, f"{key}:{index}") for index, user in enumerate(alert.notify)
        ]
        return await self.runs.send_once("compliance_alert", week.label, effects, now)


def _send(channel: str, message: Message, key: str, report: ReportPart | None = None) -> Send:
    return Send(channel, message.text, key, blocks=tuple(message.blocks), report=report)


def _upload(
    channel: str,
    chart: Chart,
    key: str,
    comment: str | None = None,
    *,
    report: ReportPart | None = None,
) -> Upload:
    """A chart as a file in `channel` (a user id: their DM), its title as its alt text;
    `report`: the report it is a chart of, in a channel's run."""
    return Upload(
        channel, chart.filename, chart.title, chart.png, key, comment, chart.title, report
    )
