"""A CRM that refuses Handoff's writes is told to the escalations channel once, however many
replicas meet the refusal, on whichever rows, and after a restart (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import count
from types import SimpleNamespace

from bot.crm.port import CrmDailyLimit, CrmRefused
from bot.crm.worker import CrmWorker
from bot.domain.effects import Send
from bot.domain.policy import Crm
from bot.metrics import Metrics
from bot.services.leads import Services
from storage.crm import CrmOutboxStore
from storage.outbox import OutboxStore
from tests.integration.test_crm_store import claimed

WALL = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


class HubSpotSays:
    """A CRM adapter whose every write gets `status`; each refusal names its own request, as
    HubSpot's answers do (a correlation id)."""

    name = "hubspot"
    request_deadline = 30.0

    def __init__(self) -> None:
        self.status = 401
        self.requests = count(1)

    async def _answer(self) -> None:
        request = next(self.requests)
        if self.status == 401:
            raise CrmRefused(f"HubSpot refuses the access token (401): request {request}")
        if self.status == 429:
            raise CrmDailyLimit(f"HubSpot's daily limit of API requests is used up: {request}")

    async def sync(self, _record: object) -> str | None:
        await self._answer()
        return None

    async def note(self, _note: object) -> None:
        await self._answer()

    async def event(self, _event: object) -> None:
        await self._answer()

    async def aclose(self) -> None:
        pass


def replica(services: Services, crm: HubSpotSays, clock: list[datetime]) -> CrmWorker:
    """One replica's CRM worker on the shared database, its alerts through the Slack outbox."""
    outbox = OutboxStore(services.store.db)

    async def alert(send: Send) -> None:
        await outbox.send([send], clock[0])

    return CrmWorker(
        crm,  # type: ignore[arg-type]
        CrmOutboxStore(services.store.db),
        SimpleNamespace(current=services.policy.model_copy(update={"crm": Crm(kind="hubspot")})),
        Metrics(),
        lambda: clock[0],
        alert,
        refused_retry_seconds=300,
    )


async def alerts(services: Services) -> list[str]:
    rows = await OutboxStore(services.store.db).rows()
    return [str(row["key"]) for row in rows if str(row["key"]).startswith("crm-refused:")]


async def test_replicas_meeting_a_refusal_on_other_rows_raise_one_alert(
    services: Services,
) -> None:
    services.store.db.crm = Crm(kind="hubspot")
    first, second = await claimed(services, "hs-1"), await claimed(services, "hs-2")
    rows: dict[int, int] = {}  # each lead's first write
    for row in await CrmOutboxStore(services.store.db).rows():
        rows.setdefault(int(row["lead_id"]), int(row["id"]))
    crm, clock = HubSpotSays(), [WALL]
    one, two = replica(services, crm, clock), replica(services, crm, clock)
    # At the same moment, each replica takes the first write of another lead: both refused.
    assert not await one._deliver(rows[first])
    assert not await two._deliver(rows[second])
    assert one.degraded and two.degraded
    assert len(await alerts(services)) == 1
    # A replica restarted later meets the refusal again, on the other row: still one alert.
    clock[0] += timedelta(minutes=6)
    assert not await replica(services, crm, clock)._deliver(rows[second])
    assert len(await alerts(services)) == 1

    # Fixed, the writes go out; refused again later, it is a new refusal, told again.
    crm.status = 200
    clock[0] += timedelta(minutes=6)
    assert await one._deliver(rows[first]) and await one._deliver(rows[second])
    assert not one.degraded
    await services.log_attempt(first, "U0REP1", "call", clock[0])
    crm.status = 401
    waiting = [int(row["id"]) for row in await CrmOutboxStore(services.store.db).rows()]
    assert not await one._deliver(max(waiting))
    assert len(await alerts(services)) == 2


async def test_a_daily_limit_pauses_every_replica_until_the_teams_midnight_told_once(
    services: Services,
) -> None:
    """HubSpot's daily limit used up: each replica meets it once, one alert says when the
    writes go out again (midnight in the SLA's zone, Sydney's), and nothing is tried before."""
    services.store.db.crm = Crm(kind="hubspot")
    first, second = await claimed(services, "hs-1"), await claimed(services, "hs-2")
    rows: dict[int, int] = {}
    for row in await CrmOutboxStore(services.store.db).rows():
        rows.setdefault(int(row["lead_id"]), int(row["id"]))
    crm, clock = HubSpotSays(), [WALL]  # Monday 11:00 in Sydney
    crm.status = 429
    one, two = replica(services, crm, clock), replica(services, crm, clock)
    assert not await one._deliver(rows[first])
    assert not await two._deliver(rows[second])
    midnight = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # Tuesday 00:00 in Sydney
    assert one._paused_until == two._paused_until == midnight
    store = CrmOutboxStore(services.store.db)
    assert await store.due(midnight - timedelta(minutes=1)) == []
    assert len(await alerts(services)) == 1
    (text,) = [
        json.dumps(row["payload"])
        for row in await OutboxStore(services.store.db).rows()
        if str(row["key"]).startswith("crm-refused:")
    ]
    assert "daily limit" in text and f"<!date^{int(midnight.timestamp())}^" in text

    crm.status = 200
    clock[0] = midnight
    assert {lead for _, lead in await store.due(midnight)} == {first, second}
    assert await one._deliver(rows[first]) and await one._deliver(rows[second])
    assert not one.degraded
    assert len(await alerts(services)) == 1


async def test_a_token_refused_after_the_daily_limit_is_told_apart(services: Services) -> None:
    """The daily limit's alert says the writes go out by themselves after midnight. If the
    first write then is refused for another cause (the token, 401), that needs someone: it is
    told (once, however many replicas), and /healthz says what is refused now, not the limit."""
    services.store.db.crm = Crm(kind="hubspot")
    await claimed(services, "hs-1")
    crm, clock = HubSpotSays(), [WALL]
    crm.status = 429
    one, two = replica(services, crm, clock), replica(services, crm, clock)
    row = min(int(r["id"]) for r in await CrmOutboxStore(services.store.db).rows())
    assert not await one._deliver(row)
    assert len(await alerts(services)) == 1

    crm.status = 401  # the token was revoked during the day
    clock[0] = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # Tuesday 00:00 in Sydney
    assert not await one._deliver(row)
    assert one.degraded is not None and "(401)" in one.degraded
    assert len(await alerts(services)) == 2
    clock[0] += timedelta(minutes=6)
    assert not await two._deliver(row)  # another replica meets it too: no third alert
    assert len(await alerts(services)) == 2
