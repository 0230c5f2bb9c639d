"""A CRM row's lease outlasts every request sent under it (SQLite and PostgreSQL): at the start
of each request the row is still leased for at least the adapter's `request_deadline` (the
longest one request may take) and a margin, however long the request waited for the CRM's
window and however long the requests before it took; so no replica takes the row and writes it
again while a request of it is in flight. A write that starts on a fresh lease and does not
wait costs no extra UPDATE.

Time is virtual: the worker's clock, its window and the requests move one clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from bot.crm.worker import CrmWorker
from bot.domain.effects import Send
from bot.domain.policy import Crm
from bot.metrics import Metrics
from bot.services.leads import Services
from storage.crm import CrmOutboxStore
from tests.integration.test_crm_store import claimed

WALL = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DEADLINE = 30.0  # the adapter's longest request: HubSpot's and Salesforce's default timeout
NEEDED = DEADLINE + 10.0  # ... and the margin the worker keeps beyond it


class Time:
    """Seconds that move only when the worker waits for the window, or a request takes time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return WALL + timedelta(seconds=self.now - 1000.0)

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Rows(CrmOutboxStore):
    """The outbox, counting the UPDATEs that make a lease longer."""

    extended = 0

    async def extend(self, row_id: int, until: datetime, longer: datetime) -> bool:
        self.extended += 1
        return await super().extend(row_id, until, longer)


class Requests:
    """A CRM whose sync sends `count` requests, each `takes` seconds long, noting at the start
    of each how long the row stays leased, as the database holds it (what a replica sees)."""

    name = "hubspot"
    request_deadline = DEADLINE

    def __init__(self, rows: CrmOutboxStore, time: Time, count: int, takes: float) -> None:
        self.rows, self.time, self.count, self.takes = rows, time, count, takes
        self.left: list[float] = []

    async def sync(self, _record: object) -> str | None:
        for _ in range(self.count):
            async with self.pace.request():  # type: ignore[attr-defined]
                (row,) = await self.rows.rows()
                until = row["lease_until"]
                until = until if until.tzinfo else until.replace(tzinfo=UTC)
                self.left.append((until - self.time.wall()).total_seconds())
                self.time.now += self.takes
        return None

    async def aclose(self) -> None:
        pass


def worker_for(
    services: Services, adapter: Requests, rows: Rows, time: Time, crm: Crm
) -> CrmWorker:
    async def alert(_send: Send) -> None:
        raise AssertionError("no alert expected")

    return CrmWorker(
        adapter,  # type: ignore[arg-type]
        rows,
        SimpleNamespace(current=services.policy.model_copy(update={"crm": crm})),
        Metrics(),
        time.wall,
        alert,
        writes_per_second=crm.writes_per_second,
        window_seconds=crm.window_seconds,
        monotonic=time,
        sleep=time.sleep,
    )


async def written(services: Services, count: int, takes: float, crm: Crm) -> Requests:
    """One sync row written by a worker with the default lease; the adapter that wrote it."""
    services.store.db.crm = crm
    await claimed(services, "lease-1")
    rows, time = Rows(services.store.db), Time()
    adapter = Requests(rows, time, count, takes)
    worker = worker_for(services, adapter, rows, time, crm)
    assert await worker._round() == 1
    assert [row["state"] for row in await rows.rows()] == ["done"]
    assert len(adapter.left) == count
    return adapter


@pytest.mark.parametrize("every", [5.0, 15.0, 25.0, 35.0, 45.0, 55.0, 60.0])
@pytest.mark.parametrize("takes", [0.0, 12.0, 29.0])
async def test_every_request_starts_with_its_deadline_and_a_margin_of_lease_left(
    services: Services, every: float, takes: float
) -> None:
    """Four requests, each waiting `every` seconds for the window (the first excepted) and
    taking `takes`: whenever one starts, a replica could not take the row for at least
    the deadline and the margin (with the old rule, a request could start with 30 s left and
    a 30 s timeout)."""
    one_each = Crm(kind="hubspot", writes_per_second=1 / every, window_seconds=every)
    adapter = await written(services, count=4, takes=takes, crm=one_each)
    assert min(adapter.left) >= NEEDED, adapter.left


async def test_a_write_on_a_fresh_lease_that_does_not_wait_makes_the_lease_no_longer(
    services: Services,
) -> None:
    """The common path: a few quick requests with room in the window. The fresh lease already
    covers each request's deadline and margin, so there is no extra UPDATE."""
    adapter = await written(services, count=3, takes=1.0, crm=Crm(kind="hubspot"))
    assert min(adapter.left) >= NEEDED
    assert isinstance(adapter.rows, Rows) and adapter.rows.extended == 0


async def test_a_lease_shorter_than_one_request_needs_is_refused(services: Services) -> None:
    """A lease shorter than the adapter's deadline and the margin could not fence a request."""
    rows, time = Rows(services.store.db), Time()
    adapter = Requests(rows, time, count=1, takes=0.0)
    with pytest.raises(ValueError, match="lease"):
        CrmWorker(
            adapter,  # type: ignore[arg-type]
            rows,
            SimpleNamespace(current=services.policy),
            Metrics(),
            time.wall,
            lambda _send: asyncio.sleep(0),
            lease_seconds=DEADLINE,
        )
