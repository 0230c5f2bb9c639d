"""Members as Slack describes them (`users.info`): the names people know them by, and their
time zones for SLA files with `clock: owner`.

Names are shown where a mention would ping (a shared report, the weekly digest, the Reassign
menu, whose options cannot render a mention). With `clock: owner`, a claimed lead's clocks run
on its owner's working hours in the owner's own zone. Both are read from the database at start
(so a restart needs no Slack call), refreshed from Slack in the background at start and once a
day, and kept in the mappings the use cases and the sweep read. A member Slack cannot describe
keeps the team's clock and is shown by id.

Slack is asked about the people the SLA names and about whoever holds an open lead: a rep moved
off sla.yaml who keeps open leads and then leaves has them handed on like any other. While
Slack refuses the bot token (the delivery worker's state, bot/slack/outbox.py), nobody is read:
a read stops at the first refusal instead of meeting it once per member, and once auth.test
finds the token working again the names and time zones are read again soon (Slack sends an
uninstalled app no `user_change` event: a rep may have changed zone meanwhile). While Slack does
not answer at all (no connection, a timeout, its servers' 5xx), or limits the method's rate
(a 429 after the client's retries: the app's limit, not one member's), a read stops at the first
member too, says in one line what was not read, and is tried again after a bounded backoff (not
before the 429's Retry-After); so is a refresh the database failed. The reads are paced with the
delivery worker's pacer. A `user_change` saved while a refresh reads (minutes for 1,000
members) is newer than the refresh's answers, which are saved as read at its start: it stays.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.crm.emails import retry_after
from bot.domain.away import is_away, status_counts, status_until
from bot.services.policies import PolicyBook
from bot.slack.outbox import BLOCKED, TOKEN_FIX
from bot.slack.pacing import Pacer
from bot.slack.publisher import NoSlackAnswer
from storage.away import AwayStore, StatusAway
from storage.repository import Member, Store

log = logging.getLogger("handoff.people")
# Hands on the open leads of a member who can no longer work them: (user, why, now, news) ->
# how many (`Sweeper.hand_on`; why: `deactivated` or `guest`; news: they just left).
HandOn = Callable[[str, str, datetime, bool], Awaitable[int]]
DAILY = timedelta(days=1)  # how often the names and time zones are read again
# A read Slack did not answer is tried again after RETRY_FIRST, then twice as long each time it
# still does not, up to RETRY_MOST: sooner than the next daily run (or status read).
RETRY_FIRST = timedelta(minutes=1)
RETRY_MOST = timedelta(minutes=15)
# The reads' methods, paced per method for the whole app (Slack's rate limits are the app's):
# `serve` gives People the delivery worker's pacer (HANDOFF_SLACK_CALLS_PER_MINUTE), under
# these methods' Tier 4 (100+ per minute, Slack's method references).
USERS_INFO, PROFILE_GET = "users.info", "users.profile.get"


class SlackToken(Protocol):
    """The delivery worker's word on the bot token (bot/slack/outbox.py `Outbox`): whether
    Slack refuses it now (auth.test tells it when it works again), and the news that it does."""

    token_refused: str | None
    token_restored: int  # how many times auth.test found it working again

    def refuse_token(self, why: str) -> None: ...


class People:
    def __init__(
        self,
        client: AsyncWebClient,
        store: Store,
        policies: PolicyBook,
        zones: dict[str, str],
        names: dict[str, str] | None = None,
        away: AwayStore | None = None,
        barred: set[str] | None = None,
        hand_on: HandOn | None = None,
        token: SlackToken | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.client = client
        self.pacer = pacer  # users.info and users.profile.get within their rate limit
        self.token = token
        self.hand_on = hand_on
        # Guests and deactivated members: no role, whatever the SLA lists (shared, in place).
        self.barred = barred if barred is not None else set()
        self.store = store
        self.away = away
        self.policies = policies
        self.zones = zones  # shared with Services and the Sweeper: updated in place
        self.names = names if names is not None else {}  # shared the same way
        # When each read is next due from Slack: "refresh" daily (None: not yet read), or at
        # its retry; "statuses" only at a retry (the scheduler reads them every few minutes).
        self.next_read: dict[str, datetime | None] = {"refresh": None}
        self._unanswered: dict[str, int] = {}  # reads Slack did not answer in a row
        self._restored = token.token_restored if token is not None else 0
        self._remembered = 0  # how many times Slack's word was remembered here (`_remember`)

    @property
    def wanted(self) -> bool:
        """Whether the members' own clocks are used (`clock: owner`)."""
        return self.policies.current.clock == "owner"

    def members(self) -> list[str]:
        """The people the SLA gives a role: pool reps, managers, reporters and viewers."""
        policy = self.policies.current
        people = [rep for segment in policy.segments for rep in segment.reps]
        people += policy.managers + policy.reporters + policy.viewers
        return list(dict.fromkeys(people))

    async def load(self) -> None:
        self.names.update(await self.store.names())
        self.barred.clear()
        self.barred.update(await self.store.barred())
        if self.wanted:
            self.zones.update(await self.store.zones())

    async def refresh(self, now: datetime) -> dict[str, str]:
        """Ask Slack for each member's name and time zone; remember them (as of `now`), and
        return the time zones it gave. A member Slack deactivated or made a guest has their
        open leads handed on (the `user_change` event may have been missed). The members are
        the SLA's people and whoever holds an open lead (moved off the file, say)."""
        if self._refused("names and time zones"):
            return {}
        self.next_read["refresh"] = now + DAILY
        try:
            return await self._refresh(now)
        except Exception as error:  # the database's: retried as soon as Slack's silence is
            self._retry("refresh", "names and time zones", _said(error), now)
            return {}

    async def _refresh(self, now: datetime) -> dict[str, str]:
        """`refresh`, whose database errors the caller retries. Each answer is saved as read at
        `now` (the read's start), so a `user_change` that lands while the read goes on member
        by member (minutes for 1,000) is newer and stays, here and in the database."""
        people = self.members()
        people += sorted(await self.store.holders() - set(people))
        found: dict[str, Member] = {}
        unread = 0
        for index, user in enumerate(people):
            try:
                if self.pacer is not None:
                    await self.pacer.wait(USERS_INFO, None)
                answer = await self.client.users_info(user=user)
            except Exception as error:
                if _unanswered(error) or _limited(error):  # nobody's would be: stop here
                    unread = len(people) - index  # those read so far are kept
                    what = f"names and time zones of {unread} of {len(people)} members"
                    self._retry("refresh", what, f"users.info: {_said(error)}", now, error)
                    break
                reason = _reason(error)
                if reason in BLOCKED:  # the same answer for every member: stop at the first
                    self._refuse(f"users.info: {reason}", "names and time zones")
                    break
                log.warning("no name or time zone for %s (users.info: %s)", user, reason)
                continue
            member = _member(answer.get("user") or {})
            found[user] = member
        newly = await self.store.save_people(found, now) if found else set()
        if found:  # a newer answer (a `user_change` meanwhile, on any replica) was kept
            for user in await self.store.read_after(found, now):
                del found[user]
        if not unread:
            self._answered("refresh")
        zones = self._remember(found)
        if found:  # what Slack answered: none when it refused or did not answer (logged so)
            log.info("names of %d members and %d time zones from Slack", len(found), len(zones))
        for user, member in found.items():
            try:
                await self._hand_on(user, member, now, user in newly)
            except Exception:  # one member's leads must not hold up the others'
                log.exception("could not hand on the leads of %s; next refresh", user)
        return zones

    async def changed(self, user: dict[str, Any], now: datetime) -> None:
        """A member as Slack's `user_change` event shows them (users.info's user object):
        someone the SLA gives a role, who holds an open lead, or who was known to have left is
        remembered at once, so a rep deactivated or made a guest loses their role and their
        turn in the rotation now, not at the daily refresh, and their open leads are handed on
        now, not when their deadlines pass (also a rep moved off sla.yaml who kept leads)."""
        user_id = str(user.get("id") or "")
        if not user_id:
            return
        known = user_id in self.members() or user_id in self.barred
        if not known and not await self.store.holders(user_id):
            return
        member = _member(user)
        found = {user_id: member}
        newly = await self.store.save_people(found, now)
        self._remember(found)
        await self._hand_on(user_id, member, now, user_id in newly)

    async def disabled(self, user: str, now: datetime) -> None:
        """Slack refused a DM to `user` as disabled (conversations.open `user_disabled`): read
        them now (users.info) and take Slack's answer as a `user_change`, so a rep deactivated
        while the event was missed has their open leads handed on at once, not at the next
        daily refresh. Nothing when Slack refuses the bot token or does not answer."""
        if self._refused(f"the name of {user}"):
            return
        try:
            if self.pacer is not None:
                await self.pacer.wait(USERS_INFO, None)
            answer = await self.client.users_info(user=user)
        except Exception as error:
            log.warning("could not read %s (users.info: %s)", user, _said(error))
            return
        member = answer.get("user")
        if isinstance(member, dict):
            await self.changed(member, now)

    def _refused(self, what: str) -> bool:
        """Whether Slack is known to refuse the bot token now: nothing is read (it would be
        refused once per member), until auth.test accepts it again."""
        why = self.token.token_refused if self.token is not None else None
        if why is not None:
            log.debug("%s not read from Slack: it refuses the bot token (%s)", what, why)
        return why is not None

    def _refuse(self, why: str, what: str) -> None:
        """Slack refused the bot token (`why`): one line saying what to do, the delivery
        worker's (which stops its deliveries and asks auth.test until it works again), or this
        one's without a worker to tell."""
        if self.token is not None:
            self.token.refuse_token(why)
            log.info("%s not read from Slack: it refuses the bot token (%s)", what, why)
            return
        log.warning(
            "Slack refuses Handoff's bot token (%s): %s not read from Slack. To fix: %s.",
            why,
            what,
            TOKEN_FIX,
        )

    def due(self, now: datetime) -> list[str]:
        """The reads to make from Slack at `now` ("refresh", "statuses"): the names and time
        zones at start and daily, a read Slack did not answer at its retry, and the refresh
        once after auth.test finds a refused bot token working again (the app got no
        `user_change` event meanwhile). Nothing while the token is refused."""
        if self.token is not None:
            if self.token.token_refused is not None:
                return []
            if self.token.token_restored != self._restored:  # once for each time it works again
                self._restored = self.token.token_restored
                self.next_read["refresh"] = now
        return [what for what, at in self.next_read.items() if at is None or at <= now]

    def _retry(
        self, read: str, what: str, why: str, now: datetime, error: Exception | None = None
    ) -> None:
        """Slack did not answer (`why`), or limits the method's rate for the whole app (a 429
        left after the client's retries: Slack's rate-limit docs), or the database failed: it
        is so for everyone, so `read` stopped at the first member. One line says what was not
        read and when it is tried again: after RETRY_FIRST, twice as long each time in a row,
        up to RETRY_MOST, and not before a 429's Retry-After. `error`: Slack's (None: the
        database's)."""
        missed = self._unanswered[read] = self._unanswered.get(read, 0) + 1
        wait = min(RETRY_MOST, RETRY_FIRST * 2 ** (missed - 1))
        said = "not read from Slack: it did not answer"
        if error is not None and _limited(error):
            after = retry_after(error)
            said = "not read from Slack: it limits the rate"
            said += f" (Retry-After {after:g} s)" if after else ""
            wait = max(wait, timedelta(seconds=after))
            if self.pacer is not None:  # nothing more to the method until then
                self.pacer.pause(USERS_INFO if read == "refresh" else PROFILE_GET, None, after)
        elif error is None:
            said = "not refreshed: the database failed"
        at = self.next_read[read] = now + wait
        log.warning(
            "%s %s (%s); trying again in %d min (%s)",
            what,
            said,
            why,
            -(-wait.total_seconds() // 60),
            f"{at:%H:%M %Z}",
        )

    def _answered(self, read: str) -> None:
        """Slack answered for everyone: the backoff of `read` starts again from RETRY_FIRST."""
        self._unanswered.pop(read, None)

    async def _hand_on(self, user: str, member: Member, now: datetime, news: bool) -> None:
        """A member who can no longer work leads (deactivated, or a guest) has theirs handed
        on; again later finds none (one reactivated gets none back). `news`: they were not
        known to have left (the managers then hear of leads left with them, once)."""
        if self.hand_on is None or not (member.deactivated or member.guest):
            return
        why = "deactivated" if member.deactivated else "guest"
        handed = await self.hand_on(user, why, now, news)
        if handed:
            log.info("%d open leads of %s (%s) handed on", handed, user, why)

    async def reload_barred(self) -> None:
        """Who is a guest or deactivated as the database has it: Slack sends `user_change` to
        one replica only (SPEC: N `handoff serve` on one database), and the others kept that
        member's roles and turn in the rotation until their own daily refresh. Not applied if
        this replica remembered Slack's word while the database was read (that is newer)."""
        before = self._remembered
        fresh = await self.store.barred()
        if self._remembered != before:
            return
        self.barred.intersection_update(fresh)  # in place: Services and the Sweeper share it
        self.barred.update(fresh)

    def _remember(self, found: dict[str, Member]) -> dict[str, str]:
        self._remembered += 1
        for user, member in found.items():
            if member.guest or member.deactivated:
                self.barred.add(user)
            else:
                self.barred.discard(user)
        self.names.update({u: m.display_name for u, m in found.items() if m.display_name})
        zones = {user: m.time_zone for user, m in found.items() if m.time_zone}
        if self.wanted:
            self.zones.update(zones)
        return zones

    @property
    def reads_statuses(self) -> bool:
        """Whether the SLA lists Slack statuses that mean away (`away_statuses`)."""
        return bool(self.policies.current.away_statuses) and self.away is not None

    def reps(self) -> list[str]:
        """The reps of every segment's pool (whose time away routing and escalation read)."""
        policy = self.policies.current
        return list(dict.fromkeys(rep for segment in policy.segments for rep in segment.reps))

    async def statuses(self, now: datetime) -> int:
        """Read each rep's Slack status (`users.profile.get`) and keep, in the time-away table,
        those the SLA's `away_statuses` call away, until the status expires: routing and the
        sweep then read the table, never Slack. A rep Slack cannot describe keeps what was
        known; with no `away_statuses` (taken out of the file), no status counts any more.
        Returns how many reps are away by their status."""
        self.next_read.pop("statuses", None)  # this is the retry, if one was due
        if self.away is None:
            return 0
        if not self.reads_statuses:  # none listed (any more): no status counts as away
            await self.away.sync_statuses(self.reps(), {}, now)
            return 0
        if self._refused("Slack statuses"):  # what was known stays
            return 0
        wanted = self.policies.current.away_statuses
        checked: list[str] = []
        found: dict[str, StatusAway] = {}
        reps = self.reps()
        unread = 0
        for index, user in enumerate(reps):
            try:
                if self.pacer is not None:
                    await self.pacer.wait(PROFILE_GET, None)
                answer = await self.client.users_profile_get(user=user)
            except Exception as error:
                if _unanswered(error) or _limited(error):  # stop; what was known stays
                    unread = len(reps) - index
                    what = f"Slack statuses of {unread} of {len(reps)} reps"
                    self._retry("statuses", what, f"users.profile.get: {_said(error)}", now, error)
                    break
                reason = _reason(error)
                if reason == "missing_scope":  # the app was not reinstalled with the scope
                    log.warning(
                        "cannot read Slack statuses: the token lacks users.profile:read "
                        "(reinstall the app from manifest.yaml); time away set by hand still works"
                    )
                    return 0
                if reason in BLOCKED:  # the same answer for every rep: stop at the first
                    self._refuse(f"users.profile.get: {reason}", "Slack statuses")
                    break
                log.warning("no Slack status for %s (users.profile.get: %s)", user, reason)
                continue
            checked.append(user)
            profile = answer.get("profile") or {}
            emoji, text = profile.get("status_emoji"), profile.get("status_text")
            until = status_until(profile.get("status_expiration"), now)
            if status_counts(emoji, text, wanted) and is_away(until, now):
                note = " ".join(str(part) for part in (emoji, text) if part) or "Slack status"
                found[user] = StatusAway(until, note)
        if not unread:
            self._answered("statuses")
        await self.away.sync_statuses(checked, found, now)
        return len(found)


def _unanswered(error: Exception) -> bool:
    """Whether Slack gave no answer about the member: no connection, a timeout, or an HTTP 5xx
    (after the client's own retries), rather than an API error about them (`user_not_found`,
    the methods' references), or an answer that is not Slack's (a proxy's page, whatever its
    status). Slack is then down for everyone."""
    if not isinstance(error, SlackApiError) or isinstance(error, NoSlackAnswer):
        return True
    return error.response is not None and error.response.status_code >= 500


def _limited(error: Exception) -> bool:
    """Whether Slack answered HTTP 429 (after the client's own retries): a method's rate limit
    is the app's in the workspace, not one member's (Slack's rate-limit docs), so the next
    member would be limited too."""
    return (
        isinstance(error, SlackApiError)
        and error.response is not None
        and error.response.status_code == 429
    )


def _reason(error: Exception) -> Any:
    """Slack's error code in an API answer (`ok: false`)."""
    if isinstance(error, SlackApiError) and error.response is not None:
        return error.response.get("error")
    return error


def _said(error: Exception) -> str:
    """An unanswered call's failure (or the database's), in a few words: one line."""
    if isinstance(error, NoSlackAnswer):  # its status and what answered instead of Slack
        return str(error)
    if isinstance(error, SlackApiError) and error.response is not None:
        return f"HTTP {error.response.status_code}"
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _member(user: dict[str, Any]) -> Member:
    """A member's zone (if this machine knows it) and the name Slack shows for them."""
    profile = user.get("profile") or {}
    name = profile.get("display_name") or profile.get("real_name") or user.get("real_name")
    name = name or user.get("name")
    zone = str(user.get("tz") or "")
    guest = bool(user.get("is_restricted") or user.get("is_ultra_restricted"))
    return Member(
        zone if _known(zone) else None,
        str(name)[:200] if name else None,
        guest=guest,
        deactivated=bool(user.get("deleted")),
    )


def _known(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return bool(zone)
