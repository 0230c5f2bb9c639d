"""An erased person's data never comes back to Slack, however the replicas' deliveries
interleave with the erasure (SQLite and PostgreSQL). An update of the lead's post renders the
lead as its worker read it, and a retirement of an earlier cycle's post was rendered when the
lead came back: a request of either under way when the erasure commits carries the person's
name, and chat.update has no version check. Landing after the erasure's own edit of that post
(another replica's), it would show the person again. The order is set up by hand, by outbox
rows and their states: the request taken before the erasure, finished after its edit."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text

from bot.services.erasure import forget
from bot.services.leads import Services
from storage.outbox import Kind, OutboxItem, OutboxStore, outbox_row
from storage.queue import DONE, PENDING
from storage.tables import OutboxRow, table
from tests.conftest import lead_payload
from tests.integration.conftest import MONDAY, Wakes
from tests.integration.test_retire_order_store import (
    BACK,
    FIRST_POST,
    LEASE,
    OWNER,
    SECOND_POST,
    come_back,
    give_up,
    second_post,
    take,
    taken_update,
)
from tests.integration.test_retire_order_store import (
    update_past_a_retirement as _past_a_retirement,
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


async def update_past_a_retirement(
    services: Services, *, lost: bool = False
) -> tuple[int, OutboxStore, OutboxItem, dict[str, Any]]:
    """As tests/integration/test_retire_order_store.py's, for a lead posted through the outbox."""
    return await _past_a_retirement(services, lost=lost, nurtured=nurtured_with_a_post)


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
    # The post's, and one that waits until the retirement's request is over.
    assert [row["payload"] for row in redactions] == [
        {"ts": FIRST_POST},
        {"ts": FIRST_POST, "of": retire["id"]},
    ]
    await rows.delivered(await take(rows, redactions[0]), BACK)  # emptied first

    await rows.delivered(under_way, BACK)  # then the retirement lands, name and all

    (again,) = await waiting(rows, Kind.REDACT, redactions[0]["id"])
    assert (again["lead_id"], again["channel"], again["payload"]) == (
        lead_id,
        "C0ENT",
        {"ts": FIRST_POST, "of": retire["id"]},
    )
    assert not (await rows.outcome(retire["id"], BACK))[0]  # its request over: it lands last
    assert [row["state"] for row in await rows.rows() if row["id"] == retire["id"]] == [DONE]


async def test_an_update_tried_before_empties_again_the_earlier_post_it_may_have_shown(
    services: Services,
) -> None:
    """Its first request read the person on the first post (cycle 1) and its answer was lost
    (tried again, as an update is); the lead came back and was erased, and the erasure emptied
    that post; the first request may land after that edit, the person back on it. Taken again,
    it renders the erased lead on the new post: the first post, not known as the one it edited,
    is emptied once more, as a retired post is retired once more (`_retire_again`)."""
    lead_id, rows, update, _retire = await update_past_a_retirement(services, lost=True)
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
    lead_id, rows, update, _retire = await update_past_a_retirement(services, lost=True)
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
    landed after the erasure emptied the post, so the post is emptied once more. Refused at
    its one try, it edited nothing and needs nothing more: the redaction the erasure wrote for
    it (not knowing how it would end) empties the post once more all the same, and no other."""
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
    emptied, _ = [row for row in await rows.rows() if row["kind"] == Kind.REDACT]
    assert emptied["payload"] == {"ts": FIRST_POST}
    await rows.delivered(await take(rows, emptied), BACK)  # emptied first

    await give_up(rows, under_way, how)

    again = await waiting(rows, Kind.REDACT, emptied["id"])
    assert [(row["lead_id"], row["channel"], row["payload"]) for row in again] == [
        (lead_id, "C0ENT", {"ts": FIRST_POST, "of": retire["id"]})
    ]
    assert not (await rows.outcome(retire["id"], BACK + timedelta(minutes=1)))[0]


async def test_a_retirement_waiting_to_be_tried_again_is_followed_by_the_erasures_own_edit(
    services: Services,
) -> None:
    """The retirement's request (rendered with the person) ended with its answer lost, and it
    waits to be tried again (its lease given back: every request of it is over) when the
    erasure drops it. Nothing more is needed: the erasure's own redaction of that post is
    written in the transaction that ends the retirement, so it is delivered after every
    request of it, as a follow-up written when an edit tried before ends is (`_edit_late`)."""
    lead_id = await nurtured_with_a_post(services)
    rows = OutboxStore(services.store.db)
    await come_back(services, lead_id)
    (retire,) = [row for row in await rows.rows() if row["kind"] == Kind.RETIRE]
    tried: OutboxItem = await take(rows, retire)
    await rows.retry(tried, BACK, BACK, "TimeoutError", unknown=False)  # its answer lost

    await erase(services)

    assert not (await rows.outcome(retire["id"], BACK))[0]  # no request of it under way
    (dropped,) = [row for row in await rows.rows() if row["id"] == retire["id"]]
    assert (dropped["state"], dropped["payload"]) == (DONE, {})
    (emptied,) = [row for row in await rows.rows() if row["kind"] == Kind.REDACT]
    assert (emptied["state"], emptied["channel"], emptied["payload"]) == (
        PENDING,
        "C0ENT",
        {"ts": FIRST_POST},
    )


@pytest.mark.parametrize("lost", ["answer lost", "worker died"])
async def test_a_retirement_under_way_at_the_erasure_whose_answer_is_lost_empties_its_post_again(
    services: Services, lost: str
) -> None:
    """The retirement of the earlier cycle's post (rendered with the person) is under way at
    the erasure, which finishes its row; its request then ends without an answer (a timeout,
    the worker retries a row already done), or its worker dies with it: no outcome recorded
    follows it up, yet it may land after the erasure emptied the post. The erasure's own
    redaction of that retirement waits until its request is over, then empties the post."""
    lead_id = await nurtured_with_a_post(services)
    rows = OutboxStore(services.store.db)
    await come_back(services, lead_id)
    (retire,) = [row for row in await rows.rows() if row["kind"] == Kind.RETIRE]
    under_way: OutboxItem = await take(rows, retire)  # rendered with the person's name
    await erase(services)
    emptied = [row for row in await rows.rows() if row["kind"] == Kind.REDACT]
    after = [row for row in emptied if row["payload"].get("of") == retire["id"]]
    assert [(row["lead_id"], row["channel"], row["payload"]) for row in after] == [
        (lead_id, "C0ENT", {"ts": FIRST_POST, "of": retire["id"]})
    ]
    assert (await rows.outcome(retire["id"], BACK))[0]  # it waits while the request may land
    for row in emptied:
        if row["id"] != after[0]["id"]:
            await rows.delivered(await take(rows, row), BACK)  # the post emptied first

    if lost == "answer lost":  # what the worker writes for a retirement (bot/slack/outbox.py)
        await rows.retry(under_way, BACK, BACK, "TimeoutError", unknown=False)
        over = BACK
    else:
        over = BACK + 2 * LEASE  # its lease ran out: its request is over

    assert not (await rows.outcome(retire["id"], over))[0]
    assert [row["state"] for row in await waiting(rows, Kind.REDACT, 0)] == [PENDING]


async def test_an_update_tried_before_finding_its_post_deleted_after_the_erasure_follows_up(
    services: Services,
) -> None:
    """As an update tried before that is delivered after the erasure (above), but taken again
    before it, read the person, and found the new post deleted in Slack: that request edited
    nothing, but the first may have landed on the first post after the erasure emptied it. So
    the post is rendered again as the erased lead and the first post emptied once more."""
    lead_id, rows, update, _retire = await update_past_a_retirement(services, lost=True)
    await second_post(rows)
    later = BACK + timedelta(minutes=1)
    again = await rows.lease(update.id, later, later + timedelta(seconds=30))
    assert again is not None and again.attempts == 2  # it reads the person, on SECOND_POST
    await erase(services)
    (emptied,) = [row for row in await rows.rows() if row["kind"] == Kind.REDACT]
    assert emptied["payload"] == {"ts": FIRST_POST}
    await rows.delivered(await take(rows, emptied), BACK)  # emptied first

    # Slack: message_not_found (SECOND_POST deleted); the lead is erased by now.
    assert await rows.repost(again, "C0ENT", SECOND_POST, later, None)

    (redaction,) = await waiting(rows, Kind.REDACT, emptied["id"])
    assert (redaction["lead_id"], redaction["channel"], redaction["payload"]) == (
        lead_id,
        "C0ENT",
        {"ts": FIRST_POST},
    )
    (rendered,) = await waiting(rows, Kind.UPDATE_LEAD, update.id)  # as the erased lead
    assert (rendered["lead_id"], rendered["channel"]) == (lead_id, "C0ENT")
    reposts = [row for row in await rows.rows() if str(row["key"]).startswith("repost:")]
    assert reposts == []  # an erased lead is never posted again


async def test_a_retirement_copied_while_the_erasure_waits_never_keeps_the_person(
    services: Services, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An update that read cycle 1 ends after the comeback's retire landed: its transaction,
    holding the update's row, writes a copy of that retirement (`_retire_again`: its payload
    copied, the person's name in it, sent as it is) while an erasure of the lead waits for the
    update's row. On PostgreSQL (Read Committed) a statement that waited for a row does not see
    rows committed meanwhile, but the copy's insert checks its foreign key to the lead's row
    (FOR KEY SHARE), which the erasure holds (it changed the lead's unique external id: FOR
    UPDATE): the two wait for each other and PostgreSQL aborts one ("deadlock detected"), never
    both carry on. Here the erasure waited first, so its deadlock check runs first and it is
    the one cancelled: it runs again by itself (`handoff forget` never stops on it) and empties
    the copy. No row keeps the person. On SQLite one writer at a time."""
    lead_id, rows, update, retire = await update_past_a_retirement(services)
    copy_key = f"{retire['key']}:after:{update.id}"
    # On PostgreSQL a third session writes a row with the copy's key and holds it: the update's
    # transaction, its row taken, waits to write the copy until the erasure waits too.
    held = await third_holds_the_key(database_url, copy_key)
    delivering = asyncio.ensure_future(rows.delivered(update, BACK, updated=FIRST_POST))
    if held is not None:
        await held.until(waiting=1)
    erasing = asyncio.ensure_future(erase(services))
    if held is not None:
        await held.until(waiting=2)
        await held.release()
    delivered, erased = await asyncio.gather(delivering, erasing, return_exceptions=True)

    assert not isinstance(erased, BaseException), erased
    ran_again = [r for r in caplog.records if "runs again" in r.getMessage()]
    # Which of the two PostgreSQL cancels is the one whose deadlock check (deadlock_timeout
    # after it began to wait) runs once the cycle is formed: the erasure here, unless the
    # machine stalls for that long. Either way the erasure ends done; a cancelled delivery is
    # the next test's case.
    if isinstance(delivered, BaseException):
        assert held is not None and "deadlock detected" in str(delivered)
    else:
        assert len(ran_again) == (1 if held is not None else 0)
    kept = [row for row in await rows.rows() if row["lead_id"] == lead_id and row["payload"]]
    assert [(row["kind"], row["payload"]) for row in kept if row["kind"] != Kind.REDACT] == []
    copies = [row for row in await rows.rows() if row["key"] == copy_key]
    assert [row["state"] for row in copies] == ([] if isinstance(delivered, Exception) else [DONE])


async def test_a_delivery_cancelled_by_the_erasures_deadlock_is_tried_again_losing_nothing(
    services: Services, database_url: str
) -> None:
    """As above, but the delivery waits first (a third session holds one of the lead's events,
    which the erasure rewrites after it locked the lead's row), so PostgreSQL cancels the
    delivery: `delivered` raises, and the worker's attempt ends there (bot/slack/outbox.py
    logs it). Its row stays as the lease left it: pending, its outcome unknown. The erasure
    commits and empties it; once its lease runs out it is taken again, renders the erased
    lead, and the post its first request may have edited is emptied once more. No copy
    carrying the person is ever written."""
    lead_id, rows, update, retire = await update_past_a_retirement(services)
    copy_key = f"{retire['key']}:after:{update.id}"
    held = await third_holds(
        database_url, "SELECT id FROM events WHERE lead_id = :lead_id FOR UPDATE", lead_id
    )
    erasing = asyncio.ensure_future(erase(services))
    if held is not None:
        await held.until(waiting=1)  # the erasure, the lead's row locked, waits for an event
    delivering = asyncio.ensure_future(rows.delivered(update, BACK, updated=FIRST_POST))
    if held is not None:
        await held.until(waiting=2)  # the delivery's copy waits for the lead's row
        await held.release()
    delivered, erased = await asyncio.gather(delivering, erasing, return_exceptions=True)

    assert not isinstance(erased, BaseException), erased
    if held is None:  # SQLite: one after the other
        assert not isinstance(delivered, BaseException), delivered
        return
    if not isinstance(delivered, BaseException):
        # PostgreSQL cancelled the erasure instead (its check ran first: a stalled machine),
        # which ran again by itself: the case of the test above.
        kept = [r for r in await rows.rows() if r["lead_id"] == lead_id and r["payload"]]
        assert [(r["kind"], r["payload"]) for r in kept if r["kind"] != Kind.REDACT] == []
        return
    assert "deadlock detected" in str(delivered)
    assert [row for row in await rows.rows() if row["key"] == copy_key] == []
    (waits,) = [row for row in await rows.rows() if row["id"] == update.id]
    assert (waits["state"], waits["payload"]) == (PENDING, {})
    assert await rows.lease(update.id, BACK, BACK + LEASE) is None  # its lease still runs
    later = BACK + 2 * LEASE
    again = await rows.lease(update.id, later, later + LEASE)
    assert again is not None and again.attempts == 2

    await rows.delivered(again, later)  # it rendered the erased lead

    redactions = [row for row in await rows.rows() if row["kind"] == Kind.REDACT]
    assert {"ts": FIRST_POST} in [row["payload"] for row in redactions]
    assert any(row["key"].startswith(f"redact:{update.id}") for row in redactions)
    kept = [row for row in await rows.rows() if row["lead_id"] == lead_id and row["payload"]]
    assert [(row["kind"], row["payload"]) for row in kept if row["kind"] != Kind.REDACT] == []


@pytest.mark.parametrize("how", ["failed", "refused"])
async def test_a_refused_retirement_sent_again_as_the_person_is_erased_keeps_nothing_of_them(
    services: Services, database_url: str, how: str
) -> None:
    """The retirement of the earlier cycle's post was refused for good (its channel archived);
    the channel is unarchived and `mended` sends it again: it reads the refused row's payload
    (rendered with the person), then writes a copy of it and, if an alert told of it, that
    payload back into the refused row (kept for good) with the alert that told it. An erasure
    committing between that read and those writes would find neither row yet, and the person
    would come back in both. On PostgreSQL the read locks the lead's row (FOR KEY SHARE): an
    erasure under way is waited for (then the lead is erased: nothing is sent again), one to
    come waits for the mend and empties what it wrote. The mend is held between its read and
    its writes by a third session holding the copy's key. Another lead's refusal is the
    alert's latest, so the erasure does not wait for the alert's row."""
    lead_id = await nurtured_with_a_post(services)
    rows = OutboxStore(services.store.db)
    await come_back(services, lead_id)
    (retire,) = [row for row in await rows.rows() if row["kind"] == Kind.RETIRE]
    await give_up(rows, await take(rows, retire), how)
    other = await services.intake(lead_payload("hs-2"), BACK)
    assert other.lead is not None
    (post,) = [
        r for r in await rows.rows() if r["lead_id"] == other.lead.id and r["state"] == PENDING
    ]
    await give_up(rows, await take(rows, post), how)  # the alert's latest lead
    copy_key = f"{retire['key']}:again:{retire['id']}"
    held = await third_holds_the_key(database_url, copy_key)
    mended = BACK + timedelta(hours=1)
    mending = asyncio.ensure_future(rows.mended("C0ENT", mended))
    if held is not None:
        await held.until(waiting=1)  # the mend read the refused rows, and waits
    erasing = asyncio.ensure_future(erase(services))
    if held is not None:
        await held.until(waiting=2, unless=erasing)  # the erasure waits for it, or is done
        await held.release()
    await asyncio.gather(mending, erasing)

    kept = [row for row in await rows.rows() if row["lead_id"] == lead_id and row["payload"]]
    assert [(row["kind"], row["payload"]) for row in kept if row["kind"] != Kind.REDACT] == []


class _Holder:
    def __init__(self, connection: Any, transaction: Any, engine: Any) -> None:
        self.connection, self.transaction, self.engine = connection, transaction, engine

    async def until(self, waiting: int, unless: asyncio.Future[Any] | None = None) -> None:
        """Until `waiting` other sessions of this database wait for a lock (or `unless` is
        done)."""
        query = (
            "SELECT COUNT(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        for _ in range(500):
            # This session's transaction keeps its first read of the statistics: read afresh.
            await self.connection.execute(text("SELECT pg_stat_clear_snapshot()"))
            if (await self.connection.execute(text(query))).scalar() == waiting:
                return
            if unless is not None and unless.done():
                return
            await asyncio.sleep(0.01)
        await self.release()
        raise AssertionError(f"{waiting} sessions never waited for a lock")

    async def release(self) -> None:
        try:
            await self.transaction.rollback()
        finally:
            await self.connection.close()
            await self.engine.dispose()


async def third_holds_the_key(database_url: str, key: str) -> _Holder | None:
    """On PostgreSQL: a session that has written an outbox row keyed `key`, not committed (a
    writer of the same key waits for it). None on SQLite."""
    row = outbox_row(Kind.MESSAGE, "C0HOLD", BACK, key=key)
    return await _third(database_url, insert(table(OutboxRow)).values(**row))


async def third_holds(database_url: str, locking: str, lead_id: int) -> _Holder | None:
    """On PostgreSQL: a session that ran the locking statement `locking` about the lead, not
    committed. None on SQLite."""
    return await _third(database_url, text(locking).bindparams(lead_id=lead_id))


async def _third(database_url: str, statement: Any) -> _Holder | None:
    if not database_url.startswith("postgresql"):
        return None
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    connection = await engine.connect()
    transaction = await connection.begin()
    await connection.execute(statement)
    return _Holder(connection, transaction, engine)
