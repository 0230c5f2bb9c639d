"""The CRMs' webhooks read as HubSpot and Salesforce send them: signatures (v1, v2, v3, stale,
tampered) and payloads (subscription events, workflow contacts, the Salesforce shape)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.crm.hubspot_in import HubSpotInbound, sign_v3, signing_uri
from bot.crm.port import BadPayload, BadSignature
from bot.crm.salesforce_in import SalesforceInbound
from bot.domain.crm import Change

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
URL = "https://handoff.example.com/crm/hubspot"


def millis(when: datetime) -> str:
    return str(int(when.timestamp() * 1000))


def v3_headers(body: bytes, when: datetime = NOW, url: str = URL) -> dict[str, str]:
    stamp = millis(when)
    signature = sign_v3(SECRET, "POST", url, body, stamp)
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp}


# --- HubSpot signatures -------------------------------------------------------------------------


def test_an_older_signature_alone_is_refused_even_when_it_matches() -> None:
    """HubSpot's own v1 example, correctly signed: v1 signs no time, so a delivery recorded
    once would pass again for ever. HubSpot sends v3 beside it; v3 is what is checked."""
    body = (
        b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
        b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
        b'"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'
    )
    expected = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    headers = {"X-HubSpot-Signature": expected, "X-HubSpot-Signature-Version": "v1"}
    with pytest.raises(BadSignature, match="older X-HubSpot-Signature alone is not enough"):
        HubSpotInbound(SECRET).verify("POST", URL, headers, body, NOW)
    HubSpotInbound(SECRET).verify("POST", URL, headers | v3_headers(body), body, NOW)


def test_v3_agrees_with_the_official_sdk() -> None:
    from hubspot.utils.signature import Signature

    body = b'{"objectId":7,"properties":{"email":"ana@acme.example"}}'
    stamp = millis(NOW)
    ours = sign_v3(SECRET, "POST", URL, body, stamp)
    theirs = Signature.get_signature(SECRET, body.decode(), "v3", URL, "POST", stamp)
    assert ours == theirs


def test_a_good_v3_request_passes_and_a_tampered_one_does_not() -> None:
    inbound = HubSpotInbound(SECRET)
    body = b'[{"eventId":1,"subscriptionType":"contact.creation","objectId":9}]'
    headers = v3_headers(body)
    inbound.verify("POST", URL, headers, body, NOW + timedelta(minutes=4))
    with pytest.raises(BadSignature, match="does not match"):
        inbound.verify("POST", URL, headers, body.replace(b"9", b"8"), NOW)
    with pytest.raises(BadSignature, match="does not match"):
        inbound.verify("POST", URL + "?x=1", headers, body, NOW)
    with pytest.raises(BadSignature, match="does not match"):
        HubSpotInbound("another secret").verify("POST", URL, headers, body, NOW)


def test_a_stale_v3_request_is_refused_even_when_signed() -> None:
    body = b"[]"
    headers = v3_headers(body, when=NOW - timedelta(minutes=5, seconds=1))
    with pytest.raises(BadSignature, match="more than 5 minutes"):
        HubSpotInbound(SECRET).verify("POST", URL, headers, body, NOW)


def test_a_request_without_signature_or_with_a_bad_timestamp_is_refused() -> None:
    inbound = HubSpotInbound(SECRET)
    with pytest.raises(BadSignature, match="no X-HubSpot-Signature-v3 header \\(HubSpot"):
        inbound.verify("POST", URL, {}, b"[]", NOW)
    headers = {"X-HubSpot-Signature-v3": "abc", "X-HubSpot-Request-Timestamp": "yesterday"}
    with pytest.raises(BadSignature, match="milliseconds"):
        inbound.verify("POST", URL, headers, b"[]", NOW)


def test_the_signed_uri_decodes_only_the_escapes_hubspot_decodes() -> None:
    url = "https://h.example/crm/hubspot?next=%2Fa%3Ab%40c&q=a%20b&s=%2c"
    assert signing_uri(url) == "https://h.example/crm/hubspot?next=/a:b@c&q=a%20b&s=,"
    body = b"[]"
    headers = v3_headers(body, url=url)  # HubSpot signs the decoded form
    HubSpotInbound(SECRET).verify("POST", url, headers, body, NOW)


# --- HubSpot payloads ---------------------------------------------------------------------------


def event(event_id: int, kind: str, **fields: object) -> dict[str, object]:
    return {
        "eventId": event_id,
        "subscriptionId": 1,
        "portalId": 62515,
        "occurredAt": 1795392000000,
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": 123,
        **fields,
    }


def test_subscription_events_become_changes() -> None:
    body = [
        event(1, "contact.creation"),
        event(2, "contact.propertyChange", propertyName="hubspot_owner_id", propertyValue="77"),
        event(3, "contact.propertyChange", propertyName="hs_lead_status", propertyValue="OPEN"),
        event(4, "contact.propertyChange", propertyName="lifecyclestage", propertyValue="customer"),
        event(5, "contact.propertyChange", propertyName="lifecyclestage", propertyValue="lead"),
        event(6, "contact.propertyChange", propertyName="firstname", propertyValue="Ana"),
        event(7, "contact.privacyDeletion"),
        event(8, "deal.creation"),
    ]
    changes = HubSpotInbound(SECRET).parse(json.dumps(body).encode())
    assert [(c.event_id, c.change) for c in changes] == [
        ("1:contact.creation:123", Change.CREATED),
        ("2:contact.propertyChange:123:hubspot_owner_id", Change.OWNER),
        ("3:contact.propertyChange:123:hs_lead_status", Change.STATUS),
        ("4:contact.propertyChange:123:lifecyclestage", Change.STAGE),
        ("7:contact.privacyDeletion:123", Change.DELETED),
    ]
    assert changes[1].owner_crm_id == "77" and changes[2].value == "OPEN"
    assert changes[3].value == "won"
    assert {c.crm_id for c in changes} == {"123"}
    assert changes[0].external_id == "hubspot:123"
    assert changes[0].at == datetime(2026, 11, 23, tzinfo=UTC)


def test_a_contacts_generic_events_are_read_as_their_legacy_counterparts() -> None:
    """HubSpot's generic format (`object.*`, the object in `objectTypeId`, "0-1" a contact):
    a contact's events are its `contact.*` ones, keyed alike; another object's are ignored,
    and so are a restore and an association change (not followed in either format), whatever
    their fields."""
    contact = {"objectTypeId": "0-1"}
    body = [
        event(1, "object.creation", **contact),
        event(2, "object.propertyChange", propertyName="hs_lead_status", propertyValue="OPEN")
        | contact,
        event(3, "object.deletion", **contact),
        merge(4, 123, [456], newObjectId=123) | {"subscriptionType": "object.merge"} | contact,
        event(5, "object.creation", objectTypeId="0-3"),
        event(6, "object.deletion", objectTypeId="2-143967026"),
        event(7, "object.restore"),
        {k: v for k, v in event(8, "object.associationChange").items() if k != "objectId"},
    ]
    changes = HubSpotInbound(SECRET).parse(json.dumps(body).encode())
    assert [(c.event_id, c.change) for c in changes] == [
        ("1:contact.creation:123", Change.CREATED),
        ("2:contact.propertyChange:123:hs_lead_status", Change.STATUS),
        ("3:contact.deletion:123", Change.DELETED),
        ("4:contact.merge:123:456", Change.MERGED),
    ]
    assert changes[1].value == "OPEN" and changes[3].merged_ids == ("456",)
    legacy = HubSpotInbound(SECRET).parse(json.dumps([event(1, "contact.creation")]).encode())
    assert legacy == changes[:1]


def merge(event_id: int, primary: object, merged: object, **fields: object) -> dict[str, object]:
    """A `contact.merge` event as HubSpot's changelog documents it ("New subscription types for
    Webhooks"): the primary, the merged ids, the id of the result."""
    body = event(event_id, "contact.merge", primaryObjectId=primary, mergedObjectIds=merged)
    return {**body, "objectId": primary, "numberOfPropertiesMoved": 4, **fields}


def test_a_merge_ties_the_merged_ids_to_the_contact_it_produced() -> None:
    body = [
        merge(1, 123, [456], newObjectId=123),
        # No newObjectId: the primary is the result. No objectId either: the changelog names
        # only the merge's own ids, so none other is required.
        {k: v for k, v in merge(2, 123, [456, "457"]).items() if k != "objectId"},
        merge(3, 123, [456], newObjectId=789),  # a new contact: the primary is gone too
    ]
    changes = HubSpotInbound(SECRET).parse(json.dumps(body).encode())
    assert [(c.change, c.crm_id, c.merged_ids) for c in changes] == [
        (Change.MERGED, "123", ("456",)),
        (Change.MERGED, "123", ("456", "457")),
        (Change.MERGED, "789", ("123", "456")),
    ]
    assert [c.event_id for c in changes] == [
        "1:contact.merge:123:456",
        "2:contact.merge:123:456+457",
        "3:contact.merge:123:456",
    ]
    assert changes[0].at == datetime(2026, 11, 23, tzinfo=UTC)
    # A retry repeats every field, and so its key.
    again = HubSpotInbound(SECRET).parse(json.dumps(body[:1]).encode())
    assert again[0].event_id == changes[0].event_id


def test_a_merge_of_many_contacts_still_has_a_short_key() -> None:
    ids = [10**20 + n for n in range(40)]
    (change,) = HubSpotInbound(SECRET).parse(json.dumps([merge(1, 123, ids)]).encode())
    assert len(change.merged_ids) == 40
    assert len(change.event_id) <= 200 and change.event_id.startswith("1:contact.merge:123:")


def test_a_workflow_contact_becomes_a_lead_in_intakes_shape() -> None:
    contact = {
        "vid": 451,
        "properties": {
            "email": {"value": "Ana@Acme.example"},
            "firstname": {"value": "Ana"},
            "lastname": {"value": "Silva"},
            "jobtitle": {"value": "CTO"},
            "company": {"value": "Acme"},
            "numemployees": {"value": "1200"},
            "country": {"value": "AU"},
        },
    }
    (change,) = HubSpotInbound(SECRET).parse(json.dumps(contact).encode())
    assert change.change is Change.CREATED and change.crm_id == "451"
    assert change.event_id.startswith("workflow:contact:451:")
    again = HubSpotInbound(SECRET).parse(json.dumps(contact).encode())[0]
    assert again.event_id == change.event_id  # a retry is the same notification
    assert change.lead == {
        "external_id": "hubspot:451",
        "email": "Ana@Acme.example",
        "crm_id": "451",
        "name": "Ana Silva",
        "title": "CTO",
        "company": {"name": "Acme", "employees": 1200, "country": "AU"},
    }
    flat = {"objectId": 452, "properties": {"email": "b@acme.example"}}
    (change,) = HubSpotInbound(SECRET).parse(json.dumps(flat).encode())
    assert change.lead is not None and change.lead["email"] == "b@acme.example"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"hello": "world"}, ["objectId", "properties"]),
        ([{"eventId": 1}], ["[0].subscriptionType"]),
        ([{"eventId": 1, "subscriptionType": "contact.creation"}], ["[0].objectId"]),
        ([event(1, "contact.propertyChange")], ["[0].propertyName"]),
        ([{**event(1, "contact.creation"), "objectId": "abc"}], ["[0].objectId"]),
        ([merge(1, 123, [456]) | {"primaryObjectId": None}], ["[0].primaryObjectId"]),
        ([merge(1, 123, "456")], ["[0].mergedObjectIds"]),
        ([merge(1, 123, [])], ["[0].mergedObjectIds"]),
        ([merge(1, 123, ["x"])], ["[0].mergedObjectIds[0]"]),
        ([merge(1, 123, [456], newObjectId="abc")], ["[0].newObjectId"]),
        ([{**merge(1, 123, [456]), "eventId": None}], ["[0].eventId"]),
        ([event(1, "object.deletion")], ["[0].objectTypeId"]),
        ([event(1, "object.creation", objectTypeId=1)], ["[0].objectTypeId"]),
        ([event(1, "object.propertyChange", objectTypeId="0-1")], ["[0].propertyName"]),
        (
            [event(1, "object.merge", objectTypeId="0-1")],
            ["[0].primaryObjectId", "[0].mergedObjectIds"],
        ),
        ([], ["(body)"]),
        ("text", ["(body)"]),
    ],
)
def test_an_unknown_hubspot_shape_names_its_fields(body: object, fields: list[str]) -> None:
    with pytest.raises(BadPayload) as refused:
        HubSpotInbound(SECRET).parse(json.dumps(body).encode())
    assert [name for name, _ in refused.value.fields] == fields


def test_not_json_is_a_bad_payload() -> None:
    with pytest.raises(BadPayload, match="not JSON"):
        HubSpotInbound(SECRET).parse(b"[" * 100_000)


# --- Salesforce ---------------------------------------------------------------------------------

LEAD_ID = "00Q5e00000AbCdEAAV"


def test_salesforce_changes_in_the_documented_shape() -> None:
    inbound = SalesforceInbound("tok")
    body = [
        {"event_id": "e1", "type": "created", "lead_id": LEAD_ID, "lead": {"email": "a@b.co"}},
        {
            "event_id": "e2",
            "type": "owner",
            "lead_id": LEAD_ID,
            "owner_id": "0055e000001AbCd",
            "owner_email": "Maya@Example.com",
        },
        {"event_id": "e3", "type": "stage", "lead_id": LEAD_ID, "stage": "won", "amount": 1200},
        {"event_id": "e4", "type": "status", "lead_id": LEAD_ID, "status": "Working"},
        {"event_id": "e5", "type": "deleted", "lead_id": LEAD_ID, "at": "2026-11-23T00:00:00Z"},
    ]
    changes = inbound.parse(json.dumps(body).encode())
    assert [c.change for c in changes] == [
        Change.CREATED,
        Change.OWNER,
        Change.STAGE,
        Change.STATUS,
        Change.DELETED,
    ]
    assert changes[0].lead == {
        "external_id": f"salesforce:{LEAD_ID}",
        "email": "a@b.co",
        "crm_id": LEAD_ID,
    }
    assert changes[1].owner_email == "maya@example.com"
    assert changes[2].value == "won" and changes[2].amount == 1200.0
    assert changes[3].value == "Working"
    assert changes[4].at == NOW
    single = {"event_id": "e6", "type": "deleted", "lead_id": LEAD_ID}
    assert len(inbound.parse(json.dumps(single).encode())) == 1


def test_salesforce_is_strict_and_names_every_field() -> None:
    body = [
        {"event_id": "e1", "type": "owner", "lead_id": LEAD_ID, "colour": "red"},
        {"event_id": 7, "type": "promoted", "lead_id": "short"},
        {"event_id": "e3", "type": "stage", "lead_id": LEAD_ID, "stage": "won", "amount": "9"},
    ]
    with pytest.raises(BadPayload) as refused:
        SalesforceInbound("tok").parse(json.dumps(body).encode())
    named = [name for name, _ in refused.value.fields]
    assert "is not a field of a change" in refused.value.fields[0][1]
    assert named == [
        "[0].colour",
        "[1].event_id",
        "[1].type",
        "[1].lead_id",
        "[2].amount",
    ]
    missing = {"event_id": "e4", "type": "owner", "lead_id": LEAD_ID}
    with pytest.raises(BadPayload) as refused:
        SalesforceInbound("tok").parse(json.dumps(missing).encode())
    assert refused.value.fields == [("owner_id", "is required for an owner change")]


def test_salesforce_token_is_checked() -> None:
    inbound = SalesforceInbound("s3cret-token")
    inbound.verify("POST", "", {"Authorization": "Bearer s3cret-token"}, b"", NOW)
    for given in ("Bearer wrong", "s3cret-token", "Basic s3cret-token", ""):
        with pytest.raises(BadSignature, match="HANDOFF_SALESFORCE_WEBHOOK_TOKEN"):
            inbound.verify("POST", "", {"Authorization": given}, b"", NOW)
