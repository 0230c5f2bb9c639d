"""The local Slack simulator: Web API fidelity, fault injection, and a driver Bolt accepts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.simulator import SlackDriver, SlackSimulator, render_blocks_text
from tests.conftest import local_server

SECRET = "sim-signing-secret"
CHANNEL = "C0LEADS"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(label: str, action_id: str, value: str = "v") -> dict[str, Any]:
    text = {"type": "plain_text", "text": label}
    return {"type": "button", "text": text, "action_id": action_id, "value": value}


LEAD_BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "New MQL: Ada Lovelace"}},
    section("*Analytical Engines* &amp; Co — score 87"),
    {
        "type": "actions",
        "block_id": "lead_actions",
        "elements": [button("Claim", "lead_claim", "L-1")],
    },
]
METADATA = {"event_type": "lead_posted", "event_payload": {"lead_id": "L-1"}}


@pytest.fixture
async def sim() -> AsyncIterator[SlackSimulator]:
    async with SlackSimulator() as simulator:
        simulator.add_user("U0ADA", "ada", "Ada Lovelace", email="ada@example.com")
        simulator.add_user("U0REP", "rep", "Grace Rep", tz="America/New_York")
        yield simulator


@pytest.fixture
async def client(sim: SlackSimulator) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=sim.api_url)


async def post_lead(client: AsyncWebClient, channel: str = CHANNEL) -> str:
    response = await client.chat_postMessage(
        channel=channel, text="New MQL: Ada Lovelace", blocks=LEAD_BLOCKS, metadata=METADATA
    )
    return str(response["ts"])


# -- Web API ------------------------------------------------------------------------------------


async def test_post_message_is_recorded_and_history_returns_metadata_on_request(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    ts = await post_lead(client)

    [message] = sim.messages(CHANNEL)
    assert (message.ts, message.text, message.metadata) == (ts, "New MQL: Ada Lovelace", METADATA)
    assert message.blocks[2]["elements"][0]["value"] == "L-1"
    assert message.blocks[0]["block_id"]  # Slack fills in the block_ids a payload leaves out
    assert sim.calls_to("chat.postMessage")[0].args["channel"] == CHANNEL
    assert sim.find_message(CHANNEL, "Analytical Engines & Co") is message

    with_metadata = await client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    without = await client.conversations_history(channel=CHANNEL)
    assert with_metadata["messages"][0]["metadata"] == METADATA
    assert "metadata" not in without["messages"][0]
    assert sim.invalid_payloads == []


async def test_history_is_newest_first_and_pages(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    for n in range(3):
        await client.chat_postMessage(channel=CHANNEL, text=f"m{n}")
    first = await client.conversations_history(channel=CHANNEL, limit=2)
    assert [m["text"] for m in first["messages"]] == ["m2", "m1"]
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    rest = await client.conversations_history(channel=CHANNEL, limit=2, cursor=cursor)
    assert [m["text"] for m in rest["messages"]] == ["m0"]


def long_button_blocks() -> list[dict[str, Any]]:
    return [{"type": "actions", "elements": [button("x" * 76, "a")]}]


@pytest.mark.parametrize(
    "blocks",
    [
        [section("x" * 3001)],
        long_button_blocks(),
        [section("hi")] * 51,
        [{"type": "carousel_of_dreams"}],
        [section("")],
        [{"type": "actions", "elements": []}],
        [
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "mrkdwn", "text": "x"}}],
            }
        ],
        [{**section("a"), "block_id": "same"}, {**section("b"), "block_id": "same"}],
    ],
    ids=[
        "section-3001",
        "button-76",
        "51-blocks",
        "unknown-type",
        "empty-text",
        "empty-actions",
        "mrkdwn-button",
        "duplicate-block-id",
    ],
)
async def test_invalid_blocks_are_refused_and_nothing_is_stored(
    sim: SlackSimulator, client: AsyncWebClient, blocks: list[dict[str, Any]]
) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks)

    assert raised.value.response["error"] == "invalid_blocks"
    assert "json-pointer:/blocks" in raised.value.response["errors"][0]
    assert sim.messages(CHANNEL) == []
    assert len(sim.invalid_payloads) == 1


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_message_without_text_or_blocks_is_no_text(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel=CHANNEL, text="")
    assert raised.value.response["error"] == "no_text"


async def test_chat_update_edits_in_place(sim: SlackSimulator, client: AsyncWebClient) -> None:
    ts = await post_lead(client)
    claimed = [*LEAD_BLOCKS[:2], section("Claimed by <@U0REP>")]

    await client.chat_update(channel=CHANNEL, ts=ts, text="Claimed", blocks=claimed)

    [message] = sim.messages(CHANNEL)
    assert (message.ts, message.text, message.edited_count) == (ts, "Claimed", 1)
    assert message.versions[0].text == "New MQL: Ada Lovelace"
    assert message.metadata == METADATA  # kept when an update doesn't send it
    assert "Claimed by @rep" in message.render(sim.user_names())
    with pytest.raises(SlackApiError) as raised:
        await client.chat_update(channel=CHANNEL, ts="1.000001", text="x")
    assert raised.value.response["error"] == "message_not_found"


async def test_a_message_a_person_deleted_is_gone_for_the_app(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    ts = await post_lead(client)

    sim.delete_message(CHANNEL, ts)  # an admin deletes the app's post in Slack

    history = await client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert history["messages"] == []  # "will no longer return in history calls"
    with pytest.raises(SlackApiError) as raised:
        await client.chat_update(channel=CHANNEL, ts=ts, text="x")
    assert raised.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as raised:
        await client.chat_delete(channel=CHANNEL, ts=ts)
    assert raised.value.response["error"] == "message_not_found"


async def test_threads_channels_and_users(sim: SlackSimulator, client: AsyncWebClient) -> None:
    ts = await post_lead(client)
    await client.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="Call logged")
    replies = await client.conversations_replies(channel=CHANNEL, ts=ts)
    assert [m["text"] for m in replies["messages"]] == ["New MQL: Ada Lovelace", "Call logged"]
    assert [m.text for m in sim.thread(CHANNEL, ts)] == ["Call logged"]
    assert len(sim.messages(CHANNEL)) == 1

    # A reply to a message the channel does not hold: ok, and it shows nowhere (Slack's
    # reference lists no error for it; python-slack-sdk#840).
    orphan = await client.chat_postMessage(channel=CHANNEL, thread_ts="123.000001", text="x")
    assert orphan["ok"] and [m.text for m in sim.thread(CHANNEL, "123.000001")] == ["x"]
    assert len(sim.messages(CHANNEL)) == 1
    history = await client.conversations_history(channel=CHANNEL)
    assert [m["text"] for m in history["messages"]] == ["New MQL: Ada Lovelace"]
    with pytest.raises(SlackApiError, match="thread_not_found"):
        await client.conversations_replies(channel=CHANNEL, ts="123.000001")
    sim.missing_channels.add("C0GONE")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await client.chat_postMessage(channel="C0GONE", text="x")

    dm = await client.chat_postMessage(channel="U0REP", text="Reminder: call Ada")
    assert dm["channel"] == sim.dm_channel("U0REP")
    user = (await client.users_info(user="U0REP"))["user"]
    assert (user["name"], user["tz"], user["tz_offset"] in (-18000, -14400)) == (
        "rep",
        "America/New_York",
        True,
    )
    with pytest.raises(SlackApiError, match="user_not_found"):
        await client.users_info(user="U0NOBODY")
    by_email = await client.users_lookupByEmail(email="ada@example.com")
    assert by_email["user"]["id"] == "U0ADA"
    auth = await client.auth_test()
    assert (auth["user_id"], auth["team_id"]) == ("U0BOT", "T0SIM")


async def test_form_bodies_auth_and_bad_requests(sim: SlackSimulator) -> None:
    async with aiohttp.ClientSession() as http:
        form = {"channel": CHANNEL, "text": "t", "blocks": json.dumps([section("from a form")])}
        headers = {"Authorization": "Bearer xoxb-test"}
        async with http.post(sim.api_url + "chat.postMessage", data=form, headers=headers) as r:
            assert (await r.json())["ok"] is True
        async with http.post(sim.api_url + "chat.postMessage", data=form) as r:
            assert (r.status, (await r.json())["error"]) == (200, "not_authed")
        async with http.post(sim.api_url + "nope.nothing", headers=headers) as r:
            assert (await r.json())["error"] == "unknown_method"
        bad_json = {**headers, "Content-Type": "application/json"}
        async with http.post(sim.api_url + "chat.postMessage", data=b"{", headers=bad_json) as r:
            assert (await r.json())["error"] == "invalid_json"
        broken = {**form, "blocks": "[not json"}
        async with http.post(sim.api_url + "chat.postMessage", data=broken, headers=headers) as r:
            assert (await r.json())["error"] == "invalid_blocks_format"
    assert sim.find_message(CHANNEL, "from a form") is not None
    assert [c.ok for c in sim.calls] == [True, False, False, False, False]


# -- faults and rate limits ---------------------------------------------------------------------


async def test_injected_server_error_then_recovery(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    fault = sim.inject("chat.postMessage", status=500, times=1)
    with pytest.raises(SlackApiError) as raised:
        await post_lead(client)
    assert raised.value.response.status_code == 500
    await post_lead(client)
    assert fault.hits == 1 and len(sim.messages(CHANNEL)) == 1

    sim.inject("chat.update", error="cant_update_message")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_update(channel=CHANNEL, ts=sim.messages(CHANNEL)[0].ts, text="x")
    assert (refused.value.response.status_code, refused.value.response["error"]) == (
        200,
        "cant_update_message",
    )


async def test_injected_429_carries_retry_after(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    sim.inject("chat.*", retry_after=3, every=2)
    await post_lead(client)
    with pytest.raises(SlackApiError) as raised:
        await post_lead(client)
    response = raised.value.response
    assert (response.status_code, response["error"]) == (429, "ratelimited")
    assert response.headers["Retry-After"] == "3"
    assert sim.rate_limited_calls[0].retry_after == 3
    await post_lead(client)  # the 3rd call is before Retry-After passed: an early retry
    assert sim.early_retries() == [sim.calls[-1]]


async def test_per_channel_rate_limit(sim: SlackSimulator, client: AsyncWebClient) -> None:
    sim.set_rate_limit("chat.postMessage", per_second=2.0)
    await post_lead(client)
    await post_lead(client)
    with pytest.raises(SlackApiError) as raised:
        await post_lead(client)
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "1"
    await post_lead(client, channel="C0OTHER")  # each channel has its own budget
    assert sim.early_retries() == []

    await asyncio.sleep(1.01)
    await post_lead(client)
    assert len(sim.messages(CHANNEL)) == 3
    assert sim.early_retries() == [] and len(sim.rate_limited_calls) == 1


async def test_connection_drop_is_a_client_connection_error(sim: SlackSimulator) -> None:
    no_retries = AsyncWebClient(token="xoxb-test", base_url=sim.api_url, retry_handlers=[])
    sim.inject_connection_drop("chat.postMessage", times=1)
    with pytest.raises(aiohttp.ClientConnectionError):
        await post_lead(no_retries)
    await post_lead(no_retries)
    assert [c.error for c in sim.calls] == ["connection_dropped", None]
    assert len(sim.messages(CHANNEL)) == 1


# -- response_url, ephemerals, views ------------------------------------------------------------


async def test_response_url_replaces_posts_and_whispers(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    ts = await post_lead(client)
    url = sim.new_response_url(CHANNEL, "U0REP", ts)
    async with aiohttp.ClientSession() as http:
        replace = {"replace_original": True, "text": "Claimed", "blocks": [section("Claimed")]}
        async with http.post(url, json=replace) as r:
            assert (r.status, await r.text()) == (200, "ok")
        async with http.post(url, json={"text": "Only you can see this"}) as r:
            assert r.status == 200
        async with http.post(url, json={"response_type": "in_channel", "text": "Shared"}) as r:
            assert r.status == 200
        async with http.post(url, json={"blocks": [section("x" * 3001)]}) as r:
            assert (r.status, await r.text()) == (400, "invalid_blocks")

    assert [m.text for m in sim.messages(CHANNEL)] == ["Claimed", "Shared"]
    assert sim.messages(CHANNEL)[0].ts == ts
    [whisper] = sim.ephemerals(user="U0REP")
    assert (whisper.channel, whisper.text) == (CHANNEL, "Only you can see this")
    assert [c.method for c in sim.calls[-4:]] == ["response_url"] * 4


async def test_a_response_url_takes_five_posts_within_thirty_minutes(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """Slack honours a response_url 5 times within 30 minutes of the interaction, then answers
    404 `used_url` / `expired_url` (docs.slack.dev/interactivity/handling-user-interaction,
    "Message responses"); the simulator ages it on its clock, without sleeping."""
    now = [1000.0]
    sim.interaction_clock = lambda: now[0]
    used, late = sim.new_response_url(CHANNEL, "U0REP"), sim.new_response_url(CHANNEL, "U0REP")
    async with aiohttp.ClientSession() as http:
        for attempt in range(6):
            async with http.post(used, json={"text": f"answer {attempt}"}) as r:
                answered = (r.status, await r.text())
        assert answered == (404, "used_url")
        now[0] += 29 * 60
        async with http.post(late, json={"text": "in time"}) as r:
            assert (r.status, await r.text()) == (200, "ok")
        now[0] += 2 * 60
        async with http.post(late, json={"text": "too late"}) as r:
            assert (r.status, await r.text()) == (404, "expired_url")
    seen = [note.text for note in sim.ephemerals(user="U0REP")]
    assert seen == [f"answer {attempt}" for attempt in range(5)] + ["in time"]


async def test_a_trigger_id_expires_three_seconds_after_the_interaction(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """views.open takes a trigger_id once and within 3 seconds (`expired_trigger_id`,
    `exchanged_trigger_id` in its reference), aged on the simulator's clock."""
    now = [1000.0]
    sim.interaction_clock = lambda: now[0]
    in_time, late = sim.issue_trigger("U0REP"), sim.issue_trigger("U0REP")
    now[0] += 2.5
    await client.views_open(trigger_id=in_time, view=NOTE_MODAL)
    now[0] += 1.0
    with pytest.raises(SlackApiError) as raised:
        await client.views_open(trigger_id=late, view=NOTE_MODAL)
    assert raised.value.response["error"] == "expired_trigger_id"
    assert len(sim.open_views("U0REP")) == 1


async def test_views_need_a_fresh_trigger_and_a_valid_view(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    view = {
        "type": "modal",
        "callback_id": "note",
        "title": {"type": "plain_text", "text": "Add a note"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [
            {
                "type": "input",
                "block_id": "note",
                "label": {"type": "plain_text", "text": "Note"},
                "element": {"type": "plain_text_input", "action_id": "text"},
            }
        ],
    }
    trigger = sim.issue_trigger("U0REP")
    opened = await client.views_open(trigger_id=trigger, view=view)
    assert opened["view"]["id"].startswith("V") and opened["view"]["hash"]
    assert sim.latest_view("U0REP").callback_id == "note"  # type: ignore[union-attr]

    for trigger_id, error in ((trigger, "exchanged_trigger_id"), ("1.2.3", "invalid_trigger_id")):
        with pytest.raises(SlackApiError) as raised:
            await client.views_open(trigger_id=trigger_id, view=view)
        assert raised.value.response["error"] == error
    too_long = {**view, "title": {"type": "plain_text", "text": "t" * 25}}
    with pytest.raises(SlackApiError) as raised:
        await client.views_open(trigger_id=sim.issue_trigger("U0REP"), view=too_long)
    assert raised.value.response["error"] == "invalid_arguments"

    home = {"type": "home", "blocks": [section("Your queue: 2 leads")]}
    await client.views_publish(user_id="U0REP", view=home)
    assert sim.home("U0REP")["blocks"][0]["text"]["text"] == "Your queue: 2 leads"  # type: ignore[index]


async def test_modal_errors_must_name_an_input_block(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """`response_action: errors` is keyed by input blocks' block_ids: any other key is a
    submission Slack shows as failed, recorded as refused."""
    opened = await client.views_open(trigger_id=sim.issue_trigger("U0REP"), view=NOTE_MODAL)
    view_id = opened["view"]["id"]
    sim.apply_view_response(view_id, {"response_action": "errors", "errors": {"choice": "x"}})
    (refused,) = sim.invalid_payloads
    assert refused.errors == ["errors.choice: not the block_id of an input block"]
    assert sim.view(view_id).errors is None  # type: ignore[union-attr]
    sim.invalid_payloads.clear()
    sim.apply_view_response(view_id, {"response_action": "errors", "errors": {"reason": "x"}})
    assert sim.invalid_payloads == []
    assert sim.view(view_id).errors == {"reason": "x"}  # type: ignore[union-attr]


async def test_a_modal_answer_slack_does_not_know_is_refused_and_keeps_the_modal(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """A view_submission's `response_action` is one of `errors`, `update`, `push`, `clear`
    (docs.slack.dev/surfaces/modals; Bolt's ViewResponseAction types), `errors` maps block_ids
    to a message each, and `update`/`push` carry a modal (a Home tab is only published).
    Anything else is a submission Slack shows as failed: recorded, the modal left open."""
    opened = await client.views_open(trigger_id=sim.issue_trigger("U0REP"), view=NOTE_MODAL)
    view_id = opened["view"]["id"]
    home = {"type": "home", "blocks": [section("Queue")]}
    for answer in (
        {"response_action": "close"},
        {"response_action": "errors", "errors": {}},
        {"response_action": "errors", "errors": {"reason": ""}},
        {"response_action": "errors", "errors": {"reason": 3}},
        {"response_action": "update", "view": home},
        {"response_action": "push", "view": home},
    ):
        sim.invalid_payloads.clear()
        sim.apply_view_response(view_id, answer)
        assert len(sim.invalid_payloads) == 1, answer
        assert not sim.view(view_id).closed, answer  # type: ignore[union-attr]
        assert sim.view(view_id).errors is None, answer  # type: ignore[union-attr]
    sim.invalid_payloads.clear()
    sim.apply_view_response(view_id, None)  # an empty 200 closes it
    assert sim.invalid_payloads == [] and sim.view(view_id).closed  # type: ignore[union-attr]


async def test_a_response_type_slack_does_not_know_is_refused(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """`response_type` is `in_channel` or `ephemeral` (the default) in a slash command's
    answer and a response_url post (docs.slack.dev/interactivity/implementing-slash-commands):
    another word is refused (400), recorded, nothing shown."""
    url = sim.new_response_url(CHANNEL, "U0REP")
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"text": "hi", "response_type": "channel"}) as answer:
            assert answer.status == 400
            assert await answer.text() == "invalid_payload"
        async with session.post(url, json={"text": "hi", "response_type": "ephemeral"}) as answer:
            assert answer.status == 200
    assert [e.text for e in sim.ephemerals(user="U0REP")] == ["hi"]
    assert sim.messages(CHANNEL) == []


async def test_wait_for_returns_the_value_or_times_out(sim: SlackSimulator) -> None:
    assert await sim.wait_for(lambda: 42, what="answer") == 42
    with pytest.raises(AssertionError, match="timed out waiting for a lead"):
        await sim.wait_for(lambda: sim.messages(CHANNEL), timeout=0.05, what="a lead")


async def test_reset_keeps_users(sim: SlackSimulator, client: AsyncWebClient) -> None:
    await post_lead(client)
    sim.inject("chat.postMessage", status=503)
    sim.reset()
    assert (sim.calls, sim.messages(CHANNEL), sim.faults) == ([], [], [])
    await post_lead(client)
    assert "U0ADA" in sim.users


# -- the driver against a real Bolt app ---------------------------------------------------------


@dataclass
class BoltHarness:
    app: AsyncApp
    driver: SlackDriver
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


NOTE_MODAL = {
    "type": "modal",
    "callback_id": "dispose",
    "private_metadata": "L-1",
    "title": {"type": "plain_text", "text": "Disqualify"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {
                "type": "static_select",
                "action_id": "choice",
                "options": [
                    {"text": {"type": "plain_text", "text": "No budget"}, "value": "no_budget"},
                    {"text": {"type": "plain_text", "text": "Bad fit"}, "value": "bad_fit"},
                ],
            },
        },
        {
            "type": "input",
            "block_id": "note",
            "optional": True,
            "label": {"type": "plain_text", "text": "Note"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        },
    ],
}


CARD_BLOCKS = [
    section("Ada Lovelace — owner: none"),
    {
        "type": "actions",
        "block_id": "card_actions",
        "elements": [
            {
                "type": "static_select",
                "action_id": "pick",
                "placeholder": {"type": "plain_text", "text": "Pick"},
                "options": [
                    {"text": {"type": "plain_text", "text": "One"}, "value": "one"},
                    {"text": {"type": "plain_text", "text": "Two"}, "value": "two"},
                ],
            },
            button("Dismiss", "dismiss"),
        ],
    },
]


@pytest.fixture
async def bolt(sim: SlackSimulator) -> AsyncIterator[BoltHarness]:
    app = AsyncApp(
        signing_secret=SECRET,
        client=AsyncWebClient(token="xoxb-test", base_url=sim.api_url),
        process_before_response=True,
    )
    seen: list[tuple[str, dict[str, Any]]] = []

    @app.command("/lead")
    async def lead(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack(f"Looking up {command['text']}")
        seen.append(("command", command))
        await respond("Ada Lovelace — owner: none")

    @app.command("/dispose")
    async def dispose(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=NOTE_MODAL)

    @app.action("lead_claim")
    async def claim(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        seen.append(("action", body))
        await respond(replace_original=True, text="Claimed", blocks=[section("Claimed by rep")])

    @app.command("/card")
    async def card(ack: Any) -> None:
        await ack(text="Pick one", blocks=CARD_BLOCKS, response_type="ephemeral")

    @app.action("pick")
    async def pick(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        seen.append(("action", body))
        chosen = body["actions"][0]["selected_option"]["value"]
        await respond(replace_original=True, text=f"Picked {chosen}")

    @app.action("dismiss")
    async def dismiss(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        seen.append(("action", body))
        await respond(delete_original=True)

    @app.view("dispose")
    async def submitted(ack: Any, view: dict[str, Any]) -> None:
        seen.append(("view", view))
        choice = view["state"]["values"]["reason"]["choice"]["selected_option"]
        if choice["value"] == "bad_fit" and not view["state"]["values"]["note"]["text"]["value"]:
            await ack(response_action="errors", errors={"note": "Say why it's a bad fit"})
        else:
            await ack()

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", handle)
    async with (
        local_server(web_app) as base,
        SlackDriver(f"{base}/slack/events", SECRET, sim) as driver,
    ):
        yield BoltHarness(app, driver, seen)


async def test_slash_command_reaches_bolt_with_slack_fields(
    sim: SlackSimulator, bolt: BoltHarness
) -> None:
    response = await bolt.driver.command("U0REP", "/lead", "ada@example.com", channel_id=CHANNEL)

    assert response.status == 200 and "Looking up ada@example.com" in response.body
    [(kind, command)] = bolt.seen
    assert kind == "command"
    assert command["command"] == "/lead" and command["text"] == "ada@example.com"
    assert (command["user_id"], command["user_name"], command["channel_id"]) == (
        "U0REP",
        "rep",
        CHANNEL,
    )
    assert (command["team_id"], command["api_app_id"]) == ("T0SIM", "A0HANDOFF")
    assert command["response_url"].startswith(sim.base_url) and command["trigger_id"]
    [whisper] = sim.ephemerals(user="U0REP", channel=CHANNEL)
    assert whisper.text == "Ada Lovelace — owner: none"
    assert sim.calls_to("auth.test")  # Bolt authorized against the simulator


async def test_button_press_reaches_bolt_action_with_value_user_and_container(
    sim: SlackSimulator, client: AsyncWebClient, bolt: BoltHarness
) -> None:
    ts = await post_lead(client)
    with pytest.raises(LookupError, match="Claim"):
        await bolt.driver.press("U0REP", "Log call", channel=CHANNEL)

    response = await bolt.driver.press("U0REP", "Claim", channel=CHANNEL)

    assert response.status == 200
    [(kind, body)] = bolt.seen
    assert kind == "action"
    action = body["actions"][0]
    assert (action["action_id"], action["value"], action["block_id"]) == (
        "lead_claim",
        "L-1",
        "lead_actions",
    )
    assert body["user"]["id"] == "U0REP" and body["channel"]["id"] == CHANNEL
    assert body["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert body["message"]["metadata"] == METADATA
    assert sim.message(CHANNEL, ts).text == "Claimed"  # type: ignore[union-attr]


async def test_a_press_on_an_ephemeral_is_answered_by_replacing_or_deleting_it(
    sim: SlackSimulator, client: AsyncWebClient, bolt: BoltHarness
) -> None:
    """A press on an ephemeral message carries `container.is_ephemeral: true` and that
    message's ts, and no `message`; the press's response_url replaces that very message with
    `replace_original` ("This response_url can be used to publish new messages. It can also be
    used to update the original interactive message, regardless of whether it was an ephemeral
    message or not.", https://api.slack.com/messaging/modifying; chat.update cannot: "Ephemeral
    messages can't be updated in this way.") and removes it with `delete_original`. The other
    user's ephemeral, and the channel, are untouched."""
    first = await client.chat_postEphemeral(
        channel=CHANNEL, user="U0REP", text="New MQL", blocks=LEAD_BLOCKS
    )
    await client.chat_postEphemeral(channel=CHANNEL, user="U0ADA", text="Yours", blocks=LEAD_BLOCKS)

    await bolt.driver.press_ephemeral("U0REP", "Claim", channel=CHANNEL)

    [(_, body)] = bolt.seen
    assert body["container"] == {
        "type": "message",
        "message_ts": first["message_ts"],
        "channel_id": CHANNEL,
        "is_ephemeral": True,
    }
    assert "message" not in body
    [card] = sim.ephemerals(user="U0REP")
    assert (card.ts, card.text) == (first["message_ts"], "Claimed")
    assert "Claimed by rep" in card.all_text and "Analytical" not in card.all_text
    assert [note.text for note in sim.ephemerals(user="U0ADA")] == ["Yours"]
    assert sim.messages(CHANNEL) == []

    await client.chat_postEphemeral(channel=CHANNEL, user="U0REP", text="Card", blocks=CARD_BLOCKS)
    await bolt.driver.press_ephemeral("U0REP", "Dismiss", channel=CHANNEL)
    assert [note.text for note in sim.ephemerals(user="U0REP")] == ["Claimed"]


async def test_a_slash_commands_answer_is_an_ephemeral_its_presses_replace(
    sim: SlackSimulator, bolt: BoltHarness
) -> None:
    """A command's immediate answer shows privately as an ephemeral message (listed with
    `commands=True`: the driver's response holds it too); a choice made in it is sent as on
    any ephemeral, and `replace_original` replaces that answer in place."""
    answer = await bolt.driver.command("U0REP", "/card", channel_id=CHANNEL)
    assert answer.json is not None and answer.json["text"] == "Pick one"
    [card] = sim.ephemerals(user="U0REP", channel=CHANNEL, commands=True)
    assert (card.text, card.source) == ("Pick one", "command")
    assert sim.ephemerals(user="U0REP") == []  # the default: what Handoff sent afterwards

    await bolt.driver.choose_in_card("U0REP", "Two", channel=CHANNEL)

    [(_, body)] = bolt.seen
    assert body["container"] == {
        "type": "message",
        "message_ts": card.ts,
        "channel_id": CHANNEL,
        "is_ephemeral": True,
    }
    [replaced] = sim.ephemerals(user="U0REP", channel=CHANNEL, commands=True)
    assert (replaced.ts, replaced.text, replaced.blocks) == (card.ts, "Picked two", [])


async def test_a_commands_own_response_url_adds_and_a_press_on_its_answer_replaces_five_times(
    sim: SlackSimulator,
) -> None:
    """A slash command's own response_url has no original message to replace: its
    `replace_original` posts a new ephemeral and leaves the command's answer as it was (Slack's
    maintainers: "it's not possible to reuse the same `response_url` to update the message",
    slackapi/bolt-python#1268; slackapi/bolt-js#2287, "Using a command's response
    `replace_original` does nothing"). A press on that answer has its own response_url, which
    replaces it, as any response_url, 5 times within 30 minutes: the sixth is `used_url` and
    the answer stays as the fifth left it."""
    card = sim.show_command_answer(CHANNEL, "U0REP", {"text": "Card", "blocks": CARD_BLOCKS})
    assert card is not None
    own = sim.new_response_url(CHANNEL, "U0REP")
    pressed = sim.new_response_url(CHANNEL, "U0REP", card.ts, ephemeral=True)
    async with aiohttp.ClientSession() as http:
        async with http.post(own, json={"replace_original": True, "text": "Later"}) as r:
            assert (r.status, await r.text()) == (200, "ok")
        shown = sim.ephemerals(user="U0REP", channel=CHANNEL, commands=True)
        assert [(note.text, note.replaced) for note in shown] == [("Card", 0), ("Later", 0)]
        for n in range(1, 7):
            body = {"replace_original": True, "text": f"Card {n}"}
            async with http.post(pressed, json=body) as r:
                answered = (r.status, await r.text())
            assert answered == ((200, "ok") if n <= 5 else (404, "used_url"))
    assert (card.text, card.replaced, card.blocks) == ("Card 5", 5, [])
    assert sim.messages(CHANNEL) == []


async def test_view_submission_reaches_bolt_with_state_and_errors_keep_it_open(
    sim: SlackSimulator, bolt: BoltHarness
) -> None:
    await bolt.driver.command("U0REP", "/dispose", channel_id=CHANNEL)
    view = await sim.wait_for(lambda: sim.latest_view("U0REP"), what="the modal")
    with pytest.raises(KeyError, match="reason"):
        await bolt.driver.submit_view("U0REP", {"why": "x"})
    with pytest.raises(ValueError, match="Reason"):
        await bolt.driver.submit_view("U0REP", {})  # Slack's client won't send a required blank

    refused = await bolt.driver.submit_view("U0REP", {"reason": "Bad fit"})
    assert refused.json == {
        "response_action": "errors",
        "errors": {"note": "Say why it's a bad fit"},
    }
    assert not view.closed

    accepted = await bolt.driver.submit_view("U0REP", {"reason": "bad_fit", "text": "Student"})
    assert accepted.status == 200 and view.closed
    submitted = bolt.seen[-1][1]
    assert submitted["callback_id"] == "dispose" and submitted["private_metadata"] == "L-1"
    assert submitted["state"]["values"]["reason"]["choice"]["selected_option"]["value"] == "bad_fit"
    assert submitted["state"]["values"]["note"]["text"] == {
        "type": "plain_text_input",
        "value": "Student",
    }


async def test_bad_or_stale_signatures_are_refused(sim: SlackSimulator, bolt: BoltHarness) -> None:
    forged = await bolt.driver.command("U0REP", "/lead", "x", bad_signature=True)
    stale = await bolt.driver.command("U0REP", "/lead", "x", timestamp=int(time.time()) - 600)
    assert (forged.status, stale.status) == (401, 401)
    assert bolt.seen == []


@asynccontextmanager
async def bot_answering(
    handler: Callable[[web.Request], Awaitable[web.Response]], sim: SlackSimulator
) -> AsyncIterator[SlackDriver]:
    """A bare bot whose every Slack request `handler` answers, and a driver sending to it."""
    web_app = web.Application()
    web_app.router.add_post("/slack/events", handler)
    async with (
        local_server(web_app) as base,
        SlackDriver(f"{base}/slack/events", SECRET, sim) as driver,
    ):
        yield driver


async def test_driver_signs_like_slack_and_marks_retries(sim: SlackSimulator) -> None:
    received: list[tuple[dict[str, str], str]] = []

    async def capture(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.text()))
        return web.json_response({"ok": True})

    async with bot_answering(capture, sim) as driver:
        response = await driver.command("U0REP", "/lead", "a b&c", retry_num=1)
        # Slack's own sequences (a mention, an email when the command escapes) stay.
        await driver.command("U0MGR", "/handoff", "away <@U0REP|sam> fri <3 & >_<")
        await driver.command("U0REP", "/lead", "<mailto:ada@example.com|ada@example.com>")

    assert response.json == {"ok": True}
    (headers, body), (_, away), (_, email) = received
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert (headers["X-Slack-Retry-Num"], headers["X-Slack-Retry-Reason"]) == ("1", "http_timeout")
    # The text as Slack sends it: `&`, `<` and `>` the person typed arrive escaped.
    assert parse_qs(body)["text"] == ["a b&amp;c"]
    assert parse_qs(away)["text"] == ["away <@U0REP|sam> fri &lt;3 &amp; &gt;_&lt;"]
    assert parse_qs(email)["text"] == ["<mailto:ada@example.com|ada@example.com>"]


async def test_a_slash_commands_answer_is_checked_as_the_message_slack_shows(
    sim: SlackSimulator,
) -> None:
    """Slack shows a slash command's immediate answer as a message: blocks it would refuse are
    recorded as refused, as a Web API call's are."""
    answers = iter(
        [
            {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]},
            {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "fine"}}]},
        ]
    )

    async def answer(_: web.Request) -> web.Response:
        return web.json_response(next(answers))

    async with bot_answering(answer, sim) as driver:
        await driver.command("U0REP", "/lead", "too long")
        await driver.command("U0REP", "/lead", "fine")

    [refused] = sim.invalid_payloads
    assert refused.method == "/lead answer"
    assert any("/blocks/0/text" in error for error in refused.errors), refused.errors


# -- text rendering -----------------------------------------------------------------------------


def test_render_blocks_text_reads_like_the_message() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "New MQL"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Ada* &lt;ada@example.com&gt; for <@U0REP>"},
            "fields": [
                {"type": "mrkdwn", "text": "*Company*\nAcme &amp; Co"},
                {"type": "mrkdwn", "text": "*Score*\n72 (warm)\nPricing page +20"},
            ],
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "Due <!date^1767225600^{time}|9:00 AM>"},
                {"type": "mrkdwn", "text": "<https://crm.example/l/1|Open in CRM>"},
            ],
        },
        {"type": "divider"},
        {"type": "actions", "elements": [button("Claim", "c"), button("Log call", "l")]},
        {"type": "input", "label": {"type": "plain_text", "text": "Reason"}, "element": {}},
    ]

    rendered = render_blocks_text(blocks, users={"U0REP": "rep"})

    assert rendered.splitlines() == [
        "== New MQL ==",
        "Ada <ada@example.com> for @rep",
        "Company: Acme & Co",
        "Score: 72 (warm)",
        "       Pricing page +20",
        "Due 9:00 AM · Open in CRM (https://crm.example/l/1)",
        "─" * 40,
        "[ Claim ]  [ Log call ]",
        "Reason: ____",
    ]
    assert render_blocks_text([], text="snake_case *stays*") == "snake_case stays"


async def test_membership_decides_reading_and_sharing_and_private_posts(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """Slack's rules (api.slack.com/methods: conversations.history, conversations.replies,
    conversations.join, chat.postMessage with chat:write.public, files.completeUploadExternal)."""
    sim.add_channel("C0OPEN", "open-sales")
    sim.add_channel("C0SECRET", "secret-sales", private=True)
    sim.not_in_channel.update({"C0OPEN", "C0SECRET"})
    # A public channel takes a post without an invitation (chat:write.public) ...
    posted = await client.chat_postMessage(channel="C0OPEN", text="New MQL")
    # ... but its history and threads are for members only, and posting did not join it.
    for read in (
        client.conversations_history(channel="C0OPEN"),
        client.conversations_replies(channel="C0OPEN", ts=posted["ts"]),
    ):
        with pytest.raises(SlackApiError, match="not_in_channel"):
            await read
    sim.scopes = ["chat:write"]  # without chat:write.public, a public channel refuses it too
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await client.chat_postMessage(channel="C0OPEN", text="x")
    sim.scopes = None
    # A private channel refuses a post, and a bot cannot join it.
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await client.chat_postMessage(channel="C0SECRET", text="x")
    with pytest.raises(SlackApiError, match="method_not_supported_for_channel_type"):
        await client.conversations_join(channel="C0SECRET")
    # Joining a public channel opens its history: parent messages only; replies list a thread.
    await client.conversations_join(channel="C0OPEN")
    await client.chat_postMessage(channel="C0OPEN", thread_ts=posted["ts"], text="Reminder")
    history = await client.conversations_history(channel="C0OPEN")
    assert [m["text"] for m in history["messages"]] == ["New MQL"]
    thread = await client.conversations_replies(channel="C0OPEN", ts=posted["ts"])
    assert [m["text"] for m in thread["messages"]] == ["New MQL", "Reminder"]
    # History and replies take conversation ids, not user ids (a DM is read by its D… id).
    dm = await client.chat_postMessage(channel="U0REP", text="Reminder: call Ada")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await client.conversations_history(channel="U0REP")
    opened = await client.conversations_open(users="U0REP")
    assert opened["channel"]["id"] == dm["channel"]
    in_dm = await client.conversations_history(channel=dm["channel"])
    assert [m["text"] for m in in_dm["messages"]] == ["Reminder: call Ada"]


async def test_a_method_without_its_scope_is_refused_as_slack_does(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """api.slack.com/methods/<method> "Required scopes": the simulator holds an app to the
    scopes it was given (the local stack gives it manifest.yaml's)."""
    sim.add_channel("C0SECRET", "secret-sales", private=True)
    sim.scopes = ["chat:write", "channels:history"]
    await client.chat_postMessage(channel=CHANNEL, text="New MQL")
    await client.conversations_history(channel=CHANNEL)  # public: channels:history
    dm = await client.chat_postMessage(channel="U0REP", text="Reminder")
    for call, needed in (
        (client.conversations_history(channel="C0SECRET"), "groups:history"),
        (client.conversations_history(channel=dm["channel"]), "im:history"),
        (client.users_info(user="U0REP"), "users:read"),
        (client.conversations_join(channel=CHANNEL), "channels:join"),
    ):
        with pytest.raises(SlackApiError) as refused:
            await call
        assert refused.value.response["error"] == "missing_scope"
        assert refused.value.response["needed"] == needed
    assert sim.calls_to("users.info")[-1].error == "missing_scope"


async def refused(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return str(raised.value.response["error"])


async def test_an_archived_channel_refuses_posts_joins_and_edits(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """chat.postMessage and conversations.join: `is_archived` "Channel has been archived.";
    chat.update: `is_inactive` "cannot be edited within a frozen, archived or deleted
    channel"; conversations.info shows it."""
    ts = await post_lead(client)
    sim.archive_channel(CHANNEL)
    assert await refused(client.chat_postMessage(channel=CHANNEL, text="New MQL")) == "is_archived"
    assert await refused(client.conversations_join(channel=CHANNEL)) == "is_archived"
    edit = client.chat_update(channel=CHANNEL, ts=ts, text="Claimed")
    assert await refused(edit) == "is_inactive"
    info = await client.conversations_info(channel=CHANNEL)
    assert info["channel"]["is_archived"] is True
    sim.archive_channel(CHANNEL, archived=False)
    await client.chat_update(channel=CHANNEL, ts=ts, text="Claimed")
    assert [m.text for m in sim.messages(CHANNEL)] == ["Claimed"]


async def test_a_dm_opens_only_with_an_active_member(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """conversations.open: `users_list_not_supplied`, `user_not_found`, `user_disabled`."""
    # (slack_sdk checks this one before it calls: the API call shows Slack's answer)
    missing = client.api_call("conversations.open", json={})
    assert await refused(missing) == "users_list_not_supplied"
    assert await refused(client.conversations_open(users="U0NOBODY")) == "user_not_found"
    opened = await client.conversations_open(users="U0REP")
    resumed = await client.conversations_open(channel=opened["channel"]["id"])
    assert resumed["channel"]["id"] == opened["channel"]["id"]
    sim.deactivate_user("U0REP")
    assert await refused(client.conversations_open(users="U0REP")) == "user_disabled"


async def test_documented_argument_limits(sim: SlackSimulator, client: AsyncWebClient) -> None:
    ts = await post_lead(client)
    # chat.update msg_too_long: "The `text` field cannot exceed 4,000 characters."
    await client.chat_update(channel=CHANNEL, ts=ts, text="x" * 4000)
    update = client.chat_update(channel=CHANNEL, ts=ts, text="x" * 4001)
    assert await refused(update) == "msg_too_long"
    # markdown_text "should not be used in conjunction with `blocks` or `text`"
    both = client.chat_postMessage(channel=CHANNEL, text="a", markdown_text="**a**")
    assert await refused(both) == "markdown_text_conflict"
    alone = await client.chat_postMessage(channel=CHANNEL, markdown_text="**New MQL**")
    assert sim.message(CHANNEL, alone["ts"]).text == "**New MQL**"  # type: ignore[union-attr]
    # files.getUploadURLExternal: `length` minimum 1; alt_txt at most 1000 characters
    empty = client.files_getUploadURLExternal(filename="chart.png", length=0)
    assert await refused(empty) == "missing_argument"
    wordy = client.files_getUploadURLExternal(filename="c.png", length=5, alt_txt="a" * 1001)
    assert await refused(wordy) == "alt_txt_too_large"
    # conversations.history: invalid_cursor, invalid_ts_oldest
    history = client.conversations_history(channel=CHANNEL, cursor="not-a-cursor")
    assert await refused(history) == "invalid_cursor"
    assert await refused(client.conversations_history(channel=CHANNEL, oldest="yesterday")) == (
        "invalid_ts_oldest"
    )


async def test_conversation_methods_take_an_id_where_slack_says_so(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """chat.postMessage takes "An encoded ID or channel name"; conversations.history ("Conversation
    ID to fetch history for."), conversations.replies ("Conversation ID to fetch thread from."),
    conversations.info ("Conversation ID to learn more about") and conversations.join ("ID of
    conversation to join") take the id: a name is `channel_not_found` ("Value passed for
    `channel` was invalid.")."""
    sim.add_channel(CHANNEL, "sales-leads")
    posted = await client.chat_postMessage(channel="#sales-leads", text="New MQL")
    assert posted["channel"] == CHANNEL
    for name in ("#sales-leads", "sales-leads"):
        for call in (
            client.conversations_history(channel=name),
            client.conversations_replies(channel=name, ts=posted["ts"]),
            client.conversations_info(channel=name),
            client.conversations_join(channel=name),
        ):
            assert await refused(call) == "channel_not_found"
    await client.conversations_history(channel=CHANNEL)
    await client.conversations_replies(channel=CHANNEL, ts=posted["ts"])
    await client.conversations_info(channel=CHANNEL)
    await client.conversations_join(channel=CHANNEL)


async def test_metadata_has_an_event_type_and_an_event_payload(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """chat.postMessage and chat.update: `metadata` is a "JSON object with event_type and
    event_payload fields" (`invalid_metadata_format`: "Invalid metadata format provided.");
    chat.update's empty object removes it."""
    ts = await post_lead(client)
    for metadata in ({"event_type": "lead_posted"}, {**METADATA, "event_payload": "L-1"}):
        post = client.chat_postMessage(channel=CHANNEL, text="x", metadata=metadata)
        assert await refused(post) == "invalid_metadata_format"
        edit = client.chat_update(channel=CHANNEL, ts=ts, text="x", metadata=metadata)
        assert await refused(edit) == "invalid_metadata_format"
    await client.chat_update(channel=CHANNEL, ts=ts, text="Claimed", metadata={})
    assert sim.message(CHANNEL, ts).metadata is None  # type: ignore[union-attr]


async def test_views_refuse_oversized_views_stale_hashes_and_homes_opened_as_modals(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """view_too_large: "greater than 250kb"; views.publish hash_conflict: "the provided
    `hash` doesn't match the current stored value"; views.open takes a modal."""
    home = {"type": "home", "blocks": [section("Your queue: 2 leads")]}
    published = await client.views_publish(user_id="U0REP", view=home)
    current = published["view"]["hash"]
    stale = client.views_publish(user_id="U0REP", view=home, hash="1.stale")
    assert await refused(stale) == "hash_conflict"
    await client.views_publish(user_id="U0REP", view=home, hash=current)
    huge = {"type": "home", "blocks": [section("x" * 2900) for _ in range(95)]}
    assert await refused(client.views_publish(user_id="U0REP", view=huge)) == "view_too_large"
    opened = client.views_open(trigger_id=sim.issue_trigger("U0REP"), view=home)
    assert await refused(opened) == "invalid_arguments"


async def test_a_members_email_shows_only_with_users_read_email(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """users:read.email "is now required to access the email field in user objects returned by
    the users.list and users.info web API methods. users:read is no longer a sufficient scope
    for this data field." (https://api.slack.com/scopes/users:read.email)"""
    sim.scopes = ["users:read"]
    info = await client.users_info(user="U0ADA")
    assert "email" not in info["user"]["profile"]
    listed = await client.users_list()
    assert [m["profile"].get("email") for m in listed["members"]] == [None] * len(sim.users)
    sim.scopes = ["users.profile:read"]  # "the email field in user profiles" (same page)
    profile = await client.users_profile_get(user="U0ADA")
    assert "email" not in profile["profile"]
    sim.scopes = ["users:read", "users:read.email"]
    info = await client.users_info(user="U0ADA")
    assert info["user"]["profile"]["email"] == "ada@example.com"


async def test_an_edit_names_the_dm_not_the_person(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """chat.update's `channel`: "For direct messages, ensure that this value is a DM ID (starts
    with `D`) instead of a User ID (starts with either `U` or `W`)." (`channel_not_found`:
    "Value passed for `channel` was invalid."); chat.postMessage takes a user id."""
    posted = await client.chat_postMessage(channel="U0REP", text="Your lead: Ada")
    assert str(posted["channel"]).startswith("D")
    by_person = client.chat_update(channel="U0REP", ts=posted["ts"], text="Claimed")
    assert await refused(by_person) == "channel_not_found"
    assert await refused(client.chat_delete(channel="U0REP", ts=posted["ts"])) == (
        "channel_not_found"
    )
    await client.chat_update(channel=posted["channel"], ts=posted["ts"], text="Claimed")
    assert [m.text for m in sim.messages(posted["channel"])] == ["Claimed"]


async def test_a_post_over_40000_characters_is_truncated_not_refused(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """Slack truncates a posted message's text at 40,000 characters and posts it, with a
    `message_truncated` warning, for chat.postMessage and response URLs alike
    (https://api.slack.com/changelog/2018-04-truncating-really-long-messages; chat.postMessage
    lists no `msg_too_long`)."""
    posted = await client.chat_postMessage(channel=CHANNEL, text="x" * 40_001)
    assert posted["message"]["text"] == "x" * 40_000
    assert posted["response_metadata"]["warnings"] == ["message_truncated"]
    assert sim.message(CHANNEL, posted["ts"]).text == "x" * 40_000  # type: ignore[union-attr]
    url = sim.new_response_url(CHANNEL, "U0REP")
    async with aiohttp.ClientSession() as session:
        body = {"text": "y" * 40_001, "response_type": "in_channel"}
        async with session.post(url, json=body) as answer:
            assert answer.status == 200
    assert sim.messages(CHANNEL)[-1].text == "y" * 40_000


async def test_a_message_takes_at_most_100_attachments(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """`too_many_attachments`: "Too many attachments were provided with this message. A maximum
    of 100 attachments are allowed on a message." (chat.postMessage, chat.update,
    chat.postEphemeral)"""
    hundred = [{"text": f"note {i}", "fallback": f"note {i}"} for i in range(100)]
    posted = await client.chat_postMessage(channel=CHANNEL, text="Notes", attachments=hundred)
    many = client.chat_postMessage(channel=CHANNEL, text="Notes", attachments=[*hundred, {}])
    assert await refused(many) == "too_many_attachments"
    edit = client.chat_update(channel=CHANNEL, ts=posted["ts"], attachments=[*hundred, {}])
    assert await refused(edit) == "too_many_attachments"
    private = client.chat_postEphemeral(
        channel=CHANNEL, user="U0REP", text="Notes", attachments=[*hundred, {}]
    )
    assert await refused(private) == "too_many_attachments"


async def test_a_method_without_json_input_reads_no_json_body(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """Slack reads a JSON body only for the methods that take one (users.profile.get: "This
    method does not currently accept application/json."; `json_input_supported` in each
    method's reference): sent as JSON, such a method's arguments are not there."""
    by_json = client.api_call("users.info", json={"user": "U0ADA"})
    assert await refused(by_json) == "user_not_found"
    by_form = await client.api_call("users.info", params={"user": "U0ADA"})
    assert by_form["user"]["id"] == "U0ADA"
    posted = await client.api_call("chat.postMessage", json={"channel": CHANNEL, "text": "Hi"})
    assert posted["channel"] == CHANNEL


async def test_an_invitation_is_heard_only_as_slack_sends_it(sim: SlackSimulator) -> None:
    """`member_joined_channel` "requires membership in the conversation": the app hears
    someone join only a channel it is in, its own join once invited, and only with the
    channel type's scope (`channels:read` public, `groups:read` private); Slack refuses to
    invite anyone to an archived channel (conversations.invite `is_archived`) or a deleted one
    (`channel_not_found`), and the app to one it is in (`already_in_channel`)
    (https://docs.slack.dev/reference/events/member_joined_channel)."""
    received: list[dict[str, Any]] = []

    async def capture(request: web.Request) -> web.Response:
        received.append(json.loads(await request.text())["event"])
        return web.json_response({"ok": True})

    sim.add_channel("C0PRIV", private=True)
    sim.not_in_channel.update({CHANNEL, "C0PRIV"})
    async with bot_answering(capture, sim) as driver:
        assert await driver.invite("U0ADA", CHANNEL, "U0REP") is None  # the app is out
        sim.archive_channel(CHANNEL)
        with pytest.raises(ValueError, match="is_archived"):
            await driver.invite("U0ADA", CHANNEL)
        assert CHANNEL in sim.not_in_channel
        sim.archive_channel(CHANNEL, archived=False)
        sim.scopes = ["chat:write", "channels:read"]
        assert await driver.invite("U0ADA", "C0PRIV") is None  # no groups:read: unheard
        assert "C0PRIV" not in sim.not_in_channel  # but a member all the same
        joined = await driver.invite("U0ADA", CHANNEL)
        assert joined is not None and joined.status == 200
        with pytest.raises(ValueError, match="already_in_channel"):
            await driver.invite("U0ADA", CHANNEL)
        assert (await driver.invite("U0ADA", CHANNEL, "U0REP")) is not None
        sim.missing_channels.add("C0GONE")
        with pytest.raises(ValueError, match="channel_not_found"):
            await driver.invite("U0ADA", "C0GONE")
    assert [(e["user"], e["channel"], e["channel_type"]) for e in received] == [
        (sim.bot_user_id, CHANNEL, "C"),
        ("U0REP", CHANNEL, "C"),
    ]
