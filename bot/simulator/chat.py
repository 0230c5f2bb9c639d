"""chat.* and reactions.*: posting, editing, deleting messages; ephemerals; response_url posts."""

from __future__ import annotations

import copy
import time
from typing import Any

from bot.simulator.blockkit import (
    MESSAGE_BLOCK_LIMIT,
    InvalidPayload,
    Json,
    validate_blocks,
    with_generated_ids,
)
from bot.simulator.data import (
    ApiError,
    Channel,
    Ephemeral,
    Message,
    MessageVersion,
    ResponseUrl,
    flag,
)
from bot.simulator.inspection import Inspection

# A posted message's text beyond 40,000 characters is cut, and the message posted with a
# warning: "This behavior applies to all methods of posting messages to Slack:
# chat.postMessage, chat.postEphemeral, interactive message and slash command response URLs"
# (https://api.slack.com/changelog/2018-04-truncating-really-long-messages; chat.postMessage's
# reference lists no `msg_too_long`; chat.postEphemeral's does, so it keeps refusing).
MESSAGE_TEXT_LIMIT = 40_000
TRUNCATING = ("chat.postMessage", "response_url")
TRUNCATED: Json = {
    "messages": [
        "[WARN] Your message was truncated but still posted. The `text` field accepts up to "
        "40,000 characters."
    ],
    "warnings": ["message_truncated"],
}
# chat.update, msg_too_long: "The `text` field cannot exceed 4,000 characters."
UPDATE_TEXT_LIMIT = 4_000
# markdown_text: "Limit this field to 12,000 characters." (chat.postMessage, chat.update)
MARKDOWN_TEXT_LIMIT = 12_000
# too_many_attachments: "A maximum of 100 attachments are allowed on a message." (chat.update;
# chat.postMessage and chat.postEphemeral list the error too)
ATTACHMENTS_LIMIT = 100
# A slash command's answer and a response_url post show privately (`ephemeral`, the default)
# or to the channel (`in_channel`): "response_type ... in_channel or ephemeral"
# (docs.slack.dev/interactivity/implementing-slash-commands, "Message response").
RESPONSE_TYPES = ("in_channel", "ephemeral")


def response_type_errors(body: Json) -> list[str]:
    """Slack-style errors for a `response_type` other than in_channel or ephemeral."""
    kind = body.get("response_type")
    if kind is None or kind in RESPONSE_TYPES:
        return []
    return ["must be one of in_channel, ephemeral [json-pointer:/response_type]"]


class ChatMethods(Inspection):
    """The Web API methods that write messages, and what a response_url post does."""

    def _chat_post_message(self, args: Json) -> Json:
        state = self._resolve_channel(args.get("channel"), posting=True)
        if state.is_archived:  # "Channel has been archived."
            raise ApiError("is_archived")
        text, blocks = self._message_content("chat.postMessage", args)
        metadata = _metadata(args.get("metadata"))
        message = self._store_message(
            state, text or "", blocks or [], metadata, args.get("thread_ts"), bot_id=self.bot_id
        )
        answer = {"channel": state.id, "ts": message.ts, "message": self.message_json(message)}
        if len(_text_arg(args) or "") > MESSAGE_TEXT_LIMIT:
            answer["response_metadata"] = copy.deepcopy(TRUNCATED)
        return answer

    def _chat_update(self, args: Json) -> Json:
        state, message = self._find_own_message(args)
        if message.user != self.bot_user_id:
            raise ApiError("cant_update_message")
        if state.is_archived:  # "cannot be edited within a frozen, archived or deleted channel"
            raise ApiError("is_inactive")
        text, blocks = self._message_content("chat.update", args, text_limit=UPDATE_TEXT_LIMIT)
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
            raise ApiError("cant_delete_message")
        self._delete(state, message)
        return {"channel": state.id, "ts": message.ts}

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message as a person would in Slack (its author, or an admin deleting
        anyone's; no API call is recorded): history no longer returns it ("The original message
        will no longer return in history calls.", the message_deleted event's reference), and
        chat.update of its ts answers `message_not_found`."""
        state = self._channel(channel)
        message = state.messages.get(ts)
        if message is None:
            raise ApiError("message_not_found")
        self._delete(state, message)

    def _chat_post_ephemeral(self, args: Json) -> Json:
        state = self._resolve_channel(args.get("channel"), posting=True)
        if state.is_archived:
            raise ApiError("is_archived")
        user = args.get("user")
        if not isinstance(user, str) or not user:
            raise ApiError("user_not_found")
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

    def _reactions_add(self, args: Json) -> Json:
        _, message = self._find_own_message(args, "timestamp")
        users = message.reactions.setdefault(str(args.get("name") or ""), [])
        if self.bot_user_id in users:
            raise ApiError("already_reacted")
        users.append(self.bot_user_id)
        return {}

    def _reactions_remove(self, args: Json) -> Json:
        _, message = self._find_own_message(args, "timestamp")
        name = str(args.get("name") or "")
        users = message.reactions.get(name, [])
        if self.bot_user_id not in users:
            raise ApiError("no_reaction")
        users.remove(self.bot_user_id)
        if not users:
            del message.reactions[name]
        return {}

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
            raise ApiError("invalid_blocks", errors=errors)
        return with_generated_ids(blocks)

    def _message_content(
        self, method: str, args: Json, *, text_limit: int = MESSAGE_TEXT_LIMIT
    ) -> tuple[str | None, list[Json] | None]:
        """A message's text and checked blocks. `markdown_text` stands for the text, alone:
        "should not be used in conjunction with `blocks` or `text`" (`markdown_text_conflict`)."""
        markdown = args.get("markdown_text")
        if markdown is not None and method != "response_url":
            if args.get("text") is not None or args.get("blocks") is not None:
                raise ApiError("markdown_text_conflict")
            if len(str(markdown)) > MARKDOWN_TEXT_LIMIT:
                raise ApiError("msg_too_long")
            args = {**args, "text": markdown}
        text = _text_arg(args)
        blocks = self._checked_blocks(method, args)
        attachments = args.get("attachments")
        if isinstance(attachments, list) and len(attachments) > ATTACHMENTS_LIMIT:
            raise ApiError("too_many_attachments")
        if not text and not blocks and not args.get("attachments"):
            raise ApiError("no_text")
        if text is not None and len(text) > text_limit:
            if method not in TRUNCATING:
                raise ApiError("msg_too_long")
            text = text[:text_limit]
        return text, blocks

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
            message.metadata = metadata or None
        message.edited_count += 1
        message.edited_ts = self._next_ts()
        message.updated_at = time.monotonic()

    def show_command_answer(self, channel: str, user: str, body: Json) -> Ephemeral | None:
        """A slash command's immediate answer (`body`, the bot's HTTP or Socket Mode answer),
        shown to `user` privately, as an ephemeral message, unless `in_channel` (see
        RESPONSE_TYPES): an interaction on it is one on an ephemeral message, and its
        response_url replaces or deletes it. None when there is nothing to show (an empty
        ack; an `in_channel` answer, which the simulator does not post)."""
        if body.get("response_type") == "in_channel":
            return None
        text, blocks = body.get("text"), body.get("blocks")
        if not text and not blocks:
            return None
        ephemeral = Ephemeral(
            channel,
            user,
            str(text or ""),
            with_generated_ids(blocks) if isinstance(blocks, list) else [],
            time.monotonic(),
            self._next_ts(),
            source="command",
        )
        self._ephemerals.append(ephemeral)
        return ephemeral

    def _pressed_ephemeral(self, hook: ResponseUrl) -> Ephemeral | None:
        """The ephemeral message a response_url's interaction was on, if still shown."""
        for note in self._ephemerals:
            if (note.channel, note.user, note.ts) == (hook.channel, hook.user, hook.message_ts):
                return note
        return None

    def _respond(self, hook: ResponseUrl, body: Json) -> None:
        """Apply a response_url post: replace/delete the source message (a channel message, or
        the ephemeral message pressed on), or add a new one. A response_url "can also be used
        to update the original interactive message, regardless of whether it was an ephemeral
        message or not" (https://api.slack.com/messaging/modifying), the one way to change an
        ephemeral message: "Ephemeral messages can't be updated in this way" (chat.update)."""
        state = self._channel(hook.channel)
        pressed = self._pressed_ephemeral(hook) if hook.ephemeral else None
        source = None
        if hook.message_ts and not hook.ephemeral:
            source = state.messages.get(hook.message_ts)
        if flag(body.get("delete_original")):
            if pressed is not None:
                self._ephemerals.remove(pressed)
                return
            if source is None:
                raise ApiError("message_not_found")
            self._delete(state, source)
            return
        refused = response_type_errors(body)
        if refused:
            self.invalid_payloads.append(
                InvalidPayload("response_url", copy.deepcopy(body), refused)
            )
            raise ApiError("invalid_payload")
        text, blocks = self._message_content("response_url", body)
        if flag(body.get("replace_original")) and pressed is not None:
            pressed.text, pressed.blocks = text or "", blocks or []  # a whole message
            pressed.replaced += 1
            return
        if flag(body.get("replace_original")) and source is not None:
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

    def _delete(self, state: Channel, message: Message) -> None:
        state.messages.pop(message.ts, None)
        if message.thread_ts:
            siblings = state.replies.get(message.thread_ts, [])
            state.replies[message.thread_ts] = [m for m in siblings if m.ts != message.ts]
        self.deleted.append(message)


def _metadata(value: Any) -> Json | None:
    """A message's metadata as given; None: keep what it has; {}: remove it (chat.update's
    documented way to drop a message's metadata). Else a "JSON object with event_type and
    event_payload fields" (chat.postMessage's and chat.update's `metadata`, both required),
    or `invalid_metadata_format`."""
    if value is None:
        return None
    if value == {}:
        return {}
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("event_type"), str)
        or not isinstance(value.get("event_payload"), dict)
    ):
        raise ApiError("invalid_metadata_format")
    return {"event_type": value["event_type"], "event_payload": value["event_payload"]}


def _text_arg(args: Json) -> str | None:
    text = args.get("text")
    return None if text is None else str(text)
