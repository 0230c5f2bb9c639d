"""Claim presses through the real HTTP endpoint vs a bare Bolt app that only acks.

    python -m bench.claim_ack [--presses 300] [--rounds 3] [--reps 1000]

Three processes besides this client: the Slack simulator (Block Kit validation off: that is
Slack's CPU, not ours; each answer 20 ms late, so message updates wait in the outbox while
presses arrive), `handoff serve` (SQLite file, the example SLA with an enterprise pool of
`--reps` reps) and the bare Bolt app. Each press is a signed `block_actions` request for a
different lead by one of the pool's reps, shaped as Slack sends it: with the whole posted
message, blocks included, read back from the simulator. Latency is the time to the HTTP answer
(Slack's 3-second ack). Prints p50/p99 and presses per second at 10 and 100 concurrent, and
the ratio of Handoff's p99 to the bare app's (target: within 1.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import sys
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import quantiles
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret"
TOKEN = "bench-intake-token"
ERASURE_KEY = "bench-erasure-key-not-secret-0123456"
LEVELS = (10, 100)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signed_press(
    lead_id: int, user: str, response_url: str, message: dict[str, Any]
) -> tuple[bytes, dict[str, str]]:
    """A Claim press shaped like Slack's block_actions payload (the pressed message inside),
    signed like Slack signs it."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T0SIM"},
        "api_app_id": "A0HANDOFF",
        "token": "verification-token",
        "container": {
            "type": "message",
            "message_ts": message.get("ts", "1.0"),
            "channel_id": "C0ENT",
            "is_ephemeral": False,
        },
        "trigger_id": f"{lead_id}.1.bench",
        "team": {"id": "T0SIM", "domain": "bench"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": "C0ENT", "name": "sales-enterprise"},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": "lead_claim",
                "block_id": "lead_claim",
                "text": {"type": "plain_text", "text": "Claim", "emoji": True},
                "value": str(lead_id),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return signed(("payload=" + urllib.parse.quote(json.dumps(payload))).encode())


def signed(body: bytes) -> tuple[bytes, dict[str, str]]:
    """A form body with the headers Slack signs it with (v0, the signing secret)."""
    stamp = str(int(time.time()))
    base = f"v0:{stamp}:".encode() + body
    signature = "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }
    return body, headers


# The simulator the benchmarks start enforces no rate limit: deliver as fast as it answers.
UNPACED = {
    "HANDOFF_SLACK_POSTS_PER_SECOND": "10000",
    "HANDOFF_SLACK_POST_BURST": "100",
    "HANDOFF_SLACK_CALLS_PER_MINUTE": "600000",
    "HANDOFF_SLACK_CALL_BURST": "100",
}


def serve_env(api_url: str, database_url: str, **more: str) -> dict[str, str]:
    """The environment of a `handoff serve` a benchmark starts: this process's, with the
    benchmark's Slack token, signing secret, intake token and erasure key, Slack at `api_url` (the
    simulator), the example SLA, the database, and `more` (which may replace any of them)."""
    return {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": api_url,
        "HANDOFF_INTAKE_TOKEN": TOKEN,
        "HANDOFF_ERASURE_KEY": ERASURE_KEY,
        "HANDOFF_SLA_FILE": str(ROOT / "sla.yaml"),
        "DATABASE_URL": database_url,
        **more,
    }


@asynccontextmanager
async def process(args: list[str], ready: str, env: dict[str, str]) -> AsyncIterator[int]:
    """Run a server process until the block ends (its pid); wait for its `ready` line first."""
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert proc.stdout is not None
    seen: list[str] = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        seen.append(line)
        if ready in line:
            break
        if not line:
            raise RuntimeError(f"{args} exited: {''.join(seen)}")
    drain = asyncio.create_task(proc.stdout.read())  # keep its pipe from filling up
    try:
        yield proc.pid
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
        await drain


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(600):
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never became ready")


@dataclass
class Level:
    concurrency: int
    p50_ms: float
    p99_ms: float
    per_second: float
    errors: int


@dataclass(frozen=True)
class Presses:
    """What a round presses: the leads, their posted messages, and the reps who press."""

    response_url: str
    messages: dict[int, dict[str, Any]]
    reps: list[str]


async def press_all(
    session: aiohttp.ClientSession, url: str, leads: list[int], concurrency: int, presses: Presses
) -> Level:
    latencies: list[float] = []
    errors = 0
    queue = iter(leads)

    async def worker() -> None:
        nonlocal errors
        for lead_id in queue:
            rep = presses.reps[lead_id % len(presses.reps)]
            message = presses.messages.get(lead_id, {})
            body, headers = signed_press(lead_id, rep, presses.response_url, message)
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = quantiles(latencies, n=100, method="inclusive")
    return Level(concurrency, cuts[49] * 1000, cuts[98] * 1000, len(latencies) / elapsed, errors)


async def metric(session: aiohttp.ClientSession, base: str, name: str) -> float:
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))


async def settled(session: aiohttp.ClientSession, base: str) -> None:
    """Wait until Handoff has delivered every Slack call it queued (posts, updates, answers)."""
    for _ in range(2400):
        gauges = ("handoff_slack_queue_depth", "handoff_slack_outbox_pending")
        if all([await metric(session, base, gauge) == 0 for gauge in gauges]):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("Slack calls were still queued after 2 minutes")


async def make_leads(session: aiohttp.ClientSession, base: str, count: int) -> list[int]:
    """Create `count` enterprise MQLs through intake and wait until Slack has them all."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    semaphore = asyncio.Semaphore(20)
    ids: list[int] = []
    stamp = time.time_ns()

    async def one(index: int) -> None:
        payload = {
            "external_id": f"bench-{stamp}-{index}",
            "email": f"lead{index}@bench.example",
            "name": f"Lead {index}",
            "title": "VP Sales",
            "company": {"name": f"Company {index}", "employees": 1500},
            "source": "webinar",
            "score": 85,
        }
        async with semaphore, session.post(f"{base}/leads", json=payload, headers=headers) as resp:
            ids.append(int((await resp.json())["id"]))

    await asyncio.gather(*(one(i) for i in range(count)))
    await settled(session, base)
    return sorted(ids)


async def posted_messages(session: aiohttp.ClientSession, api_url: str) -> dict[int, Any]:
    """Each lead's message in #sales-enterprise as Slack holds it (conversations.history)."""
    found: dict[int, Any] = {}
    cursor = ""
    headers = {"Authorization": "Bearer xoxb-bench"}
    while True:
        form = {"channel": "C0ENT", "limit": "999", "include_all_metadata": "true"}
        if cursor:
            form["cursor"] = cursor
        async with session.post(
            f"{api_url}conversations.history", data=form, headers=headers
        ) as response:
            page = await response.json()
        for message in page.get("messages") or []:
            meta = (message.get("metadata") or {}).get("event_payload") or {}
            if "lead_id" in meta:
                found[int(meta["lead_id"])] = message
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
        if not cursor:
            return found


def bench_sla(folder: str, reps: list[str]) -> str:
    """The example SLA with `reps` as the enterprise pool; its path."""
    data = yaml.safe_load((ROOT / "sla.yaml").read_text(encoding="utf-8"))
    enterprise = next(s for s in data["segments"] if s["name"] == "enterprise")
    enterprise["reps"] = reps
    path = Path(folder) / "sla.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


def median_level(runs: list[Level]) -> Level:
    """The run with the median p99 of several rounds (the machine's noise is large)."""
    return sorted(runs, key=lambda level: level.p99_ms)[len(runs) // 2]


async def measure(presses: int, rounds: int, pool: int) -> dict[str, list[Level]]:
    """Both servers up at once; rounds alternate between them so both see the same machine."""
    sim_port, app_port, bare_port = free_port(), free_port(), free_port()
    api_url = f"http://127.0.0.1:{sim_port}/api/"
    response_url = f"http://127.0.0.1:{sim_port}/response/bench"
    env = dict(os.environ)
    python = sys.executable
    simulator = [
        python,
        "-m",
        "bench.servers",
        "simulator",
        "--port",
        str(sim_port),
        "--answer-delay",
        "0.02",
    ]
    bare = [
        python,
        "-m",
        "bench.servers",
        "bare",
        "--port",
        str(bare_port),
        "--api-url",
        api_url,
        "--secret",
        SECRET,
    ]
    runs: dict[str, dict[int, list[Level]]] = {"bare": {}, "handoff": {}}
    reps = [f"U1REP{n:04d}" for n in range(pool)]
    with tempfile.TemporaryDirectory() as folder:
        handoff_env = serve_env(
            api_url,
            f"sqlite+aiosqlite:///{folder}/bench.db",
            HANDOFF_SLA_FILE=bench_sla(folder, reps),
            HOST="127.0.0.1",
            PORT=str(app_port),
            **UNPACED,
        )
        serve = [python, "-m", "bot.cli", "serve"]
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session,
            process(simulator, "simulator ready", env),
            process(bare, "bare bolt ready", env),
            process(serve, "serving on", handoff_env),
        ):
            base = f"http://127.0.0.1:{app_port}"
            urls = {
                "bare": f"http://127.0.0.1:{bare_port}/slack/events",
                "handoff": f"{base}/slack/events",
            }
            await wait_ready(session, f"{base}/healthz")
            leads = iter(await make_leads(session, base, 100 + presses * len(LEVELS) * rounds))
            pressing = Presses(response_url, await posted_messages(session, api_url), reps)
            warm = [next(leads) for _ in range(100)]
            for url in urls.values():
                await press_all(session, url, warm, 10, pressing)
            await settled(session, base)
            for _ in range(rounds):
                for level in LEVELS:
                    chunk = [next(leads) for _ in range(presses)]
                    for name, url in urls.items():
                        level_run = await press_all(session, url, chunk, level, pressing)
                        runs[name].setdefault(level, []).append(level_run)
                        await settled(session, base)  # message updates finish between runs
    return {
        name: [median_level(by_level[level]) for level in LEVELS] for name, by_level in runs.items()
    }


def report(results: dict[str, list[Level]]) -> str:
    lines = [
        "| concurrent | bare Bolt p50 / p99 | Handoff p50 / p99 | p99 ratio "
        "| bare presses/s | Handoff presses/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for bare, ours in zip(results["bare"], results["handoff"], strict=True):
        ratio = ours.p99_ms / bare.p99_ms
        lines.append(
            f"| {bare.concurrency} | {bare.p50_ms:.1f} / {bare.p99_ms:.1f} ms "
            f"| {ours.p50_ms:.1f} / {ours.p99_ms:.1f} ms | {ratio:.2f}x "
            f"| {bare.per_second:.0f} | {ours.per_second:.0f} |"
        )
    errors = sum(level.errors for levels in results.values() for level in levels)
    lines.append(f"\nnon-200 answers: {errors}; target: p99 ratio within 1.5x at each level")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presses", type=int, default=300, help="presses per level and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--reps", type=int, default=1000, help="reps in the enterprise pool")
    args = parser.parse_args()
    results = asyncio.run(measure(args.presses, args.rounds, args.reps))
    print(report(results))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    data = {name: [level.__dict__ for level in levels] for name, levels in results.items()}
    (out / "claim_ack.json").write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
