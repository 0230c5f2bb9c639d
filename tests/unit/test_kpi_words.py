"""Every KPI has a target key, a plain definition in `/sla`, and a row in docs/reports.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain.policy import Policy, PolicyError, Targets, parse_policy, snapshot
from bot.slack.kpi_words import KPI_WORDS, target_words
from bot.slack.sla_view import sla_summary

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "reports.md").read_text(encoding="utf-8")


def test_every_target_key_has_a_definition_and_a_row_in_the_docs() -> None:
    keys = set(Targets.model_fields)
    assert {item.target_key for item in KPI_WORDS} == keys
    for key in keys:
        assert f"`targets.{key}" in DOCS, key


def test_sla_shows_every_kpi_with_its_target(policy: Policy) -> None:
    text = str(sla_summary(policy).blocks)
    for item in KPI_WORDS:
        assert f"*{item.name}*: {item.definition}" in text
    assert "*SAL → SQL*: MQLs qualified (SQL) ÷ MQLs accepted · target 15%" in text
    assert (
        "*Response time*: MQL creation → first contact attempt, the mean (its target's) and the "
        "median · target ≤ 2 business hours" in text
    )
    assert (
        "*Win rate*: won deals ÷ closed opportunities (won + lost) · no target (`targets.win_rate`)"
        in text
    )


def test_each_kind_of_target_in_words(policy: Policy) -> None:
    targets = {
        "win_rate": 0.25,
        "time_to_claim": "30 business minutes",
        "lead_velocity": {"mql_to_sal": 1, "opportunity_to_won": 60},
        "lead_quality": 3.5,
        "pipeline_per_week": 200000,
    }
    content = snapshot(policy)
    edited = parse_policy({**content, "targets": {**content["targets"], **targets}})
    assert target_words("win_rate", edited) == "target 25%"
    assert target_words("time_to_claim", edited) == "target ≤ 30 business minutes"
    assert target_words("lead_velocity", edited) == (
        "target mql to sal ≤ 1d, opportunity to won ≤ 60d"
    )
    assert target_words("lead_quality", edited) == "target 3.5 of 5"
    assert target_words("pipeline_per_week", edited) == "target AUD 200,000 a week"


@pytest.mark.parametrize(
    ("targets", "problem"),
    [
        ({"win_rate": 25}, "targets.win_rate: 25 is not a share between 0 and 1 (0.7 = 70%)"),
        ({"sql_to_sqo_rate": -0.1}, "is not a share between 0 and 1 (0.7 = 70%)"),
        ({"recycle_to_sql_rate": "half"}, "'half' is not a share between 0 and 1"),
        (
            {"response_time": "2 fortnights"},
            "targets.response_time: '2 fortnights': 'fortnights' is not a unit of time",
        ),
        ({"lead_velocity": {"sal_to_won": 3}}, "'sal_to_won' is not a step"),
        ({"lead_quality": 7}, "targets.lead_quality"),
    ],
)
def test_a_bad_target_names_its_path_and_the_fix(
    policy: Policy, targets: dict[str, object], problem: str
) -> None:
    content = snapshot(policy)
    with pytest.raises(PolicyError) as refused:
        parse_policy({**content, "targets": {**content["targets"], **targets}})
    assert problem in str(refused.value)
