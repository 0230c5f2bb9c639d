"""`handoff forget <email or external id>`: erase a person's data (the right to be forgotten).

Each lead of the person keeps only anonymous facts (bot/domain/erasure.py), so the reports do
not change; its events lose their personal data; every Slack message Handoff sent about it is
emptied in place through the outbox (chat.update), and its post shows the erased lead; every
App Home is published again without it; and an `erased` event records that it happened, with
no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.effects import Effect, Refresh, RefreshHomes
from bot.domain.erasure import erased_event_data, erased_values
from bot.domain.lead import LeadView
from bot.domain.refusal import Reason, Refusal
from bot.services.leads import Notifier
from storage.home import HomeStore
from storage.repository import Store


@dataclass(frozen=True)
class Erased:
    lead_id: int
    messages: int  # Slack messages about it that will be emptied


async def forget(
    store: Store, notifier: Notifier, query: str, actor: str, now: datetime
) -> list[Erased]:
    """Erase every lead of the person this email or external id names (an external id names
    its lead's person: their other leads, by that email, go too); Refusal if there is none.
    A lead another caller erased meanwhile (a CRM deletion beside `handoff forget`, or another
    replica) is erased once, by whichever wrote first: it is not among those returned."""
    query = query.strip()
    if not query:
        raise Refusal("Usage: handoff forget <email or external id>")
    leads = await _of_the_person(store, query)
    if not leads and await store.by_erased_id(external_id=query) is not None:
        raise Refusal(
            f"The lead with external id {query!r} was erased already: nothing was changed.",
            Reason.NOT_FOUND,
        )
    if not leads:
        raise Refusal(
            f"No lead has the email or external id {query!r}: nothing was erased "
            "(an erased lead answers to neither any more).",
            Reason.NOT_FOUND,
        )
    # Every App Home published since may list the lead (a rep's queue, a manager's overdue
    # list, under this SLA or an older one): each is published again without it.
    homes = tuple(await HomeStore(store.db).openers())
    erased = []
    for lead in leads:
        effects: list[Effect] = [RefreshHomes(users=homes)]
        if lead.message_ts:
            effects.append(Refresh(lead.id))  # its post, rendered as the erased lead
        values = erased_values(lead, now, store.erasure_key)
        messages = await store.erase(lead.id, values, erased_event_data, actor, now, effects)
        if messages is not None:  # None: erased meanwhile by another caller, who told it
            erased.append(Erased(lead.id, messages))
    notifier.deliver_soon()
    return erased


async def _of_the_person(store: Store, query: str) -> list[LeadView]:
    """The leads not yet erased with this email or external id, and every other lead with the
    email of one of them, in id order."""
    found = {lead.id: lead for lead in await store.matching(query) if lead.erased_at is None}
    for email in {lead.email for lead in found.values()} - {query.lower()}:
        for lead in await store.matching(email):
            if lead.erased_at is None:
                found.setdefault(lead.id, lead)
    return [found[lead_id] for lead_id in sorted(found)]
