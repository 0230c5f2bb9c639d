"""`handoff check`'s operator review: tiers and segments an earlier one leaves no lead, Slack ids
of the wrong kind (or pasted as links), and a named-accounts CSV saved from Excel."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.domain.intake import LeadIn, parse_lead
from bot.domain.policy import (
    Policy,
    PolicyError,
    SegmentWhen,
    TierWhen,
    parse_policy,
    policy_from_snapshot,
    snapshot,
    with_named_accounts,
)
from bot.domain.routing import choose_segment, choose_tier
from bot.services.policies import load_policy
from tests.conftest import ROOT, lead_payload

EXAMPLE = yaml.safe_load((ROOT / "sla.yaml").read_text(encoding="utf-8"))


def problems_after(change: Callable[[dict[str, Any]], object]) -> list[str]:
    data = copy.deepcopy(EXAMPLE)
    change(data)
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    return caught.value.problems


def tier(name: str, **when: Any) -> dict[str, Any]:
    return {"name": name, **({"when": when} if when else {}), "first_touch": "1 business day"}


def segment(name: str, channel: str, **when: Any) -> dict[str, Any]:
    return {"name": name, **({"when": when} if when else {}), "channel": channel, "reps": ["U0R1"]}


# --- tiers and segments that can never match ---------------------------------------------------


def test_a_tier_behind_a_broader_one_can_never_match() -> None:
    tiers = [tier("warm", score_min=60), tier("hot", score_min=80), tier("cold")]
    assert problems_after(lambda d: d.update(tiers=tiers)) == [
        "tiers[1]: hot can never match: tiers[0] (warm, score ≥ 60) takes every lead it would"
    ]


def test_a_tier_behind_one_of_its_sources_can_never_match() -> None:
    tiers = [
        tier("events", source=["Webinar", "event"]),
        tier("hot_webinar", score_min=80, source="webinar"),  # letter case aside, as routing
        tier("cold"),
    ]
    assert problems_after(lambda d: d.update(tiers=tiers)) == [
        "tiers[1]: hot_webinar can never match: tiers[0] (events, source Webinar/event) takes "
        "every lead it would"
    ]


def test_the_last_tier_takes_what_no_tier_matches_so_only_a_tier_for_every_lead_starves_it() -> (
    None
):
    # No catch-all: a lead below 60 gets the last tier (routing's fallback), so hot is reachable.
    tiers = [tier("warm", score_min=60), tier("hot", score_min=80)]
    policy = parse_policy({**EXAMPLE, "tiers": tiers})
    assert choose_tier(10, None, policy).name == "hot"
    tiers = [tier("any", score_min=0), tier("cold")]
    assert problems_after(lambda d: d.update(tiers=tiers)) == [
        "tiers[1]: cold can never match: tiers[0] (any, score ≥ 0) takes every lead it would"
    ]


def test_tiers_that_overlap_but_each_get_leads_are_valid() -> None:
    tiers = [
        tier("hot", score_min=80),
        tier("webinar", score_min=60, source="webinar"),
        tier("warm", score_min=60),
        tier("cold"),
    ]
    assert [item.name for item in parse_policy({**EXAMPLE, "tiers": tiers}).tiers] == [
        "hot",
        "webinar",
        "warm",
        "cold",
    ]


def test_a_segment_behind_a_broader_one_can_never_match() -> None:
    segments = [
        segment("mid_market", "C0MID", employees_min=200),
        segment("enterprise", "C0ENT", employees_min=1000),
        segment("smb", "C0SMB"),
    ]
    assert problems_after(lambda d: d.update(segments=segments)) == [
        "segments[1]: enterprise can never match: segments[0] (mid_market, 200+ employees) "
        "takes every lead it would"
    ]


def test_a_segment_for_every_lead_starves_the_ones_after_it() -> None:
    segments = [
        segment("enterprise", "C0ENT", employees_min=0),
        segment("mid_market", "C0MID", country="AU"),  # a lead without a headcount: here
        segment("smb", "C0SMB"),
    ]
    assert parse_policy({**EXAMPLE, "segments": segments})
    segments[0]["when"] = {}
    assert problems_after(lambda d: d.update(segments=segments)) == [
        "segments[1]: mid_market can never match: segments[0] (enterprise, any lead) takes "
        "every lead it would",
        "segments[2]: smb can never match: segments[0] (enterprise, any lead) takes every lead "
        "it would",
    ]


def test_snapshots_of_running_leads_are_not_refused_for_a_tier_that_can_never_match(
    policy: Policy,
) -> None:
    content = snapshot(policy)
    content["tiers"] = [tier("warm", score_min=60), tier("hot", score_min=80), tier("cold")]
    assert [item.name for item in policy_from_snapshot(content, "v1").tiers] == [
        "warm",
        "hot",
        "cold",
    ]


SOURCES: list[str | list[str] | None] = [None, "webinar", ["Webinar", "event"], "partner"]
TIER_WHENS = [
    TierWhen(score_min=score, source=source)
    for score, source in itertools.product([None, 0, 60, 80], SOURCES)
]


def test_a_tier_is_reported_exactly_when_routing_never_gives_it_a_lead(policy: Policy) -> None:
    """`covers` against routing's own choice, over every score boundary and source. (A `when`
    that lists no value, `source: []`, matches no lead at all: not this check's to say.)"""
    catch_all = policy.tiers[-1].model_copy(update={"name": "rest", "when": None})
    for earlier, later in itertools.product(TIER_WHENS, [*TIER_WHENS, None]):
        tiers = [
            policy.tiers[0].model_copy(update={"name": "earlier", "when": earlier}),
            policy.tiers[0].model_copy(update={"name": "later", "when": later}),
            catch_all,
        ]
        three = policy.model_copy(update={"tiers": tiers})
        reached = any(
            choose_tier(score, source, three).name == "later"
            for score in (0, 59, 60, 79, 80, 100)
            for source in (None, "webinar", "EVENT", "partner", "other")
        )
        assert earlier.covers(later) == (not reached), (earlier, later)


def grid_lead(employees: int | None, country: str | None, source: str | None) -> LeadIn:
    payload = lead_payload(source=source)
    payload["company"] |= {"employees": employees, "country": country}
    parsed, errors = parse_lead(payload)
    assert parsed is not None, errors
    return parsed


SEGMENT_WHENS = [
    SegmentWhen(employees_min=low, employees_max=high, country=country, source=source)
    for (low, high), country, source in itertools.product(
        [(None, None), (0, None), (200, None), (1000, None), (200, 999), (None, 50)],
        [None, "AU", ["au", "NZ"]],
        [None, "webinar"],
    )
]
LEADS = [
    grid_lead(employees, country, source)
    for employees, country, source in itertools.product(
        [None, 0, 50, 51, 199, 200, 999, 1000, 5000], [None, "AU", "nz", "US"], [None, "Webinar"]
    )
]


def test_a_segment_is_reported_exactly_when_routing_never_gives_it_a_lead(policy: Policy) -> None:
    first = policy.segments[0]
    for earlier, later in itertools.product(SEGMENT_WHENS, [*SEGMENT_WHENS, None]):
        segments = [
            first.model_copy(update={"name": "earlier", "when": earlier}),
            first.model_copy(update={"name": "later", "when": later}),
        ]
        two = policy.model_copy(update={"segments": segments})
        reached = any(getattr(choose_segment(lead, two), "name", None) == "later" for lead in LEADS)
        assert earlier.covers(later) == (not reached), (earlier, later)


# --- Slack ids: users are U… or W…, channels C… or G… ------------------------------------------


USER = "is a Slack channel id, not a user id (like U0123ABCD)"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["segments"][0].update(reps=["C0ENT", "U0REP2"]),
            f"segments[0].reps: 'C0ENT' {USER}",
        ),
        (
            lambda d: d["segments"][0].update(weights={"C0ENT": 2}),
            f"segments[0].weights: 'C0ENT' {USER}",
        ),
        (lambda d: d.update(managers=["C0MGR"]), f"managers: 'C0MGR' {USER}"),
        (lambda d: d.update(reporters=["C0MKT"]), f"reporters: 'C0MKT' {USER}"),
        (
            lambda d: d.update(viewers=["G0MKT"]),
            "viewers: 'G0MKT' is a Slack channel id, not a user id (like U0123ABCD)",
        ),
        (lambda d: d.update(fallback_owner="C0MGR"), f"fallback_owner: 'C0MGR' {USER}"),
        (lambda d: d.update(partner={"manager": "C0MGR"}), f"partner.manager: 'C0MGR' {USER}"),
        (
            lambda d: d.update(named_accounts={"northwind.example": "C0ENT"}),
            f"named_accounts: northwind.example: 'C0ENT' {USER}",
        ),
        (
            lambda d: d["report"]["compliance_alert"].update(notify=["C0REVOPS"]),
            f"report.compliance_alert.notify: 'C0REVOPS' {USER}",
        ),
        (
            lambda d: d.update(crm={"kind": "hubspot", "owners": {"maya": "51234"}}),
            "crm.owners: 'maya' is not a Slack user id (like U0123ABCD)",
        ),
        (
            lambda d: d["segments"][0].update(channel="U0REP1"),
            "segments[0].channel: 'U0REP1' is a Slack user id, not a channel id (like C0123ABCD)",
        ),
        (
            lambda d: d["channels"].update(digest="D0DM"),
            "channels.digest: 'D0DM' is a Slack direct message id, not a channel id (like "
            "C0123ABCD)",
        ),
        (
            lambda d: d["channels"].update(escalations="#escalations"),
            "channels.escalations: '#escalations' is not a Slack channel id (like C0123ABCD)",
        ),
    ],
)
def test_each_id_is_of_its_own_kind(
    change: Callable[[dict[str, Any]], object], expected: str
) -> None:
    assert problems_after(change) == [expected]


def test_a_pasted_slack_link_says_which_id_it_holds() -> None:
    feed = "https://acme.slack.com/archives/C0MKTFEED"
    assert problems_after(lambda d: d["channels"].update(marketing_feedback=feed)) == [
        f"channels.marketing_feedback: '{feed}' is a Slack link, not a channel id: did you mean "
        "C0MKTFEED?"
    ]
    message = "https://acme.slack.com/archives/C0ENT/p1712345678901234"
    assert problems_after(lambda d: d["segments"][0].update(channel=message)) == [
        f"segments[0].channel: '{message}' is a Slack link, not a channel id: did you mean C0ENT?"
    ]
    profile = "https://acme.slack.com/team/U0123"
    assert problems_after(lambda d: d.update(managers=[profile])) == [
        f"managers: '{profile}' is a Slack link, not a user id: did you mean U0123?"
    ]
    assert problems_after(lambda d: d["channels"].update(digest=profile)) == [
        f"channels.digest: '{profile}' is a link to a Slack user, not a channel id (like C0123ABCD)"
    ]


def test_enterprise_grid_users_and_private_channels_are_ids(policy: Policy) -> None:
    content = snapshot(policy)
    content["segments"][0] |= {"channel": "G0PRIVATE", "reps": ["W0GRID1", "U0REP2"]}
    assert parse_policy(content).segments[0].reps == ["W0GRID1", "U0REP2"]


def test_snapshots_of_running_leads_keep_the_ids_they_were_stored_with(policy: Policy) -> None:
    content = snapshot(policy)
    content["segments"][0] |= {"channel": "U0REP1", "reps": ["C0ENT"]}  # valid before kinds
    assert policy_from_snapshot(content, "v1").segments[0].reps == ["C0ENT"]


def test_a_rep_listed_twice_in_a_segment_is_named_with_its_segment() -> None:
    """docs/sla-file.md: a rep's share of the rotation is their weight, not how often they are
    listed (the rotation counts each rep once): `[U0REP3, U0REP4, U0REP3]` passed as 3 reps."""
    problems = problems_after(
        lambda d: d["segments"][1].update(reps=["U0REP3", "U0REP4", "U0REP3", "U0REP3"])
    )
    advice = (
        "(a rep takes one place in the rotation: to give them more leads, give them a weight, "
        "like weights: {U0REP3: 2})"
    )
    assert problems == [f"segments[1].reps: U0REP3 is listed 3 times in mid_market's reps {advice}"]
    problems = problems_after(lambda d: d["segments"][0].update(reps=["U0REP1", "U0REP1"]))
    assert problems == [
        "segments[0].reps: U0REP1 is listed twice in enterprise's reps (a rep takes one place in "
        "the rotation: to give them more leads, give them a weight, like weights: {U0REP1: 2})"
    ]


def test_snapshots_of_running_leads_keep_a_rep_listed_twice(policy: Policy) -> None:
    content = snapshot(policy)
    content["segments"][0]["reps"] = ["U0REP1", "U0REP1"]  # taken before it was refused
    assert policy_from_snapshot(content, "v1").segments[0].reps == ["U0REP1", "U0REP1"]


def test_a_person_listed_twice_in_managers_reporters_or_viewers_is_named_with_the_key() -> None:
    """As a rep listed twice in a segment: refused with the path and the id. A manager listed
    twice was mentioned twice in every escalation alert and listed twice by /sla."""
    problems = problems_after(lambda d: d.update(managers=["U0MGR1", "U0MGR2", "U0MGR1"]))
    assert problems == [
        "managers: U0MGR1 is listed twice in managers (list each person once: every escalation "
        "alert mentions each manager listed)"
    ]
    problems = problems_after(
        lambda d: d.update(reporters=["U0MKT1"] * 3, viewers=["U0MKT2", "U0MKT2"])
    )
    assert problems == [
        "reporters: U0MKT1 is listed 3 times in reporters (list each person once)",
        "viewers: U0MKT2 is listed twice in viewers (list each person once)",
    ]


def test_a_person_listed_twice_is_named_beside_a_wrong_type_elsewhere() -> None:
    problems = problems_after(
        lambda d: d.update(managers=["U0MGR1", "U0MGR1"], follow_up={"min_attempts": "many"})
    )
    assert any(problem.startswith("follow_up.min_attempts: ") for problem in problems), problems
    assert any(problem.startswith("managers: U0MGR1 is listed twice") for problem in problems)


def test_snapshots_of_running_leads_keep_a_manager_listed_twice(policy: Policy) -> None:
    content = snapshot(policy)
    content["managers"] = ["U0MGR1", "U0MGR1"]  # taken before it was refused
    assert policy_from_snapshot(content, "v1").managers == ["U0MGR1", "U0MGR1"]


# --- the named-accounts CSV --------------------------------------------------------------------


def sla_with_csv(tmp_path: Path, csv_bytes: bytes) -> Path:
    sla = (ROOT / "sla.yaml").read_text(encoding="utf-8")
    (tmp_path / "sla.yaml").write_text(sla + "\nnamed_accounts_file: accounts.csv\n")
    (tmp_path / "accounts.csv").write_bytes(csv_bytes)
    return tmp_path / "sla.yaml"


def test_a_csv_saved_by_excel_as_csv_utf8_is_read(tmp_path: Path) -> None:
    text = "domain,owner\r\nnorthwind.example,U0REP1\r\n"
    path = sla_with_csv(tmp_path, text.encode("utf-8-sig"))  # a byte-order mark first
    assert load_policy(str(path)).named_index == {"northwind.example": "U0REP1"}


def test_the_csv_problems_say_their_line_one_way_in_line_order(policy: Policy) -> None:
    text = "\n".join(
        [
            "domain,owner",
            "northwind.example,U0REP1",
            "acme.example,U0GHOST",  # line 3: nobody the SLA knows
            "nope,U0REP1",  # line 4: not a domain
            "gmail.com,U0REP2",  # line 5: free mail
            "contoso.example",  # line 6: no owner
            "fabrikam.example,C0ENT",  # line 7: a channel
            "https://acme.slack.com/x,https://acme.slack.com/team/U0REP3",  # line 8: a link
        ]
    )
    with pytest.raises(PolicyError) as caught:
        with_named_accounts(policy, text, "accounts.csv")
    assert caught.value.problems == [
        "accounts.csv line 3: U0GHOST is in no segment's reps and is not a manager (nobody "
        "could claim for them)",
        "accounts.csv line 4: 'nope' is not a domain (like northwind.example)",
        "accounts.csv line 5: gmail.com is a free-mail domain; it never matches",
        "accounts.csv line 6: write `domain,owner` (the owner's Slack user id)",
        f"accounts.csv line 7: 'C0ENT' {USER}",
        "accounts.csv line 8: 'https://acme.slack.com/team/U0REP3' is a Slack link, not a user "
        "id: did you mean U0REP3?",
    ]
