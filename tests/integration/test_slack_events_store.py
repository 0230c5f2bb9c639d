"""Retried Slack events: each event id is taken on once, and old ids are pruned."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from storage.repository import Store
from storage.slack_events import SlackEventStore

NOW = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


async def test_an_event_id_is_taken_once_even_when_delivered_together(store: Store) -> None:
    events = SlackEventStore(store.db)
    taken = await asyncio.gather(*(events.take("Ev1", NOW) for _ in range(5)))
    assert sorted(taken) == [False] * 4 + [True]
    assert await events.take("Ev2", NOW)


async def test_a_released_event_can_be_taken_again(store: Store) -> None:
    events = SlackEventStore(store.db)
    assert await events.take("Ev1", NOW)
    await events.release("Ev1")
    assert await events.take("Ev1", NOW)


async def test_ids_older_than_a_day_are_pruned(store: Store) -> None:
    events = SlackEventStore(store.db)
    assert await events.take("Ev1", NOW)
    assert await events.take("Ev2", NOW + timedelta(hours=23))
    assert await events.take("Ev3", NOW + timedelta(hours=25))  # prunes, once an hour
    assert not await events.taken("Ev1")
    assert await events.taken("Ev2")
