"""Block Kit as Slack checks it: `validate_blocks`, `validate_view`, and the ids Slack adds."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

Json = dict[str, Any]

MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100


@dataclass
class InvalidPayload:
    """A payload the simulator refused (bad Block Kit, bad view)."""

    method: str
    payload: Any
    errors: list[str]
    at: float = field(default_factory=time.monotonic)


_ACTION_ELEMENTS = {
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "overflow",
    "radio_buttons",
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
    "timepicker",
    "workflow_button",
    "rich_text_input",
    "plain_text_input",
}
_ACCESSORY_ELEMENTS = _ACTION_ELEMENTS - {"rich_text_input", "plain_text_input"} | {"image"}
_INPUT_ELEMENTS = (_ACTION_ELEMENTS - {"button", "overflow", "workflow_button"}) | {
    "email_text_input",
    "number_input",
    "url_text_input",
    "file_input",
}
_SELECT_WITH_OPTIONS = {"static_select", "multi_static_select"}


def validate_blocks(
    blocks: Any, *, limit: int = MESSAGE_BLOCK_LIMIT, pointer: str = "/blocks"
) -> list[str]:
    """Check blocks like Slack does; return Slack-style errors ("message [json-pointer:/…]")."""
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{pointer}]"]
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(f"no more than {limit} items allowed [json-pointer:{pointer}]")
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        here = f"{pointer}/{index}"
        if not isinstance(block, dict):
            errors.append(f"expected an object [json-pointer:{here}]")
            continue
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen:
                errors.append(f"duplicate block_id {block_id!r} [json-pointer:{here}/block_id]")
            seen.add(block_id)
        # slack_sdk misses empty text, unknown elements and empty arrays; Slack does not.
        block_errors = _check_block(block, here)
        errors.extend(block_errors or _sdk_block_errors(block, here))
    return errors


def validate_view(view: Any, pointer: str = "/view") -> list[str]:
    """Check a view payload like views.open/update/push/publish do."""
    if not isinstance(view, dict):
        return [f"must be an object [json-pointer:{pointer}]"]
    errors: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        errors.append(f"must be one of modal, home [json-pointer:{pointer}/type]")
    if kind == "modal":
        if "title" not in view:
            errors.append(f"missing required field: title [json-pointer:{pointer}]")
        for key in ("title", "submit", "close"):
            if key in view:
                errors.extend(_text_errors(view[key], f"{pointer}/{key}", 24, plain=True))
        has_input = any(
            isinstance(b, dict) and b.get("type") == "input" for b in _view_blocks(view)
        )
        if has_input and "submit" not in view:
            errors.append(
                f"submit is required when an input block is within blocks [json-pointer:{pointer}]"
            )
    for key, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
        value = view.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            errors.append(
                f"must be a string of at most {limit} characters [json-pointer:{pointer}/{key}]"
            )
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        errors.append(f"must provide at least one block [json-pointer:{pointer}/blocks]")
    else:
        errors.extend(validate_blocks(blocks, limit=VIEW_BLOCK_LIMIT, pointer=f"{pointer}/blocks"))
    if not errors:
        try:
            View(**copy.deepcopy(view)).to_dict()
        except Exception as exc:
            errors.append(f"{exc} [json-pointer:{pointer}]")
    return errors


def _view_blocks(view: Json) -> list[Any]:
    blocks = view.get("blocks")
    return blocks if isinstance(blocks, list) else []


def _block_classes(cls: type[Block]) -> list[type[Block]]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_block_classes(sub))]


# Checked up front because Block.parse logs a warning for every type it doesn't know.
_SDK_BLOCK_TYPES = {getattr(c, "type", None) for c in _block_classes(Block)} - {None}


def _sdk_block_errors(block: Json, here: str) -> list[str]:
    if block.get("type") not in _SDK_BLOCK_TYPES:
        return [f"unsupported block type {block.get('type')!r} [json-pointer:{here}/type]"]
    try:
        parsed = Block.parse(copy.deepcopy(block))
        if parsed is None:
            return [f"unsupported block type {block.get('type')!r} [json-pointer:{here}/type]"]
        parsed.to_dict()  # validates the block and everything inside it
    except Exception as exc:
        return [f"{exc} [json-pointer:{here}]"]
    return []


def _text_errors(obj: Any, here: str, max_len: int, *, plain: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"expected a text object [json-pointer:{here}]"]
    kind = obj.get("type")
    if kind not in ("plain_text", "mrkdwn") or (plain and kind != "plain_text"):
        allowed = "plain_text" if plain else "plain_text, mrkdwn"
        return [f"must be one of {allowed} [json-pointer:{here}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{here}/text]"]
    if len(text) > max_len:
        return [f"must be less than {max_len + 1} characters [json-pointer:{here}/text]"]
    # composition-objects/text-object: `emoji` "is only usable when type is plain_text",
    # `verbatim` "is only usable when type is mrkdwn".
    wrong = "verbatim" if kind == "plain_text" else "emoji"
    if wrong in obj:
        return [f"{wrong} is not allowed on {kind} [json-pointer:{here}/{wrong}]"]
    return []


def _array_errors(value: Any, here: str, low: int, high: int) -> list[str]:
    if not isinstance(value, list):
        return [f"must be an array [json-pointer:{here}]"]
    if not low <= len(value) <= high:
        return [f"must have between {low} and {high} items [json-pointer:{here}]"]
    return []


def _check_block(block: Json, here: str) -> list[str]:
    kind = block.get("type")
    if not isinstance(kind, str):
        return [f"missing required field: type [json-pointer:{here}]"]
    errors: list[str] = []
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            errors.append(f"must provide text or fields [json-pointer:{here}]")
        if text is not None:
            errors.extend(_text_errors(text, f"{here}/text", 3000))
        if fields is not None:
            errors.extend(_array_errors(fields, f"{here}/fields", 1, 10))
            for i, item in enumerate(fields if isinstance(fields, list) else []):
                errors.extend(_text_errors(item, f"{here}/fields/{i}", 2000))
        if "accessory" in block:
            errors.extend(
                _element_errors(block["accessory"], f"{here}/accessory", _ACCESSORY_ELEMENTS)
            )
    elif kind == "header":
        errors.extend(_text_errors(block.get("text"), f"{here}/text", 150, plain=True))
    elif kind == "actions":
        elements = block.get("elements")
        errors.extend(_array_errors(elements, f"{here}/elements", 1, 25))
        action_ids: set[str] = set()
        for i, element in enumerate(elements if isinstance(elements, list) else []):
            errors.extend(_element_errors(element, f"{here}/elements/{i}", _ACTION_ELEMENTS))
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if isinstance(action_id, str):
                if action_id in action_ids:
                    errors.append(
                        f"duplicate action_id {action_id!r} [json-pointer:{here}/elements/{i}]"
                    )
                action_ids.add(action_id)
    elif kind == "context":
        elements = block.get("elements")
        errors.extend(_array_errors(elements, f"{here}/elements", 1, 10))
        for i, element in enumerate(elements if isinstance(elements, list) else []):
            at = f"{here}/elements/{i}"
            if isinstance(element, dict) and element.get("type") == "image":
                errors.extend(_image_errors(element, at))
            else:
                errors.extend(_text_errors(element, at, 3000))
    elif kind == "input":
        errors.extend(_text_errors(block.get("label"), f"{here}/label", 2000, plain=True))
        if "hint" in block:
            errors.extend(_text_errors(block["hint"], f"{here}/hint", 2000, plain=True))
        errors.extend(_element_errors(block.get("element"), f"{here}/element", _INPUT_ELEMENTS))
    elif kind == "image":
        errors.extend(_image_errors(block, here))
    return errors


def _image_errors(image: Json, here: str) -> list[str]:
    if not image.get("image_url") and not image.get("slack_file"):
        return [f"must provide image_url or slack_file [json-pointer:{here}]"]
    alt = image.get("alt_text")
    if not isinstance(alt, str) or not alt or len(alt) > 2000:
        return [f"must be 1 to 2000 characters [json-pointer:{here}/alt_text]"]
    return []


def _element_errors(element: Any, here: str, allowed: set[str]) -> list[str]:
    if not isinstance(element, dict):
        return [f"expected an object [json-pointer:{here}]"]
    kind = element.get("type")
    if kind not in allowed:
        return [f"unsupported element type {kind!r} [json-pointer:{here}/type]"]
    errors: list[str] = []
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        errors.append(f"must be at most 255 characters [json-pointer:{here}/action_id]")
    if kind == "image":
        return errors + _image_errors(element, here)
    if kind in ("button", "workflow_button"):
        errors.extend(_text_errors(element.get("text"), f"{here}/text", 75, plain=True))
        for key, limit in (("value", 2000), ("url", 3000)):
            value = element.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                errors.append(f"must be at most {limit} characters [json-pointer:{here}/{key}]")
        if element.get("style") not in (None, "primary", "danger"):
            errors.append(f"must be one of primary, danger [json-pointer:{here}/style]")
    if "placeholder" in element:
        errors.extend(_text_errors(element["placeholder"], f"{here}/placeholder", 150, plain=True))
    if "confirm" in element:
        errors.extend(_confirm_errors(element["confirm"], f"{here}/confirm"))
    if kind in _SELECT_WITH_OPTIONS:
        errors.extend(_static_select_errors(element, here))
    elif kind in ("checkboxes", "radio_buttons"):
        errors.extend(_options_errors(element.get("options"), f"{here}/options", 10, plain=False))
    elif kind == "overflow":
        errors.extend(_options_errors(element.get("options"), f"{here}/options", 5, plain=True))
    elif kind == "plain_text_input":
        errors.extend(_input_length_errors(element, here))
    if kind in _SELECT_WITH_OPTIONS | {"checkboxes", "radio_buttons"}:
        errors.extend(_initial_option_errors(element, here))
    return errors


# A confirmation dialog (composition-objects/confirmation-dialog-object): title, text, confirm
# and deny each "A plain_text text object", at most 100, 300, 30 and 30 characters; all required.
CONFIRM_LIMITS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}


def _confirm_errors(confirm: Any, here: str) -> list[str]:
    if not isinstance(confirm, dict):
        return [f"expected an object [json-pointer:{here}]"]
    errors: list[str] = []
    for key, limit in CONFIRM_LIMITS.items():
        errors.extend(_text_errors(confirm.get(key), f"{here}/{key}", limit, plain=True))
    if confirm.get("style") not in (None, "primary", "danger"):
        errors.append(f"must be one of primary, danger [json-pointer:{here}/style]")
    return errors


# A plain-text input (block-elements/plain-text-input-element): min_length "between 0 and
# 3000, inclusive", max_length "between 1 and 3000, inclusive".
INPUT_LENGTH_RANGES = {"min_length": (0, 3000), "max_length": (1, 3000)}


def _input_length_errors(element: Json, here: str) -> list[str]:
    errors: list[str] = []
    for key, (low, high) in INPUT_LENGTH_RANGES.items():
        value = element.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            errors.append(f"must be an integer from {low} to {high} [json-pointer:{here}/{key}]")
    return errors


def _initial_option_errors(element: Json, here: str) -> list[str]:
    """An initial option "exactly matches one of the options within options or option_groups"
    (select-menu-element#static_select; checkboxes' and radio buttons' `initial_options` and
    `initial_option` alike)."""
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        if isinstance(group, dict):
            options.extend(group.get("options") or [])
    chosen: list[tuple[str, Any]] = []
    if "initial_option" in element:
        chosen.append((f"{here}/initial_option", element["initial_option"]))
    initial = element.get("initial_options")
    if isinstance(initial, list):
        chosen += [(f"{here}/initial_options/{i}", item) for i, item in enumerate(initial)]
    elif initial is not None:
        chosen.append((f"{here}/initial_options", initial))
    return [
        f"must match one of the options exactly [json-pointer:{at}]"
        for at, option in chosen
        if option not in options
    ]


# A static select (docs.slack.dev/reference/block-kit/block-elements/select-menu-element
# #static_select) has `options`, at most 100, or `option_groups`, not both; an option group
# (composition-objects/option-group-object) has a plain_text label of at most 75 characters and
# at most 100 options, and a menu at most 100 groups. An option's text is at most 75
# characters, its value at most 150 (composition-objects/option-object).
SELECT_OPTIONS_LIMIT = 100
OPTION_GROUPS_LIMIT = 100


def _static_select_errors(element: Json, here: str) -> list[str]:
    options, groups = element.get("options"), element.get("option_groups")
    if groups is None:
        return _options_errors(options, f"{here}/options", SELECT_OPTIONS_LIMIT, plain=True)
    if options is not None:
        return [f"must provide options or option_groups, not both [json-pointer:{here}]"]
    errors = _array_errors(groups, f"{here}/option_groups", 1, OPTION_GROUPS_LIMIT)
    for i, group in enumerate(groups if isinstance(groups, list) else []):
        at = f"{here}/option_groups/{i}"
        if not isinstance(group, dict):
            errors.append(f"expected an object [json-pointer:{at}]")
            continue
        errors.extend(_text_errors(group.get("label"), f"{at}/label", 75, plain=True))
        errors.extend(
            _options_errors(group.get("options"), f"{at}/options", SELECT_OPTIONS_LIMIT, plain=True)
        )
    return errors


def _options_errors(options: Any, here: str, most: int, *, plain: bool) -> list[str]:
    errors = _array_errors(options, here, 1, most)
    for i, option in enumerate(options if isinstance(options, list) else []):
        at = f"{here}/{i}"
        if not isinstance(option, dict):
            errors.append(f"expected an object [json-pointer:{at}]")
            continue
        errors.extend(_text_errors(option.get("text"), f"{at}/text", 75, plain=plain))
        if "description" in option:  # "A plain_text text object", at most 75 characters
            errors.extend(_text_errors(option["description"], f"{at}/description", 75, plain=True))
        value = option.get("value")
        if not isinstance(value, str) or not value or len(value) > 150:
            errors.append(f"must be 1 to 150 characters [json-pointer:{at}/value]")
        url = option.get("url")  # option-object: "Maximum length for this field is 3000"
        if url is not None and (not isinstance(url, str) or len(url) > 3000):
            errors.append(f"must be a URL of at most 3000 characters [json-pointer:{at}/url]")
    return errors


def buttons_in(blocks: list[Json]) -> list[tuple[str | None, Json]]:
    """Every button in blocks as (block_id, element), in display order."""
    found: list[tuple[str | None, Json]] = []
    for block in blocks:
        block_id = block.get("block_id")
        candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        found.extend((block_id, e) for e in candidates if e.get("type") == "button")
    return found


def _short_id(seed: str) -> str:
    digest = base64.b32encode(hashlib.sha1(seed.encode()).digest()).decode()
    return digest[:5]


def with_generated_ids(blocks: list[Json]) -> list[Json]:
    """Copy blocks, adding the block_id/action_id Slack generates when a payload omits them."""
    out = copy.deepcopy(blocks)
    for index, block in enumerate(out):
        seed = f"{index}:{json.dumps(block, sort_keys=True)}"
        block.setdefault("block_id", _short_id(seed))
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict) and block[key].get("type") != "image":
                elements.append(block[key])
        for position, element in enumerate(elements):
            if isinstance(element, dict):
                element.setdefault("action_id", _short_id(f"{seed}:{position}"))
    return out
