"""The shared error path answers a refused press the way the press's registration says
(`Listeners.refusal_answers`, by action id) and privately otherwise: it knows no particular
message. The `/lead` card's own answer, end to end, is in tests/e2e/test_lead_card.py."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, cast

from bot.domain.refusal import Refusal
from bot.slack.ids import ActionId
from handlers.context import CONTEXT_KEY, Asked, parse
from handlers.slack_listeners import Listeners

CARD = {"type": "message", "message_ts": "1790000000.000200", "is_ephemeral": True}
REFUSED = "Nothing to reassign, <@U0MGR1>: R&D closed it."


class Publisher:
    """Holds the answers `Listeners` sends after the ack, for the test to run."""

    def __init__(self) -> None:
        self.work: list[Coroutine[Any, Any, Any]] = []

    def spawn(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        self.work.append(work)


def pick(action_id: str, actions: Any = None) -> dict[str, Any]:
    """A menu pick on the `/lead` card (`actions`: as sent instead, for a malformed one)."""
    option = {"selected_option": {"value": "12:U0REP2"}}
    pressed = [{"action_id": action_id, **option}] if actions is None else actions
    return {
        "type": "block_actions",
        "actions": pressed,
        "container": CARD,
        "response_url": "https://hooks.slack.example/actions/T0/1/x",
    }


def refuse(listeners: Listeners, body: dict[str, Any]) -> list[dict[str, Any]]:
    """`failed` on a Refusal of `body`: what went through the press's respond."""
    said: list[dict[str, Any]] = []

    async def respond(**answer: Any) -> None:
        said.append(answer)

    async def ack(**answer: Any) -> None:
        return None

    async def run() -> None:
        context = {CONTEXT_KEY: parsed(body), "user_id": "U0MGR1"}
        error = Refusal(REFUSED)
        await listeners.failed(error, body, cast(Any, ack), cast(Any, context), cast(Any, respond))
        spawned = cast(Publisher, listeners.publisher).work
        while spawned:
            await spawned.pop(0)

    asyncio.run(run())
    return said


def parsed(body: dict[str, Any]) -> Asked:
    """As `parse_once` leaves it: what `body` asks, or nothing (it refused the payload)."""
    try:
        return parse(body)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError):
        return Asked()


def listeners() -> Listeners:
    none = cast(Any, None)
    publisher = cast(Any, Publisher())
    return Listeners(none, none, none, none, none, publisher, none, none)


def test_a_refused_press_without_its_own_answer_is_answered_privately() -> None:
    """Even a pick on the `/lead` card: `failed` knows no card, only what was registered."""
    said = refuse(listeners(), pick(ActionId.LEAD_REASSIGN.value))
    privately = {"response_type": "ephemeral", "replace_original": False}
    assert said == [{"text": "Nothing to reassign, <@U0MGR1>: R&amp;D closed it.", **privately}]


def test_a_refused_press_is_answered_as_its_action_id_registered() -> None:
    answered: list[tuple[str, str]] = []
    both = listeners()
    both.refusal_answers[ActionId.LEAD_REASSIGN.value] = lambda respond, context, words: (
        answered.append((str(context["user_id"]), words))
    )

    assert refuse(both, pick(ActionId.LEAD_REASSIGN.value)) == []
    assert answered == [("U0MGR1", "Nothing to reassign, <@U0MGR1>: R&amp;D closed it.")]

    # Another press (the alert's Reassign menu: the same access action, another listener), and
    # presses not shaped as Slack sends them (refused by `parse_once`), are answered privately,
    # never with the registered answer nor a traceback.
    for body in (
        pick(ActionId.REASSIGN.value),
        pick("", actions="lead_reassign"),
        pick("", actions=["lead_reassign"]),
        pick("", actions=[{"action_id": 7}]),
        pick("", actions=[]),
    ):
        (private,) = refuse(both, body)
        assert private["response_type"] == "ephemeral", body
    assert len(answered) == 1
