"""The simulator's Socket Mode, as Slack documents it: an app token opens a single-use URL,
the socket says hello, and each envelope's acknowledgement (or its absence) is recorded."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from bot.simulator import socket_mode
from bot.simulator.server import SlackSimulator


async def open_url(session: aiohttp.ClientSession, sim: SlackSimulator, token: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{sim.api_url}apps.connections.open", headers=headers) as resp:
        return dict(await resp.json())


async def test_only_an_app_token_opens_a_connection_and_a_url_is_single_use() -> None:
    async with SlackSimulator() as sim, aiohttp.ClientSession() as session:
        assert (await open_url(session, sim, "xoxb-bot"))["error"] == "not_allowed_token_type"
        headers = {"Authorization": "Bearer xapp-app"}
        async with session.post(f"{sim.api_url}auth.test", headers=headers) as resp:
            assert (await resp.json())["error"] == "not_allowed_token_type"
        answer = await open_url(session, sim, "xapp-app")
        assert answer["ok"] and answer["url"].startswith("ws://127.0.0.1:")
        async with session.ws_connect(answer["url"]) as ws:
            hello = await ws.receive_json()
            assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == sim.app_id
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await session.ws_connect(answer["url"])


async def test_envelopes_are_acknowledged_late_or_never_and_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket_mode, "ACK_WITHIN", 0.05)
    async with SlackSimulator() as sim, aiohttp.ClientSession() as session:
        async with session.ws_connect((await open_url(session, sim, "xapp-app"))["url"]) as ws:
            await ws.receive_json()  # hello

            async def app(delay: float, payload: dict | None) -> None:
                envelope = await ws.receive_json()
                await asyncio.sleep(delay)
                ack = {"envelope_id": envelope["envelope_id"]}
                await ws.send_str(json.dumps({**ack, "payload": payload} if payload else ack))

            answer = {"response_action": "errors", "errors": {"reason": "Pick one"}}
            acked, _ = await asyncio.gather(
                sim.socket_mode.send("interactive", {"type": "view_submission"}), app(0, answer)
            )
            assert acked.acknowledged and acked.response == answer and not acked.late
            late, _ = await asyncio.gather(
                sim.socket_mode.send("events_api", {"event_id": "Ev1"}, retry_attempt=1),
                app(0.2, None),
            )
            assert late.acknowledged and late.late and late.response is None
            missing = await sim.socket_mode.send("slash_commands", {"command": "/sla"}, timeout=0.1)
            sent = await ws.receive_json()
            assert sent["type"] == "slash_commands" and sent["accepts_response_payload"] is True
            assert not missing.acknowledged
            assert sim.socket_mode.late_acks == [late]
            assert sim.socket_mode.missing_acks == [missing]


async def test_a_refresh_warns_the_connection_sends_to_the_next_one_then_closes_it() -> None:
    async with SlackSimulator() as sim, aiohttp.ClientSession() as session:
        async with session.ws_connect((await open_url(session, sim, "xapp-app"))["url"]) as old:
            hello = await old.receive_json()
            assert hello["num_connections"] == 1
            assert hello["debug_info"]["approximate_connection_time"] > 3600
            warned = await sim.socket_mode.disconnect("warning")
            assert (await old.receive_json()) == {
                "type": "disconnect",
                "reason": "warning",
                "debug_info": {"host": socket_mode.HOST},
            }
            # Until the app has another, Slack still sends on the warned one.
            sending = asyncio.create_task(sim.socket_mode.send("events_api", {}, timeout=0.1))
            assert (await old.receive_json())["type"] == "events_api"
            assert (await sending).connection == 1
            async with session.ws_connect((await open_url(session, sim, "xapp-app"))["url"]) as new:
                assert (await new.receive_json())["num_connections"] == 2
                sending = asyncio.create_task(sim.socket_mode.send("events_api", {}, timeout=0.1))
                assert (await new.receive_json())["type"] == "events_api"
                assert (await sending).connection == 2
                await sim.socket_mode.hang_up(warned)
                assert (await old.receive()).type == aiohttp.WSMsgType.CLOSE
            with pytest.raises(ValueError, match="disconnect reason"):
                await sim.socket_mode.disconnect("bored")
