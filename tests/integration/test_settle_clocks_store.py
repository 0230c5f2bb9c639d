"""The managers' alerts settle by the clock they are about, over the real store (SQLite and
PostgreSQL): feedback settles the alert about missing feedback and leaves the one about the
final outcome live; an alert sent before alerts named their clock is left to a claim, a close
or a reassignment; and a settled alert is found again by its Slack ts (a stale press)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.effects import Send, Settle, alert_key
from bot.services.leads import Services
from storage.outbox import OutboxStore
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY

ESCALATIONS = "C0ESCALATE"
WALL = datetime(2030, 1, 1, tzinfo=UTC)


async def alerted(services: Services, outbox: OutboxStore) -> tuple[int, dict[str, str]]:
    """A lead with three of the managers' alerts, each delivered (its Slack ts by clock): one
    about missing feedback, one about the final outcome, one from before keys named a clock."""
    result = await services.intake(lead_payload(), MONDAY)
    assert result.lead is not None
    lead = result.lead
    sent = {
        "no_feedback": alert_key(lead.id, lead.cycle, "2026-11-30T00:00:00+00:00", "no_feedback"),
        "no_outcome": alert_key(lead.id, lead.cycle, "2026-12-14T00:00:00+00:00", "no_outcome"),
        "legacy": f"sweep:{lead.id}:{lead.cycle}:2026-11-24T00:00:00+00:00:alert",
    }
    await outbox.send([Send(ESCALATIONS, "🚨", key, lead.id) for key in sent.values()], MONDAY)
    ts = {}
    clocks = {key: name for name, key in sent.items()}
    for row in await outbox.rows():
        clock = clocks.get(row["key"])
        if clock is None:
            continue  # the lead's post
        item = await outbox.lease(row["id"], WALL, WALL + timedelta(minutes=1))
        assert item is not None
        ts[clock] = f"1790000000.00010{row['id']}"
        await outbox.delivered(item, MONDAY, ts[clock], ESCALATIONS)
    return lead.id, ts


async def settled(outbox: OutboxStore) -> dict[int, str]:
    """The settle rows: the alert row each replaces, and its words."""
    rows = await outbox.rows()
    return {
        row["payload"]["of"]: row["payload"]["text"]
        for row in rows
        if row["kind"] == "settle_alert"
    }


async def test_feedback_settles_only_the_alert_about_feedback(services: Services) -> None:
    outbox = OutboxStore(services.store.db)
    lead_id, ts = await alerted(services, outbox)
    ids = {row["result_ts"]: row["id"] for row in await outbox.rows()}
    store = services.store

    feedback = Settle(
        lead_id, 1, "💬 feedback", "progress:1:1:settle", clocks=frozenset({"no_feedback"})
    )
    await outbox.send([feedback], MONDAY)

    assert await settled(outbox) == {ids[ts["no_feedback"]]: "💬 feedback"}
    assert await store.settled_alert(lead_id, ts["no_feedback"]) == "💬 feedback"
    assert await store.settled_alert(lead_id, ts["no_outcome"]) is None  # still live
    assert await store.settled_alert(lead_id, ts["legacy"]) is None
    assert await store.settled_alert(lead_id + 1, ts["no_feedback"]) is None  # not its alert
    assert await store.settled_alert(lead_id, "1790000000.999999") is None  # no alert at all

    # A close settles every alert still live, once; the one feedback settled keeps its words.
    await outbox.send([Settle(lead_id, 1, "✅ closed", "dispose:1:settle")], MONDAY)
    assert await settled(outbox) == {
        ids[ts["no_feedback"]]: "💬 feedback",
        ids[ts["no_outcome"]]: "✅ closed",
        ids[ts["legacy"]]: "✅ closed",
    }
    assert await store.settled_alert(lead_id, ts["no_outcome"]) == "✅ closed"


async def test_a_crm_attempt_with_a_long_activity_id_settles_the_alert_about_the_touch(
    services: Services,
) -> None:
    # The activity route takes an `id` of up to 200 characters; the settle row's key must fit
    # the outbox's key column (PostgreSQL refuses a longer one, and the CRM would retry the
    # attempt for days).
    outbox = OutboxStore(services.store.db)
    result = await services.intake(lead_payload("hs-long"), MONDAY)
    assert result.lead is not None
    lead = result.lead
    await services.claim(lead.id, "U0REP1", MONDAY + timedelta(minutes=4))
    key = alert_key(lead.id, lead.cycle, "2026-11-23T01:00:00+00:00", "no_touch")
    await outbox.send([Send(ESCALATIONS, "🚨", key, lead.id)], MONDAY)

    payload = {"type": "attempt", "kind": "call", "id": "x" * 200}
    recorded = await services.activity("hs-long", payload, MONDAY + timedelta(hours=1))

    assert recorded.lead_id == lead.id  # type: ignore[union-attr]
    assert (await services.lead(lead.id)).attempts == 1
    (text,) = (await settled(outbox)).values()
    assert text.startswith("📞 First touch (call) by the CRM")
    again = await services.activity("hs-long", payload, MONDAY + timedelta(hours=2))
    assert again.lead_id == lead.id  # type: ignore[union-attr]
    assert len(await settled(outbox)) == 1
