"""Nobody gets in where they don't belong: forged, stale or oversized requests change nothing.

Everything goes through the real aiohttp server: Slack requests signed (or mis-signed) like
Slack signs them, intake requests with good and bad credentials, and a log captured at DEBUG
for every library, checked for secrets.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.cli.stack import (
    BOT_TOKEN,
    INTAKE_TOKEN,
    SIGNING_SECRET,
    LocalStack,
    TravelClock,
    start_stack,
)
from bot.domain.policy import Policy
from bot.settings import Settings
from bot.simulator.driver import DriverResponse, SlackDriver
from handlers import http_routes
from tests.conftest import lead_payload, local_server

ENTERPRISE = "C0ENT"
FEEDBACK = "C0MKTFEED"
INTAKE_SIGNING_SECRET = "crm-webhook-signing-secret-0123456789"
MiB = 1024 * 1024
Headers = dict[str, str]

# -- Slack requests ------------------------------------------------------------------------------


def slack_signature(
    body: str,
    *,
    timestamp: int | str | None = None,
    secret: str = SIGNING_SECRET,
    signed_body: str | None = None,
    version: str = "v0",
) -> Headers:
    """Slack's signature headers for `body` (or, to forge, for `signed_body`)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:{body if signed_body is None else signed_body}"
    digest = hmac.new(secret.encode(), base.encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"{version}={digest}"}


def _without(headers: Headers, name: str) -> Headers:
    return {key: value for key, value in headers.items() if key != name}


# Each makes the signature headers for a body; Slack's verifier must refuse every one.
FORGERIES: dict[str, Callable[[str], Headers]] = {
    "signed with another secret": lambda body: slack_signature(body, secret="guessed-secret"),
    "no signature headers at all": lambda body: {},
    "a timestamp but no signature": lambda body: _without(
        slack_signature(body), "X-Slack-Signature"
    ),
    "a signature but no timestamp": lambda body: _without(
        slack_signature(body), "X-Slack-Request-Timestamp"
    ),
    "an empty signature": lambda body: {**slack_signature(body), "X-Slack-Signature": ""},
    "stale: correctly signed 6 minutes ago": lambda body: slack_signature(
        body, timestamp=int(time.time()) - 6 * 60
    ),
    "from the future: correctly signed 6 minutes ahead": lambda body: slack_signature(
        body, timestamp=int(time.time()) + 6 * 60
    ),
    "the signature of another body": lambda body: slack_signature(body, signed_body=body + "&"),
    "an unknown signature version": lambda body: slack_signature(body, version="v1"),
    "a timestamp that is not a number": lambda body: slack_signature(body, timestamp="now"),
    "a signature that is not ASCII": lambda body: {
        **slack_signature(body),
        "X-Slack-Signature": "v0=\u00e9",
    },
}


class ForgingDriver(SlackDriver):
    """Sends the driver's usual payloads, but with signature headers a test chooses."""

    def __init__(self, stack: LocalStack, headers: Callable[[str], Headers]) -> None:
        super().__init__(stack.driver.bot_url, SIGNING_SECRET, stack.sim)
        self.headers = headers

    async def send(
        self,
        body: str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
        bad_signature: bool = False,
        retry_num: int | None = None,
    ) -> DriverResponse:
        headers = {"Content-Type": content_type, **self.headers(body)}
        started = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            async with session.post(self.bot_url, data=body.encode(), headers=headers) as resp:
                text = await resp.text()
                parsed = json.loads(text) if text.startswith("{") else None
                elapsed = time.perf_counter() - started
                return DriverResponse(resp.status, text, parsed, dict(resp.headers), elapsed)


async def snapshot(stack: LocalStack) -> tuple[Any, ...]:
    """Everything a forged request could change: stored state and what Slack saw."""
    await stack.settle()
    store = stack.services.store
    leads = [await store.get(lead_id) for lead_id in range(1, await store.count_leads() + 1)]
    events = [await store.events(lead.id) for lead in leads if lead is not None]
    sim = stack.sim
    seen = [(call.method, json.dumps(call.args, sort_keys=True, default=str)) for call in sim.calls]
    views = [(view.id, view.closed) for view in sim.views]
    return leads, events, seen, [e.text for e in sim.ephemerals()], views


async def assert_every_forgery_refused(
    stack: LocalStack, act: Callable[[SlackDriver], Awaitable[DriverResponse]]
) -> None:
    """`act` sent with each forged signature gets 401 and leaves everything as it was."""
    before = await snapshot(stack)
    for name, headers in FORGERIES.items():
        forger = ForgingDriver(stack, headers)
        response = await act(forger)
        assert response.status == 401, f"{name}: answered {response.status} {response.body!r}"
        assert "Priya" not in response.body, f"{name}: the answer leaked lead data"
        assert await snapshot(stack) == before, f"{name}: something changed"


async def posted(stack: LocalStack) -> str:
    """Post the standard lead; the ts of its Slack message."""
    status, answer = await stack.post_lead(lead_payload())
    assert status == 201, answer
    await stack.settle()
    (message,) = stack.sim.messages(ENTERPRISE)
    return message.ts


async def test_forged_or_stale_slash_commands_are_refused_and_reveal_nothing(
    stack: LocalStack,
) -> None:
    await posted(stack)

    async def lookup(driver: SlackDriver) -> DriverResponse:
        return await driver.command("U0MGR1", "/lead", "hs-1@northwind.example")

    await assert_every_forgery_refused(stack, lookup)
    genuine = await lookup(stack.driver)  # the same request, signed, is answered
    assert genuine.status == 200 and "Priya Raman" in genuine.body


async def test_forged_or_stale_claim_presses_are_refused_with_no_state_change(
    stack: LocalStack,
) -> None:
    ts = await posted(stack)

    async def claim(driver: SlackDriver) -> DriverResponse:
        return await driver.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=ts)

    await assert_every_forgery_refused(stack, claim)
    assert (await stack.services.lead(1)).owner is None
    assert (await claim(stack.driver)).status == 200
    await stack.settle()
    assert (await stack.services.lead(1)).owner == "U0REP1"


async def test_forged_or_stale_view_submissions_are_refused_with_no_state_change(
    stack: LocalStack,
) -> None:
    ts = await posted(stack)
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=ts)
    await stack.settle()
    await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE, message_ts=ts)
    await stack.settle()
    view = stack.sim.latest_view("U0REP1")
    assert view is not None and view.callback_id == "lead_dispose_modal"
    values: dict[str, Any] = {"reason": "No budget", "note": "Budget frozen until July"}

    async def submit(driver: SlackDriver) -> DriverResponse:
        return await driver.submit_view("U0REP1", values, view_id=view.id)

    await assert_every_forgery_refused(stack, submit)
    assert (await stack.services.lead(1)).stage.value == "sal"
    assert stack.sim.messages(FEEDBACK) == []
    assert (await submit(stack.driver)).status == 200
    await stack.settle()
    assert (await stack.services.lead(1)).stage.value == "reject"


async def test_forged_events_are_refused(stack: LocalStack) -> None:
    await posted(stack)

    async def home(driver: SlackDriver) -> DriverResponse:
        return await driver.app_home_opened("U0REP1")

    await assert_every_forgery_refused(stack, home)
    assert stack.sim.calls_to("views.publish") == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param("payload=%7Bnot", "application/x-www-form-urlencoded", id="broken payload"),
        pytest.param("payload=%5B1%5D", "application/x-www-form-urlencoded", id="a list"),
        pytest.param("[1]", "application/json", id="a JSON list"),
        pytest.param(
            '{"type":"event_callback","event":{"type":"app_home_opened","user":5}}',
            "application/json",
            id="a number for a user",
        ),
        pytest.param(
            'payload={"type":"block_actions","user":5,"team":5}',
            "application/x-www-form-urlencoded",
            id="numbers for user and team",
        ),
    ],
)
async def test_a_forged_body_is_refused_before_it_is_read(
    stack: LocalStack, caplog: pytest.LogCaptureFixture, body: str, content_type: str
) -> None:
    """Whatever an unsigned body holds, it gets Slack's 401 and no error: the signature is
    checked before anything parses it."""
    await posted(stack)
    before = await snapshot(stack)
    for name in ("signed with another secret", "stale: correctly signed 6 minutes ago"):
        headers = {"Content-Type": content_type, **FORGERIES[name](body)}
        async with stack.session.post(stack.driver.bot_url, data=body, headers=headers) as answer:
            assert (answer.status, await answer.json()) == (401, {"error": "invalid request"})
    assert await snapshot(stack) == before
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_signed_body_that_is_not_a_slack_payload_gets_400(stack: LocalStack) -> None:
    for body in ("payload=%7Bnot", "payload=%5B1%5D"):
        headers = {"Content-Type": "application/x-www-form-urlencoded", **slack_signature(body)}
        async with stack.session.post(stack.driver.bot_url, data=body, headers=headers) as answer:
            assert answer.status == 400, body
            assert (await answer.json())["error"].startswith("invalid request")


# -- Intake ---------------------------------------------------------------------------------------


async def intake(
    stack: LocalStack,
    headers: Headers,
    body: bytes | None = None,
    *,
    base_url: str | None = None,
    path: str = "/leads",
) -> tuple[int, Any]:
    """POST raw bytes (the standard lead unless given) with exactly these headers."""
    data = json.dumps(lead_payload()).encode() if body is None else body
    url = f"{base_url or stack.base_url}{path}"
    headers = {"Content-Type": "application/json", **headers}
    async with stack.session.post(url, data=data, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def assert_nothing_stored(stack: LocalStack) -> None:
    await stack.settle()
    assert await stack.services.store.count_leads() == 0
    assert stack.sim.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing header"),
        pytest.param("", id="empty header"),
        pytest.param("Bearer wrong-token-of-another-length", id="wrong token"),
        pytest.param("Bearer " + INTAKE_TOKEN[:-1] + "X", id="wrong token of the same length"),
        pytest.param("Bearer " + INTAKE_TOKEN[:-1], id="a prefix of the token"),
        pytest.param("Bearer " + INTAKE_TOKEN + "x", id="the token and more"),
        pytest.param("Basic " + INTAKE_TOKEN, id="Basic scheme"),
        pytest.param(INTAKE_TOKEN, id="no scheme"),
        pytest.param("Bearer", id="scheme without token"),
        pytest.param("Bearer  " + INTAKE_TOKEN, id="two spaces"),
        pytest.param("Bearer " + INTAKE_TOKEN + "\u00e9", id="non-ASCII"),
    ],
)
async def test_intake_refuses_bad_tokens_and_stores_nothing(
    stack: LocalStack, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for path in ("/leads", "/leads/hs-1/activity"):
        status, answer = await intake(stack, headers, path=path)
        assert status == 401, answer
        assert answer == {
            "error": "unauthorized: bad or missing bearer token (see HANDOFF_INTAKE_TOKEN)"
        }
    await assert_nothing_stored(stack)


async def test_intake_without_a_configured_token_refuses_everything(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    local = await start_stack(sqlite_url, policy, clock=clock, HANDOFF_INTAKE_TOKEN="")
    try:
        for authorization in ("Bearer ", "Bearer None", f"Bearer {INTAKE_TOKEN}"):
            status, answer = await intake(local, {"Authorization": authorization})
            assert (status, answer) == (
                401,
                {"error": "unauthorized: intake is disabled (see HANDOFF_INTAKE_TOKEN)"},
            )
        await assert_nothing_stored(local)
    finally:
        await local.close()


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def padded_lead(size: int) -> bytes:
    """A valid lead whose JSON is exactly `size` bytes long."""
    base = json.dumps({**lead_payload(), "pad": ""}).encode()
    return base[:-2] + b"x" * (size - len(base)) + b'"}'


@pytest.mark.parametrize("size", [MiB + 1, MiB + 32 * 1024, 3 * MiB])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_oversized_intake_is_refused_and_stores_nothing(
    stack: LocalStack, size: int, chunked: bool
) -> None:
    body = padded_lead(size)
    assert len(body) == size and json.loads(body)["external_id"] == "hs-1"
    data: Any = _chunks(body) if chunked else body
    headers = {"Authorization": f"Bearer {INTAKE_TOKEN}", "Content-Type": "application/json"}
    async with stack.session.post(f"{stack.base_url}/leads", data=data, headers=headers) as resp:
        assert resp.status == 413
        assert await resp.json() == {"error": f"request body is over the {MiB} byte limit"}
    await assert_nothing_stored(stack)
    status, _ = await stack.post_lead(None, raw=padded_lead(MiB))  # exactly the limit is fine
    assert status == 201


def _with(fragment: bytes) -> bytes:
    """The standard lead with `fragment` added as its last member."""
    return json.dumps(lead_payload()).encode()[:-1] + b", " + fragment + b"}"


BAD_BODIES = [
    pytest.param(b"[" * 200_000 + b"]" * 200_000, "nests deeper than 32 levels", id="200k-nested"),
    pytest.param(_with(b'"x": ' + b"[" * 33 + b"1" + b"]" * 33), "nests deeper", id="34-levels"),
    pytest.param(_with(b'"score": NaN'), "NaN is not a JSON number", id="NaN"),
    pytest.param(_with(b'"score": -Infinity'), "numbers must be finite", id="-Infinity"),
    pytest.param(_with(b'"score": 1e999'), "the number 1e999 is too large", id="1e999"),
    pytest.param(_with(b'"score": ' + b"9" * 5000), "a number in the body is too large", id="5000"),
    pytest.param(_with(b'"email": "other@x.example"'), "key 'email' appears twice", id="dup-key"),
    pytest.param(b'{"external_id": "hs-1", "email": "a\xff@b.example"}', "not UTF-8", id="latin-1"),
    pytest.param(b'{"external_id": "hs-1",', "not valid JSON", id="truncated"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
async def test_intake_answers_bad_bodies_with_400_and_stores_nothing(
    stack: LocalStack, body: bytes, message: str
) -> None:
    """Issue 16: every malformed body gets a 400 with the `errors` list naming the problem, and
    nothing is stored (a body of 200,000 nested `[` used to be a 500)."""
    answer_status, answer = await intake(stack, {"Authorization": f"Bearer {INTAKE_TOKEN}"}, body)
    assert answer_status == 400, answer
    (error,) = answer["errors"]
    assert error["field"] == "(body)" and message in error["message"], error
    await assert_nothing_stored(stack)
    status, _ = await stack.post_lead(lead_payload())  # and the server is fine
    assert status == 201


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
@pytest.mark.parametrize("path", ["/leads", "/leads/hs-1/activity"])
async def test_intake_answers_a_body_its_content_encoding_does_not_fit_with_400(
    stack: LocalStack, caplog: pytest.LogCaptureFixture, coding: str, path: str
) -> None:
    """A body that says `Content-Encoding: gzip` (or deflate) and is not (a sender's proxy
    that sets the header twice, say) is malformed: a 400 naming the header, with nothing
    stored and no traceback in the log; it used to be a 500 logged as a failure."""
    headers = {"Authorization": f"Bearer {INTAKE_TOKEN}", "Content-Encoding": coding}
    with caplog.at_level(logging.INFO):
        status, answer = await intake(stack, headers, path=path)
    assert status == 400, answer
    (error,) = answer["errors"]
    assert error["field"] == "(body)" and f"Content-Encoding: {coding}" in error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    await assert_nothing_stored(stack)
    compressed = gzip.compress(json.dumps(lead_payload()).encode())
    status, answer = await intake(stack, {**headers, "Content-Encoding": "gzip"}, compressed)
    assert status == 201, answer  # a body that is what it says is taken as before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_intake_refuses_a_body_not_sent_as_json_with_415(
    stack: LocalStack, content_type: str
) -> None:
    headers = {"Authorization": f"Bearer {INTAKE_TOKEN}", "Content-Type": content_type}
    status, answer = await intake(stack, headers)
    assert status == 415
    assert f"Content-Type: application/json, not {content_type}" in answer["errors"][0]["message"]
    await assert_nothing_stored(stack)
    status, answer = await intake(stack, {**headers, "Content-Type": "application/vnd.x+json"})
    assert status == 201, answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_oversized_slack_requests_are_refused_with_no_state_change(
    stack: LocalStack, chunked: bool
) -> None:
    ts = await posted(stack)
    before = await snapshot(stack)

    def padded(body: str) -> str:
        return body + "&pad=" + "x" * MiB

    class Padding(ForgingDriver):
        async def send(self, body: str, **options: Any) -> DriverResponse:
            body = padded(body)
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            headers.update(slack_signature(body))  # correctly signed: only the size is wrong
            data: Any = _chunks(body.encode()) if chunked else body.encode()
            async with stack.session.post(self.bot_url, data=data, headers=headers) as resp:
                return DriverResponse(resp.status, await resp.text(), None, {}, 0.0)

    padding = Padding(stack, lambda body: {})
    response = await padding.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=ts)
    assert response.status == 413
    assert json.loads(response.body) == {"error": f"request body is over the {MiB} byte limit"}
    assert await snapshot(stack) == before


# -- Intake signatures (HMAC) ---------------------------------------------------------------------


def intake_signature(
    body: bytes, *, timestamp: int | str | None = None, secret: str = INTAKE_SIGNING_SECRET
) -> Headers:
    """The headers a CRM sends when HANDOFF_INTAKE_SIGNING_SECRET is set (docs/intake.md)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Authorization": f"Bearer {INTAKE_TOKEN}",
        "X-Handoff-Timestamp": ts,
        "X-Handoff-Signature": f"sha256={digest}",
    }


@asynccontextmanager
async def signed_intake_server(stack: LocalStack, clock: TravelClock) -> AsyncIterator[str]:
    """A second real server on the stack's services whose intake requires signatures."""
    handoff = stack.handoff
    application = web.Application(
        client_max_size=http_routes.MAX_BODY + 64 * 1024, middlewares=[http_routes.no_tracebacks]
    )
    application.add_routes(
        http_routes.routes(
            handoff.services,
            handoff.bolt,
            handoff.metrics,
            INTAKE_TOKEN,
            clock,
            intake_signing_secret=INTAKE_SIGNING_SECRET,
        )
    )
    async with local_server(application) as base:
        yield base


@pytest.fixture
async def signed_url(stack: LocalStack, clock: TravelClock) -> AsyncIterator[str]:
    async with signed_intake_server(stack, clock) as url:
        yield url


BODY = json.dumps(lead_payload()).encode()
BAD_SIGNATURES: dict[str, tuple[Callable[[], Headers], str]] = {
    "no signature headers": (lambda: {"Authorization": f"Bearer {INTAKE_TOKEN}"}, "missing"),
    "no X-Handoff-Signature": (
        lambda: _without(intake_signature(BODY), "X-Handoff-Signature"),
        "missing X-Handoff-Signature header",
    ),
    "no X-Handoff-Timestamp": (
        lambda: _without(intake_signature(BODY), "X-Handoff-Timestamp"),
        "missing X-Handoff-Timestamp header",
    ),
    "signed with another secret": (
        lambda: intake_signature(BODY, secret="guessed"),
        "X-Handoff-Signature does not match the body",
    ),
    "signature of another body": (
        lambda: intake_signature(BODY + b" "),
        "X-Handoff-Signature does not match the body",
    ),
    "signature not in the sha256= form": (
        lambda: {**intake_signature(BODY), "X-Handoff-Signature": "deadbeef"},
        "X-Handoff-Signature does not match the body",
    ),
    "stale: signed 6 minutes ago": (
        lambda: intake_signature(BODY, timestamp=int(time.time()) - 6 * 60),
        "X-Handoff-Timestamp is more than 5 minutes away",
    ),
    "from the future: 6 minutes ahead": (
        lambda: intake_signature(BODY, timestamp=int(time.time()) + 6 * 60),
        "X-Handoff-Timestamp is more than 5 minutes away",
    ),
    "timestamp not a number": (
        lambda: intake_signature(BODY, timestamp="1e9"),
        "X-Handoff-Timestamp must be Unix time in seconds",
    ),
    "timestamp moved after signing": (
        lambda: {**intake_signature(BODY), "X-Handoff-Timestamp": str(int(time.time()) - 1)},
        "X-Handoff-Signature does not match the body",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SIGNATURES))
async def test_signed_intake_refuses_missing_bad_and_stale_signatures(
    stack: LocalStack, signed_url: str, case: str
) -> None:
    headers, expected = BAD_SIGNATURES[case]
    for path in ("/leads", "/leads/hs-1/activity"):
        status, answer = await intake(stack, headers(), BODY, base_url=signed_url, path=path)
        assert status == 401, answer
        assert answer["error"].startswith("unauthorized: ") and expected in answer["error"]
    await assert_nothing_stored(stack)


async def test_signed_intake_still_requires_the_bearer_token(
    stack: LocalStack, signed_url: str
) -> None:
    for authorization in ("Bearer wrong", None):
        headers = intake_signature(BODY)
        if authorization is None:
            del headers["Authorization"]
        else:
            headers["Authorization"] = authorization
        status, answer = await intake(stack, headers, BODY, base_url=signed_url)
        assert status == 401 and "HANDOFF_INTAKE_TOKEN" in answer["error"]
    await assert_nothing_stored(stack)


async def test_signed_intake_accepts_a_valid_signature(stack: LocalStack, signed_url: str) -> None:
    status, answer = await intake(stack, intake_signature(BODY), BODY, base_url=signed_url)
    assert (status, answer) == (201, {"id": 1, "status": "mql"})
    upper = intake_signature(BODY)
    upper["X-Handoff-Signature"] = "sha256=" + upper["X-Handoff-Signature"][7:].upper()
    status, answer = await intake(stack, upper, BODY, base_url=signed_url)
    assert (status, answer["id"]) == (200, 1)  # a duplicate, accepted as such
    activity = await intake(
        stack, intake_signature(b"{}"), b"{}", base_url=signed_url, path="/leads/hs-1/activity"
    )
    assert activity[0] == 400  # past authentication: the empty activity is refused as such
    status, _ = await intake(stack, {"Authorization": f"Bearer {INTAKE_TOKEN}"})
    assert status == 201 or status == 200  # the ordinary server needs no signature


async def test_serve_enforces_a_configured_intake_signing_secret(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    local = await start_stack(
        sqlite_url, policy, clock=clock, HANDOFF_INTAKE_SIGNING_SECRET=INTAKE_SIGNING_SECRET
    )
    try:
        status, answer = await intake(local, {"Authorization": f"Bearer {INTAKE_TOKEN}"}, BODY)
        assert status == 401 and "X-Handoff-Signature" in answer["error"]
        assert (await intake(local, intake_signature(BODY), BODY))[0] == 201
    finally:
        await local.close()


# -- Secrets never logged ------------------------------------------------------------------------


ERASURE = "erasure-key-that-must-never-be-shown-0123"


def test_settings_do_not_show_secrets() -> None:
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_APP_TOKEN": "xapp-secret-app-token",
            "HANDOFF_INTAKE_TOKEN": INTAKE_TOKEN,
            "HANDOFF_INTAKE_SIGNING_SECRET": INTAKE_SIGNING_SECRET,
            "HANDOFF_ERASURE_KEY": ERASURE,
        }
    )
    shown = repr(settings) + str(settings)
    secrets = (BOT_TOKEN, SIGNING_SECRET, "xapp-secret", INTAKE_TOKEN, INTAKE_SIGNING_SECRET)
    for secret in (*secrets, ERASURE):
        assert secret not in shown
    assert settings.intake_signing_secret == INTAKE_SIGNING_SECRET


async def test_secrets_never_reach_the_log(
    sqlite_url: str, policy: Policy, clock: TravelClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("slack_sdk", "slack_bolt", "aiohttp", "handoff", "asyncio", "sqlalchemy"):
        caplog.set_level(logging.DEBUG, logger=name)
    local = await start_stack(
        sqlite_url, policy, clock=clock, HANDOFF_INTAKE_SIGNING_SECRET=INTAKE_SIGNING_SECRET
    )
    try:
        async with signed_intake_server(local, clock) as signed_url:
            assert (await intake(local, intake_signature(BODY), BODY, base_url=signed_url))[
                0
            ] == 201
            forged = intake_signature(BODY, secret="guessed")
            assert (await intake(local, forged, BODY, base_url=signed_url))[0] == 401
            assert (await intake(local, {"Authorization": "Bearer nope"}))[0] == 401
        await local.settle()
        (message,) = local.sim.messages(ENTERPRISE)
        local.sim.inject("chat.update", error="invalid_auth", times=1)
        await local.driver.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=message.ts)
        await local.driver.press("U0REP2", "Claim", channel=ENTERPRISE, message_ts=message.ts)
        await local.driver.press("U0REP2", "Claim", channel=ENTERPRISE, bad_signature=True)
        await local.driver.command("U0MGR1", "/lead", "hs-1")
        # invalid_auth stops deliveries until auth.test, asked a minute later, accepts the token
        outbox = local.handoff.outbox
        for _ in range(500):
            if outbox.token_refused is not None:
                break
            await asyncio.sleep(0.02)
        assert outbox.token_refused is not None, "Slack's refusal did not stop deliveries"
        clock.advance(minutes=2)
        await local.settle()
        await asyncio.sleep(0.1)
        assert local.sim.calls_to("chat.update"), "the failing Slack call was never made"
        assert local.sim.calls_to("auth.test"), "deliveries resumed without asking Slack"
    finally:
        await local.close()
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert "slack_sdk" in logged and "slack_bolt" in logged  # DEBUG logging really was on
    for name, secret in {
        "bot token": BOT_TOKEN,
        "signing secret": SIGNING_SECRET,
        "intake token": INTAKE_TOKEN,
        "intake signing secret": INTAKE_SIGNING_SECRET,
    }.items():
        assert secret not in logged, f"the {name} was logged"


async def test_a_forged_press_is_logged_without_its_body(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    ts = await posted(stack)
    caplog.set_level(logging.DEBUG)  # as `serve` at INFO would: Bolt's verifier logs at INFO
    caplog.set_level(logging.DEBUG, logger="slack_bolt.RequestVerification")
    forger = ForgingDriver(stack, FORGERIES["signed with another secret"])

    response = await forger.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=ts)

    assert response.status == 401
    logged = [record.getMessage() for record in caplog.records]
    assert any("Slack's signature does not hold" in line for line in logged)  # operators see it
    # ...but not the payload, which carries the pressed message with the lead's data
    assert not [line for line in logged if "Priya" in line or "payload=" in line]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"type": "block_actions", "actions": "x"}, id="actions a string"),
        pytest.param({"type": "block_actions", "actions": []}, id="no action"),
        pytest.param({"type": "block_actions", "actions": ["x"]}, id="an action a string"),
        pytest.param({"type": "block_actions", "actions": [{"action_id": 5}]}, id="id a number"),
        pytest.param({"type": "view_submission", "view": "x"}, id="view a string"),
    ],
)
async def test_a_signed_payload_slack_would_not_send_is_answered_without_an_error(
    stack: LocalStack, caplog: pytest.LogCaptureFixture, payload: dict[str, Any]
) -> None:
    """Signed (from Slack, or whoever holds the secret) but not shaped as Slack sends it: no
    500 and no error in the log; nothing changes."""
    await posted(stack)
    leads, events, _, whispers, views = await snapshot(stack)
    sent = len(stack.sim.calls)
    body = {"user": {"id": "U0REP1"}, "team": {"id": "T0SIM"}, **payload}
    form = f"payload={json.dumps(body)}"
    headers = {"Content-Type": "application/x-www-form-urlencoded", **slack_signature(form)}
    async with stack.session.post(stack.driver.bot_url, data=form, headers=headers) as answer:
        assert answer.status < 500, await answer.text()
    after = await snapshot(stack)  # (Bolt may ask auth.test who the token is: no change)
    assert (after[0], after[1], after[3], after[4]) == (leads, events, whispers, views)
    assert [c.method for c in stack.sim.calls[sent:] if c.method.startswith("chat.")] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_slack_events_answers_slacks_url_verification_with_its_challenge(
    stack: LocalStack,
) -> None:
    """SPEC: `POST /slack/events` takes every Slack request. Setting the Events API's request
    URL, Slack sends a signed `url_verification` and expects its `challenge` back, as JSON
    `{"challenge": …}` if we like (https://api.slack.com/events/url_verification); Slack's
    `ssl_check` gets a 200."""
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = json.dumps({"token": "t", "challenge": challenge, "type": "url_verification"})
    headers = {"Content-Type": "application/json", **slack_signature(body)}
    async with stack.session.post(stack.driver.bot_url, data=body, headers=headers) as answer:
        assert answer.status == 200
        assert (await answer.json())["challenge"] == challenge
    form = "ssl_check=1&token=t"
    headers = {"Content-Type": "application/x-www-form-urlencoded", **slack_signature(form)}
    async with stack.session.post(stack.driver.bot_url, data=form, headers=headers) as answer:
        assert answer.status == 200
