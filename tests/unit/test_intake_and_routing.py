"""Intake validation, scoring, and segment and tier routing (the rotation: test_rotation_*)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bot.domain.intake import FieldError, LeadIn, parse_lead
from bot.domain.policy import Policy, parse_policy
from bot.domain.routing import (
    Score,
    choose_segment,
    choose_tier,
    mql_problems,
    score_lead,
)
from tests.conftest import lead_payload


def lead(**overrides: Any) -> LeadIn:
    parsed, errors = parse_lead(lead_payload(**overrides))
    assert parsed is not None, errors
    return parsed


def errors_of(payload: Any) -> list[tuple[str, str]]:
    parsed, errors = parse_lead(payload)
    assert parsed is None
    assert errors
    return [(error.field, error.message) for error in errors]


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in lead_payload().items() if k != key}


def company(**fields: Any) -> dict[str, Any]:
    return {"name": "Northwind Logistics", **fields}


def unscored(**overrides: Any) -> LeadIn:
    """A lead with no score of its own, no engagement and no source: only what is overridden."""
    base: dict[str, Any] = {
        "score": None,
        "engagement": [],
        "source": None,
        "title": None,
        "company": company(),
    }
    return lead(**{**base, **overrides})


def routing_policy() -> Policy:
    """A small SLA whose segments match on country, industry and source lists."""
    return parse_policy(
        {
            "timezone": "Europe/London",
            "business_hours": {"holidays": "GB-ENG"},
            "channels": {"marketing_feedback": "C0MKT"},
            "segments": [
                {
                    "name": "anz",
                    "when": {"country": ["AU", "New Zealand"]},
                    "channel": "C0ANZ",
                    "reps": ["U0ANZ1"],
                },
                {
                    "name": "health",
                    "when": {"industry": "Healthcare"},
                    "channel": "C0HEALTH",
                    "reps": ["U0HEALTH1"],
                },
                {
                    "name": "partners",
                    "when": {"source": ["Referral", "partner_portal"]},
                    "channel": "C0PART",
                    "reps": ["U0PART1"],
                },
                {
                    "name": "big_uk",
                    "when": {"employees_min": 500, "country": "GB"},
                    "channel": "C0BIG",
                    "reps": ["U0BIG1"],
                },
            ],
            "mql": {
                "required_fields": ["email", "company.name", "title", "phone"],
                "threshold": 50,
            },
            "tiers": [
                {"name": "hot", "when": {"score_min": 80}, "first_touch": "1h"},
                {"name": "referral", "when": {"source": "referral"}, "first_touch": "4h"},
                {"name": "warm", "when": {"score_min": 50}, "first_touch": "1d"},
            ],
            "dispositions": [{"code": "qualified", "label": "Qualified", "outcome": "sql"}],
        }
    )


# --- intake ------------------------------------------------------------------------------------


def test_a_complete_lead_is_accepted() -> None:
    parsed, errors = parse_lead(lead_payload())
    assert errors == []
    assert parsed is not None
    assert parsed.external_id == "hs-1"
    assert parsed.company.employees == 2400
    assert parsed.score == 88
    assert parsed.engagement[0].at == datetime(2026, 11, 18, 23, tzinfo=UTC)
    assert parsed.engagement[1].at is None
    assert parsed.value("company.name") == "Northwind Logistics"
    assert parsed.value("company.nothing") is None


def test_only_external_id_and_email_are_required() -> None:
    parsed, errors = parse_lead({"external_id": "x-1", "email": "a@b.example"})
    assert errors == []
    assert parsed is not None
    assert parsed.company.name is None
    assert parsed.engagement == []


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        (lead_payload(company={"employees": "lots"}), "company.employees", "whole number"),
        (lead_payload(company={"employees": -3}), "company.employees", "at least 0"),
        (lead_payload(company={"employees": 12.5}), "company.employees", "whole number"),
        (lead_payload(engagement=[{"type": "page", "at": "soon"}]), "engagement[0].at", "ISO-8601"),
        (lead_payload(engagement=[{"title": "no type"}]), "engagement[0].type", "is required"),
        (lead_payload(engagement="webinar"), "engagement", "must be a list"),
        (lead_payload(email="not-an-email"), "email", "must be an email address"),
        (lead_payload(email="two@@example.com"), "email", "must be an email address"),
        (without("email"), "email", "is required"),
        (without("external_id"), "external_id", "is required"),
        (lead_payload(external_id="  ", email="a@b.example"), "external_id", "must not be empty"),
        (lead_payload(score=101), "score", "at most 100"),
        (lead_payload(score="high"), "score", "whole number"),
        (lead_payload(company="Northwind"), "company", "must be an object"),
        (lead_payload(name="x" * 501), "name", "at most 500 characters"),
        (lead_payload(received_at="last tuesday"), "received_at", "ISO-8601"),
    ],
)  # fmt: skip
def test_field_errors_name_the_field(payload: dict[str, Any], field: str, message: str) -> None:
    errors = errors_of(payload)
    assert [name for name, _ in errors] == [field], errors
    assert message in errors[0][1]


def test_every_field_error_is_reported() -> None:
    payload = lead_payload(email=None, score="abc", company={"employees": 5.5})
    fields = [name for name, _ in errors_of(payload)]
    assert sorted(fields) == ["company.employees", "email", "score"]


def test_field_errors_are_values_for_a_400() -> None:
    _, errors = parse_lead(lead_payload(email="nope"))
    assert errors == [
        FieldError(field="email", message="must be an email address like jane@example.com")
    ]


@pytest.mark.parametrize("payload", [None, [], "lead", 7])
def test_a_body_that_is_not_an_object(payload: Any) -> None:
    assert errors_of(payload) == [("(body)", "must be a JSON object")]


NO_ZONE = (
    "must say its time zone, like 2026-11-20T09:30:00Z or 2026-11-20T09:30:00+11:00 "
    "(without one it could be UTC or the sender's own time)"
)


@pytest.mark.parametrize("when", ["2026-11-20T09:30:00", "2026-11-20 09:30", "2026-11-20"])
def test_a_time_without_a_time_zone_is_refused_not_guessed(when: str) -> None:
    # RFC 3339's date-time (the OpenAPI `format: date-time` intake publishes) has an offset.
    # Read as UTC, a Sydney CRM's 09:30 was 20:30, and one of 10 minutes ago "in the future".
    assert errors_of(lead_payload(received_at=when)) == [("received_at", NO_ZONE)]
    engagement = [{"type": "webinar", "at": when}]
    assert errors_of(lead_payload(engagement=engagement)) == [("engagement[0].at", NO_ZONE)]


def test_a_utc_time_or_a_unix_time_is_read_as_written() -> None:
    assert lead(received_at="2026-11-20T09:30:00Z").received_at == datetime(
        2026, 11, 20, 9, 30, tzinfo=UTC
    )
    unix = int(datetime(2026, 11, 20, 9, 30, tzinfo=UTC).timestamp())
    parsed = lead(received_at=unix)
    assert parsed.received_at == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    assert parsed.received_at is not None and parsed.received_at.utcoffset() == timedelta(0)


def test_an_offset_received_at_is_converted_to_utc() -> None:
    parsed = lead(
        received_at="2026-11-20T09:30:00+11:00",
        engagement=[{"type": "webinar", "at": "2026-11-19T08:00:00-05:00"}],
    )
    sydney = timezone(timedelta(hours=11))
    assert parsed.received_at == datetime(2026, 11, 20, 9, 30, tzinfo=sydney)
    assert parsed.received_at is not None and parsed.received_at.tzinfo is UTC
    assert parsed.engagement[0].at == datetime(2026, 11, 19, 13, tzinfo=UTC)
    assert parsed.engagement[0].at is not None and parsed.engagement[0].at.tzinfo is UTC


def test_strings_are_stripped_and_email_lowercased() -> None:
    parsed = lead(
        email="  Priya.RAMAN@Northwind.Example ",
        name="  Priya Raman\n",
        company={"name": "\tNorthwind  ", "country": " AU "},
        engagement=[{"type": " webinar ", "title": " Fixing leakage "}],
    )
    assert parsed.email == "priya.raman@northwind.example"
    assert parsed.name == "Priya Raman"
    assert parsed.company.name == "Northwind"
    assert parsed.company.country == "AU"
    assert parsed.engagement[0].type == "webinar"
    assert parsed.engagement[0].title == "Fixing leakage"


def test_unknown_keys_are_ignored_not_refused() -> None:
    parsed = lead(favourite_colour="teal", company={"name": "N", "ticker": "NW"})
    assert not hasattr(parsed, "favourite_colour")


# --- segments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("employees", "segment"),
    [
        (5000, "enterprise"),
        (1000, "enterprise"),
        (999, "mid_market"),
        (200, "mid_market"),
        (199, "smb"),
        (0, "smb"),
        (None, "smb"),
    ],
)
def test_segment_by_company_size(policy: Policy, employees: int | None, segment: str) -> None:
    chosen = choose_segment(lead(company=company(employees=employees)), policy)
    assert chosen is not None and chosen.name == segment


def test_the_senders_segment_wins_when_it_is_real(policy: Policy) -> None:
    small = company(employees=10)
    chosen = choose_segment(lead(company=small, segment="enterprise"), policy)
    assert chosen is not None and chosen.name == "enterprise"
    assert chosen.channel == "C0ENT"


def test_an_unknown_sender_segment_is_ignored(policy: Policy) -> None:
    chosen = choose_segment(lead(company=company(employees=10), segment="galactic"), policy)
    assert chosen is not None and chosen.name == "smb"


@pytest.mark.parametrize(
    ("fields", "segment"),
    [
        ({"company": company(country="au")}, "anz"),
        ({"company": company(country=" new zealand ")}, "anz"),
        ({"company": company(industry="HEALTHCARE")}, "health"),
        ({"company": company(), "source": "REFERRAL"}, "partners"),
        ({"company": company(), "source": "Partner_Portal"}, "partners"),
        ({"company": company(country="gb", employees=800)}, "big_uk"),
    ],
)
def test_lists_match_case_insensitively(fields: dict[str, Any], segment: str) -> None:
    chosen = choose_segment(lead(**fields), routing_policy())
    assert chosen is not None and chosen.name == segment


@pytest.mark.parametrize(
    "fields",
    [
        {"company": company(country="GB", employees=20)},  # every condition must hold
        {"company": company(country="US")},
        {"company": company(), "source": "webinar"},
        {"company": company(), "source": None},
    ],
)
def test_no_segment_matches_without_a_catch_all(fields: dict[str, Any]) -> None:
    assert choose_segment(lead(**fields), routing_policy()) is None


# --- tiers and scores --------------------------------------------------------------------------


@pytest.mark.parametrize(("score", "tier"), [(100, "hot"), (80, "hot"), (79, "warm"), (0, "warm")])
def test_tier_by_score(policy: Policy, score: int, tier: str) -> None:
    assert choose_tier(score, "webinar", policy).name == tier


def test_tier_by_source_and_the_last_tier_as_fallback() -> None:
    policy = routing_policy()
    assert choose_tier(90, "referral", policy).name == "hot"
    assert choose_tier(10, "Referral", policy).name == "referral"
    assert choose_tier(60, "webinar", policy).name == "warm"
    assert choose_tier(10, "webinar", policy).name == "warm"  # nothing matched: the last tier


def test_a_lead_with_its_own_score_keeps_it() -> None:
    score = score_lead(lead(score=12, title="CEO"))
    # Ours is computed too and kept beside it, its reasons after the sender's.
    ours = ["senior title (+30)", "2,400 employees (+20)", "2 engagement(s) (+25)"]
    assert score == Score(12, ["score sent by the marketing system", *ours], own=True, handoff=75)
    assert score.ours == 75
    assert score_lead(lead(score=0)).value == 0


def test_computed_score_explains_itself() -> None:
    score = score_lead(lead(score=None))
    assert score.own is False
    assert score.value == 75
    assert score.reasons == ["senior title (+30)", "2,400 employees (+20)", "2 engagement(s) (+25)"]


def test_intent_is_capped_and_the_total_never_passes_100() -> None:
    demos = [{"type": "demo_request"}] * 4
    score = score_lead(unscored(title="Chief Revenue Officer", engagement=demos))
    assert "4 engagement(s) (+50)" in score.reasons
    assert score.value == 30 + 50


def test_source_counts_as_intent_only_without_engagement() -> None:
    assert score_lead(unscored(source="demo_request")).reasons == ["source demo_request (+30)"]
    with_engagement = score_lead(unscored(source="demo_request", engagement=[{"type": "page"}]))
    assert with_engagement.value == 10


def test_small_company_adds_no_fit() -> None:
    assert score_lead(unscored(company=company(employees=49))).value == 0
    assert score_lead(unscored(company=company(employees=50))).value == 20


@pytest.mark.parametrize(
    ("title", "points"),
    [
        ("VP Sales", 30),
        ("CEO/Founder", 30),
        ("Chief Executive", 30),
        ("Head of Growth", 30),
        ("Vice President, Marketing", 30),
        ("Director of Sales", 20),
        ("Sales Manager", 20),
        ("Marketing Coordinator", 0),
        ("Microsoft Dynamics Specialist", 0),
        ("Headcount Analyst", 0),
        ("Engineer", 0),
    ],
)
def test_title_seniority_counts_whole_words(title: str, points: int) -> None:
    assert score_lead(unscored(title=title)).value == points


# --- the MQL definition ------------------------------------------------------------------------


def test_a_complete_high_scoring_lead_is_an_mql(policy: Policy) -> None:
    parsed = lead()
    assert mql_problems(parsed, score_lead(parsed), policy) == []


def test_missing_required_fields_are_listed(policy: Policy) -> None:
    parsed = lead(title="", company={"employees": 20})
    problems = mql_problems(parsed, score_lead(parsed), policy)
    assert problems == ["missing company.name", "missing title"]


def test_a_low_score_is_a_problem(policy: Policy) -> None:
    parsed = lead(score=59)
    assert mql_problems(parsed, score_lead(parsed), policy) == [
        "score 59 is below the MQL threshold 60"
    ]
    exactly = lead(score=60)
    assert mql_problems(exactly, score_lead(exactly), policy) == []


def test_missing_data_and_low_score_together() -> None:
    parsed = lead(phone=None, score=10)
    assert mql_problems(parsed, score_lead(parsed), routing_policy()) == [
        "missing phone",
        "score 10 is below the MQL threshold 50",
    ]
