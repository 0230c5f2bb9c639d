"""SIGTERM (issue 15): a real `handoff serve` stops taking requests, lets the Slack delivery under
way finish within HANDOFF_SHUTDOWN_GRACE, and exits 0; nothing is left half-done."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from bot.cli.stack import INTAKE_TOKEN, SIGNING_SECRET
from storage import db
from storage.repository import Store
from tests.conftest import ROOT, lead_payload
from tests.e2e.servers import SERVING
from tests.e2e.test_claim_race import new_simulator
from tests.e2e.test_cli import HANDOFF, clean_env

ENTERPRISE = "C0ENT"


async def test_sigterm_finishes_the_delivery_under_way_and_exits_0(tmp_path: Path) -> None:
    sim = await new_simulator().start()
    url = f"sqlite+aiosqlite:///{tmp_path / 'handoff.db'}"
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-shutdown",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=sim.api_url,
        HANDOFF_INTAKE_TOKEN=INTAKE_TOKEN,
        HANDOFF_SLA_FILE=str(ROOT / "sla.yaml"),
        DATABASE_URL=url,
        HANDOFF_SHUTDOWN_GRACE="20",
        LOG_FORMAT="text",
        HOST="127.0.0.1",
        PORT="0",
    )
    process = await asyncio.create_subprocess_exec(
        *HANDOFF,
        "serve",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(60):
            while (found := SERVING.search("".join(output))) is None:
                line = await process.stdout.readline()
                assert line, "handoff serve exited:\n" + "".join(output)
                output.append(line.decode(errors="replace"))
        base = f"http://127.0.0.1:{found.group(1)}"
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
