"""Processes the claim benchmark starts: the Slack simulator and a bare Bolt app that only acks."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli.stack import PEOPLE
from bot.simulator.server import SlackSimulator


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def simulator(
    port: int,
    answer_delay: float = 0.0,
    fail_every: int = 0,
    limit_every: int = 0,
    response_urls: int = 0,
    response_urls_file: str = "",
) -> None:
    sim = SlackSimulator()
    # The example SLA's people: a report's charts go to the manager's DM (conversations.open),
    # refused `user_not_found` by a workspace without them, so their uploads were never made.
    for user_id, (name, real_name) in PEOPLE.items():
        sim.add_user(user_id, name, real_name)
    if fail_every:  # a Slack that answers 500 to every n-th chat call
        sim.inject("chat.*", status=500, every=fail_every)
    if limit_every:  # ...and 429 with Retry-After to every n-th post
        sim.inject("chat.postMessage", retry_after=1, every=limit_every)
    sim.validate = False  # Slack's own work happens on Slack's machines, not on this one
    sim.answer_delay = answer_delay  # a Slack that answers late: the outbox has work waiting
    await sim.start(port=port)
    if response_urls_file:  # one fresh response_url per slash command the bench will send
        urls = [sim.new_response_url("C0ENT", "U0MGR1") for _ in range(response_urls)]
        await asyncio.to_thread(
            Path(response_urls_file).write_text, "\n".join(urls), encoding="utf-8"
        )
    print(f"simulator ready on {sim.base_url}", flush=True)
    await _until_stopped()
    await sim.stop()


async def bare_bolt(port: int, api_url: str, secret: str) -> None:
    """The baseline: Bolt's default mode, one listener that acks and does nothing else."""
    app = AsyncApp(
        client=AsyncWebClient(token="xoxb-bench", base_url=api_url), signing_secret=secret
    )

    @app.action("lead_claim")
    async def claim(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    application = web.Application()
    application.router.add_post("/slack/events", events)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"bare bolt ready on {port}", flush=True)
    await _until_stopped()
    await runner.cleanup()


async def floor(port: int, database_url: str, token: str) -> None:
    """The intake floor: a bare aiohttp handler that checks the same bearer token, reads the
    JSON and inserts one row into the same database, through the same storage layer."""
    import hmac

    import sqlalchemy as sa

    from storage.db import Database

    table = sa.Table(
        "floor_leads",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("external_id", sa.String(255), unique=True),
        sa.Column("payload", sa.JSON),
    )
    database = Database(database_url)
    async with database.engine.begin() as connection:
        await connection.run_sync(table.metadata.create_all)
    expected = f"Bearer {token}"

    async def leads(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            return web.json_response({"error": "unauthorized"}, status=401)
        payload = await request.json()
        row = {"external_id": payload["external_id"], "payload": payload}
        await database.run(lambda db: db.execute(sa.insert(table), row))
        return web.json_response({"ok": True}, status=201)

    application = web.Application()
    application.router.add_post("/leads", leads)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"floor ready on {port}", flush=True)
    await _until_stopped()
    await runner.cleanup()
    await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=["simulator", "bare", "floor"])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--token", default="")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-url", default="")
    parser.add_argument("--secret", default="")
    parser.add_argument("--answer-delay", type=float, default=0.0)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--limit-every", type=int, default=0)
    parser.add_argument("--response-urls", type=int, default=0)
    parser.add_argument("--response-urls-file", default="")
    args = parser.parse_args()
    if args.which == "simulator":
        asyncio.run(
            simulator(
                args.port,
                args.answer_delay,
                args.fail_every,
                args.limit_every,
                args.response_urls,
                args.response_urls_file,
            )
        )
    elif args.which == "floor":
        asyncio.run(floor(args.port, args.database_url, args.token))
    else:
        asyncio.run(bare_bolt(args.port, args.api_url, args.secret))


if __name__ == "__main__":
    main()
