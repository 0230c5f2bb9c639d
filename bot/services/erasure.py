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
    """Erase every lead with this email or external id; Refusal if there is none."""
    query = query.strip()
    if not query:
        raise Refusal("Usage: handoff forget <email or external id>")
    leads = await store.matching(query)
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
        values = erased_values(lead, now)
        messages = await store.erase(lead.id, values, erased_event_data, actor, now, effects)
        erased.append(Erased(lead.id, messages))
    notifier.deliver_soon()
    return erased
