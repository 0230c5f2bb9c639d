"""App Homes held while Slack refuses them for the whole app (views.publish's `not_enabled`:
"a `home` view is published but the Home tab isn't enabled for the app"), on the real store,
SQLite and PostgreSQL: they wait one per person, and are no delivery falling behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.outbox import Kind, OutboxStore, enqueue
from storage.repository import Store

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


async def home(store: Store, user: str, at: datetime = T0) -> None:
    await store.db.run(lambda db: enqueue(db, Kind.HOME, user, at))


async def test_homes_held_for_the_app_are_not_the_oldest_delivery(store: Store) -> None:
    outbox = OutboxStore(store.db)
    await home(store, "U0REP1")
    await home(store, "U0REP2")
    assert await outbox.oldest_pending() == T0  # waiting homes count, as any delivery
    assert await outbox.home_refused() is None

    rows = await outbox.rows()
    item = await outbox.lease(rows[0]["id"], T0, T0 + timedelta(seconds=30))
    assert item is not None
    alert = ("C0ESCALATE", "every App Home is refused", "alert:homes:not_enabled:2026-11-02")
    await outbox.home_waits(item, T0, T0, "not_enabled", alert)
    await outbox.home_waits(item, T0, T0, "not_enabled", alert)  # asked again: one alert

    keys = [row["key"] for row in await outbox.rows() if row["kind"] == Kind.MESSAGE]
    assert keys == [alert[2]]
    assert await outbox.home_refused() == "not_enabled"
    assert await outbox.homes_waiting() == 2
    later = T0 + timedelta(days=1)
    await store.db.run(lambda db: enqueue(db, Kind.MESSAGE, "C0ENT", later, key="later"))
    assert await outbox.oldest_pending() == T0  # the alert still waits
    for row in await outbox.rows():
        if row["kind"] == Kind.MESSAGE and row["key"] != "later":
            sent = await outbox.lease(row["id"], T0, T0 + timedelta(seconds=30))
            assert sent is not None
            await outbox.delivered(sent, T0, ts="1.0001")
    assert await outbox.oldest_pending() == later  # the held homes leave the age alone
    depth, _ = await outbox.backlog()
    assert depth == {Kind.HOME: 2, Kind.MESSAGE: 1}  # still counted as waiting
    assert await outbox.pending(homes=False) == 1
    held = [row for row in await outbox.rows() if row["kind"] == Kind.HOME]
    assert [row["state"] for row in held] == ["pending", "pending"]
    assert {row["last_error"] for row in held} == {"not_enabled"}


async def test_a_home_waiting_for_another_reason_still_counts(store: Store) -> None:
    outbox = OutboxStore(store.db)
    await home(store, "U0REP1")
    item = await outbox.lease((await outbox.rows())[0]["id"], T0, T0 + timedelta(seconds=30))
    assert item is not None
    await outbox.retry(item, T0, T0, "internal_error", unknown=False)
    assert await outbox.home_refused() is None
    assert await outbox.oldest_pending() == T0


async def due_homes(outbox: OutboxStore, at: datetime) -> list[str]:
    rows = {row["id"]: row["channel"] for row in await outbox.rows()}
    return [rows[row_id] for row_id, _, kind in await outbox.due(at) if kind == Kind.HOME]


async def test_held_homes_are_not_due_but_the_one_asking_and_all_once_back(store: Store) -> None:
    """Held homes stay out of the dispatcher's reads (the oldest due rows): the other rows
    coming due are reached however many homes wait. One is made due to ask Slack again, and
    all of them at once when Slack takes homes again."""
    outbox = OutboxStore(store.db)
    for user in ("U0REP1", "U0REP2", "U0REP3"):
        await home(store, user)
    first, second, third = [row["id"] for row in await outbox.rows()]
    item = await outbox.lease(first, T0, T0 + timedelta(seconds=30))
    assert item is not None
    later = T0 + timedelta(minutes=10)
    await outbox.home_waits(item, T0, T0, "not_enabled", None, later)
    await store.db.run(lambda db: enqueue(db, Kind.MESSAGE, "C0ENT", T0, key="retry"))
    now = T0 + timedelta(minutes=1)
    assert await due_homes(outbox, now) == []
    assert [kind for _, _, kind in await outbox.due(now, limit=1)] == [Kind.MESSAGE]
    assert await due_homes(outbox, later) == ["U0REP1", "U0REP2", "U0REP3"]  # no one asked

    await outbox.probe_home(now)  # the oldest held home asks
    assert await due_homes(outbox, now) == ["U0REP1"]
    await outbox.probe_home(now)
    assert await due_homes(outbox, now) == ["U0REP1"]
    await home(store, "U0REP4", now)  # written meanwhile, then held with the others
    fourth = max(row["id"] for row in await outbox.rows())
    await outbox.hold_homes([fourth], now, "not_enabled", later)
    assert await due_homes(outbox, now) == ["U0REP1"]
    assert await outbox.homes_waiting() == 4

    await outbox.homes_back(now)  # Slack takes them again: every one due, in one statement
    assert await due_homes(outbox, now) == ["U0REP1", "U0REP2", "U0REP3", "U0REP4"]
    assert {second, third} < {row_id for row_id, _, _ in await outbox.due(now)}
