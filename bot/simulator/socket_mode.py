"""Slack's Socket Mode, simulated: `apps.connections.open` and the WebSocket it points to.

As Slack documents it (https://docs.slack.dev/apis/events-api/using-socket-mode/):
- `apps.connections.open`, called with an app-level token (`xapp-…`), answers a single-use
  WebSocket URL (`wss://wss-….slack.com/link/?ticket=…&app_id=…`; here a local `ws://`);
- on connect, Slack sends `{"type": "hello", "num_connections": …, "connection_info":
  {"app_id": …}, "debug_info": {"approximate_connection_time": …}}`;
- every few hours Slack refreshes a connection: it sends `{"type": "disconnect", "reason":
  "refresh_requested"}` (or `"warning"` about 10 s before it closes it) and closes it a
  little later, so the app opens another first (`disconnect`, then `hang_up` when the test
  says the time is up);
- when Socket Mode is turned off in the app's settings, Slack sends `{"type": "disconnect",
  "reason": "link_disabled"}` and from then on sends events and interactive payloads to the
  Request URL, not over a WebSocket ("When you turn Socket Mode off, the Request URL will be
  used once again to receive events"): here every open connection hears it, and `send`
  refuses until a test turns Socket Mode back on (`link_enabled`);
- every request arrives as an envelope `{"envelope_id", "type", "payload",
  "accepts_response_payload"}` of type `events_api` (with `retry_attempt` and
  `retry_reason`), `slash_commands` or `interactive`;
- the app acknowledges it with `{"envelope_id": …}` and, where the request accepts one, a
  `payload`: what an HTTP answer's body would be (a command's ephemeral text, a modal's
  `response_action`). Slack expects the acknowledgement within 3 seconds, as over HTTP;
- "Your app still needs to acknowledge receiving each event so that Slack knows whether to
  retry": an `events_api` envelope not acknowledged within those 3 seconds (never, or late)
  is sent again, as a new envelope with `retry_attempt` 1, 2, 3 and `retry_reason`
  `http_timeout`, up to 3 times: nearly at once, after 1 minute, after 5 minutes, and no
  more once one is acknowledged in time (https://docs.slack.dev/apis/events-api#retries).
  A slash command or an interactive payload is never sent again: the person sees an error
  ("Your app has to respond to the request within 3 seconds by ack() method. Otherwise, the
  user will see the timeout error on Slack", https://docs.slack.dev/tools/java-slack-sdk/guides/interactive-components;
  Slack's retries are the Events API's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from bot.simulator.blockkit import Json

ACK_WITHIN = 3.0  # seconds Slack waits for an envelope's acknowledgement
# When Slack sends an unacknowledged event again, in seconds after the attempt before failed
# ("The first retry will be sent nearly immediately. The second retry will be attempted after
# 1 minute. The third and final retry will be sent after 5 minutes."), and why: the value of
# `x-slack-retry-reason` for "Your server took longer than 3 seconds to respond to the
# previous event delivery attempt" (https://docs.slack.dev/apis/events-api#retries).
RETRY_AFTER = (0.0, 60.0, 300.0)
RETRY_REASON = "http_timeout"
LINK_DISABLED = "link_disabled"
PATH = "/socket-mode/link/"
KINDS = ("events_api", "slash_commands", "interactive")
# `too_many_websockets`: the app holds more connections than Slack allows it (10); Slack's
# own SDKs handle it (slack_sdk's aiohttp client closes its old connection first for it;
# node-slack-sdk's socket-mode tests list it among the disconnect reasons).
DISCONNECT_REASONS = ("warning", "refresh_requested", "link_disabled", "too_many_websockets")
HOST = "handoff-simulator"
# About how long, in seconds, a connection lasts before Slack refreshes it (the `hello`'s
# `debug_info.approximate_connection_time`; Slack's example says 18060, about 5 hours).
CONNECTION_TIME = 18060


@dataclass
class Envelope:
    """One envelope sent to the app, and its acknowledgement (if any came)."""

    envelope_id: str
    type: str
    payload: Json
    retry_attempt: int
    sent_at: float
    connection: int = 0  # which connection it went to: 1 for the first the app opened, …
    acked_on: int = 0  # and which its acknowledgement came back on
    acked_at: float | None = None
    response: Json | None = None  # the acknowledgement's payload
    retry_reason: str = ""  # an event's: why Slack sends it again (`http_timeout`)

    @property
    def acknowledged(self) -> bool:
        return self.acked_at is not None

    @property
    def late(self) -> bool:
        """Acknowledged, but after the 3 s Slack waits (Slack would show the user an error)."""
        return self.acked_at is not None and self.acked_at - self.sent_at > ACK_WITHIN


class SocketModeEndpoint:
    """The simulator's Socket Mode side: issues connection URLs, serves the WebSocket, sends
    envelopes to the newest connection and records each acknowledgement."""

    def __init__(self, base_url: Callable[[], str], app_id: Callable[[], str]) -> None:
        self._base_url = base_url
        self._app_id = app_id
        self._tickets: set[str] = set()
        self._waiting: dict[str, tuple[Envelope, asyncio.Future[Json | None]]] = {}
        self.connections: list[web.WebSocketResponse] = []
        self.warned: list[web.WebSocketResponse] = []  # sent a `disconnect`, not yet closed
        self.opened = 0  # connections the app has opened (each said hello to)
        self.asked = 0  # URLs the app has asked for (apps.connections.open)
        # Where the next envelopes go, when a test chooses (Slack may still send on a
        # connection it warned, until it closes it); None: the newest not warned.
        self.send_to: web.WebSocketResponse | None = None
        self._numbers: dict[int, int] = {}
        self.envelopes: list[Envelope] = []
        self.strays: list[Json] = []  # acknowledgements of no envelope sent, or a second one
        self._sent: dict[str, tuple[Envelope, asyncio.Future[Json | None]]] = {}
        # Slack's retries of unacknowledged events: when each is sent after the attempt before
        # (a test may set `()`: none), and how the waits pass (a test may travel in time).
        self.retry_after: tuple[float, ...] = RETRY_AFTER
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._retrying: set[asyncio.Task[None]] = set()
        self.link_disabled = False  # Socket Mode turned off in the app's settings

    # -- the Web API method and the WebSocket ---------------------------------------------------

    def open_connection(self, args: Json) -> Json:
        """apps.connections.open: a single-use URL (the token was checked as an app token)."""
        ticket = secrets.token_hex(12)
        self._tickets.add(ticket)
        self.asked += 1
        ws_base = self._base_url().replace("http://", "ws://", 1)
        return {"url": f"{ws_base}{PATH}?ticket={ticket}&app_id={self._app_id()}"}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket: `hello` first, then acknowledgements read until the app hangs up."""
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid_ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        self.opened += 1
        self._numbers[id(ws)] = self.opened
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self.connections),
                    "debug_info": {"host": HOST, "approximate_connection_time": CONNECTION_TIME},
                    "connection_info": {"app_id": self._app_id()},
                }
            )
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._acknowledged(message.data, self._numbers.get(id(ws), 0))
        finally:
            self.connections.remove(ws)
            if ws in self.warned:
                self.warned.remove(ws)
        return ws

    def _acknowledged(self, text: str, connection: int) -> None:
        try:
            ack = json.loads(text)
        except json.JSONDecodeError:
            self.strays.append({"unparsed": text})
            return
        # An envelope's acknowledgement is recorded whenever it comes (late: after the 3 s).
        sent = self._sent.get(str(ack.get("envelope_id"))) if isinstance(ack, dict) else None
        if sent is None or sent[0].acknowledged:
            self.strays.append(ack if isinstance(ack, dict) else {"unparsed": text})
            return
        envelope, answer = sent
        envelope.acked_at = time.monotonic()
        envelope.acked_on = connection
        payload = ack.get("payload")
        envelope.response = payload if isinstance(payload, dict) else None
        if not answer.done():
            answer.set_result(envelope.response)

    async def close(self) -> None:
        for task in list(self._retrying):
            task.cancel()
        await asyncio.gather(*self._retrying, return_exceptions=True)
        for ws in list(self.connections):
            await ws.close()

    async def disconnect(self, reason: str = "refresh_requested") -> web.WebSocketResponse:
        """Tell the newest connection Slack is about to close it: `{"type": "disconnect",
        "reason": …}` (`warning`: it closes in about 10 s; `refresh_requested`: Slack refreshes
        every connection every few hours). The connection stays open until `hang_up` (Slack's
        10 s, when a test says so), and envelopes go to a newer connection once the app has
        opened one. `link_disabled`: Socket Mode was turned off in the app's settings, for the
        app: every open connection hears it, and no envelope is sent over a WebSocket any
        more (Slack sends to the Request URL) until `link_enabled`."""
        if reason not in DISCONNECT_REASONS:
            raise ValueError(f"no disconnect reason {reason!r}; Slack sends {DISCONNECT_REASONS}")
        ws = self._newest()
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": HOST}}
        told = [c for c in self.connections if not c.closed] if reason == LINK_DISABLED else [ws]
        if reason == LINK_DISABLED:
            self.link_disabled = True
        for each in told:
            self.warned.append(each)
            await each.send_str(json.dumps(message))
        return ws

    def link_enabled(self) -> None:
        """Socket Mode turned back on in the app's settings: envelopes go over WebSockets."""
        self.link_disabled = False

    async def hang_up(self, ws: web.WebSocketResponse) -> None:
        """Slack closes a connection it warned (the ~10 s after a `disconnect` are up)."""
        await ws.close()

    async def wait_opened(self, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the app has opened `count` connections in all (a reconnect said hello)."""
        await _until(lambda: self.opened >= count, f"{count} connections opened", timeout)

    async def wait_asked(self, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the app has called apps.connections.open `count` times in all (a
        reconnect has begun)."""
        await _until(lambda: self.asked >= count, f"{count} URLs asked for", timeout)

    async def wait_sent(self, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until `count` envelopes have been sent in all."""
        await _until(lambda: len(self.envelopes) >= count, f"{count} envelopes sent", timeout)

    def _newest(self) -> web.WebSocketResponse:
        """Where Slack sends the next envelope: the newest open connection it has not warned,
        else the newest open one (a warned connection still takes envelopes until closed)."""
        if self.link_disabled:
            raise LookupError(
                "Socket Mode is turned off for the app (link_disabled): Slack sends to its "
                "Request URL, not over a WebSocket"
            )
        if self.send_to is not None:
            if self.send_to.closed:
                raise LookupError("the app closed the connection Slack is sending on")
            return self.send_to
        open_now = [ws for ws in self.connections if not ws.closed]
        if not open_now:
            raise LookupError("no app is connected to Socket Mode (apps.connections.open)")
        fresh = [ws for ws in open_now if ws not in self.warned]
        return (fresh or open_now)[-1]

    # -- sending --------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return any(not ws.closed for ws in self.connections)

    async def wait_connected(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while not self.connected:
            if time.monotonic() >= deadline:
                raise AssertionError("no app connected to Socket Mode")
            await asyncio.sleep(0.01)

    async def send(
        self,
        kind: str,
        payload: Json,
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> Envelope:
        """Send one envelope to the newest connection and wait (up to `timeout`) for its
        acknowledgement; the returned record says whether it came, and whether in time. An
        `events_api` envelope not acknowledged within 3 s is sent again as Slack retries it
        (`retry_after`), whatever `timeout` is; one a test sends as a retry itself
        (`retry_attempt`) is not. Only events are retried: a `retry_attempt` on another kind
        is a ValueError."""
        if kind not in KINDS:
            raise ValueError(f"no envelope type {kind!r}; Slack sends {KINDS}")
        if retry_attempt and kind != "events_api":
            raise ValueError(
                f"Slack retries Events API events only, not {kind}: the person sees an error"
            )
        envelope, answer = await self._deliver(kind, payload, retry_attempt, retry_reason)
        if kind == "events_api" and not retry_attempt and self.retry_after:
            self._start(self._retry_unless_acked(envelope, answer))
        self._waiting[envelope.envelope_id] = (envelope, answer)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(answer), timeout)
        finally:
            self._waiting.pop(envelope.envelope_id, None)
        return envelope

    async def _deliver(
        self, kind: str, payload: Json, retry_attempt: int, retry_reason: str
    ) -> tuple[Envelope, asyncio.Future[Json | None]]:
        connection = self._newest()
        envelope = Envelope(
            str(uuid.uuid4()),
            kind,
            payload,
            retry_attempt,
            time.monotonic(),
            self._numbers.get(id(connection), 0),
            retry_reason=retry_reason,
        )
        message: Json = {
            "envelope_id": envelope.envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
        }
        if kind == "events_api":
            message["retry_attempt"] = retry_attempt
            message["retry_reason"] = retry_reason
        answer: asyncio.Future[Json | None] = asyncio.get_running_loop().create_future()
        self._sent[envelope.envelope_id] = (envelope, answer)
        self.envelopes.append(envelope)
        await connection.send_str(json.dumps(message))
        return envelope, answer

    async def _retry_unless_acked(
        self, first: Envelope, answer: asyncio.Future[Json | None]
    ) -> None:
        """Slack's retries of an event: each attempt not acknowledged within 3 s is followed
        by the next, up to `retry_after`'s count; an attempt with no connection to go to
        fails as well."""
        if await _in_time(answer):
            return
        for attempt, after in enumerate(self.retry_after, start=1):
            await self.sleep(after)
            try:
                retry, answer = await self._deliver(
                    "events_api", first.payload, attempt, RETRY_REASON
                )
            except (LookupError, ConnectionError):
                continue
            self._waiting[retry.envelope_id] = (retry, answer)  # awaited: not yet missing
            try:
                if await _in_time(answer):
                    return
            finally:
                self._waiting.pop(retry.envelope_id, None)

    async def wait_retries(self) -> None:
        """Wait until every retry Slack would still send has been sent and answered (or not)."""
        while self._retrying:
            await asyncio.gather(*list(self._retrying), return_exceptions=True)

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._retrying.add(task)
        task.add_done_callback(self._retrying.discard)

    # -- what happened --------------------------------------------------------------------------

    @property
    def late_acks(self) -> list[Envelope]:
        return [e for e in self.envelopes if e.late]

    @property
    def missing_acks(self) -> list[Envelope]:
        """Envelopes that were never acknowledged (not counting those still awaited)."""
        return [
            e for e in self.envelopes if not e.acknowledged and e.envelope_id not in self._waiting
        ]


async def _in_time(answer: asyncio.Future[Json | None]) -> bool:
    """Whether the acknowledgement came within the 3 s Slack waits (`ACK_WITHIN`)."""
    try:
        await asyncio.wait_for(asyncio.shield(answer), ACK_WITHIN)
    except TimeoutError:
        return False
    return True


async def _until(done: Callable[[], bool], what: str, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not {what} within {timeout} s")
        await asyncio.sleep(0.005)
