"""The CRM worker keeps to the portal's own limit, counted in HTTP requests (SQLite and
PostgreSQL): the real HubSpot adapter (the official client) against the local HubSpot portal
enforcing HubSpot's rolling burst limit, with `writes_per_second × window_seconds` set to that
limit. A write that takes several requests (the contact looked up by email, then the PATCH)
takes a turn for each, so no window ever holds more than the limit, nothing is answered 429,
and every write arrives once.

Time is virtual: the portal, the adapter and the worker's window share one clock, which moves
when the worker waits for the window (no test sleeps for it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from bot.crm.hubspot import HubSpotAdapter
from bot.crm.port import CrmDailyLimit
from bot.crm.worker import CrmWorker
from bot.crmfake.hubspot import HubSpotFake
from bot.domain.effects import Send
from bot.domain.policy import Crm
from bot.metrics import Metrics
from bot.services.leads import Services
from storage.crm import CrmOutboxStore
from tests.integration.conftest import MONDAY
from tests.integration.test_crm_store import claimed

WALL = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
EMAILS = {"U0REP1": "maya@example.com"}
LIMIT, WINDOW = 5, 10.0  # the portal's: 5 requests in any 10 s


class Time:
    """Seconds that move only when the worker waits (its `sleep`)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return WALL + timedelta(seconds=self.now - 1000.0)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def time() -> Time:
    return Time()


@pytest.fixture
async def hub(time: Time) -> AsyncIterator[HubSpotFake]:
    fake = await HubSpotFake(clock=time, burst=(LIMIT, WINDOW)).start()
    yield fake
    await fake.stop()  # raises if it answered outside HubSpot's specs


async def _emails(user_id: str) -> str | None:
    return EMAILS.get(user_id)


def worker_for(
    services: Services,
    hub: HubSpotFake,
    time: Time,
    crm: Crm,
    lease_seconds: float | None = None,
    timeout: float = 30.0,
) -> CrmWorker:
    adapter = HubSpotAdapter(
        crm, hub.token, hub.base_url, emails=_emails, clock=time, timeout=timeout
    )

    async def alert(_send: Send) -> None:
        raise AssertionError("no alert expected")

    return CrmWorker(
        adapter,
        CrmOutboxStore(services.store.db),
        SimpleNamespace(current=services.policy.model_copy(update={"crm": crm})),
        Metrics(),
        time.wall,
        alert,
        writes_per_second=crm.writes_per_second,
        window_seconds=crm.window_seconds,
        lease_seconds=lease_seconds,
        monotonic=time,
        sleep=time.sleep,
    )


async def drained(worker: CrmWorker, time: Time, hub: HubSpotFake) -> None:
    """Run the worker until every write is done; while the rest wait for a later time (a
    429's `Retry-After`, which only a pace that sends too much meets), a second passes."""
    worker.start()
    try:
        for _ in range(600):
            if not await worker.rows.pending():
                return
            if await worker.drain(seconds=5.0) and hub.limited:
                time.now += 1.0
                worker.deliver_soon()
        raise AssertionError(f"{await worker.rows.pending()} CRM writes still wait")
    finally:
        await worker.close()


async def test_writes_of_several_requests_each_keep_to_the_portals_limit_in_every_window(
    services: Services, hub: HubSpotFake, time: Time
) -> None:
    crm = Crm(kind="hubspot", writes_per_second=LIMIT / WINDOW, window_seconds=WINDOW)
    services.store.db.crm = crm
    owner = hub.add_owner(EMAILS["U0REP1"], "Maya", "Chen")
    contacts = {}
    for n in range(8):
        # No `crm_id`: each lead's first write looks its contact up by email, then PATCHes it.
        lead_id = await claimed(services, f"pace-{n}")
        contacts[lead_id] = hub.add_contact(f"pace-{n}@northwind.example")
        await services.dispose(lead_id, "U0REP1", "qualified", MONDAY + timedelta(minutes=20))
    rows = await CrmOutboxStore(services.store.db).rows()
    assert len(rows) == 16  # per lead: one sync (2 requests), one note (1)

    started = time.now
    await drained(worker_for(services, hub, time, crm), time, hub)

    assert hub.limited == []  # HubSpot never answered 429
    assert hub.most_in_window(WINDOW) <= LIMIT
    for lead_id, contact in contacts.items():
        shown = hub.contact(contact)
        assert shown["hs_lead_status"] == "CONNECTED" and shown["hubspot_owner_id"] == owner
        (note,) = hub.notes_of(contact)  # once each
        assert "Qualified" in note["hs_note_body"]
        assert (await services.lead(lead_id)).crm_id == contact
    assert [row["state"] for row in await CrmOutboxStore(services.store.db).rows()] == ["done"] * 16
    # 8 look-ups, 8 PATCHes, 8 notes and the owners list: 25 requests, and a write of one
    # request costs one turn, so they take the least time the limit allows: 5 at once, then 5
    # every 10 s.
    assert len(hub.requests) == 25
    assert time.now - started == pytest.approx(40.0, abs=0.5)


async def test_a_write_waiting_for_the_window_keeps_its_lease(
    services: Services, hub: HubSpotFake, time: Time
) -> None:
    """A write's later request waits for the window while the write is leased: the lease is
    made longer first, so a replica cannot take the row and write it a second time."""
    crm = Crm(kind="hubspot", writes_per_second=0.1, window_seconds=WINDOW)  # 1 per 10 s
    services.store.db.crm = crm
    hub.add_owner(EMAILS["U0REP1"], "Maya", "Chen")
    lead_id = await claimed(services, "pace-lease")
    contact = hub.add_contact("pace-lease@northwind.example")
    replica = CrmOutboxStore(services.store.db)
    (row,) = await replica.rows()
    taken: list[object] = []
    wait = time.sleep

    async def replica_tries(seconds: float) -> None:
        await wait(seconds)  # the first worker waits; by its second wait, 20 s have passed
        taken.append(await replica.lease(row["id"], time.wall(), time.wall()))

    time.sleep = replica_tries  # type: ignore[method-assign]
    # Requests of at most 3 s (13 s of lease at each start), on a first lease of 14 s: it has
    # run out by the write's third request, unless it was made longer.
    worker = worker_for(services, hub, time, crm, lease_seconds=14.0, timeout=3.0)
    await drained(worker, time, hub)

    assert taken and not any(taken)  # the replica never got the row
    assert hub.limited == [] and hub.most_in_window(WINDOW) <= 1
    assert hub.contact(contact)["hs_lead_status"] == "OPEN"
    assert (await services.lead(lead_id)).crm_id == contact
    (done,) = await replica.rows()
    assert done["state"] == "done" and done["attempts"] == 1


async def test_a_request_waiting_for_the_window_when_the_daily_limit_is_met_is_not_sent(
    services: Services, hub: HubSpotFake, time: Time
) -> None:
    """Two requests wait for the window's one room (an inbound webhook's read and another):
    the first that goes meets HubSpot's daily limit (429, `policyName` DAILY: every request is
    refused until the account's midnight, its "API usage guidelines"). The other, which began
    waiting before that was known, is refused unsent when its turn comes, not sent to be
    refused too (docs/crm-hubspot.md: a replica sends at most one refused request a day)."""
    crm = Crm(kind="hubspot", writes_per_second=0.1, window_seconds=10.0)  # 1 in any 10 s
    worker = worker_for(services, hub, time, crm)
    async with worker.request():  # the window's room, taken
        pass
    sent: list[int] = []

    async def one() -> None:
        async with worker.request():
            sent.append(1)
            if len(sent) == 1:
                raise CrmDailyLimit("HubSpot's daily limit is used up")

    results = await asyncio.gather(one(), one(), return_exceptions=True)
    assert sent == [1]
    assert [type(result) for result in results] == [CrmDailyLimit, CrmDailyLimit]
