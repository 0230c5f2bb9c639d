"""The managers' alerts settle over the real store (SQLite and PostgreSQL): a burst of claims
settles each claimed lead's open alerts with one query for them all, and an alert settles
once (the claim's words stay when the lead is closed later)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.services.leads import Services
from storage.outbox import OutboxStore
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, statements
from tests.integration.test_reassign_snooze import OWNER, PEER, sweeper

ALERTED = MONDAY + timedelta(minutes=61)  # 12:01 in Sydney: both claims are overdue


def alert_queries() -> Any:
    """The statements any engine sends inside the block that look for alerts to settle."""
    return statements("FROM outbox", "LIKE")


async def posted(services: Services, external_id: str) -> int:
    """A hot enterprise lead whose post is in Slack."""
    result = await services.intake(lead_payload(external_id), MONDAY)
    assert result.lead is not None
    await services.store.mark_posted(result.lead.id, "C0ENT", f"1790000000.{external_id}", MONDAY)
    return result.lead.id


async def settles(services: Services) -> list[tuple[int, str]]:
    rows = await OutboxStore(services.store.db).rows()
    return [
        (row["lead_id"], row["payload"]["text"]) for row in rows if row["kind"] == "settle_alert"
    ]


async def test_a_burst_of_claims_settles_its_alerts_with_one_query(services: Services) -> None:
    first, second = await posted(services, "hs-1"), await posted(services, "hs-2")
    assert (await sweeper(services).run(ALERTED)).changed == 2  # the managers hear of both
    assert await settles(services) == []

    with alert_queries() as queries:
        await asyncio.gather(
            services.claim(first, OWNER, ALERTED), services.claim(second, PEER, ALERTED)
        )

    assert len(queries) == 1  # not one per claim
    assert sorted(await settles(services)) == [
        (
            first,
            f"✅ Claimed by <@{OWNER}> at Mon 12:01 AEDT: *Priya Raman* (Northwind Logistics) "
            "in <#C0ENT>.",
        ),
        (
            second,
            f"✅ Claimed by <@{PEER}> at Mon 12:01 AEDT: *Priya Raman* (Northwind Logistics) "
            "in <#C0ENT>.",
        ),
    ]
    # Closed later: the alert said what became of it already; nothing settles it again.
    later = ALERTED + timedelta(minutes=5)
    await services.log_attempt(first, OWNER, "call", later)
    await services.dispose(first, OWNER, "qualified", later)
    assert len(await settles(services)) == 2
