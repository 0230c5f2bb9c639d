"""SIGTERM (issue 15): a real `handoff serve` stops taking requests, lets the Slack delivery under
way finish within HANDOFF_SHUTDOWN_GRACE, and exits 0; nothing is left half-done."""

from __future__ import annotations

import asyncio
import signal
from contextlib import nullcontext
from pathlib import Path

import aiohttp
import pytest

from bot.cli.stack import INTAKE_TOKEN, SIGNING_SECRET
from storage import db
from storage.repository import Store
from tests.conftest import ROOT, lead_payload
from tests.e2e.servers import SERVING
from tests.e2e.test_claim_race import new_simulator
from tests.e2e.test_cli import HANDOFF, clean_env, sigint_by_default

ENTERPRISE = "C0ENT"


async def test_sigterm_finishes_the_delivery_under_way_and_exits_0(tmp_path: Path) -> None:
    sim = await new_simulator().start()
    url = f"sqlite+aiosqlite:///{tmp_path / 'handoff.db'}"
    process, base, output = await _serve(tmp_path, sim.api_url, HANDOFF_SHUTDOWN_GRACE="20")
    try:
        sim.answer_delay = 3.0  # Slack acts at once but answers after 3 s
        headers = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/leads", json=lead_payload(), headers=headers) as r:
                assert r.status == 201
            await sim.wait_for(lambda: sim.calls_to("chat.postMessage"), what="the post")
            process.send_signal(signal.SIGTERM)  # while Slack's answer is on its way
            await asyncio.sleep(0.5)
            with pytest.raises(aiohttp.ClientConnectionError):  # no new requests
                async with session.get(f"{base}/healthz") as r:
                    pass
        async with asyncio.timeout(30):
            rest, _ = await process.communicate()
        output.append(rest.decode(errors="replace"))
        assert process.returncode == 0, "".join(output)
    finally:
        if process.returncode is None:
            process.kill()
        await sim.stop()

    database = db.Database(url)
    try:
        lead = await Store(database).get(1)
        assert lead is not None and lead.message_ts is not None  # the answer was recorded
        assert len(sim.messages(ENTERPRISE)) == 1
        rows = await database.run(
            lambda c: c.exec_driver_sql("SELECT state, unknown FROM outbox").all()
        )
        assert ("done", 0) in [tuple(row) for row in rows]
        assert all(state == "done" for state, _ in rows), rows
    finally:
        await database.dispose()
    assert "stopping: finishing what is under way" in "".join(output)


async def _serve(
    tmp_path: Path, sim_url: str, *, sigint_ignored: bool = False, **extra: str
) -> tuple[asyncio.subprocess.Process, str, list[str]]:
    """A real `handoff serve` on a SQLite file: the process, its base URL and its output
    (`sigint_ignored`: started as a script's `handoff serve &` is, with SIGINT ignored)."""
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-shutdown",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=sim_url,
        HANDOFF_INTAKE_TOKEN=INTAKE_TOKEN,
        HANDOFF_SLA_FILE=str(ROOT / "sla.yaml"),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'handoff.db'}",
        LOG_FORMAT="text",
        HOST="127.0.0.1",
        PORT="0",
        **extra,
    )
    before = signal.signal(signal.SIGINT, signal.SIG_IGN) if sigint_ignored else None
    with nullcontext() if sigint_ignored else sigint_by_default():  # tests send it SIGINT
        process = await asyncio.create_subprocess_exec(
            *HANDOFF,
            "serve",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    if before is not None:
        signal.signal(signal.SIGINT, before)
    assert process.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(60):
            while (found := SERVING.search("".join(output))) is None:
                line = await process.stdout.readline()
                assert line, "handoff serve exited:\n" + "".join(output)
                output.append(line.decode(errors="replace"))
    except BaseException:
        process.kill()
        raise
    return process, f"http://127.0.0.1:{found.group(1)}", output


async def test_sigterm_drains_with_readyz_failing_and_a_second_signal_stops_at_once(
    tmp_path: Path,
) -> None:
    """HANDOFF_SHUTDOWN_DRAIN: after SIGTERM the replica still answers, /readyz says it is
    draining (503, so the load balancer stops sending), and leads sent meanwhile are taken.
    A second SIGTERM (an impatient orchestrator) ends the drain and it exits 0."""
    sim = await new_simulator().start()
    process, base, output = await _serve(tmp_path, sim.api_url, HANDOFF_SHUTDOWN_DRAIN="300")
    try:
        headers = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/readyz") as r:
                assert r.status == 200, await r.text()
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):  # the signal is handled on the server's loop
                while True:
                    async with session.get(f"{base}/readyz") as r:
                        if r.status == 503:
                            answer = await r.json()
                            break
                    await asyncio.sleep(0.05)
            assert answer["ready"] is False
            assert answer["checks"]["shutdown"]["ok"] is False
            assert "draining" in answer["checks"]["shutdown"]["detail"]
            async with session.post(f"{base}/leads", json=lead_payload(), headers=headers) as r:
                assert r.status == 201  # still taken while the load balancer catches up
            async with session.get(f"{base}/healthz") as r:
                assert r.status == 200  # alive: liveness must not restart a draining replica
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            rest, _ = await process.communicate()
        output.append(rest.decode(errors="replace"))
        assert process.returncode == 0, "".join(output)
        assert "draining for 300 s" in "".join(output)
    finally:
        if process.returncode is None:
            process.kill()
        await sim.stop()


async def test_sigint_does_not_drain(tmp_path: Path) -> None:
    """Ctrl-C is a developer at a terminal: it stops at once, whatever the drain is set to."""
    sim = await new_simulator().start()
    process, _, output = await _serve(tmp_path, sim.api_url, HANDOFF_SHUTDOWN_DRAIN="300")
    try:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            rest, _ = await process.communicate()
        output.append(rest.decode(errors="replace"))
        assert process.returncode == 0, "".join(output)
        assert "draining" not in "".join(output)
    finally:
        if process.returncode is None:
            process.kill()
        await sim.stop()


async def test_sigint_ignored_at_start_stays_ignored(tmp_path: Path) -> None:
    """A script's `handoff serve &` starts with SIGINT ignored (POSIX: a non-interactive shell's
    background command), so a Ctrl-C meant for the script's foreground does not stop it; it
    stays ignored, as `handoff import` keeps it, and SIGTERM still stops the server."""
    sim = await new_simulator().start()
    process, base, output = await _serve(tmp_path, sim.api_url, sigint_ignored=True)
    try:
        process.send_signal(signal.SIGINT)
        async with aiohttp.ClientSession() as session:
            for _ in range(3):  # still serving after the SIGINT was delivered
                async with session.get(f"{base}/healthz") as r:
                    assert r.status == 200
                await asyncio.sleep(0.2)
        assert process.returncode is None
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            rest, _ = await process.communicate()
        output.append(rest.decode(errors="replace"))
        assert process.returncode == 0, "".join(output)
    finally:
        if process.returncode is None:
            process.kill()
        await sim.stop()
