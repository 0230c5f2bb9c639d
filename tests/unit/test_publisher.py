"""The private answers' publisher: a modal opens at once, even while every worker is busy."""

from __future__ import annotations

import asyncio
import base64
import logging
from traceback import format_exception
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookResponse

from bot.cli.stack import BOT_TOKEN
from bot.metrics import Metrics
from bot.simulator.server import SlackSimulator
from bot.slack.publisher import IN_CALL_WAIT, NoSlackAnswer, SlackPublisher, slack_client
from tests.conftest import local_server

TRIGGER_LIFETIME = 3.0  # seconds Slack accepts a trigger_id for


async def test_a_modal_opens_while_every_worker_draws_a_report() -> None:
    publisher = SlackPublisher(Metrics(), workers=4)
    reports_done = asyncio.Event()
    opened = asyncio.Event()

    async def slow_report() -> None:
        await reports_done.wait()  # a report's charts: longer than a trigger_id lives

    async def views_open() -> None:
        opened.set()

    for _ in range(12):  # every worker busy, and more reports queued behind them
        publisher.spawn(slow_report(), "sla report")
    await asyncio.sleep(0)
    publisher.open_modal(views_open(), "open the disposition modal")
    await asyncio.wait_for(opened.wait(), TRIGGER_LIFETIME / 10)
    assert publisher.pending() == 12  # the modal is done; the reports still wait
    reports_done.set()
    await publisher.drain(5)
    assert publisher.pending() == 0
    await publisher.close()


async def test_a_modal_that_fails_is_logged_and_counted() -> None:
    metrics = Metrics()
    publisher = SlackPublisher(metrics)

    async def expired() -> None:
        raise RuntimeError("expired_trigger_id")

    publisher.open_modal(expired(), "open the disposition modal")
    await publisher.drain(1)
    assert publisher.pending() == 0
    assert metrics.counts["slack_errors_total"] == 1
    await publisher.close()


async def test_close_drops_a_modal_still_opening() -> None:
    publisher = SlackPublisher(Metrics())
    publisher.open_modal(asyncio.sleep(60), "open the disposition modal")
    await asyncio.sleep(0)
    await publisher.close()
    await asyncio.sleep(0)
    assert publisher.pending() == 0


async def test_an_answer_slack_refused_is_logged_and_counted(caplog: Any) -> None:
    """slack_sdk hands back a response_url's refusal (a used or expired URL: 404) without
    raising: it is an error all the same, for the operator to see."""
    metrics = Metrics()
    publisher = SlackPublisher(metrics)

    async def used_up() -> WebhookResponse:
        return WebhookResponse(
            url="https://hooks.slack.test/x", status_code=404, body="used_url", headers={}
        )

    async def fine() -> WebhookResponse:
        return WebhookResponse(
            url="https://hooks.slack.test/y", status_code=200, body="ok", headers={}
        )

    with caplog.at_level(logging.ERROR, logger="handoff"):
        publisher.spawn(used_up(), "answer privately")
        publisher.spawn(fine(), "answer privately")
        await publisher.drain(1)
    assert metrics.counts["slack_errors_total"] == 1
    assert any("used_url" in record.getMessage() for record in caplog.records)
    await publisher.close()


async def test_a_drain_that_runs_out_of_time_names_the_answers_still_under_way(
    caplog: Any,
) -> None:
    """At shutdown the publisher waits for the answers; past its time the log line said "0
    Slack answers were still queued" when one was being sent (taken off the queue): it counts
    those under way too, and says what they are."""
    publisher = SlackPublisher(Metrics(), workers=1)
    never = asyncio.Event()

    async def slow_report() -> None:
        await never.wait()

    publisher.spawn(slow_report(), "answer /sla-report")
    publisher.spawn(slow_report(), "answer /lead")
    await asyncio.sleep(0)  # the worker takes the first: one under way, one queued
    with caplog.at_level(logging.WARNING, logger="handoff.slack"):
        await publisher.drain(0.05)
    assert [record.getMessage() for record in caplog.records] == [
        "2 Slack answers were still queued or under way after 0.05s (under way: answer /sla-report)"
    ]
    await publisher.close()


async def test_a_drain_that_runs_out_of_time_with_one_answer_says_it_in_the_singular(
    caplog: Any,
) -> None:
    publisher = SlackPublisher(Metrics(), workers=1)
    never = asyncio.Event()

    async def slow_report() -> None:
        await never.wait()

    publisher.spawn(slow_report(), "answer /sla-report")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="handoff.slack"):
        await publisher.drain(0.05)
    assert [record.getMessage() for record in caplog.records] == [
        "1 Slack answer was still queued or under way after 0.05s (under way: answer /sla-report)"
    ]
    await publisher.close()


@pytest.mark.parametrize("hostile", ["inf", "-1", "nan", "Mon, 23 Nov 99999 00:00:00 GMT"])
async def test_a_429_whose_wait_is_unreadable_is_retried_after_a_second(hostile: str) -> None:
    """The Web API client retries a 429 itself after its `Retry-After`, as slack_sdk's own
    handler did; but that one read the header with `int()`, and raised ValueError (a traceback,
    the call lost) on `inf`, `nan`, a date. A wait it cannot read is 1 s, as with none."""
    async with SlackSimulator() as sim:
        sim.inject("users.lookupByEmail", retry_after_header=hostile, times=1)
        client = slack_client(BOT_TOKEN, sim.api_url)
        try:
            with pytest.raises(SlackApiError) as answered:
                await client.users_lookupByEmail(email="nobody@example.com")
            assert answered.value.response["error"] == "users_not_found"  # the retry's answer
            assert len(sim.rate_limited_calls) == 1
        finally:
            await client.session.close()  # type: ignore[union-attr]


@pytest.mark.parametrize("long_wait", ["86400", "99999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
async def test_a_429_longer_than_a_minute_goes_to_the_caller_at_once(long_wait: str) -> None:
    """slack_sdk's handler slept as long as any `Retry-After` said (a day, inside a CRM's
    webhook request). A wait over IN_CALL_WAIT is the caller's: the call ends with the 429,
    unretried, and the caller waits durably or answers 503 with it."""
    async with SlackSimulator() as sim:
        sim.inject("users.lookupByEmail", retry_after_header=long_wait)
        client = slack_client(BOT_TOKEN, sim.api_url)
        try:
            with pytest.raises(SlackApiError) as answered:
                await asyncio.wait_for(
                    client.users_lookupByEmail(email="nobody@example.com"), IN_CALL_WAIT / 4
                )
            assert answered.value.response.status_code == 429
            assert len(sim.rate_limited_calls) == 1  # not retried within the call
        finally:
            await client.session.close()  # type: ignore[union-attr]


UPSTREAM = "upstream connect error or disconnect/reset before headers. reset reason: overflow"


@pytest.mark.parametrize(
    ("status", "content_type", "text", "named"),
    [
        (503, "text/plain", UPSTREAM, "not Slack's answer (text/plain: upstream"),
        (200, "text/plain", "Service unavailable", "not Slack's answer (text/plain: Se"),
        (200, "text/html", "<html>Sign in to the network</html>", "not Slack's answer"),
        (502, "application/json", "<html>Bad Gateway</html>", "(application/json: <html>Bad"),
        (200, "application/json", '{"message": "Internal server error"}', '{"message"'),
        # A proxy's refusal for good, its HTML page (slack_sdk reads no body of HTML).
        (403, "text/html", "<html><h1>403 Forbidden</h1>Access denied</html>", "(text/html)"),
        (407, "text/html", "<html>Proxy Authentication Required</html>", "(text/html)"),
    ],
)
async def test_an_answer_that_is_not_slacks_json_is_no_slack_answer(
    status: int, content_type: str, text: str, named: str
) -> None:
    """What a proxy in front of Slack answers (Slack's Web API always answers a JSON object
    with a boolean `ok`) reaches the caller as NoSlackAnswer, a SlackApiError with the status,
    no error code and one line naming the answer; before, slack_sdk kept a text as the answer
    (`.get` raised AttributeError, in the call itself for a 200), dropped an HTML page (a 200
    read as a refusal with no code), or raised with aiohttp's raw answer (no `.get`)."""
    async with SlackSimulator() as sim:
        sim.inject("users.lookupByEmail", status=status, text=text, content_type=content_type)
        client = slack_client(BOT_TOKEN, sim.api_url, retries=False)
        try:
            with pytest.raises(NoSlackAnswer) as answered:
                await client.users_lookupByEmail(email="nobody@example.com")
        finally:
            await client.session.close()  # type: ignore[union-attr]
    error = answered.value
    assert isinstance(error, SlackApiError)
    assert error.response.status_code == status and error.response.get("error") is None
    # The status, and the host that answered (the operator's clue to a proxy in between).
    assert str(error).startswith(f"HTTP {status} from 127.0.0.1, not Slack's answer")
    assert named in str(error) and "\n" not in str(error)
    assert BOT_TOKEN not in str(error)
    assert str(error.response.api_url).endswith("/users.lookupByEmail")


async def test_a_proxy_refusing_the_tunnel_to_slack_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTPS_PROXY's proxy refuses to open the tunnel to Slack (its 407: no or wrong
    credentials; a 403: slack.com not allowed). The error keeps its type (the callers retry it
    as they did) and names the status and the proxy's host, but not the password in
    HTTPS_PROXY: aiohttp's own message gave the proxy's whole URL, and the outbox's warning at
    every retry, `handoff doctor`'s FIX line and a listener's traceback printed the password."""
    said: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        said.append(await reader.readuntil(b"\r\n\r\n"))
        body = b"<html>Proxy Authentication Required</html>"
        writer.write(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Type: text/html\r\n"
            b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: %d\r\n\r\n%s'
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://handoff:pr0xy-s3cret@127.0.0.1:{port}")
    client = slack_client(BOT_TOKEN, "https://slack.com/api/", retries=False)
    try:
        with pytest.raises(aiohttp.ClientHttpProxyError) as refused:
            await client.chat_postMessage(channel="C0ENT", text="a lead")
    finally:
        await client.session.close()  # type: ignore[union-attr]
        server.close()
        await server.wait_closed()
    assert said and said[0].startswith(b"CONNECT slack.com:443 ")
    error = refused.value
    assert error.status == 407
    logged = f"{type(error).__name__}: {error}"  # what the outbox's warning says of it
    assert "407" in logged and f"127.0.0.1:{port}" in logged, logged
    traceback = "".join(format_exception(error))
    for secret in ("pr0xy-s3cret", "handoff:", BOT_TOKEN):
        assert secret not in logged and secret not in traceback, secret
    # Nor as the CONNECT's Proxy-Authorization header aiohttp keeps in the error's request
    # (its repr, an error reporter's capture): the same user and password, in base64.
    basic = base64.b64encode(b"handoff:pr0xy-s3cret").decode()
    assert basic not in repr(error) and basic not in repr(error.args), repr(error)


async def test_a_private_answer_a_proxy_answered_is_one_warning_and_the_next_goes(
    caplog: Any,
) -> None:
    """A modal's views.open answered by a proxy's page, not Slack: one line in the log naming
    the answer, no traceback, and the answers after it still go (before: an AttributeError
    from slack_sdk's own check, logged with a traceback)."""
    metrics = Metrics()
    publisher = SlackPublisher(metrics, workers=1)
    went = asyncio.Event()

    async def then() -> None:
        went.set()

    async with SlackSimulator() as sim:
        sim.inject("views.open", status=200, text="Service unavailable", times=1)
        client = slack_client(BOT_TOKEN, sim.api_url)
        try:
            with caplog.at_level(logging.WARNING, logger="handoff"):
                publisher.spawn(client.views_open(trigger_id="1.2.3", view={}), "open a modal")
                publisher.spawn(then(), "answer privately")
                await publisher.drain(5)
        finally:
            await client.session.close()  # type: ignore[union-attr]
            await publisher.close()
    assert went.is_set()
    assert metrics.counts["slack_errors_total"] == 1
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1 and "open a modal" in lines[0], lines
    assert (
        "HTTP 200 from 127.0.0.1, not Slack's answer (text/plain: Service unavailable)" in lines[0]
    )
    assert not any(record.exc_info for record in caplog.records)


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
@pytest.mark.parametrize("retries", [False, True], ids=["outbox", "retrying"])
async def test_a_proxys_page_not_in_utf_8_is_no_slack_answer(
    content_type: str, retries: bool
) -> None:
    """A proxy's page in Latin-1 with no charset (Slack's answers are JSON, in UTF-8): slack_sdk
    decodes it as UTF-8 and raises the codec's UnicodeDecodeError, which no caller takes for
    Slack not answering (the outbox: "failed unexpectedly", a traceback, the lane paused the
    most). It is NoSlackAnswer, one line, as any other page that is not Slack's."""

    async def page(request: web.Request) -> web.Response:
        body = "Service indisponible, réessayez plus tard".encode("latin-1")
        return web.Response(status=503, body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_route("*", "/api/{method}", page)
    async with local_server(app) as base:
        client = slack_client(BOT_TOKEN, f"{base}/api/", retries=retries)
        try:
            with pytest.raises(NoSlackAnswer) as answered:
                await client.chat_postMessage(channel="C0ENT", text="a lead")
        finally:
            await client.session.close()  # type: ignore[union-attr]
    error = answered.value
    assert error.response.get("error") is None
    assert "not Slack's answer" in str(error) and "UTF-8" in str(error)
    assert "\n" not in str(error)
    assert str(error.response.api_url).endswith("/chat.postMessage")
