"""Who may claim, work and disposition a lead, and what they are told when they may not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain.access import Action
from bot.domain.lead import (
    STAGE_BY_OUTCOME,
    AttemptKind,
    LeadView,
    Stage,
    check_claim,
    check_disposition,
    check_manager,
    check_pool,
    check_work,
    comes_back_at,
    snoozed_until,
)
from bot.domain.policy import Policy
from bot.domain.refusal import Reason, Refusal

RECEIVED = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
POOL_REP = "U0REP1"  # an enterprise rep in the example SLA
OTHER_POOL_REP = "U0REP2"
SMB_REP = "U0REP5"
MANAGER = "U0MGR1"


def lead(stage: Stage = Stage.MQL, owner: str | None = None, **fields: Any) -> LeadView:
    view = LeadView(
        id=42,
        external_id="hs-42",
        email="priya@northwind.example",
        stage=stage,
        segment="enterprise",
        channel="C0ENT",
        tier="hot",
        score=88,
        sla_version="v1",
        received_at=RECEIVED,
        name="Priya Raman",
        owner=owner,
    )
    return replace(view, **fields) if fields else view


def refusal(call: Callable[..., object], *args: object) -> str:
    with pytest.raises(Refusal) as caught:
        call(*args)
    assert caught.value.message == str(caught.value)
    return caught.value.message


# --- claim -------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", [POOL_REP, OTHER_POOL_REP, MANAGER])
def test_a_pool_rep_or_manager_may_claim(policy: Policy, actor: str) -> None:
    check_claim(lead(), actor, policy)


def test_a_rep_of_another_segment_is_refused_politely(policy: Policy) -> None:
    message = refusal(check_claim, lead(), SMB_REP, policy)
    assert message.startswith("Sorry, only the enterprise reps and the sales managers")
    assert "Ask a manager" in message


def test_a_stranger_is_refused(policy: Policy) -> None:
    refusal(check_claim, lead(), "U0NOBODY", policy)


def test_a_claimed_lead_names_its_owner(policy: Policy) -> None:
    claimed = lead(Stage.SAL, owner=OTHER_POOL_REP)
    message = refusal(check_claim, claimed, POOL_REP, policy)
    assert f"already claimed by <@{OTHER_POOL_REP}>" in message
    # The owner pressing Claim again hears the same thing, and so does a manager.
    assert refusal(check_claim, claimed, OTHER_POOL_REP, policy) == message
    assert refusal(check_claim, claimed, MANAGER, policy) == message


@pytest.mark.parametrize("stage", [Stage.SQL, Stage.REJECT, Stage.NURTURE, Stage.RECYCLE])
def test_a_closed_lead_cannot_be_claimed(policy: Policy, stage: Stage) -> None:
    message = refusal(check_claim, lead(stage), POOL_REP, policy)
    assert "closed" in message and stage.value in message


def test_a_lead_of_a_segment_no_longer_in_the_sla_is_for_managers(policy: Policy) -> None:
    orphan = lead(segment="retired_segment")
    refusal(check_claim, orphan, POOL_REP, policy)
    check_claim(orphan, MANAGER, policy)


# --- work --------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", [POOL_REP, MANAGER])
def test_the_owner_or_a_manager_may_work_the_lead(policy: Policy, actor: str) -> None:
    check_work(lead(Stage.SAL, owner=POOL_REP), actor, policy, "log a call")


@pytest.mark.parametrize("actor", [OTHER_POOL_REP, SMB_REP])
def test_anyone_else_is_refused_with_the_owner_named(policy: Policy, actor: str) -> None:
    message = refusal(check_work, lead(Stage.SAL, owner=POOL_REP), actor, policy, "log a call")
    assert f"<@{POOL_REP}>" in message and "manager" in message
    assert message.endswith("log a call.")


def test_an_unclaimed_lead_must_be_claimed_first(policy: Policy) -> None:
    for actor in (POOL_REP, MANAGER):
        message = refusal(check_work, lead(), actor, policy, "log an email")
        assert message.startswith("Claim this lead") and "log an email" in message


@pytest.mark.parametrize("actor", [POOL_REP, MANAGER])
def test_a_closed_lead_cannot_be_worked(policy: Policy, actor: str) -> None:
    closed = lead(
        Stage.REJECT, owner=POOL_REP, disposition_code="not_a_fit", disposition_reason="No budget"
    )
    message = refusal(check_work, closed, actor, policy, "disposition it")
    assert "already closed as Not a fit (No budget); nothing was changed" in message


def test_a_closed_lead_without_a_code_names_its_stage(policy: Policy) -> None:
    message = refusal(check_work, lead(Stage.NURTURE, owner=POOL_REP), POOL_REP, policy, "x")
    assert "already closed as nurture" in message


# --- disposition -------------------------------------------------------------------------------


def test_an_unknown_code_names_the_known_labels(policy: Policy) -> None:
    message = refusal(check_disposition, policy, "won_the_lottery", None, None)
    assert message.startswith("'won_the_lottery' is not a disposition of this SLA")
    for label in ("Qualified", "Not a fit", "Bad data", "Bad timing", "Unable to contact"):
        assert label in message


@pytest.mark.parametrize("code", ["qualified", "bad_timing", "needs_nurturing", "no_response"])
def test_codes_without_a_required_reason_need_nothing(policy: Policy, code: str) -> None:
    disposition, errors = check_disposition(policy, code, None, None)
    assert disposition.code == code
    assert errors == {}


def test_a_required_reason_and_note_are_both_asked_for(policy: Policy) -> None:
    disposition, errors = check_disposition(policy, "not_a_fit", None, None)
    assert disposition.label == "Not a fit"
    assert set(errors) == {"reason", "note"}
    assert errors["reason"] == "Pick the reason marketing should hear."
    assert errors["note"] == "Add a short note for marketing: what did you learn?"


def test_a_reason_must_be_one_of_the_codes_reasons(policy: Policy) -> None:
    _, errors = check_disposition(policy, "not_a_fit", "Wrong contact", "They moved on.")
    assert errors == {"reason": "'Wrong contact' is not one of the reasons for Not a fit."}


def test_a_blank_note_is_missing(policy: Policy) -> None:
    _, errors = check_disposition(policy, "bad_data", "Duplicate", "   \n ")
    assert set(errors) == {"note"}


def test_a_complete_rejection_has_no_errors(policy: Policy) -> None:
    disposition, errors = check_disposition(policy, "bad_data", "Duplicate", "Same as hs-41.")
    assert disposition.outcome == "reject"
    assert errors == {}


# --- the small vocabulary around it ------------------------------------------------------------


def test_open_stages_and_outcomes() -> None:
    assert [stage for stage in Stage if stage.is_open] == [Stage.MQL, Stage.SAL]
    assert STAGE_BY_OUTCOME == {
        "sql": Stage.SQL,
        "reject": Stage.REJECT,
        "nurture": Stage.NURTURE,
        "recycle": Stage.RECYCLE,
        "progressing": Stage.SAL,  # feedback: the lead stays open
    }
    assert [kind.label for kind in AttemptKind] == ["Log email", "Log call", "Log LinkedIn"]


def test_display_name_and_company_name_fall_back() -> None:
    assert lead().display_name == "Priya Raman"
    assert lead(name=None).display_name == "priya@northwind.example"
    assert lead().company_name is None
    assert lead(company={"name": "Northwind"}).company_name == "Northwind"


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        (lambda p: check_claim(lead(owner=OTHER_POOL_REP), POOL_REP, p), Reason.TAKEN),
        (lambda p: check_claim(lead(Stage.SQL), POOL_REP, p), Reason.CLOSED),
        (lambda p: check_claim(lead(), SMB_REP, p), Reason.NOT_ALLOWED),
        (lambda p: check_work(lead(), POOL_REP, p, "log an attempt"), Reason.NOT_READY),
        (
            lambda p: check_manager(lead(), POOL_REP, p, Action.REASSIGN, "reassign"),
            Reason.NOT_ALLOWED,
        ),
        (lambda p: check_pool(lead(), SMB_REP, p), Reason.INVALID),
    ],
)
def test_each_refusal_says_why_in_a_stable_reason(
    policy: Policy, check: Callable[[Policy], None], reason: Reason
) -> None:
    with pytest.raises(Refusal) as refused:
        check(policy)
    assert refused.value.reason is reason
    assert refused.value.message  # and in words for the person


def test_a_recycled_lead_comes_back_after_recycle_after_the_others_never(policy: Policy) -> None:
    now = RECEIVED
    back = comes_back_at(lead(Stage.SAL, POOL_REP), policy, Stage.RECYCLE, now)
    assert back == policy.calendar.add(now, policy.recycle_after)
    assert comes_back_at(lead(Stage.SAL, POOL_REP), policy, Stage.REJECT, now) is None


def test_a_snooze_runs_in_working_hours(policy: Policy) -> None:
    friday_4pm = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # 16:00 in Sydney
    until = snoozed_until(lead(), policy, friday_4pm, 2)
    assert until == policy.calendar.add(friday_4pm, 120)
    monday_10am = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)  # one hour on Friday, one Monday
    assert until == monday_10am
