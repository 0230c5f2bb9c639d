"""The simulator refuses static selects Slack would refuse, and what Handoff sends fits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain import escalation
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.simulator.blockkit import validate_blocks, validate_view
from bot.slack.alert_views import manager_alert
from bot.slack.lead_views import disposition_modal
from tests.unit.test_render import view

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def option(n: int) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": f"Option {n}"}, "value": str(n)}


def menu(**fields: Any) -> list[dict[str, Any]]:
    select = {"type": "static_select", "action_id": "pick", **fields}
    return [{"type": "actions", "elements": [select]}]


def modal(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    title = {"type": "plain_text", "text": "Pick"}
    submit = {"type": "plain_text", "text": "Save"}
    return {"type": "modal", "title": title, "submit": submit, "blocks": blocks}


def input_menu(**fields: Any) -> list[dict[str, Any]]:
    select = {"type": "static_select", "action_id": "pick", **fields}
    label = {"type": "plain_text", "text": "Pick one"}
    return [{"type": "input", "block_id": "pick", "label": label, "element": select}]


def group(label: str, size: int) -> dict[str, Any]:
    return {
        "label": {"type": "plain_text", "text": label},
        "options": [option(n) for n in range(size)],
    }


def test_a_static_select_holds_at_most_100_options_in_a_message_and_a_view() -> None:
    assert validate_blocks(menu(options=[option(n) for n in range(100)])) == []
    assert validate_view(modal(input_menu(options=[option(n) for n in range(100)]))) == []
    errors = validate_blocks(menu(options=[option(n) for n in range(101)]))
    assert errors == [
        "must have between 1 and 100 items [json-pointer:/blocks/0/elements/0/options]"
    ]
    errors = validate_view(modal(input_menu(options=[option(n) for n in range(101)])))
    assert errors == [
        "must have between 1 and 100 items [json-pointer:/view/blocks/0/element/options]"
    ]


def test_option_groups_within_slacks_limits() -> None:
    assert validate_blocks(menu(option_groups=[group("A", 100), group("B", 100)])) == []
    here = "/blocks/0/elements/0"
    too_many_groups = validate_blocks(menu(option_groups=[group(str(n), 1) for n in range(101)]))
    assert too_many_groups == [
        f"must have between 1 and 100 items [json-pointer:{here}/option_groups]"
    ]
    too_big = validate_blocks(menu(option_groups=[group("A", 101)]))
    assert too_big == [
        f"must have between 1 and 100 items [json-pointer:{here}/option_groups/0/options]"
    ]
    long_label = validate_blocks(menu(option_groups=[group("x" * 76, 1)]))
    assert long_label == [
        f"must be less than 76 characters [json-pointer:{here}/option_groups/0/label/text]"
    ]
    both = validate_blocks(menu(options=[option(1)], option_groups=[group("A", 1)]))
    assert both == [f"must provide options or option_groups, not both [json-pointer:{here}]"]


def test_a_pool_of_100_is_a_menu_and_a_larger_one_a_user_picker(policy: Policy) -> None:
    """A static select holds 100 options: up to that the menu names the reps; past it, Slack's
    user picker, with the lead in the block id."""
    for size, kind in ((101, "static_select"), (150, "users_select")):
        data = snapshot(policy)
        data["segments"][0]["reps"] = [f"U0REP{n:03d}" for n in range(size)]
        pools = parse_policy(data)
        lead = replace(view(Stage.SAL), owner="U0REP000", segment=pools.segments[0].name)
        window = escalation.windows(lead, pools)[0]
        alert = manager_alert(lead, window, pools, window.due + timedelta(hours=1))
        assert validate_blocks(alert.blocks) == []
        (controls,) = [block for block in alert.blocks if block["type"] == "actions"]
        (menu_element,) = [e for e in controls["elements"] if e["type"].endswith("select")]
        assert menu_element["type"] == kind, size
        assert controls["block_id"] == f"reassign_{lead.id}"
        if kind == "static_select":
            assert len(menu_element["options"]) == 100  # the pool without its owner


def test_the_modal_of_100_reasons_opens(policy: Policy) -> None:
    data = snapshot(policy)
    data["dispositions"][1]["reasons"] += [f"Reason {n}" for n in range(95)]
    checked = parse_policy(data)  # what `handoff check` allows
    disposition = checked.dispositions[1]
    assert len(disposition.reasons) == 100
    lead: LeadView = view(Stage.SAL)
    assert validate_view(disposition_modal(lead, disposition, lead.owner)) == []


def note_input(**fields: Any) -> dict[str, Any]:
    element = {"type": "plain_text_input", "action_id": "note", **fields}
    label = {"type": "plain_text", "text": "Note"}
    return modal([{"type": "input", "block_id": "note", "label": label, "element": element}])


def test_a_text_inputs_lengths_are_within_slacks_range() -> None:
    """min_length "between 0 and 3000, inclusive", max_length "between 1 and 3000"."""
    assert validate_view(note_input(min_length=0, max_length=3000)) == []
    here = "/view/blocks/0/element"
    for fields, key in (
        ({"max_length": 3001}, "max_length"),
        ({"max_length": 0}, "max_length"),
        ({"min_length": 3001}, "min_length"),
        ({"min_length": -1}, "min_length"),
        ({"max_length": "2000"}, "max_length"),
    ):
        assert validate_view(note_input(**fields)) == [
            f"must be an integer from {0 if key == 'min_length' else 1} to 3000 "
            f"[json-pointer:{here}/{key}]"
        ], fields


def test_an_initial_option_is_one_of_the_options() -> None:
    here = "/blocks/0/elements/0"
    assert validate_blocks(menu(options=[option(1), option(2)], initial_option=option(2))) == []
    assert validate_blocks(menu(option_groups=[group("A", 3)], initial_option=option(2))) == []
    renamed = {**option(2), "text": {"type": "plain_text", "text": "Two"}}
    assert validate_blocks(menu(options=[option(1), option(2)], initial_option=renamed)) == [
        f"must match one of the options exactly [json-pointer:{here}/initial_option]"
    ]
    boxes = {"type": "checkboxes", "action_id": "pick", "options": [option(1)]}
    assert validate_blocks([{"type": "actions", "elements": [boxes]}]) == []
    boxes["initial_options"] = [option(1), option(3)]
    assert validate_blocks([{"type": "actions", "elements": [boxes]}]) == [
        f"must match one of the options exactly [json-pointer:{here}/initial_options/1]"
    ]


def test_an_options_description_is_plain_text_of_at_most_75_characters() -> None:
    here = "/blocks/0/elements/0/options/0/description"
    described = {**option(1), "description": {"type": "plain_text", "text": "x" * 75}}
    assert validate_blocks(menu(options=[described])) == []
    described["description"] = {"type": "plain_text", "text": "x" * 76}
    assert validate_blocks(menu(options=[described])) == [
        f"must be less than 76 characters [json-pointer:{here}/text]"
    ]
    described["description"] = {"type": "mrkdwn", "text": "*x*"}
    assert validate_blocks(menu(options=[described])) == [
        f"must be one of plain_text [json-pointer:{here}/type]"
    ]


def confirmed(**fields: Any) -> list[dict[str, Any]]:
    confirm = {
        "title": {"type": "plain_text", "text": "Close this lead?"},
        "text": {"type": "plain_text", "text": "Mark it Qualified."},
        "confirm": {"type": "plain_text", "text": "Qualified"},
        "deny": {"type": "plain_text", "text": "Cancel"},
        **fields,
    }
    label = {"type": "plain_text", "text": "Qualified"}
    button = {"type": "button", "action_id": "go", "text": label, "confirm": confirm}
    return [{"type": "actions", "elements": [button]}]


def test_a_confirmation_dialog_is_plain_text() -> None:
    here = "/blocks/0/elements/0/confirm"
    assert validate_blocks(confirmed()) == []
    assert validate_blocks(confirmed(title={"type": "mrkdwn", "text": "*Sure?*"})) == [
        f"must be one of plain_text [json-pointer:{here}/title/type]"
    ]
    assert validate_blocks(confirmed(deny={"type": "mrkdwn", "text": "No"})) == [
        f"must be one of plain_text [json-pointer:{here}/deny/type]"
    ]
    assert validate_blocks(confirmed(text={"type": "mrkdwn", "text": "Mark it *Qualified*."})) == [
        f"must be one of plain_text [json-pointer:{here}/text/type]"
    ]
    assert validate_blocks(confirmed(confirm=None)) == [
        f"expected a text object [json-pointer:{here}/confirm]"
    ]


def test_emoji_is_for_plain_text_and_verbatim_for_mrkdwn() -> None:
    """text-object reference: `emoji` "is only usable when type is plain_text", `verbatim`
    "is only usable when type is mrkdwn"."""
    plain = {"type": "plain_text", "text": "hi", "emoji": True}
    rich = {"type": "mrkdwn", "text": "hi", "verbatim": True}
    assert (
        validate_blocks([{"type": "header", "text": plain}, {"type": "section", "text": rich}])
        == []
    )
    errors = validate_blocks([{"type": "section", "text": {**rich, "emoji": True}}])
    assert errors == ["emoji is not allowed on mrkdwn [json-pointer:/blocks/0/text/emoji]"]
    errors = validate_blocks([{"type": "header", "text": {**plain, "verbatim": True}}])
    assert errors == [
        "verbatim is not allowed on plain_text [json-pointer:/blocks/0/text/verbatim]"
    ]


def test_an_options_url_is_at_most_3000_characters() -> None:
    """option-object reference: `url` "Maximum length for this field is 3000 characters"."""
    text = {"type": "mrkdwn", "text": "hi"}
    item = {"text": {"type": "plain_text", "text": "Open"}, "value": "open"}
    overflow = {"type": "overflow", "action_id": "more"}
    fits = {**overflow, "options": [{**item, "url": "https://example.com/" + "x" * 2980}]}
    assert validate_blocks([{"type": "section", "text": text, "accessory": fits}]) == []
    long = {**overflow, "options": [{**item, "url": "https://example.com/" + "x" * 2981}]}
    errors = validate_blocks([{"type": "section", "text": text, "accessory": long}])
    assert errors == [
        "must be a URL of at most 3000 characters [json-pointer:/blocks/0/accessory/options/0/url]"
    ]
