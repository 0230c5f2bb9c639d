"""`GET /metrics` read as Prometheus reads it, from the running server: the figures an operator's
queries and the alerts of docs/operations.md compute from a scrape must say what happened."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.cli.stack import INTAKE_TOKEN, LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy
from storage.outbox import KINDS
from tests.conftest import free_port, lead_payload
from tests.e2e.test_crm_webhook import SECRET, Receiver, with_webhook
from tests.unit.test_docs import documented_metrics


async def scrape(stack: LocalStack) -> list[Any]:
    async with stack.session.get(f"{stack.base_url}/metrics") as response:
        assert response.status == 200
        return [
            sample
            for family in text_string_to_metric_families(await response.text())
            for sample in family.samples
        ]


def histogram_quantile(q: float, samples: list[Any], name: str, **labels: str) -> float:
    """PromQL's `histogram_quantile` over one histogram's `_bucket` series, as Prometheus's
    documentation describes it: linear within the bucket the rank falls in; "if a quantile is
    located in the highest bucket, the upper bound of the second highest bucket is returned"."""
    buckets = sorted(
        (float(sample.labels["le"]), sample.value)
        for sample in samples
        if sample.name == f"{name}_bucket"
        and {k: v for k, v in sample.labels.items() if k != "le"} == labels
    )
    assert buckets and buckets[-1][0] == math.inf, buckets
    rank = q * buckets[-1][1]
    below_bound, below_count = 0.0, 0.0
    for index, (bound, count) in enumerate(buckets):
        if count >= rank:
            if bound == math.inf:
                return buckets[index - 1][0]
            return below_bound + (bound - below_bound) * (rank - below_count) / (
                count - below_count
            )
        below_bound, below_count = bound, count
    raise AssertionError("no bucket holds the rank")


@pytest.fixture
async def slow_receiver() -> AsyncIterator[Receiver]:
    receiver = SlowReceiver(free_port())
    try:
        yield receiver
    finally:
        await receiver.down()


class SlowReceiver(Receiver):
    """A webhook receiver that takes its time, well within the adapter's deadline."""

    delay = 6.0

    async def handle(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        return await super().handle(request)


async def test_a_slow_crm_write_reads_as_slow_as_it_was(
    sqlite_url: str, policy: Policy, clock: TravelClock, slow_receiver: Receiver
) -> None:
    """A CRM write may take its adapter's whole deadline (15 s for the webhook, 30 s for
    HubSpot and Salesforce) and wait for the CRM's rate window: its p99 must not read less."""
    stack = await start_stack(
        sqlite_url,
        with_webhook(policy, events=["posted"]),
        clock=clock,
        HANDOFF_WEBHOOK_URL=slow_receiver.url,
        HANDOFF_WEBHOOK_SECRET=SECRET,
    )
    try:
        await slow_receiver.up()
        assert (await stack.post_lead(lead_payload()))[0] == 201
        await stack.settle()
        assert stack.handoff.crm is not None and await stack.handoff.crm.drain(30)
        assert len(slow_receiver.received) == 1
        samples = await scrape(stack)
    finally:
        await stack.close()
    p99 = histogram_quantile(0.99, samples, "handoff_crm_write_seconds", crm="webhook")
    assert p99 >= SlowReceiver.delay


async def test_a_slow_sweep_reads_as_slow_as_it_was(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep runs every 30 s (`HANDOFF_SWEEP_SECONDS`); one that takes seconds, behind a
    slow database or a day's backlog, must read as long as it took, not as 5 s."""
    handoff = stack.handoff
    sweeping = handoff.sweeper.run
    took = 6.0

    async def slowly(now: Any) -> Any:
        await asyncio.sleep(took)
        return await sweeping(now)

    monkeypatch.setattr(handoff.sweeper, "run", slowly)
    await handoff.sweep()
    samples = await scrape(stack)
    assert histogram_quantile(0.99, samples, "handoff_sweep_seconds") >= took


def value(samples: list[Any], name: str) -> float:
    return next(sample.value for sample in samples if sample.name == name and not sample.labels)


async def test_every_lead_refused_as_invalid_is_counted(stack: LocalStack) -> None:
    """`handoff_leads_invalid_total` is what the documented alert watches for "a CRM
    integration sends bad leads": a body that is not JSON is as bad as a field that is wrong
    (both a 400 with the `errors` list), and one not sent as JSON (415) or too large (413)."""
    headers = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
    refused = []
    status, _ = await stack.post_lead(None, raw=b'{"external_id": "hs-1", "email": }')
    refused.append(status)
    status, _ = await stack.post_lead({"external_id": "hs-2"})  # no email: a field is wrong
    refused.append(status)
    async with stack.session.post(
        f"{stack.base_url}/leads", data=b"external_id=hs-3", headers=headers
    ) as response:
        refused.append(response.status)
    too_large = b'{"external_id": "hs-4", "note": "' + b"x" * (1 << 20) + b'"}'
    status, _ = await stack.post_lead(None, raw=too_large)
    refused.append(status)
    assert refused == [400, 400, 415, 413]
    status, _ = await stack.post_lead(lead_payload(), token="wrong")  # unauthorized, not invalid
    assert status == 401
    samples = await scrape(stack)
    assert value(samples, "handoff_leads_invalid_total") == len(refused)


async def test_every_lead_refused_as_unauthorized_is_counted(stack: LocalStack) -> None:
    """An integration whose intake token was rotated gets a 401 for every lead: the operator
    must be able to alert on it (`handoff_leads_unauthorized_total`, docs/operations.md), and
    it is not a bad lead (`handoff_leads_invalid_total` stays where it was)."""
    statuses = [
        (await stack.post_lead(lead_payload(), token="rotated-away"))[0],
        (await stack.post_lead(lead_payload(), token=None))[0],
    ]
    assert statuses == [401, 401]
    assert (await stack.post_lead(lead_payload()))[0] == 201  # the right token: not counted
    samples = await scrape(stack)
    assert value(samples, "handoff_leads_unauthorized_total") == 2
    assert value(samples, "handoff_leads_invalid_total") == 0


async def test_activity_refused_as_unauthorized_or_invalid_is_counted(stack: LocalStack) -> None:
    """`POST /leads/{id}/activity` takes the same intake token: a CRM whose token was rotated
    gets a 401 for every attempt it reports, and a broken body a 400. Both are counted on their
    own (`handoff_activity_unauthorized_total`, `handoff_activity_invalid_total`), not as
    leads; before, neither was counted anywhere."""
    assert (await stack.post_lead(lead_payload(external_id="act-1")))[0] == 201
    url = f"{stack.base_url}/leads/act-1/activity"
    statuses = []
    for token, body in (
        ("rotated", {"type": "attempt", "channel": "call"}),
        (None, {"type": "attempt", "channel": "call"}),
        ("good", {"type": "no-such-type"}),
        ("good", b"{not json"),
    ):
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {INTAKE_TOKEN if token == 'good' else token}"
        kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with stack.session.post(url, headers=headers, **kwargs) as answer:
            statuses.append(answer.status)
    assert statuses == [401, 401, 400, 400]
    samples = await scrape(stack)
    assert value(samples, "handoff_activity_unauthorized_total") == 2
    assert value(samples, "handoff_activity_invalid_total") == 2
    assert value(samples, "handoff_leads_unauthorized_total") == 0
    assert value(samples, "handoff_leads_invalid_total") == 0


def series(samples: list[Any], name: str, label: str) -> dict[str, float]:
    """One labelled metric's samples named `name`, by the value of `label`."""
    return {s.labels[label]: s.value for s in samples if s.name == name and label in s.labels}


async def webhook_stack(sqlite_url: str, policy: Policy, clock: TravelClock) -> LocalStack:
    """A server with a webhook CRM (whose receiver never answers): every CRM series exists."""
    return await start_stack(
        sqlite_url,
        with_webhook(policy),
        clock=clock,
        HANDOFF_WEBHOOK_URL="http://127.0.0.1:9/hooks",
        HANDOFF_WEBHOOK_SECRET=SECRET,
    )


async def test_a_fresh_server_has_every_known_series_at_zero(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    """Prometheus's instrumentation guide, "Avoid missing metrics": a labelled series that
    appears only at its first use is invisible to `rate()` and to a dashboard until then, so
    every known label value reads 0 from the start. Before, a fresh server had no series at
    all for Slack's acks, the activity route, the outbox's delivery lag or the CRM's writes."""
    stack = await webhook_stack(sqlite_url, policy, clock)
    try:
        samples = await scrape(stack)
    finally:
        await stack.close()
    kinds = ["block_actions", "command", "event_callback", "other", "url_verification"]
    kinds += ["view_closed", "view_submission"]
    assert series(samples, "handoff_slack_ack_seconds_count", "kind") == dict.fromkeys(kinds, 0)
    assert series(samples, "handoff_intake_seconds_count", "route") == {
        "leads": 0,
        "activity": 0,
    }
    outbox_kinds = dict.fromkeys(KINDS, 0)
    assert series(samples, "handoff_outbox_delivery_lag_seconds_count", "kind") == outbox_kinds
    assert series(samples, "handoff_outbox_depth", "kind") == outbox_kinds
    assert series(samples, "handoff_crm_write_seconds_count", "crm") == {"webhook": 0}
    crm_kinds = {"crm_sync": 0, "crm_note": 0, "crm_event": 0}
    assert series(samples, "handoff_crm_outbox_depth", "kind") == crm_kinds
    for sample in samples:  # every labelled bucket of them too, at 0
        if sample.name.endswith("_bucket") and set(sample.labels) != {"le"}:
            assert sample.value == 0, sample  # (not the sweep's: one ran at start)


async def test_every_metric_served_is_documented_and_every_one_documented_is_served(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    """docs/operations.md's metrics table, its alerts and docs/crm.md name what an operator
    scrapes: each `handoff_*` name there must be served by a running server (with a CRM), and
    each `handoff_*` metric it serves must be in the table, so no alert watches a name that is
    never there and no metric goes unexplained."""
    stack = await webhook_stack(sqlite_url, policy, clock)
    try:
        async with stack.session.get(f"{stack.base_url}/metrics") as response:
            families = list(text_string_to_metric_families(await response.text()))
    finally:
        await stack.close()
    served = {f.name for f in families if f.name.startswith("handoff_")}
    samples = {s.name for f in families for s in f.samples}
    documented = documented_metrics()
    assert sorted(documented - served - samples) == [], "documented, not served"
    undocumented = [f for f in served if not {f, f"{f}_total"} & documented]
    assert sorted(undocumented) == [], "served, not in docs/operations.md"


async def test_the_oldest_waits_keep_growing_while_the_database_does_not_answer(
    sqlite_url: str, policy: Policy, clock: TravelClock, tmp_path: Path
) -> None:
    """Slack and the CRM are down, then the database too: nothing is delivered, so the ages
    the documented alerts watch (Slack's over 600 s, the CRM's over 900 s) must go on
    growing. They stood still at their last reading, and the alerts never fired."""
    receiver = Receiver(free_port())  # never up: every CRM write is refused a connection
    stack = await start_stack(
        sqlite_url,
        with_webhook(policy),
        clock=clock,
        HANDOFF_WEBHOOK_URL=receiver.url,
        HANDOFF_WEBHOOK_SECRET=SECRET,
    )
    try:
        stack.sim.inject("chat.postMessage", status=500, seconds=3600)
        assert (await stack.post_lead(lead_payload()))[0] == 201
        before = await scrape(stack)
        database = stack.handoff.database
        path = Path(str(database.url).split("///", 1)[1])
        await database.dispose()
        os.rename(path, tmp_path / "away.db")
        os.mkdir(path)  # where the file was, a directory: SQLite cannot open it
        try:
            clock.advance(minutes=16)
            during = await scrape(stack)
        finally:
            await database.dispose()
            os.rmdir(path)
            os.rename(tmp_path / "away.db", path)
    finally:
        await stack.close()
    assert value(before, "handoff_outbox_oldest_pending_seconds") < 60
    assert value(before, "handoff_crm_outbox_oldest_pending_seconds") < 60
    assert value(during, "handoff_metrics_probe_failures") > 0
    assert value(during, "handoff_outbox_oldest_pending_seconds") >= 16 * 60
    assert value(during, "handoff_crm_outbox_oldest_pending_seconds") >= 16 * 60
