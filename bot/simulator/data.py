"""What the simulator records and stores: calls, messages, files, views, users, channels."""

from __future__ import annotations

import mimetypes
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.simulator.blockkit import Json, buttons_in
from bot.simulator.text import iter_block_texts, render_blocks_text


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
    """An ephemeral message shown to one user (chat.postEphemeral, a response_url, or a slash
    command's immediate answer: `source` "command")."""

    channel: str
    user: str
    text: str
    blocks: list[Json]
    at: float
    ts: str
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"
    replaced: int = 0  # times a response_url's `replace_original` replaced it

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
    # A deactivated member: users.info still answers, with `deleted: true` (Slack's user object,
    # https://api.slack.com/types/user).
    deleted: bool = False
    # A guest (https://api.slack.com/types/user): is_restricted for a multi-channel guest, and
    # is_ultra_restricted too for a single-channel one.
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    # The custom status (users.profile.get; https://api.slack.com/methods/users.profile.get):
    # its text, emoji, and expiration in Unix seconds (0: it does not expire).
    status_text: str = ""
    status_emoji: str = ""
    status_expiration: int = 0

    def profile(self) -> Json:
        """The member's profile as users.profile.get answers it."""
        profile: Json = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "status_text": self.status_text,
            "status_emoji": self.status_emoji,
            "status_emoji_display_info": [],
            "status_expiration": self.status_expiration,
        }
        if self.email:
            profile["email"] = self.email
        return profile

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
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": now.tzname() or self.tz,
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_bot": self.is_bot,
            "is_admin": self.is_admin,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "profile": profile,
        }


@dataclass
class Trigger:
    """A trigger_id handed out with an interaction; views.open/push take it once."""

    id: str
    user: str
    issued_at: float
    used: bool = False


@dataclass
class ResponseUrl:
    """A response_url handed out with an interaction, and how often it was used.
    `message_ts`: the message pressed on; an ephemeral one (`ephemeral`) is `user`'s."""

    token: str
    channel: str
    user: str
    message_ts: str | None
    created_at: float = field(default_factory=time.monotonic)
    uses: int = 0
    ephemeral: bool = False


@dataclass
class Channel:
    """A conversation (channel, private channel or DM) and the messages in it."""

    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    is_archived: bool = False
    messages: dict[str, Message] = field(default_factory=dict)  # every message, in ts order
    replies: dict[str, list[Message]] = field(default_factory=dict)


class ApiError(Exception):
    """A Web API method refused the call: `{"ok": false, "error": error, **extra}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def ts_key(ts: Any) -> int:
    """'1767225600.000100' → microseconds, exact (floats lose the last digit)."""
    seconds, _, fraction = str(ts).partition(".")
    try:
        return int(seconds or 0) * 1_000_000 + int((fraction + "000000")[:6])
    except ValueError:
        return 0


def flag(value: Any) -> bool:
    """A boolean argument as Slack reads it: true, 1 and yes, in JSON or a form."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def int_arg(value: Any, default: int) -> int:
    """An integer argument, or `default` when it is missing or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
