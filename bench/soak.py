"""A bounded soak run: mixed traffic for minutes against a real `handoff serve`, while Slack
fails now and then; the server's memory and its outbox must reach a plateau, not keep growing.

    python -m bench.soak [--seconds 600] [--leads-per-second 4] [--sample 10]

A `handoff serve` on a SQLite file (sweeping every 5 s, so escalations fire too) and the Slack
simulator, which answers 500 to every 15th chat call and 429 with Retry-After to every 20th
post. Every second: new leads through `POST /leads`; claims, call attempts and Qualified /
Unable-to-contact dispositions pressed as Slack sends them on leads posted earlier; and every
20 s a manager's `/sla-report`. Every `sample` seconds it records the server's resident memory
(VmRSS), that of its child processes (the report worker, which builds the reports and their
charts, and multiprocessing's resource tracker) and its outbox depth (`/metrics`).

It prints the curve and a verdict: memory (the server's, and the server's with its children)
plateaus when its last third is within 10% of its middle third, and the outbox when its depth
at the end is under a minute of traffic and not above its depth in the middle of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.claim_ack import ROOT, SECRET, TOKEN, free_port, metric, process, serve_env, wait_ready

REPS = ["U0REP1", "U0REP2"]
MANAGER = "U0MGR1"


@dataclass
class Sample:
    second: float
    rss_mb: float
    children_mb: float  # the report worker and the resource tracker
    outbox: int
    leads: int

    @property
    def total_mb(self) -> float:
        return self.rss_mb + self.children_mb


@dataclass
class Traffic:
    leads: int = 0
    presses: int = 0
    reports: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children_mb(pid: int) -> float:
    """The resident memory of `pid`'s child processes (Linux: /proc/PID/task/*/children)."""
    total = 0.0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                total += sum(rss_mb(int(child)) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread or a child that ended meanwhile
    return total


def sample(second: float, pid: int, outbox: int, leads: int) -> Sample:
    return Sample(second, rss_mb(pid), children_mb(pid), outbox, leads)


def signed(body: bytes, content_type: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    base = f"v0:{stamp}:".encode() + body
    signature = "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }


def press_body(user: str, message: dict[str, Any], action: dict[str, Any], url: str) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0SIM"},
        "api_app_id": "A0HANDOFF",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": "C0ENT"},
        "trigger_id": f"{time.time_ns()}.soak",
        "team": {"id": "T0SIM", "domain": "soak"},
        "channel": {"id": "C0ENT", "name": "sales-enterprise"},
        "message": message,
        "state": {"values": {}},
        "response_url": url,
        "actions": [
            {
                "action_id": action["action_id"],
                "block_id": action.get("block_id", "b"),
                "value": action.get("value", ""),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return ("payload=" + urllib.parse.quote(json.dumps(payload))).encode()


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The message's buttons by their text."""
    found = {}
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("type") == "button":
                found[element["text"]["text"]] = element | {"block_id": block.get("block_id")}
    return found


async def newest_posts(session: aiohttp.ClientSession, api_url: str) -> list[dict[str, Any]]:
    form = {"channel": "C0ENT", "limit": "60", "include_all_metadata": "true"}
    headers = {"Authorization": "Bearer xoxb-soak"}
    async with session.post(f"{api_url}conversations.history", data=form, headers=headers) as r:
        page = await r.json()
    return [m for m in page.get("messages") or [] if m.get("metadata")]


async def traffic(
    session: aiohttp.ClientSession, base: str, api_url: str, seconds: float, per_second: int
) -> Traffic:
    done = Traffic()
    events = f"{base}/slack/events"
    response_url = f"{api_url.removesuffix('/api/')}/response"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    stamp = time.time_ns()
    started = time.monotonic()
    tick = 0
    while time.monotonic() - started < seconds:
        tick += 1
        for n in range(per_second):
            index = tick * per_second + n
            payload = {
                "external_id": f"soak-{stamp}-{index}",
                "email": f"lead{index}@soak.example",
                "name": f"Lead {index}",
                "title": "VP Sales",
                "company": {"name": f"Company {index}", "employees": 1500},
                "source": "webinar",
                "score": 85,
            }
            try:
                async with session.post(f"{base}/leads", json=payload, headers=headers) as r:
                    done.leads += r.status == 201
            except aiohttp.ClientError:
                done.error("intake")
        for message in (await newest_posts(session, api_url))[: per_second * 3]:
            found = buttons(message)
            choice = next(
                (label for label in ("Claim", "Log call", "Qualified") if label in found), None
            )
            if choice is None:
                continue
            user = MANAGER if choice == "Qualified" else REPS[tick % 2]
            body = press_body(user, message, found[choice], response_url)
            content = "application/x-www-form-urlencoded"
            async with session.post(events, data=body, headers=signed(body, content)) as r:
                done.presses += 1
                if r.status != 200:
                    done.error(f"press {r.status}")
        if tick % 20 == 0:
            form = {
                "command": "/sla-report",
                "text": "",
                "user_id": MANAGER,
                "user_name": "grace",
                "channel_id": "C0ENT",
                "team_id": "T0SIM",
                "response_url": response_url,
                "trigger_id": f"{time.time_ns()}.soak",
                "api_app_id": "A0HANDOFF",
            }
            body = urllib.parse.urlencode(form).encode()
            content = "application/x-www-form-urlencoded"
            async with session.post(events, data=body, headers=signed(body, content)) as r:
                done.reports += r.status == 200
        await asyncio.sleep(max(0.0, tick - (time.monotonic() - started)))
    return done


async def soak(seconds: float, per_second: int, every: float) -> tuple[list[Sample], Traffic]:
    samples: list[Sample] = []
    python = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        sim_port, port = free_port(), free_port()
        api_url = f"http://127.0.0.1:{sim_port}/api/"
        env = serve_env(
            api_url,
            f"sqlite+aiosqlite:///{folder}/handoff.db",
            HANDOFF_SWEEP_SECONDS="5",
            HANDOFF_SLACK_POSTS_PER_SECOND="20",
            HANDOFF_SLACK_POST_BURST="20",
            HANDOFF_SLACK_CALLS_PER_MINUTE="6000",
            HANDOFF_SLACK_CALL_BURST="100",
            HOST="127.0.0.1",
            PORT=str(port),
            LOG_FORMAT="text",
            LOG_LEVEL="WARNING",
        )
        sim_args = [
            "simulator",
            "--port",
            str(sim_port),
            "--fail-every",
            "15",
            "--limit-every",
            "20",
        ]
        async with (
            process([python, "-m", "bench.servers", *sim_args], "simulator ready", dict(env)),
            aiohttp.ClientSession() as session,
        ):
            server = await asyncio.create_subprocess_exec(
                python, "-m", "bot.cli", "serve", env={**env, "LOG_LEVEL": "INFO"}, cwd=ROOT,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            try:
                await wait_ready(session, f"{base}/healthz")
                done = Traffic()
                started = time.monotonic()

                async def sampling() -> None:
                    while True:
                        outbox = int(await metric(session, base, "handoff_slack_outbox_pending"))
                        second = time.monotonic() - started
                        samples.append(sample(second, server.pid, outbox, done.leads))
                        await asyncio.sleep(every)

                sampler = asyncio.create_task(sampling())
                done = await traffic(session, base, api_url, seconds, per_second)
                sampler.cancel()
                await asyncio.gather(sampler, return_exceptions=True)
                outbox = int(await metric(session, base, "handoff_slack_outbox_pending"))
                second = time.monotonic() - started
                samples.append(sample(second, server.pid, outbox, done.leads))
            finally:
                server.terminate()
                await asyncio.wait_for(server.wait(), 60)
    return samples, done


def report(samples: list[Sample], done: Traffic, per_second: int) -> str:
    lines = ["| second | server RSS | its children's RSS | outbox depth |", "|---:|---:|---:|---:|"]
    lines += [
        f"| {s.second:.0f} | {s.rss_mb:.0f} MB | {s.children_mb:.0f} MB | {s.outbox} |"
        for s in samples
    ]
    third = max(1, len(samples) // 3)
    middle = statistics.mean(s.rss_mb for s in samples[third : 2 * third])
    last = statistics.mean(s.rss_mb for s in samples[2 * third :])
    middle_all = statistics.mean(s.total_mb for s in samples[third : 2 * third])
    last_all = statistics.mean(s.total_mb for s in samples[2 * third :])
    memory_ok = last <= middle * 1.10
    all_ok = last_all <= middle_all * 1.10
    end, mid = samples[-1].outbox, samples[len(samples) // 2].outbox
    outbox_ok = end <= 60 * per_second * 3 and end <= max(mid, 60 * per_second)
    lines += [
        "",
        f"traffic: {done.leads:,} leads, {done.presses:,} presses, {done.reports} reports; "
        f"errors {done.errors or 'none'}",
        f"memory: last third {last:.0f} MB vs middle third {middle:.0f} MB "
        f"({last / middle:.2f}x; plateau within 1.10x: {'ok' if memory_ok else 'GROWING'})",
        f"with its children: last third {last_all:.0f} MB vs middle third {middle_all:.0f} MB "
        f"({last_all / middle_all:.2f}x; plateau within 1.10x: {'ok' if all_ok else 'GROWING'})",
        f"outbox: {end} waiting at the end, {mid} in the middle "
        f"(plateau: {'ok' if outbox_ok else 'GROWING'})",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--leads-per-second", type=int, default=4)
    parser.add_argument("--sample", type=float, default=10)
    args = parser.parse_args()
    samples, done = asyncio.run(soak(args.seconds, args.leads_per_second, args.sample))
    print(report(samples, done, args.leads_per_second))


if __name__ == "__main__":
    main()
