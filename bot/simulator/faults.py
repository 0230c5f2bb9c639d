"""Failures and rate limits switched on per method: what clients must survive."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from aiohttp import web

from bot.simulator.data import RecordedCall
from bot.simulator.wire import finish, finish_text


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
    header: str | None = None  # a 429's Retry-After sent as this text (a hostile one)
    text: str | None = None  # the answer is this plain text, not Slack's JSON (a proxy's page)
    content_type: str = "text/plain"  # `text`'s (an HTML page, or one that says it is JSON)
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
class RateLimit:
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


class FaultInjection:
    """Injected failures and per-channel rate limits, and the 429s they caused.

    Mixed into `SlackSimulator`; the lists live in its `Workspace`, so `reset` clears them.
    """

    calls: list[RecordedCall]
    faults: list[Fault]
    rate_limited_calls: list[RecordedCall]
    retry_windows: list[RetryWindow]
    _rate_limits: dict[str, RateLimit]

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
        retry_after_header: str | None = None,
        text: str | None = None,
        content_type: str = "text/plain",
        after: bool = False,
    ) -> Fault:
        """Fail matching calls (method None = all; shell patterns like "chat.*" work).

        retry_after or status=429 → 429 ratelimited with Retry-After; error → HTTP 200 with
        `{"ok": false, "error": error}`; otherwise HTTP `status` (default 500). `times` caps the
        failures, `seconds` the duration, `every=n` fails only every n-th matching call.
        `retry_after_header`: a 429 whose Retry-After is this text, whatever it says ("inf",
        a date); its retry window counts 1 s. `text`: the answer is this plain text with
        `status` (what a proxy or load balancer in front of Slack sends), not Slack's JSON, as
        `content_type` ("text/html": a captive portal's page; "application/json": a body that
        says it is JSON and is not). `after`: that page replaces the answer of a call Slack did
        (a proxy's page that hides a post).
        """
        if retry_after is not None or status == 429 or retry_after_header is not None:
            status, retry_after = 429, max(1, retry_after or 1)
        elif status is None:
            status = 200 if error else 500
        fault = Fault(method, status, error, retry_after, times, seconds, channel, every)
        fault.header, fault.text, fault.content_type = retry_after_header, text, content_type
        fault.after = after and text is not None
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
        self._rate_limits[method] = RateLimit(method, per_second, burst or max(1.0, per_second))

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
            if fault.text is not None:
                return finish_text(call, fault.status, fault.text, fault.content_type)
            if fault.status == 429:
                return self._rate_limited(call, fault.retry_after or 1, fault.header)
            error = fault.error or ("fatal_error" if fault.status >= 500 else "invalid_request")
            body = {"ok": False, "error": error}
            if call.method in ("response_url", "upload_url"):
                return finish_text(call, fault.status, error)
            return finish(call, body, status=fault.status)
        return None

    def _apply_rate_limits(self, call: RecordedCall) -> web.Response | None:
        now = time.monotonic()
        for limit in self._rate_limits.values():
            if fnmatchcase(call.method, limit.method):
                wait = limit.take(call.channel, now)
                if wait is not None:
                    return self._rate_limited(call, wait)
        return None

    def _rate_limited(
        self, call: RecordedCall, retry_after: int, header: str | None = None
    ) -> web.Response:
        now = time.monotonic()
        call.retry_after = retry_after
        self.rate_limited_calls.append(call)
        window = RetryWindow(call.method, call.channel, now, retry_after, now + retry_after)
        self.retry_windows.append(window)
        return finish(
            call,
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(retry_after) if header is None else header},
        )
