"""The SLA file: every problem reported with its path, and versions that identify content."""

from __future__ import annotations

import copy
import json
import pickle
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.domain.durations import Clock, Duration
from bot.domain.policy import (
    Policy,
    PolicyError,
    parse_policy,
    policy_from_snapshot,
    policy_from_text,
    policy_warnings,
    snapshot,
)
from bot.services.policies import load_policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "sla.yaml"
SPEC = Path("/work/shared/SPEC.md")


def example() -> dict[str, Any]:
    """The example SLA file as parsed YAML (a fresh copy to mutate)."""
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def spec_example() -> dict[str, Any]:
    """The minimal SLA of SPEC.md, section "The SLA as a file", exactly as written there."""
    text = SPEC.read_text(encoding="utf-8")
    match = re.search(r"## The SLA as a file.*?```yaml\n(.*?)```", text, re.S)
    assert match, "SPEC.md no longer has a yaml example under 'The SLA as a file'"
    return yaml.safe_load(match.group(1))


def spec_routing_example() -> dict[str, Any]:
    """SPEC.md's minimal SLA with its routing keys ("Routing keys (issue 9)") as written there:
    its segments in place of the minimal file's, and the top-level keys beside them."""
    text = SPEC.read_text(encoding="utf-8")
    match = re.search(r"Routing keys \(issue 9\).*?```yaml\n(.*?)```", text, re.S)
    assert match, "SPEC.md no longer has a yaml example under 'Routing keys (issue 9)'"
    return {**spec_example(), **yaml.safe_load(match.group(1))}


def problems_of(data: Any) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    return caught.value.problems


def problems_after(change: Callable[[dict[str, Any]], object]) -> list[str]:
    data = example()
    change(data)
    return problems_of(data)


def one_problem(change: Callable[[dict[str, Any]], object]) -> str:
    problems = problems_after(change)
    assert len(problems) == 1, problems
    return problems[0]


# --- valid files -------------------------------------------------------------------------------


def test_example_file_is_valid(policy: Policy) -> None:
    assert policy.timezone == "Australia/Sydney"
    assert [segment.name for segment in policy.segments] == ["enterprise", "mid_market", "smb"]
    # The seeds: 2 business hours, 6 attempts over 2 weeks, feedback within 72 hours.
    assert policy.tiers[0].first_touch == Duration(minutes=120, clock=Clock.BUSINESS)
    assert policy.tiers[1].first_touch == Duration(days=1, clock=Clock.BUSINESS)
    assert policy.follow_up.within == Duration(days=14, clock=Clock.CALENDAR)
    assert policy.disposition_deadline == Duration(minutes=72 * 60, clock=Clock.CALENDAR)
    assert policy.final_deadline == policy.follow_up.within
    assert policy.disposition("progressing") is not None
    assert policy.disposition("not_a_fit") is not None
    assert policy.is_manager("U0MGR1") and not policy.is_manager("U0REP1")
    assert re.fullmatch(r"[0-9a-f]{12}", policy.version)


def test_spec_minimal_example_is_valid_as_it_stands() -> None:
    policy = parse_policy(spec_example())
    assert policy.business_hours.regions == ["AU-NSW"]
    assert policy.follow_up.min_attempts == 6
    assert policy.follow_up.within == Duration(days=14, clock=Clock.CALENDAR)
    assert policy.tiers[0].first_touch == Duration(minutes=120, clock=Clock.BUSINESS)
    assert policy.disposition_deadline == Duration(days=3, clock=Clock.CALENDAR)
    assert [item.code for item in policy.dispositions] == [
        "qualified",
        "not_a_fit",
        "bad_timing",
        "no_response",
    ]


def test_spec_routing_example_is_valid_as_it_stands() -> None:
    """SPEC.md writes `claim_window` beside `claim: open`: valid (an outside file may be that
    block pasted), with a warning that the window does nothing there."""
    policy = parse_policy(spec_routing_example())
    (segment,) = policy.segments
    assert (segment.claim, segment.weights, segment.cap and segment.cap.open) == (
        "open",
        {"U0REP1": 2},
        20,
    )
    assert segment.claim_window == Duration(minutes=15, clock=Clock.BUSINESS)
    assert policy.account_matching is True
    assert policy_warnings(policy) == [
        "segments[0].claim_window: 15 business minutes does nothing with claim: open (anyone "
        "in the pool may claim at once); add claim: assigned to give the suggested rep the lead "
        "alone for it, or remove the window"
    ]
    assigned = spec_routing_example()
    assigned["segments"][0]["claim"] = "assigned"
    assert policy_warnings(parse_policy(assigned)) == []


def test_unquoted_yaml_times_are_read_as_times() -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace('start: "09:00"', "start: 8:30")
    assert yaml.safe_load(text)["business_hours"]["start"] == 510  # what YAML 1.1 makes of 8:30
    policy = policy_from_text(text)
    assert policy.calendar.minutes_per_day == 8 * 60 + 30


def test_round_the_clock_hours_are_valid() -> None:
    data = example()
    data["business_hours"] = {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": "00:00",
        "end": "24:00",
    }
    assert parse_policy(data).calendar.minutes_per_day == 24 * 60


def test_talk_track_by_source_falls_back_to_default(policy: Policy) -> None:
    assert "webinar they attended" in (policy.talk_track("Webinar") or "")
    assert policy.talk_track("carrier pigeon") == policy.talk_track(None)
    assert "engaged with most recently" in (policy.talk_track(None) or "")


# --- problems with their paths -----------------------------------------------------------------


def test_segment_without_reps() -> None:
    problem = one_problem(lambda d: d["segments"][1].update(reps=[]))
    assert problem == "segments[1].reps: at least one rep is required"


def test_segment_without_channel() -> None:
    problem = one_problem(lambda d: d["segments"][0].pop("channel"))
    assert problem == "segments[0].channel: required"


def test_missing_top_level_section() -> None:
    assert one_problem(lambda d: d.pop("channels")) == "channels: required"


def test_unknown_time_zone() -> None:
    problem = one_problem(lambda d: d.update(timezone="Mars/Olympus_Mons"))
    assert problem.startswith("timezone: 'Mars/Olympus_Mons' is not a time zone")


@pytest.mark.parametrize("region", ["XX", "AU-ZZZ", ["AU-NSW", "QQ-1"]])
def test_unknown_holiday_region(region: str | list[str]) -> None:
    problem = one_problem(lambda d: d["business_hours"].update(holidays=region))
    assert problem.startswith("business_hours.holidays: ")
    assert "is not a known holiday region" in problem


def test_several_holiday_regions_are_accepted() -> None:
    data = example()
    data["business_hours"]["holidays"] = ["AU-NSW", "AU-VIC"]
    assert parse_policy(data).business_hours.regions == ["AU-NSW", "AU-VIC"]


@pytest.mark.parametrize(
    ("value", "words"),
    [("2x", "is not a unit of time"), ("0h", "is zero"), ("", "not a duration"), ("1mo", "month")],
)
def test_bad_tier_duration(value: str, words: str) -> None:
    problem = one_problem(lambda d: d["tiers"][0].update(first_touch=value))
    assert problem.startswith("tiers[0].first_touch: ")
    assert words in problem


@pytest.mark.parametrize("value", [{"hours": 2}, {}, {"days": "two"}, {"days": -1}])
def test_a_duration_written_as_a_mapping_is_checked(value: dict[str, Any]) -> None:
    problem = one_problem(lambda d: d["tiers"][0].update(first_touch=value))
    assert problem.startswith("tiers[0].first_touch: ")
    assert "is not a duration" in problem


# Every duration key of the file: how to set it in the example (a claim window needs `claim:
# assigned`), a mapping that fits the other keys on either clock, and that mapping written on
# each clock.
DURATION_KEYS: dict[
    str, tuple[Callable[[dict[str, Any], Any], object], dict[str, int], str, str]
] = {
    "tiers[0].first_touch": (
        lambda d, v: d["tiers"][0].update(first_touch=v),
        {"minutes": 120},
        "2h",
        "2 business hours",
    ),
    "tiers[0].claim": (
        lambda d, v: d["tiers"][0].update(claim=v),
        {"minutes": 30},
        "30m",
        "30 business minutes",
    ),
    "segments[0].claim_window": (
        lambda d, v: d["segments"][0].update(claim="assigned", claim_window=v),
        {"minutes": 15},
        "15m",
        "15 business minutes",
    ),
    "follow_up.within": (
        lambda d, v: d["follow_up"].update(within=v),
        {"days": 14},
        "2w",
        "14 business days",
    ),
    "disposition_deadline": (
        lambda d, v: d.update(disposition_deadline=v),
        {"days": 3, "minutes": 0},
        "72h",
        "3 business days",
    ),
    "final_disposition_deadline": (
        lambda d, v: d.update(final_disposition_deadline=v),
        {"days": 21},
        "3w",
        "21 business days",
    ),
    "recycle_after": (
        lambda d, v: d.update(recycle_after=v),
        {"days": 30},
        "30d",
        "30 business days",
    ),
    "nurture_after": (
        lambda d, v: d.update(nurture_after=v),
        {"days": 90},
        "90d",
        "90 business days",
    ),
    "account_recent": (
        lambda d, v: d.update(account_recent=v),
        {"days": 90},
        "90d",
        "90 business days",
    ),
    "targets.response_time": (
        lambda d, v: d["targets"].update(response_time=v),
        {"minutes": 120},
        "2h",
        "2 business hours",
    ),
    "targets.speed_to_lead": (
        lambda d, v: d["targets"].update(speed_to_lead=v),
        {"minutes": 120},
        "2h",
        "2 business hours",
    ),
    "targets.time_to_claim": (
        lambda d, v: d["targets"].update(time_to_claim=v),
        {"days": 1, "minutes": 30},
        "1d30m",
        "1 business day 30 business minutes",
    ),
}


def _flow(mapping: dict[str, Any]) -> str:
    """A mapping as the file writes it: `{minutes: 120}`."""
    return "{" + ", ".join(f"{key}: {value}" for key, value in mapping.items()) + "}"


@pytest.mark.parametrize("path", DURATION_KEYS)
def test_a_duration_mapping_in_the_file_without_its_clock_is_refused(path: str) -> None:
    """SPEC.md: "A compact duration is calendar time: `30m`, `24h`, `3d`, `2w`. Business time
    says so: `2 business hours`…". A mapping without `clock` says neither, and a stored version
    reads it as business time (`test_a_snapshot_stored_before_durations_had_a_clock…`): in the
    file it is refused with both ways to write it, not silently read as business time."""
    change, value, calendar, business = DURATION_KEYS[path]
    problem = one_problem(lambda d: change(d, value))
    assert problem == (
        f"{path}: {_flow(value)} does not say its clock: write {calendar} (calendar time) or "
        f"{business}"
    )


def test_the_reported_hot_tier_written_as_minutes_is_refused() -> None:
    """The reported file: `first_touch: {minutes: 120}` passed `handoff check`, which printed
    "first touch within 2 business hours" (it reads the text through `policy_from_text`)."""
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "first_touch: 2 business hours}", "first_touch: {minutes: 120}}"
    )
    with pytest.raises(PolicyError) as caught:
        policy_from_text(text)
    assert caught.value.problems == [
        "tiers[0].first_touch: {minutes: 120} does not say its clock: write 2h (calendar time) "
        "or 2 business hours"
    ]


@pytest.mark.parametrize("clock", list(Clock))
@pytest.mark.parametrize("path", DURATION_KEYS)
def test_a_duration_mapping_that_says_its_clock_is_read_on_it(path: str, clock: Clock) -> None:
    change, value, _, _ = DURATION_KEYS[path]
    data = example()
    change(data, {**value, "clock": clock.value})
    owner: Any = parse_policy(data)
    for part in re.findall(r"[a-z_]+|\[\d+\]", path):
        owner = owner[int(part[1:-1])] if part.startswith("[") else getattr(owner, part)
    assert owner == Duration(
        days=value.get("days", 0), minutes=value.get("minutes", 0), clock=clock
    )


@pytest.mark.parametrize(
    "value", [{"days": 2000}, {"days": 1099}, {"days": 1098, "minutes": 1}, {"minutes": 99_999_999}]
)
def test_a_mapping_without_its_clock_longer_than_3_years_is_refused_for_its_length(
    value: dict[str, int],
) -> None:
    """docs/sla-file.md: "one longer than 3 years [is] refused with the forms to use". Such a
    mapping without `clock` was answered `write 2000d (calendar time) or 2000 business days`
    (`157w` for 1099 days): both forms the file then refuses as longer than 3 years."""
    problem = one_problem(lambda d: d.update(recycle_after=value))
    written = "{" + ", ".join(f"{key}: {part}" for key, part in value.items()) + "}"
    assert problem == (
        f"recycle_after: {written} is longer than 3 years: an SLA's durations are at most 3 "
        "years (write days or weeks, like 90d or 26w)"
    )


@pytest.mark.parametrize(
    "value",
    [{"minutes": 90}, {"days": 1, "minutes": 1440}, {"minutes": 10080}, {"days": 1098}],
)
def test_both_forms_a_mapping_without_its_clock_is_told_to_write_are_read_so(
    value: dict[str, int],
) -> None:
    """The refusal's two forms ("write 1h30m (calendar time) or 1 business hour 30 business
    minutes") are each accepted in the file, as that mapping on that clock."""
    problem = one_problem(lambda d: d.update(recycle_after=value))
    said = r".* does not say its clock: write (.+) \(calendar time\) or (.+)"
    written = re.fullmatch(said, problem)
    assert written, problem
    for form, clock in zip(written.groups(), (Clock.CALENDAR, Clock.BUSINESS), strict=True):
        data = example()
        data["recycle_after"] = form
        assert parse_policy(data).recycle_after == Duration(**value, clock=clock), form


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["business_hours"].update(holidays=5), "business_hours.holidays"),
        (lambda d: d["segments"][0]["when"].update(country=44), "segments[0].when.country"),
    ],
)
def test_a_wrong_type_for_a_union_names_the_key_once(
    change: Callable[[dict[str, Any]], object], path: str
) -> None:
    problem = one_problem(change)
    assert problem.startswith(f"{path}: ")
    assert "valid string or " in problem


def test_bad_follow_up_window() -> None:
    problem = one_problem(lambda d: d["follow_up"].update(within="two weeks"))
    assert problem.startswith("follow_up.within: ")


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["business_hours"].update(weekends=True), "business_hours.weekends"),
        (lambda d: d["dispositions"][0].update(colour="green"), "dispositions[0].colour"),
    ],
)
def test_unknown_keys_are_named(change: Callable[[dict[str, Any]], object], path: str) -> None:
    assert one_problem(change) == f"{path}: unknown key (check its spelling)"


def rename(mapping: dict[str, Any], key: str, to: str) -> None:
    mapping[to] = mapping.pop(key)


@pytest.mark.parametrize(
    ("change", "path", "meant"),
    [
        (lambda d: rename(d, "managers", "manager"), "manager", "managers"),
        (lambda d: rename(d, "segments", "segmnets"), "segmnets", "segments"),
        (lambda d: rename(d, "business_hours", "busines_hours"), "busines_hours", "business_hours"),
        (lambda d: rename(d["segments"][2], "channel", "chanel"), "segments[2].chanel", "channel"),
        (lambda d: d["segments"][0].update(caps={"open": 3}), "segments[0].caps", "cap"),
        (lambda d: d["segments"][0].update(cap={"opne": 3}), "segments[0].cap.opne", "open"),
        (lambda d: rename(d["mql"]["fit"][0], "points", "point"), "mql.fit[0].point", "points"),
        (
            lambda d: rename(d["report"]["weekly_digest"], "time", "tme"),
            "report.weekly_digest.tme",
            "time",
        ),
        (
            lambda d: rename(d["escalation"]["no_touch"][0], "do", "doo"),
            "escalation.no_touch[0].doo",
            "do",
        ),
        (lambda d: d.update(icp={"employee_min": 50}), "icp.employee_min", "employees_min"),
    ],
)
def test_a_misspelled_key_is_answered_with_the_nearest_known_one(
    change: Callable[[dict[str, Any]], object], path: str, meant: str
) -> None:
    """As a misspelled time zone, holiday region or engagement type is: `manager:` said only
    "check its spelling", at every level of the file."""
    assert f"{path}: unknown key (did you mean {meant}?)" in problems_after(change)


OVERNIGHT = (
    "business_hours: end {end} is before start {start}: working hours that run past midnight "
    "({start}–{end}, a night shift) are not supported; Handoff counts them within one day, so "
    'write an end later that day (end: "24:00" for midnight)'
)


@pytest.mark.parametrize(("start", "end"), [("17:00", "09:00"), ("22:00", "06:00")])
def test_business_hours_end_before_start(start: str, end: str) -> None:
    """A night shift is refused with what it is, not only "end must be after start"."""
    problem = one_problem(lambda d: d["business_hours"].update(start=start, end=end))
    assert problem == OVERNIGHT.format(start=start, end=end)


def test_business_hours_until_midnight_is_24_00_not_00_00() -> None:
    problem = one_problem(lambda d: d["business_hours"].update(start="18:00", end="00:00"))
    assert problem == (
        "business_hours: end 00:00 is the midnight that starts the day, before start 18:00: "
        'for working hours until midnight write end: "24:00"'
    )


def test_business_hours_that_are_not_times() -> None:
    problem = one_problem(lambda d: d["business_hours"].update(start="9am"))
    assert problem.startswith("business_hours.start: '9am' is not a time of day")


def test_start_of_24_00_is_refused() -> None:
    problem = one_problem(lambda d: d["business_hours"].update(start="24:00", end="24:00"))
    assert problem.startswith("business_hours: ")
    assert "24:00 is only valid as an end time" in problem


def test_unknown_weekday() -> None:
    problem = one_problem(lambda d: d["business_hours"].update(days=["mon", "funday"]))
    assert problem.startswith("business_hours.days[1]: ")


def test_reason_required_without_reasons() -> None:
    problem = one_problem(lambda d: d["dispositions"][1].update(reasons=[]))
    assert problem == (
        "dispositions[1]: a rejection needs reasons to choose from (marketing hears why it was "
        'rejected): add reasons: ["…", "…"]'
    )


def test_a_reject_code_asks_for_a_reason_and_a_note() -> None:
    """SPEC: "Rejections require a reason and a note (modal)". A reject code the file lists
    without `reason_required` opens the modal; without reasons it is refused by name."""

    def spam(policy: dict[str, Any], **keys: Any) -> None:
        code = {"code": "spam", "label": "Spam", "outcome": "reject"}
        policy["dispositions"].append(code | keys)

    problem = one_problem(lambda d: spam(d))
    assert problem.startswith("dispositions[") and "a rejection needs reasons" in problem
    content = example()
    spam(content, reasons=["Bot sign-up", "Competitor"])
    code = parse_policy(content).disposition("spam")
    assert code is not None and code.reason_required


# --- what Slack can show (Block Kit limits) ---------------------------------------------------


def test_more_reasons_than_a_menu_holds() -> None:
    more = [f"Reason {n}" for n in range(96)]  # and the example's 5
    problem = one_problem(lambda d: d["dispositions"][1]["reasons"].extend(more))
    assert problem == "dispositions[1].reasons: 101 reasons, but Slack's menu holds at most 100"


def test_a_hundred_reasons_fit() -> None:
    data = example()
    data["dispositions"][1]["reasons"] += [f"Reason {n}" for n in range(95)]
    assert len(parse_policy(data).dispositions[1].reasons) == 100


def test_a_reason_longer_than_a_menu_option() -> None:
    long = "x" * 76
    problem = one_problem(lambda d: d["dispositions"][1]["reasons"].append(long))
    assert problem == f"dispositions[1].reasons: reason {long!r} must be 1 to 75 characters"
    data = example()
    data["dispositions"][1]["reasons"].append("x" * 75)
    parse_policy(data)


def test_a_label_longer_than_a_button() -> None:
    problem = one_problem(lambda d: d["dispositions"][2].update(label="x" * 76))
    assert problem.startswith("dispositions[2].label: ")


def test_a_pool_larger_than_a_static_select_is_valid() -> None:
    """Past 100 reps the Reassign menu is Slack's user picker, so pools are not limited."""
    data = example()
    data["segments"][0]["reps"] = [f"U0REP{n:03d}" for n in range(1000)]
    assert len(parse_policy(data).segments[0].reps) == 1000


def test_a_stored_version_past_the_limits_still_loads() -> None:
    """A running lead keeps the SLA it arrived under: the limits are checked on files only."""
    data = example()
    data["dispositions"][1]["reasons"] += [f"Reason {n}" for n in range(145)]
    assert len(parse_policy(data, stored=True).dispositions[1].reasons) == 150


def test_duplicate_disposition_code() -> None:
    problem = one_problem(lambda d: d["dispositions"][3].update(code="qualified"))
    assert problem == "dispositions[3].code: 'qualified' is used twice"


def test_duplicate_disposition_label() -> None:
    problem = one_problem(lambda d: d["dispositions"][4].update(label="Bad timing"))
    assert problem == "dispositions[4].label: 'Bad timing' is used twice"


def test_duplicate_tier_name() -> None:
    """A lead finds its tier's rules by name: a second tier of the same name would never be
    used, and its leads would follow the first's clocks."""
    problem = one_problem(lambda d: d["tiers"][1].update(name=d["tiers"][0]["name"]))
    assert (
        problem == "tiers[1].name: 'hot' is used twice: leads of it would follow tiers[0]'s rules"
    )


def test_a_stored_version_with_a_tier_name_twice_still_loads() -> None:
    """A lead keeps the SLA it arrived under, even one that today's checks would refuse."""
    data = example()
    data["tiers"][1]["name"] = data["tiers"][0]["name"]
    assert [tier.name for tier in parse_policy(data, stored=True).tiers] == ["hot", "hot"]


def test_disposition_code_must_be_snake_case() -> None:
    problem = one_problem(lambda d: d["dispositions"][0].update(code="Qualified!"))
    assert problem.startswith("dispositions[0].code: ")


def test_unknown_outcome() -> None:
    problem = one_problem(lambda d: d["dispositions"][0].update(outcome="win"))
    assert problem.startswith("dispositions[0].outcome: ")


def test_catch_all_segment_that_is_not_last() -> None:
    problem = one_problem(lambda d: d["segments"][0].pop("when"))
    assert problem.startswith("segments[0].when: only the last segment may match everything")
    assert "mid_market, smb" in problem


def test_catch_all_tier_that_is_not_last() -> None:
    problem = one_problem(lambda d: d["tiers"][0].pop("when"))
    assert problem == "tiers[0].when: only the last tier may match everything"


def test_duplicate_segment_name() -> None:
    problems = problems_after(lambda d: d["segments"][1].update(name="enterprise"))
    assert "segments[1].name: 'enterprise' is used twice" in problems


def test_targets_naming_an_unknown_segment() -> None:
    problem = one_problem(lambda d: d["targets"]["mql_per_week"].update(galaxy=3))
    assert problem == "targets.mql_per_week.galaxy: no segment is called 'galaxy'"


def test_unknown_required_field() -> None:
    problem = one_problem(lambda d: d["mql"].update(required_fields=["email", "linkedin"]))
    assert problem.startswith("mql.required_fields: unknown lead field 'linkedin'")


def test_slack_ids_are_checked() -> None:
    problem = one_problem(lambda d: d["segments"][0].update(reps=["bob"]))
    assert problem.startswith("segments[0].reps: 'bob' is not a Slack user id")
    problem = one_problem(lambda d: d["channels"].update(marketing_feedback="#marketing"))
    assert problem.startswith("channels.marketing_feedback: '#marketing' is not a Slack channel id")


def test_employee_range_upside_down() -> None:
    problem = one_problem(lambda d: d["segments"][1]["when"].update(employees_max=10))
    assert problem == "segments[1].when: employees_max 10 is below employees_min 200"


@pytest.mark.parametrize("key", ["segments", "tiers", "dispositions"])
def test_empty_lists_that_must_have_items(key: str) -> None:
    problem = one_problem(lambda d: d.update({key: []}))
    assert problem == f"{key}: at least one {key.rstrip('s')} is required"


def test_every_field_problem_is_reported_together() -> None:
    def break_three_things(data: dict[str, Any]) -> None:
        data["segments"][1]["reps"] = []
        data["timezone"] = "Nowhere/Land"
        data["segments"][0].pop("channel")

    problems = problems_after(break_three_things)
    assert len(problems) == 3
    assert "segments[1].reps: at least one rep is required" in problems
    assert "segments[0].channel: required" in problems
    assert any(problem.startswith("timezone: ") for problem in problems)


def test_every_cross_check_problem_is_reported_together() -> None:
    def break_two_rules(data: dict[str, Any]) -> None:
        data["segments"][0].pop("when")
        data["dispositions"][3]["code"] = "qualified"
        data["targets"]["mql_per_week"]["galaxy"] = 1

    problems = problems_after(break_two_rules)
    assert len(problems) == 3, problems
    assert [problem.split(":")[0] for problem in problems] == [
        "segments[0].when",
        "dispositions[3].code",
        "targets.mql_per_week.galaxy",
    ]


@pytest.mark.parametrize("data", [None, [], "timezone: x", 42])
def test_a_file_that_is_not_a_mapping(data: Any) -> None:
    assert problems_of(data) == ["(top level): the SLA file must be a mapping of keys"]


def test_error_message_names_the_source_and_every_problem() -> None:
    data = example()
    data["segments"][1]["reps"] = []
    data.pop("channels")
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, "team/sla.yaml")
    message = str(caught.value)
    assert message.startswith("team/sla.yaml: ")
    assert "segments[1].reps" in message and "channels: required" in message


# --- loading a file ----------------------------------------------------------------------------


def test_load_policy_reads_the_example_file() -> None:
    assert load_policy(str(EXAMPLE)).version == parse_policy(example()).version


def test_load_policy_on_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy(str(missing))
    assert caught.value.problems == [f"(file): {missing} does not exist"]


def test_load_policy_on_broken_yaml_names_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "sla.yaml"
    broken.write_text("timezone: Australia/Sydney\nsegments:\n  - {name: smb\n  - x: [\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(str(broken))
    [problem] = caught.value.problems
    assert re.match(r"line \d+, column \d+: not valid YAML: ", problem), problem
    assert problem.startswith("line 4, ")


def test_load_policy_on_badly_indented_yaml(tmp_path: Path) -> None:
    broken = tmp_path / "sla.yaml"
    broken.write_text("timezone: Australia/Sydney\n  channels: x\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(str(broken))
    assert caught.value.problems == [
        "line 2, column 11: not valid YAML: mapping values are not allowed here"
    ]


def test_a_file_nested_past_any_sla_is_one_problem_not_a_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "sla.yaml"
    deep.write_text("a: " + "[" * 10_000 + "]" * 10_000)
    with pytest.raises(PolicyError) as caught:
        load_policy(str(deep))
    assert caught.value.problems == ["(file): nests too deep to be an SLA file"]


@pytest.mark.parametrize("length", ["99999999999 business days", "5000 business days", "1100d"])
def test_a_duration_past_three_years_is_named_with_its_path(length: str) -> None:
    data = example()
    data["tiers"][0]["first_touch"] = length
    data["follow_up"]["within"] = length
    assert problems_of(data) == [
        f"tiers[0].first_touch: {length!r} is longer than 3 years: an SLA's durations are at "
        "most 3 years (write days or weeks, like 90d or 26w)",
        f"follow_up.within: {length!r} is longer than 3 years: an SLA's durations are at "
        "most 3 years (write days or weeks, like 90d or 26w)",
    ]


def test_load_policy_on_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "sla.yaml"
    empty.write_text("")
    with pytest.raises(PolicyError) as caught:
        load_policy(str(empty))
    assert caught.value.problems == ["(top level): the SLA file must be a mapping of keys"]


def test_load_policy_on_an_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(str(tmp_path))  # a directory
    assert caught.value.problems == [f"(file): cannot read {tmp_path}: Is a directory"]


def test_load_policy_on_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_bytes(b"timezone: \xff\xfe Sydney\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(str(path))
    [problem] = caught.value.problems
    assert problem.startswith(f"(file): cannot read {path}: ")


def test_load_policy_reports_validation_problems_with_the_file_name(tmp_path: Path) -> None:
    data = example()
    data["segments"][0]["reps"] = []
    path = tmp_path / "sla.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(str(path))
    assert caught.value.source == str(path)
    assert caught.value.problems == ["segments[0].reps: at least one rep is required"]


# --- versions and snapshots --------------------------------------------------------------------


def test_version_is_stable_for_the_same_content() -> None:
    data = example()
    reordered = dict(reversed(list(copy.deepcopy(data).items())))
    assert parse_policy(data).version == parse_policy(example()).version
    assert parse_policy(reordered).version == parse_policy(data).version


def test_version_changes_when_content_changes() -> None:
    before = parse_policy(example()).version
    data = example()
    data["tiers"][0]["first_touch"] = "1h"
    assert parse_policy(data).version != before
    data = example()
    data["dispositions"][1]["reasons"].append("Acquired")
    assert parse_policy(data).version != before


def test_a_version_key_in_the_file_is_ignored() -> None:
    data = example()
    data["version"] = "hand-written"
    assert parse_policy(data).version == parse_policy(example()).version


def test_snapshot_round_trips(policy: Policy) -> None:
    content = snapshot(policy)
    assert "version" not in content
    restored = policy_from_snapshot(content, policy.version)
    assert restored.version == policy.version
    assert restored.dispositions == policy.dispositions
    assert restored.tiers == policy.tiers
    assert [tier.first_touch for tier in restored.tiers] == [
        Duration(minutes=120, clock=Clock.BUSINESS),
        Duration(days=1, clock=Clock.BUSINESS),
    ]
    # New snapshots say each duration's clock.
    assert content["tiers"][0]["first_touch"] == {"days": 0, "minutes": 120, "clock": "business"}
    assert content["disposition_deadline"] == {"days": 3, "minutes": 0, "clock": "calendar"}
    assert restored.follow_up == policy.follow_up
    assert restored.disposition_deadline == policy.disposition_deadline
    assert restored.segments == policy.segments
    assert restored.business_hours.closed == policy.business_hours.closed
    assert restored.calendar.minutes_per_day == policy.calendar.minutes_per_day
    assert restored == policy


def test_snapshot_is_plain_json_data(policy: Policy) -> None:
    content = snapshot(policy)
    assert json.loads(json.dumps(content)) == content


def test_a_snapshot_stored_before_durations_had_a_clock_counts_business_time(
    policy: Policy,
) -> None:
    """A lead keeps the meaning it arrived with: `72h` was then 72 working hours."""
    content = snapshot(policy)
    content["disposition_deadline"] = {"days": 0, "minutes": 72 * 60}
    content["follow_up"]["within"] = {"days": 10, "minutes": 0}
    content["tiers"][1]["first_touch"] = {"days": 0, "minutes": 24 * 60}
    old = policy_from_snapshot(content, "0123456789ab")
    assert old.disposition_deadline == Duration(minutes=72 * 60, clock=Clock.BUSINESS)
    assert old.follow_up.within == Duration(days=10, clock=Clock.BUSINESS)
    assert old.tiers[1].first_touch == Duration(minutes=24 * 60, clock=Clock.BUSINESS)
    # Monday 10:00 + 72 working hours (9 working days of 8 hours) is Friday of next week.
    monday = datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Australia/Sydney"))
    assert old.calendar.add(monday, old.disposition_deadline) == datetime(
        2026, 12, 4, 10, tzinfo=ZoneInfo("Australia/Sydney")
    )
    # The same SLA stored now: 72 hours of elapsed time, Thursday 10:00.
    new = policy_from_snapshot(snapshot(policy), policy.version)
    assert new.calendar.add(monday, new.disposition_deadline) == datetime(
        2026, 11, 26, 10, tzinfo=ZoneInfo("Australia/Sydney")
    )


def test_a_snapshot_with_an_unknown_clock_is_refused(policy: Policy) -> None:
    content = snapshot(policy)
    content["disposition_deadline"] = {"days": 3, "minutes": 0, "clock": "lunar"}
    with pytest.raises(PolicyError, match=r"disposition_deadline: .* is not a duration"):
        policy_from_snapshot(content, "0123456789ab")


def test_a_policy_pickles_without_its_cached_calendars() -> None:
    """A report built in a worker process gets the policy pickled: what it computed and
    cached (the calendar holds a closure) stays behind and is computed again there."""
    policy = load_policy(str(EXAMPLE))
    monday = datetime(2026, 11, 23, 0, 0, tzinfo=ZoneInfo("UTC"))
    assert policy.calendar.is_working_day(monday.date())  # computed and cached
    copy = pickle.loads(pickle.dumps(policy))
    assert copy == policy
    assert copy.calendar.is_working_day(monday.date())
