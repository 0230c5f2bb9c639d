"""HTTP routes: lead intake, health, metrics, and Slack's single events endpoint."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.metrics import Metrics
from bot.services import Services
from bot.slack.publisher import Clock

log = logging.getLogger("handoff.http")
MAX_BODY = 1024 * 1024  # 1 MiB
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _invalid(field: str, message: str) -> web.Response:
    return web.json_response({"errors": [{"field": field, "message": message}]}, status=400)


@web.middleware
async def no_tracebacks(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Whatever fails, the client gets a short JSON error, never a stack trace."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"request body is over the {MAX_BODY} byte limit")
    except web.HTTPException as error:
        if error.status >= 400:
            return _error(error.status, error.reason)
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _error(500, "internal error: nothing was changed; the server log has the details")


def routes(
    services: Services, bolt: AsyncApp, metrics: Metrics, intake_token: str | None, clock: Clock
) -> list[web.RouteDef]:
    """The server's routes, bound to the running services."""

    def authorized(request: web.Request) -> bool:
        if not intake_token:
            return False
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        valid = scheme.lower() == "bearer"
        # Constant-time compare, also when the scheme is wrong, so timing reveals nothing.
        return hmac.compare_digest(token.encode(), intake_token.encode()) and valid

    async def intake(request: web.Request) -> web.Response:
        if not authorized(request):
            reason = "bad or missing bearer token" if intake_token else "intake is disabled"
            return _error(401, f"unauthorized: {reason} (see HANDOFF_INTAKE_TOKEN)")
        if (request.content_length or 0) > MAX_BODY:
            return _error(413, f"request body is over the {MAX_BODY} byte limit")
        body = await request.read()
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            return _invalid("(body)", f"not valid JSON: {error}")
        result = await services.intake(payload, clock(), source="api")
        if result.lead is None:
            metrics.inc("leads_invalid_total")
            errors = [error.model_dump() for error in result.errors]
            return web.json_response({"errors": errors}, status=400)
        answer = {"id": result.lead.id, "status": result.lead.stage.value}
        metrics.inc("leads_received_total" if result.created else "leads_duplicate_total")
        return web.json_response(answer, status=201 if result.created else 200)

    async def health(_: web.Request) -> web.Response:
        try:
            await services.store.ping()
        except Exception as error:  # the point of a health check is to say so, not to raise
            return web.json_response({"ok": False, "database": str(error)[:200]}, status=503)
        return web.json_response({"ok": True, "database": "ok", "sla": services.policy.version})

    async def prometheus(_: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain")

    async def slack_events(request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_BODY:
            return _error(413, f"request body is over the {MAX_BODY} byte limit")
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    async def activity(request: web.Request) -> web.Response:
        if not authorized(request):
            return _error(
                401, "unauthorized: bad or missing bearer token (see HANDOFF_INTAKE_TOKEN)"
            )
        return _error(501, "CRM activity intake is coming in a later release of Handoff")

    return [
        web.post("/leads", intake),
        web.post("/leads/{external_id}/activity", activity),
        web.get("/healthz", health),
        web.get("/metrics", prometheus),
        web.post("/slack/events", slack_events),
    ]
