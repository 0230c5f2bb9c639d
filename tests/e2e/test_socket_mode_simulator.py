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
        async with session.get(f"{sim.api_url}apps.connections.open", headers=headers) as resp:
            assert (await resp.json())["error"] == "insecure_request"  # POST only
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
        sim.socket_mode.retry_after = ()  # the events left unanswered here are not sent again
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


class Travel:
    """The endpoint's waits between Slack's retries, recorded and passed at once."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


async def test_an_event_never_acknowledged_is_sent_again_three_times_then_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """https://docs.slack.dev/apis/events-api#retries: a failed delivery is retried up to 3
    times (nearly at once, after 1 minute, after 5 minutes), each saying its attempt and why
    (`http_timeout`: no answer within 3 s); in Socket Mode in the envelope."""
    monkeypatch.setattr(socket_mode, "ACK_WITHIN", 0.05)
    async with SlackSimulator() as sim, aiohttp.ClientSession() as session:
        sim.socket_mode.sleep = travel = Travel()
        async with session.ws_connect((await open_url(session, sim, "xapp-app"))["url"]) as ws:
            await ws.receive_json(timeout=10)  # hello
            event = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "x"}}
            sent = await sim.socket_mode.send("events_api", event, timeout=0.1)
            await sim.socket_mode.wait_retries()
            received = [await ws.receive_json(timeout=10) for _ in range(4)]
            assert [(r["retry_attempt"], r["retry_reason"]) for r in received] == [
                (0, ""),
                (1, "http_timeout"),
                (2, "http_timeout"),
                (3, "http_timeout"),
            ]
            assert all(r["payload"] == event and r["type"] == "events_api" for r in received)
            assert len({r["envelope_id"] for r in received}) == 4  # each attempt its envelope
            assert received[0]["envelope_id"] == sent.envelope_id
            assert travel.waited == [0.0, 60.0, 300.0]
            assert len(sim.socket_mode.envelopes) == 4  # and no fifth
            assert [e.retry_attempt for e in sim.socket_mode.missing_acks] == [0, 1, 2, 3]


async def test_a_late_acknowledgement_is_retried_and_an_answered_retry_ends_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slack considers a delivery answered after 3 s failed (it retries it), and stops at the
    first attempt acknowledged in time; the late acknowledgement is recorded, not a stray."""
    monkeypatch.setattr(socket_mode, "ACK_WITHIN", 1.0)  # the retry is answered well within
    async with SlackSimulator() as sim, aiohttp.ClientSession() as session:
        sim.socket_mode.sleep = travel = Travel()
        async with session.ws_connect((await open_url(session, sim, "xapp-app"))["url"]) as ws:
            await ws.receive_json(timeout=10)  # hello
            sending = asyncio.create_task(
                sim.socket_mode.send("events_api", {"event_id": "Ev2"}, timeout=5)
            )
            first = await ws.receive_json(timeout=10)
            retry = await ws.receive_json(timeout=10)  # sent while the first is still unanswered
            assert (retry["retry_attempt"], retry["retry_reason"]) == (1, "http_timeout")
            await ws.send_str(json.dumps({"envelope_id": retry["envelope_id"]}))
            await ws.send_str(json.dumps({"envelope_id": first["envelope_id"]}))
            late = await sending
            await sim.socket_mode.wait_retries()
        envelopes = sim.socket_mode.envelopes
        assert [e.retry_attempt for e in envelopes] == [0, 1]
        assert late.acknowledged and late.late and not envelopes[1].late
        assert travel.waited == [0.0]
        assert sim.socket_mode.strays == [] and sim.socket_mode.missing_acks == []


async def test_an_answered_event_a_command_and_a_press_are_never_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the Events API retries: a slash command or an interactive payload left
    unanswered shows the person an error, and is not sent again."""
    monkeypatch.setattr(socket_mode, "ACK_WITHIN", 1.0)  # the event is answered well within
    async with SlackSimulator() as sim, aiohttp.ClientSession() as session:
        sim.socket_mode.sleep = Travel()
        async with session.ws_connect((await open_url(session, sim, "xapp-app"))["url"]) as ws:
            await ws.receive_json(timeout=10)  # hello

            async def acks() -> None:
                envelope = await ws.receive_json(timeout=10)
                await ws.send_str(json.dumps({"envelope_id": envelope["envelope_id"]}))

            answered, _ = await asyncio.gather(
                sim.socket_mode.send("events_api", {"event_id": "Ev3"}), acks()
            )
            assert answered.acknowledged and not answered.late
            await sim.socket_mode.send("slash_commands", {"command": "/sla"}, timeout=0.1)
            await sim.socket_mode.send("interactive", {"type": "block_actions"}, timeout=0.1)
            await sim.socket_mode.wait_retries()
            assert [e.type for e in sim.socket_mode.envelopes] == [
                "events_api",
                "slash_commands",
                "interactive",
            ]
            with pytest.raises(ValueError, match="Events API events only"):
                await sim.socket_mode.send("interactive", {}, retry_attempt=1)


async def test_socket_mode_turned_off_tells_every_connection_and_sends_over_none() -> None:
    """https://docs.slack.dev/apis/events-api/using-socket-mode#disconnect: toggling Socket
    Mode off sends `link_disabled`; then "the Request URL will be used once again to receive
    events", not a WebSocket."""
    async with SlackSimulator() as sim, aiohttp.ClientSession() as session:
        url = (await open_url(session, sim, "xapp-app"))["url"]
        async with session.ws_connect(url) as one:
            await one.receive_json(timeout=10)  # hello
            url = (await open_url(session, sim, "xapp-app"))["url"]
            async with session.ws_connect(url) as two:
                await two.receive_json(timeout=10)  # hello
                await sim.socket_mode.disconnect("link_disabled")
                said = {"type": "disconnect", "reason": "link_disabled"}
                for ws in (one, two):
                    assert {**(await ws.receive_json(timeout=10)), "debug_info": None} == {
                        **said,
                        "debug_info": None,
                    }
                with pytest.raises(LookupError, match="link_disabled"):
                    await sim.socket_mode.send("interactive", {}, timeout=0.1)
                sim.socket_mode.link_enabled()
                sending = asyncio.create_task(sim.socket_mode.send("events_api", {}, timeout=0.1))
                assert (await two.receive_json(timeout=10))["type"] == "events_api"
                await sending
