"""The HTTP interface's published contract (issue 16): an OpenAPI 3.1 document that is valid,
served at `GET /openapi.json`, kept true in docs/, and that names exactly the routes the real
server registers."""

from __future__ import annotations

import json
from pathlib import Path

from openapi_spec_validator import validate

from bot.cli.stack import LocalStack
from handlers import openapi

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
SLACK_ONLY = {("POST", "/slack/events")}  # Slack defines it; only Slack calls it


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi.document()
    assert document["openapi"] == "3.1.0"
    validate(document)  # against the OpenAPI 3.1 specification's own schema


def test_docs_keep_the_document_the_server_serves() -> None:
    assert DOCS.read_text() == openapi.text(), (
        "docs/openapi.json is out of date: python -m handlers.openapi > docs/openapi.json"
    )


async def test_the_server_serves_it_and_it_names_exactly_the_routes_registered(
    stack: LocalStack,
) -> None:
    async with stack.session.get(f"{stack.base_url}/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        served = await response.json()
    assert served == json.loads(DOCS.read_text())
    registered = {
        (route.method, route.resource.canonical)
        for route in stack.handoff.http.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method.upper(), path)
        for path, operations in served["paths"].items()
        for method in operations
    }
    assert registered - SLACK_ONLY == documented
    assert SLACK_ONLY <= registered


def test_the_activity_route_documents_only_the_statuses_it_answers() -> None:
    """No access check guards it (the bearer token or signature is the sender's right): no 403.
    Its refusals are the intake's (400 401 413 415 503), an unknown lead (404) and a lead that
    cannot take it (409: closed, not claimed, not waiting for an answer, changed)."""
    route = openapi.document()["paths"]["/leads/{external_id}/activity"]["post"]
    statuses = {"200", "201", "400", "401", "404", "409", "413", "415", "503"}
    assert set(route["responses"]) == statuses


def test_the_intake_contract_says_what_the_server_checks() -> None:
    """The request schemas come from the validating models: limits a sender can rely on."""
    schemas = openapi.document()["components"]["schemas"]
    lead = schemas["LeadIn"]
    assert set(lead["required"]) == {"external_id", "email"}
    assert lead["properties"]["email"]["pattern"] == openapi.EMAIL_PATTERN
    score = next(s for s in lead["properties"]["score"]["anyOf"] if s.get("type") == "integer")
    assert (score["minimum"], score["maximum"]) == (0, 100)
    kinds = schemas["Activity"]["discriminator"]["mapping"]
    assert set(kinds) == {"attempt", "stage", "info"}
