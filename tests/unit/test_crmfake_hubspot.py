"""The HubSpot fake's signatures against HubSpot's own worked example, and the adapter's
reading of HubSpot's answers (rate-limit headers, refused properties, a contact as a lead)."""

from __future__ import annotations

import json

from bot.crm.hubspot import daily_limit, lead_of, refused_property, retry_after
from bot.crm.hubspot_in import parse_events
from bot.crmfake.hubspot import HubSpotFake, WebhookFormat, sign_v1, sign_v3


def test_v1_signature_matches_hubspots_worked_example() -> None:
    # https://developers.hubspot.com/docs/faq/v1-request-validation
    secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
    body = (
        b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
        b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
        b'"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'
    )
    assert sign_v1(secret, body) == (
        "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    )


def test_v3_signature_covers_method_uri_body_and_timestamp() -> None:
    base = sign_v3("s", "POST", "https://h.test/hooks", b"[]", 1700000000000)
    assert base != sign_v3("s", "POST", "https://h.test/hooks", b"[]", 1700000000001)
    assert base != sign_v3("s", "POST", "https://h.test/other", b"[]", 1700000000000)
    assert base != sign_v3("s", "POST", "https://h.test/hooks", b"[{}]", 1700000000000)
    assert base != sign_v3("t", "POST", "https://h.test/hooks", b"[]", 1700000000000)


def test_v3_signs_the_uri_with_the_documented_escapes_decoded() -> None:
    """%3A, %40, ... are signed decoded ("Validating requests"), any other escape as it is."""
    decoded = sign_v3("s", "POST", "https://h.test/hooks?a=b:c@d&e=f%20g", b"[]", 1)
    assert sign_v3("s", "POST", "https://h.test/hooks?a=b%3Ac%40d&e=f%20g", b"[]", 1) == decoded
    assert sign_v3("s", "POST", "https://h.test/hooks?a=b:c@d&e=f g", b"[]", 1) != decoded


def test_the_wait_after_a_429_comes_from_hubspots_headers() -> None:
    assert retry_after({"Retry-After": "3"}) == 3
    assert retry_after({"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}) == 10
    assert retry_after({"Retry-After": "soon"}) == 10  # unreadable: a whole window
    assert retry_after({}) == 10


def test_a_429_for_the_daily_limit_is_told_by_its_policy_name_or_the_days_remaining() -> None:
    """HubSpot's usage guidelines: `policyName` DAILY for the day's limit, TEN_SECONDLY_ROLLING
    (or SECONDLY) for the burst's; `X-HubSpot-RateLimit-Daily-Remaining` counts the day's."""
    burst = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "Retry-After": "1"}
    assert daily_limit({}, {"policyName": "DAILY", "errorType": "RATE_LIMIT"})
    assert daily_limit({"X-HubSpot-RateLimit-Daily-Remaining": "0"}, {})
    assert not daily_limit(burst, {"policyName": "TEN_SECONDLY_ROLLING"})
    assert not daily_limit(
        {"X-HubSpot-RateLimit-Daily-Remaining": "12"}, {"policyName": "SECONDLY"}
    )
    assert not daily_limit({}, {})


def test_a_refused_property_is_read_from_hubspots_message_or_its_details() -> None:
    problems = [{"isValid": False, "error": "PROPERTY_DOESNT_EXIST", "name": "handoff_why"}]
    message = {"message": "Property values were not valid: " + json.dumps(problems)}
    assert refused_property(message) == ("handoff_why", "PROPERTY_DOESNT_EXIST")
    details = {
        "message": "x",
        "errors": [{"code": "INVALID_OPTION", "context": {"propertyName": ["hs_lead_status"]}}],
    }
    assert refused_property(details) == ("hs_lead_status", "INVALID_OPTION")
    assert refused_property({"message": "Invalid input JSON"}) == (None, None)


def test_a_sparse_contact_becomes_a_lead_without_empty_fields() -> None:
    lead = lead_of(
        "7",
        {
            "email": "a@b.test",
            "hs_email_domain": "b.test",
            "numemployees": "25-50",
            "hubspotscore": "140",
        },
    )
    assert lead == {
        "external_id": "hubspot:7",
        "email": "a@b.test",
        "company": {"domain": "b.test", "employees": 25},
        "score": 100,  # HubSpot scores past 100; intake takes 0..100
        "crm_id": "7",
    }


def test_the_fake_sends_a_contacts_events_in_either_of_hubspots_formats() -> None:
    """Generic: `object.*` with `objectTypeId` "0-1" ("Create generic webhook subscriptions"),
    except `contact.privacyDeletion`, which has no generic form. Handoff reads both alike."""

    def events(webhook_format: WebhookFormat) -> list[dict[str, object]]:
        hub = HubSpotFake(clock=lambda: 1795392000.0, webhook_format=webhook_format)
        return [
            hub.subscription_event("contact.creation", 7),
            hub.subscription_event(
                "contact.propertyChange", 7, property_name="hs_lead_status", property_value="OPEN"
            ),
            hub.merge_event(9, [7]),
            hub.subscription_event("contact.deletion", 9),
            hub.subscription_event("contact.privacyDeletion", 9),
        ]

    legacy, generic = events("legacy"), events("generic")
    assert [e["subscriptionType"] for e in generic] == [
        "object.creation",
        "object.propertyChange",
        "object.merge",
        "object.deletion",
        "contact.privacyDeletion",
    ]
    assert [e.get("objectTypeId") for e in generic] == ["0-1"] * 4 + [None]
    assert not any("objectTypeId" in e for e in legacy)
    assert parse_events(generic) == parse_events(legacy)
