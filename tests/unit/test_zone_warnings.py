"""A team zone the tz database keeps at one offset all year (`EST`, `MST`): valid, so accepted,
but `handoff check` says in one line that it has no daylight saving and what to write instead
(a US team that writes EST for Eastern time has every clock an hour off from March to
November)."""

from __future__ import annotations

import copy
import logging
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.cli.main import main
from bot.domain.policy import parse_policy, policy_from_snapshot, policy_warnings, snapshot
from tests.conftest import ROOT

EXAMPLE = yaml.safe_load((ROOT / "sla.yaml").read_text(encoding="utf-8"))

EST = (
    "timezone: 'EST' is UTC-05:00 all year, with no daylight saving: for US Eastern time write "
    "America/New_York (with EST every deadline and business hour is an hour off from March to "
    "November)"
)
MST = (
    "timezone: 'MST' is UTC-07:00 all year, with no daylight saving: for US Mountain time write "
    "America/Denver (with MST every deadline and business hour is an hour off from March to "
    "November; Arizona, which keeps UTC-07:00, writes America/Phoenix)"
)


def warnings_for(zone: str) -> list[str]:
    content = copy.deepcopy(EXAMPLE) | {"timezone": zone}
    return policy_warnings(parse_policy(content))  # valid: parse_policy refuses nothing


def has_daylight_saving(zone: str) -> bool:
    offsets = {datetime(2026, month, 1, tzinfo=ZoneInfo(zone)).utcoffset() for month in (1, 7)}
    return len(offsets) > 1


def test_the_tz_database_keeps_est_and_mst_at_one_offset_and_their_places_do_not() -> None:
    """What the warnings rest on, as this machine's zoneinfo has it (the tz database's legacy
    System V zones; EST5EDT and MST7MDT follow US rules)."""
    assert not has_daylight_saving("EST") and has_daylight_saving("America/New_York")
    assert not has_daylight_saving("MST") and has_daylight_saving("America/Denver")
    assert not has_daylight_saving("HST") and not has_daylight_saving("Pacific/Honolulu")
    assert has_daylight_saving("EST5EDT") and has_daylight_saving("MST7MDT")


def test_est_is_accepted_and_named_with_the_zone_to_write() -> None:
    assert warnings_for("EST") == [EST]


def test_mst_is_accepted_and_named_with_denver_and_phoenix() -> None:
    assert warnings_for("MST") == [MST]


def test_gmt_is_accepted_and_named_with_london() -> None:
    """`GMT` is UTC+00:00 all year; the UK's clocks go to British Summer Time (Europe/London)."""
    assert not has_daylight_saving("GMT") and has_daylight_saving("Europe/London")
    assert warnings_for("GMT") == [
        "timezone: 'GMT' is UTC+00:00 all year, with no daylight saving: for UK time write "
        "Europe/London (with GMT every deadline and business hour is an hour off from March to "
        "October)"
    ]


@pytest.mark.parametrize(
    "zone",
    [
        "HST",  # Hawaii keeps no daylight saving either: HST is Pacific/Honolulu's time all year
        "EST5EDT",  # has US daylight saving
        "MST7MDT",
        "America/New_York",
        "America/Phoenix",  # a place without daylight saving, named as a place
        "Australia/Sydney",
        "UTC",
    ],
)
def test_zones_that_lose_no_daylight_saving_are_not_named(zone: str) -> None:
    assert warnings_for(zone) == []


def test_a_running_leads_sla_version_with_est_still_loads() -> None:
    policy = parse_policy(copy.deepcopy(EXAMPLE) | {"timezone": "EST"})
    assert policy_from_snapshot(snapshot(policy), "v1").timezone == "EST"


def test_handoff_check_prints_the_warning_and_passes_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sla.yaml"
    text = (ROOT / "sla.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("timezone: Australia/Sydney", "timezone: EST"), encoding="utf-8")
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        assert main(["check", str(path)]) == 0
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    out, err = capsys.readouterr()
    assert f"{path}: valid" in out
    assert err.splitlines() == [f"{path}: 1 warning(s)", f"  {EST}"]
