"""Reading the workspace: what each channel, user and modal saw, and the calls that came in.

Tests and the driver use these; the Web API methods use them too (history, the view stack).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from bot.simulator.blockkit import Json
from bot.simulator.data import Ephemeral, Message, OpenView, RecordedCall, SimFile, ts_key
from bot.simulator.workspace import Workspace

T = TypeVar("T")


class Inspection(Workspace):
    """Queries over the workspace; none of them changes it."""

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
        return max(found, key=lambda m: ts_key(m.ts)) if found else None

    def files(self, channel: str | None = None) -> list[SimFile]:
        """Files shared in a channel (a DM's id, or a user id for their DM), oldest share first;
        None: every file uploaded, shared or not."""
        if channel is None:
            return list(self._files.values())
        if channel[:1] in ("U", "W"):
            channel = self.dm_channel(channel)
        shared = [
            (ts_key(ts), file)
            for file in self._files.values()
            for where, ts in file.shares
            if where == channel
        ]
        return [file for _, file in sorted(shared, key=lambda pair: pair[0])]

    def file(self, file_id: str) -> SimFile | None:
        return self._files.get(file_id)

    def ephemerals(
        self, user: str | None = None, channel: str | None = None, *, commands: bool = False
    ) -> list[Ephemeral]:
        """The ephemeral messages shown (to `user`, in `channel`), oldest first, as they look
        now. A slash command's own answer (the driver's response to `command`) is listed only
        with `commands`: by default, what the app sent privately afterwards."""
        return [
            e
            for e in self._ephemerals
            if (user is None or e.user == user)
            and (channel is None or e.channel == channel)
            and (commands or e.source != "command")
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

    def latest_view(self, user: str) -> OpenView | None:
        views = self.open_views(user)
        return views[-1] if views else None

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
