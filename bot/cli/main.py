"""The `handoff` command: serve, demo, check, doctor, manifest, forget, sweep, report, whatif,
plan, db upgrade, import."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot import logs
from bot.domain.policy import LADDERS, Policy, PolicyError, policy_warnings, zone_warning
from bot.domain.refusal import Refusal
from bot.services.health import Readiness
from bot.services.policies import load_policy
from bot.settings import DEFAULT_DATABASE, ConfigError, Settings

if TYPE_CHECKING:
    from bot.cli.importer import Stop

log = logging.getLogger("handoff")


def _signal_lines(policy: Policy) -> list[str]:
    """The MQL definition's signals, one a line (none: the built-in definition scores)."""
    mql = policy.mql
    if not mql.has_signals:
        return ["    scored by the built-in definition (no fit or intent signals in the file)"]
    return [f"    fit {item.describe()}" for item in mql.fit] + [
        f"    intent {item.describe()}" for item in mql.intent
    ]


def _policy_summary(policy: Policy, path: str) -> str:
    hours = policy.business_hours
    lines = [
        f"{path}: valid (version {policy.version})",
        f"  {policy.name}",
        f"  business time: {' '.join(hours.days)} {hours.start}–{hours.end} {policy.timezone}"
        f", holidays: {', '.join(hours.regions) or 'none'}",
        "  clocks: "
        + (
            "a claimed lead's on its owner's hours in their Slack time zone"
            if policy.clock == "owner"
            else "the team's"
        ),
        f"  MQL: score ≥ {policy.mql.threshold} with {', '.join(policy.mql.required_fields)}",
        *_signal_lines(policy),
        "  segments (first match wins):",
    ]
    for segment in policy.segments:
        rule = segment.when.model_dump(exclude_none=True) if segment.when else "everything else"
        lines.append(f"    {segment.name}: {rule} → {segment.channel}, {len(segment.reps)} rep(s)")
    lines.append("  speed to lead:")
    for tier in policy.tiers:
        rule = tier.when.model_dump(exclude_none=True) if tier.when else "everything else"
        claim = tier.claim.words if tier.claim else "half of that"
        lines.append(
            f"    {tier.name}: {rule} → first touch within {tier.first_touch.words}, "
            f"claim within {claim}"
        )
    final = policy.final_deadline.words
    if policy.final_disposition_deadline is None:
        final += " (the cadence's end)"
    lines.append(
        f"  follow-up: {policy.follow_up.min_attempts} attempts within "
        f"{policy.follow_up.within.words} of the claim; first feedback within "
        f"{policy.disposition_deadline.words}; final disposition within {final}"
    )
    lines.append("  escalation (at a share of each clock's window; one step per lead per sweep):")
    for name in LADDERS:
        lines.append(f"    {name}: {policy.escalation.describe(name)}")
    lines.append(f"  recycled leads come back after {policy.recycle_after.words}")
    lines.append(f"  nurtured leads are scored again after {policy.nurture_after.words}")
    lines.append("  dispositions:")
    for item in policy.dispositions:
        extra = f" (reason: {', '.join(item.reasons)})" if item.reason_required else ""
        lines.append(f"    {item.label} [{item.code}] → {item.outcome}{extra}")
    lines.append(f"  marketing feedback → {policy.channels.marketing_feedback}")
    lines.append(f"  managers: {', '.join(policy.managers) or 'none'}")
    return "\n".join(lines)


def check(path: str) -> int:
    try:
        policy = load_policy(path)
    except PolicyError as error:
        print(f"{path}: {len(error.problems)} problem(s)", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(_policy_summary(policy, path))
    warnings = policy_warnings(policy)  # valid all the same: the file passes
    if warnings:
        print(f"{path}: {len(warnings)} warning(s)", file=sys.stderr)
        for warning in warnings:
            print(f"  {warning}", file=sys.stderr)
    return 0


async def _serve(settings: Settings, socket_mode: bool) -> None:
    from bot.app import create, settle_heap
    from bot.services import report_process
    from handlers.socket_client import TURNED_OFF

    handoff = await create(settings, socket_mode=socket_mode)
    try:
        port = await handoff.start()
    except OSError as error:  # the port is taken, the host unknown or not this machine's
        await handoff.close()  # what `create` opened: Slack's sessions, the database
        reason = (error.strerror or str(error)).rsplit(": ", 1)[-1]
        raise ConfigError(
            f"cannot listen on {settings.host}:{settings.port} (HOST, PORT): {reason}; set "
            "HOST or PORT to where it can (docs/operations.md#configuration)"
        ) from None
    settle_heap()
    if not settings.intake_token:  # documented, but otherwise only each refused lead says so
        log.warning(
            "HANDOFF_INTAKE_TOKEN is not set: intake refuses every lead until it is (POST /leads "
            "and POST /leads/{external_id}/activity answer 401); set it to the bearer token "
            "marketing systems send (docs/intake.md)"
        )
    for warning in policy_warnings(handoff.services.policy):  # as `handoff check` prints them
        log.warning("%s: %s", settings.sla_file, warning)
    log.info(
        "handoff serving on http://%s:%s (SLA version %s)",
        settings.host,
        port,
        handoff.services.policy.version,
    )
    stop, terminated = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_sigterm() -> None:  # drain first (HANDOFF_SHUTDOWN_DRAIN); a second one stops at once
        (stop if terminated.is_set() else terminated).set()

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # ignored (`cmd &` in a script,
        loop.add_signal_handler(signal.SIGINT, stop.set)  # POSIX): stays ignored, as `import`'s
    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    turned_off: asyncio.Event | None = None
    watch: asyncio.Task[None] | None = None
    try:
        if socket_mode:
            await handoff.connect_socket()
            log.info("connected to Slack in Socket Mode")
            turned_off = handoff.socket_turned_off
            if turned_off is not None:  # Socket Mode turned off: stop, as on Ctrl-C
                watch = asyncio.create_task(_set_when(turned_off, stop))
        await _wait_for_stop(handoff.readiness, settings.shutdown_drain, stop, terminated)
        log.info("stopping: finishing what is under way (%.0f s at most)", settings.shutdown_grace)
    finally:  # also when Slack refuses the app token: nothing is left running
        if watch is not None:
            watch.cancel()
        await handoff.close(settings.shutdown_grace)
        await asyncio.to_thread(report_process.shutdown)  # the report worker goes with it
    if turned_off is not None and turned_off.is_set():
        # Reconnecting cannot help: Slack sends nothing over Socket Mode until it is turned on
        # again. One line and exit code 2, as for an app token Slack refuses; a supervisor
        # that restarts `serve` shows the failure instead of a server that takes no press.
        raise ConfigError(TURNED_OFF)
    log.info("stopped")


async def _set_when(happened: asyncio.Event, then: asyncio.Event) -> None:
    await happened.wait()
    then.set()


async def _wait_for_stop(
    readiness: Readiness | None, drain: float, stop: asyncio.Event, terminated: asyncio.Event
) -> None:
    """Until Ctrl-C, or SIGTERM and then `drain` seconds in which requests are still answered
    while /readyz fails (`shutdown`), so a load balancer stops sending traffic before the
    listener closes. Another signal during the drain ends it at once."""
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(terminated.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set() or drain <= 0:
            return
        until = time.time() + drain
        if readiness is not None:
            readiness.stopping = (
                f"draining: SIGTERM came; requests are still answered until "
                f"{datetime.fromtimestamp(until, UTC).isoformat(timespec='seconds')}, then it stops"
            )
        log.info("SIGTERM: draining for %.0f s (/readyz answers 503) before stopping", drain)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), drain)
    finally:
        for wait in waits:
            wait.cancel()


async def _upgrade(settings: Settings) -> None:
    from sqlalchemy.engine import make_url

    from storage import db

    engine = db.create_engine(settings.database_url)
    try:
        await db.upgrade(engine)
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        print(f"database schema is at {await db.current_revision(engine)} ({where})")
    finally:
        await engine.dispose()


async def _import(
    settings: Settings,
    path: str,
    progress: bool,
    timezone: str | None = None,
    stop: Stop | None = None,
) -> int:
    """`handoff import`: exit 0 when every row was stored or already known, 1 when a row was
    refused or the file cannot be read. Times without a zone are read in `timezone`, by default
    the SLA's (HubSpot and Salesforce write them in the account's zone). With `stop`, SIGTERM
    and SIGHUP end it between batches (`bot.cli.importer.Stop`)."""
    with contextlib.nullcontext() if stop is None else stop.cancelling():
        return await _import_leads(settings, path, progress, timezone, stop)


async def _import_leads(
    settings: Settings, path: str, progress: bool, timezone: str | None, stop: Stop | None
) -> int:
    from bot.app import keyed_store
    from bot.cli.importer import ImportFileError, Status, import_csv, time_zone
    from bot.domain.lead import Stage
    from bot.services.leads import Invalid, Services
    from bot.services.policies import PolicyBook
    from storage import db
    from storage.away import AwayStore

    policy = load_policy(settings.sla_file)
    try:
        zone = time_zone(timezone or policy.timezone)
    except ValueError as error:
        raise ConfigError(f"--timezone {error}") from None
    # Valid, and read so: said as `handoff check` says it of the SLA's zone.
    if warning := zone_warning("--timezone" if timezone else "timezone", str(zone)):
        print(f"handoff: warning: {warning}", file=sys.stderr)
    # Imported leads' CRM writes wait for `serve`'s CRM worker too.
    database = db.Database(settings.database_url, crm=policy.crm)
    await db.upgrade(database.engine)
    store = await keyed_store(settings, database)
    book = PolicyBook(store, policy)
    await book.record_current(datetime.now(UTC))

    class Later:
        """Imported leads wait in the outbox: a running `handoff serve` picks them up within a
        second, or the next one at its start."""

        def deliver_soon(self) -> None: ...

    services = Services(store, book, Later())
    # Routing as `serve`'s: past reps away (time away) and members Slack last described as
    # guests or deactivated.
    services.availability = AwayStore(database)
    services.barred.update(await store.barred())

    async def intake(payload: dict[str, Any]) -> tuple[Status, list[str]]:
        result = await services.intake(payload, datetime.now(UTC), source="csv")
        if isinstance(result, Invalid):
            return "invalid", [f"{e.field}: {e.message}" for e in result.errors]
        if not result.created:
            return "duplicate", []
        return ("nurture" if result.lead.stage is Stage.NURTURE else "mql"), []

    try:
        summary = await import_csv(path, intake, zone=zone, progress=progress, stop=stop)
    except ImportFileError as error:
        print(error.message, file=sys.stderr)  # it names the file
        return 1
    finally:
        await database.dispose()
    print(summary.render())
    return 1 if summary.invalid else 0


def _instant(text: str | None) -> datetime:
    """--at: an ISO-8601 instant (a time zone is required: 2026-11-23T09:30+11:00); without
    it, now. An empty one (an unset shell variable: `--at "$WHEN"`) is refused, not now."""
    if text is None:
        return datetime.now(UTC)
    if not text:
        raise ConfigError(
            "--at is empty: give an ISO-8601 instant like 2026-11-23T09:30+11:00, or leave --at "
            "out for now"
        )
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        example = "2026-11-23T09:30+11:00"
        raise ConfigError(f"--at {text!r} is not an ISO-8601 instant like {example}") from None
    if value.tzinfo is None:
        raise ConfigError(f"--at {text!r} needs a time zone, like 2026-11-23T09:30+11:00 or …Z")
    return value.astimezone(UTC)


DELIVERY_WAIT = 60.0  # seconds `sweep` and `forget` wait for Slack to take their messages


def _wait_seconds(text: str) -> float:
    """`--wait`: a number of seconds, 0 or more."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):  # also nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return seconds


async def _sweep(settings: Settings, at: datetime, wait: float = DELIVERY_WAIT) -> int:
    """One sweep as of `at`, its Slack effects delivered before exiting (for cron), waiting
    at most `wait` seconds for Slack."""
    from bot.app import create

    handoff = await create(settings, answers_slack=False)  # it takes no Slack request
    handoff.outbox.start()
    try:
        result = await handoff.sweeper.run(at)
        delivered = await handoff.outbox.drain(wait)
    finally:
        await handoff.close()
    print(
        f"escalation sweep as of {at.isoformat(timespec='seconds')}: {result.looked_at} leads due, "
        f"{result.changed} escalated"
        + ("" if delivered else "; some Slack messages wait in the outbox for `handoff serve`")
    )
    return 0


async def _forget(
    settings: Settings, query: str, now: datetime, wait: float = DELIVERY_WAIT
) -> int:
    """`handoff forget`: erase a person's data and empty Handoff's Slack messages about them
    (delivered before exiting when Slack answers within `wait` seconds; else `serve` delivers
    them, and the lead says its messages wait). Exits 1 naming each message Slack refused to
    empty (or delete): it still shows the person's data."""
    from bot.app import create
    from bot.services.erasure import forget
    from bot.slack.outbox import ADVICE
    from storage.outbox import Kind
    from storage.queue import FAILED, PENDING

    settings.require("SLACK_BOT_TOKEN")
    handoff = await create(settings, answers_slack=False)  # it takes no Slack request
    handoff.outbox.start()
    try:
        erased = await forget(handoff.store, handoff.outbox, query, "handoff forget", now)
        delivered = await handoff.outbox.drain(wait)
        outcome = await handoff.outbox.rows.redactions([lead.lead_id for lead in erased], now)
    finally:
        await handoff.close()
    refused = [redaction for redaction in outcome if redaction.state == FAILED]
    if not erased:  # found, then erased meanwhile (a CRM deletion, say), which told Slack
        print(f"{query!r} was erased meanwhile by another process: nothing was changed.")
    waiting = {redaction.lead_id for redaction in outcome if redaction.state == PENDING}
    for lead in erased:
        if lead.lead_id in waiting and not any(r.lead_id == lead.lead_id for r in refused):
            print(
                f"lead {lead.lead_id}: personal data erased; its Slack messages wait to be "
                f"emptied ({lead.messages} message(s) about it, and its post)"
            )
            continue
        if not any(redaction.lead_id == lead.lead_id for redaction in refused):
            print(
                f"lead {lead.lead_id}: personal data erased; "
                f"{lead.messages} Slack message(s) about it emptied, and its post"
            )
            continue
        print(f"lead {lead.lead_id}: personal data erased, but Slack refused to empty:")
        for redaction in refused:
            if redaction.lead_id == lead.lead_id:
                what = "its post" if redaction.kind == Kind.UPDATE_LEAD else "a message"
                error = redaction.error or "refused"
                advice = f" {ADVICE[error]}" if error in ADVICE else ""
                print(f"  - {what} in {redaction.channel}: {error}.{advice}")
    if refused:
        print(
            f"{len(refused)} Slack message(s) may still show the person's data (Slack refused to "
            "edit them, and to delete them): delete them in Slack by hand, as a workspace admin.",
        )
        return 1
    if not delivered:
        print("some Slack changes wait in the outbox: `handoff serve` delivers them")
    return 0


def _stored_history(url: str) -> None:
    """ConfigError unless a SQLite `url` names a file that exists: `report`, `plan` and
    `whatif` read the history, and would otherwise create an empty database and report zeros
    (run from the wrong folder, say)."""
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() == "sqlite" and path and path != ":memory:":
        if not Path(path).exists():
            raise ConfigError(
                f"there is no Handoff database at {path}: set DATABASE_URL to the one "
                "`handoff serve` uses (or run this where it is)"
            )


async def _report(settings: Settings, args: argparse.Namespace) -> int:
    """`handoff report`: a period's SLA report from the database, as text, JSON or CSV."""
    from bot.cli.export import as_csv, as_json, as_text
    from bot.services.policies import PolicyBook
    from bot.services.reports import Reports
    from storage import db
    from storage.reports import ReportStore
    from storage.repository import Store

    policy = load_policy(settings.sla_file)
    if args.chart and not Path(args.chart).parent.is_dir():  # before the report is built
        raise ConfigError(
            f"--chart {args.chart}: its folder {Path(args.chart).parent} is not there"
        )
    _stored_history(settings.database_url)  # a read: never a new, empty database
    database = db.Database(settings.database_url)
    try:
        await db.upgrade(database.engine)
        book = PolicyBook(Store(database), policy)
        reports = Reports(ReportStore(database), book)
        try:
            report = await reports.named(args.period, datetime.now(UTC), args.segment)
        except Refusal as refusal:
            raise ConfigError(refusal.message.replace("`", "")) from None
        names = await Store(database).names() if args.format == "text" else {}
    finally:
        await database.dispose()
    writers = {"json": as_json, "text": lambda report: as_text(report, names)}
    if args.format == "csv":
        # UTF-8 with a BOM, so Excel opens it as UTF-8, not in the PC's code page; it ends
        # with the last record's CRLF (RFC 4180), no line feed after it.
        sys.stdout.flush()
        sys.stdout.buffer.write(as_csv(report).encode("utf-8-sig"))
        sys.stdout.buffer.flush()
    else:
        print(writers[args.format](report))
    if args.chart:
        for path in write_charts(report, args.chart):
            print(f"chart written to {path}", file=sys.stderr)
    return 0


async def _whatif(settings: Settings, args: argparse.Namespace) -> int:
    """`handoff whatif`: the stored history replayed under a proposed SLA file, beside today's."""
    from bot.cli.whatif_text import as_json, as_text
    from bot.domain.whatif import MqlReplay, Replay
    from storage import db
    from storage.whatif import WhatIfStore

    proposed = load_policy(args.file)  # a broken file: its problems with their paths, exit 2
    today = load_policy(settings.sla_file)
    replay = Replay(today, proposed, _instant(args.at), args.weeks)
    mqls = MqlReplay(today, proposed)
    _stored_history(settings.database_url)  # a read: never a new, empty database
    database = db.Database(settings.database_url)
    try:
        await db.upgrade(database.engine)
        store = WhatIfStore(database)
        async for batch in store.history(replay.start, replay.end):
            replay.add(batch)
        async for leads in store.leads(replay.start, replay.end):
            mqls.add(leads)
    finally:
        await database.dispose()
    if mqls.empty and args.format != "json":  # a script asked for JSON gets it, all zero
        print(f"no leads in the last {args.weeks} weeks: nothing to replay")
        return 0
    render = as_json if args.format == "json" else as_text
    print(render(replay, settings.sla_file, args.file, mqls))
    return 0


def write_charts(report: Any, path: str) -> list[str]:
    """The speed-to-lead chart at `path`, the daily compliance beside it (`…-compliance.png`)."""
    from bot.slack.charts import daily_compliance_png, speed_to_lead_png

    target = Path(path)
    title = f"{report.period.label}" + (f" · {report.segment}" if report.segment else "")
    speed = speed_to_lead_png(
        report.speed_minutes,
        report.window_minutes,
        f"Speed to lead, {title}",
        report.speed_on_time,
        report.first_touch,
        elapsed=report.elapsed,
    )
    target_share = next((k.target for k in report.headline if k.key == "first_touch"), None)
    daily = daily_compliance_png(
        report.daily_compliance, target_share, f"First-touch compliance by day, {title}"
    )
    target = target if target.suffix else target.with_suffix(".png")  # both charts are PNGs
    second = target.with_name(f"{target.stem}-compliance{target.suffix}")
    target.write_bytes(speed)
    second.write_bytes(daily)
    return [str(target), str(second)]


async def _plan(settings: Settings, args: argparse.Namespace) -> int:
    """`handoff plan`: work back from a revenue goal to the MQLs a week it needs, as text."""
    from bot.cli.plan_text import as_text
    from bot.domain.plan import parse_goal
    from bot.services.plan import revenue_plan
    from storage import db
    from storage.plan import PlanStore

    policy = load_policy(settings.sla_file)
    _stored_history(settings.database_url)  # a read: never a new, empty database
    database = db.Database(settings.database_url)
    try:
        goal = parse_goal(" ".join(args.goal), args.per, policy.currency)
        await db.upgrade(database.engine)
        plan = await revenue_plan(PlanStore(database), policy, goal, datetime.now(UTC), args.weeks)
    except Refusal as refusal:
        raise ConfigError(refusal.message.replace("`", "")) from None
    finally:
        await database.dispose()
    print(as_text(plan))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handoff", description="Handoff: the marketing–sales SLA, run in Slack."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the HTTP server (Slack events and intake)")
    serve.add_argument("--socket", action="store_true", help="Socket Mode (needs SLACK_APP_TOKEN)")
    demo = commands.add_parser("demo", help="run the whole loop on the local Slack simulator")
    demo.add_argument("--quiet", action="store_true", help="print only the final summary")
    demo.add_argument(
        "--chart",
        default="handoff-demo-chart.png",
        metavar="FILE.png",
        help="where to write the report's speed-to-lead chart (default: %(default)s)",
    )
    check_cmd = commands.add_parser("check", help="validate an SLA file")
    check_cmd.add_argument("file", nargs="?", help="path (default: $HANDOFF_SLA_FILE or sla.yaml)")
    commands.add_parser(
        "doctor", help="check the Slack workspace: token, scopes, the SLA's channels and people"
    )
    manifest = commands.add_parser("manifest", help="print the Slack app manifest to paste")
    mode = manifest.add_mutually_exclusive_group()
    mode.add_argument("--url", help="HTTP mode: the public https:// address of `handoff serve`")
    mode.add_argument("--socket", action="store_true", help="Socket Mode: no request URLs")
    forget = commands.add_parser(
        "forget", help="erase a person's data and empty Handoff's Slack messages about them"
    )
    forget.add_argument("who", help="the person's email or the lead's external id")
    sweep = commands.add_parser("sweep", help="run one escalation sweep now, then exit")
    sweep.add_argument("--at", help="run as of this ISO-8601 instant")
    for command in (forget, sweep):
        command.add_argument(
            "--wait",
            type=_wait_seconds,
            default=DELIVERY_WAIT,
            metavar="SECONDS",
            help=f"wait at most this long for Slack to take the messages (default "
            f"{DELIVERY_WAIT:g}); what it has not taken by then, `handoff serve` delivers",
        )
    report = commands.add_parser("report", help="a period's SLA report from the database")
    report.add_argument(
        "--period",
        "--week",
        dest="period",
        help="this-week (default), last-week, this-month, last-month, this-quarter, "
        "last-quarter, YYYY-Www, YYYY-MM, YYYY-Qn or a range of days YYYY-MM-DD..YYYY-MM-DD "
        "(both included, at most a year)",
    )
    report.add_argument("--segment", help="one segment of the SLA (default: all)")
    report.add_argument("--format", choices=["text", "json", "csv"], default="text")
    report.add_argument("--chart", metavar="FILE.png", help="also write the charts as PNG")
    whatif = commands.add_parser("whatif", help="replay the stored history under a proposed SLA")
    whatif.add_argument("file", metavar="PROPOSED.yaml", help="the proposed SLA file")
    whatif.add_argument("--weeks", type=int, default=12, help="ISO weeks back, this one included")
    whatif.add_argument("--format", choices=["text", "json"], default="text")
    whatif.add_argument("--at", help="replay as of this ISO-8601 instant (default: now)")
    plan = commands.add_parser("plan", help="the MQLs a week a revenue goal needs")
    plan.add_argument("goal", nargs="+", help="the revenue goal: 2000000, 2,000,000, $2M, 500k")
    plan.add_argument("--per", choices=["month", "quarter"], help="the goal's period (month)")
    plan.add_argument("--weeks", type=int, default=26, help="weeks of history to measure rates")
    database = commands.add_parser("db", help="database commands")
    database.add_argument("action", choices=["upgrade"], help="upgrade: apply migrations")
    importer = commands.add_parser("import", help="import leads from a CSV export")
    importer.add_argument(
        "file",
        help='CSV file (HubSpot, Salesforce or Handoff columns); "-" reads standard input',
    )
    importer.add_argument("--no-progress", action="store_true", help="no progress bar")
    importer.add_argument(
        "--timezone",
        metavar="ZONE",
        help="read times without a zone in ZONE, an IANA name (default: the SLA's timezone)",
    )
    return parser


def _no_sla_file(error: PolicyError) -> str | None:
    """The one line for a server or batch command whose SLA file (`HANDOFF_SLA_FILE`, else
    ./sla.yaml) is not there, naming the setting; None for any other problem."""
    setting = os.environ.get("HANDOFF_SLA_FILE") or ""
    path = setting or "sla.yaml"
    if error.source != path or error.problems != [f"(file): {path} does not exist"]:
        return None
    fix = "set it to your SLA file's path (docs/sla-file.md; `handoff check FILE` checks one)."
    if setting:
        return f"HANDOFF_SLA_FILE names {path}, which does not exist: {fix}"
    return f"HANDOFF_SLA_FILE is not set and there is no sla.yaml here: {fix}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The reports print to stdout; the server and batch commands log what they do, `serve` as
    # JSON lines unless LOG_FORMAT=text (the others as text unless LOG_FORMAT=json).
    quiet = args.command in ("demo", "doctor", "manifest")
    kind = os.environ.get("LOG_FORMAT") or ("json" if args.command == "serve" else "text")
    level = os.environ.get("LOG_LEVEL", "").upper() or ("WARNING" if quiet else "INFO")
    levels = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING}
    wrong = (
        [f"LOG_LEVEL must be DEBUG, INFO or WARNING (not {level!r})"] if level not in levels else []
    )
    if kind not in ("json", "text"):
        wrong.append(f"LOG_FORMAT must be json or text (not {kind!r})")
    if wrong:  # one line naming only what is wrong
        print(f"handoff: {'; '.join(wrong)}.", file=sys.stderr)
        return 2
    logs.configure(levels[level], kind)
    try:
        # `check` and `manifest` read no other setting: a bad PORT does not stop them.
        if args.command == "check":
            return check(args.file or os.environ.get("HANDOFF_SLA_FILE") or "sla.yaml")
        if args.command == "manifest":
            from bot.cli.manifest import render

            print(render(args.url, args.socket), end="")
            return 0
        settings = Settings.from_env()
        if args.command == "doctor":
            from bot.cli.doctor import doctor

            return asyncio.run(doctor(settings))
        if args.command == "serve":
            asyncio.run(_serve(settings, args.socket))
        elif args.command == "demo":
            from bot.cli.demo import run_demo

            return asyncio.run(run_demo(quiet=args.quiet, chart=Path(args.chart)))
        elif args.command == "db":
            asyncio.run(_upgrade(settings))
        elif args.command == "import":
            from bot.cli.importer import Stopped, spooled, stopping

            # Standard input ("-") is copied before the import starts, so Ctrl-C (or SIGTERM,
            # SIGHUP) while it is still arriving interrupts the copy at once, and the copy is
            # deleted either way.
            try:
                with stopping() as stop, spooled(args.file) as path:
                    progress = not args.no_progress
                    return asyncio.run(_import(settings, path, progress, args.timezone, stop))
            except Stopped as stopped:  # the leads stored by then stay: the line says so
                print(stopped.message, file=sys.stderr)
                return 128 + stopped.signum  # as a shell reports a command a signal ended
        elif args.command == "sweep":
            return asyncio.run(_sweep(settings, _instant(args.at), args.wait))
        elif args.command == "forget":
            if not args.who.strip():  # an unset shell variable: a bad argument, not nobody found
                raise ConfigError(
                    "forget needs the person's email or a lead's external id: "
                    "handoff forget <email or external id>"
                )
            return asyncio.run(_forget(settings, args.who, datetime.now(UTC), args.wait))
        elif args.command == "plan":
            return asyncio.run(_plan(settings, args))
        elif args.command == "report":
            return asyncio.run(_report(settings, args))
        elif args.command == "whatif":
            return asyncio.run(_whatif(settings, args))
    except ConfigError as error:
        print(f"handoff: {error}", file=sys.stderr)
        return 2
    except PolicyError as error:
        missing = _no_sla_file(error)
        if missing:  # SPEC: a missing required value is one clear line naming it
            print(f"handoff: {missing}", file=sys.stderr)
            return 2
        print(
            f"handoff: the SLA file {error.source} has {len(error.problems)} problem(s):",
            file=sys.stderr,
        )
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        print("  (run `handoff check` for the full report)", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"handoff: {error}", file=sys.stderr)
        return 2
    except Refusal as refusal:
        print(f"handoff: {refusal.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: one line and a shell's status for SIGINT, no traceback
        print(f"handoff: {args.command} interrupted (Ctrl-C)", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:  # the reader stopped reading (`| head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except SQLAlchemyError as error:  # the database refused, or is not there
        where = make_url(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(
            f"handoff: the database {where.render_as_string(hide_password=True)} could not be "
            f"used: {reason}",
            file=sys.stderr,
        )
        return 2
    except OSError as error:  # a port in use, a database server not answering, a file
        print(f"handoff: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
