"""An erased person's data never comes back to Slack, however the replicas' deliveries
interleave with the erasure (SQLite and PostgreSQL). An update of the lead's post renders the
lead as its worker read it, and a retirement of an earlier cycle's post was rendered when the
lead came back: a request of either under way when the erasure commits carries the person's
name, and chat.update has no version check. Landing after the erasure's own edit of that post
(another replica's), it would show the person again. The order is set up by hand, by outbox
rows and their states: the request taken before the erasure, finished after its edit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.services.erasure import forget
from bot.services.leads import Services
from storage.outbox import Kind, OutboxItem, OutboxStore
from storage.queue import DONE, PENDING
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes
from tests.integration.test_retire_order_store import (
    BACK,
    FIRST_POST,
    OWNER,
    come_back,
    give_up,
    second_post,
    take,
    taken_update,
)
from tests.integration.test_settle_store import posted


async def erase(services: Services) -> None:
    assert len(await forget(services.store, Wakes(), "hs-1", "cli", BACK)) == 1


async def nurtured_with_a_post(services: Services) -> int:
    """Lead hs-1 posted through the outbox (`FIRST_POST`: an erasure empties a message it
    knows it sent), claimed and closed as Bad timing: in nurture."""
    result = await services.intake(lead_payload("hs-1"), MONDAY)
    assert result.lead is not None
    rows = OutboxStore(services.store.db)
    (post,) = [row for row in await rows.rows() if row["kind"] == Kind.POST_LEAD]
    item = await rows.lease(int(post["id"]), MONDAY, MONDAY + timedelta(seconds=30))
    assert item is not None
    await rows.delivered(item, MONDAY, FIRST_POST, "C0ENT")
    await services.claim(result.lead.id, OWNER, MONDAY + timedelta(hours=1))
    await services.dispose(result.lead.id, OWNER, "bad_timing", MONDAY + timedelta(hours=2))
    return result.lead.id


async def waiting(rows: OutboxStore, kind: str, after: int) -> list[dict[str, Any]]:
    """The rows of `kind` not taken yet, written after row `after`: they land after it."""
    return [
        row
        for row in await rows.rows()
        if row["kind"] == kind and row["state"] == PENDING and row["id"] > after
    ]


async def deliver_the_erasures_edit(rows: OutboxStore, kind: str, after: int) -> None:
    """Another replica delivers the erasure's edit of the post first."""
    (edit,) = await waiting(rows, kind, after)
    await rows.delivered(await take(rows, edit), BACK)


async def test_an_update_that_read_the_person_before_the_erasure_is_rendered_again(
    services: Services,
) -> None:
    lead_id = await posted(services, "hs-1")
    rows = OutboxStore(services.store.db)
    update = await taken_update(rows, services, lead_id)  # it read the person's name
    await erase(services)
    await deliver_the_erasures_edit(rows, Kind.UPDATE_LEAD, update.id)

    # Then the update's request lands, with what it read: the person back on the post.
    await rows.delivered(update, BACK, updated=FIRST_POST)

    (again,) = await waiting(rows, Kind.UPDATE_LEAD, update.id)
    assert (again["lead_id"], again["channel"]) == (lead_id, "C0ENT")  # as the erased lead


async def test_an_update_that_read_the_erased_lead_needs_nothing_more(
    services: Services,
) -> None:
    lead_id = await posted(services, "hs-1")
    rows = OutboxStore(services.store.db)
    await erase(services)
    await deliver_the_erasures_edit(rows, Kind.UPDATE_LEAD, 0)
    update = await taken_update(rows, services, lead_id)

    await rows.delivered(update, BACK)  # the worker rendered the erased lead (no `updated`)

    assert await waiting(rows, Kind.UPDATE_LEAD, 0) == []


async def test_an_earlier_posts_retirement_under_way_at_the_erasure_is_emptied_again(
    services: Services,
) -> None:
    lead_id = await nurtured_with_a_post(services)
    rows = OutboxStore(services.store.db)
    await come_back(services, lead_id)
    (retire,) = [row for row in await rows.rows() if row["kind"] == Kind.RETIRE]
    under_way: OutboxItem = await take(rows, retire)  # rendered with the person's name
    await erase(services)
    redactions = [row for row in await rows.rows() if row["kind"] == Kind.REDACT]
    assert [row["payload"]["ts"] for row in redactions] == [FIRST_POST]
    await rows.delivered(await take(rows, redactions[0]), BACK)  # emptied first

    await rows.delivered(under_way, BACK)  # then the retirement lands, name and all

    (again,) = await waiting(rows, Kind.REDACT, redactions[0]["id"])
    assert (again["lead_id"], again["channel"], again["payload"]) == (
        lead_id,
        "C0ENT",
        {"ts": FIRST_POST},
    )
    assert [row["state"] for row in await rows.rows() if row["id"] == retire["id"]] == [DONE]


async def test_an_update_tried_before_empties_again_the_earlier_post_it_may_have_shown(
    services: Services,
) -> None:
    """Its first request read the person on the first post (cycle 1) and its answer was lost
    (tried again, as an update is); the lead came back and was erased, and the erasure emptied
    that post; the first request may land after that edit, the person back on it. Taken again,
    it renders the erased lead on the new post: the first post, not known as the one it edited,
    is emptied once more, as a retired post is retired once more (`_retire_again`)."""
    lead_id = await nurtured_with_a_post(services)
    rows = OutboxStore(services.store.db)
    update = await taken_update(rows, services, lead_id)  # it read the person, on FIRST_POST
    await rows.retry(update, BACK, BACK, "TimeoutError", unknown=False)  # its answer lost
    await come_back(services, lead_id)
    (retire,) = [row for row in await rows.rows() if row["kind"] == Kind.RETIRE]
    await rows.delivered(await take(rows, retire), BACK)
    await second_post(rows)
    await erase(services)
    (emptied,) = [row for row in await rows.rows() if row["kind"] == Kind.REDACT]
    assert emptied["payload"] == {"ts": FIRST_POST}
    await rows.delivered(await take(rows, emptied), BACK)  # emptied first
    later = BACK + timedelta(minutes=1)
    again = await rows.lease(update.id, later, later + timedelta(seconds=30))
    assert again is not None and again.attempts == 2

    await rows.delivered(again, later)  # it rendered the erased lead, on SECOND_POST

    (redaction,) = await waiting(rows, Kind.REDACT, emptied["id"])
    assert (redaction["lead_id"], redaction["channel"], redaction["payload"]) == (
        lead_id,
        "C0ENT",
        {"ts": FIRST_POST},
    )


@pytest.mark.parametrize("how", ["failed", "refused"])
async def test_an_update_refused_after_a_lost_request_empties_again_what_it_may_have_shown(
    services: Services, how: str
) -> None:
    """As above, but taken again it is refused for good (the channel archived meanwhile): its
    first request may still have landed after the erasure's edit, so the lead's post is
    rendered again as the erased lead and the earlier cycle's post emptied once more."""
    lead_id = await nurtured_with_a_post(services)
    rows = OutboxStore(services.store.db)
    update = await taken_update(rows, services, lead_id)  # it read the person, on FIRST_POST
    await rows.retry(update, BACK, BACK, "TimeoutError", unknown=False)  # its answer lost
    await come_back(services, lead_id)
    (retire,) = [row for row in await rows.rows() if row["kind"] == Kind.RETIRE]
    await rows.delivered(await take(rows, retire), BACK)
    await second_post(rows)
    await erase(services)
    (emptied,) = [row for row in await rows.rows() if row["kind"] == Kind.REDACT]
    await rows.delivered(await take(rows, emptied), BACK)  # emptied first
    later = BACK + timedelta(minutes=1)
    again = await rows.lease(update.id, later, later + timedelta(seconds=30))
    assert again is not None and again.attempts == 2

    await give_up(rows, again, how)

    (redaction,) = await waiting(rows, Kind.REDACT, emptied["id"])
    assert (redaction["lead_id"], redaction["channel"], redaction["payload"]) == (
        lead_id,
        "C0ENT",
        {"ts": FIRST_POST},
    )
    (rendered,) = await waiting(rows, Kind.UPDATE_LEAD, update.id)  # as the erased lead
    assert (rendered["lead_id"], rendered["channel"]) == (lead_id, "C0ENT")


@pytest.mark.parametrize("tries", [1, 2])
@pytest.mark.parametrize("how", ["failed", "refused"])
async def test_a_retirement_refused_after_a_lost_request_empties_its_post_again(
    services: Services, how: str, tries: int
) -> None:
    """The retirement of the earlier cycle's post (rendered with the person) is under way at
    the erasure, and refused for good: tried before, its first request (answer lost) may have
    landed after the erasure emptied the post, so the post is emptied once more; refused at
    its one try, it edited nothing, and nothing more is needed."""
    lead_id = await nurtured_with_a_post(services)
    rows = OutboxStore(services.store.db)
    await come_back(services, lead_id)
    (retire,) = [row for row in await rows.rows() if row["kind"] == Kind.RETIRE]
    under_way: OutboxItem = await take(rows, retire)
    if tries == 2:
        await rows.retry(under_way, BACK, BACK, "TimeoutError", unknown=False)  # answer lost
        later = BACK + timedelta(minutes=1)
        taken = await rows.lease(under_way.id, later, later + timedelta(seconds=30))
        assert taken is not None
        under_way = taken
    assert under_way.attempts == tries
    await erase(services)
    (emptied,) = [row for row in await rows.rows() if row["kind"] == Kind.REDACT]
    assert emptied["payload"] == {"ts": FIRST_POST}
    await rows.delivered(await take(rows, emptied), BACK)  # emptied first

    await give_up(rows, under_way, how)

    again = await waiting(rows, Kind.REDACT, emptied["id"])
    if tries == 1:
        assert again == []
        return
    assert [(row["lead_id"], row["channel"], row["payload"]) for row in again] == [
        (lead_id, "C0ENT", {"ts": FIRST_POST})
    ]
