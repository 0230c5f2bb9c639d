"""The Slack Web API client, and the private answers sent after a request's ack."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import RequestInfo
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook import WebhookResponse

from bot.domain.retry_after import SLACK_MOST, header_seconds
from bot.metrics import Metrics

log = logging.getLogger("handoff.slack")
Clock = Callable[[], datetime]
# Seconds: the longest 429 wait a call sleeps through before it tries again itself. A longer one
# is its caller's to wait (the members' reads pause):
# a person or a CRM is waiting for the call's answer meanwhile. Slack's waits are seconds to a
# minute (its tiers count calls per minute).
IN_CALL_WAIT = 60.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class NoSlackAnswer(SlackApiError):
    """A Web API call was answered, but not by Slack: a proxy's or load balancer's page (a
    plain-text 503 "upstream connect error…", a captive portal's HTML 200) instead of Slack's
    JSON object with its boolean `ok` (Slack's Web API basics: "The response contains a JSON
    object, which will always contain a top-level boolean property ok"). Slack said neither yes
    nor no: a caller takes it as Slack's 5xx (retried; a call that may have done something has
    an unknown outcome), never as a refusal. Its `response` has no data (`.get("error")` is
    None) and the answer's status, headers and URL; its text names the answer, on one line."""

    def __init__(self, response: AsyncSlackResponse, body: str) -> None:
        kind = str((response.headers or {}).get("Content-Type") or "no content type")
        said = " ".join(body.split())[:120]
        page = f"{kind.split(';')[0]}: {said}" if said else kind.split(";")[0]
        if not response.status_code:  # the answer could not be read: its status is not known
            page = said
        # The host asked, for which something else answered: the operator's clue to a proxy in
        # between (its name only: no user or password from SLACK_API_URL).
        host = urlsplit(str(response.api_url or "")).hostname or "?"
        status = response.status_code or "?"
        self.said = f"HTTP {status} from {host}, not Slack's answer ({page})"
        super().__init__(self.said, response)

    def __str__(self) -> str:
        return self.said


class HandoffWebClient(AsyncWebClient):
    """slack_sdk's client, whose calls answered by something other than Slack raise
    NoSlackAnswer (a SlackApiError) rather than what slack_sdk does with them: a text body kept
    as the answer's data (whose `.get` raises AttributeError, in `validate` for a 200), an HTML
    one dropped (a 200 then reads as a refusal with no error), or a SlackApiError carrying the
    raw aiohttp answer (a body that says it is JSON and is not)."""

    async def _request(self, *, http_verb: str, api_url: str, req_args: dict[str, Any]) -> Any:
        try:
            answer = await super()._request(http_verb=http_verb, api_url=api_url, req_args=req_args)
        except aiohttp.ClientHttpProxyError as error:
            raise without_password(error) from None
        except SlackApiError as error:
            if isinstance(error.response, AsyncSlackResponse):
                raise
            raw = error.response  # aiohttp's answer, its body read (and said in the message)
            said = str(error).split("\nThe server responded with:", 1)[0]
            said = said.split("non-JSON format:", 1)[-1]
            status = int(getattr(raw, "status", 0) or 0)
            headers = getattr(raw, "headers", None) or {}
            response = self._no_data(http_verb, api_url, req_args, status, headers)
            raise NoSlackAnswer(response, said) from None
        except UnicodeDecodeError as error:  # a page in another encoding: Slack's JSON is UTF-8
            response = self._no_data(http_verb, api_url, req_args, 0, {})
            raise NoSlackAnswer(response, f"a page that is not UTF-8 ({error.reason})") from None
        data = answer.get("data")
        if isinstance(data, bytes) or (isinstance(data, dict) and isinstance(data.get("ok"), bool)):
            return answer
        status, headers = int(answer.get("status_code") or 0), answer.get("headers") or {}
        response = self._no_data(http_verb, api_url, req_args, status, headers)
        said = data if isinstance(data, str) else json.dumps(data) if data else ""
        raise NoSlackAnswer(response, said)  # a JSON object with no `ok` is someone else's too

    def _no_data(
        self, verb: str, url: str, args: dict[str, Any], status: int, headers: Any
    ) -> AsyncSlackResponse:
        return AsyncSlackResponse(
            client=self,
            http_verb=verb,
            api_url=url,
            req_args=args,
            data={},
            headers=headers,
            status_code=status,
        )


def without_password(error: aiohttp.ClientHttpProxyError) -> aiohttp.ClientHttpProxyError:
    """The proxy's refusal to open the tunnel to Slack (its 407, its 403), as it is but for
    the proxy's URL and the CONNECT's Proxy-Authorization header: aiohttp names the URL whole,
    with the user and password of HTTPS_PROXY, and every log line and traceback of the error
    would show them; the header (in its repr, an error reporter's capture) is them in base64."""
    info = error.request_info
    kept = info.headers.copy()
    kept.popall(aiohttp.hdrs.PROXY_AUTHORIZATION, None)
    return aiohttp.ClientHttpProxyError(
        RequestInfo(
            info.url.with_user(None),
            info.method,
            type(info.headers)(kept),
            info.real_url.with_user(None),
        ),
        error.history,
        status=error.status,
        message=error.message,
        headers=error.headers,
    )


async def handoff_clients(context: Any, next: Callable[[], Awaitable[None]]) -> None:
    """Bolt middleware: the client a listener is given is a HandoffWebClient, as the app's is.
    slack_bolt (1.15 on) makes a plain AsyncWebClient for each request from the app's client's
    settings, so a proxy's page answering a listener's call (a modal's views.open) was
    slack_sdk's AttributeError and a traceback, not NoSlackAnswer."""
    plain = context.client
    if plain is not None and not isinstance(plain, HandoffWebClient):
        context["client"] = HandoffWebClient(
            token=plain.token,
            base_url=plain.base_url,
            timeout=plain.timeout,
            ssl=plain.ssl,
            proxy=plain.proxy,
            session=plain.session,
            trust_env_in_session=plain.trust_env_in_session,
            headers=plain.headers,
            team_id=plain.default_params.get("team_id"),
            logger=plain.logger,
            retry_handlers=plain.retry_handlers,
        )
    await next()


def slack_client(token: str, base_url: str, *, retries: bool = True) -> AsyncWebClient:
    """A Web API client on one pooled aiohttp session (without one, slack_sdk opens a new
    connection for every call). Call inside the running event loop.

    With `retries` it retries 429s (after Retry-After), 5xx and connection errors itself,
    for answers to a request. The outbox's client has none: the outbox retries durably, and
    must know when a request may have reached Slack. An answer that is not Slack's JSON (a
    proxy's page) raises NoSlackAnswer.
    """
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    client = HandoffWebClient(token=token, base_url=base_url, timeout=10, session=session)
    if not retries:
        client.retry_handlers.clear()
        return client
    client.retry_handlers.extend(
        [
            BoundedRateLimitRetry(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=3),
        ]
    )
    if not any(isinstance(h, AsyncConnectionErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(AsyncConnectionErrorRetryHandler(max_retry_count=3))
    return client


class BoundedRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's retry of a 429 after its `Retry-After`, read as bot/domain/retry_after.py
    reads it: the SDK's own `int(value)` raised ValueError for `inf` or an HTTP-date, and slept
    as long as any number asked (a call held for years). A wait over IN_CALL_WAIT is not slept
    through: the 429 goes to the caller."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return (
            response is not None
            and response.status_code == 429
            and _wait(response) <= (IN_CALL_WAIT)
        )

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            raise error or RuntimeError("a 429 retried without its answer")
        state.next_attempt_requested = True
        await asyncio.sleep(_wait(response) + random.random())  # jitter, as slack_sdk's
        state.increment_current_attempt()


def _wait(response: HttpResponse) -> float:
    """A 429's `Retry-After` in seconds (1 when there is none readable), at most SLACK_MOST."""
    return header_seconds(response.headers, time.time(), default=1.0, most=SLACK_MOST)


class SlackPublisher:
    """Sends the private answers to a request (ephemeral replies, modals) after its ack.

    They change no state, so they need no outbox: if one is lost, the person presses again.
    Everything that follows a state change goes through the outbox (bot/slack/outbox.py).
    Answers share a few workers (`spawn`); a modal opens on its own task (`open_modal`).
    """

    def __init__(self, metrics: Metrics, workers: int = 4) -> None:
        self.metrics = metrics
        self.workers = workers
        self._queue: asyncio.Queue[tuple[Coroutine[Any, Any, Any], str]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._modals: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._sending: list[str] = []  # what each answer under way is ("answer /sla-report")
        metrics.gauge("slack_queue_depth", self.pending)

    def pending(self) -> int:
        """Answers queued or under way."""
        return self._pending

    def spawn(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        """Queue a Slack call; a few workers deliver the queue, after the acks."""
        self._queue.put_nowait((work, what))
        self._pending += 1
        if len(self._tasks) < self.workers:
            task = asyncio.get_running_loop().create_task(self._work())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def open_modal(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        """Open a modal (`views.open`) at once, on its own task, never behind the queue.

        Its trigger_id is valid for 3 seconds, and the queue's workers may all be drawing a
        report's charts. A modal is opened per press, so these tasks are as many as presses."""
        self._pending += 1
        task = asyncio.get_running_loop().create_task(self._guard(work, what))
        self._modals.add(task)
        task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[None]) -> None:
        self._modals.discard(task)
        self._pending -= 1

    async def _work(self) -> None:
        while True:
            work, what = await self._queue.get()
            try:
                await self._guard(work, what)
            finally:
                self._pending -= 1
                self._queue.task_done()

    async def _guard(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        self._sending.append(what)
        try:
            answered = await work
        except NoSlackAnswer as error:  # a proxy's page: Slack refused nothing
            self.metrics.inc("slack_errors_total")
            log.error("could not %s: %s", what, error)
        except SlackApiError as error:
            self.metrics.inc("slack_errors_total")
            log.error("Slack refused to %s: %s", what, error.response.get("error", error))
        except Exception:
            self.metrics.inc("slack_errors_total")
            log.exception("could not %s", what)
        else:
            # A response_url's refusal (a URL used 5 times, or older than 30 minutes: 404
            # `used_url`, `expired_url`) comes back without an exception: an error all the same.
            if isinstance(answered, WebhookResponse) and answered.status_code >= 400:
                self.metrics.inc("slack_errors_total")
                body = str(answered.body)[:100]
                log.error("Slack refused to %s: %d %s", what, answered.status_code, body)
        finally:
            self._sending.remove(what)

    async def drain(self, seconds: float = 30.0) -> None:
        """Wait until every queued answer and every modal has been sent (shutdown, tests)."""
        try:
            await asyncio.wait_for(self._all_sent(), seconds)
        except TimeoutError:
            under_way = ", ".join(self._sending) or "none"
            count = self._pending
            log.warning(
                "%d Slack %s still queued or under way after %gs (under way: %s)",
                count,
                "answer was" if count == 1 else "answers were",
                seconds,
                under_way,
            )

    async def _all_sent(self) -> None:
        await self._queue.join()
        while self._modals:
            await asyncio.wait(list(self._modals))

    async def close(self) -> None:
        """Stop the workers and the modals opening; answers still queued are dropped with a
        log line."""
        running = list(self._tasks | self._modals)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        while not self._queue.empty():
            work, what = self._queue.get_nowait()
            work.close()
            log.warning("dropped at shutdown: %s", what)
