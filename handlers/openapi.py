"""The HTTP interface's contract: an OpenAPI 3.1 document of every route but `/slack/events`.

Built from the same pydantic models that validate the requests (bot/domain/intake.py,
bot/domain/activity.py), so the document cannot drift from what the server accepts. It is served
at `GET /openapi.json` and kept in `docs/openapi.json`, which a test compares with this module's
output: after changing a route or a model, write it again with

    python -m handlers.openapi > docs/openapi.json

Slack's own endpoint is left out: Slack defines it, and only Slack calls it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from bot.crm.salesforce_in import SalesforceChange
from bot.domain.activity import AttemptIn, InfoIn, StageIn
from bot.domain.intake import EMAIL_PATTERN, FieldError, LeadIn

REF = "#/components/schemas/{model}"


class LeadAnswer(BaseModel):
    """The lead a request created or found."""

    id: int
    status: str = Field(
        description="The lead's stage: mql, sal, sql, nurture, recycle, reject; erased for a "
        "lead sent again after its person was erased (nothing is stored)"
    )
    cycle: int | None = Field(default=None, description="Set when the lead re-qualified")
    message: str | None = Field(default=None, description="Why new engagement was stored only")


class ActivityAnswer(BaseModel):
    lead_id: int
    recorded: dict[str, Any] | None = Field(description="What was recorded; null: nothing new")
    message: str | None = None


class Errors(BaseModel):
    """An invalid request: every problem by field (`(body)` for the body as a whole)."""

    errors: list[FieldError]


class Error(BaseModel):
    """A request refused as a whole (bad token, unknown lead, too large, a conflict)."""

    error: str


class CrmAnswer(BaseModel):
    """A CRM webhook taken: how many changes were applied and ignored (a repeat, the echo of
    our own write, a property Handoff does not follow), the CRM ids with no lead, and what is
    wrong with the records that make no lead (the others of the batch applied)."""

    handled: int
    ignored: int
    unknown: list[str] | None = Field(default=None, description="Records with no lead here")
    errors: list[FieldError] | None = Field(
        default=None, description="Records that make no lead, by field"
    )


class HubSpotEvent(BaseModel):
    """One event of a HubSpot webhook subscription delivery (more fields are ignored)."""

    eventId: int
    subscriptionType: str = Field(
        description="contact.* (legacy format) or object.* (generic format, with objectTypeId)"
    )
    objectTypeId: str | None = Field(
        default=None,
        description="object.* events: the object's type; 0-1 (a contact) is followed, others "
        "ignored. Required for the object.* events Handoff follows",
    )
    objectId: int | None = Field(
        default=None, description="Required for the contact events Handoff follows, but a merge"
    )
    propertyName: str | None = None
    propertyValue: str | None = None
    primaryObjectId: int | None = Field(
        default=None, description="contact.merge / object.merge: the primary"
    )
    mergedObjectIds: list[int] | None = Field(
        default=None,
        description="contact.merge / object.merge: the contacts merged into the primary",
    )
    newObjectId: int | None = Field(
        default=None,
        description="contact.merge / object.merge: the contact that remains, when not the primary",
    )
    occurredAt: int | None = None
    attemptNumber: int | None = None
    portalId: int | None = None


class HubSpotContact(BaseModel):
    """A contact as a workflow's "Send a webhook" action sends it (`vid` in older ones)."""

    objectId: int | None = None
    vid: int | None = None
    properties: dict[str, Any]


class CheckResult(BaseModel):
    ok: bool
    detail: str


class Ready(BaseModel):
    """Readiness: every check by name (database, scheduler, outbox, crm)."""

    ready: bool
    checks: dict[str, CheckResult]


class Health(BaseModel):
    ok: bool
    database: str = Field(description='"ok", or why the database does not answer')
    sla: str | None = Field(default=None, description="The SLA file's version in force")
    crm: str = Field(
        description='"none" without a CRM, "ok", or "degraded: …" while it refuses our writes'
    )


MODELS: list[type[BaseModel]] = [
    LeadIn,
    AttemptIn,
    StageIn,
    InfoIn,
    LeadAnswer,
    ActivityAnswer,
    Errors,
    Error,
    Health,
    Ready,
    CrmAnswer,
    HubSpotEvent,
    HubSpotContact,
    SalesforceChange,
]


def _schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(model, "validation") for model in MODELS], ref_template=REF, title="Handoff"
    )
    schemas: dict[str, Any] = top["$defs"]
    schemas["LeadIn"]["properties"]["email"]["pattern"] = EMAIL_PATTERN
    schemas["Activity"] = {
        "oneOf": [{"$ref": REF.format(model=m.__name__)} for m in (AttemptIn, StageIn, InfoIn)],
        "discriminator": {
            "propertyName": "type",
            "mapping": {
                "attempt": REF.format(model="AttemptIn"),
                "stage": REF.format(model="StageIn"),
                "info": REF.format(model="InfoIn"),
            },
        },
    }
    return schemas


def _json(model: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
    }


_REFUSED = {
    "400": _json("Errors", "Invalid: every problem by field; nothing was changed"),
    "401": _json("Error", "Missing or wrong bearer token, or a bad or stale signature"),
    "413": _json("Error", "The body is over 1 MiB"),
    "415": _json("Errors", "The body was not sent as JSON"),
    "503": {
        **_json("Error", "Behind (HANDOFF_INTAKE_MAX_BACKLOG) or the database does not answer"),
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before sending the same request again",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
}
_SECURED: list[dict[str, list[str]]] = [
    {"bearer": []},
    {"bearer": [], "signature": [], "timestamp": []},
]


def _one_or_many(model: str) -> dict[str, Any]:
    item = {"$ref": REF.format(model=model)}
    schema = {"oneOf": [item, {"type": "array", "items": item, "minItems": 1}]}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _crm_route(operation: str, summary: str, security: str, body: dict[str, Any]) -> Any:
    return {
        "post": {
            "operationId": operation,
            "summary": summary,
            "description": "docs/crm-inbound.md: what each change does, and its echo.",
            "security": [{security: []}],
            "requestBody": body,
            "responses": {
                "200": _json(
                    "CrmAnswer",
                    "Taken: the changes applied and ignored (an erased person's records: ignored)",
                ),
                "400": _json("Errors", "An unknown shape: every problem by field"),
                "401": _json("Error", "A bad, missing or stale signature or token"),
                "404": _json("Error", "No CRM configured, or no lead ever for the record(s)"),
                "413": _REFUSED["413"],
                "503": {
                    **_REFUSED["503"],
                    "description": "Behind (HANDOFF_INTAKE_MAX_BACKLOG), the database does not "
                    "answer, or a change needs a read from the CRM that failed, or while its "
                    "daily API limit is used up (Retry-After: its reset), or another request "
                    "is applying one of its notifications (Retry-After: 120)",
                },
            },
        }
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the HTTP interface."""
    body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="LeadIn")}}},
    }
    activity_body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Activity")}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Handoff",
            "version": "1",
            "description": (
                "Lead intake and CRM activity for Handoff, the Slack bot that runs the "
                "marketing-sales SLA. docs/intake.md explains each route in words."
            ),
        },
        "paths": {
            "/leads": {
                "post": {
                    "operationId": "postLead",
                    "summary": "Send a lead (idempotent on external_id)",
                    "security": _SECURED,
                    "requestBody": body,
                    "responses": {
                        "201": _json("LeadAnswer", "A new lead, or one that re-qualified"),
                        "200": _json("LeadAnswer", "The same external_id again: nothing posted"),
                        **_REFUSED,
                    },
                }
            },
            "/leads/{external_id}/activity": {
                "post": {
                    "operationId": "postActivity",
                    "summary": "Record CRM activity on a lead: an attempt, a stage, an answer",
                    "security": _SECURED,
                    "parameters": [
                        {
                            "name": "external_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        }
                    ],
                    "requestBody": activity_body,
                    "responses": {
                        "201": _json("ActivityAnswer", "Recorded"),
                        "200": _json("ActivityAnswer", "Recorded already (same id): no change"),
                        **_REFUSED,
                        "404": _json("Error", "No lead has this external_id"),
                        "409": _json("Error", "The lead cannot take it now (closed, taken, …)"),
                    },
                }
            },
            "/crm/hubspot": _crm_route(
                "postHubSpotWebhook",
                "HubSpot's webhook subscriptions and workflow webhooks",
                "hubspotSignature",
                {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {
                                        "type": "array",
                                        "items": {"$ref": REF.format(model="HubSpotEvent")},
                                        "minItems": 1,
                                    },
                                    {"$ref": REF.format(model="HubSpotContact")},
                                ]
                            }
                        }
                    },
                },
            ),
            "/crm/salesforce": _crm_route(
                "postSalesforceWebhook",
                "Changes from a Salesforce Flow's HTTP callout or Apex",
                "salesforceToken",
                _one_or_many("SalesforceChange"),
            ),
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness: the process answers, and says how its database is",
                    "security": [],
                    "responses": {
                        "200": _json("Health", "Up, whatever the database and the CRM say"),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness: the database, the scheduler, the outbox, the CRM",
                    "security": [],
                    "responses": {
                        "200": _json("Ready", "Ready: every check passes"),
                        "503": _json("Ready", "Not ready: the failing checks say why"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Counters, histograms and gauges in the Prometheus text format",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The counters",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI 3.1 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "HANDOFF_INTAKE_TOKEN (with no token configured, intake "
                    "refuses everything)",
                },
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Handoff-Signature",
                    "description": "When HANDOFF_INTAKE_SIGNING_SECRET is set: `sha256=` and "
                    "the hex HMAC-SHA256 of the timestamp, a `.`, and the raw body "
                    "(docs/intake.md, intake signatures)",
                },
                "hubspotSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-HubSpot-Signature-v3",
                    "description": "HubSpot's signature with the app's client secret "
                    "(HUBSPOT_CLIENT_SECRET), with X-HubSpot-Request-Timestamp; an older "
                    "X-HubSpot-Signature alone is refused (it signs no time)",
                },
                "salesforceToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "HANDOFF_SALESFORCE_WEBHOOK_TOKEN",
                },
                "timestamp": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Handoff-Timestamp",
                    "description": "Unix time of the signature; refused after 5 minutes",
                },
            },
        },
    }


def text() -> str:
    """The document as kept in docs/openapi.json."""
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(text(), end="")
