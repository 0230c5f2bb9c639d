"""CRM write-back at HubSpot's pace: 1,000 dispositions drained into a HubSpot portal that
allows 100 requests per 10 s, against the floor that limit sets, with none lost or doubled.

    python -m bench.crm_drain [--leads 1000] [--burst 100] [--window 10]

A real Handoff server (its HTTP routes, Bolt, the disposition's transaction, the CRM outbox and
its worker, the official `hubspot-api-client`) on a SQLite file, the Slack simulator, and the
local HubSpot fake enforcing the rolling limit (429 with HubSpot's headers past it). The leads
are taken in and claimed first with no `crm:` section (nothing for the CRM yet); then the server
starts again with `crm: {kind: hubspot, writes_per_second: burst/window}`, and each lead's owner
presses *Qualified*, 10 at a time. Each disposition owes HubSpot two writes: the contact's owner
and status (one PATCH) and the disposition's note (one POST). The worker's limit is set to the
portal's (`writes_per_second` × `window_seconds` = `burst`), and it counts HTTP requests, not
writes. The clock starts at the first press and stops when the CRM outbox is empty. The floor:
the requests HubSpot took (a 429 is not one), sent at exactly its limit (the first `burst` at
once, then `burst` per `window`). Target: within 1.2×, none lost or doubled, and never more
than `burst` requests in any `window` (so no 429).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bot.cli.stack import LocalStack, local_slack, start_stack
from bot.crmfake.hubspot import HubSpotFake
from bot.domain.policy import Policy, parse_policy
from bot.simulator.server import SlackSimulator
from bot.slack.publisher import utc_now

ROOT = Path(__file__).resolve().parents[1]
REPS = ["U0REP1", "U0REP2"]
CONCURRENT = 10


def policy(crm: dict[str, Any] | None) -> Policy:
    data = yaml.safe_load((ROOT / "sla.yaml").read_text())
    if crm is not None:
        data["crm"] = crm
    return parse_policy(data)


async def pressing(stack: LocalStack, label: str, leads: list[tuple[int, str, str]]) -> None:
    """Press `label` on each lead's message as (lead id, presser, message ts), 10 at a time."""
    queue = iter(leads)

    async def presser() -> None:
        for _, user, ts in queue:
            answer = await stack.driver.press(user, label, channel="C0ENT", message_ts=ts)
            assert answer.status == 200, answer.body

    await asyncio.gather(*(presser() for _ in range(CONCURRENT)))


async def prepare(
    url: str, sim: SlackSimulator, hub: HubSpotFake, count: int
) -> list[tuple[int, str, str]]:
    """`count` enterprise leads taken in (each with its HubSpot contact id) and claimed, with
    no CRM configured; (lead id, owner, message ts) of each."""
    stack = await start_stack(url, policy(None), clock=utc_now, sim=sim)
    try:
        posted: list[tuple[int, str, str]] = []
        for n in range(count):
            email = f"lead-{n}@bench.example"
            contact = hub.add_contact(email, firstname="Lead", lastname=str(n))
            payload = {
                "external_id": f"crm-{n}",
                "email": email,
                "name": f"Lead {n}",
                "title": "VP Sales",
                "company": {"name": f"Company {n}", "employees": 2400},
                "source": "webinar",
                "score": 88,
                "crm_id": contact,
            }
            status, answer = await stack.post_lead(payload)
            assert status == 201, answer
            posted.append((int(answer["id"]), REPS[n % 2], ""))
        await stack.settle()
        leads = []
        for lead_id, rep, _ in posted:
            lead = await stack.services.lead(lead_id)
            assert lead.message_ts is not None
            leads.append((lead_id, rep, lead.message_ts))
        await pressing(stack, "Claim", leads)
        await stack.settle()
        return leads
    finally:
        await stack.close()


def floor_seconds(requests: int, burst: int, window: float) -> float:
    """The least time `requests` take at HubSpot's limit: `burst` at once, then `burst` more
    each `window` (the rolling window lets the next batch go when the first leaves it)."""
    batches = -(-requests // burst)
    return (batches - 1) * window


async def measure(count: int, burst: int, window: float) -> dict[str, Any]:
    hub = await HubSpotFake().start()
    for rep, name in zip(REPS, ("maya", "tom"), strict=True):
        hub.add_owner(f"{name}@example.com", name.title(), rep)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/handoff.db"
        sim = await local_slack()
        leads = await prepare(url, sim, hub, count)
        hub.burst = (burst, window)  # from now on, HubSpot's documented burst limit
        before = len(hub.requests)
        crm = {"kind": "hubspot", "writes_per_second": burst / window, "window_seconds": window}
        stack = await start_stack(
            url,
            policy(crm),
            clock=utc_now,
            sim=sim,
            HUBSPOT_ACCESS_TOKEN=hub.token,
            HUBSPOT_API_URL=hub.base_url,
        )
        try:
            started = time.perf_counter()
            await pressing(stack, "Qualified", leads)
            worker = stack.handoff.crm
            assert worker is not None
            while await worker.rows.pending():
                await worker.drain(seconds=5.0)
            elapsed = time.perf_counter() - started
        finally:
            await stack.close()
            await sim.stop()
    requests = hub.requests[before:]
    limited = len(hub.limited)  # the burst limit is on only now
    most = hub.most_in_window(window)
    patched = [w.path for w in hub.writes if w.method == "PATCH"]
    notes = {cid: len(hub.notes_of(cid)) for cid in hub.contacts}
    statuses = {cid: hub.contact(cid).get("hs_lead_status") for cid in hub.contacts}
    await hub.stop()
    floor = floor_seconds(len(requests) - limited, burst, window)
    return {
        "leads": count,
        "requests": len(requests),
        "patches": len(patched),
        "notes": sum(notes.values()),
        "doubled": sum(1 for n in notes.values() if n > 1),
        "missing": sum(1 for n in notes.values() if n == 0)
        + sum(1 for s in statuses.values() if s != "CONNECTED"),
        "other": len(requests) - len(patched) - sum(notes.values()) - limited,
        "limited": limited,
        "most": most,
        "burst": burst,
        "seconds": elapsed,
        "floor": floor,
        "ratio": elapsed / floor if floor else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    logging.getLogger("handoff").setLevel(logging.ERROR)
    result = asyncio.run(measure(args.leads, args.burst, args.window))
    print(
        "| dispositions | HubSpot requests | PATCHes | notes | other reads | 429s "
        "| most in any window | doubled | missing | drained in | floor | ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {result['leads']:,} | {result['requests']:,} | {result['patches']:,} | "
        f"{result['notes']:,} | {result['other']:,} | {result['limited']} | "
        f"{result['most']} of {result['burst']} | {result['doubled']} | {result['missing']} | "
        f"{result['seconds']:.1f} s | {result['floor']:.1f} s | {result['ratio']:.2f}x |"
    )
    met = (
        result["ratio"] <= 1.2
        and not result["doubled"]
        and not result["missing"]
        and result["most"] <= result["burst"]
    )
    print(
        "\ntarget <= 1.2x of the floor, none lost or doubled, never over the limit: "
        f"{'MET' if met else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
