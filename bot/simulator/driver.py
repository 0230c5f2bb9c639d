"""Sends Slack-signed requests to the bot, shaped like Slack's own payloads."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.simulator.blockkit import InvalidPayload, buttons_in, validate_blocks
from bot.simulator.chat import response_type_errors
from bot.simulator.data import Ephemeral, Message, OpenView
from bot.simulator.server import SlackSimulator
from bot.simulator.socket_mode import RETRY_REASON

Json = dict[str, Any]
InputValue = str | list[str] | int | None

# Elements whose value Slack reports in view.state, and the key it uses for it.
_STATE_KEYS = {
    "plain_text_input": "value",
    "email_text_input": "value",
    "url_text_input": "value",
    "number_input": "value",
    "static_select": "selected_option",
    "external_select": "selected_option",
    "radio_buttons": "selected_option",
    "multi_static_select": "selected_options",
    "multi_external_select": "selected_options",
    "checkboxes": "selected_options",
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
}
_LIST_KEYS = {"selected_options", "selected_users", "selected_conversations", "selected_channels"}
# Where an untouched element's initial value lives; Slack submits it as the value.
_INITIAL_KEYS = {
    "value": "initial_value",
    "selected_option": "initial_option",
    "selected_options": "initial_options",
    "selected_user": "initial_user",
    "selected_users": "initial_users",
    "selected_conversation": "initial_conversation",
    "selected_conversations": "initial_conversations",
    "selected_channel": "initial_channel",
    "selected_channels": "initial_channels",
    "selected_date": "initial_date",
    "selected_time": "initial_time",
    "selected_date_time": "initial_date_time",
}


@dataclass
class DriverResponse:
    """The bot's HTTP answer to one simulated Slack request."""

    status: int
    body: str
    json: Any | None
    headers: dict[str, str]
    elapsed: float


class SlackDriver:
    """Plays Slack's side of the Events/Interactivity HTTP contract against the bot.

    Every method signs its request with the signing secret like Slack does; `timestamp`,
    `bad_signature` and `retry_num` let tests send stale, forged or retried requests.
    `SocketModeDriver` sends the same payloads over Socket Mode instead.
    """

    mode = "http"

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        simulator: SlackSimulator,
        team_id: str = "T0SIM",
        api_app_id: str = "A0HANDOFF",
        *,
        verification_token: str = "verification-token",
        timeout: float = 30.0,
    ) -> None:
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.sim = simulator
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.verification_token = verification_token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.last_body: str | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> SlackDriver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- slash commands -------------------------------------------------------------------------

    async def command(
        self,
        user_id: str,
        command: str,
        text: str = "",
        channel_id: str = "C0SIM",
        *,
        timestamp: int | None = None,
        bad_signature: bool = False,
        retry_num: int | None = None,
    ) -> DriverResponse:
        """Run a slash command, e.g. `command("U1", "/lead", "ada@example.com")`.

        `text` is what the person typed, with any of Slack's own sequences they produced (a
        mention `<@U1|sam>`, or an email `<mailto:…|…>` when the command escapes); it is sent
        as Slack sends it, the `&`, `<` and `>` they typed escaped (`slack_escaped`)."""
        form = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.sim.team_domain,
            "channel_id": channel_id,
            "channel_name": self._channel_name(channel_id),
            "user_id": user_id,
            "user_name": self._user_name(user_id),
            "command": command,
            "text": slack_escaped(text),
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self.sim.new_response_url(channel_id, user_id),
            "trigger_id": self.sim.issue_trigger(user_id),
        }
        answer = await self._deliver("slash_commands", form, timestamp, bad_signature, retry_num)
        if self._check_answer(command, answer) and answer.status == 200:
            self.sim.show_command_answer(channel_id, user_id, dict(answer.json or {}))
        return answer

    def _check_answer(self, command: str, answer: DriverResponse) -> bool:
        """A slash command's immediate answer is a message Slack shows (privately, unless
        `in_channel`): its blocks are checked as any message's, and refused ones recorded,
        as for a Web API call ("Responding to slash commands": the same message payload).
        Whether Slack would show it (an answer with a message, none refused)."""
        body = answer.json if isinstance(answer.json, dict) else {}
        blocks = body.get("blocks")
        if not body:
            return False
        if not self.sim.validate:
            return True
        errors = response_type_errors(body)
        if errors:
            refused = InvalidPayload(f"{command} answer", copy.deepcopy(body), errors)
            self.sim.invalid_payloads.append(refused)
            return False
        if blocks is None:
            return True
        errors = validate_blocks(blocks)
        if errors:
            refused = InvalidPayload(f"{command} answer", copy.deepcopy(blocks), errors)
            self.sim.invalid_payloads.append(refused)
            return False
        return True

    # -- buttons --------------------------------------------------------------------------------

    async def press(
        self,
        user_id: str,
        label: str,
        *,
        channel: str,
        message_ts: str | None = None,
        value: str | None = None,
        override_value: str | None = None,
        timestamp: int | None = None,
        bad_signature: bool = False,
        retry_num: int | None = None,
        seen: Message | None = None,
    ) -> DriverResponse:
        """Press the button labelled `label` on a message in `channel`.

        Without `message_ts`, the newest message (thread replies included) with such a button
        is used; `value` narrows the choice to a button with that value. `override_value`
        sends a different value than the button holds (a forged payload). `seen`: the message
        as the user's Slack still shows it (a copy from before an edit it has not shown yet),
        so a control the message no longer has can be pressed (a stale one).
        """
        message, block_id, button = self._find_message_button(
            channel, label, message_ts, value, seen
        )
        action = _button_action(block_id, button, override_value)
        payload = self._message_action(user_id, channel, message, action, {})
        return await self._send_payload(payload, timestamp, bad_signature, retry_num)

    async def press_ephemeral(
        self,
        user_id: str,
        label: str,
        *,
        channel: str,
        value: str | None = None,
        forged_by: str | None = None,
    ) -> DriverResponse:
        """Press the button labelled `label` on the newest ephemeral message `user_id` sees in
        `channel`, a slash command's answer included (Slack sends no `message` for those: only
        the container, `is_ephemeral`, and a response_url that replaces or deletes it).
        `forged_by` sends the press as another user (who could not have seen it)."""
        for note in reversed(self.sim.ephemerals(user=user_id, channel=channel, commands=True)):
            for block_id, button in buttons_in(note.blocks):
                if _label(button) == label and (value is None or button.get("value") == value):
                    action = _button_action(block_id, button, None)
                    actor = forged_by or user_id
                    payload = self._ephemeral_action(user_id, actor, channel, note, action, {})
                    return await self._send_payload(payload, None, False, None)
        raise LookupError(f"no ephemeral message with a {label!r} button for {user_id}")

    async def choose(
        self,
        user_id: str,
        option: str,
        *,
        channel: str,
        action_id: str | None = None,
        message_ts: str | None = None,
        override_value: str | None = None,
        seen: Message | None = None,
    ) -> DriverResponse:
        """Pick `option` (its label or value; in a user picker, a user id) in a select menu on a
        message in `channel`.

        Without `message_ts`, the newest message (thread replies included) with a menu (with
        `action_id`, if given) is used. `override_value` sends a value the menu does not offer.
        `seen`: the message as the user's Slack still shows it (see `press`).
        """
        message, block_id, menu = self._find_message_menu(channel, action_id, message_ts, seen)
        kind = str(menu["type"])
        key = _STATE_KEYS[kind]
        chosen: Any
        if key == "selected_user":  # a user picker: `option` is the person picked (a user id)
            chosen = override_value if override_value is not None else option
        else:
            chosen = _option(menu, option)
            if override_value is not None:
                chosen = {**chosen, "value": override_value}
        action: Json = {
            "type": kind,
            "action_id": menu.get("action_id"),
            "block_id": block_id,
            key: chosen,
            "action_ts": f"{time.time():.6f}",
        }
        if menu.get("placeholder"):
            action["placeholder"] = menu["placeholder"]
        state = {block_id: {str(menu.get("action_id")): {"type": kind, key: chosen}}}
        payload = self._message_action(user_id, channel, message, action, state)
        return await self._send_payload(payload, None, False, None)

    async def choose_in_card(
        self, user_id: str, option: str, *, channel: str, action_id: str | None = None
    ) -> DriverResponse:
        """Pick `option` (its label or value) in the first select menu (with `action_id`, if
        given) of the newest ephemeral message `user_id` sees in `channel` with one (a slash
        command's answer, the `/lead` card): Slack sends no `message` for those, only the
        container, `is_ephemeral`, and a response_url that replaces or deletes it."""
        note, block_id, menu = self._find_ephemeral_menu(user_id, channel, action_id)
        if note is None:
            raise LookupError(f"no ephemeral message with a select menu for {user_id} in {channel}")
        chosen = _option(menu, option)
        kind = str(menu["type"])
        action: Json = {
            "type": kind,
            "action_id": menu.get("action_id"),
            "block_id": block_id,
            "selected_option": chosen,
            "action_ts": f"{time.time():.6f}",
        }
        state = {block_id: {str(menu.get("action_id")): {"type": kind, "selected_option": chosen}}}
        payload = self._ephemeral_action(user_id, user_id, channel, note, action, state)
        return await self._send_payload(payload, None, False, None)

    def _find_ephemeral_menu(
        self, user_id: str, channel: str, action_id: str | None
    ) -> tuple[Ephemeral | None, str, Json]:
        """The newest ephemeral `user_id` sees in `channel` with a single-choice select menu
        (with `action_id`, if given): the message, the menu's block id and the menu."""
        for note in reversed(self.sim.ephemerals(user=user_id, channel=channel, commands=True)):
            for _, block_id, menu in _stateful_elements(note.blocks):
                if _STATE_KEYS[menu["type"]] != "selected_option":
                    continue
                if action_id is None or menu.get("action_id") == action_id:
                    return note, block_id, menu
        return None, "", {}

    def _ephemeral_action(
        self, user_id: str, actor: str, channel: str, note: Ephemeral, action: Json, state: Json
    ) -> Json:
        """The block_actions payload of `action` taken by `actor` on the ephemeral `note`
        `user_id` sees: no `message`, only the container with `is_ephemeral`, and a
        response_url that replaces or deletes that ephemeral."""
        return {
            "type": "block_actions",
            "user": self._user(actor),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": {
                "type": "message",
                "message_ts": note.ts,
                "channel_id": channel,
                "is_ephemeral": True,
            },
            "trigger_id": self.sim.issue_trigger(user_id),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self._channel_name(channel)},
            "state": {"values": state},
            "response_url": self.sim.new_response_url(channel, actor, note.ts, ephemeral=True),
            "actions": [action],
        }

    def _message_action(
        self, user_id: str, channel: str, message: Message, action: Json, state: Json
    ) -> Json:
        """The block_actions payload of `action` taken on `message` by `user_id`."""
        container: Json = {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel,
            "is_ephemeral": False,
        }
        if message.thread_ts:
            container["thread_ts"] = message.thread_ts
        return {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": self.sim.issue_trigger(user_id),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self._channel_name(channel)},
            "message": self.sim.message_json(message),
            "state": {"values": state},
            "response_url": self.sim.new_response_url(channel, user_id, message.ts),
            "actions": [action],
        }

    async def press_in_view(
        self,
        user_id: str,
        label: str,
        view_id: str | None = None,
        *,
        value: str | None = None,
        timestamp: int | None = None,
        bad_signature: bool = False,
        retry_num: int | None = None,
    ) -> DriverResponse:
        """Press a button in a modal (default: the user's top open modal) or their App Home."""
        view = self._target_view(user_id, view_id, include_home=True)
        block_id, button = _find_button(view.blocks, label, value, where=f"view {view.id}")
        payload: Json = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": {"type": "view", "view_id": view.id},
            "trigger_id": self.sim.issue_trigger(user_id),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "view": {**view.view, "state": {"values": _view_state(view.blocks, {})}},
            "actions": [_button_action(block_id, button, None)],
        }
        return await self._send_payload(payload, timestamp, bad_signature, retry_num)

    # -- modals ---------------------------------------------------------------------------------

    async def submit_view(
        self,
        user_id: str,
        values: dict[str, InputValue],
        *,
        view_id: str | None = None,
        allow_empty_required: bool = False,
        timestamp: int | None = None,
        bad_signature: bool = False,
        retry_num: int | None = None,
        by_hand: bool = False,
    ) -> DriverResponse:
        """Submit a modal with `values` keyed by input block_id or action_id.

        Selects take the option's text or value. Inputs left out submit their initial value or
        nothing, as Slack does; a required one left empty, or a text input over its
        `max_length`, raises ValueError, since Slack's client would not send the submission
        (unless `allow_empty_required`, or `by_hand`: a request made without Slack's client,
        signed all the same). After the bot answers, the simulator applies its response_action
        (errors keep the modal open).
        """
        view = self._target_view(user_id, view_id, include_home=False)
        state = _view_state(view.blocks, values)
        if not allow_empty_required and not by_hand:
            _check_required(view.blocks, state)
        if not by_hand:
            _check_lengths(view.blocks, state)
        payload: Json = {
            "type": "view_submission",
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": self.sim.issue_trigger(user_id),
            "view": {**view.view, "state": {"values": state}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        response = await self._send_payload(payload, timestamp, bad_signature, retry_num)
        if response.status == 200:
            answer = response.json if isinstance(response.json, dict) else None
            self.sim.apply_view_response(view.id, answer)
        return response

    async def close_view(self, user_id: str, view_id: str | None = None) -> DriverResponse | None:
        """Close a modal; sends `view_closed` only if the view asked for notify_on_close."""
        view = self._target_view(user_id, view_id, include_home=False)
        view.closed = True
        if not view.view.get("notify_on_close"):
            return None
        payload: Json = {
            "type": "view_closed",
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "view": view.view,
            "is_cleared": False,
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return await self._send_payload(payload, None, False, None)

    # -- events ---------------------------------------------------------------------------------

    async def event(
        self,
        event: Json,
        *,
        event_id: str | None = None,
        timestamp: int | None = None,
        bad_signature: bool = False,
        retry_num: int | None = None,
    ) -> DriverResponse:
        """Deliver an Events API `event_callback` wrapping `event`."""
        now = time.time()
        body: Json = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": {"event_ts": f"{now:.6f}", **event},
            "type": "event_callback",
            "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.sim.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_hex(8)}",
        }
        return await self._deliver("events_api", body, timestamp, bad_signature, retry_num)

    async def app_home_opened(self, user_id: str) -> DriverResponse:
        event: Json = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": self.sim.dm_channel(user_id),
            "tab": "home",
        }
        home = self.sim.home(user_id)
        if home is not None:
            event["view"] = home
        return await self.event(event)

    async def user_change(self, user_id: str) -> DriverResponse:
        """A member's data changed (deactivated, made a guest, renamed): `user_change` carries
        the member as users.info shows them, with `cache_ts`, as Slack's example payload does
        (https://docs.slack.dev/reference/events/user_change/)."""
        user = self.sim.users[user_id].to_api(self.team_id)
        return await self.event({"type": "user_change", "user": user, "cache_ts": int(time.time())})

    async def unarchive(self, user_id: str, channel: str) -> DriverResponse:
        """A member unarchives a channel: it takes messages again, and Slack sends
        `channel_unarchive` {channel, user} for a public channel
        (https://docs.slack.dev/reference/events/channel_unarchive), `group_unarchive`
        {channel} for a private one (https://docs.slack.dev/reference/events/group_unarchive)."""
        self.sim.archive_channel(channel, archived=False)
        if self.sim.is_private(channel):
            return await self.event({"type": "group_unarchive", "channel": channel})
        return await self.event({"type": "channel_unarchive", "channel": channel, "user": user_id})

    async def invite(
        self, inviter: str, channel: str, user_id: str | None = None
    ) -> DriverResponse | None:
        """A member invites someone (the app, by default: `/invite @Handoff`) to a channel: the
        app is then a member (it posts, reads and shares files there), and Slack sends
        `member_joined_channel` {user, channel, channel_type, team, inviter}, to a bot also for
        its own join (https://docs.slack.dev/reference/events/member_joined_channel;
        `channel_type` "C" for a public channel, "G" for a private one). As Slack: the event
        "requires membership in the conversation" (someone else joining one the app is not in
        sends none: None) and the channel type's scope (`channels:read` public, `groups:read`
        private: None without it); an archived channel (`is_archived`), a deleted one
        (`channel_not_found`) or the app invited where it is already (`already_in_channel`)
        is refused (conversations.invite): ValueError."""
        user = user_id or self.sim.bot_user_id
        if channel in self.sim.missing_channels:
            raise ValueError("Slack would not invite: channel_not_found")
        if self.sim.is_archived(channel):
            raise ValueError("Slack would not invite: is_archived")
        member = channel not in self.sim.not_in_channel
        if user == self.sim.bot_user_id:
            if member:
                raise ValueError("Slack would not invite: already_in_channel")
            self.sim.not_in_channel.discard(channel)
        elif not member:
            return None
        private = self.sim.is_private(channel)
        if not self.sim.granted("groups:read" if private else "channels:read"):
            return None
        return await self.event(
            {
                "type": "member_joined_channel",
                "user": user,
                "channel": channel,
                "channel_type": "G" if private else "C",
                "team": self.team_id,
                "inviter": inviter,
            }
        )

    async def message(
        self, user_id: str, channel: str, text: str, *, thread_ts: str | None = None
    ) -> DriverResponse:
        """A person posts in a channel: stored in the simulator, then sent as a message event."""
        posted = self.sim.post_as_user(channel, user_id, text, thread_ts=thread_ts)
        event: Json = {
            "type": "message",
            "user": user_id,
            "text": text,
            "ts": posted.ts,
            "channel": channel,
            "channel_type": "im" if channel.startswith("D") else "channel",
            "team": self.team_id,
        }
        if posted.thread_ts:
            event["thread_ts"] = posted.thread_ts
        return await self.event(event)

    # -- transport ------------------------------------------------------------------------------

    async def send(
        self,
        body: str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
        bad_signature: bool = False,
        retry_num: int | None = None,
    ) -> DriverResponse:
        """POST a raw body to the bot with Slack's signature headers (`resend` replays it)."""
        self.last_body = body
        ts = int(time.time()) if timestamp is None else int(timestamp)
        secret = self.signing_secret + ("-forged" if bad_signature else "")
        digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": f"v0={digest.hexdigest()}",
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        started = time.perf_counter()
        async with self._session.post(self.bot_url, data=body.encode(), headers=headers) as resp:
            text = await resp.text()
            elapsed = time.perf_counter() - started
            try:
                parsed = json.loads(text) if text else None
            except json.JSONDecodeError:
                parsed = None
            return DriverResponse(resp.status, text, parsed, dict(resp.headers), elapsed)

    async def resend(self, retry_num: int = 1) -> DriverResponse:
        """Send the last request again, as Slack retries one it thinks went unanswered."""
        if self.last_body is None:
            raise LookupError("nothing was sent yet")
        return await self.send(self.last_body, retry_num=retry_num)

    async def _send_payload(
        self, payload: Json, timestamp: int | None, bad_signature: bool, retry_num: int | None
    ) -> DriverResponse:
        return await self._deliver("interactive", payload, timestamp, bad_signature, retry_num)

    async def _deliver(
        self,
        kind: str,
        payload: Json,
        timestamp: int | None,
        bad_signature: bool,
        retry_num: int | None,
    ) -> DriverResponse:
        """Send one request of `kind` (Socket Mode's names: `slash_commands`, `interactive`,
        `events_api`) as Slack's HTTP body: a form, a form with a `payload`, or JSON."""
        if kind == "events_api":
            body, content_type = json.dumps(payload), "application/json"
        else:
            form = payload if kind == "slash_commands" else {"payload": json.dumps(payload)}
            body, content_type = urlencode(form), "application/x-www-form-urlencoded"
        return await self.send(
            body,
            content_type=content_type,
            timestamp=timestamp,
            bad_signature=bad_signature,
            retry_num=retry_num,
        )

    # -- lookups --------------------------------------------------------------------------------

    def _user_name(self, user_id: str) -> str:
        user = self.sim.users.get(user_id)
        return user.name if user else user_id.lower()

    def _channel_name(self, channel_id: str) -> str:
        return "directmessage" if channel_id.startswith("D") else self.sim.channel_name(channel_id)

    def _user(self, user_id: str) -> Json:
        name = self._user_name(user_id)
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _team(self) -> Json:
        return {"id": self.team_id, "domain": self.sim.team_domain}

    def _find_message_button(
        self,
        channel: str,
        label: str,
        message_ts: str | None,
        value: str | None,
        seen: Message | None = None,
    ) -> tuple[Message, str | None, Json]:
        if seen is not None:
            candidates = [seen]
        elif message_ts is not None:
            message = self.sim.message(channel, message_ts)
            if message is None:
                raise LookupError(f"no message {message_ts} in {channel}")
            candidates = [message]
        else:
            candidates = list(reversed(self.sim.all_messages(channel)))
        labels: list[str] = []
        for message in candidates:
            for block_id, button in message.buttons():
                text = _label(button)
                labels.append(text)
                if text == label and (value is None or button.get("value") == value):
                    return message, block_id, button
        where = f"message {message_ts}" if message_ts else f"channel {channel}"
        raise LookupError(f"no button {label!r} in {where}; buttons there: {sorted(set(labels))}")

    def _find_message_menu(
        self,
        channel: str,
        action_id: str | None,
        message_ts: str | None,
        seen: Message | None = None,
    ) -> tuple[Message, str, Json]:
        if seen is not None:
            candidates = [seen]
        elif message_ts is not None:
            message = self.sim.message(channel, message_ts)
            if message is None:
                raise LookupError(f"no message {message_ts} in {channel}")
            candidates = [message]
        else:
            candidates = list(reversed(self.sim.all_messages(channel)))
        for message in candidates:
            for _, block_id, element in _stateful_elements(message.blocks):
                is_menu = _STATE_KEYS[element["type"]] in ("selected_option", "selected_user")
                if is_menu and action_id in (None, element.get("action_id")):
                    return message, block_id, element
        where = f"message {message_ts}" if message_ts else f"channel {channel}"
        named = f" {action_id!r}" if action_id else ""
        raise LookupError(f"no select menu{named} in {where}")

    def _target_view(self, user_id: str, view_id: str | None, *, include_home: bool) -> OpenView:
        if view_id is not None:
            view = self.sim.view(view_id)
            if view is None:
                raise LookupError(f"no view {view_id}")
            return view
        view = self.sim.latest_view(user_id)
        if view is None and include_home:
            home = self.sim.home(user_id)
            view = self.sim.view(str(home["id"])) if home else None
        if view is None:
            raise LookupError(f"{user_id} has no open view")
        return view


class SocketModeDriver(SlackDriver):
    """Plays Slack's side of Socket Mode: the same payloads as `SlackDriver`, sent as envelopes
    over the simulator's WebSocket to the connected app; the acknowledgement's payload is the
    answer (status 200), and no acknowledgement within `ack_timeout` (default: `timeout`) is
    a 504: Slack would retry an event, or show the person an error."""

    mode = "socket"

    def __init__(
        self,
        simulator: SlackSimulator,
        team_id: str = "T0SIM",
        api_app_id: str = "A0HANDOFF",
        *,
        verification_token: str = "verification-token",
        timeout: float = 30.0,
    ) -> None:
        super().__init__(
            "",
            "",
            simulator,
            team_id,
            api_app_id,
            verification_token=verification_token,
            timeout=timeout,
        )
        self._last: tuple[str, Json] | None = None
        self.ack_timeout = timeout

    async def _deliver(
        self,
        kind: str,
        payload: Json,
        timestamp: int | None,
        bad_signature: bool,
        retry_num: int | None,
    ) -> DriverResponse:
        if timestamp is not None or bad_signature:
            raise ValueError("Socket Mode envelopes carry no signature or timestamp")
        self._last = (kind, payload)
        return await self._envelope(kind, payload, retry_num or 0)

    async def _envelope(self, kind: str, payload: Json, retry_attempt: int) -> DriverResponse:
        started = time.perf_counter()
        envelope = await self.sim.socket_mode.send(
            kind,
            payload,
            retry_attempt=retry_attempt,
            retry_reason=RETRY_REASON if retry_attempt else "",
            timeout=self.ack_timeout,
        )
        elapsed = time.perf_counter() - started
        if not envelope.acknowledged:
            return DriverResponse(504, "", None, {}, elapsed)
        answer = envelope.response
        return DriverResponse(200, json.dumps(answer) if answer else "", answer, {}, elapsed)

    async def send(self, body: str, **options: Any) -> DriverResponse:
        raise NotImplementedError("Socket Mode sends envelopes, not HTTP bodies")

    async def resend(self, retry_num: int = 1) -> DriverResponse:
        """Send the last envelope again with `retry_attempt`, as Slack retries an event (an
        event only: Slack sends no command or interactive payload again)."""
        if self._last is None:
            raise LookupError("nothing was sent yet")
        return await self._envelope(*self._last, retry_num)


# Slack's own sequences in a message or command text: <@U…>, <#C…|name>, <!here>, links.
_SLACK_SEQUENCE = re.compile(r"(<(?:[@#!]|mailto:|https?://)[^<>\s][^<>]*>)")


def slack_escaped(typed: str) -> str:
    """Text as Slack sends it: "&" as &amp;, "<" as &lt;, ">" as &gt; (Slack escapes these
    three in every text it sends, slash command text included:
    https://api.slack.com/docs/formatting, "URLs and Escaping"), its own sequences kept."""
    parts = _SLACK_SEQUENCE.split(typed)  # text, sequence, text, …, text
    return "".join(
        part if i % 2 else part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        for i, part in enumerate(parts)
    )


def _label(element: Json) -> str:
    text = element.get("text")
    return str(text.get("text", "")) if isinstance(text, dict) else str(text or "")


def _find_button(
    blocks: list[Json], label: str, value: str | None, *, where: str
) -> tuple[str | None, Json]:
    labels = []
    for block_id, button in buttons_in(blocks):
        labels.append(_label(button))
        if _label(button) == label and (value is None or button.get("value") == value):
            return block_id, button
    raise LookupError(f"no button {label!r} in {where}; buttons there: {sorted(set(labels))}")


def _button_action(block_id: str | None, button: Json, override_value: str | None) -> Json:
    action: Json = {
        "action_id": button.get("action_id"),
        "block_id": block_id,
        "text": {"type": "plain_text", "text": _label(button), "emoji": True},
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    value = override_value if override_value is not None else button.get("value")
    if value is not None:
        action["value"] = value
    if button.get("style"):
        action["style"] = button["style"]
    return action


def _stateful_elements(blocks: list[Json]) -> list[tuple[Json, str, Json]]:
    """(block, block_id, element) for every element whose value Slack reports in state."""
    found: list[tuple[Json, str, Json]] = []
    for block in blocks:
        block_id = str(block.get("block_id", ""))
        elements: list[Any] = []
        if block.get("type") == "input":
            elements.append(block.get("element"))
        elif block.get("type") == "actions":
            elements.extend(block.get("elements") or [])
        elif block.get("type") == "section":
            elements.append(block.get("accessory"))
        for element in elements:
            if isinstance(element, dict) and element.get("type") in _STATE_KEYS:
                found.append((block, block_id, element))
    return found


def _view_state(blocks: list[Json], values: dict[str, InputValue]) -> dict[str, Json]:
    """Build view.state.values; `values` keys are block_ids or action_ids."""
    elements = _stateful_elements(blocks)
    known = {key for _, block_id, el in elements for key in (block_id, el.get("action_id"))}
    unknown = sorted(set(values) - known)
    if unknown:
        raise KeyError(f"no input {unknown} in view; inputs are {sorted(k for k in known if k)}")
    state: dict[str, Json] = {}
    for _, block_id, element in elements:
        action_id = str(element.get("action_id", ""))
        given = block_id in values or action_id in values
        raw = values.get(block_id, values.get(action_id)) if given else None
        state.setdefault(block_id, {})[action_id] = _element_state(element, raw, given)
    return state


def _element_state(element: Json, raw: InputValue, given: bool) -> Json:
    kind = str(element["type"])
    key = _STATE_KEYS[kind]
    if not given or raw is None or raw == "":
        initial = element.get(_INITIAL_KEYS[key])
        empty: list[Any] | None = [] if key in _LIST_KEYS else None
        return {"type": kind, key: initial if initial is not None and not given else empty}
    if key == "selected_option":
        return {"type": kind, key: _option(element, str(raw))}
    if key == "selected_options":
        wanted = raw if isinstance(raw, list) else [v.strip() for v in str(raw).split(",")]
        return {"type": kind, key: [_option(element, str(v)) for v in wanted]}
    if key in ("selected_users", "selected_conversations", "selected_channels"):
        return {"type": kind, key: raw if isinstance(raw, list) else [str(raw)]}
    if key == "selected_date_time":
        return {"type": kind, key: int(raw) if not isinstance(raw, list) else raw}
    return {"type": kind, key: raw if isinstance(raw, list) else str(raw)}


def _option(element: Json, wanted: str) -> Json:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    if not options and element.get("type", "").endswith("external_select"):
        return {"text": {"type": "plain_text", "text": wanted, "emoji": True}, "value": wanted}
    for option in options:
        if wanted in (option.get("value"), _label(option)):
            chosen = {"text": option["text"], "value": option["value"]}
            if "description" in option:
                chosen["description"] = option["description"]
            return chosen
    choices = [_label(o) for o in options]
    raise ValueError(f"no option {wanted!r} in {element.get('action_id')}; options: {choices}")


def _check_lengths(blocks: list[Json], state: dict[str, Json]) -> None:
    """Slack's client does not submit a text input over its `max_length`."""
    for block in blocks:
        element = block.get("element") or {}
        if block.get("type") != "input" or element.get("type") != "plain_text_input":
            continue
        value = state[str(block.get("block_id"))][str(element.get("action_id"))].get("value")
        limit = element.get("max_length")
        if limit is not None and value is not None and len(value) > limit:
            label = _label({"text": block.get("label")})
            raise ValueError(f"Slack would not submit: {label!r} is over its {limit} characters")


def _check_required(blocks: list[Json], state: dict[str, Json]) -> None:
    for block in blocks:
        if block.get("type") != "input" or block.get("optional"):
            continue
        element = block.get("element") or {}
        if element.get("type") not in _STATE_KEYS:
            continue
        entry = state[str(block.get("block_id"))][str(element.get("action_id"))]
        value = entry[_STATE_KEYS[element["type"]]]
        if value in (None, "", []):
            label = _label({"text": block.get("label")})
            raise ValueError(f"Slack would not submit: required input {label!r} is empty")
