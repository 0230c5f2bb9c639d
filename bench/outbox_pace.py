"""300 leads to 3 channels while Slack allows 20 posts per second per channel.

    python -m bench.outbox_pace [--leads 300] [--rate 20] [--rounds 3]

The Slack simulator runs in this process and enforces chat.postMessage at `rate` per second
per channel (a token bucket with a burst of 2; over it, a 429 with Retry-After). The floor
is leads / channels / rate seconds (5 s for the defaults). Each round:

* bare: a minimal poster measured on the same machine, one lane per channel, sending the
  messages straight to the simulator at exactly the rate (what a perfect client achieves);
* handoff: a fresh `handoff serve` (SQLite file, example SLA, pace set to the same rate with
  bursts of 1.8 messages, a little under the simulator's 2, as you would set it under Slack's);
  the leads arrive through `POST /leads` (20 at a time) and the clock runs from the first
  request to the moment the simulator holds the last lead's message.

It prints the median round of each, the ratio to the floor (target: within 1.2x) and to the
bare poster, and the leads lost, posted twice, and answered 429.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bench.claim_ack import ROOT, TOKEN, free_port, process, serve_env, wait_ready
from bot.simulator.server import SlackSimulator

CHANNELS = {"C0ENT": 2400, "C0MID": 450, "C0SMB": 40}  # channel → employees that route there


@dataclass
class Run:
    seconds: float
    lost: int
    duplicated: int
    rate_limited: int


def lead(index: int, stamp: int) -> dict[str, Any]:
    employees = list(CHANNELS.values())[index % len(CHANNELS)]
    return {
        "external_id": f"pace-{stamp}-{index}",
        "email": f"lead{index}@pace.example",
        "name": f"Lead {index}",
        "title": "VP Sales",
        "company": {"name": f"Company {index}", "employees": employees},
        "source": "webinar",
        "score": 85,
    }


def posted(sim: SlackSimulator) -> Counter[str]:
    seen: Counter[str] = Counter()
    for channel in CHANNELS:
        for message in sim.messages(channel):
            payload = (message.metadata or {}).get("event_payload") or {}
            key = payload.get("external_id") or payload.get("key")
            if key:
                seen[str(key)] += 1
    return seen


def prepare(sim: SlackSimulator, rate: float) -> None:
    sim.reset()
    sim.set_rate_limit("chat.postMessage", rate, burst=2)


async def wait_for_posts(sim: SlackSimulator, count: int, limit: float = 120.0) -> float:
    """The moment the simulator holds `count` lead messages (polled every 5 ms)."""
    deadline = time.perf_counter() + limit
    while len(posted(sim)) < count:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {len(posted(sim))} of {count} posts after {limit}s")
        await asyncio.sleep(0.005)
    return time.perf_counter()


def outcome(sim: SlackSimulator, expected: set[str], seconds: float) -> Run:
    seen = posted(sim)
    return Run(
        seconds=seconds,
        lost=len(expected - set(seen)),
        duplicated=sum(count - 1 for count in seen.values() if count > 1),
        rate_limited=len(sim.rate_limited_calls),
    )


async def bare_round(sim: SlackSimulator, leads: int, rate: float) -> Run:
    """The baseline: one sequential, perfectly paced lane per channel, no database, no app."""
    prepare(sim, rate)
    client = AsyncWebClient(token="xoxb-bench", base_url=sim.api_url)
    client.retry_handlers.clear()
    keys = [f"bare-{i}" for i in range(leads)]
    by_channel: dict[str, list[str]] = {channel: [] for channel in CHANNELS}
    for index, key in enumerate(keys):
        by_channel[list(CHANNELS)[index % len(CHANNELS)]].append(key)

    async def lane(channel: str, items: list[str]) -> None:
        next_at = time.perf_counter()
        for key in items:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            next_at = max(next_at + 1.0 / rate, time.perf_counter())
            meta = {"event_type": "bench", "event_payload": {"key": key}}
            await client.chat_postMessage(channel=channel, text=key, metadata=meta)

    start = time.perf_counter()
    await asyncio.gather(*(lane(channel, items) for channel, items in by_channel.items()))
    run = outcome(sim, set(keys), time.perf_counter() - start)
    if client.session is not None:
        await client.session.close()
    return run


async def handoff_round(sim: SlackSimulator, leads: int, rate: float) -> Run:
    prepare(sim, rate)
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = serve_env(
            sim.api_url,
            f"sqlite+aiosqlite:///{folder}/pace.db",
            HOST="127.0.0.1",
            PORT=str(port),
            HANDOFF_SLACK_POSTS_PER_SECOND=str(rate),
            HANDOFF_SLACK_POST_BURST="1.8",  # a little under the simulated burst of 2
        )
        serve = [sys.executable, "-m", "bot.cli", "serve"]
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        stamp = time.time_ns()
        payloads = [lead(i, stamp) for i in range(leads)]
        async with (
            aiohttp.ClientSession() as session,
            process(serve, "serving on", env),
        ):
            await wait_ready(session, f"{base}/healthz")
            semaphore = asyncio.Semaphore(20)

            async def send(body: dict[str, Any]) -> None:
                async with (
                    semaphore,
                    session.post(f"{base}/leads", json=body, headers=headers) as r,
                ):
                    assert r.status == 201, await r.text()

            start = time.perf_counter()
            await asyncio.gather(*(send(body) for body in payloads))
            end = await wait_for_posts(sim, leads)
            await asyncio.sleep(0.5)  # a duplicate would arrive now
            return outcome(sim, {p["external_id"] for p in payloads}, end - start)


async def measure(leads: int, rate: float, rounds: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {"bare": [], "handoff": []}
    sim = SlackSimulator()
    sim.validate = False  # Slack's CPU, not ours
    await sim.start()
    for channel in CHANNELS:
        sim.add_channel(channel, channel.lower())
    sim.add_channel("C0MKTFEED", "marketing-feedback")
    sim.add_channel("C0ESCALATE", "sla-escalations")
    try:
        for _ in range(rounds):
            runs["bare"].append(await bare_round(sim, leads, rate))
            runs["handoff"].append(await handoff_round(sim, leads, rate))
    finally:
        await sim.stop()
    return runs


def middle(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


def report(runs: dict[str, list[Run]], leads: int, rate: float) -> str:
    floor = leads / len(CHANNELS) / rate
    bare, ours = middle(runs["bare"]), middle(runs["handoff"])
    lines = [
        f"{leads} leads to {len(CHANNELS)} channels at {rate:g} posts/s per channel: "
        f"floor {floor:.2f} s",
        "",
        "| | seconds (median) | vs floor | lost | posted twice | 429s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, run in (("bare paced poster", bare), ("Handoff (intake → outbox → Slack)", ours)):
        lines.append(
            f"| {name} | {run.seconds:.2f} | {run.seconds / floor:.2f}x | {run.lost} "
            f"| {run.duplicated} | {run.rate_limited} |"
        )
    lines.append("")
    lines.append(
        f"Handoff vs bare poster: {ours.seconds / bare.seconds:.2f}x; "
        f"all rounds (s): {', '.join(f'{r.seconds:.2f}' for r in runs['handoff'])}; "
        f"target: within 1.2x of the floor, none lost, none twice"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="posts per second per channel")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs = asyncio.run(measure(args.leads, args.rate, args.rounds))
    print(report(runs, args.leads, args.rate))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    data = {name: [run.__dict__ for run in items] for name, items in runs.items()}
    (out / "outbox_pace.json").write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
