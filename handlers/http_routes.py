"""HTTP routes: lead intake, CRM activity, health, metrics, and Slack's single events endpoint."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from functools import lru_cache
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout

from bot import logs
from bot.crm.port import BadPayload, BadSignature
from bot.domain import strict_json
from bot.domain.intake import FieldError
from bot.domain.refusal import Refusal
from bot.metrics import CONTENT_TYPE, Metrics
from bot.services.backlog import Backlog
from bot.services.crm_inbound import CrmInboundService
from bot.services.health import CrmState, Readiness, crm_health
from bot.services.leads import AlreadyRecorded, Invalid, Services
from bot.slack.publisher import Clock
from bot.traffic import Traffic
from handlers import openapi
from handlers.context import check_shape
from handlers.observe import request_kind

log = logging.getLogger("handoff.http")
MAX_BODY = 1024 * 1024  # 1 MiB
DATABASE_RETRY_AFTER = 5  # seconds, when the database does not answer
MAX_CLOCK_SKEW = 5 * 60  # seconds an intake signature stays valid, as Slack's
SIGNATURE_HEADER = "X-Handoff-Signature"
TIMESTAMP_HEADER = "X-Handoff-Timestamp"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refused(Exception):
    """A request turned away before anything changed, with a message for the sender (with
    `field`, a 400 in the `errors` list of the intake routes)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


# A request refused as invalid (400, 413 too large, 415 not sent as JSON), not as unauthorized.
INVALID = frozenset({400, 413, 415})


CRM_SECRETS = {
    "hubspot": "HUBSPOT_CLIENT_SECRET",
    "salesforce": "HANDOFF_SALESFORCE_WEBHOOK_TOKEN",
}


def public_url(request: web.Request) -> str:
    """The URL the sender used, as it signs it: behind a proxy that ends TLS, the scheme it
    names in `X-Forwarded-Proto`; the host and the path with its query exactly as sent."""
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    return f"{scheme or request.scheme}://{request.host}{request.raw_path}"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,100}$")


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Each request's id (the caller's `X-Request-Id` if it is a sane one, else a new one):
    on every log line it causes, and echoed in the answer so both sides can find it."""
    given = request.headers.get("X-Request-Id", "")
    request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
    logs.bind(request_id=request_id)
    response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def no_tracebacks(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Whatever fails, the client gets a short JSON error, never a stack trace; a Refusal of
    the domain gets its reason's status (`Reason.status`)."""
    try:
        return await handler(request)
    except Refused as refused:
        # One line for the operator (the request id is on it; the answer says the rest):
        # a refused sender was invisible in the log.
        log.info(
            "%s %s refused (%d): %s",
            request.method,
            _route(request),
            refused.status,
            refused.field or refused.message[:120],
        )
        if refused.field is not None:
            errors = [{"field": refused.field, "message": refused.message}]
            return web.json_response({"errors": errors}, status=refused.status)
        return _error(refused.status, refused.message)
    except Refusal as refusal:
        # The reason's name, not its message: a message may name the lead.
        log.info(
            "%s %s refused (%d): %s",
            request.method,
            _route(request),
            refusal.reason.status,
            refusal.reason.name.lower(),
        )
        answer = _error(refusal.reason.status, refusal.message)
        if refusal.retry_after is not None:
            answer.headers["Retry-After"] = str(refusal.retry_after)
        return answer
    except (OperationalError, SQLAlchemyTimeout, ConnectionError, TimeoutError):
        # The database does not answer (down, unreachable, or every connection busy): the
        # transaction was rolled back, and intake is idempotent, so the sender should retry.
        log.warning("%s %s: the database does not answer", request.method, request.path)
        answer = _error(
            503, "the database does not answer: nothing was changed; send it again later"
        )
        answer.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return answer
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"request body is over the {MAX_BODY} byte limit")
    except web.HTTPException as error:
        if error.status >= 400:
            return _error(error.status, error.reason)
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _error(500, "internal error: nothing was changed; the server log has the details")


def _route(request: web.Request) -> str:
    """The route's pattern (`/leads/{external_id}/activity`): a path can carry a lead's id."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "(no route)"


def _same(given: str, expected: str) -> bool:
    """Constant time whatever the lengths: compares SHA-256 digests of both strings."""
    return hmac.compare_digest(_digest(given), _digest(expected))


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


# The intake token's digest, made once: the same secret on every request.
_token_digest = lru_cache(maxsize=4)(_digest)


def check_bearer(authorization: str, intake_token: str | None) -> None:
    """Raise Refused unless `authorization` is `Bearer <intake_token>`."""
    if not intake_token:
        raise Refused(401, "unauthorized: intake is disabled (see HANDOFF_INTAKE_TOKEN)")
    scheme, _, token = authorization.partition(" ")
    # Compare the token even when the scheme is wrong, so timing tells nothing apart.
    same = hmac.compare_digest(_digest(token), _token_digest(intake_token))
    if not same or scheme.lower() != "bearer":
        raise Refused(401, "unauthorized: bad or missing bearer token (see HANDOFF_INTAKE_TOKEN)")


def sign_body(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Handoff-Signature value for `body` sent at `timestamp` (Unix seconds)."""
    signed = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def check_body_signature(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
    """Raise Refused unless the body carries a fresh HMAC-SHA256 signature made with `secret`."""
    hint = "(HANDOFF_INTAKE_SIGNING_SECRET is set; see docs/intake.md on intake signatures)"
    signature = headers.get(SIGNATURE_HEADER, "").strip()
    timestamp = headers.get(TIMESTAMP_HEADER, "").strip()
    if not signature:
        raise Refused(401, f"unauthorized: missing {SIGNATURE_HEADER} header {hint}")
    if not timestamp:
        raise Refused(401, f"unauthorized: missing {TIMESTAMP_HEADER} header {hint}")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Refused(401, f"unauthorized: {TIMESTAMP_HEADER} must be Unix time in seconds")
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW:
        raise Refused(
            401,
            f"unauthorized: {TIMESTAMP_HEADER} is more than 5 minutes away from the server's "
            "clock (a replayed request, or a sender whose clock is off)",
        )
    if not _same(signature.lower(), sign_body(secret, timestamp, body)):
        raise Refused(
            401,
            f"unauthorized: {SIGNATURE_HEADER} does not match the body; expected sha256=<hex "
            f"HMAC-SHA256 of '<{TIMESTAMP_HEADER}>.<body>'> {hint}",
        )


_SLACK_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


def check_slack_request(
    headers: Mapping[str, str], body: bytes, verifier: SignatureVerifier | None = None
) -> None:
    """Refuse, before anything reads the body, a request Slack did not sign: its timestamp
    and signature as Slack sends them ("Verifying requests from Slack": `v0=` and the hex
    HMAC-SHA256, within 5 minutes), checked with `verifier` (Bolt checks again, later). A
    forged body is never parsed, so it cannot crash the parser."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "0")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Refused(401, "invalid request: X-Slack-Request-Timestamp is not Unix time")
    signature = headers.get("X-Slack-Signature", "")
    if verifier is not None and not (
        _SLACK_SIGNATURE.fullmatch(signature) and verifier.is_valid(body, timestamp, signature)
    ):
        # Said to operators, without the body (it may carry a lead's data).
        log.warning("refused a request to /slack/events: Slack's signature does not hold")
        raise Refused(401, "invalid request")
    try:
        body.decode()
    except UnicodeDecodeError:
        raise Refused(400, "invalid request: the body is not UTF-8") from None


async def read_body(request: web.Request) -> bytes:
    """The whole body; Refused (413) past MAX_BODY, whether or not it declared a length."""
    too_large = Refused(413, f"request body is over the {MAX_BODY} byte limit")
    if (request.content_length or 0) > MAX_BODY:
        raise too_large
    try:
        body = await request.read()  # aiohttp stops at client_max_size, just above MAX_BODY
    except web.RequestPayloadError:
        # The body is not what its Content-Encoding says (gzip or deflate that does not
        # decompress): malformed, like a body that is not JSON (RFC 9110 8.4: the coding
        # is the sender's to apply). Nothing was read, so nothing changes. The rest of such a
        # body is not read either: the connection closes after the answer (aiohttp would
        # read on into the broken body, and log the same failure again as unhandled).
        request.protocol.close()
        request.content.feed_eof()
        coding = request.headers.get("Content-Encoding", "")[:40]
        raise Refused(
            400,
            f"the body cannot be decoded as its Content-Encoding: {coding} says; send it "
            "encoded as declared, or without Content-Encoding",
            field="(body)",
        ) from None
    if len(body) > MAX_BODY:
        raise too_large
    return body


async def read_json(request: web.Request, intake_token: str | None, secret: str | None) -> Any:
    """The JSON body of an intake request whose token (and signature, if configured) hold;
    refused as `parse_json` says if it is not JSON as it should be."""
    check_bearer(request.headers.get("Authorization", ""), intake_token)
    body = await read_body(request)
    if secret:
        check_body_signature(request.headers, body, secret, time.time())
    return parse_json(body, request.content_type)


def parse_json(body: bytes, content_type: str) -> Any:
    """The body as JSON, strictly: 415 unless it is declared JSON (`application/json` or
    `…+json`); 400, naming the problem, if it is not UTF-8, is not JSON, has a number that is
    not finite (`NaN`, `Infinity`, `1e999`), a key twice in one object, or nests too deep
    (`bot/domain/strict_json.py`). The answer is the `errors` list, with nothing changed; no
    body can cause a 5xx."""
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise Refused(
            415,
            "the body must be JSON sent as Content-Type: application/json, "
            f"not {content_type[:80]}",
            field="(body)",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Refused(400, f"the body is not UTF-8 (byte {error.start})", field="(body)") from None
    try:
        value = strict_json.loads(text)
    except strict_json.NotJson as error:
        raise Refused(400, str(error), field="(body)") from None
    return value


def _admitted(backlog: Backlog | None) -> AbstractAsyncContextManager[None]:
    """The backlog's admission (nothing without one), without a generator of its own around
    it: intake enters it on every request."""
    return nullcontext() if backlog is None else backlog.admitted()


def _field_errors(fields: list[tuple[str, str]]) -> web.Response:
    """400 naming each field that is wrong."""
    errors = [{"field": name, "message": message} for name, message in fields]
    return web.json_response({"errors": errors}, status=400)


def _errors(errors: list[FieldError]) -> web.Response:
    return web.json_response({"errors": [error.model_dump() for error in errors]}, status=400)


def routes(
    services: Services,
    bolt: AsyncApp,
    metrics: Metrics,
    intake_token: str | None,
    clock: Clock,
    *,
    intake_signing_secret: str | None = None,
    slack_signing_secret: str | None = None,
    traffic: Traffic | None = None,
    backlog: Backlog | None = None,
    readiness: Readiness | None = None,
    crm: CrmState | None = None,
    crm_inbound: CrmInboundService | None = None,
) -> list[web.RouteDef]:
    """The server's routes, bound to the running services."""

    # Looked up once, not per request; both read 0 from the start ("Avoid missing metrics").
    timed_leads = metrics.intake_seconds.labels(route="leads")
    timed_activity = metrics.intake_seconds.labels(route="activity")

    async def intake(request: web.Request) -> web.Response:
        with timed_leads.time():
            async with _admitted(backlog):
                try:
                    return await take_lead(request)
                except Refused as refused:
                    if refused.status in INVALID:  # a body not JSON is a bad lead too
                        metrics.inc("leads_invalid_total")
                    elif refused.status == 401:  # a rotated token: every lead refused
                        metrics.inc("leads_unauthorized_total")
                    raise

    async def take_lead(request: web.Request) -> web.Response:
        payload = await read_json(request, intake_token, intake_signing_secret)
        if backlog is not None:
            await backlog.admit()
        result = await services.intake(payload, clock(), source="api")
        if isinstance(result, Invalid):
            metrics.inc("leads_invalid_total")
            fields = ", ".join(sorted({error.field for error in result.errors}))
            log.info("intake: refused (400): %s", fields[:200])  # names, not values
            return _errors(result.errors)
        erased = result.lead.erased_at is not None  # sent again after `handoff forget`
        answer: dict[str, Any] = {
            "id": result.lead.id,
            "status": "erased" if erased else result.lead.stage.value,
        }
        if result.requalified:  # posted again as a new cycle
            metrics.inc("leads_requalified_total")
            return web.json_response(answer | {"cycle": result.lead.cycle}, status=201)
        if result.message:
            answer["message"] = result.message
        metrics.inc("leads_received_total" if result.created else "leads_duplicate_total")
        status = 201 if result.created else 200
        logs.bind(lead_id=result.lead.id)
        log.info("intake: lead %d is %s (%d)", result.lead.id, result.lead.stage.value, status)
        return web.json_response(answer, status=status)

    async def health(_: web.Request) -> web.Response:
        """Liveness: the process answers. What it depends on is said, not judged: a liveness
        probe that failed with the database restarted every replica in a database outage,
        which mends nothing (`/readyz` takes a replica out of rotation instead)."""
        try:
            await services.store.ping()
            database = "ok"
        except Exception as error:  # the point of a health check is to say so, not to raise
            database = f"does not answer: {str(error)[:200]}"
        answer = {"ok": True, "database": database, "sla": services.policy.version}
        # Alive even while the CRM refuses our writes: it shows degraded, the status stays 200.
        return web.json_response(answer | {"crm": crm_health(crm)})

    async def ready(_: web.Request) -> web.Response:
        checks = await readiness.checks() if readiness is not None else []
        named = {check.name: {"ok": check.ok, "detail": check.detail} for check in checks}
        ok = all(check.ok for check in checks)
        return web.json_response({"ready": ok, "checks": named}, status=200 if ok else 503)

    async def prometheus(_: web.Request) -> web.Response:
        await metrics.refresh()
        answer = web.Response(body=metrics.render())
        answer.headers["Content-Type"] = CONTENT_TYPE  # text/plain; version=0.0.4
        return answer

    busy = traffic or Traffic()
    verifier = SignatureVerifier(slack_signing_secret) if slack_signing_secret else None

    async def slack_events(request: web.Request) -> web.Response:
        with busy.request():  # the outbox lets Slack's acks go first
            started = time.perf_counter()  # Slack waits from here to the answer
            body = await read_body(request)  # Bolt's adapter reads the same, now cached, body
            check_slack_request(request.headers, body, verifier)
            try:
                bolt_request = await to_bolt_request(request)
                check_shape(bolt_request.body)  # what Bolt itself reads before any listener
            except (ValueError, TypeError, AttributeError, KeyError, IndexError):
                raise Refused(400, "invalid request: the body is not a Slack payload") from None
            try:
                return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
            finally:
                kind = request_kind(bolt_request.body)
                metrics.ack_seconds.labels(kind=kind).observe(time.perf_counter() - started)

    async def activity(request: web.Request) -> web.Response:
        with timed_activity.time():
            async with _admitted(backlog):
                try:
                    return await take_activity(request)
                except Refused as refused:
                    if refused.status in INVALID:
                        metrics.inc("activity_invalid_total")
                    elif refused.status == 401:  # the intake token rotated: the CRM's too
                        metrics.inc("activity_unauthorized_total")
                    raise

    async def take_activity(request: web.Request) -> web.Response:
        payload = await read_json(request, intake_token, intake_signing_secret)
        if backlog is not None:
            await backlog.admit()
        external_id = request.match_info["external_id"]
        result = await services.activity(external_id, payload, clock())
        if isinstance(result, Invalid):
            metrics.inc("activity_invalid_total")
            return _errors(result.errors)
        if isinstance(result, AlreadyRecorded):  # what it asked for is there already
            repeat = {"lead_id": result.lead_id, "recorded": None, "message": result.message}
            return web.json_response(repeat, status=200)
        if result.recorded["type"] == "attempt":
            metrics.inc("attempts_total")
        if result.first_touch_minutes is not None:
            metrics.first_touch_seconds.observe(60 * result.first_touch_minutes)
        answer = {"lead_id": result.lead_id, "recorded": result.recorded}
        return web.json_response(answer, status=201)

    def crm_webhook(source: str) -> Handler:
        async def taken(request: web.Request) -> web.Response:
            async with _admitted(backlog):
                return await crm_changes(source, request)

        return taken

    async def crm_changes(source: str, request: web.Request) -> web.Response:
        """A CRM's webhook (docs/crm-inbound.md): verified, parsed, each change applied once."""
        adapter = crm_inbound.adapter(source) if crm_inbound is not None else None
        if crm_inbound is None or adapter is None:
            secret = CRM_SECRETS.get(source, "its secret")
            raise Refused(404, f"no CRM configured: set {secret} to take {source}'s webhooks")
        body = await read_body(request)
        now = clock()
        try:
            adapter.verify(request.method, public_url(request), request.headers, body, now)
        except BadSignature as refused:
            log.warning("%s webhook refused: %s", source, refused)
            return _error(401, str(refused))
        try:
            changes = adapter.parse(body)
            if backlog is not None:  # behind: a 503 the CRM retries, nothing taken
                await backlog.admit()
            applied = await crm_inbound.apply(source, changes, now)
        except BadPayload as bad:
            return _field_errors(bad.fields)
        if applied.unknown and not (applied.handled or applied.ignored):
            # Nothing was applied, and no record is one Handoff knows (or erased: those are
            # ignored, a 200): a non-2xx makes HubSpot retry, any 4xx included, up to 10 times
            # over 24 hours (its Webhooks API guide, "Retries"), in case the record's creation
            # is still on its way.
            ids = ", ".join(applied.unknown[:20])
            return _error(404, f"no lead in Handoff for the {source} record(s) {ids}")
        if applied.invalid and not (applied.handled or applied.ignored):
            return _field_errors(applied.invalid)
        answer: dict[str, Any] = {"handled": applied.handled, "ignored": applied.ignored}
        if applied.unknown:
            answer["unknown"] = applied.unknown
        if applied.invalid:
            answer["errors"] = [{"field": name, "message": text} for name, text in applied.invalid]
        return web.json_response(answer, status=200)

    contract = openapi.text()

    async def openapi_document(_: web.Request) -> web.Response:
        return web.Response(text=contract, content_type="application/json")

    return [
        web.post("/leads", intake),
        web.post("/leads/{external_id}/activity", activity),
        web.get("/healthz", health),
        web.get("/readyz", ready),
        web.get("/metrics", prometheus),
        web.get("/openapi.json", openapi_document),
        web.post("/slack/events", slack_events),
        web.post("/crm/hubspot", crm_webhook("hubspot")),
        web.post("/crm/salesforce", crm_webhook("salesforce")),
    ]
