"""Back-pressure on intake: when Slack deliveries fall behind, intake says "later" instead of
queueing without bound.

Every lead, CRM activity and answer writes Slack messages to the outbox, delivered at Slack's
pace (1 post per second per channel by default). A burst of 10,000 leads is fine; a CRM that
keeps sending faster than Slack takes them for hours is not: the outbox would grow without bound
and every lead would reach its rep later and later. Past `limit` pending deliveries, intake
answers 503 with Retry-After (the seconds the outbox needs, at the pace, to fall back under the
limit), stores nothing, and the CRM's retry brings the lead later, once (intake is idempotent).

The count is read from the database (so every replica sees the same backlog), at most once a
second while the backlog is under half the limit. Past half the limit it is read again when it
is 100 ms old, or sooner when the requests admitted since could have brought it to the limit
(each counted as `ROWS_PER_REQUEST` deliveries: its post and an App Home), not on every request:
under a burst that count was most of intake's cost (issue 15). The bound: a refusal decides on
this process's admissions exactly (at that rate) and on other writers' (another replica, the
sweep) at most 100 ms late, so the limit is passed by at most what they write in 100 ms.

The database itself can fall behind too (a lock held, a slow disk, a failover): intake
requests then wait on it and pile up in the process. Past `max_in_flight` requests under way,
intake answers 503 at once (Retry-After: 1) instead of queueing without bound.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bot.domain.refusal import Reason, Refusal

MAX_RETRY_AFTER = 300  # seconds: a CRM retrying later than that should just retry
FRESH_FOR = 1.0  # seconds a count is trusted while the backlog is under half the limit
NEAR_FRESH_FOR = 0.1  # seconds a count is trusted past half the limit
ROWS_PER_REQUEST = 2  # deliveries an admitted request is taken to add (its post, an App Home)


class Backlog:
    def __init__(
        self,
        pending: Callable[[], Awaitable[int]],
        limit: int,
        drained_per_second: float,
        monotonic: Callable[[], float] = time.monotonic,
        max_in_flight: int = 0,
    ) -> None:
        self.pending = pending
        self.max_in_flight = max_in_flight  # 0: no limit
        self.in_flight = 0
        self.limit = limit
        self.drained_per_second = drained_per_second
        self.monotonic = monotonic
        self._counted: int | None = None
        self._counted_at = 0.0
        self._admitted = 0  # requests let in since the count

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Intake under way (counted while the block runs); Refusal (BUSY, with retry_after)
        if too many are waiting on the database already."""
        if self.max_in_flight and self.in_flight >= self.max_in_flight:
            raise Refusal(
                f"Handoff's database is behind: {self.in_flight} intake requests are waiting on "
                f"it (the limit is {self.max_in_flight}, HANDOFF_INTAKE_MAX_IN_FLIGHT). Nothing "
                "was stored: send it again in 1 s.",
                Reason.BUSY,
                retry_after=1,
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def admit(self) -> None:
        """Return if the outbox is not behind; raise Refusal (BUSY, with retry_after) if it is."""
        if self.limit <= 0:
            return
        counted = self._counted
        if counted is None or self._stale(counted):
            counted = self._counted = await self.pending()
            self._counted_at = self.monotonic()
            self._admitted = 0
        if counted >= self.limit:
            behind = counted - self.limit + 1
            seconds = min(MAX_RETRY_AFTER, max(1, math.ceil(behind / self.drained_per_second)))
            raise Refusal(
                f"Handoff is behind: {counted:,} Slack messages wait to be delivered "
                f"(the limit is {self.limit:,}, HANDOFF_INTAKE_MAX_BACKLOG). Nothing was "
                f"stored: send it again in {seconds} s.",
                Reason.BUSY,
                retry_after=seconds,
            )
        self._admitted += 1

    def _stale(self, counted: int) -> bool:
        """Whether the count must be read again (see the module's docstring)."""
        age = self.monotonic() - self._counted_at
        estimate = counted + ROWS_PER_REQUEST * self._admitted
        if estimate < self.limit / 2:
            return age > FRESH_FOR
        return age > NEAR_FRESH_FOR or estimate >= self.limit
