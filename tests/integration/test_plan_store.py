"""CRM activity and the revenue plan's history over the real store (SQLite and PostgreSQL):
stage times set once, each activity id counted once, and the rates measured from stored leads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.domain.plan import Funnel, Goal
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.domain.refusal import Reason, Refusal
from bot.services.leads import AlreadyRecorded, Invalid, Recorded, Services, Stored
from bot.services.plan import Plans
from bot.services.policies import PolicyBook
from storage.outbox import OutboxStore
from storage.plan import PlanStore
from storage.repository import Store
from storage.tables import LeadRow, OutboxRow
from tests.conftest import lead_payload
from tests.integration.conftest import Wakes, services_on

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Monday 11:00 in Sydney
SMALL_COMPANY = {"name": "Corner Bakery", "employees": 40, "country": "AU"}


@pytest.fixture
async def services(store: Store, policy: Policy) -> Services:
    return await services_on(store, policy, NOW - timedelta(weeks=40))


async def arrive(services: Services, external_id: str, weeks_ago: float, **fields: Any) -> int:
    received = NOW - timedelta(weeks=weeks_ago)
    payload = lead_payload(external_id, received_at=received.isoformat(), **fields)
    result = await services.intake(payload, received)
    assert isinstance(result, Stored) and result.created
    return result.lead.id


async def crm(services: Services, external_id: str, **payload: Any) -> Recorded | AlreadyRecorded:
    result = await services.activity(external_id, payload, NOW)
    assert not isinstance(result, Invalid), result.errors
    return result


async def deal_of(store: Store, lead_id: int) -> tuple[Any, ...]:
    statement = select(
        LeadRow.opportunity_at, LeadRow.won_at, LeadRow.lost_at, LeadRow.amount
    ).where(LeadRow.id == lead_id)
    row = await store.db.run(lambda db: db.execute(statement).one())
    return tuple(row)


# --- the measured history -----------------------------------------------------------------------


async def test_the_history_counts_the_mqls_of_the_weeks_and_what_became_of_them(
    services: Services, store: Store
) -> None:
    won = await arrive(services, "e-won", 10)
    await crm(services, "e-won", type="stage", stage="opportunity", amount=40_000)
    await crm(services, "e-won", type="stage", stage="won", amount=50_000)
    await arrive(services, "e-lost", 5)
    await crm(services, "e-lost", type="stage", stage="opportunity", amount=20_000)
    await crm(services, "e-lost", type="stage", stage="lost")
    await arrive(services, "e-open", 2)
    await crm(services, "e-open", type="stage", stage="opportunity")
    await arrive(services, "e-new", 1)
    # Slack's side: a claimed lead is a SAL, a qualified one an SQL; a rejected one neither.
    claimed = await arrive(services, "e-claimed", 6)
    await services.claim(claimed, "U0REP1", NOW)
    qualified = await arrive(services, "e-qualified", 7)
    await services.claim(qualified, "U0REP1", NOW)
    await services.dispose(qualified, "U0REP1", "qualified", NOW)
    rejected = await arrive(services, "e-rejected", 8)
    await services.claim(rejected, "U0REP1", NOW)
    await services.dispose(rejected, "U0REP1", "not_a_fit", NOW, reason="Not ICP", note="A student")
    # Won without an opportunity first: it was one.
    await arrive(services, "s-won", 3, company=SMALL_COMPANY)
    await crm(services, "s-won", type="stage", stage="won", amount=10_000)
    # Not counted: received before the 26 weeks, or never an MQL.
    await arrive(services, "e-old", 30)
    await crm(services, "e-old", type="stage", stage="won", amount=90_000)
    await arrive(services, "n-won", 4, score=10)
    await crm(services, "n-won", type="stage", stage="won", amount=5_000)

    history = await PlanStore(store.db).history(NOW, 26)
    assert history.weeks == 26
    # enterprise: 7 MQLs; SALs: the 3 opportunities (each was qualified and accepted, whatever
    # Slack recorded), the claimed and the qualified lead; SQLs: the 3 opportunities and the
    # qualified lead.
    assert history.by_segment == {
        "enterprise": Funnel(7, 3, 1, 1, 1, 50_000.0, sals=5, sqls=4),
        "smb": Funnel(1, 1, 1, 0, 1, 10_000.0, sals=1, sqls=1),
    }
    # The pace is measured from the first MQL of the weeks: e-won, 10 weeks ago.
    assert history.first_mql_at == NOW - timedelta(weeks=10)
    assert history.observed_weeks == pytest.approx(10)
    # The won deal's amount is the won one, not the estimate.
    assert (await deal_of(store, won))[3] == 50_000
    wider = await PlanStore(store.db).history(NOW, 52)
    assert wider.by_segment["enterprise"] == Funnel(8, 4, 2, 1, 2, 140_000.0, sals=6, sqls=5)
    assert wider.observed_weeks == pytest.approx(30)


async def test_the_plan_uses_the_measured_rates_and_says_so(
    services: Services, store: Store, policy: Policy
) -> None:
    book = PolicyBook(store, parse_policy({**snapshot(policy), "plan": None}))
    await book.record_current(NOW - timedelta(weeks=40))
    services = Services(store, book, Wakes())
    for number in range(4):
        await arrive(services, f"e-{number}", 2 + number)
    await crm(services, "e-0", type="stage", stage="won", amount=30_000)
    await crm(services, "e-1", type="stage", stage="lost")
    plans = Plans(PlanStore(store.db), book)
    plan = await plans.plan(Goal(300_000, "month"), NOW)
    enterprise = plan.segments[0]
    # No plan: in the SLA file: the measures alone. 2 opportunities of 4 MQLs: 2 of 4 MQLs are
    # SALs (50%), both SQLs (100%), both opportunities (100%); 1 won of 2 closed (50%); one
    # deal of 30,000.
    assert enterprise.sal_rate.value == pytest.approx(0.5)
    assert enterprise.sql_rate.value == pytest.approx(1)
    assert enterprise.opportunity_rate.value == pytest.approx(1)
    win = enterprise.win_rate
    assert (win.value, win.successes, win.trials, win.prior) == (0.5, 1, 2, None)
    assert enterprise.share == 1  # the only won revenue is enterprise's
    # 300,000 / 30,000 = 10 deals / 50% = 20 opportunities = 20 SQLs = 20 SALs / 50% = 40 MQLs
    assert (enterprise.deals, enterprise.opportunities, enterprise.mqls) == pytest.approx(
        (10, 20, 40)
    )
    # The first of the 4 MQLs arrived 5 weeks ago: 4 / 5 = 0.8 a week.
    assert plan.observed_weeks == pytest.approx(5)
    assert enterprise.mqls_now == pytest.approx(0.8)
    with pytest.raises(Refusal, match="1 to 260 weeks"):
        await plans.plan(Goal(300_000), NOW, weeks=0)


# --- stage changes ------------------------------------------------------------------------------


async def test_stage_times_are_set_once_and_every_change_is_an_event(
    services: Services, store: Store
) -> None:
    lead = await arrive(services, "hs-1", 3)
    first = await crm(services, "hs-1", type="stage", stage="opportunity", at="2026-11-20T00:00Z")
    assert first.recorded == {
        "type": "stage",
        "stage": "opportunity",
        "at": "2026-11-20T00:00:00+00:00",
        "amount": None,
        "currency": "AUD",
    }
    later = await crm(services, "hs-1", type="stage", stage="opportunity", amount=25_000)
    assert isinstance(later, Recorded) and later.recorded["amount"] == 25_000
    won = await crm(services, "hs-1", type="stage", stage="won", amount=27_500, id="sf-1")
    assert isinstance(won, Recorded)
    again = await crm(services, "hs-1", type="stage", stage="won", amount=99_000)
    assert isinstance(again, AlreadyRecorded)
    assert again.message.startswith("the lead already had this")
    opportunity_at = datetime(2026, 11, 20, tzinfo=UTC)
    assert await deal_of(store, lead) == (opportunity_at, NOW, None, 27_500)
    with pytest.raises(Refusal, match="recorded as won on 2026-11-23; not lost too"):
        await crm(services, "hs-1", type="stage", stage="lost")
    events = [(e.type, e.actor, e.data.get("amount")) for e in await store.events(lead)]
    assert events[-3:] == [
        ("opportunity", "crm", None),
        ("opportunity", "crm", 25_000),
        ("won", "crm", 27_500),
    ]


async def test_an_activity_id_counts_once_even_sent_twice_at_once(
    services: Services, store: Store
) -> None:
    lead = await arrive(services, "hs-1", 3)
    payload = {"type": "stage", "stage": "won", "amount": 10_000, "id": "sf-9"}
    results = await asyncio.gather(*(crm(services, "hs-1", **payload) for _ in range(5)))
    assert sorted(isinstance(result, Recorded) for result in results) == [False] * 4 + [True]
    repeats = [result.message for result in results if isinstance(result, AlreadyRecorded)]
    assert (
        repeats
        == ["activity 'sf-9' changes nothing: it was recorded already, or the lead already had it"]
        * 4
    )
    assert [e.type for e in await store.events(lead)].count("won") == 1
    # The same id again later is a repeat, even with what would now contradict the deal.
    repeat = await crm(services, "hs-1", type="stage", stage="lost", id="sf-9")
    assert isinstance(repeat, AlreadyRecorded)


async def test_unknown_leads_bad_times_and_other_currencies(services: Services) -> None:
    with pytest.raises(Refusal) as missing:
        await services.activity("nope", {"type": "stage", "stage": "won"}, NOW)
    assert missing.value.reason is Reason.NOT_FOUND
    assert missing.value.message == (
        "no lead with the external id 'nope': send it to POST /leads first"
    )
    await arrive(services, "hs-1", 1)
    future = await services.activity(
        "hs-1", {"type": "stage", "stage": "won", "at": "2026-12-25T00:00Z"}, NOW
    )
    assert isinstance(future, Invalid)
    assert [(e.field, e.message) for e in future.errors] == [("at", "must not be in the future")]
    dollars = await services.activity(
        "hs-1", {"type": "stage", "stage": "won", "amount": 5, "currency": "USD"}, NOW
    )
    assert isinstance(dollars, Invalid)
    assert [(e.field, e.message) for e in dollars.errors] == [
        ("currency", "must be AUD, the plan's currency in sla.yaml (nothing is converted)")
    ]


# --- attempts from the CRM ------------------------------------------------------------------------


async def test_a_crm_attempt_counts_like_a_button_and_rerenders_the_lead(
    services: Services, store: Store
) -> None:
    lead_id = await arrive(services, "hs-1", 1 / 168)  # an hour ago
    with pytest.raises(Refusal, match="not claimed yet"):
        await crm(services, "hs-1", type="attempt", kind="call")
    await services.claim(lead_id, "U0REP1", NOW)
    await _delivered(store)
    touched = NOW - timedelta(minutes=1)
    first = await crm(
        services, "hs-1", type="attempt", kind="call", actor="U0REP1", at=touched.isoformat()
    )
    assert first.recorded == {
        "type": "attempt",
        "kind": "call",
        "at": touched.isoformat(),
        "attempts": 1,
        "first_touch": True,
    }
    lead = await services.lead(lead_id)
    assert lead.attempts == 1 and lead.first_touch_at == touched
    assert await _pending_updates(store) == [lead_id]  # its message is re-rendered
    # The same id again is a repeat; a second attempt without one counts (another kind).
    assert isinstance(await crm(services, "hs-1", type="attempt", kind="call", id="a-1"), Recorded)
    again = await crm(services, "hs-1", type="attempt", kind="call", id="a-1")
    assert isinstance(again, AlreadyRecorded)
    email = await crm(services, "hs-1", type="attempt", kind="email")
    assert isinstance(email, Recorded) and email.recorded["attempts"] == 3
    # Without an id, the same kind by the same person within 10 seconds is a double send.
    double = await crm(services, "hs-1", type="attempt", kind="email")
    assert isinstance(double, AlreadyRecorded)
    events = [
        (e.type, e.actor, e.data.get("source"))
        for e in await store.events(lead_id)
        if e.type in ("attempt", "first_touch")
    ]
    assert events == [
        ("attempt", "U0REP1", "crm"),
        ("first_touch", "U0REP1", "crm"),
        ("attempt", "crm", "crm"),
        ("attempt", "crm", "crm"),
    ]
    assert (await services.lead(lead_id)).first_touch_at == touched  # set once


async def test_an_attempt_on_a_closed_lead_is_refused(services: Services) -> None:
    lead_id = await arrive(services, "hs-1", 0)
    await services.claim(lead_id, "U0REP1", NOW)
    await services.dispose(lead_id, "U0REP1", "qualified", NOW)
    with pytest.raises(Refusal, match=r"closed \(qualified\); nothing was recorded"):
        await crm(services, "hs-1", type="attempt", kind="call")


async def _delivered(store: Store) -> None:
    """As if the delivery worker had sent every waiting message update."""
    statement = update(OutboxRow).where(OutboxRow.kind == "update_lead").values(state="done")
    await store.db.run(lambda db: db.execute(statement))


async def _pending_updates(store: Store) -> list[int]:
    rows = await OutboxStore(store.db).rows()
    return [
        row["lead_id"] for row in rows if (row["kind"], row["state"]) == ("update_lead", "pending")
    ]
