"""What people write by hand in sla.yaml, read as they meant it or refused with the fix: YAML 1.1
(what PyYAML reads) makes numbers, booleans and dates of words written without quotes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain.policy import Policy, PolicyError
from bot.services.policies import load_policy
from tests.conftest import ROOT

EXAMPLE = (ROOT / "sla.yaml").read_text(encoding="utf-8")


def checked(tmp_path: Path, old: str, new: str) -> Policy | list[str]:
    """What `handoff check` (and `serve`) make of the example with `old` written as `new`: the
    policy, or its problems."""
    assert old in EXAMPLE, old
    path = tmp_path / "sla.yaml"
    path.write_text(EXAMPLE.replace(old, new, 1), encoding="utf-8")
    try:
        return load_policy(str(path))
    except PolicyError as error:
        return error.problems


HOURS = '  start: "09:00"\n  end: "17:00"'


@pytest.mark.parametrize(
    ("written", "start", "end"),
    [("start: 9:00\n  end: 17:30", "09:00", "17:30"), ("start: 8:30\n  end: 24:00", "08:30", None)],
)
def test_working_hours_written_without_quotes_are_the_times_written(
    tmp_path: Path, written: str, start: str, end: str | None
) -> None:
    policy = checked(tmp_path, HOURS, f"  {written}")
    assert isinstance(policy, Policy), policy
    hours = policy.calendar
    assert (f"{hours.start:%H:%M}", hours.end and f"{hours.end:%H:%M}") == (start, end)


@pytest.mark.parametrize(
    ("written", "shown"),
    [("start: 8", "8"), ("start: 900", "900")],
)
def test_working_hours_written_as_a_number_are_refused_with_the_fix(
    tmp_path: Path, written: str, shown: str
) -> None:
    """YAML 1.1 reads 9:00 as 540 (minutes, base 60): a number was taken for minutes, so
    `start: 8` began the working day at 00:08, and `start: 900` at 15:00."""
    problems = checked(tmp_path, '  start: "09:00"', f"  {written}")
    assert problems == [
        f'business_hours.start: {shown} is not a time of day: write it in quotes, like "09:00"'
    ]


def test_numbers_with_a_leading_zero_are_read_in_base_10(tmp_path: Path) -> None:
    """YAML 1.1 reads a leading 0 as octal: `threshold: 060` was a threshold of 48, and a
    mid-market segment `employees_min: 0200` began at 128 employees."""
    text = ("threshold: 60", "threshold: 060")
    policy = checked(tmp_path, *text)
    assert isinstance(policy, Policy) and policy.mql.threshold == 60
    policy = checked(tmp_path, "employees_min: 200,", "employees_min: 0200,")
    assert isinstance(policy, Policy) and policy.segments[1].when
    assert policy.segments[1].when.employees_min == 200
    problems = checked(tmp_path, '  start: "09:00"', "  start: 0700")
    assert problems == [
        'business_hours.start: 700 is not a time of day: write it in quotes, like "09:00"'
    ]


NO = (
    "read as false: YAML reads no, off and n without quotes (in any letter case) as false; "
    'write the text in quotes, like "NO"'
)
ON = (
    "read as true: YAML reads yes, on and y without quotes (in any letter case) as true; "
    'write the text in quotes, like "ON"'
)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("holidays: AU-NSW", "holidays: NO", f"business_hours.holidays: {NO}"),
        ('"Duplicate"]', '"Duplicate", Off]', f"dispositions[2].reasons[4]: {NO}"),
        (
            "# territories: [{name: Sydney, when: {country: AU, state: NSW}, segment: smb}]",
            "territories: [{name: Ontario, when: {country: CA, state: ON}, segment: smb}]",
            f"territories[0].when.state: {ON}",
        ),
    ],
)
def test_a_word_yaml_reads_as_true_or_false_is_refused_with_the_fix(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    """The Norway problem: `holidays: NO` was refused with 'input should be a valid string or
    input should be a valid list', which says nothing of why or what to write."""
    assert checked(tmp_path, old, new) == [problem]


def test_a_closed_day_that_is_no_date_is_refused_with_its_path(tmp_path: Path) -> None:
    """YAML 1.1 reads 2026-11-31 as a timestamp and fails on it: `handoff check` printed only
    'handoff: day is out of range for month', naming neither the key nor the line."""
    problems = checked(tmp_path, 'closed: ["2026-12-24", "2026-12-31"]', "closed: [2026-11-31]")
    assert problems == [
        "business_hours.closed[0]: '2026-11-31' is not a date (day value is outside expected "
        "range): write it like 2026-12-24"
    ]
