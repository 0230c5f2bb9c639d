"""The CRM outbox in storage (SQLite and PostgreSQL): rows written with the change, due in
order per lead, leased once across workers, sync rows collapsed, retention and erasure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from bot.cli.stack import ERASURE_KEY
from bot.domain.erasure import ErasureKey
from bot.domain.policy import Crm, Policy
from bot.services.erasure import forget
from bot.services.leads import Services
from storage import db
from storage.crm import CrmOutboxStore
from storage.repository import Store
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes, services_on

WALL = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


async def claimed(services: Services, external_id: str, rep: str = "U0REP1") -> int:
    result = await services.intake(lead_payload(external_id), MONDAY)
    assert result.lead is not None
    await services.claim(result.lead.id, rep, MONDAY + timedelta(minutes=4))
    return result.lead.id


def kinds(rows: list[dict[str, object]], lead_id: int) -> list[object]:
    return [row["kind"] for row in rows if row["lead_id"] == lead_id]


async def test_without_a_crm_no_row_is_written_and_no_statement_added(
    services: Services,
) -> None:
    database = services.store.db
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engines = [e for e in (database._sqlite, database.engine.sync_engine) if e is not None]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        lead_id = await claimed(services, "hs-1")
        await services.log_attempt(lead_id, "U0REP1", "call", MONDAY + timedelta(minutes=9))
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", seen)
    assert statements and not [s for s in statements if "crm_outbox" in s]
    assert await CrmOutboxStore(database).rows() == []


async def test_hubspot_writes_collapse_syncs_and_keep_one_note_per_disposition(
    services: Services,
) -> None:
    services.store.db.crm = Crm(kind="hubspot")
    crm = CrmOutboxStore(services.store.db)
    lead_id = await claimed(services, "hs-1")
    await services.log_attempt(lead_id, "U0REP1", "call", MONDAY + timedelta(minutes=9))
    rows = await crm.rows()
    # Intake, claim and attempt all changed the record, but one sync waits for them all: it
    # renders the lead as it is when it is sent.
    assert kinds(rows, lead_id) == ["crm_sync"]

    # Once that sync is in flight, a new change needs a new one (the first rendered too early).
    assert await crm.lease(rows[0]["id"], WALL, WALL + timedelta(seconds=30)) is not None
    await services.dispose(lead_id, "U0REP1", "qualified", MONDAY + timedelta(minutes=20))
    rows = await crm.rows()
    assert kinds(rows, lead_id) == ["crm_sync", "crm_sync", "crm_note"]
    note = rows[2]
    assert note["payload"]["code"] == "qualified" and note["payload"]["rep"] == "U0REP1"
    assert len(str(note["key"])) == 32


async def test_due_rows_go_in_order_per_lead(services: Services) -> None:
    services.store.db.crm = Crm(kind="webhook")
    crm = CrmOutboxStore(services.store.db)
    first = await claimed(services, "hs-1")
    second = await claimed(services, "hs-2")
    due = await crm.due(WALL)
    # One row per lead is due: the first pending of each.
    assert [lead for _, lead in due] == [first, second]
    head = due[0][0]
    item = await crm.lease(head, WALL, WALL + timedelta(seconds=30))
    assert item is not None and item.kind == "crm_event" and item.payload["type"] == "received"
    # Leased: neither it nor the next row of its lead is due.
    assert [lead for _, lead in await crm.due(WALL)] == [second]
    later = [row for row in await crm.rows() if row["lead_id"] == first][1]
    assert await crm.lease(later["id"], WALL, WALL + timedelta(seconds=30)) is None
    # A retry later holds the lead's next rows back too: order per lead, even on failure.
    await crm.retry(item, WALL + timedelta(minutes=5), "503", unknown=True)
    assert [lead for _, lead in await crm.due(WALL)] == [second]
    again = await crm.lease(head, WALL + timedelta(minutes=5), WALL + timedelta(minutes=6))
    assert again is not None and again.unknown and again.attempts == 2
    await crm.done(again, MONDAY, crm_id="contact-9")
    assert (await services.lead(first)).crm_id == "contact-9"
    assert (await crm.due(WALL + timedelta(minutes=5)))[0] == (later["id"], first)


async def test_a_write_that_found_the_record_moved_ties_the_lead_to_it_unless_tied_since(
    services: Services,
) -> None:
    """A write that found the lead's record merged away or deleted (HubSpot answers a merged
    contact's read under the id of the one that remains) ties the lead to the record it wrote
    to, so its next writes go there at once; a lead tied meanwhile to another record (a merge
    the CRM told) keeps that one."""
    services.store.db.crm = Crm(kind="hubspot")
    crm = CrmOutboxStore(services.store.db)
    lead_id = await claimed(services, "hs-1")
    await services.store.set_crm_id(lead_id, "contact-9")
    (row,) = await crm.rows()
    item = await crm.lease(row["id"], WALL, WALL + timedelta(seconds=30))
    assert item is not None
    await crm.done(item, MONDAY, crm_id="contact-12", was="contact-9")
    assert (await services.lead(lead_id)).crm_id == "contact-12"
    # A write that started from contact-9 too, finishing after: the lead stays where it is.
    await crm.done(item, MONDAY, crm_id="contact-13", was="contact-9")
    assert (await services.lead(lead_id)).crm_id == "contact-12"


async def test_two_workers_leasing_at_once_take_each_row_once(
    database_url: str, policy: Policy
) -> None:
    database = db.Database(database_url)
    other = db.Database(database_url)
    await db.upgrade(database.engine)
    try:
        services = await services_on(Store(database, ErasureKey(ERASURE_KEY)), policy)
        database.crm = Crm(kind="webhook")
        for index in range(6):
            await claimed(services, f"hs-{index}")
        rows = [CrmOutboxStore(database), CrmOutboxStore(other)]
        taken: list[int] = []

        async def worker(crm: CrmOutboxStore) -> None:
            wall = WALL
            while True:
                due = await crm.due(wall)
                if not due:
                    return
                for row_id, _ in due:
                    item = await crm.lease(row_id, wall, wall + timedelta(minutes=1))
                    if item is not None:
                        taken.append(item.id)
                        await crm.done(item, MONDAY)

        await asyncio.gather(*(worker(crm) for crm in rows))
        every = [row["id"] for row in await rows[0].rows()]
        assert sorted(taken) == every and len(set(taken)) == len(taken)
    finally:
        await other.dispose()
        await database.dispose()


async def test_prune_deletes_syncs_and_empties_keyed_rows(services: Services) -> None:
    services.store.db.crm = Crm(kind="hubspot")
    crm = CrmOutboxStore(services.store.db)
    lead_id = await claimed(services, "hs-1")
    await services.dispose(lead_id, "U0REP1", "qualified", MONDAY + timedelta(minutes=20))
    for row in await crm.rows():
        item = await crm.lease(row["id"], WALL, WALL + timedelta(seconds=30))
        assert item is not None
        await crm.done(item, MONDAY + timedelta(days=1))
    assert await crm.prune(MONDAY + timedelta(days=1)) == 0  # not older than the cut
    assert await crm.prune(MONDAY + timedelta(days=9)) == 2
    rows = await crm.rows()
    assert [(row["kind"], row["payload"]) for row in rows] == [("crm_note", {})]
    assert rows[0]["key"]  # the key stays taken
    assert await crm.prune(MONDAY + timedelta(days=9)) == 0


async def test_erasure_empties_the_leads_rows_and_sends_none(services: Services) -> None:
    services.store.db.crm = Crm(kind="hubspot")
    crm = CrmOutboxStore(services.store.db)
    lead_id = await claimed(services, "hs-1")
    await services.dispose(
        lead_id,
        "U0REP1",
        "not_a_fit",
        MONDAY + timedelta(minutes=20),
        reason="No budget",
        note="Priya",
    )
    assert "Priya" in str(await crm.rows())
    await forget(services.store, Wakes(), "hs-1@northwind.example", "cli", MONDAY)
    rows = await crm.rows()
    assert "Priya" not in str(rows) and rows
    assert {row["state"] for row in rows} == {"done"}
    assert await crm.due(WALL) == []


async def test_a_write_finishing_after_the_leads_erasure_ties_it_to_no_record(
    services: Services,
) -> None:
    """A lead erased (`handoff forget`) while its first write was in flight keeps no CRM id:
    the contact the write found by email is not stored in plain on the erased lead, where the
    CRM's next notification about that contact would find it (SPEC: erasure keeps no personal
    data; the CRM id only as a digest)."""
    services.store.db.crm = Crm(kind="hubspot")
    crm = CrmOutboxStore(services.store.db)
    lead_id = await claimed(services, "hs-1")
    (row,) = await crm.rows()
    item = await crm.lease(row["id"], WALL, WALL + timedelta(seconds=30))
    assert item is not None
    await forget(services.store, Wakes(), "hs-1@northwind.example", "cli", MONDAY)
    await crm.done(item, MONDAY, crm_id="contact-12", was=None)
    assert (await services.lead(lead_id)).crm_id is None
    assert await services.store.by_crm_id("contact-12") is None
