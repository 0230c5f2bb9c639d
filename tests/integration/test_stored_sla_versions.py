"""A lead keeps the SLA version it arrived under (docs/sla-file.md: "SLA versions already stored
for running leads are not checked again"): what `snapshot()` stored in the database is read back
as the same policy, and a version stored before today's checks still loads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.domain.durations import Clock, Duration
from bot.domain.policy import Policy, policy_from_text, snapshot
from bot.services.policies import PolicyBook
from storage.repository import Store
from tests.conftest import ROOT

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
EXAMPLE = (ROOT / "sla.yaml").read_text(encoding="utf-8")
# Every optional key set, written with what YAML 1.1 reads in its own way: unquoted dates and a
# midnight timestamp in `closed`, an unquoted 9:00, on/yes/off in boolean keys, quoted numbers.
EDITS = {
    'closed: ["2026-12-24", "2026-12-31"]': "closed: [2026-12-24, 2026-12-31 00:00:00]",
    'start: "09:00"': "start: 9:00",
    "    reps: [U0REP1, U0REP2]\n": (
        "    reps: [U0REP1, U0REP2]\n    claim: assigned\n    claim_window: 15 business minutes\n"
        "    weights: {U0REP1: 2, U0REP2: '1'}\n    cap: {open: 20, per_day: 8}\n"
    ),
    "threshold: 60": 'threshold: "60"',
    "within: 2w}": "within: 2w, channels: 2}",
    "  mql_per_week:": (
        "  lead_velocity: {mql_to_sal: 1, sal_to_sql: 14.5}\n  lead_quality: 3.5\n"
        "  pipeline_per_week: 200000\n  won_per_week: 50000\n  mql_to_sql_rate: 0.1\n"
        "  win_rate: 1\n  time_to_claim: 30 business minutes\n  mql_per_week:"
    ),
    "disposition_deadline: 72h": "disposition_deadline: 72h\nfinal_disposition_deadline: 3w",
}
EXTRA = """
reporters: [U0MKT1]
viewers: [U0VIEW1]
away_statuses: [":palm_tree:", Out of office]
named_accounts: {northwind.example: U0REP2}
account_matching: on
account_subdomains: yes
catch_up: off
territories: [{name: Sydney, when: {country: AU, state: NSW}, segment: smb}]
partner: {manager: U0MGR2, sources: [partner]}
fallback_owner: U0MGR1
crm: {kind: hubspot, attempt_notes: on, writes_per_second: 10, portal: 123, owners: {U0REP1: "42"}}
"""


def every_key() -> Policy:
    text = EXAMPLE
    for old, new in EDITS.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return policy_from_text(text + EXTRA)


async def read_back(store: Store, policy: Policy) -> Policy:
    """`policy` stored as `serve` stores it, then read back as a lead's version is."""
    await PolicyBook(store, policy).record_current(NOW)
    return await PolicyBook(store, policy.model_copy(update={"version": "today"})).version(
        policy.version
    )


async def test_a_stored_version_is_read_back_as_it_was(store: Store, policy: Policy) -> None:
    full = every_key()
    assert full.business_hours.closed[1].isoformat() == "2026-12-31"
    for stored in (policy, full):
        restored = await read_back(store, stored)
        assert restored == stored
        assert snapshot(restored) == snapshot(stored)


async def test_a_version_stored_before_a_check_was_added_still_loads(
    store: Store, policy: Policy
) -> None:
    """`mql_per_week: {smb: -1}` was a valid file until counts were bounded: its leads keep it."""
    content = snapshot(policy)
    content["targets"]["mql_per_week"] = {"enterprise": -1, "smb": 2_000_000}
    await store.save_policy("0123456789ab", content, NOW)
    old = await PolicyBook(store, policy).version("0123456789ab")
    assert old.targets.mql_per_week == {"enterprise": -1, "smb": 2_000_000}


def without_clocks(value: Any) -> Any:
    """`value` as a version stored before durations carried their clock: no `clock` in a
    duration's mapping (`clock: team`, the policy's own key, is text and stays)."""
    if isinstance(value, dict) and {"days", "minutes"} <= set(value):
        return {key: item for key, item in value.items() if key != "clock"}
    if isinstance(value, dict):
        return {key: without_clocks(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_clocks(item) for item in value]
    return value


async def test_a_version_stored_without_clocks_reads_every_duration_as_business_time(
    store: Store, policy: Policy
) -> None:
    """docs/sla-file.md: "Versions stored before durations carried their clock counted every
    duration in business time, and leads under them still do". The file refuses such a mapping
    (it does not say its clock); a stored version is read exactly as before: each duration
    business time (a recency window calendar time, as a window always was)."""
    content = without_clocks(snapshot(every_key()))
    content["tiers"][0]["claim"] = {"days": 0, "minutes": 30}
    await store.save_policy("0ld0ld0ld0ld", content, NOW)
    old = await PolicyBook(store, policy).version("0ld0ld0ld0ld")

    def business(days: int = 0, minutes: int = 0) -> Duration:
        return Duration(days=days, minutes=minutes, clock=Clock.BUSINESS)

    assert [(tier.first_touch, tier.claim) for tier in old.tiers] == [
        (business(minutes=120), business(minutes=30)),
        (business(days=1), None),
    ]
    assert old.segments[0].claim_window == business(minutes=15)
    assert old.follow_up.within == business(days=14)  # `2w` then: 14 working days
    assert old.disposition_deadline == business(days=3)  # `72h` then: 72 working hours
    assert old.final_disposition_deadline == business(days=21)
    assert (old.recycle_after, old.nurture_after) == (business(days=30), business(days=90))
    assert old.account_recent == business(days=90)
    targets = old.targets
    assert (targets.response_time, targets.speed_to_lead) == (business(minutes=120),) * 2
    assert targets.time_to_claim == business(minutes=30)
    assert {signal.within for signal in old.mql.intent} == {
        Duration(days=7, clock=Clock.CALENDAR),
        Duration(days=30, clock=Clock.CALENDAR),
    }
    # Read back again as stored: the same policy, and each duration now says its clock.
    again = await read_back(store, old)
    assert again == old
    assert snapshot(again)["disposition_deadline"] == {"days": 3, "minutes": 0, "clock": "business"}


async def test_the_version_stored_by_the_release_before_clocks_keeps_its_business_time(
    store: Store, policy: Policy
) -> None:
    """docs/sla-file.md: "Versions stored before durations carried their clock counted every
    duration in business time, and leads under them still do (`72h` there is 72 working
    hours)". tests/fixtures/sla_version_before_clocks.json is what `serve` stored for the
    example sla.yaml at 3821e62, the commit before durations carried their clock: each
    duration `{days, minutes}`, no `clock` (`72h` stored as 4320 minutes)."""
    content = json.loads((ROOT / "tests/fixtures/sla_version_before_clocks.json").read_text())
    await store.save_policy("3821e62sla01", content, NOW)
    old = await PolicyBook(store, policy).version("3821e62sla01")
    assert old.version == "3821e62sla01"
    assert [str(tier.first_touch) for tier in old.tiers] == [
        "2 business hours",
        "24 business hours",
    ]
    assert str(old.disposition_deadline) == "72 business hours"
    assert str(old.follow_up.within) == "10 business days"
    assert str(old.recycle_after) == "30 business days"
    assert old.final_disposition_deadline is None  # not a key then: the cadence's end
