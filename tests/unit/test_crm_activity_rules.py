"""What the CRM may send to POST /leads/{external_id}/activity, and the rules of a deal's stages:
set once, never overwritten, and an outcome never contradicted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.activity import (
    AttemptIn,
    Deal,
    StageIn,
    activity_time,
    apply_stage,
    parse_activity,
)
from bot.domain.refusal import Refusal

RECEIVED = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
NOW = RECEIVED + timedelta(days=10)
EARLIER = RECEIVED + timedelta(days=2)


def errors(payload: Any) -> dict[str, str]:
    activity, found = parse_activity(payload)
    assert activity is None
    return {error.field: error.message for error in found}


def test_an_attempt_and_a_stage_change_parse() -> None:
    attempt, _ = parse_activity(
        {"type": "attempt", "kind": "call", "at": "2026-11-24T10:00:00+11:00", "actor": "U0REP1"}
    )
    assert isinstance(attempt, AttemptIn)
    assert attempt.at == datetime(2026, 11, 23, 23, 0, tzinfo=UTC) and attempt.actor == "U0REP1"
    stage, _ = parse_activity(
        {"type": "stage", "stage": "won", "amount": 48000.5, "currency": "aud", "id": "sf-9"}
    )
    assert isinstance(stage, StageIn)
    assert (stage.stage, stage.amount, stage.currency, stage.id) == ("won", 48000.5, "AUD", "sf-9")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([], {"(body)": "must be a JSON object"}),
        ({}, {"type": 'must be "attempt", "stage" or "info"'}),
        ({"type": "meeting"}, {"type": 'must be "attempt", "stage" or "info"'}),
        ({"type": "attempt"}, {"kind": "is required"}),
        ({"type": "attempt", "kind": "fax"}, {"kind": "must be one of email, call, linkedin"}),
        (
            {"type": "attempt", "kind": "call", "actor": "maya"},
            {"actor": "must be a Slack user id like U0123ABCD"},
        ),
        ({"type": "stage", "stage": "closed"}, {"stage": "must be one of opportunity, won, lost"}),
        ({"type": "stage", "stage": "won", "amount": -1}, {"amount": "must be at least 0"}),
        (
            {"type": "stage", "stage": "won", "amount": 1e13},
            {"amount": "must be at most 999999999999"},
        ),
        (
            {"type": "stage", "stage": "won", "currency": "dollars"},
            {"currency": "must be a three-letter currency code like AUD"},
        ),
        (
            {"type": "stage", "stage": "won", "at": "yesterday"},
            {"at": "must be an ISO-8601 date-time like 2026-11-20T09:30:00Z"},
        ),
        ({"type": "stage", "stage": "won", "id": ""}, {"id": "must not be empty"}),
    ],
)
def test_bad_payloads_name_each_field(payload: Any, expected: dict[str, str]) -> None:
    assert errors(payload) == expected


@pytest.mark.parametrize("amount", ["lots", "NaN", "Infinity", [1]])
def test_an_amount_is_a_finite_number(amount: Any) -> None:
    assert errors({"type": "stage", "stage": "won", "amount": amount}) == {
        "amount": "must be a number"
    }


def test_an_activity_time_without_a_time_zone_is_refused() -> None:
    found = errors({"type": "attempt", "kind": "call", "at": "2026-11-24T10:00:00"})
    assert found == {
        "at": "must say its time zone, like 2026-11-20T09:30:00Z or 2026-11-20T09:30:00+11:00 "
        "(without one it could be UTC or the sender's own time)"
    }


def test_the_time_of_an_activity() -> None:
    assert activity_time(None, RECEIVED, NOW) == NOW
    assert activity_time(EARLIER, RECEIVED, NOW) == EARLIER
    # Never before the lead arrived (no negative speed to lead), nor after now...
    assert activity_time(RECEIVED - timedelta(days=1), RECEIVED, NOW) == RECEIVED
    assert activity_time(NOW + timedelta(minutes=4), RECEIVED, NOW) == NOW
    # ...and a time well in the future is a mistake.
    with pytest.raises(ValueError, match="must not be in the future"):
        activity_time(NOW + timedelta(hours=1), RECEIVED, NOW)


def test_an_opportunity_then_a_win() -> None:
    opportunity = apply_stage(Deal(), "opportunity", EARLIER, 30_000)
    assert opportunity == Deal(opportunity_at=EARLIER, amount=30_000)
    won = apply_stage(opportunity, "won", NOW, 35_000)
    assert won == Deal(opportunity_at=EARLIER, won_at=NOW, amount=35_000)


def test_stage_times_are_set_once() -> None:
    deal = Deal(opportunity_at=EARLIER, won_at=EARLIER, amount=35_000)
    again = apply_stage(deal, "won", NOW, 99_000)
    assert again == deal  # a won deal's time and amount are final
    assert apply_stage(deal, "opportunity", NOW, None) == deal


def test_a_close_without_an_opportunity_was_one() -> None:
    assert apply_stage(Deal(), "won", NOW, None) == Deal(opportunity_at=NOW, won_at=NOW)
    assert apply_stage(Deal(), "lost", NOW, None) == Deal(opportunity_at=NOW, lost_at=NOW)


def test_the_estimate_moves_until_the_deal_is_won() -> None:
    deal = Deal(opportunity_at=EARLIER, amount=30_000)
    assert apply_stage(deal, "opportunity", NOW, 32_000).amount == 32_000
    assert apply_stage(deal, "opportunity", NOW, 30_000.001) == deal  # the same, to the cent


def test_an_outcome_is_never_contradicted() -> None:
    with pytest.raises(Refusal, match="recorded as won on 2026-11-25; not lost too"):
        apply_stage(Deal(opportunity_at=EARLIER, won_at=EARLIER), "lost", NOW, None)
    with pytest.raises(Refusal, match="recorded as lost on 2026-11-25; not won too"):
        apply_stage(Deal(opportunity_at=EARLIER, lost_at=EARLIER), "won", NOW, None)
