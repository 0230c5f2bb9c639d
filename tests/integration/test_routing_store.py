"""Routing through the intake use case on SQLite and PostgreSQL: the weighted rotation kept in
the database, caps, the fallback, lead-to-account matching, and concurrent intake from two
engines (replicas) staying fair."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from bot.domain.policy import Policy, parse_policy, snapshot
from storage.repository import Store
from tests.conftest import lead_payload, migrated_store
from tests.integration.conftest import MONDAY, services_on


def routed_policy(policy: Policy, **enterprise: Any) -> Policy:
    content = snapshot(policy)
    content["segments"][0] |= enterprise
    return parse_policy(content)


async def suggested(store: Store, policy: Policy, count: int, start: int = 0) -> list[str | None]:
    services = await services_on(store, policy)
    owners = []
    for number in range(start, start + count):
        payload = lead_payload(f"x-{number}", email=f"p{number}@acme{number}.example")
        payload["company"] = payload["company"] | {"domain": f"acme{number}.example"}
        stored = await services.intake(payload, MONDAY + timedelta(minutes=number))
        owners.append(stored.lead.suggested_owner)  # type: ignore[union-attr]
    return owners


async def test_weights_are_kept_in_the_database(store: Store, policy: Policy) -> None:
    weighted = routed_policy(policy, weights={"U0REP1": 2})
    assert await suggested(store, weighted, 3) == ["U0REP1", "U0REP2", "U0REP1"]
    # A restart (new use cases over the same database) resumes where the rotation stood.
    assert await suggested(store, weighted, 3, start=3) == ["U0REP1", "U0REP2", "U0REP1"]
    services = await services_on(store, weighted)
    lead = await services.lead(6)
    assert lead.route_reason == {
        "rule": "round_robin",
        "rep": "U0REP1",
        "week": 4,
        "week_total": 6,
        "weight": 2,
        "cap": None,
    }


async def test_caps_skip_a_rep_and_then_the_fallback_takes_it(store: Store, policy: Policy) -> None:
    capped = routed_policy(policy, cap={"open": 1, "per_day": 2})
    services = await services_on(store, capped)
    assert await suggested(store, capped, 1) == ["U0REP1"]
    await services.claim(1, "U0REP1", MONDAY + timedelta(minutes=1))  # U0REP1 owns 1: the cap
    assert await suggested(store, capped, 3, start=1) == ["U0REP2", "U0REP2", "U0MGR1"]
    fallback = await services.lead(4)
    assert fallback.route_reason == {
        "rule": "fallback",
        "rep": "U0MGR1",
        "why": "nobody available (all at cap)",
    }
    # The next business day the daily cap starts again; the open cap still holds U0REP1.
    tomorrow = await services.intake(lead_payload("x-next"), MONDAY + timedelta(days=1))
    assert tomorrow.lead.suggested_owner == "U0REP2"  # type: ignore[union-attr]


async def test_a_lead_of_an_owned_account_goes_to_its_owner(store: Store, policy: Policy) -> None:
    matching = parse_policy(snapshot(policy) | {"account_matching": True})
    services = await services_on(store, matching)
    first = await services.intake(lead_payload("a-1"), MONDAY)
    assert first.lead.suggested_owner == "U0REP1"  # type: ignore[union-attr]
    await services.claim(1, "U0REP2", MONDAY + timedelta(minutes=1))  # claimed by the other rep
    company = lead_payload()["company"] | {"domain": "WWW.Northwind.example"}
    second = await services.intake(
        lead_payload("a-2", email="li@northwind.example", company=company), MONDAY
    )
    lead = second.lead  # type: ignore[union-attr]
    assert lead.suggested_owner == "U0REP2"
    assert lead.route_reason == {
        "rule": "account_match",
        "rep": "U0REP2",
        "lead": 1,
        "domain": "northwind.example",
    }
    free = lead_payload(
        "a-3", email="li@gmail.com", company={"name": "Northwind", "employees": 2000}
    )
    third = await services.intake(free, MONDAY)
    assert third.lead.route_reason["rule"] == "round_robin"  # type: ignore[union-attr,index]


async def test_two_replicas_taking_intake_at_once_stay_fair(
    database_url: str, policy: Policy
) -> None:
    """Two stores (two engines: two replicas) take 40 leads at once: every rep of a 3:1 pool
    gets exactly their share, and each turn was taken once."""
    weighted = routed_policy(policy, weights={"U0REP1": 3})
    async with migrated_store(database_url) as one, migrated_store(database_url) as two:
        first, second = await services_on(one, weighted), await services_on(two, weighted)

        async def take(services: Any, number: int) -> str:
            payload = lead_payload(f"r-{number}", email=f"p{number}@acme{number}.example")
            payload["company"] = payload["company"] | {"domain": f"acme{number}.example"}
            stored = await services.intake(payload, MONDAY)
            return str(stored.lead.suggested_owner)

        owners = await asyncio.gather(
            *(take(first if number % 2 else second, number) for number in range(40))
        )
        assert Counter(owners) == {"U0REP1": 30, "U0REP2": 10}
        clock, loads = await one.rotation_standing(
            "enterprise", ["U0REP1", "U0REP2"], "2026-11-23", ""
        )
        assert clock == 40 / 4  # each turn moves it by 1 ÷ the weights taking part (3 + 1)
        assert abs(sum(load.credit(clock) for load in loads.values())) < 1e-6
        assert {rep: load.today for rep, load in loads.items()} == {"U0REP1": 30, "U0REP2": 10}
