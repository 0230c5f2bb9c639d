"""The follow-up cadence over the real store (SQLite and PostgreSQL): the next touch kept with
each attempt, the sweep's due query, one reminder per overdue touch, and coverage.

The standard is written in explicit business time (`10 business days`): 6 attempts, so a touch
every 800 working minutes (13 h 20 m), and an attempt counts 400 working minutes after the one
before. Business hours are Mon–Fri 09:00–17:00 Sydney (sla.yaml); 23 November 2026 is a Monday.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.policy import Policy, parse_policy, snapshot
from bot.domain.refusal import Refusal
from bot.domain.report import Counts, attempt_standard
from bot.services.leads import Services
from bot.services.policies import PolicyBook
from bot.services.sweep import Sweeper
from storage.reports import Filter, ReportStore
from storage.repository import Store
from storage.sweep import SweepStore
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes

SYDNEY = ZoneInfo("Australia/Sydney")
REP = "U0REP1"


def sydney(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SYDNEY).astimezone(UTC)


def cadence_policy(policy: Policy) -> Policy:
    data = snapshot(policy)
    data["follow_up"] = {"min_attempts": 6, "within": "10 business days"}
    return parse_policy(data)


async def setup(store: Store, policy: Policy) -> tuple[Services, Sweeper]:
    book = PolicyBook(store, cadence_policy(policy))
    await book.record_current(MONDAY - timedelta(days=1))
    return Services(store, book, Wakes()), Sweeper(SweepStore(store.db), book, Wakes())


async def claimed_lead(services: Services, store: Store, name: str, at: datetime) -> int:
    result = await services.intake(lead_payload(f"hs-{name}"), at)
    assert result.lead is not None
    await store.mark_posted(result.lead.id, result.lead.channel, f"1.{result.lead.id}", at)
    await services.claim(result.lead.id, REP, at + timedelta(minutes=5))
    return result.lead.id


async def reminders(store: Store) -> list[str]:
    rows = await store.db.run(
        lambda db: db.exec_driver_sql(
            "SELECT key FROM outbox WHERE key LIKE 'touch:%' ORDER BY id"
        ).all()
    )
    return [str(key) for (key,) in rows]


async def touch_steps(store: Store) -> list[tuple[int, str]]:
    rows = await store.db.run(
        lambda db: db.exec_driver_sql(
            "SELECT step, status FROM escalations WHERE ladder = 'next_touch' ORDER BY step"
        ).all()
    )
    return [(int(step), str(status)) for step, status in rows]


async def test_the_next_touch_is_kept_with_each_attempt_and_reminded_once(
    store: Store, policy: Policy
) -> None:
    services, sweeper = await setup(store, policy)
    lead_id = await claimed_lead(services, store, "1", sydney(23, 11))
    claimed = await services.lead(lead_id)
    # Before any attempt, the next touch is the first touch, at the tier's deadline.
    assert claimed.next_touch_due_at == claimed.first_touch_due_at is not None
    assert claimed.touches_counted == 0

    await services.log_attempt(lead_id, REP, "call", sydney(23, 11, 15))
    one = await services.lead(lead_id)
    # 11:15 + 800 working minutes: 345 to Monday 17:00, 455 from Tuesday 09:00 → Tue 16:35.
    assert (one.attempts, one.touches_counted) == (1, 1)
    assert one.next_touch_due_at == sydney(24, 16, 35)
    assert one.follow_up_met_at is None

    await services.log_attempt(lead_id, REP, "email", sydney(23, 11, 30))  # too soon to count
    two = await services.lead(lead_id)
    assert (two.attempts, two.touches_counted) == (2, 1)
    assert two.next_touch_due_at == sydney(24, 16, 35)

    await sweeper.run(sydney(23, 12))  # the claim's old check: looks again at the touch due
    assert (await services.lead(lead_id)).next_action_at == sydney(24, 16, 35)
    rows = SweepStore(store.db)
    assert [lead.id for lead in (await rows.due(sydney(24, 16, 34), 10)).leads] == []
    assert [lead.id for lead in (await rows.due(sydney(24, 16, 35), 10)).leads] == [lead_id]

    assert (await sweeper.run(sydney(24, 16, 40))).changed == 1
    assert await reminders(store) == [f"touch:{lead_id}:1:2"]
    assert await touch_steps(store) == [(2, "fired")]
    assert (await sweeper.run(sydney(24, 16, 50))).changed == 0  # once per overdue touch
    assert (await sweeper.run(sydney(25, 9, 30))).changed == 0
    assert await reminders(store) == [f"touch:{lead_id}:1:2"]
    events = [event.type for event in await store.events(lead_id)]
    assert events.count("touch_due") == 1

    await services.log_attempt(lead_id, REP, "call", sydney(25, 10))  # touch 2, late
    three = await services.lead(lead_id)
    # Wed 10:00 + 800: 420 to 17:00, 380 from Thursday 09:00 → Thu 15:20; looked at then.
    assert (three.touches_counted, three.next_touch_due_at) == (2, sydney(26, 15, 20))
    assert three.next_action_at is not None and three.next_action_at <= sydney(26, 15, 20)


async def test_a_lead_meets_the_standard_with_its_span_and_then_no_touch_is_due(
    store: Store, policy: Policy
) -> None:
    services, sweeper = await setup(store, policy)
    lead_id = await claimed_lead(services, store, "2", sydney(23, 11))
    days = [sydney(day, 11) for day in (23, 24, 25, 26, 27, 30)]  # a working day apart
    for number, at in enumerate(days):
        await services.log_attempt(lead_id, REP, ["call", "email"][number % 2], at)
    met = await services.lead(lead_id)
    assert (met.touches_counted, met.follow_up_met_at) == (6, sydney(30, 11))
    assert met.next_touch_due_at is None
    await sweeper.run(sydney(2, 12, month=12))
    assert await reminders(store) == []  # every touch came before it was due


async def test_six_attempts_overnight_are_not_coverage(store: Store, policy: Policy) -> None:
    """Two leads with six attempts each: one's logged overnight (one counts: it may not be
    recycled, and its follow-up window ends uncovered), the other's a working day apart (all
    count: recycled). Coverage: 1 of 2."""
    services, _ = await setup(store, policy)
    night = await claimed_lead(services, store, "night", sydney(23, 11))
    for minute in range(0, 180, 30):  # Mon 22:00, 22:30 … Tue 00:30
        at = sydney(23, 22) + timedelta(minutes=minute)
        await services.log_attempt(night, REP, ["call", "email"][minute // 30 % 2], at)
    with pytest.raises(Refusal, match=r"\(1 of 6 count so far; 5 more logged too soon"):
        await services.dispose(night, REP, "no_response", sydney(24, 9))
    spread = await claimed_lead(services, store, "spread", sydney(23, 11))
    for number, day in enumerate((23, 24, 25, 26, 27, 30)):
        at = sydney(day, 11)
        await services.log_attempt(spread, REP, ["call", "email"][number % 2], at)
    await services.dispose(spread, REP, "no_response", sydney(30, 12))

    overnight = await services.lead(night)
    assert (overnight.attempts, overnight.touches_counted) == (6, 1)
    assert overnight.follow_up_met_at is None
    as_of = sydney(14, 12, month=12)
    standard = attempt_standard(await services.policies.version(overnight.sla_version), as_of)
    facts = await ReportStore(store.db).facts(
        sydney(23, 0), sydney(30, 0), as_of, standard, Filter()
    )
    total = sum(facts.counts.values(), Counts())
    assert (total.attempts_closed, total.attempts_covered) == (2, 1)


async def test_attempts_from_the_crm_count_by_when_they_were_made(
    store: Store, policy: Policy
) -> None:
    """A CRM reports Tuesday's call on Wednesday, then Monday's email: the cadence takes them
    in time order, so both count (a working day apart) and the next touch follows Tuesday."""
    services, _ = await setup(store, policy)
    lead_id = await claimed_lead(services, store, "crm", sydney(23, 11))
    now = sydney(25, 12)
    for activity, made in (("a-2", sydney(24, 11)), ("a-1", sydney(23, 11, 10))):
        payload = {"type": "attempt", "kind": "call", "id": activity, "at": made.isoformat()}
        await services.activity("hs-crm", payload, now)
    await services.activity("hs-crm", {"type": "attempt", "kind": "call", "id": "a-2"}, now)
    lead = await services.lead(lead_id)
    assert (lead.attempts, lead.touches_counted) == (2, 2)  # the repeat of a-2 counted once
    # Tue 11:00 + 800 working minutes: 360 to 17:00, 440 from Wednesday 09:00 → Wed 16:20.
    assert lead.next_touch_due_at == sydney(25, 16, 20)


async def test_a_new_cycle_starts_its_cadence_again(store: Store, policy: Policy) -> None:
    services, sweeper = await setup(store, policy)
    lead_id = await claimed_lead(services, store, "again", sydney(23, 11))
    for number, day in enumerate((23, 24, 25, 26, 27, 30)):  # a working day apart: all count
        await services.log_attempt(lead_id, REP, ["call", "email"][number % 2], sydney(day, 11))
    await services.dispose(lead_id, REP, "no_response", sydney(30, 12))
    back = (await services.lead(lead_id)).next_action_at
    assert back is not None
    await sweeper.run(back)  # recycled: a new cycle
    fresh = await services.lead(lead_id)
    assert (fresh.cycle, fresh.attempts, fresh.touches_counted) == (2, 0, 0)
    assert fresh.next_touch_due_at is None and fresh.follow_up_met_at is None
    await services.claim(lead_id, REP, back + timedelta(minutes=5))
    await services.log_attempt(lead_id, REP, "call", back + timedelta(minutes=10))
    again = await services.lead(lead_id)
    assert (again.attempts, again.touches_counted) == (1, 1)  # the old cycle's six are not read
    assert again.follow_up_met_at is None


async def test_concurrent_sweeps_remind_of_a_touch_once(store: Store, policy: Policy) -> None:
    """Three sweeps at once (replicas, or cron over `serve`): one reminder per overdue touch."""
    services, sweeper = await setup(store, policy)
    leads = [await claimed_lead(services, store, f"c{n}", sydney(23, 11)) for n in range(4)]
    for lead_id in leads:
        await services.log_attempt(lead_id, REP, "call", sydney(23, 11, 15))
    await sweeper.run(sydney(23, 12))
    now = sydney(24, 16, 40)  # every lead's touch 2 (due Tue 16:35) is overdue
    results = await asyncio.gather(*(sweeper.run(now, batch=2) for _ in range(3)))
    assert sum(result.changed for result in results) == 4
    assert sorted(await reminders(store)) == sorted(f"touch:{n}:1:2" for n in leads)
    assert await touch_steps(store) == [(2, "fired")] * 4
