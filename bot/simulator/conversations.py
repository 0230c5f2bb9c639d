"""conversations.*: channel info, joining, opening a DM, history and threads."""

from __future__ import annotations

import base64
import re
from typing import Any

from bot.simulator.blockkit import Json
from bot.simulator.data import ApiError, Channel, Message, flag, int_arg, ts_key
from bot.simulator.inspection import Inspection

_TS = re.compile(r"^\d+(\.\d+)?$")  # a message ts or a Unix time: "1767225600.000100"


class ConversationsMethods(Inspection):
    """The Web API methods that read channels and their messages."""

    def _channel_json(self, state: Channel) -> Json:
        out: Json = {
            "id": state.id,
            "name": state.name,
            "is_channel": not state.is_im and not state.is_private,
            "is_group": False,
            "is_im": state.is_im,
            "is_private": state.is_private or state.is_im,
            "is_archived": state.is_archived,
            "is_member": state.id not in self.not_in_channel,
            "context_team_id": self.team_id,
        }
        if state.im_user:
            out["user"] = state.im_user
        return out

    def _conversations_info(self, args: Json) -> Json:
        state = self._resolve_channel(args.get("channel"), by_id=True)
        self.require("conversations.info", state)
        return {"channel": self._channel_json(state)}

    def _conversations_join(self, args: Json) -> Json:
        state = self._resolve_channel(args.get("channel"), by_id=True)
        # A bot joins public channels only (`channels:join`); a DM or a private channel is
        # another type (api.slack.com/methods/conversations.join: "This type of conversation
        # cannot be used with this method.")
        if state.is_im or state.is_private:
            raise ApiError("method_not_supported_for_channel_type")
        if state.is_archived:  # "Channel has been archived."
            raise ApiError("is_archived")
        self.not_in_channel.discard(state.id)
        return {"channel": self._channel_json(state)}

    def _conversations_open(self, args: Json) -> Json:
        """A DM with one member (conversations.open: `users_list_not_supplied` "Missing `users`
        in request", `user_not_found` "Value(s) passed for `users` was invalid.",
        `user_disabled` "A specified `user` has been disabled."). Group DMs are not simulated."""
        if not args.get("users"):
            if not args.get("channel"):
                raise ApiError("users_list_not_supplied")
            resumed = self._resolve_channel(args.get("channel"))  # "Resume a conversation"
            if not resumed.is_im:
                raise ApiError("method_not_supported_for_channel_type")
            return {"channel": {"id": resumed.id}}
        users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
        if len(users) != 1:
            raise ApiError(
                "not_enough_users" if not users else "method_not_supported_for_channel_type"
            )
        member = self.users.get(users[0])
        if member is None:
            raise ApiError("user_not_found")
        if member.deleted:
            raise ApiError("user_disabled")
        state = self._resolve_channel(users[0])
        return {"channel": {"id": state.id}}

    def _conversations_history(self, args: Json) -> Json:
        """The channel's parent messages, newest first: thread replies are listed by
        conversations.replies, not here (api.slack.com/methods/conversations.history)."""
        state = self._resolve_channel(args.get("channel"), reading=True)
        self.require("conversations.history", state)
        oldest, latest = _ts_arg(args.get("oldest"), "oldest"), args.get("latest")
        latest_key = _ts_arg(latest, "latest") if latest else None
        inclusive = flag(args.get("inclusive"))

        def in_range(m: Message) -> bool:
            key = ts_key(m.ts)
            above = key >= oldest if inclusive else key > oldest
            below = latest_key is None or (key <= latest_key if inclusive else key < latest_key)
            return above and below

        newest_first = [m for m in reversed(self.messages(state.id)) if in_range(m)]
        return self._page(newest_first, args)

    def _conversations_replies(self, args: Json) -> Json:
        state = self._resolve_channel(args.get("channel"), reading=True)
        self.require("conversations.replies", state)
        message = state.messages.get(str(args.get("ts") or ""))
        if message is None:
            raise ApiError("thread_not_found")
        parent = state.messages.get(message.thread_ts or "", message)
        return self._page([parent, *state.replies.get(parent.ts, [])], args)

    def _page(self, messages: list[Message], args: Json) -> Json:
        limit = min(max(int_arg(args.get("limit"), 100), 1), 999)
        offset = _decode_cursor(args.get("cursor"))
        page = messages[offset : offset + limit]
        has_more = len(messages) > offset + limit
        include_metadata = flag(args.get("include_all_metadata"))
        return {
            "messages": [self.message_json(m, include_metadata=include_metadata) for m in page],
            "has_more": has_more,
            "response_metadata": {
                "next_cursor": _encode_cursor(offset + limit) if has_more else ""
            },
        }


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: Any) -> int:
    """The offset a cursor of `_encode_cursor` carries; any other is `invalid_cursor` ("Value
    passed for `cursor` was not valid or is no longer valid.")."""
    if not cursor:
        return 0
    try:
        text = base64.b64decode(str(cursor), validate=True).decode()
        if text.startswith("offset:") and text[7:].isdigit():
            return int(text[7:])
    except ValueError:
        pass
    raise ApiError("invalid_cursor")


def _ts_arg(value: Any, name: str) -> int:
    """A history bound (`oldest`, `latest`): a Unix time stamp, else `invalid_ts_oldest` /
    `invalid_ts_latest`."""
    if not value:
        return 0
    if not _TS.match(str(value)):
        raise ApiError(f"invalid_ts_{name}")
    return ts_key(value)
