"""Time away by hand: `/handoff away [until] [note]` and `/handoff back`, for oneself, or for
a rep by a manager (the access table refuses anyone else before this runs).

A rep a manager sets away or back is told by DM (through the outbox, in the same transaction
as the change). While a rep is away new leads skip them (the rotation at intake) and the sweep
hands their overdue leads to the pool; both read the time-away table, never Slack.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.domain.access import Action, allowed, refusal
from bot.domain.away import MANAGER_USAGE, parse_away, parse_back
from bot.domain.effects import Effect, RefreshHomes, Send
from bot.domain.refusal import Reason, Refusal
from bot.services.policies import PolicyBook
from bot.slack import away_views
from storage.away import AwayStore


class Aways:
    def __init__(
        self, store: AwayStore, policies: PolicyBook, names: Mapping[str, str] | None = None
    ) -> None:
        self.store = store
        self.policies = policies
        self.names = names if names is not None else {}  # members' display names (People)

    async def away(self, actor: str, text: str, now: datetime) -> str:
        """Set the caller (or, for a manager, the rep named first) away; the private answer."""
        policy = self.policies.current
        asked = parse_away(text, now, policy.calendar)
        who = self._whom(asked.who, actor)
        dm = away_views.set_away_dm(actor, asked.until, asked.note, policy.timezone)
        told = self._tell(who, actor, dm, f"away:{who}:set:{now.isoformat()}")
        await self.store.set(who, asked.until, asked.note, actor, now, told)
        return away_views.away_set(who, actor, asked.until, asked.note, policy.timezone)

    async def back(self, actor: str, text: str, now: datetime) -> str:
        """End the caller's (or a rep's) time away now; the private answer."""
        who = self._whom(parse_back(text).who, actor)
        told = self._tell(
            who, actor, away_views.set_back_dm(actor), f"away:{who}:back:{now.isoformat()}"
        )
        was = await self.store.clear(who, now, told)
        status = was.note if was is not None and was.from_status else None
        return away_views.back(who, actor, was is not None, status)

    @staticmethod
    def _tell(who: str, actor: str, text: str, key: str) -> list[Effect]:
        """The DM that tells a rep someone else (a manager) changed their time away (nothing
        when they set it themselves), and their App Home, which says whether they are away.
        Written only if their time away changed (a retry says nothing twice)."""
        home = RefreshHomes(users=(who,))
        return [home] if who == actor else [Send(who, text, key), home]

    def _whom(self, named: str | None, actor: str) -> str:
        """The user id the command is for: the caller, or the member named (`@name` by the
        name Slack shows); Refusal if unknown, not on the SLA, or not the caller's to set."""
        policy = self.policies.current
        who = actor if named is None else self._resolve(named)
        if who != actor and not allowed(Action.AWAY_FOR_OTHERS, actor, policy):
            raise Refusal(refusal(Action.AWAY_FOR_OTHERS, actor, policy), Reason.NOT_ALLOWED)
        if not policy.segments_of(who) and not policy.is_manager(who):
            whom = "You are" if who == actor else f"<@{who}> is"
            raise Refusal(
                f"{whom} not a rep of any segment (nor a manager) in the SLA file, so time away "
                "would change nothing; nothing was changed."
            )
        return who

    def _resolve(self, named: str) -> str:
        if not named.startswith("@"):
            return named  # a user id from an escaped mention
        name = named[1:].lower()
        policy = self.policies.current
        people = {rep for segment in policy.segments for rep in segment.reps}
        people |= set(policy.managers)
        found = {
            user
            for user in people | set(self.names)
            if user.lower() == name or self.names.get(user, "").lower() == name
        }
        if len(found) == 1:
            return found.pop()
        if found:
            raise Refusal(
                f"More than one person is called {named[:80]}: mention them so Slack links the "
                f"name. {MANAGER_USAGE}"
            )
        raise Refusal(
            f"I don't know who {named[:80]} is: mention them so Slack links the name. "
            f"{MANAGER_USAGE}"
        )
