"""Routing through the intake use case on SQLite and PostgreSQL: the weighted rotation kept in
the database, caps, the fallback, lead-to-account matching, and concurrent intake from two
engines (replicas) staying fair."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

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
        "counted_on": "2026-11-23",  # the business day it counts the lead in
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


_EXAMPLES = iter(range(1_000_000))  # fresh reps and leads per example, on one database


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    weights=st.lists(st.integers(min_value=0, max_value=4), min_size=2, max_size=5).filter(any),
    leads=st.integers(min_value=1, max_value=24),
)
async def test_two_replicas_stay_within_one_lead_of_the_weighted_share_for_any_weights(
    database_url: str, policy: Policy, weights: list[int], leads: int
) -> None:
    """Any weights, any number of leads, two replicas (two engines) taking them at once: every
    turn is taken once (the clock moved by exactly one turn a lead) and every rep ends within
    one lead of their weighted share, as one replica would leave them."""
    example = next(_EXAMPLES)
    reps = [f"U0P{example}R{n}" for n in range(len(weights))]
    content = snapshot(policy)
    content["segments"][0] |= {
        "reps": reps,
        "weights": dict(zip(reps, weights, strict=True)),
    }
    weighted = parse_policy(content)
    async with migrated_store(database_url) as one, migrated_store(database_url) as two:
        first, second = await services_on(one, weighted), await services_on(two, weighted)
        before, _ = await one.rotation_standing("enterprise", reps, "2026-11-23", "")

        async def take(services: Any, number: int) -> str:
            payload = lead_payload(f"p{example}-{number}")
            domain = f"p{example}n{number}.example"
            payload |= {"email": f"x@{domain}"}
            payload["company"] = payload["company"] | {"domain": domain}
            stored = await services.intake(payload, MONDAY)
            return str(stored.lead.suggested_owner)

        owners = await asyncio.gather(
            *(take(first if number % 2 else second, number) for number in range(leads))
        )
        counts = Counter(owners)
        total = sum(weights)
        for rep, weight in zip(reps, weights, strict=True):
            assert abs(counts[rep] - leads * weight / total) <= 1 + 1e-9, (counts, weights)
        assert sum(counts.values()) == leads
        clock, _ = await one.rotation_standing("enterprise", reps, "2026-11-23", "")
        assert abs(clock - before - leads / total) < 1e-9  # each lead one turn, none twice


async def test_leads_arriving_together_go_to_their_accounts_owners(
    store: Store, policy: Policy
) -> None:
    """A burst (stored in shared transactions) of leads of owned accounts, a lead sent twice
    and leads of new accounts: each account's lead goes to its owner, the others to the
    rotation; on PostgreSQL the look-ups share the statement reading the burst's stored leads."""
    matching = parse_policy(snapshot(policy) | {"account_matching": True})
    services = await services_on(store, matching)
    for number, owner in ((1, "U0REP2"), (2, "U0REP1")):
        company = lead_payload()["company"] | {"domain": f"owned{number}.example"}
        payload = lead_payload(f"o-{number}", email=f"a@owned{number}.example", company=company)
        stored = await services.intake(payload, MONDAY)
        await services.claim(stored.lead.id, owner, MONDAY)  # type: ignore[union-attr]

    def burst_lead(number: int, domain: str) -> dict[str, Any]:
        company = lead_payload()["company"] | {"domain": domain}
        return lead_payload(f"b-{number}", email=f"p{number}@{domain}", company=company)

    sent = [
        burst_lead(1, "owned1.example"),
        burst_lead(2, "new2.example"),
        burst_lead(3, "owned2.example"),
        burst_lead(1, "owned1.example"),
        burst_lead(4, "owned1.example"),
    ]
    engine = store.db.engine.sync_engine
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        stored = await asyncio.gather(*(services.intake(p, MONDAY) for p in sent))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    leads = [lead.lead for lead in stored]
    rules = [lead.route_reason["rule"] for lead in leads]  # type: ignore[union-attr,index]
    owners = [lead.suggested_owner for lead in leads]  # type: ignore[union-attr]
    assert rules == ["account_match", "round_robin"] + ["account_match"] * 3
    assert owners[0] == owners[3] == owners[4] == "U0REP2" and owners[2] == "U0REP1"
    assert leads[0].id == leads[3].id and len({lead.id for lead in leads}) == 4  # type: ignore
    if store.db.engine.dialect.name == "postgresql":
        lookups = [s for s in statements if "leads.account_domain =" in s]
        assert lookups and all("UNION ALL" in s for s in lookups)
