"""What a Slack workspace stores, and the primitives every Web API family shares.

`Workspace` holds the users, channels, messages, views, files and call records; the method
families (chat, views, conversations, users, files) build on it, and `SlackSimulator` serves them.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from bot.simulator.blockkit import InvalidPayload, Json
from bot.simulator.data import (
    ApiError,
    Channel,
    Ephemeral,
    Message,
    OpenView,
    RecordedCall,
    ResponseUrl,
    SimFile,
    SimUser,
    Trigger,
)
from bot.simulator.faults import Fault, RateLimit, RetryWindow
from bot.simulator.scopes import CONVERSATION_SCOPES, METHOD_SCOPES, POST_UNJOINED

_CHANNEL_ID = re.compile(r"^[A-Z][A-Z0-9]+$")  # Slack names are lowercase, ids uppercase


class Workspace:
    """A Slack workspace's state: members, channels and what happened in them."""

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
        scopes: Iterable[str] | None = None,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.team_domain = team_domain
        self.trigger_ttl = trigger_ttl
        self._clock = clock  # message ts follow it; pass a fixed clock for a repeatable demo
        # What trigger_ids and response_urls age by (seconds): Slack takes a trigger_id for 3
        # seconds and a response_url for 30 minutes. A test sets it to its own clock (e.g.
        # `lambda: clock().timestamp()`) to travel past them without sleeping.
        self.interaction_clock: Callable[[], float] = time.monotonic
        # The bot token's granted scopes, sent in each Web API answer's `x-oauth-scopes` header
        # as Slack does; None sends no header. The caller passes them (e.g. its manifest's).
        self.scopes: list[str] | None = None if scopes is None else list(scopes)
        # Benchmarks turn Block Kit validation off: it is Slack's CPU, not the bot's.
        self.validate = True
        self.users: dict[str, SimUser] = {}
        self.missing_channels: set[str] = set()
        # Tokens Slack no longer accepts (revoked, or of an uninstalled app): `invalid_auth`.
        self.refused_tokens: set[str] = set()
        # The channels the bot is not a member of (membership is explicit: posting to a public
        # channel with chat:write.public does not make the bot a member).
        self.not_in_channel: set[str] = set()
        self.faults: list[Fault] = []
        self.answer_delay = 0.0  # seconds between doing a call's work and answering it
        self._rate_limits: dict[str, RateLimit] = {}
        self._channels: dict[str, Channel] = {}
        self._last_ts_us = 0
        self._view_seq = 0
        self._trigger_seq = 0
        self._file_seq = 0
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
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._files: dict[str, SimFile] = {}
        self._upload_urls: dict[str, str] = {}  # token → file id
        for channel in self._channels.values():
            channel.messages.clear()
            channel.replies.clear()

    def reset(self) -> None:
        """Forget messages, calls, ephemerals, views, faults and rate limits; keep users."""
        self._clear_state()
        self.faults.clear()
        self._rate_limits.clear()
        self.missing_channels.clear()
        self.refused_tokens.clear()
        self.not_in_channel.clear()

    @property
    def base_url(self) -> str:
        """Where clients reach the workspace (response and upload URLs start with it)."""
        raise NotImplementedError

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

    def set_status(
        self, user_id: str, text: str = "", emoji: str = "", expiration: int = 0
    ) -> SimUser:
        """Set a member's custom status as they would in Slack (empty: cleared); expiration in
        Unix seconds, 0 for none."""
        user = self.users[user_id]
        user.status_text, user.status_emoji, user.status_expiration = text, emoji, expiration
        return user

    def deactivate_user(self, user_id: str) -> SimUser:
        """Deactivate a member: users.info then shows them with `deleted: true`."""
        user = self.users[user_id]
        user.deleted = True
        return user

    def make_guest(self, user_id: str, single_channel: bool = False) -> SimUser:
        """Make a member a guest: users.info then shows `is_restricted` (and, for a
        single-channel guest, `is_ultra_restricted`)."""
        user = self.users[user_id]
        user.is_restricted = True
        user.is_ultra_restricted = single_channel
        return user

    def add_channel(
        self, channel_id: str, name: str | None = None, *, private: bool = False
    ) -> None:
        """Register a channel so it can be addressed by name ("#sales") and has a name."""
        channel = self._channel(channel_id)
        channel.name = name or channel.name
        channel.is_private = private

    def archive_channel(self, channel_id: str, archived: bool = True) -> None:
        """Archive a channel (or unarchive it) as a member would in Slack: posting and joining
        then answer `is_archived`, editing its messages `is_inactive` (chat.postMessage,
        conversations.join, chat.update in Slack's method reference)."""
        self._channel(channel_id).is_archived = archived

    def is_private(self, channel_id: str) -> bool:
        return self._channel(channel_id).is_private

    def is_archived(self, channel_id: str) -> bool:
        return self._channel(channel_id).is_archived

    def user_names(self) -> dict[str, str]:
        """user id → display name, for `render_blocks_text(users=...)`."""
        return {user.id: user.name for user in self.users.values()}

    def channel_name(self, channel_id: str) -> str:
        return self._channel(channel_id).name

    def dm_channel(self, user_id: str) -> str:
        """The id of the bot's DM channel with a user (what chat.postMessage to a user id uses)."""
        return f"D{user_id[1:]}"

    def post_as_user(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> Message:
        """Put a person's message in a channel (no API call is recorded)."""
        state = self._channel(channel)
        return self._store_message(state, text, [], None, thread_ts, user=user, bot_id=None)

    # -- shared logic ---------------------------------------------------------------------------

    def _next_ts(self) -> str:
        micros = max(int(self._clock() * 1_000_000), self._last_ts_us + 100)
        self._last_ts_us = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _channel(self, channel_id: str) -> Channel:
        state = self._channels.get(channel_id)
        if state is None:
            is_im = channel_id.startswith("D")
            name = channel_id if is_im else channel_id.lower()
            state = Channel(channel_id, name, is_im=is_im)
            self._channels[channel_id] = state
        return state

    def _resolve_channel(
        self,
        raw: Any,
        *,
        posting: bool = False,
        reading: bool = False,
        sharing: bool = False,
        by_id: bool = False,
    ) -> Channel:
        """The conversation `raw` names, as the method using it sees it.

        - `reading` (conversations.history, conversations.replies): a conversation id only (C,
          G, D): a user id is `channel_not_found` ("Conversation ID to fetch history for."),
          and a channel the bot is not in is `not_in_channel` ("Only user tokens can access
          public channels they are not in.", api.slack.com/methods/conversations.history).
        - `posting` (chat.postMessage): a user id posts to the bot's DM with them; a public
          channel the bot is not in takes the post with `chat:write.public`, a private one is
          `not_in_channel` (api.slack.com/methods/chat.postMessage, and the scope's page).
        - `sharing` (files.completeUploadExternal): "User/bot membership is required for the
          specified channel." (`not_in_channel`, api.slack.com/methods/files.completeUploadExternal)
        - `by_id` (and `reading`): the method takes a conversation's id, not its name
          (conversations.info "Conversation ID to learn more about", conversations.join "ID of
          conversation to join", shared/slack/methods/*.json): a name is `channel_not_found`.
          chat.postMessage takes "An encoded ID or channel name".
        """
        if not isinstance(raw, str) or not raw.strip():
            raise ApiError("channel_not_found")
        raw = raw.strip()
        if raw in self.missing_channels:
            raise ApiError("channel_not_found")
        if not _CHANNEL_ID.match(raw):
            if by_id or reading:
                raise ApiError("channel_not_found")
            name = raw.removeprefix("#")
            match = next((c for c in self._channels.values() if c.name == name), None)
            if match is None:
                raise ApiError("channel_not_found")
            raw = match.id
        elif raw[0] in "UW":  # a user id: Slack posts to the bot's DM with that person
            if reading:
                raise ApiError("channel_not_found")
            state = self._channel(self.dm_channel(raw))
            state.im_user = raw
            return state
        if raw in self.missing_channels:
            raise ApiError("channel_not_found")
        state = self._channel(raw)
        if raw in self.not_in_channel and not state.is_im:
            if reading or sharing:
                raise ApiError("not_in_channel")
            if posting and (state.is_private or not self.granted(POST_UNJOINED)):
                raise ApiError("not_in_channel")
        return state

    def granted(self, *scopes: str) -> bool:
        """Whether the bot token holds one of `scopes` (a simulator given no scopes holds all)."""
        return self.scopes is None or any(scope in self.scopes for scope in scopes)

    def require(self, method: str, state: Channel | None = None) -> None:
        """Answer `missing_scope` as Slack does when the token lacks the method's scope (for a
        conversation's method, the scope of its type)."""
        if state is not None and method in CONVERSATION_SCOPES:
            kind = "im" if state.is_im else "private" if state.is_private else "public"
            needed: tuple[str, ...] = (CONVERSATION_SCOPES[method][kind],)
        else:
            needed = METHOD_SCOPES.get(method, ())
        if needed and not self.granted(*needed):
            raise ApiError(
                "missing_scope", needed=",".join(needed), provided=",".join(self.scopes or [])
            )

    def _store_message(
        self,
        state: Channel,
        text: str,
        blocks: list[Json],
        metadata: Json | None,
        thread_ts: str | None,
        *,
        user: str | None = None,
        bot_id: str | None = None,
    ) -> Message:
        if thread_ts:
            # A reply to a message the channel does not hold is accepted: chat.postMessage's
            # reference lists no error for it, and Slack answers ok with a reply that shows
            # nowhere (python-slack-sdk#840). It is kept as a reply to that ts (`thread`).
            parent = state.messages.get(str(thread_ts))
            thread_ts = (parent.thread_ts or parent.ts) if parent else str(thread_ts)
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

    def _find_own_message(self, args: Json, ts_key: str = "ts") -> tuple[Channel, Message]:
        """The message `args` name by its conversation and ts. The conversation is named by its
        id: a user id is `channel_not_found` (chat.update: "For direct messages, ensure that
        this value is a DM ID (starts with `D`) instead of a User ID (starts with either `U` or
        `W`)."; chat.delete and chat.getPermalink take the conversation "containing the
        message" too). Only chat.postMessage turns a user id into their DM."""
        raw = args.get("channel")
        if isinstance(raw, str) and _CHANNEL_ID.match(raw.strip()) and raw.strip()[0] in "UW":
            raise ApiError("channel_not_found")
        state = self._resolve_channel(raw)
        message = state.messages.get(str(args.get(ts_key) or ""))
        if message is None:
            raise ApiError("message_not_found")
        return state, message
