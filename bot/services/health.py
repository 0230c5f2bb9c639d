"""Readiness (`GET /readyz`): whether this process should receive traffic, check by check.

`/healthz` says the process is alive. Ready means more: the database answers, the scheduler that
runs the sweeps and digests is running (unless it is turned off for cron), Slack deliveries are
not stuck (the oldest waiting one is younger than HANDOFF_READY_MAX_OUTBOX_AGE), and the CRM is
not refusing Handoff (until a CRM is configured, there is none to refuse), and Slack does not
refuse the bot token (this replica's delivery worker met a refusal, or Slack's `app_uninstalled` /
`tokens_revoked` event, and auth.test has not accepted the token since). A load balancer takes
a replica out of rotation while any check fails; the answer names each check and why. Once
SIGTERM has come, the one check is `shutdown`: the replica is draining and will stop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


# Without a `crm:` section there is no CRM to refuse.
CRM = Check("crm", True, "none configured")


class CrmState(Protocol):
    """The CRM worker as health checks see it (bot/crm/worker.py)."""

    @property
    def name(self) -> str: ...

    @property
    def degraded(self) -> str | None:
        """What the CRM said while it refuses Handoff's writes (None: it takes them)."""
        ...

    @property
    def reads_refused(self) -> str | None:
        """What the CRM said while it refuses the reads its notifications need (None: it
        answers them). Not a readiness failure: /healthz only."""
        ...

    async def oldest_pending(self) -> datetime | None: ...


def crm_health(crm: CrmState | None) -> str:
    """`/healthz`'s `crm` field: none, ok, or degraded with what the CRM said (to the writes,
    else to the reads its notifications need)."""
    if crm is None:
        return "none"
    refusing, reads = crm.degraded, crm.reads_refused
    if refusing:
        return f"degraded: the CRM ({crm.name}) refuses Handoff's writes: {refusing}"
    return f"degraded: the CRM ({crm.name}) refuses Handoff's reads: {reads}" if reads else "ok"


class Readiness:
    def __init__(
        self,
        ping: Callable[[], Awaitable[object]],
        oldest_pending: Callable[[], Awaitable[datetime | None]],
        scheduler: Callable[[], bool | str | None],
        clock: Callable[[], datetime],
        max_outbox_age: timedelta,
        crm: CrmState | None = None,
        slack_token: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.ping = ping
        self.oldest_pending = oldest_pending
        # True: running; False: stopped; None: turned off; text: running, and what is wrong
        self.scheduler = scheduler
        self.clock = clock
        self.max_outbox_age = max_outbox_age
        self.crm = crm
        self.slack_token = slack_token  # why Slack refuses the bot token (None: it does not)
        # Set on SIGTERM while `serve` drains (HANDOFF_SHUTDOWN_DRAIN): why it is stopping.
        self.stopping: str | None = None

    async def checks(self) -> list[Check]:
        if self.stopping is not None:  # the load balancer takes it out while it still answers
            return [Check("shutdown", False, self.stopping)]
        try:
            await self.ping()
        except Exception as error:  # the point of a readiness check is to say so
            database = Check("database", False, f"does not answer: {str(error)[:200]}")
            outbox = Check("outbox", False, "unknown: the database does not answer")
            crm = CRM if self.crm is None else Check("crm", False, "unknown: no database")
            return [database, self._scheduler(), outbox, crm, self._slack_token()]
        database = Check("database", True, "answers")
        outbox, crm = await self._outbox(), await self._crm()
        return [database, self._scheduler(), outbox, crm, self._slack_token()]

    def _slack_token(self) -> Check:
        refused = self.slack_token()
        if refused is None:
            return Check("slack_token", True, "Slack has not refused it")
        return Check(
            "slack_token",
            False,
            f"Slack refuses Handoff's bot token ({refused}), so nothing is delivered: reinstall "
            "the app to the workspace, or set SLACK_BOT_TOKEN to its new token and restart",
        )

    def _scheduler(self) -> Check:
        running = self.scheduler()
        if running is None:
            return Check("scheduler", True, "off (HANDOFF_SWEEP_SECONDS=0: cron runs the sweep)")
        if isinstance(running, str):
            return Check("scheduler", False, running)
        return Check("scheduler", running, "running" if running else "not running")

    async def _outbox(self) -> Check:
        try:
            oldest = await self.oldest_pending()
        except Exception as error:
            return Check("outbox", False, f"cannot be read: {str(error)[:200]}")
        if oldest is None:
            return Check("outbox", True, "nothing waits")
        age = max(timedelta(0), self.clock() - oldest)
        limit = self.max_outbox_age
        words = f"the oldest delivery has waited {age.total_seconds():.0f} s"
        if limit and age > limit:  # HANDOFF_READY_MAX_OUTBOX_AGE=0: not a readiness check
            return Check("outbox", False, f"{words} (limit {limit.total_seconds():.0f} s)")
        return Check("outbox", True, words)

    async def _crm(self) -> Check:
        """Not refusing, and the oldest CRM write waiting is younger than the same limit."""
        if self.crm is None:
            return CRM
        refusing = self.crm.degraded
        if refusing:
            return Check("crm", False, f"the CRM ({self.crm.name}) refuses writes: {refusing}")
        try:
            oldest = await self.crm.oldest_pending()
        except Exception as error:
            return Check("crm", False, f"its outbox cannot be read: {str(error)[:200]}")
        if oldest is None:
            return Check("crm", True, f"{self.crm.name}: nothing waits")
        age = max(timedelta(0), self.clock() - oldest)
        limit = self.max_outbox_age
        words = f"{self.crm.name}: the oldest write has waited {age.total_seconds():.0f} s"
        if limit and age > limit:
            return Check("crm", False, f"{words} (limit {limit.total_seconds():.0f} s)")
        return Check("crm", True, words)
