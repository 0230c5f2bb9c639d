"""A local fake of the Slack Web API: records calls, answers like Slack, validates Block Kit.

Used by the end-to-end tests and by `handoff demo`. Point slack_sdk's `AsyncWebClient`
(`base_url=sim.api_url`) at it, send interactions with `SlackDriver`, then read what each channel,
user and modal saw. Faults (5xx, errors, 429s, dropped connections) and Slack's per-channel rate
limits can be switched on per method. Files arrive through Slack's external upload flow
(files.getUploadURLExternal, a POST to the upload URL, files.completeUploadExternal); read them
back with `files(channel)`.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import logging
import math
import mimetypes
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, TypeVar
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, web
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.simulator.text import iter_block_texts, render_blocks_text

logger = logging.getLogger(__name__)

T = TypeVar("T")
Json = dict[str, Any]

MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
MESSAGE_TEXT_LIMIT = 40_000
RESPONSE_URL_USES = 5  # Slack honours a response_url five times within thirty minutes
RESPONSE_URL_TTL = 30 * 60.0
VIEW_STACK_LIMIT = 3
# Fields that slack_sdk (or a form post) may send as a JSON-encoded string.
_JSON_FIELDS = {
    "blocks": "invalid_blocks_format",
    "attachments": "invalid_attachments",
    "metadata": "invalid_metadata_format",
    "view": "invalid_arguments",
}
_CHANNEL_ID = re.compile(r"^[A-Z][A-Z0-9]+$")  # Slack names are lowercase, ids uppercase
_SHAREABLE_ID = re.compile(r"^[CGDZ][A-Z0-9]+$")  # completeUploadExternal's channel_id


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass
class RecordedCall:
    """One request the simulator received (Web API method or a response_url post)."""

    method: str
    args: Json
    at: float
    ok: bool = True
    error: str | None = None
    status: int = 200
    retry_after: int | None = None

    @property
    def channel(self) -> str | None:
        channel = self.args.get("channel") or self.args.get("channel_id")
        return channel if isinstance(channel, str) else None


@dataclass
class MessageVersion:
    """A message as it was before an edit."""

    text: str
    blocks: list[Json]
    metadata: Json | None
    at: float


@dataclass
class Message:
    """A message in a channel (top-level when `thread_ts` is None, else a thread reply)."""

    channel: str
    ts: str
    text: str
    blocks: list[Json]
    metadata: Json | None = None
    thread_ts: str | None = None
    user: str = "U0BOT"
    bot_id: str | None = "B0BOT"
    edited_count: int = 0
    edited_ts: str | None = None
    versions: list[MessageVersion] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    posted_at: float = field(default_factory=time.monotonic)
    updated_at: float | None = None
    files: list[Json] = field(default_factory=list)  # a file share: id, name, title, …

    @property
    def all_text(self) -> str:
        """The fallback text and every visible string in the blocks, one per line."""
        return "\n".join([self.text, *iter_block_texts(self.blocks)])

    def buttons(self) -> list[tuple[str | None, Json]]:
        """Every button as (block_id, element), in display order."""
        return buttons_in(self.blocks)

    def render(self, users: dict[str, str] | None = None) -> str:
        return render_blocks_text(self.blocks, text=self.text, users=users)


@dataclass
class SimFile:
    """A file uploaded with the external flow; `content` is None until its bytes arrive."""

    id: str
    name: str
    length: int
    alt_txt: str | None = None
    title: str | None = None
    content: bytes | None = None
    completed: bool = False
    shares: list[tuple[str, str]] = field(default_factory=list)  # (channel, message ts)

    @property
    def mimetype(self) -> str:
        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    def to_api(self) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": self.mimetype,
            "size": len(self.content or b""),
        }


@dataclass
class Ephemeral:
    """An ephemeral message shown to one user (chat.postEphemeral or a response_url)."""

    channel: str
    user: str
    text: str
    blocks: list[Json]
    at: float
    ts: str
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"

    @property
    def all_text(self) -> str:
        return "\n".join([self.text, *iter_block_texts(self.blocks)])

    def render(self, users: dict[str, str] | None = None) -> str:
        return render_blocks_text(self.blocks, text=self.text, users=users)


@dataclass
class OpenView:
    """A modal (or App Home) view as Slack stores it; `view` is what views.* returned."""

    id: str
    user: str
    view: Json
    trigger_id: str | None
    opened_at: float = field(default_factory=time.monotonic)
    closed: bool = False
    errors: dict[str, str] | None = None

    @property
    def callback_id(self) -> str:
        return str(self.view.get("callback_id") or "")

    @property
    def private_metadata(self) -> str:
        return str(self.view.get("private_metadata") or "")

    @property
    def blocks(self) -> list[Json]:
        return list(self.view.get("blocks") or [])


@dataclass
class SimUser:
    """A workspace member the simulator knows (users.info, names in payloads)."""

    id: str
    name: str
    real_name: str
    tz: str = "Australia/Sydney"
    email: str | None = None
    is_bot: bool = False
    is_admin: bool = False

    def to_api(self, team_id: str) -> Json:
        now = datetime.now(ZoneInfo(self.tz))
        offset = now.utcoffset()
        profile = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
        }
        if self.email:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": now.tzname() or self.tz,
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_bot": self.is_bot,
            "is_admin": self.is_admin,
            "profile": profile,
        }


@dataclass
class Fault:
    """An injected failure; see `SlackSimulator.inject`."""

    method: str | None
    status: int
    error: str | None = None
    retry_after: int | None = None
    times: int | None = None
    seconds: float | None = None
    channel: str | None = None
    every: int | None = None
    drop: bool = False
    after: bool = False  # drop only after Slack did the work (the client can't know it did)
    created_at: float = field(default_factory=time.monotonic)
    matched: int = 0
    hits: int = 0
    cancelled: bool = False

    @property
    def active(self) -> bool:
        if self.cancelled or (self.times is not None and self.hits >= self.times):
            return False
        return self.seconds is None or time.monotonic() - self.created_at < self.seconds

    def matches(self, method: str, channel: str | None) -> bool:
        if self.method is not None and not fnmatchcase(method, self.method):
            return False
        return self.channel is None or self.channel == channel

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class RetryWindow:
    """A 429 the simulator sent: no call for (method, channel) is welcome before `allowed_at`."""

    method: str
    channel: str | None
    issued_at: float
    retry_after: int
    allowed_at: float


@dataclass
class InvalidPayload:
    """A payload the simulator refused (bad Block Kit, bad view)."""

    method: str
    payload: Any
    errors: list[str]
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Trigger:
    id: str
    user: str
    issued_at: float
    used: bool = False


@dataclass
class _ResponseUrl:
    token: str
    channel: str
    user: str
    message_ts: str | None
    created_at: float = field(default_factory=time.monotonic)
    uses: int = 0


@dataclass
class _Channel:
    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    messages: dict[str, Message] = field(default_factory=dict)  # every message, in ts order
    replies: dict[str, list[Message]] = field(default_factory=dict)


@dataclass
class _RateLimit:
    """Token bucket per channel: `burst` tokens, refilled at `per_second`."""

    method: str
    per_second: float
    burst: float
    buckets: dict[str | None, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str | None, now: float) -> int | None:
        """Spend a token; return None if allowed, else the Retry-After in whole seconds."""
        tokens, last = self.buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.per_second)
        if tokens >= 1.0:
            self.buckets[key] = (tokens - 1.0, now)
            return None
        self.buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.per_second))


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


# ---------------------------------------------------------------------------------------------
# Block Kit validation
# ---------------------------------------------------------------------------------------------

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
    if kind in _SELECT_WITH_OPTIONS and "option_groups" not in element:
        errors.extend(_options_errors(element.get("options"), f"{here}/options", 100, plain=True))
    elif kind in ("checkboxes", "radio_buttons"):
        errors.extend(_options_errors(element.get("options"), f"{here}/options", 10, plain=False))
    elif kind == "overflow":
        errors.extend(_options_errors(element.get("options"), f"{here}/options", 5, plain=True))
    return errors


def _options_errors(options: Any, here: str, most: int, *, plain: bool) -> list[str]:
    errors = _array_errors(options, here, 1, most)
    for i, option in enumerate(options if isinstance(options, list) else []):
        at = f"{here}/{i}"
        if not isinstance(option, dict):
            errors.append(f"expected an object [json-pointer:{at}]")
            continue
        errors.extend(_text_errors(option.get("text"), f"{at}/text", 75, plain=plain))
        value = option.get("value")
        if not isinstance(value, str) or not value or len(value) > 150:
            errors.append(f"must be 1 to 150 characters [json-pointer:{at}/value]")
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


def _with_generated_ids(blocks: list[Json]) -> list[Json]:
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


def _ts_key(ts: Any) -> int:
    """'1767225600.000100' → microseconds, exact (floats lose the last digit)."""
    seconds, _, fraction = str(ts).partition(".")
    try:
        return int(seconds or 0) * 1_000_000 + int((fraction + "000000")[:6])
    except ValueError:
        return 0


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _text_arg(args: Json) -> str | None:
    text = args.get("text")
    return None if text is None else str(text)


# ---------------------------------------------------------------------------------------------
# The simulator
# ---------------------------------------------------------------------------------------------


class SlackSimulator:
    """A fake Slack workspace and Web API served over HTTP on 127.0.0.1."""

    def __init__(
        self,
        team_id: str = "T0SIM",
        bot_user_id: str = "U0BOT",
        *,
        bot_id: str = "B0BOT",
        app_id: str = "A0HANDOFF",
        team_domain: str = "handoff-sim",
        trigger_ttl: float = 3.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.team_domain = team_domain
        self.trigger_ttl = trigger_ttl
        self._clock = clock  # message ts follow it; pass a fixed clock for a repeatable demo
        # Benchmarks turn Block Kit validation off: it is Slack's CPU, not the bot's.
        self.validate = True
        self.users: dict[str, SimUser] = {}
        self.missing_channels: set[str] = set()
        self.not_in_channel: set[str] = set()
        self.faults: list[Fault] = []
        self.answer_delay = 0.0  # seconds between doing a call's work and answering it
        self._rate_limits: dict[str, _RateLimit] = {}
        self._channels: dict[str, _Channel] = {}
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"
        self._last_ts_us = 0
        self._view_seq = 0
        self._trigger_seq = 0
        self._file_seq = 0
        self._handlers: dict[str, Callable[[Json], Json]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }
        self.add_user(bot_user_id, "handoff", "Handoff", is_bot=True)
        self._clear_state()

    def _clear_state(self) -> None:
        self.calls: list[RecordedCall] = []
        self.invalid_payloads: list[InvalidPayload] = []
        self.rate_limited_calls: list[RecordedCall] = []
        self.retry_windows: list[RetryWindow] = []
        self.views: list[OpenView] = []
        self.deleted: list[Message] = []
        self._ephemerals: list[Ephemeral] = []
        self._views_by_id: dict[str, OpenView] = {}
        self._homes: dict[str, OpenView] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._files: dict[str, SimFile] = {}
        self._upload_urls: dict[str, str] = {}  # token → file id
        for channel in self._channels.values():
            channel.messages.clear()
            channel.replies.clear()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> SlackSimulator:
        """Serve on host:port (0 = any free port); read the real one from `base_url`."""
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{token}", self._handle_response_url)
        app.router.add_post("/upload/{token}", self._handle_upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._host = host
        self._port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("SlackSimulator is not started; await sim.start() first")
        return f"http://{self._host}:{self._port}"

    @property
    def api_url(self) -> str:
        """Pass as `base_url` to AsyncWebClient (or as SLACK_API_URL)."""
        return f"{self.base_url}/api/"

    def reset(self) -> None:
        """Forget messages, calls, ephemerals, views, faults and rate limits; keep users."""
        self._clear_state()
        self.faults.clear()
        self._rate_limits.clear()
        self.missing_channels.clear()
        self.not_in_channel.clear()

    # -- workspace setup ------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        real_name: str | None = None,
        tz: str = "Australia/Sydney",
        *,
        email: str | None = None,
        is_bot: bool = False,
        is_admin: bool = False,
    ) -> SimUser:
        ZoneInfo(tz)  # fail here, not inside users.info
        user = SimUser(user_id, name, real_name or name, tz, email, is_bot, is_admin)
        self.users[user_id] = user
        return user

    def add_channel(
        self, channel_id: str, name: str | None = None, *, private: bool = False
    ) -> None:
        """Register a channel so it can be addressed by name ("#sales") and has a name."""
        channel = self._channel(channel_id)
        channel.name = name or channel.name
        channel.is_private = private

    def user_names(self) -> dict[str, str]:
        """user id → display name, for `render_blocks_text(users=...)`."""
        return {user.id: user.name for user in self.users.values()}

    def channel_name(self, channel_id: str) -> str:
        return self._channel(channel_id).name

    def dm_channel(self, user_id: str) -> str:
        """The id of the bot's DM channel with a user (what chat.postMessage to a user id uses)."""
        return f"D{user_id[1:]}"

    # -- faults and rate limits -----------------------------------------------------------------

    def inject(
        self,
        method: str | None = None,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: int | None = None,
        times: int | None = None,
        seconds: float | None = None,
        channel: str | None = None,
        every: int | None = None,
    ) -> Fault:
        """Fail matching calls (method None = all; shell patterns like "chat.*" work).

        retry_after or status=429 → 429 ratelimited with Retry-After; error → HTTP 200 with
        `{"ok": false, "error": error}`; otherwise HTTP `status` (default 500). `times` caps the
        failures, `seconds` the duration, `every=n` fails only every n-th matching call.
        """
        if retry_after is not None or status == 429:
            status, retry_after = 429, max(1, retry_after or 1)
        elif status is None:
            status = 200 if error else 500
        fault = Fault(method, status, error, retry_after, times, seconds, channel, every)
        self.faults.append(fault)
        return fault

    def inject_connection_drop(
        self,
        method: str | None = None,
        *,
        times: int | None = None,
        seconds: float | None = None,
        channel: str | None = None,
        every: int | None = None,
        after: bool = False,
    ) -> Fault:
        """Close the connection without answering; clients see ServerDisconnectedError.

        With `after`, the call is carried out first (a message is posted) and only the answer
        is lost: the outcome a client must reconcile before it retries.
        """
        fault = Fault(method, 0, None, None, times, seconds, channel, every, drop=True, after=after)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_rate_limit(
        self,
        method: str = "chat.postMessage",
        per_second: float | None = 20.0,
        burst: float | None = None,
    ) -> None:
        """Enforce a per-channel token bucket: `burst` (default max(1, per_second)) calls at once,
        refilled at `per_second`. Over it → 429 with an integer Retry-After ≥ 1. Calls without a
        channel share one bucket. per_second=None removes the limit."""
        if per_second is None:
            self._rate_limits.pop(method, None)
            return
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._rate_limits[method] = _RateLimit(method, per_second, burst or max(1.0, per_second))

    def early_retries(self, grace: float = 0.0) -> list[RecordedCall]:
        """Calls that reached (method, channel) after a 429 and before its Retry-After passed.

        A call arriving within `grace` seconds of the 429 is ignored: with several requests in
        flight for one channel, those were sent before the client could have seen the 429.
        """
        windows: dict[tuple[str, str | None], list[RetryWindow]] = {}
        for window in self.retry_windows:
            windows.setdefault((window.method, window.channel), []).append(window)
        early: list[RecordedCall] = []
        for call in self.calls:
            for window in windows.get((call.method, call.channel), []):
                if window.issued_at + grace < call.at < window.allowed_at:
                    early.append(call)
                    break
        return early

    # -- queries --------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.method == method]

    def all_channels(self) -> list[str]:
        return list(self._channels)

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages, oldest first, as they look now."""
        state = self._channels.get(channel)
        if state is None:
            return []
        return [m for m in state.messages.values() if m.thread_ts is None]

    def all_messages(self, channel: str) -> list[Message]:
        """Every message in a channel, thread replies included, oldest first."""
        state = self._channels.get(channel)
        return list(state.messages.values()) if state else []

    def message(self, channel: str, ts: str) -> Message | None:
        state = self._channels.get(channel)
        return state.messages.get(ts) if state else None

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Replies to a message, oldest first (the parent not included)."""
        state = self._channels.get(channel)
        return list(state.replies.get(ts, [])) if state else []

    def find_message(self, channel: str | None, contains: str) -> Message | None:
        """Newest message (top-level or reply) whose text or block text contains `contains`."""
        channels = [channel] if channel is not None else list(self._channels)
        names = self.user_names()
        found: list[Message] = []
        for channel_id in channels:
            state = self._channels.get(channel_id)
            for message in state.messages.values() if state else []:
                if contains in message.all_text or contains in message.render(names):
                    found.append(message)
        return max(found, key=lambda m: _ts_key(m.ts)) if found else None

    def files(self, channel: str | None = None) -> list[SimFile]:
        """Files shared in a channel (a DM's id, or a user id for their DM), oldest share first;
        None: every file uploaded, shared or not."""
        if channel is None:
            return list(self._files.values())
        if channel[:1] in ("U", "W"):
            channel = self.dm_channel(channel)
        shared = [
            (_ts_key(ts), file)
            for file in self._files.values()
            for where, ts in file.shares
            if where == channel
        ]
        return [file for _, file in sorted(shared, key=lambda pair: pair[0])]

    def file(self, file_id: str) -> SimFile | None:
        return self._files.get(file_id)

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[Ephemeral]:
        return [
            e
            for e in self._ephemerals
            if (user is None or e.user == user) and (channel is None or e.channel == channel)
        ]

    def home(self, user: str) -> Json | None:
        """The App Home view last published for a user."""
        view = self._homes.get(user)
        return view.view if view else None

    def view(self, view_id: str) -> OpenView | None:
        return self._views_by_id.get(view_id)

    def open_views(self, user: str | None = None) -> list[OpenView]:
        """Modals still open, oldest first."""
        return [v for v in self.views if not v.closed and (user is None or v.user == user)]

    # A plain timeout argument reads better in tests than wrapping in asyncio.timeout().
    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109
        what: str = "condition",
    ) -> T:
        """Poll every 10 ms until predicate() is truthy and return it; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    def post_as_user(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> Message:
        """Put a person's message in a channel (no API call is recorded)."""
        state = self._channel(channel)
        return self._store_message(state, text, [], None, thread_ts, user=user, bot_id=None)

    # -- hooks for the driver -------------------------------------------------------------------

    def issue_trigger(self, user_id: str) -> str:
        """A trigger_id as Slack puts in an interaction; views.open accepts it once, briefly."""
        self._trigger_seq += 1
        trigger_id = f"{self._trigger_seq}.{int(time.time())}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = _Trigger(trigger_id, user_id, time.monotonic())
        return trigger_id

    def new_response_url(self, channel_id: str, user_id: str, message_ts: str | None = None) -> str:
        token = secrets.token_hex(12)
        self._response_urls[token] = _ResponseUrl(token, channel_id, user_id, message_ts)
        return f"{self.base_url}/response/{token}"

    def latest_view(self, user: str) -> OpenView | None:
        views = self.open_views(user)
        return views[-1] if views else None

    def apply_view_response(self, view_id: str, response: Json | None) -> None:
        """Do what Slack does with the bot's answer to a view_submission."""
        current = self._views_by_id.get(view_id)
        if current is None:
            return
        action = (response or {}).get("response_action")
        if action == "errors":
            current.errors = dict((response or {}).get("errors") or {})
            return
        if action in ("update", "push"):
            new_view = (response or {}).get("view")
            errors = validate_view(new_view)
            if errors:
                self.invalid_payloads.append(
                    InvalidPayload(f"response_action:{action}", new_view, errors)
                )
                return
            assert isinstance(new_view, dict)
            if action == "update":
                current.view = self._stored_view(new_view, current.id, current.view)
                current.errors = None
            else:
                self._open_view(current.user, new_view, None, previous=current)
            return
        if action == "clear":
            for view in self.open_views(current.user):
                view.closed = True
            return
        current.closed = True

    # -- HTTP -----------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        call = RecordedCall(request.match_info["method"], {}, time.monotonic())
        self.calls.append(call)
        try:
            call.args = await _read_args(request)
        except _ApiError as exc:
            return self._finish(call, {"ok": False, "error": exc.error})
        try:
            auth_error = _auth_error(request, call.args)
            if auth_error:
                return self._finish(call, {"ok": False, "error": auth_error})
            refused = self._apply_faults(call, request) or self._apply_rate_limits(call)
            if refused is not None:
                return refused
            handler = self._handlers.get(call.method)
            if handler is None:
                return self._finish(call, {"ok": False, "error": "unknown_method"})
            _decode_json_fields(call.args)
            answer = {"ok": True, **handler(call.args)}
            if self.answer_delay:
                await asyncio.sleep(self.answer_delay)
            if self._apply_faults(call, request, after=True) is not None:
                return web.Response()  # done, but the client never hears it
            return self._finish(call, answer)
        except _ApiError as exc:
            return self._finish(call, {"ok": False, "error": exc.error, **exc.extra})
        except Exception:
            logger.exception("simulator failed on %s", call.method)
            return self._finish(call, {"ok": False, "error": "internal_error"})

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        call = RecordedCall("response_url", {}, time.monotonic())
        self.calls.append(call)
        try:
            call.args = await _read_args(request)
            if isinstance(call.args.get("payload"), str):  # form-encoded variant
                call.args = json.loads(call.args["payload"])
            if not isinstance(call.args, dict):
                raise ValueError("payload must be an object")
        except (_ApiError, ValueError):
            return self._finish_text(call, 400, "invalid_payload")
        hook = self._response_urls.get(request.match_info["token"])
        if hook is not None:
            call.args.setdefault("channel", hook.channel)
        refused = self._apply_faults(call, request)
        if refused is not None:
            return refused
        if hook is None:
            return self._finish_text(call, 404, "no_service")
        if time.monotonic() - hook.created_at > RESPONSE_URL_TTL:
            return self._finish_text(call, 404, "expired_url")
        if hook.uses >= RESPONSE_URL_USES:
            return self._finish_text(call, 404, "used_url")
        hook.uses += 1
        try:
            self._respond(hook, call.args)
        except _ApiError as exc:
            return self._finish_text(call, 400, exc.error)
        except Exception:
            logger.exception("simulator failed on a response_url post")
            return self._finish_text(call, 500, "internal_error")
        return self._finish_text(call, 200, "ok")

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        """The upload URL of files.getUploadURLExternal: the raw bytes, or one multipart file."""
        file_id = self._upload_urls.get(request.match_info["token"])
        call = RecordedCall("upload_url", {"file_id": file_id}, time.monotonic())
        self.calls.append(call)
        refused = self._apply_faults(call, request)
        if refused is not None:
            return refused
        if file_id is None:
            return self._finish_text(call, 404, "no_such_upload")
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            part = await reader.next()
            content = await part.read() if isinstance(part, BodyPartReader) else b""
        else:
            content = await request.read()
        call.args["size"] = len(content)
        upload = self._files[file_id]
        if upload.completed:
            return self._finish_text(call, 400, "upload_completed")
        upload.content = bytes(content)
        if self._apply_faults(call, request, after=True) is not None:
            return web.Response()
        return self._finish_text(call, 200, f"OK - {len(content)}")

    def _finish(
        self,
        call: RecordedCall,
        body: Json,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        call.ok = bool(body.get("ok"))
        call.error = None if call.ok else str(body.get("error"))
        call.status = status
        return web.json_response(body, status=status, headers=headers)

    def _finish_text(self, call: RecordedCall, status: int, text: str) -> web.Response:
        call.ok = status == 200
        call.error = None if call.ok else text
        call.status = status
        return web.Response(status=status, text=text)

    def _apply_faults(
        self, call: RecordedCall, request: web.Request, *, after: bool = False
    ) -> web.StreamResponse | None:
        for fault in self.faults:
            if fault.after != after:
                continue
            if not fault.active or not fault.matches(call.method, call.channel):
                continue
            fault.matched += 1
            if fault.every and fault.matched % fault.every:
                continue
            fault.hits += 1
            if fault.drop:
                call.ok, call.error, call.status = False, "connection_dropped", 0
                # Closing the transport before any byte is written is what a client sees as
                # ServerDisconnectedError; the Response below is never sent.
                request.protocol.force_close()
                if request.transport is not None:
                    request.transport.close()
                return web.Response()
            if fault.status == 429:
                return self._rate_limited(call, fault.retry_after or 1)
            error = fault.error or ("fatal_error" if fault.status >= 500 else "invalid_request")
            body = {"ok": False, "error": error}
            if call.method in ("response_url", "upload_url"):
                return self._finish_text(call, fault.status, error)
            return self._finish(call, body, status=fault.status)
        return None

    def _apply_rate_limits(self, call: RecordedCall) -> web.Response | None:
        now = time.monotonic()
        for limit in self._rate_limits.values():
            if fnmatchcase(call.method, limit.method):
                wait = limit.take(call.channel, now)
                if wait is not None:
                    return self._rate_limited(call, wait)
        return None

    def _rate_limited(self, call: RecordedCall, retry_after: int) -> web.Response:
        now = time.monotonic()
        call.retry_after = retry_after
        self.rate_limited_calls.append(call)
        window = RetryWindow(call.method, call.channel, now, retry_after, now + retry_after)
        self.retry_windows.append(window)
        return self._finish(
            call,
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )

    # -- shared logic ---------------------------------------------------------------------------

    def _next_ts(self) -> str:
        micros = max(int(self._clock() * 1_000_000), self._last_ts_us + 100)
        self._last_ts_us = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _channel(self, channel_id: str) -> _Channel:
        state = self._channels.get(channel_id)
        if state is None:
            is_im = channel_id.startswith("D")
            name = channel_id if is_im else channel_id.lower()
            state = _Channel(channel_id, name, is_im=is_im)
            self._channels[channel_id] = state
        return state

    def _resolve_channel(self, raw: Any, *, posting: bool = False) -> _Channel:
        if not isinstance(raw, str) or not raw.strip():
            raise _ApiError("channel_not_found")
        raw = raw.strip()
        if raw in self.missing_channels:
            raise _ApiError("channel_not_found")
        if not _CHANNEL_ID.match(raw):
            name = raw.removeprefix("#")
            match = next((c for c in self._channels.values() if c.name == name), None)
            if match is None:
                raise _ApiError("channel_not_found")
            raw = match.id
        elif raw[0] in "UW":  # a user id: Slack posts to the bot's DM with that person
            state = self._channel(self.dm_channel(raw))
            state.im_user = raw
            return state
        if raw in self.missing_channels:
            raise _ApiError("channel_not_found")
        if posting and raw in self.not_in_channel:
            raise _ApiError("not_in_channel")
        return self._channel(raw)

    def _checked_blocks(
        self, method: str, args: Json, *, limit: int = MESSAGE_BLOCK_LIMIT
    ) -> list[Json] | None:
        """Validated blocks with generated ids, None when the call has no `blocks`."""
        blocks = args.get("blocks")
        if blocks is None:
            return None
        errors = validate_blocks(blocks, limit=limit) if self.validate else []
        if errors:
            self.invalid_payloads.append(InvalidPayload(method, copy.deepcopy(blocks), errors))
            raise _ApiError("invalid_blocks", errors=errors)
        return _with_generated_ids(blocks)

    def _checked_view(self, method: str, view: Any) -> Json:
        errors = validate_view(view)
        if errors:
            self.invalid_payloads.append(InvalidPayload(method, copy.deepcopy(view), errors))
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        assert isinstance(view, dict)
        return view

    def _message_content(self, method: str, args: Json) -> tuple[str | None, list[Json] | None]:
        text = _text_arg(args)
        blocks = self._checked_blocks(method, args)
        if not text and not blocks and not args.get("attachments"):
            raise _ApiError("no_text")
        if text is not None and len(text) > MESSAGE_TEXT_LIMIT:
            raise _ApiError("msg_too_long")
        return text, blocks

    def _store_message(
        self,
        state: _Channel,
        text: str,
        blocks: list[Json],
        metadata: Json | None,
        thread_ts: str | None,
        *,
        user: str | None = None,
        bot_id: str | None = None,
    ) -> Message:
        if thread_ts:
            parent = state.messages.get(str(thread_ts))
            if parent is None:
                raise _ApiError("thread_not_found")
            thread_ts = parent.thread_ts or parent.ts  # replying to a reply joins its thread
        message = Message(
            channel=state.id,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            metadata=metadata,
            thread_ts=thread_ts or None,
            user=user or self.bot_user_id,
            bot_id=bot_id,
        )
        state.messages[message.ts] = message
        if message.thread_ts:
            state.replies.setdefault(message.thread_ts, []).append(message)
        return message

    def message_json(self, message: Message, *, include_metadata: bool = True) -> Json:
        """A message as Slack's API and interaction payloads show it."""
        out: Json = {
            "type": "message",
            "user": message.user,
            "text": message.text,
            "ts": message.ts,
        }
        out["team"] = self.team_id
        if message.bot_id:
            out.update(bot_id=message.bot_id, app_id=self.app_id)
        if message.blocks:
            out["blocks"] = copy.deepcopy(message.blocks)
        if message.thread_ts:
            out["thread_ts"] = message.thread_ts
            out["parent_user_id"] = self.bot_user_id
        replies = self._channels[message.channel].replies.get(message.ts)
        if replies:
            out.update(
                thread_ts=message.ts,
                reply_count=len(replies),
                reply_users=sorted({r.user for r in replies}),
                latest_reply=replies[-1].ts,
            )
        if message.edited_ts:
            out["edited"] = {"user": message.user, "ts": message.edited_ts}
        if message.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in message.reactions.items()
            ]
        if include_metadata and message.metadata:
            out["metadata"] = copy.deepcopy(message.metadata)
        if message.files:
            out.update(files=copy.deepcopy(message.files), upload=True)
        return out

    def _find_own_message(self, args: Json, ts_key: str = "ts") -> tuple[_Channel, Message]:
        state = self._resolve_channel(args.get("channel"))
        message = state.messages.get(str(args.get(ts_key) or ""))
        if message is None:
            raise _ApiError("message_not_found")
        return state, message

    def _edit(
        self, message: Message, text: str | None, blocks: list[Json] | None, metadata: Json | None
    ) -> None:
        message.versions.append(
            MessageVersion(message.text, message.blocks, message.metadata, time.monotonic())
        )
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = blocks
        if metadata is not None:
            message.metadata = metadata
        message.edited_count += 1
        message.edited_ts = self._next_ts()
        message.updated_at = time.monotonic()

    def _respond(self, hook: _ResponseUrl, body: Json) -> None:
        """Apply a response_url post: replace/delete the source message, or add a new one."""
        _decode_json_fields(body)
        state = self._channel(hook.channel)
        source = state.messages.get(hook.message_ts) if hook.message_ts else None
        if _flag(body.get("delete_original")):
            if source is None:
                raise _ApiError("message_not_found")
            self._delete(state, source)
            return
        text, blocks = self._message_content("response_url", body)
        if _flag(body.get("replace_original")) and source is not None:
            self._edit(source, text or "", blocks or [], None)  # a replacement is a whole message
            return
        if body.get("response_type") == "in_channel":
            thread_ts = body.get("thread_ts")
            self._store_message(
                state, text or "", blocks or [], None, thread_ts, bot_id=self.bot_id
            )
            return
        ephemeral = Ephemeral(
            hook.channel,
            hook.user,
            text or "",
            blocks or [],
            time.monotonic(),
            self._next_ts(),
            body.get("thread_ts"),
            source="response_url",
        )
        self._ephemerals.append(ephemeral)

    def _delete(self, state: _Channel, message: Message) -> None:
        state.messages.pop(message.ts, None)
        if message.thread_ts:
            siblings = state.replies.get(message.thread_ts, [])
            state.replies[message.thread_ts] = [m for m in siblings if m.ts != message.ts]
        self.deleted.append(message)

    # -- views ----------------------------------------------------------------------------------

    def _use_trigger(self, trigger_id: Any) -> _Trigger:
        trigger = self._triggers.get(str(trigger_id or ""))
        if trigger is None:
            raise _ApiError("invalid_trigger_id")
        if trigger.used:
            raise _ApiError("exchanged_trigger_id")
        if time.monotonic() - trigger.issued_at > self.trigger_ttl:
            raise _ApiError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _stored_view(self, view: Json, view_id: str, previous: Json | None = None) -> Json:
        stored: Json = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "blocks": _with_generated_ids(view.get("blocks") or []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": (previous or {}).get("previous_view_id"),
            "root_view_id": (previous or {}).get("root_view_id", view_id),
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        if "title" in view:
            stored["title"] = view["title"]
        return stored

    def _open_view(
        self, user: str, view: Json, trigger_id: str | None, previous: OpenView | None = None
    ) -> OpenView:
        if previous is not None and len(self.open_views(user)) >= VIEW_STACK_LIMIT:
            raise _ApiError("push_limit_reached")
        self._view_seq += 1
        view_id = f"V0SIM{self._view_seq:06d}"
        stored = self._stored_view(view, view_id)
        if previous is not None:
            stored["previous_view_id"] = previous.id
            stored["root_view_id"] = previous.view.get("root_view_id", previous.id)
        opened = OpenView(view_id, user, stored, trigger_id)
        self.views.append(opened)
        self._views_by_id[view_id] = opened
        return opened

    # -- Web API methods ------------------------------------------------------------------------

    def _auth_test(self, args: Json) -> Json:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Handoff Simulator",
            "user": self.users[self.bot_user_id].name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: Json) -> Json:
        state = self._resolve_channel(args.get("channel"), posting=True)
        text, blocks = self._message_content("chat.postMessage", args)
        metadata = _metadata(args.get("metadata"))
        message = self._store_message(
            state, text or "", blocks or [], metadata, args.get("thread_ts"), bot_id=self.bot_id
        )
        return {"channel": state.id, "ts": message.ts, "message": self.message_json(message)}

    def _chat_update(self, args: Json) -> Json:
        state, message = self._find_own_message(args)
        if message.user != self.bot_user_id:
            raise _ApiError("cant_update_message")
        text, blocks = self._message_content("chat.update", args)
        self._edit(message, text, blocks, _metadata(args.get("metadata")))
        return {
            "channel": state.id,
            "ts": message.ts,
            "text": message.text,
            "message": self.message_json(message),
        }

    def _chat_delete(self, args: Json) -> Json:
        state, message = self._find_own_message(args)
        if message.user != self.bot_user_id:
            raise _ApiError("cant_delete_message")
        self._delete(state, message)
        return {"channel": state.id, "ts": message.ts}

    def _chat_post_ephemeral(self, args: Json) -> Json:
        state = self._resolve_channel(args.get("channel"), posting=True)
        user = args.get("user")
        if not isinstance(user, str) or not user:
            raise _ApiError("user_not_found")
        text, blocks = self._message_content("chat.postEphemeral", args)
        ts = self._next_ts()
        ephemeral = Ephemeral(
            state.id, user, text or "", blocks or [], time.monotonic(), ts, args.get("thread_ts")
        )
        self._ephemerals.append(ephemeral)
        return {"message_ts": ts}

    def _chat_get_permalink(self, args: Json) -> Json:
        state, message = self._find_own_message(args, "message_ts")
        digits = message.ts.replace(".", "")
        link = f"https://{self.team_domain}.slack.com/archives/{state.id}/p{digits}"
        if message.thread_ts:
            link += f"?thread_ts={message.thread_ts}&cid={state.id}"
        return {"channel": state.id, "permalink": link}

    def _views_open(self, args: Json) -> Json:
        view = self._checked_view("views.open", args.get("view"))
        trigger = self._use_trigger(args.get("trigger_id"))
        return {"view": copy.deepcopy(self._open_view(trigger.user, view, trigger.id).view)}

    def _views_push(self, args: Json) -> Json:
        view = self._checked_view("views.push", args.get("view"))
        trigger = self._use_trigger(args.get("trigger_id"))
        top = self.latest_view(trigger.user)
        if top is None:
            raise _ApiError("not_found")
        return {"view": copy.deepcopy(self._open_view(trigger.user, view, trigger.id, top).view)}

    def _views_update(self, args: Json) -> Json:
        view = self._checked_view("views.update", args.get("view"))
        target: OpenView | None = None
        if args.get("view_id"):
            target = self._views_by_id.get(str(args["view_id"]))
        elif args.get("external_id"):
            external = str(args["external_id"])
            target = next(
                (v for v in reversed(self.views) if v.view.get("external_id") == external), None
            )
        else:
            raise _ApiError("invalid_arguments")
        if target is None:
            raise _ApiError("not_found")
        if args.get("hash") and args["hash"] != target.view.get("hash"):
            raise _ApiError("hash_conflict")
        target.view = self._stored_view(view, target.id, target.view)
        return {"view": copy.deepcopy(target.view)}

    def _views_publish(self, args: Json) -> Json:
        view = self._checked_view("views.publish", args.get("view"))
        user = args.get("user_id")
        if not isinstance(user, str) or not user:
            raise _ApiError("invalid_arguments")
        if view.get("type") != "home":
            raise _ApiError(
                "invalid_arguments", response_metadata={"messages": ["type must be home"]}
            )
        home = self._homes.get(user)
        if home is None:
            self._view_seq += 1
            home = OpenView(f"V0SIM{self._view_seq:06d}", user, {}, None)
            self._homes[user] = home
            self._views_by_id[home.id] = home
        home.view = self._stored_view(view, home.id)
        return {"view": copy.deepcopy(home.view)}

    def _users_info(self, args: Json) -> Json:
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            raise _ApiError("user_not_found")
        return {"user": user.to_api(self.team_id)}

    def _users_list(self, args: Json) -> Json:
        members = [user.to_api(self.team_id) for user in self.users.values()]
        return {"members": members, "response_metadata": {"next_cursor": ""}}

    def _users_lookup_by_email(self, args: Json) -> Json:
        email = str(args.get("email") or "").lower()
        user = next((u for u in self.users.values() if (u.email or "").lower() == email), None)
        if user is None:
            raise _ApiError("users_not_found")
        return {"user": user.to_api(self.team_id)}

    def _channel_json(self, state: _Channel) -> Json:
        out: Json = {
            "id": state.id,
            "name": state.name,
            "is_channel": not state.is_im and not state.is_private,
            "is_group": False,
            "is_im": state.is_im,
            "is_private": state.is_private or state.is_im,
            "is_archived": False,
            "is_member": state.id not in self.not_in_channel,
            "context_team_id": self.team_id,
        }
        if state.im_user:
            out["user"] = state.im_user
        return out

    def _conversations_info(self, args: Json) -> Json:
        return {"channel": self._channel_json(self._resolve_channel(args.get("channel")))}

    def _conversations_join(self, args: Json) -> Json:
        state = self._resolve_channel(args.get("channel"))
        if state.is_im:
            raise _ApiError("method_not_supported_for_channel_type")
        self.not_in_channel.discard(state.id)
        return {"channel": self._channel_json(state)}

    def _conversations_open(self, args: Json) -> Json:
        users = [u for u in str(args.get("users") or args.get("user") or "").split(",") if u]
        if len(users) != 1:
            raise _ApiError(
                "not_enough_users" if not users else "method_not_supported_for_channel_type"
            )
        state = self._resolve_channel(users[0])
        return {"channel": {"id": state.id}}

    def _conversations_history(self, args: Json) -> Json:
        state = self._resolve_channel(args.get("channel"), posting=True)
        oldest, latest = _ts_key(args.get("oldest") or 0), args.get("latest")
        latest_key = _ts_key(latest) if latest else None
        inclusive = _flag(args.get("inclusive"))

        def in_range(m: Message) -> bool:
            key = _ts_key(m.ts)
            above = key >= oldest if inclusive else key > oldest
            below = latest_key is None or (key <= latest_key if inclusive else key < latest_key)
            return above and below

        newest_first = [m for m in reversed(self.messages(state.id)) if in_range(m)]
        return self._page(newest_first, args)

    def _conversations_replies(self, args: Json) -> Json:
        state = self._resolve_channel(args.get("channel"), posting=True)
        message = state.messages.get(str(args.get("ts") or ""))
        if message is None:
            raise _ApiError("thread_not_found")
        parent = state.messages.get(message.thread_ts or "", message)
        return self._page([parent, *state.replies.get(parent.ts, [])], args)

    def _page(self, messages: list[Message], args: Json) -> Json:
        limit = min(max(_int(args.get("limit"), 100), 1), 999)
        offset = _int(_decode_cursor(args.get("cursor")), 0)
        page = messages[offset : offset + limit]
        has_more = len(messages) > offset + limit
        include_metadata = _flag(args.get("include_all_metadata"))
        return {
            "messages": [self.message_json(m, include_metadata=include_metadata) for m in page],
            "has_more": has_more,
            "response_metadata": {
                "next_cursor": _encode_cursor(offset + limit) if has_more else ""
            },
        }

    def _reactions_add(self, args: Json) -> Json:
        _, message = self._find_own_message(args, "timestamp")
        users = message.reactions.setdefault(str(args.get("name") or ""), [])
        if self.bot_user_id in users:
            raise _ApiError("already_reacted")
        users.append(self.bot_user_id)
        return {}

    def _reactions_remove(self, args: Json) -> Json:
        _, message = self._find_own_message(args, "timestamp")
        name = str(args.get("name") or "")
        users = message.reactions.get(name, [])
        if self.bot_user_id not in users:
            raise _ApiError("no_reaction")
        users.remove(self.bot_user_id)
        if not users:
            del message.reactions[name]
        return {}

    def _files_get_upload_url_external(self, args: Json) -> Json:
        filename = args.get("filename")
        length = _int(args.get("length"), -1)
        if not isinstance(filename, str) or not filename.strip() or length < 0:
            raise _ApiError("invalid_arguments")
        self._file_seq += 1
        file_id = f"F0SIM{self._file_seq:06d}"
        alt_txt = args.get("alt_txt") if isinstance(args.get("alt_txt"), str) else None
        self._files[file_id] = SimFile(file_id, filename, length, alt_txt)
        token = secrets.token_hex(12)
        self._upload_urls[token] = file_id
        return {"upload_url": f"{self.base_url}/upload/{token}", "file_id": file_id}

    def _files_complete_upload_external(self, args: Json) -> Json:
        entries = args.get("files")
        if isinstance(entries, str):
            try:
                entries = json.loads(entries)
            except json.JSONDecodeError as exc:
                raise _ApiError("invalid_arguments") from exc
        if not isinstance(entries, list) or not entries:
            raise _ApiError("invalid_arguments")
        uploads: list[tuple[SimFile, Any]] = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise _ApiError("invalid_arguments")
            upload = self._files.get(entry["id"])
            # Unknown, its bytes never posted, or completed already (an upload completes once).
            if upload is None or upload.content is None or upload.completed:
                raise _ApiError("file_not_found")
            uploads.append((upload, entry.get("title")))
        targets = self._upload_targets(args)
        thread_ts = args.get("thread_ts")
        if thread_ts and any(str(thread_ts) not in state.messages for state in targets):
            raise _ApiError("thread_not_found")
        for upload, title in uploads:
            upload.completed = True
            upload.title = str(title) if title else upload.name
        comment = str(args.get("initial_comment") or "")
        for state in targets:
            message = self._store_message(state, comment, [], None, thread_ts, bot_id=self.bot_id)
            message.files = [upload.to_api() for upload, _ in uploads]
            for upload, _ in uploads:
                upload.shares.append((state.id, message.ts))
        return {"files": [{"id": u.id, "title": u.title} for u, _ in uploads]}

    def _upload_targets(self, args: Json) -> list[_Channel]:
        """Where completeUploadExternal shares: `channel_id` (a C/G/D/Z id, never a user id),
        or `channels` (ids, user ids too); neither keeps the file private."""
        channel_id, channels = args.get("channel_id"), args.get("channels")
        if channel_id:
            if not isinstance(channel_id, str) or not _SHAREABLE_ID.match(channel_id):
                raise _ApiError(
                    "invalid_arguments",
                    response_metadata={
                        "messages": [
                            "[ERROR] input must match regex pattern: ^[CGDZ][A-Z0-9]{8,}$ "
                            "[json-pointer:/channel_id]"
                        ]
                    },
                )
            return [self._resolve_channel(channel_id, posting=True)]
        if isinstance(channels, str) and channels.strip():
            return [self._resolve_channel(c, posting=True) for c in channels.split(",") if c]
        return []


# ---------------------------------------------------------------------------------------------
# Request parsing helpers
# ---------------------------------------------------------------------------------------------


async def _read_args(request: web.Request) -> Json:
    """Merge query string, form body and JSON body, like Slack accepts all three."""
    args: Json = dict(request.query)
    if not request.body_exists:
        return args
    if request.content_type == "multipart/form-data":
        form = await request.post()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
        return args
    raw = await request.read()
    if not raw.strip():
        return args
    try:
        if request.content_type == "application/json":
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise _ApiError("invalid_json")
            args.update(data)
        else:
            args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _ApiError(
            "invalid_json" if isinstance(exc, json.JSONDecodeError) else "invalid_form_data"
        ) from exc
    return args


def _auth_error(request: web.Request, args: Json) -> str | None:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else args.get("token")
    if not token:
        return "not_authed"
    if not isinstance(token, str) or not token.startswith("xox"):
        return "invalid_auth"
    return None


def _decode_json_fields(args: Json) -> None:
    for key, error in _JSON_FIELDS.items():
        value = args.get(key)
        if isinstance(value, str):
            try:
                args[key] = json.loads(value) if value.strip() else None
            except json.JSONDecodeError as exc:
                raise _ApiError(error) from exc


def _metadata(value: Any) -> Json | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("event_type"), str)
        or not isinstance(value.get("event_payload", {}), dict)
    ):
        raise _ApiError("invalid_metadata_format")
    return {"event_type": value["event_type"], "event_payload": value.get("event_payload", {})}


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: Any) -> str:
    if not cursor:
        return "0"
    try:
        return base64.b64decode(str(cursor)).decode().removeprefix("offset:")
    except ValueError:
        return "0"
