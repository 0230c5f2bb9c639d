"""Which clock a managers' alert is about, and what a rep does that answers it: the first
attempt answers a missing first touch; "Contacted – progressing" a missing feedback (and a
missing touch); a question to marketing a missing feedback only; a final disposition all."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.domain import escalation
from bot.domain.effects import Settle, alert_clock, alert_key
from bot.domain.lead import LeadView, Stage

CLAIMED = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def claimed_lead() -> LeadView:
    """A claimed lead with no attempt and no feedback yet."""
    return LeadView(
        id=7,
        external_id="hs-7",
        email="a@b.example",
        stage=Stage.SAL,
        segment="enterprise",
        channel="C0ENT",
        tier="hot",
        score=90,
        sla_version="v1",
        received_at=CLAIMED,
        owner="U0REP1",
        claimed_at=CLAIMED,
    )


@pytest.mark.parametrize(
    ("done", "met"),
    [
        (escalation.ATTEMPT, {"no_touch"}),
        ("progressing", {"no_feedback", "no_touch"}),  # "Contacted": a touch, if none was logged
        ("more_info", {"no_feedback"}),  # feedback in words: no touch, no outcome
        ("sql", None),  # a final disposition answers every clock
        ("reject", None),
        ("recycle", None),
    ],
)
def test_what_a_rep_does_meets_these_clocks(done: str, met: set[str] | None) -> None:
    assert escalation.clocks_met(claimed_lead(), done) == (None if met is None else frozenset(met))


def test_once_touched_an_attempt_meets_nothing_and_progressing_only_the_feedback() -> None:
    touched = replace(claimed_lead(), first_touch_at=CLAIMED)
    assert escalation.clocks_met(touched, escalation.ATTEMPT) == frozenset()
    assert escalation.clocks_met(touched, "progressing") == frozenset({"no_feedback"})


def test_an_alert_key_names_its_clock() -> None:
    key = alert_key(7, 2, CLAIMED.isoformat(), "no_feedback")
    assert key == "sweep:7:2:2026-11-23T00:00:00+00:00:no_feedback:alert"
    assert alert_clock(key) == "no_feedback"
    # An alert sent before keys named their clock: its key ends with the instant.
    assert alert_clock("sweep:7:2:2026-11-23T00:00:00+00:00:alert") is None


def test_a_settle_with_clocks_takes_only_the_alerts_about_them() -> None:
    at = CLAIMED.isoformat()
    feedback = Settle(7, 2, "💬", "k", clocks=frozenset({"no_feedback"}))
    assert feedback.settles(alert_key(7, 2, at, "no_feedback"))
    assert not feedback.settles(alert_key(7, 2, at, "no_outcome"))  # the outcome is still owed
    assert not feedback.settles(alert_key(7, 1, at, "no_feedback"))  # another cycle's
    assert not feedback.settles(alert_key(70, 2, at, "no_feedback"))  # another lead's
    assert not feedback.settles(f"sweep:7:2:{at}:alert")  # its clock unknown: left live
    every = Settle(7, 2, "✅", "k")  # a claim, a close, a reassignment
    assert every.settles(alert_key(7, 2, at, "no_outcome"))
    assert every.settles(f"sweep:7:2:{at}:alert")
    assert not every.settles(alert_key(70, 2, at, "no_outcome"))
