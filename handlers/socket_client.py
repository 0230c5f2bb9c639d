"""slack_sdk's aiohttp Socket Mode client, made to open the next connection before it lets the
old one go.

Slack refreshes Socket Mode connections: it sends `{"type": "disconnect", "reason":
"refresh_requested"}` every few hours, or `"warning"` about 10 seconds before it closes one,
and keeps that connection until then, so that the app can open another first
(https://docs.slack.dev/apis/events-api/using-socket-mode/, "Connection refreshes" and
"Disconnects"). slack_sdk 3.x's client instead closes the old connection and only then opens
the new one: a press or a slash command Slack sends in between arrives on a connection the
client has stopped reading, or finds none at all, and the person sees an error (Slack retries
an event, never an interaction). This client reads the old connection until Slack closes it
(or `RETIRE_SECONDS` pass), answers what arrives there, and opens the new one meanwhile. Not
for `too_many_websockets` (the app holds more connections than Slack allows): another one
opened first would only add to them, so there the old one is closed first, as slack_sdk does.

Nor for `link_disabled`: Slack sends it when Socket Mode is turned off in the app's settings,
and from then on sends every event, press and command to the app's Request URL instead ("When
you turn Socket Mode off, the Request URL will be used once again to receive events",
https://docs.slack.dev/apis/events-api/using-socket-mode/). A new connection would receive
nothing, so the client opens none (slack_sdk reconnects for any disconnect, and again every
10 s once Slack has closed the connection) and sets `turned_off`, for `serve` to stop on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import ClientWebSocketResponse, WSMsgType
from slack_sdk.socket_mode.aiohttp import SocketModeClient

# How long a connection Slack asked us to leave is read before we close it ourselves: Slack
# closes it about 10 s after its `disconnect` message.
RETIRE_SECONDS = 30.0
TOO_MANY = "too_many_websockets"
LINK_DISABLED = "link_disabled"
TURNED_OFF = (
    "Socket Mode was turned off for this app in its settings (Slack's disconnect reason "
    "link_disabled): Slack now sends its events, presses and commands to the app's Request URL, "
    "not over Socket Mode. Turn Socket Mode back on (the app's settings at api.slack.com/apps, "
    "Socket Mode) and start `handoff serve --socket` again, or run `handoff serve` behind that "
    "Request URL (docs/operations.md#socket-mode)"
)


class OverlappingSocketModeClient(SocketModeClient):
    """A Socket Mode client whose reconnects overlap: the next connection is opened while the
    old one is still read and answered on, until Slack closes it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.retiring: list[ClientWebSocketResponse] = []
        self._draining: set[asyncio.Task[None]] = set()
        self._came_on: dict[str, ClientWebSocketResponse] = {}  # envelope id: its connection
        self._too_many = False  # Slack's last disconnect said the app has too many connections
        self.turned_off = asyncio.Event()  # Slack said Socket Mode was turned off (link_disabled)

    async def enqueue_message(self, message: str) -> None:
        if LINK_DISABLED in message and _is_link_disabled(message):
            # As it is read, before the reader reads on and finds the connection closed: no
            # reconnect, now or then (slack_sdk's reader and monitor reconnect only while
            # auto_reconnect_enabled).
            self.default_auto_reconnect_enabled = self.auto_reconnect_enabled = False
            self.turned_off.set()
        await super().enqueue_message(message)

    async def run_message_listeners(self, message: dict, raw_message: str) -> None:
        if message.get("type") == "disconnect":
            if message.get("reason") == LINK_DISABLED:
                return  # no new connection (slack_sdk opens one for any disconnect)
            self._too_many = message.get("reason") == TOO_MANY
        await super().run_message_listeners(message, raw_message)

    async def connect(self) -> None:
        old, receiver = self.current_session, self.message_receiver
        too_many, self._too_many = self._too_many, False
        if self.turned_off.is_set():
            return  # Slack sends nothing over Socket Mode any more: no connection to open
        if (
            too_many
            or self.closed
            or old is None
            or old.closed
            or receiver is asyncio.current_task()
        ):
            await super().connect()  # the old connection closed first, or none left to read
            return
        # Keep reading the old connection ourselves; the parent then has none to close first.
        self.message_receiver = None
        if receiver is not None:
            receiver.cancel()
            await asyncio.wait({receiver})  # one reader of the old connection at a time
        self.retiring.append(old)
        task = asyncio.ensure_future(self._drain(old))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)
        self.current_session = None
        await super().connect()

    async def _drain(self, session: ClientWebSocketResponse) -> None:
        """Read a retiring connection (envelopes still come) until Slack closes it."""
        try:
            async with asyncio.timeout(RETIRE_SECONDS):
                while not session.closed:
                    message = await session.receive()
                    if message.type == WSMsgType.TEXT:
                        envelope_id = _envelope_id(message.data)
                        if envelope_id:
                            self._came_on[envelope_id] = session
                        await self.enqueue_message(message.data)
                    elif message.type == WSMsgType.PING:
                        await session.pong(message.data)
                    elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                        break
        except (TimeoutError, ConnectionError) as error:
            self.logger.info(f"Stopped reading a retired Socket Mode connection: {error!r}")
        finally:
            with contextlib.suppress(Exception):
                await session.close()
            if session in self.retiring:
                self.retiring.remove(session)
            for envelope_id in [k for k, v in self._came_on.items() if v is session]:
                del self._came_on[envelope_id]

    async def send_message(self, message: str) -> None:
        """An acknowledgement goes back on the connection its envelope came on while that is
        open; otherwise on the current one, or while the next is still opening, on the one
        being retired (Slack still reads it)."""
        came_on = self._came_on.pop(_envelope_id(message) or "", None)
        if came_on is not None and not came_on.closed:
            await came_on.send_str(message)
            return
        current = self.current_session
        if current is None or current.closed:
            for session in reversed(self.retiring):
                if not session.closed:
                    await session.send_str(message)
                    return
        await super().send_message(message)

    async def close(self) -> None:
        for task in list(self._draining):
            task.cancel()
        for session in list(self.retiring):
            with contextlib.suppress(Exception):
                await session.close()
        await super().close()


def _is_link_disabled(text: str) -> bool:
    try:
        message = json.loads(text)
    except ValueError:
        return False
    return (
        isinstance(message, dict)
        and message.get("type") == "disconnect"
        and message.get("reason") == LINK_DISABLED
    )


def _envelope_id(text: str) -> str | None:
    try:
        found = json.loads(text).get("envelope_id")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None
