"""`handoff check` lists every problem of a file in one run: a key of the wrong type hides none
of the checks across keys (names used twice, tiers that can never match, deadlines), which run
on the parts that are valid on their own and pass over, for that part alone, one that is not."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from bot.domain.policy import PolicyError, check_policy, parse_policy, policy_from_snapshot
from tests.conftest import ROOT

EXAMPLE = yaml.safe_load((ROOT / "sla.yaml").read_text(encoding="utf-8"))
CHANNEL_AS_REP = "'C0SMB' is a Slack channel id, not a user id (like U0123ABCD)"
HOT_NEVER = "tiers[1]: hot can never match: tiers[0] (warm, score ≥ 60) takes every lead it would"


def example() -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    del data["plan"], data["targets"]["mql_per_week"]  # they name the segments renamed here
    return data


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    return caught.value.problems


def with_tiers(data: dict[str, Any], hot_touch: Any = "2 business hours") -> dict[str, Any]:
    data["tiers"] = [
        {"name": "warm", "when": {"score_min": 60}, "first_touch": "1 business day"},
        {"name": "hot", "when": {"score_min": 80}, "first_touch": hot_touch},
        {"name": "cold", "first_touch": "1 business day"},
    ]
    return data


def test_a_type_error_hides_no_duplicate_name_unreachable_tier_or_bad_deadline() -> None:
    data = with_tiers(example())
    data["segments"][2]["reps"] = ["C0SMB"]  # the type error: segments[2] does not parse
    data["segments"][1]["name"] = "enterprise"
    data["tiers"][0]["claim"] = "2 business days"
    data["disposition_deadline"] = "3w"
    data["dispositions"][3] |= {"code": "bad_data", "reasons": "Later"}  # broken, and its code
    assert problems_of(data) == [
        f"segments[2].reps: {CHANNEL_AS_REP}",
        "dispositions[3].reasons: input should be a valid list",
        "segments[1].name: 'enterprise' is used twice",
        "dispositions[3].code: 'bad_data' is used twice",
        "tiers[0].claim: 2 business days is longer than first_touch 1 business day (a lead is "
        "claimed before it is first touched)",
        HOT_NEVER,
        "disposition_deadline: 3w (the first feedback) ends after the final disposition "
        "deadline (2w, follow_up.within, the cadence's end): the feedback deadline must be the "
        "shorter one; shorten it, or lengthen the other",
    ]


def test_a_check_whose_input_is_broken_is_passed_over_for_that_part_alone() -> None:
    # No time zone, so no calendar: the deadlines, which are compared on it, wait; the names
    # and the tiers do not. The broken tier is compared with none, the others still are.
    data = with_tiers(example(), hot_touch="soon")
    data["tiers"].insert(2, {"name": "very hot", "when": {"score_min": 90}, "first_touch": "1h"})
    data["timezone"] = "Mars/Olympus"
    data["disposition_deadline"] = "3w"
    data["dispositions"][4]["label"] = "Bad data"
    found = problems_of(data)
    assert found[0].startswith("timezone: 'Mars/Olympus' is not a time zone")
    assert found[1].startswith("tiers[1].first_touch: 'soon' is not a duration")
    assert found[2:] == [
        "dispositions[4].label: 'Bad data' is used twice",
        "tiers[2]: very hot can never match: tiers[0] (warm, score ≥ 60) takes every lead it would",
    ]


def test_the_deadlines_are_checked_on_the_ones_that_parse() -> None:
    data = example()
    data["follow_up"]["within"] = "2 fortnights"  # the cadence's end is not known...
    data["disposition_deadline"] = "3w"  # ...so the feedback is compared with the final key
    data["final_disposition_deadline"] = "2w"
    data["tiers"][1]["first_touch"] = "3w"
    data["dispositions"][5]["requires_attempts"] = False
    found = problems_of(data)
    assert found[0].startswith("follow_up.within: '2 fortnights': 'fortnights' is not a unit")
    assert found[1:] == [
        "disposition_deadline: 3w (the first feedback) ends after the final disposition "
        "deadline (2w, final_disposition_deadline): the feedback deadline must be the shorter "
        "one; shorten it, or lengthen the other",
        "tiers[1].first_touch: 3w ends after the final disposition deadline (2w): the cadence "
        "starts with the first touch and must fit before the final disposition; shorten "
        "first_touch, or lengthen follow_up.within",
        "dispositions[5].requires_attempts: 'Unable to contact' (recycle) could be picked "
        "before follow_up.min_attempts attempts; set requires_attempts: true (the default for "
        "a recycle outcome)",
    ]


def test_with_the_types_right_the_same_file_says_the_same() -> None:
    """The checks read a valid policy and a broken file's valid parts alike: fixing the type
    error leaves the other problems as they were."""
    data = with_tiers(example())
    data["segments"][1]["name"] = "enterprise"
    data["disposition_deadline"] = "3w"
    valid_types = problems_of(data)
    data["segments"][2]["reps"] = ["C0SMB"]
    assert problems_of(data) == [f"segments[2].reps: {CHANNEL_AS_REP}", *valid_types]
    assert HOT_NEVER in valid_types and len(valid_types) == 3


WRONG = [None, 42, "x", [], {}, [1], ["x"], {"a": 1}, [{}], [None]]


def places() -> list[tuple[Any, ...]]:
    """Each key of the example, each item of its lists and each key of those, and each key of
    its sections that the checks read."""
    found: list[tuple[Any, ...]] = [(key,) for key in EXAMPLE]
    for key in ("segments", "tiers", "dispositions"):
        for index, item in enumerate(EXAMPLE[key]):
            found += [(key, index), *((key, index, name) for name in item)]
    for key in ("business_hours", "follow_up", "mql"):
        found += [(key, name) for name in EXAMPLE[key]]
    return found


@pytest.mark.parametrize("place", places(), ids=lambda place: ".".join(map(str, place)))
def test_no_wrong_type_anywhere_crashes_the_checks(place: tuple[Any, ...]) -> None:
    """Every check runs on what is left, and the file is refused with its problems, never
    with an exception."""
    for wrong in WRONG:
        data = example()
        holder = data
        for step in place[:-1]:
            holder = holder[step]
        holder[place[-1]] = wrong
        checked = check_policy(data)
        assert checked.policy is None or checked.problems == [], (place, wrong)
        assert checked.policy is not None or checked.problems, (place, wrong)


def test_a_stored_version_with_a_wrong_type_is_refused_with_its_problems() -> None:
    data = with_tiers(example())
    data["segments"][2]["reps"] = 7
    with pytest.raises(PolicyError) as caught:
        policy_from_snapshot(data, "0123456789ab")
    # The checks a stored version is held to still run on the parts that parse.
    assert caught.value.problems == ["segments[2].reps: input should be a valid list"]
