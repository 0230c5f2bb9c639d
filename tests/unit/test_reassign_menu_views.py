"""The managers' "Reassign to… (managers)" menu is only shown where someone may use it: only
the managers reassign (bot/domain/access.py, the SPEC's "Managers / RevOps … reassign"), so
with `managers: []` it is left out of the lead's post, the escalation alert and App Home's
overdue list, instead of a menu whose every pick is refused. Claim stays as it is."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.domain import escalation
from bot.domain.lead import Stage
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.slack.alert_views import manager_alert
from bot.slack.home import overdue_card
from bot.slack.lead_views import lead_message
from tests.unit.test_render import BEFORE_DUE, buttons, view


def selects(blocks: list[dict[str, Any]]) -> list[str]:
    """The action ids of the menus (static or user pickers) in `blocks`."""
    return [
        element["action_id"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["type"].endswith("_select")
    ]


def no_managers(policy: Policy) -> Policy:
    return parse_policy(snapshot(policy) | {"managers": []})


def test_a_post_shows_the_reassign_menu_only_when_the_sla_names_managers(policy: Policy) -> None:
    for stage in (Stage.MQL, Stage.SAL):
        lead = view(stage)
        assert selects(lead_message(lead, policy, BEFORE_DUE).blocks) == ["lead_reassign"]
        assert selects(lead_message(lead, no_managers(policy), BEFORE_DUE).blocks) == []
    message = lead_message(view(Stage.MQL), no_managers(policy), BEFORE_DUE)
    [claim] = buttons(message.blocks)
    assert (claim["text"]["text"], claim["action_id"]) == ("Claim", "lead_claim")
    assert "Reassign to" not in str(message.blocks)


def test_the_escalation_alert_and_app_home_leave_the_menu_out_without_managers(
    policy: Policy,
) -> None:
    lead = view(Stage.SAL)
    window = escalation.windows(lead, policy)[0]
    late = window.due + timedelta(hours=1)
    assert selects(manager_alert(lead, window, policy, late).blocks) == ["reassign"]
    assert selects(overdue_card(lead, policy, late)) == ["reassign"]
    nobody = no_managers(policy)
    alert = manager_alert(lead, window, nobody, late)
    assert selects(alert.blocks) == []
    assert [
        button["action_id"] for button in buttons(manager_alert(lead, window, policy, late).blocks)
    ] == ["snooze"]
    assert buttons(alert.blocks) == []  # snoozing is the managers' too: the alert is words alone
    assert [block["type"] for block in alert.blocks] == ["section"]
    assert selects(overdue_card(lead, nobody, late)) == []


def test_reps_with_the_same_name_are_told_apart_in_the_menu(policy: Policy) -> None:
    """Two reps whose Slack display name is the same ("Alex") are two options a manager
    cannot tell apart: an option's text is plain text (no mention can show who), so a name
    shared in the pool carries the member's Slack id; a name of one rep stays as it is."""
    raw = snapshot(policy)
    for segment in raw["segments"]:
        if segment["name"] == "enterprise":
            segment["reps"] = ["U0REP1", "U0REP2", "U0REP7", "U0REP8"]
    wide = parse_policy(raw)
    names = {"U0REP1": "Alex", "U0REP7": "Alex", "U0REP8": "Sam", "U0REP2": "Jo"}
    message = lead_message(view(Stage.SAL), wide, BEFORE_DUE, names)
    (menu,) = [
        element
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["type"] == "static_select"
    ]
    labels = [option["text"]["text"] for option in menu["options"]]
    assert labels == ["Alex (U0REP1)", "Alex (U0REP7)", "Sam"]
    assert len(set(labels)) == len(labels)
