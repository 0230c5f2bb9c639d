"""The MQL definition as the SLA file writes it (bot/domain/scoring.py): fit and intent signals
scored as of the lead's arrival, recency windows to the minute, signals that qualify alone, a
CRM score kept with ours beside it, the built-in definition for a file without signals, and
`handoff check`'s answers to a broken definition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.intake import LeadIn
from bot.domain.policy import Mql, Policy, parse_policy, policy_from_snapshot, snapshot
from bot.domain.routing import mql_problems, route
from bot.domain.scoring import OWN_SCORE, ago, is_own, score_lead
from tests.unit.test_policy import example, problems_after

ARRIVAL = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PRICING = {"label": "Pricing page", "type": "page_view", "url": "/pricing", "within": "7d"}
EBOOK = {"label": "Enterprise ebook", "type": "content_download", "title": "enterprise"}
DEMO = {"label": "Demo request", "type": "demo_request", "points": 40, "qualifies": True}


def definition(**changes: Any) -> Mql:
    data: dict[str, Any] = {
        "required_fields": ["email", "company.name"],
        "threshold": 60,
        "fit": [{"employees_min": 51, "points": 20}],
        "intent": [{**PRICING, "points": 20}, {**EBOOK, "within": "30d", "points": 20}],
    }
    return Mql.model_validate(data | changes)


def seen(kind: str, before: timedelta, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "at": (ARRIVAL - before).isoformat(), **extra}


def pricing(before: timedelta) -> dict[str, Any]:
    return seen("page_view", before, url="https://acme.example/pricing", title="Pricing")


def ebook(before: timedelta) -> dict[str, Any]:
    return seen("content_download", before, title="The Enterprise Handoff ebook")


def lead(**fields: Any) -> LeadIn:
    data: dict[str, Any] = {
        "external_id": "seed-000",
        "email": "dana@acme.example",
        "title": "Marketing Manager",
        "company": {"name": "Acme", "employees": 240},
        "received_at": ARRIVAL.isoformat(),
    }
    return LeadIn.model_validate(data | fields)


def policy_with(mql: dict[str, Any]) -> Policy:
    data = example()
    data["mql"] = mql
    return parse_policy(data)


# --- the seed's example lead -------------------------------------------------------------------


def test_the_seed_example_lead_scores_60_with_its_reasons_strongest_first() -> None:
    seed = lead(engagement=[ebook(timedelta(days=12)), pricing(timedelta(days=2))])
    score = score_lead(seed, definition())
    assert (score.value, score.own) == (60, False)
    assert score.reasons == [
        "240 employees +20",
        "Pricing page 2 days ago +20",
        "Enterprise ebook 12 days ago +20",
    ]
    assert not mql_problems(seed, score, policy_with(definition().model_dump(mode="json")))


def test_the_shipped_file_qualifies_the_seed_example(policy: Policy) -> None:
    seed = lead(engagement=[ebook(timedelta(days=12)), pricing(timedelta(days=2))])
    routing = route(seed, policy)
    assert routing.is_mql, routing.problems
    assert routing.score.value >= policy.mql.threshold
    # Without the pricing page it is not one: the three signals are the definition.
    routing = route(lead(engagement=[ebook(timedelta(days=12))]), policy)
    assert not routing.is_mql


# --- recency, as of arrival --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "points"),
    [
        (timedelta(days=7), 20),  # exactly the window: still in it
        (timedelta(days=7, minutes=1), 0),  # a minute older: earns nothing
        (timedelta(0), 20),  # the instant it arrived
        (-timedelta(minutes=1), 0),  # after the arrival: it had not happened yet
    ],
)
def test_recency_window_edges(before: timedelta, points: int) -> None:
    only_pricing = definition(fit=[], intent=[{**PRICING, "points": 20}], threshold=20)
    assert score_lead(lead(engagement=[pricing(before)]), only_pricing).value == points


def test_the_score_is_as_of_arrival_not_as_of_scoring() -> None:
    visit = lead(engagement=[pricing(timedelta(days=2))])
    assert score_lead(visit, definition()).value == 40
    # Scored a week after arrival (a re-engagement date): the visit is too old by then.
    assert score_lead(visit, definition(), ARRIVAL + timedelta(days=6)).value == 20
    # Without `received_at`, the caller's instant is the arrival.
    unstamped = lead(engagement=[pricing(timedelta(days=2))], received_at=None)
    assert score_lead(unstamped, definition(), ARRIVAL).value == 40


def test_an_undated_engagement_meets_no_recency_window_but_a_signal_without_one() -> None:
    undated = {"type": "page_view", "url": "https://acme.example/pricing"}
    assert score_lead(lead(engagement=[undated]), definition()).value == 20  # the fit only
    open_ended = definition(intent=[{**PRICING, "within": None, "points": 20}])
    assert score_lead(lead(engagement=[undated]), open_ended).value == 40


def test_each_signal_counts_once_for_its_most_recent_engagement() -> None:
    visits = [pricing(timedelta(days=5)), pricing(timedelta(hours=3)), pricing(timedelta(days=1))]
    score = score_lead(lead(engagement=visits), definition())
    assert score.value == 40
    assert "Pricing page 3 hours ago +20" in score.reasons


def test_match_on_url_and_title_and_engagement_type_aliases() -> None:
    mql = definition(fit=[])
    blog = seen("page", timedelta(days=1), url="https://acme.example/blog")
    assert score_lead(lead(engagement=[blog]), mql).value == 0
    # A `pricing` or `Page View` type is a page view; the URL still has to match.
    aliased = seen("Page View", timedelta(days=1), url="https://acme.example/Pricing")
    assert score_lead(lead(engagement=[aliased]), mql).value == 20
    other_ebook = seen("ebook", timedelta(days=1), title="SMB starter guide")
    assert score_lead(lead(engagement=[other_ebook]), mql).value == 0


def test_the_total_never_passes_100() -> None:
    mql = definition(fit=[{"employees_min": 1, "points": 90}])
    assert score_lead(lead(engagement=[pricing(timedelta(days=1))]), mql).value == 100


# --- fit signals -------------------------------------------------------------------------------


def test_fit_signals_show_the_leads_own_facts() -> None:
    mql = definition(
        intent=[],
        fit=[
            {"employees_min": 51, "employees_max": 500, "points": 15},
            {"industries": ["Software"], "countries": ["AU", "NZ"], "points": 10},
            {"seniority": ["vp"], "points": 5},
            {"titles": ["revops"], "label": "RevOps buyer", "points": 5},
        ],
    )
    match = lead(
        title="VP RevOps",
        company={"name": "Acme", "employees": 240, "industry": "software", "country": "AU"},
    )
    assert score_lead(match, mql).reasons == [
        "240 employees +15",
        "software, AU +10",
        "VP RevOps +5",
        "RevOps buyer +5",
    ]
    # Every condition of a signal must hold; a missing fact holds none.
    miss = lead(title="Developer", company={"name": "Acme", "industry": "Software"})
    assert score_lead(miss, mql).value == 0


def test_title_words_are_whole_words() -> None:
    mql = definition(intent=[], fit=[{"seniority": ["executive"], "points": 30}])
    assert score_lead(lead(title="CTO"), mql).value == 30
    assert score_lead(lead(title="Director of Sales"), mql).value == 0  # "cto" inside it


# --- qualifies alone ---------------------------------------------------------------------------


def test_a_demo_request_qualifies_alone_below_the_threshold() -> None:
    policy = policy_with(
        definition(intent=[{**PRICING, "points": 20}, {**DEMO, "within": "30d"}]).model_dump(
            mode="json"
        )
    )
    demo = lead(engagement=[seen("demo", timedelta(days=1))], company={"name": "Acme"})
    routing = route(demo, policy)
    assert routing.score.value == 40 < policy.mql.threshold
    assert routing.score.qualified_by == "Demo request"
    assert routing.is_mql
    assert routing.score.reasons == ["Demo request 1 day ago +40 (qualifies)"]
    # It does not excuse missing data.
    bare = lead(engagement=[seen("demo", timedelta(days=1))], company={})
    assert route(bare, policy).problems == ["missing company.name"]


# --- a CRM score -------------------------------------------------------------------------------


def test_a_crm_score_is_kept_and_ours_is_computed_beside_it() -> None:
    seed = lead(score=72, engagement=[pricing(timedelta(days=2))])
    score = score_lead(seed, definition())
    assert (score.value, score.own, score.handoff, score.ours) == (72, True, 40, 40)
    assert score.reasons == [OWN_SCORE, "240 employees +20", "Pricing page 2 days ago +20"]
    assert is_own(score.reasons)
    assert not is_own(score.reasons[1:])


# --- the built-in definition -------------------------------------------------------------------


def test_a_file_without_signals_scores_exactly_as_before() -> None:
    mql = Mql.model_validate({"required_fields": ["email"], "threshold": 60})
    assert not mql.has_signals
    engaged = lead(
        title="VP Sales",
        company={"name": "Acme", "employees": 2400},
        engagement=[{"type": "webinar"}, {"type": "page"}],
    )
    for definition_ in (None, mql):
        score = score_lead(engaged, definition_)
        assert score.value == 75
        assert score.reasons == [
            "senior title (+30)",
            "2,400 employees (+20)",
            "2 engagement(s) (+25)",
        ]
    # Engagement long before the arrival still counts there: no recency in the built-in one.
    old = lead(engagement=[seen("demo_request", timedelta(days=400))], title="Analyst")
    assert score_lead(old, mql).value == 20 + 30


def test_ago_words() -> None:
    assert ago(ARRIVAL - timedelta(days=1, hours=5), ARRIVAL) == "1 day ago"
    assert ago(ARRIVAL - timedelta(hours=1), ARRIVAL) == "1 hour ago"
    assert ago(ARRIVAL - timedelta(minutes=59), ARRIVAL) == "just before"


# --- handoff check -----------------------------------------------------------------------------


def with_mql(**changes: Any) -> list[str]:
    def change(data: dict[str, Any]) -> None:
        data["mql"] = {"required_fields": ["email"], "threshold": 40, **changes}

    return problems_after(change)


def test_a_recency_window_without_a_unit_names_its_path() -> None:
    for written in (7, "7"):
        problems = with_mql(intent=[{**PRICING, "within": written, "points": 20}], fit=[])
        assert problems == ["mql.intent[0].within: 7 has no unit: write a recency window like 7d"]


def test_a_business_time_recency_window_is_refused() -> None:
    (problem,) = with_mql(intent=[{**PRICING, "within": "2bd", "points": 40}])
    assert problem.startswith("mql.intent[0].within: 2 business days is business time")


def test_unknown_engagement_type_negative_points_and_empty_fit_are_named() -> None:
    problems = with_mql(
        intent=[{"type": "pricing_page", "points": 20}, {"type": "event", "points": -5}],
        fit=[{"points": 10}],
    )
    assert any(
        p.startswith("mql.intent[0].type: unknown engagement type 'pricing_page'") for p in problems
    ), problems
    assert "mql.intent[1].points: -5 is negative: points add to the score (0 to 100)" in problems
    assert any(p.startswith("mql.fit[0]: a fit signal needs a condition") for p in problems)


def test_an_unreachable_threshold_is_refused_unless_a_signal_qualifies_alone() -> None:
    problems = with_mql(threshold=70, fit=[{"employees_min": 51, "points": 20}])
    assert problems == [
        "mql.threshold: 70 cannot be reached: all the fit and intent signals together give 20 "
        "points, so no lead would ever be an MQL; lower the threshold, add points, or mark a "
        "signal `qualifies: true`"
    ]
    data = example()
    data["mql"] = {"threshold": 70, "intent": [{**DEMO}]}
    assert parse_policy(data).mql.qualifies_alone  # only a demo request makes an MQL


def test_a_stored_sla_version_keeps_its_signals(policy: Policy) -> None:
    """A lead keeps the SLA version it arrived under: the signals survive the snapshot, their
    windows on the calendar clock even in a snapshot that names no clock."""
    again = policy_from_snapshot(snapshot(policy), policy.version)
    assert again.mql == policy.mql and again.mql.has_signals
    stored = snapshot(policy)
    for item in stored["mql"]["intent"]:
        item["within"].pop("clock")
    windows = [item.within for item in policy_from_snapshot(stored, "v0").mql.intent]
    assert windows == [item.within for item in policy.mql.intent]


# --- properties --------------------------------------------------------------------------------

_TYPES = st.sampled_from(["page_view", "pricing", "ebook", "webinar", "demo", "email_click"])
_ITEM = st.fixed_dictionaries(
    {
        "type": _TYPES,
        "title": st.sampled_from(["Enterprise guide", "Pricing", "Blog"]),
        "url": st.sampled_from(["https://acme.example/pricing", "https://acme.example/blog"]),
        "at": st.integers(min_value=-3 * 24 * 60, max_value=60 * 24 * 60).map(
            lambda minutes: (ARRIVAL - timedelta(minutes=minutes)).isoformat()
        ),
    }
)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(_ITEM, max_size=8), extra=_ITEM, employees=st.integers(0, 5000))
def test_scores_stay_in_range_and_only_past_engagement_counts(
    policy: Policy, items: list[dict[str, Any]], extra: dict[str, Any], employees: int
) -> None:
    """0–100 always; engagement after the arrival never changes the score; more engagement
    never lowers it; the same engagement seen later (older at arrival) never scores higher."""
    company = {"name": "Acme", "employees": employees}
    base = score_lead(lead(company=company, engagement=items), policy.mql)
    assert 0 <= base.value <= 100
    future = {**extra, "at": (ARRIVAL + timedelta(minutes=1)).isoformat()}
    assert score_lead(lead(company=company, engagement=[*items, future]), policy.mql) == base
    more = score_lead(lead(company=company, engagement=[*items, extra]), policy.mql)
    assert more.value >= base.value
    older = [{**item, "at": (ARRIVAL - timedelta(days=40)).isoformat()} for item in items]
    assert score_lead(lead(company=company, engagement=older), policy.mql).value <= base.value
