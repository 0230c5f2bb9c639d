"""`handoff check` on routing keys that looked valid and were not: territories an earlier one
covers, subdomains that make two named accounts one, postcodes YAML reads as numbers, keys listed
twice, a CSV that is not UTF-8, and every problem of a file at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.domain.policy import (
    Policy,
    PolicyError,
    TerritoryWhen,
    parse_policy,
    policy_from_text,
    read_sla_yaml,
    snapshot,
    with_named_accounts,
)
from bot.domain.routing import choose_segment
from bot.services.policies import load_policy
from tests.conftest import ROOT
from tests.unit.test_routing_rules import lead


def problems(policy: Policy, **keys: Any) -> list[str]:
    with pytest.raises(PolicyError) as error:
        parse_policy(snapshot(policy) | keys)
    return error.value.problems


def territory(name: str, segment: str, **when: Any) -> dict[str, Any]:
    return {"name": name, "when": when, "segment": segment}


# --- territories an earlier one covers ------------------------------------------------------

ANZ = territory("ANZ", "smb", country=["AU", "NZ"])


def test_a_territory_inside_an_earlier_one_can_never_match(policy: Policy) -> None:
    found = problems(
        policy,
        territories=[
            ANZ,
            territory("New Zealand", "enterprise", country="NZ"),
            territory("NSW", "smb", country="au", state="NSW"),
            territory("Sydney CBD", "mid_market", country="AU", state="NSW", postcode_prefix="20"),
        ],
    )
    assert found == [
        "territories[1]: New Zealand can never match: territories[0] (ANZ, country AU/NZ) takes "
        "every lead it would (to smb, not enterprise: put the narrower one first)",
        "territories[2]: NSW can never match: territories[0] (ANZ, country AU/NZ) takes every "
        "lead it would (both go to smb: remove it)",
        "territories[3]: Sydney CBD can never match: territories[0] (ANZ, country AU/NZ) takes "
        "every lead it would (to smb, not mid_market: put the narrower one first)",
    ]


def test_narrower_territories_first_are_valid_and_each_gets_its_leads(policy: Policy) -> None:
    places = [
        territory("Sydney CBD", "mid_market", country="AU", state="NSW", postcode_prefix="20"),
        territory("NSW", "enterprise", country="AU", state="NSW"),
        territory("New Zealand", "enterprise", country="NZ"),
        ANZ,
    ]
    routed = parse_policy(snapshot(policy) | {"territories": places})

    def segment_of(state: str, postcode: str) -> str | None:
        company = {"name": "A", "country": "AU", "state": state, "postcode": postcode}
        segment = choose_segment(lead(company=company), routed)
        return None if segment is None else segment.name

    assert segment_of("NSW", "2000") == "mid_market"
    assert segment_of("NSW", "2750") == "enterprise"
    assert segment_of("WA", "6000") == "smb"


@pytest.mark.parametrize(
    ("earlier", "later", "covers"),
    [
        ({"country": ["AU", "NZ"]}, {"country": "nz"}, True),
        ({"country": "AU"}, {"country": ["AU", "NZ"]}, False),
        ({"country": "AU"}, {"industry": "Retail"}, False),  # a lead from anywhere in retail
        ({"state": "NSW"}, {"state": "NSW", "industry": "Retail"}, True),
        ({"postcode_prefix": "2"}, {"postcode_prefix": ["20", "2 1"]}, True),
        ({"postcode_prefix": ["20", "21"]}, {"postcode_prefix": ["201", "22"]}, False),
        ({"postcode_prefix": "20"}, {"postcode_prefix": "2"}, False),
        ({"postcode_prefix": "20"}, {"country": "AU"}, False),  # a lead with no postcode
    ],
)
def test_a_territory_covers_exactly_what_it_takes_first(
    earlier: dict[str, Any], later: dict[str, Any], covers: bool
) -> None:
    assert TerritoryWhen(**earlier).covers(TerritoryWhen(**later)) is covers


# --- postcodes written as numbers -------------------------------------------------------------

QUOTES = 'write postcodes in quotes, like "2000" (0200 without quotes is read as a number)'


def test_a_postcode_yaml_reads_as_a_number_says_to_quote_it_once(policy: Policy) -> None:
    places = yaml.safe_load(
        "- {name: Sydney, when: {country: AU, postcode_prefix: 2000}, segment: smb}\n"
        "- {name: ACT, when: {country: AU, postcode_prefix: [0200, '26']}, segment: smb}\n"
    )
    assert places[1]["when"]["postcode_prefix"] == [128, "26"]  # YAML's octal
    assert problems(policy, territories=places) == [
        f"territories[0].when.postcode_prefix: {QUOTES}",
        f"territories[1].when.postcode_prefix: {QUOTES}",
    ]


# --- every problem at once --------------------------------------------------------------------

GHOST = "is in no segment's reps and is not a manager (nobody could claim for them)"


def test_a_wrong_type_does_not_hide_the_routing_problems(policy: Policy) -> None:
    segments = snapshot(policy)["segments"]
    segments[0] |= {"weights": {"U0REP1": -1}}  # a type-level problem: the model refuses it
    segments[1] |= {"weights": {"U0REP9": 2}}
    found = problems(
        policy,
        segments=segments,
        named_accounts={"northwind.example": "U0REP2", "www.northwind.example": "U0REP3"},
        fallback_owner="U0NOBODY",
        territories=[ANZ, territory("New Zealand", "enterprise", country="NZ")],
    )
    assert found == [
        "segments[0].weights: a weight of -1 (U0REP1) is negative; write 0 or more",
        "segments[1].weights.U0REP9: U0REP9 is not in this segment's reps",
        "named_accounts.www.northwind.example: the same domain as northwind.example (letter "
        "case and www. aside); a domain has one owner",
        f"fallback_owner: U0NOBODY {GHOST}",
        "territories[1]: New Zealand can never match: territories[0] (ANZ, country AU/NZ) takes "
        "every lead it would (to smb, not enterprise: put the narrower one first)",
    ]


def test_with_broken_pools_only_what_is_certain_is_reported(policy: Policy) -> None:
    # The reps cannot be read, so nobody can be called unknown; each wrong id is said once.
    found = problems(
        policy,
        segments="enterprise",
        fallback_owner="C0ENT",
        named_accounts={"acme.example": "U0REP9"},
        territories=[{"when": {"country": "AU"}, "segment": "galaxy"}],
    )
    assert found == [
        "segments: input should be a valid list",
        "fallback_owner: 'C0ENT' is a Slack channel id, not a user id (like U0123ABCD)",
    ]


def test_the_csv_is_checked_even_when_the_sla_file_has_other_problems(tmp_path: Path) -> None:
    sla = (ROOT / "sla.yaml").read_text(encoding="utf-8").replace("AU-NSW", "AU-XX")
    (tmp_path / "sla.yaml").write_text(sla + "\nnamed_accounts_file: accounts.csv\n")
    (tmp_path / "accounts.csv").write_text(
        "domain,owner\nacme.example,U0REP3\nAcme.example,U0REP1\nfoo.example,U0GHOST\n"
    )
    with pytest.raises(PolicyError) as error:
        load_policy(str(tmp_path / "sla.yaml"))
    csv = tmp_path / "accounts.csv"
    assert error.value.problems[1:] == [
        f"{csv} line 3: acme.example is listed already on line 2; a domain has one owner",
        f"{csv} line 4: U0GHOST {GHOST}",
    ]
    assert error.value.problems[0].startswith("business_hours.holidays: 'AU-XX' is not")
    csv.unlink()
    with pytest.raises(PolicyError) as error:
        load_policy(str(tmp_path / "sla.yaml"))
    assert error.value.problems[1:] == [f"named_accounts_file: {csv} does not exist"]


# --- subdomains that make two named accounts one ----------------------------------------------

ONE_ACCOUNT = "with account_subdomains: true (both are acme.example); an account has one owner"


def test_subdomains_that_make_two_named_accounts_one_are_refused(policy: Policy) -> None:
    named = {"eu.acme.example": "U0REP1", "acme.example": "U0REP3", "shop.acme.example": "U0REP2"}
    assert problems(policy, account_subdomains=True, named_accounts=named) == [
        "named_accounts.acme.example: the same account as named_accounts.eu.acme.example "
        f"{ONE_ACCOUNT}",
        "named_accounts.shop.acme.example: the same account as named_accounts.eu.acme.example "
        f"{ONE_ACCOUNT}",
    ]
    # Without the setting they are three accounts, each with its owner.
    separate = parse_policy(snapshot(policy) | {"named_accounts": named})
    assert separate.named_index == named


def test_subdomains_that_make_two_csv_lines_one_account_name_both_lines(policy: Policy) -> None:
    text = "domain,owner\neu.acme.example,U0REP1\nacme.example,U0REP3\nwww.EU.acme.example,U0REP2\n"
    subdomains = parse_policy(snapshot(policy) | {"account_subdomains": True})
    with pytest.raises(PolicyError) as error:
        with_named_accounts(subdomains, text, "accounts.csv")
    assert error.value.problems == [
        f"accounts.csv line 3: acme.example is the same account as eu.acme.example on line 2 "
        f"{ONE_ACCOUNT}",
        "accounts.csv line 4: eu.acme.example is listed already on line 2; a domain has one owner",
    ]
    inline = parse_policy(
        snapshot(policy)
        | {"account_subdomains": True, "named_accounts": {"acme.example": "U0REP1"}}
    )
    with pytest.raises(PolicyError) as error:
        with_named_accounts(inline, "eu.acme.example,U0REP3\n", "accounts.csv")
    assert error.value.problems == [
        "accounts.csv line 1: eu.acme.example is the same account as named_accounts.acme.example "
        f"{ONE_ACCOUNT}"
    ]
    merged = with_named_accounts(policy, text.rsplit("\n", 2)[0], "accounts.csv")
    assert merged.named_index == {"eu.acme.example": "U0REP1", "acme.example": "U0REP3"}


# --- a CSV that is not UTF-8 ------------------------------------------------------------------


def test_a_csv_that_is_not_utf8_names_its_line_and_how_to_save_it(tmp_path: Path) -> None:
    sla = (ROOT / "sla.yaml").read_text(encoding="utf-8")
    (tmp_path / "sla.yaml").write_text(sla + "\nnamed_accounts_file: accounts.csv\n")
    csv = tmp_path / "accounts.csv"
    csv.write_bytes(
        "domain,owner\nnorthwind.example,U0REP1\nmünchen.example,U0REP2\n".encode("cp1252")
    )
    with pytest.raises(PolicyError) as error:
        load_policy(str(tmp_path / "sla.yaml"))
    assert error.value.problems == [
        f"named_accounts_file: cannot read {csv}: line 3 is not UTF-8 text (byte 0xfc); save "
        "the file as CSV UTF-8"
    ]


# --- keys listed twice ------------------------------------------------------------------------


def test_a_key_listed_twice_is_refused_with_its_path_and_lines() -> None:
    sla = (ROOT / "sla.yaml").read_text(encoding="utf-8")
    start = sla.count("\n") + 2
    text = sla + (
        "\nnamed_accounts:\n"
        "  northwind.example: U0REP2\n"
        "  northwind.example: U0REP1\n"
        "timezone: Europe/Berlin\n"
    )
    with pytest.raises(PolicyError) as error:
        policy_from_text(text)
    assert error.value.problems == [
        f"(top level): timezone is listed twice (lines 7 and {start + 3})",
        f"named_accounts: northwind.example is listed twice (lines {start + 1} and {start + 2})",
    ]


def test_weights_listed_twice_on_one_line_say_their_line() -> None:
    sla = (ROOT / "sla.yaml").read_text(encoding="utf-8")
    line = "    reps: [U0REP1, U0REP2]\n"
    assert sla.count(line) == 1
    text = sla.replace(line, line + "    weights: {U0REP1: 3, U0REP1: 0}\n")
    number = text[: text.index("U0REP1: 3")].count("\n") + 1
    with pytest.raises(PolicyError) as error:
        policy_from_text(text)
    assert error.value.problems == [f"segments[0].weights: U0REP1 is listed twice (line {number})"]


def test_a_merged_key_set_again_is_what_a_merge_is_for() -> None:
    data, repeated = read_sla_yaml(
        "base: &base {first_touch: 1bd, name: warm}\ntiers:\n- {<<: *base, name: hot}\n"
    )
    assert repeated == []
    assert data["tiers"] == [{"first_touch": "1bd", "name": "hot"}]
    _, repeated = read_sla_yaml("a: {b: 1, b: 2, b: 3}\n")
    assert repeated == ["a: b is listed 3 times (line 1)"]
