"""The follow-up cadence over the real store (SQLite and PostgreSQL): the next touch kept with
each attempt, the sweep's due query, one reminder per overdue touch, and coverage.

The standard is written in explicit business time (`10 business days`): 6 attempts, so a touch
every 800 working minutes (13 h 20 m) after the latest attempt; every attempt counts. Business
hours are Mon–Fri 09:00–17:00 Sydney (sla.yaml); 23 November 2026 is a Monday.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.policy import Policy, parse_policy, snapshot
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


def cadence_policy(policy: Policy, channels: int | None = None) -> Policy:
    data = snapshot(policy)
    data["follow_up"] = {"min_attempts": 6, "within": "10 business days", "channels": channels}
    return parse_policy(data)


async def setup(
    store: Store, policy: Policy, channels: int | None = None
) -> tuple[Services, Sweeper]:
    book = PolicyBook(store, cadence_policy(policy, channels))
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

    # A quarter of an hour later: it counts too (seed 002 asks for no spacing), and the next
    # touch is due one interval after it, not after the first call.
    await services.log_attempt(lead_id, REP, "email", sydney(23, 11, 30))
    two = await services.lead(lead_id)
    assert (two.attempts, two.touches_counted) == (2, 2)
    # 11:30 + 800 working minutes: 330 to Monday 17:00, 470 from Tuesday 09:00 → Tue 16:50.
    assert two.next_touch_due_at == sydney(24, 16, 50)

    await sweeper.run(sydney(23, 12))  # the claim's old check: looks again at the touch due
    assert (await services.lead(lead_id)).next_action_at == sydney(24, 16, 50)
    rows = SweepStore(store.db)
    assert [lead.id for lead in (await rows.due(sydney(24, 16, 49), 10)).leads] == []
    assert [lead.id for lead in (await rows.due(sydney(24, 16, 50), 10)).leads] == [lead_id]

    assert (await sweeper.run(sydney(24, 16, 40))).changed == 0  # not nudged before it is due
    assert (await sweeper.run(sydney(24, 16, 55))).changed == 1
    assert await reminders(store) == [f"touch:{lead_id}:1:3"]
    assert await touch_steps(store) == [(3, "fired")]
    assert (await sweeper.run(sydney(24, 16, 58))).changed == 0  # once per overdue touch
    assert (await sweeper.run(sydney(25, 9, 30))).changed == 0
    assert await reminders(store) == [f"touch:{lead_id}:1:3"]
    events = [event.type for event in await store.events(lead_id)]
    assert events.count("touch_due") == 1

    await services.log_attempt(lead_id, REP, "call", sydney(25, 10))  # touch 3, late
    three = await services.lead(lead_id)
    # Wed 10:00 + 800: 420 to 17:00, 380 from Thursday 09:00 → Thu 15:20; looked at then.
    assert (three.touches_counted, three.next_touch_due_at) == (3, sydney(26, 15, 20))
    assert three.next_action_at is not None and three.next_action_at <= sydney(26, 15, 20)


async def test_a_lead_meets_the_standard_and_then_no_touch_is_due(
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


async def coverage(services: Services, store: Store, lead_id: int) -> tuple[int, int]:
    """(closed, covered) of the week of 23 November, as the report counts them on 14 December
    (every window closed)."""
    as_of = sydney(14, 12, month=12)
    lead = await services.lead(lead_id)
    standard = attempt_standard(await services.policies.version(lead.sla_version), as_of)
    facts = await ReportStore(store.db).facts(
        sydney(23, 0), sydney(30, 0), as_of, standard, Filter()
    )
    total = sum(facts.counts.values(), Counts())
    return total.attempts_closed, total.attempts_covered


async def test_six_attempts_over_four_days_are_coverage(store: Store, policy: Policy) -> None:
    """Seed 002: "Make minimum 6 contact attempts over 2 weeks"; Lead Coverage Rate:
    "Percentage of MQLs receiving minimum contact attempts". Two leads with six attempts each:
    one's logged overnight, the other's over four days, some a few hours apart. Every attempt
    counts: both meet the standard, may be recycled (Unable to contact), and are covered: 2 of
    2. (When an attempt counted only 400 working minutes after the last one that counted, the
    first was 1 of 6 and the second 3 of 6, and coverage was 0 of 2.)"""
    services, _ = await setup(store, policy)
    night = await claimed_lead(services, store, "night", sydney(23, 11))
    for minute in range(0, 180, 30):  # Mon 22:00, 22:30 … Tue 00:30
        at = sydney(23, 22) + timedelta(minutes=minute)
        await services.log_attempt(night, REP, ["call", "email"][minute // 30 % 2], at)
    overnight = await services.lead(night)
    assert (overnight.attempts, overnight.touches_counted) == (6, 6)
    assert overnight.follow_up_met_at == sydney(24, 0, 30)
    assert overnight.next_touch_due_at is None
    await services.dispose(night, REP, "no_response", sydney(24, 9))
    four_days = await claimed_lead(services, store, "four", sydney(23, 11))
    times = [sydney(23, 11), sydney(23, 15), sydney(24, 10), sydney(25, 10)]
    times += [sydney(25, 14), sydney(26, 10)]
    for number, at in enumerate(times):
        await services.log_attempt(four_days, REP, ["call", "email"][number % 2], at)
    worked = await services.lead(four_days)
    assert (worked.touches_counted, worked.follow_up_met_at) == (6, sydney(26, 10))
    await services.dispose(four_days, REP, "no_response", sydney(26, 12))
    assert await coverage(services, store, night) == (2, 2)


@pytest.mark.parametrize(("channels", "covered"), [(None, 1), (2, 0)])
async def test_a_lead_stored_when_close_attempts_did_not_count_is_judged_by_its_attempts(
    store: Store, policy: Policy, channels: int | None, covered: int
) -> None:
    """A lead whose cadence was stored under the old span rule (six calls, one counted, the
    standard not met) is covered by its six attempts, as its message reads now (6 of 6) and
    as Unable to contact allows it; with `channels` set, only its attempts' events tell, and
    it is not (its next attempt recomputes it)."""
    services, _ = await setup(store, policy, channels)
    lead_id = await claimed_lead(services, store, "old", sydney(23, 11))
    for minute in range(6):
        at = sydney(23, 22) + timedelta(minutes=minute)
        await services.log_attempt(lead_id, REP, ["call", "email"][minute % 2], at)
    await store.db.run(  # as the old rule stored it: one counted, the standard not met
        lambda db: db.exec_driver_sql(
            f"UPDATE leads SET touches_counted = 1, follow_up_met_at = NULL WHERE id = {lead_id}"
        )
    )
    assert await coverage(services, store, lead_id) == (1, covered)


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
