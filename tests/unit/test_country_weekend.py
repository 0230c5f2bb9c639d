"""A team's working week when the SLA file names a holiday country but no `days:`: the country's
own weekend, as the `holidays` package gives it (Israel rests Friday and Saturday, the UAE
Saturday and Sunday since 2022), not Monday–Friday everywhere."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.cli.main import _policy_summary
from bot.domain.policy import Policy, PolicyError, parse_policy, policy_from_snapshot, snapshot
from bot.slack.sla_view import sla_summary

JERUSALEM = ZoneInfo("Asia/Jerusalem")
# The week of Sunday 6 December 2026: no holiday in Israel, the UAE or California.
SUNDAY, THURSDAY, FRIDAY = date(2026, 12, 6), date(2026, 12, 10), date(2026, 12, 11)
SATURDAY, NEXT_SUNDAY = date(2026, 12, 12), date(2026, 12, 13)


def policy_with(timezone: str = "Asia/Jerusalem", **hours: Any) -> Policy:
    return parse_policy(
        {
            "timezone": timezone,
            "business_hours": hours,
            "channels": {"marketing_feedback": "C0MKTFEED"},
            "segments": [{"name": "all", "channel": "C0ALL", "reps": ["U0REP1"]}],
            "tiers": [{"name": "hot", "first_touch": "2 business hours"}],
            "dispositions": [{"code": "qualified", "label": "Qualified", "outcome": "sql"}],
        }
    )


def test_israel_works_sunday_to_thursday() -> None:
    policy = policy_with(holidays="IL")
    assert policy.business_hours.days == ["sun", "mon", "tue", "wed", "thu"]
    calendar = policy.calendar
    assert calendar.is_working_day(SUNDAY) and calendar.is_working_day(THURSDAY)
    assert not calendar.is_working_day(FRIDAY) and not calendar.is_working_day(SATURDAY)
    # 2 business hours from Thursday 16:00 in Tel Aviv: one that day, one on Sunday morning.
    start = datetime.combine(THURSDAY, time(16), JERUSALEM)
    assert calendar.add(start, 120) == datetime.combine(NEXT_SUNDAY, time(10), JERUSALEM)


def test_the_uae_works_monday_to_friday_since_2022() -> None:
    policy = policy_with(timezone="Asia/Dubai", holidays="AE")
    assert policy.business_hours.days == ["mon", "tue", "wed", "thu", "fri"]
    assert policy.calendar.is_working_day(FRIDAY) and not policy.calendar.is_working_day(SUNDAY)


def test_saudi_arabia_and_a_subdivision_with_its_own_weekend() -> None:
    assert policy_with(timezone="Asia/Riyadh", holidays="SA").business_hours.days[0] == "sun"
    # Malaysia rests Saturday and Sunday, but Kedah (MY-02) Friday and Saturday: the package's
    # rule for the subdivision, not the country's.
    kedah = policy_with(timezone="Asia/Kuala_Lumpur", holidays="MY-02")
    assert kedah.business_hours.days == ["sun", "mon", "tue", "wed", "thu"]
    kuala_lumpur = policy_with(timezone="Asia/Kuala_Lumpur", holidays="MY-KUL")
    assert kuala_lumpur.business_hours.days == ["mon", "tue", "wed", "thu", "fri"]


def test_without_holidays_or_with_a_monday_to_friday_country_nothing_changes() -> None:
    assert policy_with().business_hours.days == ["mon", "tue", "wed", "thu", "fri"]
    us = policy_with(timezone="America/Los_Angeles", holidays=["US-CA", "US-NY"])
    assert us.business_hours.days == ["mon", "tue", "wed", "thu", "fri"]


def test_explicit_days_always_win() -> None:
    policy = policy_with(holidays="IL", days=["mon", "tue", "wed", "thu", "fri"])
    assert policy.business_hours.days == ["mon", "tue", "wed", "thu", "fri"]
    assert policy.calendar.is_working_day(FRIDAY) and not policy.calendar.is_working_day(SUNDAY)


def test_countries_with_different_weekends_need_days() -> None:
    with pytest.raises(PolicyError) as error:
        policy_with(holidays=["IL", "US-CA"])
    assert error.value.problems == [
        "business_hours.days: holidays IL and US-CA have different weekends (IL: Fri, Sat; "
        "US-CA: Sat, Sun), so the working week is not clear: write it, like "
        "days: [sun, mon, tue, wed, thu] or days: [mon, tue, wed, thu, fri]"
    ]
    given = policy_with(holidays=["IL", "US-CA"], days=["mon", "tue", "wed", "thu"])
    assert given.business_hours.days == ["mon", "tue", "wed", "thu"]
    # The same weekend in every country listed is no question.
    assert policy_with(holidays=["IL", "SA"]).business_hours.days[0] == "sun"


def test_a_lead_keeps_the_working_week_of_the_version_it_arrived_under() -> None:
    """A version stored before the country's weekend was read says Monday–Friday itself."""
    old = snapshot(policy_with(holidays="IL", days=["mon", "tue", "wed", "thu", "fri"]))
    assert policy_from_snapshot(old, "abc").calendar.is_working_day(FRIDAY)
    new = policy_from_snapshot(snapshot(policy_with(holidays="IL")), "def")
    assert new.business_hours.days == ["sun", "mon", "tue", "wed", "thu"]
    assert not new.calendar.is_working_day(FRIDAY)


def test_check_and_sla_show_the_working_days_in_use() -> None:
    policy = policy_with(holidays="IL")
    assert "business time: sun mon tue wed thu 09:00–17:00 Asia/Jerusalem" in _policy_summary(
        policy, "sla.yaml"
    )
    assert "*Business time*: Sun, Mon, Tue, Wed, Thu 09:00–17:00" in str(sla_summary(policy))


def file_content(**hours: Any) -> dict[str, Any]:
    return snapshot(policy_with(**hours)) | {"business_hours": hours}


def content_hash(content: dict[str, Any]) -> str:
    """A version as Handoff named it before it read a country's weekend: its content's hash."""
    canonical = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def test_a_file_whose_week_changed_is_a_new_version() -> None:
    """A file with `holidays: IL` and no `days` ran on Monday–Friday until now, and its leads
    keep that stored version: read today, the same text is a new version (Sunday–Thursday),
    so the old one is not overwritten nor used for new leads. A file whose week did not change
    keeps its version."""
    israel = file_content(holidays="IL")
    assert parse_policy(israel).version != content_hash(israel)
    for unchanged in (
        file_content(),
        file_content(holidays="AU-NSW"),
        file_content(holidays="IL", days=["mon", "tue"]),
    ):
        assert parse_policy(unchanged).version == content_hash(unchanged)
