"""Escalation settings and the calendar in the SLA file: bad input is refused with its path.

Through `parse_policy` (the rules) and through `handoff check FILE` (what a person sees).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.domain.durations import Clock, Duration
from bot.domain.policy import (
    Escalation,
    PolicyError,
    parse_policy,
    policy_from_snapshot,
    policy_from_text,
    snapshot,
)
from bot.services.policies import load_policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((ROOT / "sla.yaml").read_text(encoding="utf-8"))

Change = Callable[[dict[str, Any]], object]


def example() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE)


def problems_after(change: Change) -> list[str]:
    data = example()
    change(data)
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    return caught.value.problems


def one_problem(change: Change) -> str:
    problems = problems_after(change)
    assert len(problems) == 1, problems
    return problems[0]


def ladder(name: str, *steps: tuple[Any, str]) -> Change:
    """Replace the example's ladder `name` with these (at, do) steps."""
    return lambda d: d["escalation"].update({name: [{"at": at, "do": do} for at, do in steps]})


def hours(**values: Any) -> Change:
    return lambda d: d["business_hours"].update(values)


# --- what the example says and what the defaults are ------------------------------------------


def test_the_example_spells_out_the_default_ladders() -> None:
    policy = parse_policy(example())
    assert policy.escalation == Escalation()
    assert policy.recycle_after == Duration(days=30, clock=Clock.CALENDAR)
    assert policy.escalation.describe("unclaimed") == (
        "50% remind_channel → 100% notify_manager → 150% reassign"
    )
    assert policy.escalation.describe("no_touch") == (
        "75% remind_owner → 100% notify_manager → 200% reassign"
    )
    assert policy.escalation.describe("no_feedback") == "100% remind_owner → 150% notify_manager"


def test_without_the_keys_the_same_defaults_apply() -> None:
    data = example()
    del data["escalation"], data["recycle_after"]
    policy = parse_policy(data)
    assert policy.escalation == parse_policy(example()).escalation
    assert policy.recycle_after == Duration(days=30, clock=Clock.CALENDAR)


def test_a_ladder_of_its_own_and_an_empty_ladder() -> None:
    data = example()
    data["escalation"] = {
        "unclaimed": [{"at": "25%", "do": "remind_channel"}, {"at": "62.5%", "do": "reassign"}],
        "no_feedback": [],  # an empty ladder turns that clock's escalations off
    }
    policy = parse_policy(data)
    assert [(s.at, s.do) for s in policy.escalation.unclaimed] == [
        (0.25, "remind_channel"),
        (0.625, "reassign"),
    ]
    assert policy.escalation.no_touch == Escalation().no_touch  # untouched ladders: defaults
    assert policy.escalation.describe("no_feedback") == "off"
    again = policy_from_snapshot(snapshot(policy), policy.version)
    assert again.escalation == policy.escalation


# --- ladders -----------------------------------------------------------------------------------


def test_an_unknown_step_is_named_with_the_known_ones() -> None:
    problem = one_problem(ladder("unclaimed", ("50%", "remind_channel"), ("100%", "fly")))
    assert problem == (
        "escalation.unclaimed[1].do: 'fly' is not a step: use one of "
        "remind_channel, remind_owner, notify_manager, reassign"
    )


def test_an_unknown_ladder_is_named_with_the_known_ones() -> None:
    problem = one_problem(lambda d: d["escalation"].update(nope=[]))
    assert problem == (
        "escalation.nope: unknown ladder (the ladders are unclaimed, no_touch, no_feedback, "
        "no_outcome)"
    )


def test_steps_out_of_order() -> None:
    problem = one_problem(ladder("unclaimed", ("150%", "remind_channel"), ("50%", "reassign")))
    assert problem == "escalation.unclaimed[1].at: 50% must come after 150% (steps go in order)"


def test_two_steps_at_the_same_share() -> None:
    problem = one_problem(ladder("no_touch", ("75%", "remind_owner"), ("75%", "reassign")))
    assert problem.startswith("escalation.no_touch[1].at: 75% must come after 75%")
    assert "two steps can't share a percentage" in problem


def test_each_ladder_out_of_order_is_reported() -> None:
    def both(d: dict[str, Any]) -> None:
        ladder("no_touch", ("100%", "notify_manager"), ("90%", "remind_owner"))(d)
        ladder("no_feedback", ("100%", "remind_owner"), ("150%", "notify_manager"), ("1%", "x"))(d)

    problems = problems_after(both)
    assert "escalation.no_touch[1].at: 90% must come after 100% (steps go in order)" in problems
    assert any(p.startswith("escalation.no_feedback[2].do: 'x' is not a step") for p in problems)


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (50, 'escalation.unclaimed[0].at: 50 has no % sign: write a share of the clock\'s window '
         'like "50%" (100% = the deadline)'),
        ("150", 'escalation.unclaimed[0].at: 150 has no % sign: write a share of the clock\'s '
         'window like "150%" (100% = the deadline)'),
        (0.5, 'escalation.unclaimed[0].at: 0.5 has no % sign: write a share of the clock\'s '
         'window like "50%" (100% = the deadline)'),
        ("-5%", "escalation.unclaimed[0].at: -5% is not after the clock starts: use a "
         "percentage above 0%, like 50%"),
        ("0%", "escalation.unclaimed[0].at: 0% is not after the clock starts: use a "
         "percentage above 0%, like 50%"),
        ("5000%", "escalation.unclaimed[0].at: 5000% is too late: a step can be at most 1000% "
         "of its window"),
        ("abc", "escalation.unclaimed[0].at: 'abc' is not a percentage of the deadline like "
         "50% or 150%"),
        ("50 percent", "escalation.unclaimed[0].at: '50 percent' is not a percentage of the "
         "deadline like 50% or 150%"),
        (True, "escalation.unclaimed[0].at: 'True' is not a percentage of the deadline like "
         "50% or 150%"),
    ],
)  # fmt: skip
def test_malformed_percentages(at: Any, message: str) -> None:
    assert one_problem(ladder("unclaimed", (at, "remind_channel"))) == message


@pytest.mark.parametrize(
    ("escalation", "message"),
    [
        (
            None,
            "escalation: has no value: write its keys under it (key: value) (YAML reads an "
            "empty value, or one that starts with #, as nothing)",
        ),
        ({"unclaimed": "remind"}, "escalation.unclaimed: input should be a valid list"),
        ({"unclaimed": [{"do": "reassign"}]}, "escalation.unclaimed[0].at: required"),
        ({"unclaimed": [{"at": "50%"}]}, "escalation.unclaimed[0].do: required"),
        (
            {"unclaimed": [{"at": "50%", "do": "reassign", "to": "U0REP1"}]},
            "escalation.unclaimed[0].to: unknown key (check its spelling)",
        ),
    ],
)
def test_misshapen_ladders(escalation: Any, message: str) -> None:
    assert one_problem(lambda d: d.update(escalation=escalation)) == message


@pytest.mark.parametrize(
    ("value", "words"),
    [("0d", "is zero"), ("a month", "is not a duration"), ("1mo", "there is no month unit")],
)
def test_bad_recycle_after(value: str, words: str) -> None:
    problem = one_problem(lambda d: d.update(recycle_after=value))
    assert problem.startswith(f"recycle_after: {value!r}") and words in problem


def test_a_claim_window_longer_than_the_first_touch_window() -> None:
    problem = one_problem(lambda d: d["tiers"][0].update(claim="3bh"))
    assert problem == (
        "tiers[0].claim: 3 business hours is longer than first_touch 2 business hours "
        "(a lead is claimed before it is first touched)"
    )
    # On different clocks: 3 calendar hours from Friday 16:00 end before 2 business hours.
    problem = one_problem(lambda d: d["tiers"][0].update(claim="3h"))
    assert problem.startswith("tiers[0].claim: 3h is longer than first_touch 2 business hours")
    data = example()
    data["tiers"][1]["claim"] = "4bh"  # half a working day ≤ 1 business day: fine
    data["tiers"][0]["claim"] = "2 business hours"  # the same as first touch: allowed
    policy = parse_policy(data)
    assert policy.tiers[1].claim == Duration(minutes=240, clock=Clock.BUSINESS)


# --- calendar: holidays, time zone, working hours, days ----------------------------------------


@pytest.mark.parametrize(
    ("holidays", "message"),
    [
        ("XX-YY", "business_hours.holidays: 'XX-YY' is not a known holiday region: 'XX' is not "
         "a country code with holidays (use an ISO code such as AU, optionally with a "
         "subdivision such as AU-NSW, US-CA, GB-ENG)"),
        ("AU-ZZ", "business_hours.holidays: 'AU-ZZ' is not a known holiday region: AU has no "
         "subdivision 'ZZ' (known: ACT, NSW, NT, QLD, SA, TAS, VIC, WA, NSW Western; or write "
         "just AU for its national holidays)"),
        (["AU-NSW", "GB-XX"], "business_hours.holidays: 'GB-XX' is not a known holiday region: "
         "GB has no subdivision 'XX' (known: ENG, NIR, SCT, WLS; or write just GB for its "
         "national holidays)"),
    ],
)  # fmt: skip
def test_unknown_holiday_regions(holidays: Any, message: str) -> None:
    assert one_problem(hours(holidays=holidays)) == message


def test_a_long_subdivision_list_is_cut_short() -> None:
    problem = one_problem(hours(holidays="US-ZZ"))
    assert "US has no subdivision 'ZZ' (known: AK, AL, " in problem and ", …;" in problem


@pytest.mark.parametrize("region", ["UK", "GB", "gb", ["GB-SCT", "UK"]])
def test_the_united_kingdom_alone_is_refused_for_one_of_its_nations(region: Any) -> None:
    # gov.uk/bank-holidays lists England and Wales, Scotland and Northern Ireland apart; the
    # holidays package's GB alone keeps only the days all four share, so a London team's
    # Easter Monday (6 April 2026) and late August bank holiday would be working days.
    assert one_problem(hours(holidays=region)) == (
        f"business_hours.holidays: {region if isinstance(region, str) else 'UK'!r} is not one "
        "calendar: England and Wales, Scotland and Northern Ireland each have their own bank "
        "holidays (alone it leaves out Easter Monday and the August bank holiday); write "
        "GB-ENG, GB-WLS, GB-SCT or GB-NIR"
    )


def test_england_closes_on_its_bank_holidays_and_a_stored_gb_still_loads() -> None:
    data = example()
    data["business_hours"]["holidays"] = "GB-ENG"
    england = parse_policy(data).calendar
    # gov.uk, England and Wales 2026: Easter Monday 6 April, 31 August, Boxing Day (a
    # Saturday) moved to Monday 28 December.
    for day in (date(2026, 4, 6), date(2026, 8, 31), date(2026, 12, 28)):
        assert not england.is_working_day(day)
    data["business_hours"]["holidays"] = "GB"
    stored = policy_from_snapshot(
        snapshot(parse_policy(example())) | {"business_hours": data["business_hours"]}, "v1"
    )
    assert stored.business_hours.regions == ["GB"]  # a running lead keeps the SLA it came with


@pytest.mark.parametrize("written", ["NO", "no", "[SE, NO, DK]"])
def test_norway_unquoted_is_named_not_a_type_error(written: str) -> None:
    # YAML 1.1 (PyYAML) reads an unquoted NO as the boolean false: Norway's code needs quotes.
    text = (ROOT / "sla.yaml").read_text(encoding="utf-8")
    text = text.replace("holidays: AU-NSW", f"holidays: {written}")
    with pytest.raises(PolicyError) as caught:
        policy_from_text(text)
    assert caught.value.problems == [
        "business_hours.holidays: read as false: YAML reads no, off and n without quotes (in "
        'any letter case) as false; write the text in quotes, like "NO"'
    ]
    quoted = policy_from_text(text.replace(f"holidays: {written}", 'holidays: "NO"'))
    # Norway 2026 (Easter 5 April): Labour Day 1 May, Ascension 14 May, Whit Monday 25 May.
    for day in (date(2026, 5, 1), date(2026, 5, 14), date(2026, 5, 25)):
        assert not quoted.calendar.is_working_day(day)


@pytest.mark.parametrize(
    ("region", "closed"),
    [  # each a public holiday of that state only, per the holidays package's own aliases
        ("US-california", date(2026, 3, 31)),  # César Chávez Day
        ("DE-bayern", date(2026, 1, 6)),  # Epiphany
        ("gb-england", date(2026, 4, 6)),  # Easter Monday
        ("CA-ONTARIO", date(2026, 2, 16)),  # Family Day
    ],
)
def test_a_subdivision_named_in_any_case_is_that_subdivision(region: str, closed: date) -> None:
    data = example()
    data["business_hours"]["holidays"] = region
    assert not parse_policy(data).calendar.is_working_day(closed)


@pytest.mark.parametrize(
    ("region", "meant"), [("US-NYC", "US-NY"), ("US-Calif", "US-CA"), ("GB-Engl", "GB-ENG")]
)
def test_an_unknown_subdivision_names_the_nearest_one(region: str, meant: str) -> None:
    # The list of known ones is cut short (US has 57): the nearest one is named whatever its place.
    assert one_problem(hours(holidays=region)).endswith(f"; did you mean {meant}?")


def test_regions_written_in_one_string_are_asked_for_as_a_list() -> None:
    # A team with offices in two states: the SLA file takes several regions as a YAML list.
    assert one_problem(hours(holidays="US-CA, us-ny")) == (
        "business_hours.holidays: 'US-CA, us-ny' names several regions: write them as a list, "
        "holidays: [US-CA, us-ny]"
    )
    data = example()
    data["business_hours"]["holidays"] = ["US-CA", "us-ny"]
    calendar = parse_policy(data).calendar
    assert not calendar.is_working_day(date(2026, 3, 31))  # César Chávez Day, California
    assert not calendar.is_working_day(date(2026, 2, 12))  # Lincoln's Birthday, New York


def test_a_region_in_lower_case_is_the_same_region() -> None:
    data = example()
    data["business_hours"]["holidays"] = "au-nsw"
    calendar = parse_policy(data).calendar
    assert not calendar.is_working_day(date(2026, 10, 5))  # Labour Day, NSW only
    assert calendar.is_working_day(date(2026, 10, 6))


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("Mars/Olympus", "timezone: 'Mars/Olympus' is not a time zone (like Australia/Sydney)"),
        (
            "Australia/Sidney",
            "timezone: 'Australia/Sidney' is not a time zone (like Australia/Sydney); "
            "did you mean Australia/Sydney?",
        ),
        ("", "timezone: '' is not a time zone (like Australia/Sydney)"),
        (
            "../../etc/passwd",
            "timezone: '../../etc/passwd' is not a time zone (like Australia/Sydney)",
        ),
        (
            "localtime",
            "timezone: 'localtime' is not a team's time zone: name it, like Australia/Sydney "
            "or UTC",
        ),
        (10, 'timezone: 10 is read as a number: write it in quotes, like "10"'),
    ],
)
def test_unknown_time_zones(zone: Any, message: str) -> None:
    assert one_problem(lambda d: d.update(timezone=zone)) == message


ABBREVIATION = (
    "; it is an abbreviation, which names no place and no daylight saving: write the place's "
    "name, like Australia/Sydney or America/New_York"
)
OFFSET = (
    "; an offset names no place and no daylight saving: write the place's name, like "
    "Australia/Sydney (or UTC)"
)


@pytest.mark.parametrize(
    ("zone", "hint"),
    [  # what a newcomer writes, and what the file should say: never a zone they did not mean
        ("AEST", ABBREVIATION),  # the hint was EST: US Eastern, 15 hours from Sydney
        ("PST", ABBREVIATION),  # was MST
        ("IST", ABBREVIATION),  # was MST
        ("BST", ABBREVIATION),  # was MST
        ("CST", ABBREVIATION),  # was UCT
        ("EDT", ABBREVIATION),  # was WET
        ("NZST", ABBREVIATION),  # was NZ
        ("aedt", ABBREVIATION),
        ("UTC+10", OFFSET),  # was UTC
        ("GMT+10", OFFSET),  # was GMT+0
        ("+10:00", OFFSET),
        ("UTC-05:00", OFFSET),
        ("Sydney", "; did you mean Australia/Sydney?"),  # was no hint
        ("new york", "; did you mean America/New_York?"),
        ("America/New York", "; did you mean America/New_York?"),
        ("australia/sydney", "; did you mean Australia/Sydney?"),
        ("utc", "; did you mean UTC?"),  # was no hint
        ("Europe/Londn", "; did you mean Europe/London?"),
    ],
)
def test_a_time_zone_hint_names_the_zone_meant_or_says_why_there_is_none(
    zone: str, hint: str
) -> None:
    assert one_problem(lambda d: d.update(timezone=zone)) == (
        f"timezone: {zone!r} is not a time zone (like Australia/Sydney){hint}"
    )


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata", "Europe/London"])
def test_real_time_zones_are_accepted(zone: str) -> None:
    data = example()
    data["timezone"] = zone
    assert parse_policy(data).timezone == zone


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            hours(start="17:00", end="09:00"),
            "business_hours: end 09:00 is before start 17:00: working hours that run past "
            "midnight (17:00–09:00, a night shift) are not supported; Handoff counts them within "
            'one day, so write an end later that day (end: "24:00" for midnight)',
        ),
        (
            hours(start="09:00", end="09:00"),
            "business_hours: start and end are both 09:00: working hours can't be empty "
            '(a 24×7 team writes start: "00:00", end: "24:00")',
        ),
        (
            hours(start="24:00", end="24:00"),
            "business_hours: start: 24:00 is only valid as an end time",
        ),
        (hours(end="25:00"), "business_hours.end: '25:00' is not a time of day like 09:00"),
        (hours(days=[]), "business_hours.days: at least one day is required"),
        (hours(days=["mon", "tue", "mon"]), "business_hours.days[2]: 'mon' is listed twice"),
        (
            hours(days=["mon", "funday"]),
            "business_hours.days[1]: input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' "
            "or 'sun'",
        ),
    ],
)  # fmt: skip
def test_bad_working_hours(change: Change, message: str) -> None:
    assert one_problem(change) == message


def test_a_24x7_team_and_a_night_shift_that_ends_at_midnight() -> None:
    data = example()
    data["business_hours"] = {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": "00:00",
        "end": "24:00",
    }
    assert parse_policy(data).calendar.minutes_per_day == 24 * 60
    data["business_hours"] = {"start": "16:00", "end": "24:00"}
    assert parse_policy(data).calendar.minutes_per_day == 8 * 60


def test_every_problem_is_listed_at_once() -> None:
    def many(d: dict[str, Any]) -> None:
        d["timezone"] = "Nowhere/Land"
        d["business_hours"]["holidays"] = "AU-ZZ"
        ladder("unclaimed", ("50%", "fly"), ("abc", "reassign"))(d)
        d["escalation"]["nope"] = []

    problems = problems_after(many)
    paths = sorted(problem.split(":")[0] for problem in problems)
    assert paths == [
        "business_hours.holidays",
        "escalation.nope",
        "escalation.unclaimed[0].do",
        "escalation.unclaimed[1].at",
        "timezone",
    ]


def test_checks_added_later_do_not_refuse_a_stored_sla_version() -> None:
    """A lead keeps the SLA it arrived under: today's stricter file checks (a day listed twice,
    a claim window longer than first touch) don't stop its stored version from loading."""
    data = example()
    data["business_hours"]["days"] = ["mon", "tue", "wed", "thu", "fri", "fri"]
    data["tiers"][0]["claim"] = "3h"
    with pytest.raises(PolicyError):
        parse_policy(data)
    stored = policy_from_snapshot(data, "0123456789ab")
    assert stored.version == "0123456789ab" and stored.tiers[0].claim == Duration(
        minutes=180, clock=Clock.CALENDAR
    )


# --- `handoff check FILE` -----------------------------------------------------------------------


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_check_prints_the_ladders_of_the_example() -> None:
    result = check(ROOT / "sla.yaml")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "escalation (at a share of each clock's window; one step per lead per sweep):" in out
    assert "    unclaimed: 50% remind_channel → 100% notify_manager → 150% reassign" in out
    assert "    no_touch: 75% remind_owner → 100% notify_manager → 200% reassign" in out
    assert "    no_feedback: 100% remind_owner → 150% notify_manager" in out
    assert "    no_outcome: 100% remind_owner → 150% notify_manager" in out
    assert (
        "  follow-up: 6 attempts within 2 weeks of the claim; first feedback within 72 hours; "
        "final disposition within 2 weeks (the cadence's end)"
    ) in out
    assert "recycled leads come back after 30 days" in out
    assert (
        "hot: {'score_min': 80} → first touch within 2 business hours, claim within half of that"
        in out
    )


def test_check_lists_each_bad_escalation_setting_with_its_path(tmp_path: Path) -> None:
    data = example()
    data["timezone"] = "Australia/Sidney"
    data["business_hours"].update(holidays="AU-ZZ")
    data["escalation"] = {
        "unclaimed": [{"at": "150%", "do": "remind_channel"}, {"at": "50%", "do": "reassign"}],
        "no_touch": [{"at": 50, "do": "fly"}],
        "nope": [],
    }
    broken = tmp_path / "sla.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = check(broken)
    assert result.returncode == 1
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"{broken}: 6 problem(s)"
    expected = [
        "timezone: 'Australia/Sidney' is not a time zone (like Australia/Sydney); "
        "did you mean Australia/Sydney?",
        "business_hours.holidays: 'AU-ZZ' is not a known holiday region: AU has no subdivision",
        "escalation.no_touch[0].at: 50 has no % sign: write a share of the clock's window",
        "escalation.no_touch[0].do: 'fly' is not a step: use one of remind_channel, "
        "remind_owner, notify_manager, reassign",
        "escalation.nope: unknown ladder (the ladders are unclaimed, no_touch, no_feedback, "
        "no_outcome)",
        # reported along with the rest, although the file has other problems
        "escalation.unclaimed[1].at: 50% must come after 150% (steps go in order)",
    ]
    for line in expected:
        assert any(problem.strip().startswith(line) for problem in lines[1:]), (line, lines)


def test_check_reports_steps_out_of_order(tmp_path: Path) -> None:
    data = example()
    data["escalation"]["unclaimed"] = [
        {"at": "50%", "do": "remind_channel"},
        {"at": "150%", "do": "notify_manager"},
        {"at": "50%", "do": "reassign"},
    ]
    broken = tmp_path / "sla.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = check(broken)
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        "  escalation.unclaimed[2].at: 50% must come after 150% (steps go in order)"
    ]


def test_the_example_file_loads_as_the_e2e_tests_expect() -> None:
    policy = load_policy(str(ROOT / "sla.yaml"))
    assert policy.escalation == Escalation() and policy.recycle_after == Duration(
        days=30, clock=Clock.CALENDAR
    )
