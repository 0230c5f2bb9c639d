"""A Salesforce Task's date (`ActivityDate`, a calendar date Salesforce shows as written) is the
day the rep worked the lead on the lead's clock then, however late the CRM gets the write
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

from bot.crm.worker import CrmWorker
from bot.domain.crm import CrmNote
from bot.domain.effects import Send
from bot.domain.policy import Crm
from bot.metrics import Metrics
from bot.services.leads import Services
from storage.crm import CrmOutboxStore
from tests.integration.conftest import MONDAY
from tests.integration.test_crm_store import claimed


class SalesforceNotes:
    """A Salesforce adapter that takes every write and keeps the notes it is given."""

    name = "salesforce"
    request_deadline = 30.0

    def __init__(self) -> None:
        self.notes: list[CrmNote] = []

    async def sync(self, _record: object) -> str | None:
        return None

    async def note(self, note: CrmNote) -> str | None:
        self.notes.append(note)
        return None

    async def event(self, _event: object) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def test_an_attempt_is_dated_on_the_day_its_owner_worked_it_though_reassigned_since(
    services: Services,
) -> None:
    """With `clock: owner`, Maya in Los Angeles logs a call on her Sunday afternoon (Monday
    morning in Sydney). Salesforce refuses Handoff for a while, and before the write goes out a
    manager hands the lead to a rep in Sydney. Maya's Task is still Sunday's, the day she
    worked it, not the Monday of the lead's owner when the CRM took the write."""
    crm = Crm(kind="salesforce", attempt_notes=True)
    services.store.db.crm = crm
    services.zones = {"U0REP1": "America/Los_Angeles", "U0REP2": "Australia/Sydney"}
    lead_id = await claimed(services, "sf-1")  # Monday 00:04 UTC: Sunday 16:04 in LA
    await services.log_attempt(lead_id, "U0REP1", "call", MONDAY + timedelta(minutes=9))
    await services.reassign(lead_id, "U0MGR1", "U0REP2", MONDAY + timedelta(hours=1))
    assert (await services.lead(lead_id)).owner_zone == "Australia/Sydney"

    adapter = SalesforceNotes()

    async def alert(_send: Send) -> None:
        raise AssertionError("no alert expected")

    policy = services.policy.model_copy(update={"crm": crm, "clock": "owner"})
    worker = CrmWorker(
        adapter,  # type: ignore[arg-type]
        CrmOutboxStore(services.store.db),
        SimpleNamespace(current=policy),
        Metrics(),
        lambda: MONDAY + timedelta(hours=2),
        alert,
    )
    for row in await CrmOutboxStore(services.store.db).rows():
        assert await worker._deliver(int(row["id"]))
    (attempt,) = [note for note in adapter.notes if note.kind == "attempt"]
    assert attempt.day == date(2026, 11, 22)  # Sunday in Los Angeles
