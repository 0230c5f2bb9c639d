"""Every Slack request is parsed once (handlers/context.py) into what it asks for: the access
check and the listeners read the same `Asked`, and a forged value names no lead."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.domain.access import Action
from bot.domain.refusal import Reason, Refusal
from bot.slack.ids import ActionId, CallbackId, attempt_action, dispose_action
from handlers.context import Asked, parse


def press(action_id: str, value: str | None = None, **extra: Any) -> dict[str, Any]:
    pressed: dict[str, Any] = {"action_id": action_id, **extra}
    if value is not None:
        pressed["value"] = value
    return {"type": "block_actions", "actions": [pressed], "user": {"id": "U0REP1"}}


def choice(value: str) -> dict[str, Any]:
    return press(ActionId.REASSIGN, selected_option={"value": value})


def modal(metadata: str) -> dict[str, Any]:
    view = {"callback_id": CallbackId.DISPOSE_MODAL, "private_metadata": metadata}
    return {"type": "view_submission", "view": view}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (press(ActionId.CLAIM, "42"), Asked(Action.CLAIM, 42)),
        (press(attempt_action("call"), "42"), Asked(Action.ATTEMPT, 42, "call")),
        (press(dispose_action("not_a_fit"), "7"), Asked(Action.DISPOSE, 7, "not_a_fit")),
        (press(ActionId.SNOOZE, "9"), Asked(Action.SNOOZE, 9)),
        (choice("12:U0REP2"), Asked(Action.REASSIGN, 12, "U0REP2")),
        (
            press(ActionId.REPORT_SHARE, "2026-W48|smb"),
            Asked(Action.SLA_REPORT, None, "2026-W48|smb"),
        ),
        (
            modal(json.dumps({"lead_id": 5, "code": "bad_timing"})),
            Asked(Action.DISPOSE, 5, "bad_timing"),
        ),
        ({"command": "/sla-report", "text": ""}, Asked(Action.SLA_REPORT, command="/sla-report")),
        ({"command": "/lead", "text": "x"}, Asked(command="/lead", text="x")),
        (
            {"command": "/lead", "text": "<mailto:r&amp;d@a.example|r&amp;d@a.example>"},
            Asked(command="/lead", text="r&d@a.example"),
        ),
        ({"type": "event_callback"}, Asked()),
    ],
)
def test_each_request_is_read_once_into_what_it_asks(body: dict[str, Any], expected: Asked) -> None:
    assert parse(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        press(ActionId.CLAIM, "<!channel>"),
        press(ActionId.CLAIM),
        press(ActionId.CLAIM, "1" * 19),  # longer than any id Handoff makes
        modal("{not json"),
        modal(json.dumps(["a list"])),
    ],
)
def test_a_forged_value_names_no_lead_and_its_listener_refuses(body: dict[str, Any]) -> None:
    asked = parse(body)
    assert asked.lead_id is None
    with pytest.raises(Refusal) as refused:
        asked.lead()
    assert refused.value.reason is Reason.INVALID


def test_a_reassign_choice_that_names_no_rep_is_refused_but_keeps_its_lead() -> None:
    asked = parse(choice("12:<!channel>"))
    assert (asked.action, asked.lead_id) == (Action.REASSIGN, 12)  # for the access check
    with pytest.raises(Refusal, match="does not name a lead and a rep"):
        asked.rep()


def test_setting_someone_else_away_is_a_managers_action() -> None:
    mine = {"command": "/handoff", "text": "away", "user_id": "U0REP1", "user_name": "maya"}
    theirs = {**mine, "text": "away <@U0REP2|tom>"}
    assert parse(mine).action is None
    assert parse(theirs).action is Action.AWAY_FOR_OTHERS


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (Reason.INVALID, 400),
        (Reason.NOT_ALLOWED, 403),
        (Reason.NOT_FOUND, 404),
        (Reason.TAKEN, 409),
        (Reason.CLOSED, 409),
        (Reason.NOT_READY, 409),
        (Reason.CHANGED, 409),
        (Reason.CONFLICT, 409),
    ],
)
def test_a_refusal_maps_to_one_http_status(reason: Reason, status: int) -> None:
    assert reason.status == status


def test_a_user_picker_carries_its_lead_in_the_block_id() -> None:
    picked = {"action_id": ActionId.REASSIGN, "block_id": "reassign_12", "selected_user": "U0X"}
    body = {"type": "block_actions", "actions": [picked]}
    assert parse(body) == Asked(Action.REASSIGN, 12, "U0X")
    in_home = {**picked, "block_id": "home_overdue_7"}
    assert parse({**body, "actions": [in_home]}) == Asked(Action.REASSIGN, 7, "U0X")
    forged = parse({**body, "actions": [{**picked, "selected_user": "<!channel>"}]})
    assert (forged.lead_id, forged.rep_chosen) == (12, False)


def test_a_press_on_a_managers_alert_carries_the_alerts_ts() -> None:
    """The alert's Reassign and Snooze name the message pressed (a settled one changes
    nothing); in App Home, an ephemeral or the lead's own menu there is no alert."""
    on_message = {"type": "message", "message_ts": "1790000000.000200", "channel_id": "C0ESC"}
    for body in (press(ActionId.SNOOZE, "9"), choice("12:U0REP2")):
        assert parse({**body, "container": on_message}).alert_ts == "1790000000.000200"
        ephemeral = {**on_message, "is_ephemeral": True}
        assert parse({**body, "container": ephemeral}).alert_ts is None
        in_home = {"type": "view", "view_id": "V1"}
        assert parse({**body, "container": in_home}).alert_ts is None
    lead_menu = press(ActionId.LEAD_REASSIGN, selected_option={"value": "12:U0REP2"})
    assert parse({**lead_menu, "container": on_message}).alert_ts is None


def test_a_press_on_an_ephemeral_message_says_so() -> None:
    """A press on the `/lead` card (an ephemeral message: the container's `is_ephemeral`) is
    answered by replacing that card through the press's response URL; a press on the lead's
    post, in App Home, or without a container is not."""
    lead_menu = press(ActionId.LEAD_REASSIGN, selected_option={"value": "12:U0REP2"})
    on_message = {"type": "message", "message_ts": "1790000000.000200", "channel_id": "C0SIM"}
    on_card = parse({**lead_menu, "container": {**on_message, "is_ephemeral": True}})
    assert on_card == Asked(Action.REASSIGN, 12, "U0REP2", ephemeral=True)
    for container in ({**on_message, "is_ephemeral": False}, {"type": "view", "view_id": "V1"}):
        assert not parse({**lead_menu, "container": container}).ephemeral
    assert not parse(lead_menu).ephemeral
