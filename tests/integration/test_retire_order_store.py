"""The post of a lead's earlier cycle stays retired, however the replicas' deliveries interleave
(SQLite and PostgreSQL). An update of the lead's message renders the lead as the worker reads it
when it delivers; one whose request was under way when the lead came back read the ended cycle,
and chat.update has no version check: landing after the retirement, it would show that cycle
live again, rating menus and all, on its post. The order is set up by hand, by outbox rows and
their states: the update written (and taken) before the comeback, finished after the retire."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from bot.domain.effects import Refresh
from bot.services.leads import Services, Stored
from storage.outbox import Kind, OutboxItem, OutboxStore, write_effects
from storage.queue import DONE, PENDING
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY
from tests.integration.test_settle_store import posted

OWNER = "U0REP1"
DEMO = {"type": "demo_request", "title": "Book a demo"}
FIRST_POST = "1790000000.hs-1"
SECOND_POST = "1790000500.000100"
BACK = MONDAY + timedelta(days=3)
LEASE = timedelta(seconds=30)


async def nurtured_with_a_post(services: Services) -> int:
    """Lead hs-1 posted (`FIRST_POST`), claimed and closed as Bad timing: in nurture."""
    lead_id = await posted(services, "hs-1")
    await services.claim(lead_id, OWNER, MONDAY + timedelta(hours=1))
    await services.dispose(lead_id, OWNER, "bad_timing", MONDAY + timedelta(hours=2))
    return lead_id


async def taken_update(rows: OutboxStore, services: Services, lead_id: int) -> OutboxItem:
    """The lead's update waiting in the outbox, taken by a worker (its request under way)."""
    await services.store.db.run(lambda db: write_effects(db, [Refresh(lead_id)], MONDAY))
    (waiting,) = [
        row
        for row in await rows.rows()
        if row["kind"] == Kind.UPDATE_LEAD and row["state"] == PENDING
    ]
    item = await rows.lease(int(waiting["id"]), BACK, BACK + LEASE)
    assert item is not None
    return item


async def come_back(services: Services, lead_id: int) -> None:
    """Re-qualified at intake: cycle 2, its own post on the way, the first post retired."""
    again = lead_payload("hs-1", score=95, engagement=[*lead_payload()["engagement"], DEMO])
    result = await services.intake(again, BACK)
    assert isinstance(result, Stored) and result.requalified
    lead = await services.lead(lead_id)
    # What a worker reads from now on: the new cycle, with no post yet (it waits for it), so
    # no update renders cycle 2 onto the first post.
    assert (lead.cycle, lead.message_ts, lead.message_channel) == (2, None, None)


async def retires(rows: OutboxStore) -> list[dict[str, Any]]:
    return [row for row in await rows.rows() if row["kind"] == Kind.RETIRE]


async def take(rows: OutboxStore, row: dict[str, Any]) -> OutboxItem:
    item = await rows.lease(int(row["id"]), BACK, BACK + LEASE)
    assert item is not None
    return item


async def update_past_a_retirement(
    services: Services,
    *,
    lost: bool = False,
    nurtured: Callable[[Services], Awaitable[int]] = nurtured_with_a_post,
) -> tuple[int, OutboxStore, OutboxItem, dict[str, Any]]:
    """The lead (`nurtured`) has its update taken while cycle 1 was live (it read cycle 1, on
    `FIRST_POST`; `lost`: its answer lost, to be tried again), then the lead came back and the
    retirement of `FIRST_POST` was delivered: the lead, the outbox, the update, and the retire
    row."""
    lead_id = await nurtured(services)
    rows = OutboxStore(services.store.db)
    update = await taken_update(rows, services, lead_id)
    if lost:
        await rows.retry(update, BACK, BACK, "TimeoutError", unknown=False)
    await come_back(services, lead_id)
    (retire,) = await retires(rows)
    await rows.delivered(await take(rows, retire), BACK)
    return lead_id, rows, update, retire


async def test_an_update_landing_after_the_retire_retires_the_post_again(
    services: Services,
) -> None:
    lead_id = await nurtured_with_a_post(services)
    rows = OutboxStore(services.store.db)
    update = await taken_update(rows, services, lead_id)  # it read cycle 1, on FIRST_POST
    await come_back(services, lead_id)
    (retire,) = await retires(rows)
    assert retire["id"] > update.id and retire["payload"]["ts"] == FIRST_POST
    await rows.delivered(await take(rows, retire), BACK)  # the retire landed first

    # Then the update's request, made with what it read: cycle 1 live again on FIRST_POST.
    await rows.delivered(update, BACK, updated=FIRST_POST)

    first, again = await retires(rows)
    assert first["state"] == DONE
    assert (again["state"], again["lead_id"], again["channel"]) == (PENDING, lead_id, "C0ENT")
    assert again["payload"] == retire["payload"]  # the retired post, as the comeback rendered it
    assert again["id"] > update.id  # delivered after the update's request ended
    await rows.delivered(await take(rows, again), BACK)

    # An update written after the comeback renders cycle 2 on its own post: nothing more.
    later = await taken_update(rows, services, lead_id)
    assert later.id > retire["id"]
    await rows.delivered(later, BACK, updated=SECOND_POST)
    assert len(await retires(rows)) == 2


async def test_a_retire_still_waiting_lands_after_the_update_by_itself(
    services: Services,
) -> None:
    lead_id = await nurtured_with_a_post(services)
    rows = OutboxStore(services.store.db)
    update = await taken_update(rows, services, lead_id)
    await come_back(services, lead_id)

    # The retire not taken yet: its request comes after the update's.
    await rows.delivered(update, BACK, updated=FIRST_POST)

    (retire,) = await retires(rows)
    assert retire["state"] == PENDING


async def test_a_retire_under_way_with_the_update_is_sent_once_more(services: Services) -> None:
    """The update and the retire both in flight (two replicas): which landed last is unknown."""
    lead_id = await nurtured_with_a_post(services)
    rows = OutboxStore(services.store.db)
    update = await taken_update(rows, services, lead_id)
    await come_back(services, lead_id)
    (retire,) = await retires(rows)
    under_way = await take(rows, retire)

    await rows.delivered(update, BACK, updated=FIRST_POST)
    await rows.delivered(under_way, BACK)

    first, again = await retires(rows)
    assert (first["state"], again["state"]) == (DONE, PENDING)
    assert again["payload"] == retire["payload"]


async def second_post(rows: OutboxStore) -> None:
    """The new cycle's post, delivered: `SECOND_POST`."""
    (post,) = [
        row
        for row in await rows.rows()
        if row["kind"] == Kind.POST_LEAD and row["payload"].get("cycle") == 2
    ]
    await rows.delivered(await take(rows, post), BACK, SECOND_POST, "C0ENT")


async def test_an_update_that_read_the_new_cycle_leaves_the_retired_post_alone(
    services: Services,
) -> None:
    """The update written before the comeback made its one request after it, once the new
    post was there: it read cycle 2 and edited the new post, so nothing is retired again,
    though the retire went before it ended. (Tried more than once, the update would retire
    the earlier post again, to be sure: an earlier request's post is not known.)"""
    lead_id, rows, update, _retire = await update_past_a_retirement(services)
    await second_post(rows)
    assert (await services.lead(lead_id)).message_ts == SECOND_POST

    await rows.delivered(update, BACK, updated=SECOND_POST)

    assert [row["state"] for row in await retires(rows)] == [DONE]


@pytest.mark.parametrize("lost", ["worker died", "answer lost"])
async def test_an_update_whose_first_request_was_lost_retires_the_post_again(
    services: Services, lost: str
) -> None:
    """Its first request read cycle 1 and may have reached Slack, on the first post, but its
    worker died with it (taken again once the lease ran out) or its answer never came (tried
    again, as an update is: it renders afresh); taken again, it edits the new post, and, as
    the first may have landed on the earlier post after its retire, that post is retired
    again."""
    lead_id = await nurtured_with_a_post(services)
    rows = OutboxStore(services.store.db)
    update = await taken_update(rows, services, lead_id)
    later = BACK + 2 * LEASE
    if lost == "answer lost":  # what the worker writes for an update (bot/slack/outbox.py)
        await rows.retry(update, BACK, BACK, "TimeoutError", unknown=False)
    await come_back(services, lead_id)
    (retire,) = await retires(rows)
    await rows.delivered(await take(rows, retire), BACK)
    await second_post(rows)
    again = await rows.lease(update.id, later, later + LEASE)
    assert again is not None and again.attempts == 2

    await rows.delivered(again, later, updated=SECOND_POST)

    first, copy = await retires(rows)
    assert first["state"] == DONE
    assert (copy["state"], copy["payload"]) == (PENDING, retire["payload"])


ESCALATIONS = "C0ESC"


async def give_up(rows: OutboxStore, item: OutboxItem, how: str) -> None:
    """Slack refused the request for good (chat.update's `is_inactive`: "The message cannot be
    edited within a frozen, archived or deleted channel."), as the worker records it
    (bot/slack/outbox.py `_give_up`): `failed` with no managers' channel, else `refused`."""
    later = BACK + 2 * LEASE
    if how == "failed":
        await rows.failed(item, later, "is_inactive", None)
    else:
        await rows.refused(item, later, "is_inactive", ESCALATIONS)


@pytest.mark.parametrize("how", ["failed", "refused"])
async def test_an_update_refused_after_a_lost_first_request_retires_the_post_again(
    services: Services, how: str
) -> None:
    """Its first request read cycle 1 and its answer was lost: it may have landed on the first
    post after its retire. Refused for good when tried again, the update still retires that
    post again, as one delivered does."""
    _lead_id, rows, update, retire = await update_past_a_retirement(services, lost=True)
    await second_post(rows)
    later = BACK + 2 * LEASE
    again = await rows.lease(update.id, later, later + LEASE)
    assert again is not None and again.attempts == 2

    await give_up(rows, again, how)

    first, copy = await retires(rows)
    assert first["state"] == DONE
    assert (copy["state"], copy["payload"]) == (PENDING, retire["payload"])
    assert copy["id"] > update.id


@pytest.mark.parametrize("how", ["failed", "refused"])
async def test_an_update_refused_at_its_one_try_retires_nothing(
    services: Services, how: str
) -> None:
    """Its one request was refused: it edited nothing, so nothing is retired again."""
    _lead_id, rows, update, _retire = await update_past_a_retirement(services)

    await give_up(rows, update, how)

    assert [row["state"] for row in await retires(rows)] == [DONE]
