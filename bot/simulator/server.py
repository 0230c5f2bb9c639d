"""A local fake of the Slack Web API: records calls, answers like Slack, validates Block Kit.

Used by the end-to-end tests and by `handoff demo`. Point slack_sdk's `AsyncWebClient`
(`base_url=sim.api_url`) at it, send interactions with `SlackDriver`, then read what each channel,
user and modal saw. Faults (5xx, errors, 429s, dropped connections) and Slack's per-channel rate
limits can be switched on per method. Files arrive through Slack's external upload flow
(files.getUploadURLExternal, a POST to the upload URL, files.completeUploadExternal); read them
back with `files(channel)`.

`SlackSimulator` only serves HTTP; the rest is assembled from the package's modules: `workspace`
(what Slack stores), `inspection` (reading it), one module per Web API family (`chat`, `views`,
`conversations`, `users`, `files`), `faults` (failures and rate limits), `blockkit` (validation),
`wire` (reading requests, writing answers) and `data` (the records).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from functools import cached_property

from aiohttp import BodyPartReader, web

from bot.simulator.blockkit import Json
from bot.simulator.chat import ChatMethods
from bot.simulator.conversations import ConversationsMethods
from bot.simulator.data import ApiError, RecordedCall, ResponseUrl
from bot.simulator.faults import FaultInjection
from bot.simulator.files import FilesMethods
from bot.simulator.socket_mode import PATH as SOCKET_MODE_PATH
from bot.simulator.socket_mode import SocketModeEndpoint
from bot.simulator.users import UsersMethods
from bot.simulator.views import ViewsMethods
from bot.simulator.wire import auth_error, decode_json_fields, finish, finish_text, read_args

logger = logging.getLogger(__name__)

# Slack honours a response_url five times within thirty minutes of the interaction
# (https://docs.slack.dev/interactivity/handling-user-interaction, "Message responses"; once used
# up or expired it answers 404 `used_url` / `expired_url`). Its age is read on
# `interaction_clock`, so a test travels past it without sleeping.
RESPONSE_URL_USES = 5
# Methods whose reference lists `insecure_request`, "The method was not called via a `POST`
# request" (apps.connections.open: https://docs.slack.dev/reference/methods/apps.connections.open).
POST_ONLY = frozenset({"apps.connections.open"})
RESPONSE_URL_TTL = 30 * 60.0


class SlackSimulator(
    FaultInjection, ChatMethods, ViewsMethods, ConversationsMethods, UsersMethods, FilesMethods
):
    """A fake Slack workspace and Web API served over HTTP on 127.0.0.1."""

    _runner: web.AppRunner | None = None
    _port: int | None = None
    _host = "127.0.0.1"

    @cached_property
    def _api_methods(self) -> dict[str, Callable[[Json], Json]]:
        return {
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
            "users.profile.get": self._users_profile_get,
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
            "apps.connections.open": self.socket_mode.open_connection,
        }

    @cached_property
    def socket_mode(self) -> SocketModeEndpoint:
        """Socket Mode: connection URLs, the WebSocket, envelopes and their acknowledgements."""
        return SocketModeEndpoint(lambda: self.base_url, lambda: self.app_id)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> SlackSimulator:
        """Serve on host:port (0 = any free port); read the real one from `base_url`."""
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{token}", self._handle_response_url)
        app.router.add_post("/upload/{token}", self._handle_upload)
        app.router.add_get(SOCKET_MODE_PATH, self.socket_mode.handle)
        app.on_response_prepare.append(self._add_scopes_header)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._host = host
        self._port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        await self.socket_mode.close()
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

    def new_response_url(
        self,
        channel_id: str,
        user_id: str,
        message_ts: str | None = None,
        *,
        ephemeral: bool = False,
    ) -> str:
        """The response_url of an interaction by `user_id` in `channel_id`, on the message
        `message_ts` (`ephemeral`: the ephemeral message of that ts `user_id` sees)."""
        token = secrets.token_hex(12)
        created = self.interaction_clock()
        hook = ResponseUrl(token, channel_id, user_id, message_ts, created, ephemeral=ephemeral)
        self._response_urls[token] = hook
        return f"{self.base_url}/response/{token}"

    # -- HTTP -----------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        call = RecordedCall(request.match_info["method"], {}, time.monotonic())
        self.calls.append(call)
        try:
            call.args = await read_args(request, call.method)
        except ApiError as exc:
            return finish(call, {"ok": False, "error": exc.error})
        if call.method in POST_ONLY and request.method != "POST":
            return finish(call, {"ok": False, "error": "insecure_request"})
        try:
            bad_auth = auth_error(request, call.args, call.method, self.refused_tokens)
            if bad_auth:
                return finish(call, {"ok": False, "error": bad_auth})
            refused = self._apply_faults(call, request) or self._apply_rate_limits(call)
            if refused is not None:
                return refused
            handler = self._api_methods.get(call.method)
            if handler is None:
                return finish(call, {"ok": False, "error": "unknown_method"})
            decode_json_fields(call.args)
            self.require(call.method)
            answer = {"ok": True, **handler(call.args)}
            if self.answer_delay:
                await asyncio.sleep(self.answer_delay)
            hidden = self._apply_faults(call, request, after=True)
            if hidden is not None:  # done, but the client never hears it (or hears a proxy)
                return hidden
            return finish(call, answer)
        except ApiError as exc:
            return finish(call, {"ok": False, "error": exc.error, **exc.extra})
        except Exception:
            logger.exception("simulator failed on %s", call.method)
            return finish(call, {"ok": False, "error": "internal_error"})

    async def _add_scopes_header(self, request: web.Request, response: web.StreamResponse) -> None:
        """Slack names the token's scopes in an `X-OAuth-Scopes` header on Web API answers
        (https://api.slack.com/legacy/scopes, "Working with scopes"); `handoff doctor` reads it."""
        if self.scopes is not None and request.path.startswith("/api/"):
            response.headers["X-OAuth-Scopes"] = ",".join(self.scopes)

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        call = RecordedCall("response_url", {}, time.monotonic())
        self.calls.append(call)
        try:
            call.args = await read_args(request)
            if isinstance(call.args.get("payload"), str):  # form-encoded variant
                call.args = json.loads(call.args["payload"])
            if not isinstance(call.args, dict):
                raise ValueError("payload must be an object")
        except (ApiError, ValueError):
            return finish_text(call, 400, "invalid_payload")
        hook = self._response_urls.get(request.match_info["token"])
        if hook is not None:
            call.args.setdefault("channel", hook.channel)
        refused = self._apply_faults(call, request)
        if refused is not None:
            return refused
        if hook is None:
            return finish_text(call, 404, "no_service")
        if self.interaction_clock() - hook.created_at > RESPONSE_URL_TTL:
            return finish_text(call, 404, "expired_url")
        if hook.uses >= RESPONSE_URL_USES:
            return finish_text(call, 404, "used_url")
        hook.uses += 1
        try:
            decode_json_fields(call.args)
            self._respond(hook, call.args)
        except ApiError as exc:
            return finish_text(call, 400, exc.error)
        except Exception:
            logger.exception("simulator failed on a response_url post")
            return finish_text(call, 500, "internal_error")
        return finish_text(call, 200, "ok")

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        """The upload URL of files.getUploadURLExternal: the raw bytes, or one multipart file."""
        file_id = self._upload_urls.get(request.match_info["token"])
        call = RecordedCall("upload_url", {"file_id": file_id}, time.monotonic())
        self.calls.append(call)
        refused = self._apply_faults(call, request)
        if refused is not None:
            return refused
        if file_id is None:
            return finish_text(call, 404, "no_such_upload")
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            part = await reader.next()
            content = await part.read() if isinstance(part, BodyPartReader) else b""
        else:
            content = await request.read()
        call.args["size"] = len(content)
        upload = self._files[file_id]
        if upload.completed:
            return finish_text(call, 400, "upload_completed")
        upload.content = bytes(content)
        if self._apply_faults(call, request, after=True) is not None:
            return web.Response()
        return finish_text(call, 200, f"OK - {len(content)}")
