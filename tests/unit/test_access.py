"""The access table, cell by cell: who may do what, and what everyone else is told."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.access import (
    RULES,
    Action,
    Role,
    allowed,
    may_look_up,
    needs_lead,
    refusal,
    roles_of,
)
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy, PolicyError, parse_policy, snapshot

# Written out by hand on purpose: a change of RULES must break a test, and be a decision.
EXPECTED: dict[Action, set[Role]] = {
    Action.CLAIM: {Role.POOL_REP, Role.MANAGER},
    Action.ATTEMPT: {Role.OWNER, Role.MANAGER},
    Action.DISPOSE: {Role.OWNER, Role.MANAGER},
    Action.REASSIGN: {Role.MANAGER},
    Action.SNOOZE: {Role.MANAGER},
    Action.SLA_REPORT: {Role.MANAGER, Role.REPORTER},
    Action.AWAY_FOR_OTHERS: {Role.MANAGER},
    Action.RATE: {Role.OWNER},  # the rating is the owner's judgement of the lead
    # A lead's personal data: the people who work it, the reports' readers, and `viewers`.
    Action.VIEW_LEAD: {Role.POOL_REP, Role.OWNER, Role.MANAGER, Role.REPORTER, Role.VIEWER},
    Action.ROUTING: {Role.MANAGER},  # `/handoff routing`: the whole team's distribution
}
CELLS = [(action, role) for action in Action for role in Role]

POOL_REP = "U0REP1"  # an enterprise rep, not the owner
OWNER = "U0REP3"  # a mid-market rep who owns the enterprise lead (a manager handed it over)
MANAGER = "U0MGR1"
REPORTER = "U0MKT1"
VIEWER = "U0MKT2"
OUTSIDER = "U0OUTSIDER"
ACTOR_WITH_ONLY = {
    Role.POOL_REP: POOL_REP,
    Role.OWNER: OWNER,
    Role.MANAGER: MANAGER,
    Role.REPORTER: REPORTER,
    Role.VIEWER: VIEWER,
}
LEAD = LeadView(
    id=7,
    external_id="hs-7",
    email="priya@northwind.example",
    stage=Stage.SAL,
    segment="enterprise",
    channel="C0ENT",
    tier="hot",
    score=88,
    sla_version="v1",
    received_at=datetime(2026, 11, 23, tzinfo=UTC),
    owner=OWNER,
)


@pytest.fixture(scope="module")
def team(policy: Policy) -> Policy:
    """The example SLA with a reporter (marketing ops) and a viewer (marketing) added."""
    return parse_policy({**snapshot(policy), "reporters": [REPORTER], "viewers": [VIEWER]})


def test_every_action_has_a_row_and_the_table_is_the_expected_matrix() -> None:
    assert set(RULES) == set(Action)
    assert {action: set(roles) for action, roles in RULES.items()} == EXPECTED


@pytest.mark.parametrize(("action", "roles"), list(RULES.items()), ids=[str(a) for a in RULES])
def test_each_row_of_the_table_matches_the_matrix(action: Action, roles: frozenset[Role]) -> None:
    assert set(roles) == EXPECTED[action]


@pytest.mark.parametrize(("action", "role"), CELLS, ids=lambda item: str(item))
def test_each_cell(team: Policy, action: Action, role: Role) -> None:
    actor = ACTOR_WITH_ONLY[role]
    assert roles_of(actor, team, LEAD) == {role}
    assert allowed(action, actor, team, LEAD) is (role in EXPECTED[action])


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_someone_with_no_role_may_do_nothing(team: Policy, action: Action) -> None:
    assert roles_of(OUTSIDER, team, LEAD) == set()
    assert not allowed(action, OUTSIDER, team, LEAD)
    assert not allowed(action, OUTSIDER, team)


def test_a_manager_who_owns_the_lead_holds_both_roles(team: Policy) -> None:
    managed = LeadView(**{**LEAD.__dict__, "owner": MANAGER})
    assert roles_of(MANAGER, team, managed) == {Role.OWNER, Role.MANAGER}


def test_without_a_lead_pool_rep_means_any_segment_and_nobody_is_owner(team: Policy) -> None:
    assert roles_of(OWNER, team) == {Role.POOL_REP}  # a mid-market rep
    assert roles_of("U0REP5", team) == {Role.POOL_REP}  # an SMB rep
    assert roles_of(MANAGER, team) == {Role.MANAGER}
    # The claim pre-check: any segment's rep or a manager passes, everyone else is refused.
    assert allowed(Action.CLAIM, "U0REP5", team) and allowed(Action.CLAIM, MANAGER, team)
    assert not allowed(Action.CLAIM, REPORTER, team)
    assert not allowed(Action.ATTEMPT, OWNER, team)


def test_a_lead_of_a_segment_no_longer_in_the_sla_has_no_pool(team: Policy) -> None:
    orphan = LeadView(**{**LEAD.__dict__, "segment": "retired", "owner": None})
    assert roles_of(POOL_REP, team, orphan) == set()
    assert allowed(Action.CLAIM, MANAGER, team, orphan)


def test_only_owner_scoped_actions_need_the_lead() -> None:
    assert {action for action in Action if needs_lead(action)} == {
        Action.ATTEMPT,
        Action.DISPOSE,
        Action.RATE,
        Action.VIEW_LEAD,
    }


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_guests_and_deactivated_members_hold_no_role(team: Policy, action: Action) -> None:
    """Slack says they are a guest or deactivated: whatever the SLA lists, nothing is theirs."""
    for actor in (POOL_REP, OWNER, MANAGER, REPORTER, VIEWER):
        assert roles_of(actor, team, LEAD, barred={actor}) == set()
        assert not allowed(action, actor, team, LEAD, barred={actor})
    assert not may_look_up(MANAGER, team, barred={MANAGER})


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_nobody_may_do_anything_to_an_erased_lead(team: Policy, action: Action) -> None:
    """A button or a modal from before `handoff forget` would store the person's data again."""
    erased = LeadView(**{**LEAD.__dict__, "erased_at": datetime(2026, 11, 24, tzinfo=UTC)})
    for actor in (POOL_REP, OWNER, MANAGER, REPORTER, VIEWER):
        assert not allowed(action, actor, team, erased)
    assert refusal(action, MANAGER, team, erased) == (
        "This lead was erased at the person's request; nothing was changed."
    )


def test_who_may_look_up_leads_before_any_search(team: Policy) -> None:
    for actor in (POOL_REP, OWNER, MANAGER, REPORTER, VIEWER):
        assert may_look_up(actor, team)
    assert not may_look_up(OUTSIDER, team)


# --- refusals ----------------------------------------------------------------------------------


def test_claim_refusal_names_the_pool(team: Policy) -> None:
    assert refusal(Action.CLAIM, "U0REP5", team, LEAD) == (
        "Sorry, only the enterprise reps and the sales managers can claim this lead. "
        "Ask a manager if it should be yours."
    )


def test_claim_refusal_without_a_lead(team: Policy) -> None:
    assert refusal(Action.CLAIM, OUTSIDER, team) == (
        "Sorry, only the sales reps of a segment and the sales managers can claim leads. "
        "Ask a manager if one should be yours."
    )


@pytest.mark.parametrize(
    ("action", "doing", "ending"),
    [
        (Action.ATTEMPT, None, "log an attempt."),
        (Action.ATTEMPT, "log a call", "log a call."),
        (Action.DISPOSE, None, "disposition it."),
        (Action.DISPOSE, "mark it Qualified", "mark it Qualified."),
    ],
)
def test_work_refusal_names_the_owner(
    team: Policy, action: Action, doing: str | None, ending: str
) -> None:
    message = refusal(action, POOL_REP, team, LEAD, doing=doing)
    assert message == f"Only <@{OWNER}>, who owns this lead, or a manager can {ending}"


def test_work_refusal_without_an_owner_says_the_owner(team: Policy) -> None:
    unowned = LeadView(**{**LEAD.__dict__, "owner": None})
    message = refusal(Action.ATTEMPT, OUTSIDER, team, unowned)
    assert message == "Only the lead's owner or a manager can log an attempt."


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (Action.REASSIGN, "only the sales managers can reassign a lead"),
        (Action.SNOOZE, "only the sales managers can snooze"),
        (
            Action.SLA_REPORT,
            "only the sales managers and the SLA's reporters can run `/sla-report`",
        ),
        (Action.AWAY_FOR_OTHERS, "only the sales managers can set someone else away"),
    ],
)
def test_manager_refusals_say_who_may(team: Policy, action: Action, words: str) -> None:
    message = refusal(action, POOL_REP, team, LEAD)
    assert message.startswith("Sorry, ") and words in message
    assert "<@" not in message  # nobody is pinged by a refusal


def test_a_rep_refused_the_teams_routing_is_pointed_at_their_own_share(team: Policy) -> None:
    """`/handoff routing` is the managers'; a rep asking is told where their own share is."""
    assert refusal(Action.ROUTING, POOL_REP, team) == (
        "Sorry, only the sales managers can see the team's routing. Your own share of the "
        "round robin is on your Handoff App Home."
    )


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_every_action_has_a_plain_refusal(team: Policy, action: Action) -> None:
    for lead in (LEAD, None):
        message = refusal(action, OUTSIDER, team, lead)
        assert message.endswith(".") and len(message) < 200


def test_reporters_are_user_ids(policy: Policy) -> None:
    with pytest.raises(PolicyError) as error:
        parse_policy({**snapshot(policy), "reporters": ["marketing ops"]})
    assert error.value.problems == [
        "reporters: 'marketing ops' is not a Slack user id (like U0123ABCD)"
    ]
    assert policy.reporters == [] and not policy.is_reporter(MANAGER)
