"""Outbox retention (issue 15) on the real store, SQLite and PostgreSQL: delivered rows are
emptied after their age, and a pruned key still refuses a second copy of its effect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.effects import Send
from storage.outbox import OutboxStore, write_effects
from storage.repository import Store

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


async def rows(store: Store) -> list[dict[str, Any]]:
    return await OutboxStore(store.db).rows()


async def write(store: Store, *effects: Send, at: datetime = T0) -> None:
    await store.db.run(lambda db: write_effects(db, effects, at))


async def deliver_all(store: Store, at: datetime) -> None:
    outbox = OutboxStore(store.db)
    for row in await rows(store):
        if row["state"] == "pending":
            item = await outbox.lease(row["id"], at, at + timedelta(minutes=1))
            assert item is not None
            await outbox.delivered(item, at, ts=f"{row['id']}.0001")


async def test_delivered_rows_are_pruned_after_their_age_and_keys_stay_spent(
    store: Store,
) -> None:
    once = Send("C0REVOPS", "the weekly digest", "weekly_digest:2026-W45")
    plain = Send("U0REP1", "a reminder with no key", None)  # type: ignore[arg-type]
    await write(store, once, plain)
    await deliver_all(store, T0)
    await write(store, Send("C0ENT", "still waiting", None), at=T0)  # type: ignore[arg-type]
    outbox = OutboxStore(store.db)

    # Kept a week: pruning runs with `before` = now - 7 days.
    assert await outbox.prune(T0 + WEEK - timedelta(seconds=1) - WEEK) == 0  # not old enough
    assert await outbox.prune(T0 + WEEK + timedelta(seconds=1) - WEEK) == 2
    left = await rows(store)
    by_key = {row["key"]: row for row in left}
    assert set(by_key) == {"weekly_digest:2026-W45", None}
    spent = by_key["weekly_digest:2026-W45"]
    assert spent["state"] == "done" and spent["payload"] == {}  # emptied, not deleted
    assert by_key[None]["state"] == "pending"  # still to deliver: kept whole
    assert await outbox.prune(T0 + 4 * WEEK) == 0  # nothing more to prune

    # The same effect decided again, weeks later (a replayed job, a restored backup): refused.
    await write(store, once, at=T0 + 4 * WEEK)
    again = [row for row in await rows(store) if row["key"] == "weekly_digest:2026-W45"]
    assert [row["id"] for row in again] == [spent["id"]]
    assert await outbox.pending() == 1  # only the row that was already waiting
