"""Changes made in the CRM reach Slack (`POST /crm/hubspot`, `POST /crm/salesforce`).

The adapter (bot/crm/hubspot_in.py, bot/crm/salesforce_in.py) verifies and parses a webhook;
this use case applies each change it reports, once per (CRM, event id), through the same use
cases a person's action goes through:

- CREATED: the lead taken in like `POST /leads` (idempotent on `hubspot:<id>` /
  `salesforce:<Id>`), tied to its CRM record;
- OWNER: the lead handed to the Slack member behind the new CRM owner (the SLA file's
  `crm.owners` map, else the owner's email looked up in Slack), as a manager's reassignment
  would, with actor `crm`; the owner it has already (the echo of our own write) changes nothing;
- STATUS: a `crm_status` event dated when the CRM made the change, nothing more;
- STAGE: the deal's stage, as `POST /leads/{id}/activity` records it;
- DELETED: the person's data erased, as `handoff forget` does;
- MERGED: the leads of the records merged away tied to the record that remains, whose changes
  come under its id from then on.

A notification is taken in the CRM inbox before it is applied and released if applying it
fails or its lead is not known yet, so the CRM's retry of it runs again (as old as its first
arrival); a repeat of one applied changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar, cast

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.crm.port import BadPayload, CrmDailyLimit, CrmInbound, CrmRefused, CrmRetry
from bot.domain.crm import Change, CrmChange, late_owner_change, next_midnight
from bot.domain.erasure import erased_email
from bot.domain.lead import LeadView
from bot.domain.refusal import Reason, Refusal
from bot.domain.retry_after import HUBSPOT_MOST, SLACK_MOST, header_seconds
from bot.services.erasure import forget
from bot.services.leads import AlreadyRecorded, Invalid, Services
from bot.services.people import SlackToken
from bot.slack.outbox import TOKEN_FIX
from storage.crm_inbox import LEASE, CrmInboxStore, Notification, NotOurs

log = logging.getLogger("handoff.crm")

T = TypeVar("T")

# The Retry-After (seconds) of a notification whose CRM read failed (a 5xx, a dropped answer)
# or was refused (a set-up to fix, which the worker tells the managers about), or whose owner
# lookup met Slack refusing the bot token; the CRM's own wait when it gave one (a 429's).
FAILED_READ_WAIT = 60
REFUSED_READ_WAIT = 300
# The longest, in seconds, that one webhook request waits for its outside calls all told (the
# CRM's reads through its adapter, whose own wait is 30 s, and Slack's users.lookupByEmail,
# 10 s): HubSpot counts a delivery failed when it is not answered within seconds and sends it
# again (its Webhooks API guide, "Retries"); a Salesforce callout waits 10 s by default (Apex
# "Callout Limits and Limitations"). A read not answered by then is answered 503, as one that
# failed, with the room left for the database work and the answer.
READS_BOUND = 3.0
# How far ahead of our clock a CRM's time of an owner change is kept as it is: HubSpot's requests
# are taken only within 5 minutes of our clock (its v3 signature's timestamp: `MAX_AGE`,
# bot/crm/hubspot_in.py), so its clock is no further ahead than that.
AHEAD_MOST = timedelta(minutes=5)

# "erased": about a person Handoff erased; ignored, and not kept in the inbox either (its key
# names their record, and a retry of it is ignored again all the same). "finished": handled,
# and its notification marked done in the transaction of its write (`finish`): a status, an
# owner change that changed the owner.
Outcome = Literal["handled", "finished", "ignored", "unknown", "erased"]
# Slack's answers that mean the set-up is wrong, not that the moment was: no retry mends them
# (the lead keeps its owner, logged once). `enterprise_is_restricted`: users.lookupByEmail's
# own, "called with an inappropriate enterprise-level token"; the rest are Slack's common
# errors (its Web API reference): a token of the wrong kind (`not_allowed_token_type`), a scope
# or access the app lacks (`missing_scope`, `no_permission`, `team_access_not_granted`,
# `access_denied`, `org_login_required`, `two_factor_setup_required`), an admin's setting
# (`ekm_access_denied`: "Administrators have suspended the ability…"), or a call Slack will
# not take as it is (`invalid_arguments`).
_SET_UP_ERRORS = frozenset(
    {
        "missing_scope",
        "no_permission",
        "enterprise_is_restricted",
        "team_access_not_granted",
        "org_login_required",
        "ekm_access_denied",
        "invalid_arguments",
        "not_allowed_token_type",
        "two_factor_setup_required",
        "access_denied",
    }
)
# Slack refuses the bot token (its common errors: "Some aspect of authentication cannot be
# validated", "No authentication token provided", "…for a deleted user or workspace…", "…the
# app has been removed…", "Authentication token has expired"): the delivery worker's BLOCKED.
# Not for good: the app is reinstalled, or a new SLACK_BOT_TOKEN set, and the lookup then
# answers. So the notification is answered 503 and released, for the CRM's retry to apply it
# then (HubSpot retries "any HTTP status code (4xx or 5xx)" for 24 hours: its Webhooks API
# guide, "Retries"), not taken with the lead keeping its owner: that loses the change for good.
_TOKEN_ERRORS = frozenset(
    {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired"}
)
# What to do about each set-up error, where it is not the scope (users:read.email,
# docs/crm-inbound.md).
_SET_UP_FIX = {
    "not_allowed_token_type": "SLACK_BOT_TOKEN must be the app's Bot User OAuth Token (xoxb-…)",
    "org_login_required": "the workspace is migrating to an Enterprise Grid org: wait for it "
    "to finish, then reinstall the app",
    "two_factor_setup_required": "the workspace requires two-factor authentication of the "
    "app's installer: set it up, then reinstall the app",
    "ekm_access_denied": "Slack admins have suspended the app's access (Enterprise Key "
    "Management): ask them to restore it",
    "invalid_arguments": "Slack refused the lookup's arguments: please report it",
    "team_access_not_granted": "the token is not granted this workspace: install the app to "
    "the workspace itself (manifest.yaml)",
    "enterprise_is_restricted": "the token is the Enterprise Grid org's: install the app to "
    "the workspace itself (manifest.yaml)",
    "access_denied": "Slack denies the app the workspace's members: ask a Slack admin",
}


class SlackUnanswered(Exception):
    """Slack did not answer a lookup for the moment (its 429, a 5xx, `fatal_error`,
    `internal_error`, `request_timeout`, no connection, an answer that is no Slack JSON): a
    retry may. `after`: Slack's `Retry-After`, in seconds, where it gave one."""

    def __init__(self, message: str, *, after: float | None = None) -> None:
        super().__init__(message)
        self.after = after


class SlackTokenRefused(SlackUnanswered):
    """Slack refuses Handoff's bot token (`code`: one of _TOKEN_ERRORS, or why the delivery
    worker knows it already): the lookup waits for the token to be fixed, and the notification
    for the CRM's retry after REFUSED_READ_WAIT."""

    def __init__(self, code: str) -> None:
        super().__init__(f"Slack refuses Handoff's bot token ({code})", after=REFUSED_READ_WAIT)
        self.code = code


class Directory(Protocol):
    """Slack's members by email (`users.lookupByEmail`, scope `users:read.email`)."""

    async def member_by_email(self, email: str) -> str | None:
        """The member with this email, or None; SlackUnanswered when Slack does not say now."""
        ...


class SlackDirectory:
    """The workspace's members by email, asked of Slack. After Slack's 429 nothing is asked of
    it until its `Retry-After` has passed (Slack's rate-limit docs: the limit is the app's, per
    method; the header is the seconds "until you can retry"); `clock`: the injected one.
    `token`: the delivery worker's word on the bot token (bot/slack/outbox.py): told when
    Slack refuses it here, and while it is refused no lookup is sent (its auth.test probe says
    when Slack accepts it again)."""

    def __init__(
        self,
        client: AsyncWebClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        token: SlackToken | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.token = token
        self._resumes: datetime | None = None  # no lookup is sent before (Slack's 429)
        self._told: set[str] = set()  # the set-up and token errors logged (once each)

    async def member_by_email(self, email: str) -> str | None:
        """The member with this email; None when there is none, or when Slack will not say
        (the app lacks `users:read.email`: logged, as a retry would not mend it).
        SlackTokenRefused while Slack refuses the bot token (asked of Slack only while the
        delivery worker does not know it refused). SlackUnanswered when Slack does not answer
        now: any other error (its method page,
        users.lookupByEmail, names `users_not_found` and `enterprise_is_restricted`; the rest
        are Slack's common errors, a 429 `ratelimited` with `Retry-After`, `fatal_error`,
        `internal_error`, `request_timeout`), or no answer at all."""
        refused = self.token.token_refused if self.token is not None else None
        if refused is not None:
            raise SlackTokenRefused(refused)
        now = self.clock()
        if self._resumes is not None and now < self._resumes:
            left = (self._resumes - now).total_seconds()
            raise SlackUnanswered(f"ratelimited, {left:.0f}s more (Retry-After)", after=left)
        try:
            answer = await self.client.users_lookupByEmail(email=email)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise SlackUnanswered(f"no answer: {type(error).__name__}") from error
        except (AttributeError, TypeError, ValueError) as error:
            # slack_sdk's own check of a 200 whose body is no JSON object (a proxy's page): no
            # answer from Slack, not a 500 for the CRM waiting.
            raise SlackUnanswered(f"no Slack answer ({type(error).__name__})") from error
        except SlackApiError as error:
            response = error.response
            # A body that is no JSON object (a load balancer's plain-text 503) is kept as its
            # text, or the raw aiohttp answer is given: no error is named then.
            data = getattr(response, "data", None)
            code = data.get("error") if isinstance(data, dict) else None
            if code == "users_not_found":
                return None
            if code in _TOKEN_ERRORS:
                self._token_refused(str(code))
                raise SlackTokenRefused(str(code)) from error
            if code in _SET_UP_ERRORS:
                self._set_up_wrong(str(code))
                return None
            status = getattr(response, "status_code", None) or getattr(response, "status", 0)
            after = None
            if status == 429:
                headers = getattr(response, "headers", None)
                after = header_seconds(headers, now.timestamp(), default=None, most=SLACK_MOST)
                if after:
                    self._resumes = self.clock() + timedelta(seconds=after)
            raise SlackUnanswered(
                f"{code or 'no error named'} (HTTP {status})", after=after
            ) from error
        user = answer.get("user")
        member = user.get("id") if isinstance(user, dict) else None
        return str(member) if member else None

    def _token_refused(self, code: str) -> None:
        """Slack refused the bot token (`code`): the delivery worker is told, which logs once
        what to fix, fails /readyz's `slack_token` and asks auth.test until Slack accepts it;
        without one, the fix is logged here, once per code."""
        if self.token is not None:
            self.token.refuse_token(code)
            return
        if code in self._told:
            return
        self._told.add(code)
        log.warning(
            "users.lookupByEmail refused (%s): Slack refuses Handoff's bot token, so CRM owner "
            "changes wait for the CRM's retries. To fix: %s (docs/crm-inbound.md)",
            code,
            TOKEN_FIX,
        )

    def _set_up_wrong(self, code: str) -> None:
        """Slack refused the lookup for good (`code`, one of _SET_UP_ERRORS): say what to do,
        once per code (each CRM owner change meets it again until it is fixed)."""
        if code in self._told:
            log.info("users.lookupByEmail refused (%s): the lead keeps its owner", code)
            return
        self._told.add(code)
        fix = _SET_UP_FIX.get(
            code, "grant the Slack app users:read.email (reinstall it from manifest.yaml)"
        )
        log.warning(
            "users.lookupByEmail refused (%s): CRM owners cannot be found in Slack by email, "
            "and their leads keep their owners until it is fixed. To fix: %s "
            "(docs/crm-inbound.md)",
            code,
            fix,
        )


@dataclass
class Applied:
    """What a webhook's changes did: applied, ignored (a repeat, an echo, a property we do not
    follow), the CRM ids of records Handoff has no lead for, and what is wrong with the records
    that make no lead (`invalid`, by field)."""

    handled: int = 0
    ignored: int = 0
    unknown: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)


class CrmInboundService:
    """Apply the changes a CRM reports, each once."""

    def __init__(
        self,
        services: Services,
        inbox: CrmInboxStore,
        adapters: dict[str, CrmInbound],
        directory: Directory | None = None,
    ) -> None:
        self.services = services
        self.inbox = inbox
        self.adapters = adapters  # by source: hubspot, salesforce (only those configured)
        self.directory = directory

    def adapter(self, source: str) -> CrmInbound | None:
        """The configured adapter for `source`, or None (answer 404: no CRM configured)."""
        return self.adapters.get(source)

    async def apply(self, source: str, changes: list[CrmChange], now: datetime) -> Applied:
        """Apply each change once. A CRM record that makes no lead is listed in `invalid` and
        the rest still apply: one batch holds many changes, and one bad record must not lose
        the others. So with an owner change met by a refused bot token (SlackTokenRefused): it
        and the later changes about its record wait (released, not taken, in their order), the
        others apply, and the answer is its 503 (`_not_looked_up`), for the CRM's retry to
        bring the ones that waited. A token stays refused until someone fixes it, maybe longer
        than HubSpot retries (24 hours: its Webhooks API guide, "Retries"), and a new contact
        held behind it would then be lost with it; a retry's applied changes are ignored. So
        with a change another request is applying (`_applying`). A change is done in the inbox
        only once applied: a process killed before leaves it for the CRM's retry to apply."""
        inbound = self.adapters[source]
        applied = Applied()
        # One bound for the whole request's outside calls, not one per call: a batch of reads
        # each just under it would still keep the CRM waiting past its timeout.
        deadline = asyncio.get_running_loop().time() + READS_BOUND
        waiting: Refusal | None = None  # the answer, once a change waits (the bot token, …)
        held: set[str] = set()  # the records whose changes wait for it
        for change in changes:
            if held & _records(change):
                continue  # after its record's change that waits: it waits too, in order
            mine = await self.inbox.take(source, change.event_id, now, change.crm_id)
            if mine == "done":
                applied.ignored += 1  # the CRM's retry of a notification applied already
                continue
            if mine == "applying":  # not applied twice, and not acknowledged either
                waiting = waiting or self._applying(source, change.event_id)
                held |= _records(change)
                continue
            try:
                outcome = await self._one(inbound, change, mine, deadline)
            except NotOurs:
                # Its write found the notification taken again by another replica (this one
                # was slower than `LEASE`) or done: rolled back, neither released nor marked
                # done here, and answered as one being applied (its retry finds it done, or
                # applies it should the one that took it over fail or die).
                waiting = waiting or self._applying(source, change.event_id)
                held |= _records(change)
                continue
            except BadPayload as bad:  # released: the record may be mended before a retry
                await self.inbox.release(mine)
                applied.invalid += bad.fields
                continue
            except BaseException as error:
                await self.inbox.release(mine)
                if isinstance(error, SlackTokenRefused):
                    refusal = self._not_looked_up(source, change.event_id, error)
                    waiting = waiting or refusal
                    held |= _records(change)
                    continue
                if isinstance(error, CrmRetry | CrmRefused):
                    raise self._not_read(source, change.event_id, error, now) from error
                if isinstance(error, SlackUnanswered):
                    raise self._not_looked_up(source, change.event_id, error) from error
                raise
            if outcome == "unknown":  # released: its creation may be on its way
                await self.inbox.release(mine)
                applied.unknown.append(change.crm_id or change.external_id or change.event_id)
            elif outcome == "erased":
                await self.inbox.drop(mine)
                applied.ignored += 1
            elif outcome == "finished":  # marked done with its write already
                applied.handled += 1
            else:
                # Done now that its change is applied (its write did not do it: "finished"
                # did, in the same transaction). Killed before this, the row
                # stays taken and not done, and the CRM's retry after `LEASE` applies it again,
                # which changes nothing a second time (docs/crm-inbound.md, "Once"; the
                # tests in tests/integration/test_crm_inbound_twice.py, one per kind).
                await self.inbox.done(mine, now)
                if outcome == "handled":
                    applied.handled += 1
                else:
                    applied.ignored += 1
        if waiting is not None:
            raise waiting
        return applied

    def _applying(self, source: str, event_id: str) -> Refusal:
        """The answer to a notification another replica (or request) took less than `LEASE`
        ago and is applying: 503 with `Retry-After` `LEASE`, not a 2xx. The CRM sends a
        delivery again when the first one is slow to answer (HubSpot: its Webhooks API guide,
        "Retries"), and stops at the first 2xx: acknowledging this one would lose the change
        should the first one then fail (it is released) or its process die. By the retry, it
        is done (ignored), released or abandoned (applied then). The changes before it in the
        batch stand; those after it about its record wait with it."""
        log.info(
            "%s notification %s is being applied by another request: answered 503, its retry "
            "finds it done, or applies it",
            source,
            event_id,
        )
        return Refusal(
            f"this {source} notification is being applied by another request; send it again later",
            Reason.BUSY,
            retry_after=_seconds(LEASE.total_seconds()),
        )

    def _not_read(
        self, source: str, event_id: str, error: CrmRetry | CrmRefused, now: datetime
    ) -> Refusal:
        """The answer to a notification whose read from the CRM failed, released above: 503
        with a `Retry-After`, so the CRM's retry of it runs again (HubSpot retries "any HTTP
        status code (4xx or 5xx)": its Webhooks API guide, "Retries"); the changes before it
        in the batch stand. The daily limit used up: the wait is to its reset, and the reads
        of its retries before then are refused unsent. Another failure (a 5xx, a dropped
        answer, the burst limit's 429, a refused token): the CRM's own wait, else
        `FAILED_READ_WAIT` (`REFUSED_READ_WAIT` for a refusal), with a warning in the log, not
        a traceback: the CRM's failure, not ours."""
        if isinstance(error, CrmDailyLimit):
            resumes = error.resumes or next_midnight(now, self.services.policy.timezone)
            at = resumes.astimezone(UTC).isoformat(timespec="minutes")
            return Refusal(
                f"the {source} API's daily request limit is used up: this notification "
                f"could not be read, and is taken after the limit resets ({at}); send it "
                "again then",
                Reason.BUSY,
                retry_after=max(1, math.ceil((resumes - now).total_seconds())),
            )
        after = error.after if isinstance(error, CrmRetry) else REFUSED_READ_WAIT
        log.warning("%s notification %s not read: %s", source, event_id, error)
        return Refusal(
            f"the {source} API did not answer the read this notification needs ({error}); "
            "send it again later",
            Reason.BUSY,
            retry_after=_seconds(after),
        )

    def _not_looked_up(self, source: str, event_id: str, error: SlackUnanswered) -> Refusal:
        """The answer to a notification whose new owner Slack did not look up for the moment,
        released above: as to a read the CRM failed, 503 with a `Retry-After` (Slack's wait,
        else FAILED_READ_WAIT) and a warning in the log, not a traceback; nothing of it was
        applied, the changes before it in the batch stand. A refused bot token: REFUSED_READ_WAIT,
        and an info line (what to fix is logged once, where the refusal was learnt); the changes
        after it about other records are applied too (`apply`)."""
        if isinstance(error, SlackTokenRefused):
            log.info(
                "%s notification %s not taken: %s; the CRM's retry applies it once the token "
                "works again",
                source,
                event_id,
                error,
            )
            return Refusal(
                f"{error}, so the new owner this notification needs cannot be looked up; send it "
                "again later",
                Reason.BUSY,
                retry_after=_seconds(error.after),
            )
        log.warning(
            "%s notification %s not taken: Slack did not look up its new owner "
            "(users.lookupByEmail: %s)",
            source,
            event_id,
            error,
        )
        return Refusal(
            "Slack did not answer the lookup of the new owner this notification needs "
            f"(users.lookupByEmail: {error}); send it again later",
            Reason.BUSY,
            retry_after=_seconds(error.after),
        )

    async def _one(
        self, inbound: CrmInbound, change: CrmChange, taken: Notification, deadline: float
    ) -> Outcome:
        """Apply one change. A status and an owner change mark `taken` done in the
        transaction of their write: a retry after a kill between the two would record the
        status again, or hand the lead back over a manager's later call. The other kinds are
        their own check: intake's external id, the stage's id, the merge's conditional tie,
        the person erased. A change the CRM gives no time of its own is dated when it first
        arrived (`Notification.arrived_at`), not when a retry took it again after a kill: a
        retry is not newer than what happened between (docs/crm-inbound.md, "Once")."""
        source, now = taken.source, taken.taken_at
        if change.change is Change.CREATED:
            return await self._created(source, inbound, change, now, deadline)
        if change.change is Change.MERGED:
            return await self._merged(source, change, now)
        lead = await self._lead(change)
        if lead is None:  # a record erased here already (its deletion retried): nothing to do
            return "erased" if await self._erased(change) else "unknown"
        if change.change is Change.OWNER:
            return await self._owner(inbound, change, lead, taken, deadline)
        if change.change is Change.STATUS:
            # On the lead's history when the CRM made it: HubSpot does not promise the order of
            # its notifications (its Webhooks API guide), and a retry after a kill or a failure
            # comes late, so the last line is the CRM's status now, whatever came first.
            at = _made_at(change, taken)
            await self.services.store.crm_status(lead.id, change.value, now, taken, at=at)
            return "finished"
        if change.change is Change.STAGE:
            return await self._stage(source, change, lead, taken)
        return await self._deleted(change, lead, now)

    async def _erased(self, change: CrmChange) -> bool:
        """Whether the change is about a record whose person Handoff erased (its lead keeps
        only the digests of its CRM and external ids, and of the records merged into it)."""
        found = await self.services.store.by_erased_id(change.external_id, change.crm_id)
        return found is not None

    async def _lead(self, change: CrmChange) -> LeadView | None:
        """The lead of the CRM record: by its CRM id, else by its external id, else (a record
        merged away, its change told after the merge) by the id it lives on in, else (where the
        change carries an email) the newest lead of that person, which is then tied to the
        record, so a lead sent to `POST /leads` under another id is found too."""
        store = self.services.store
        if change.crm_id is not None:
            lead = await store.by_crm_id(change.crm_id)
            if lead is not None:
                return lead
        if change.external_id is not None:
            lead = await store.by_external_id(change.external_id)
            if lead is not None:
                return lead
        if change.crm_id is not None:
            end = await store.surviving_record(change.crm_id)
            lead = await store.by_crm_id(end) if end != change.crm_id else None
            if lead is not None:
                return lead
        if change.email is None:
            return None
        lead = await store.find(change.email)
        if lead is not None and lead.crm_id is None and change.crm_id is not None:
            await store.set_crm_id(lead.id, change.crm_id)
        return lead

    async def _created(
        self, source: str, inbound: CrmInbound, change: CrmChange, now: datetime, deadline: float
    ) -> Outcome:
        # An erased person's record (or one merged into it), sent again late: intake knows an
        # erased lead by its external id only, so it would take them in anew under this one.
        if await self._erased(change):
            return "erased"
        payload = await _crm_read(inbound.lead_of(change), deadline)
        if payload is None:
            log.warning(
                "%s: record %s was created, but it could not be read (gone, or no API access "
                "configured): no lead taken in",
                source,
                change.crm_id,
            )
            return "ignored"
        result = await self.services.intake(dict(payload), now, source=source)
        if isinstance(result, Invalid):
            raise BadPayload([(f"lead.{e.field}", e.message) for e in result.errors])
        if result.lead.erased_at is not None:  # the erased person sent again: stays forgotten
            return "erased"
        if change.crm_id is not None and result.lead.crm_id is None:
            await self.services.store.set_crm_id(result.lead.id, change.crm_id)
        return "handled" if result.created or result.requalified else "ignored"

    async def _owner(
        self,
        inbound: CrmInbound,
        change: CrmChange,
        lead: LeadView,
        taken: Notification,
        deadline: float,
    ) -> Outcome:
        now = taken.taken_at
        # The CRM's time of the change, else when it first arrived: a retry after a kill (the
        # echo decided, killed before its done mark) is as old as its first delivery, so it
        # does not undo a manager's call made in between (a Salesforce Flow need not send `at`).
        # Its time as recorded (`_made_at`: one far ahead counts as 5 minutes after it first
        # arrived), not as told: a clock an hour ahead would make every change it made in the
        # hour before a manager's call newer than that call, and a late delivery undo it.
        made = _made_at(change, taken)
        last = await self.services.store.last_owner_change(lead.id)
        told = made if change.at is not None else None
        if last is not None and late_owner_change(last, told, taken.arrived_at, now):
            # A late delivery (a retry, or the echo of an owner Handoff wrote before a newer
            # change): applying it would undo the newer owner, here and then in the CRM.
            log.info(
                "lead %d: the CRM's owner change of %s is older than its last change of owner "
                "(%s, applied %s): the newer owner stands",
                lead.id,
                made.isoformat(),
                last.made.isoformat(),
                last.at.isoformat(),
            )
            return "ignored"
        member = await self._member(inbound, change, deadline)
        if member is None:
            log.info(
                "lead %d: its CRM owner %s is no Slack member Handoff can find (crm.owners, or "
                "the owner's email in Slack): the lead keeps its owner",
                lead.id,
                change.owner_crm_id or change.owner_email or "(none)",
            )
            return "ignored"
        # Kept with the change's `occurredAt` (else its first arrival): HubSpot batches changes
        # made close together and does not promise their order (its Webhooks API guide), so
        # the next change of owner is late only if the CRM made it before this one, not
        # before Handoff applied this.
        changed = await self.services.crm_reassign(lead, member, now, made, taken)
        return "finished" if changed else "ignored"

    async def _member(self, inbound: CrmInbound, change: CrmChange, deadline: float) -> str | None:
        """The Slack member behind the change's new owner, or None. Its reads (the owner's
        email from the CRM, the member from Slack) end by `deadline`, as `_within` says."""
        crm = self.services.policy.crm
        if change.owner_crm_id is not None and crm is not None:
            for user, owner in crm.owners.items():
                if owner == change.owner_crm_id:
                    return user
        email = change.owner_email
        if email is None and change.owner_crm_id is not None:
            email = await _crm_read(inbound.owner_email(change.owner_crm_id), deadline)
        if email is None or self.directory is None:
            return None
        lookup = self.directory.member_by_email(email)
        answered, member = await _within(lookup, deadline)
        if not answered:
            raise SlackUnanswered(f"no answer within the {READS_BOUND:g}s a webhook waits")
        return member

    async def _stage(
        self, source: str, change: CrmChange, lead: LeadView, taken: Notification
    ) -> Outcome:
        now = taken.taken_at
        payload: dict[str, Any] = {"type": "stage", "stage": change.value}
        payload["id"] = f"{source}:{change.event_id}"
        if change.amount is not None:
            payload["amount"] = change.amount
        # Without the CRM's time, when it first arrived: a deal won is won that day, also when
        # a retry after a kill records it hours later (HubSpot retries for a day).
        payload["at"] = (change.at or taken.arrived_at).isoformat()
        try:
            result = await self.services.activity(lead.external_id, payload, now)
        except Refusal as refusal:  # a won deal reported lost: the CRM's retry won't mend it
            log.info("lead %d: the CRM's stage change was not recorded: %s", lead.id, refusal)
            return "ignored"
        if isinstance(result, Invalid):
            problems = "; ".join(f"{e.field}: {e.message}" for e in result.errors)
            log.info("lead %d: the CRM's stage change was not recorded: %s", lead.id, problems)
            return "ignored"
        return "ignored" if isinstance(result, AlreadyRecorded) else "handled"

    async def _merged(self, source: str, change: CrmChange, now: datetime) -> Outcome:
        """Records merged in the CRM: their leads are tied to the one that remains. A merge of
        records Handoff has no lead for is ignored, not unknown: "unknown" is answered with a
        non-2xx, which the CRM retries for days, for a merge that may never be about a lead."""
        if change.crm_id is None or not change.merged_ids:
            return "ignored"
        store = self.services.store
        # One person's contacts merged: if one of them was erased, so was the person, whose
        # records are not remembered in plain again (nor tied: an erased lead never is). The
        # merge's other records, the one that remains included (an erased record merged into a
        # contact Handoff never had), are the erased person's: remembered as digests, so
        # HubSpot's later events about them are ignored too, not answered 404 (which it retries
        # for 24 hours: its Webhooks API guide, "Retries"), and their creation or a workflow's
        # call takes nobody in again.
        merge = (change.crm_id, *change.merged_ids)
        for crm_id in merge:
            if (erased := await store.by_erased_id(crm_id=crm_id)) is not None:
                if erased.crm_id is not None:
                    others = [i for i in merge if i != crm_id]
                    await store.remember_erased_merge(others, erased.crm_id, now)
                return "erased"
        moved = await store.tie_merged(change.merged_ids, change.crm_id, now)
        if moved:
            log.info(
                "%s: %d lead(s) of merged record(s) %s now tied to %s",
                source,
                moved,
                ", ".join(change.merged_ids)[:200],
                change.crm_id,
            )
        return "handled" if moved else "ignored"

    async def _deleted(self, change: CrmChange, lead: LeadView, now: datetime) -> Outcome:
        if lead.email == erased_email(lead.id):
            return "ignored"  # erased already
        if None not in (change.crm_id, lead.crm_id) and lead.crm_id != change.crm_id:
            # The lead is tied to another record of the CRM now (the one a merge left, or the
            # person's other contact): the person lives on there, and keeps their data.
            return "ignored"
        await forget(self.services.store, self.services.notifier, lead.email, "crm", now)
        return "handled"


def _made_at(change: CrmChange, taken: Notification) -> datetime:
    """When the CRM made the change: its own time (HubSpot's `occurredAt`, a Flow's `at`),
    else when its notification first arrived. Kept as the CRM told it, so two of its changes
    are ordered by its one clock even when that is ahead of ours; a time further ahead than
    `AHEAD_MOST` of its first arrival (a clock gone wrong) counts as that, not to stay the
    CRM's latest for long: of its first arrival, not of this take, so a retry (after a
    failure, or a kill) is dated as its first delivery would have been."""
    if change.at is None:
        return taken.arrived_at
    return min(change.at, taken.arrived_at + AHEAD_MOST)


def _records(change: CrmChange) -> set[str]:
    """The CRM records a change is about (its own id, its external id, the records a merge
    took in)."""
    ids = (change.crm_id, change.external_id, *change.merged_ids)
    return {record for record in ids if record}


def _seconds(after: float | None) -> int:
    """A `Retry-After` to answer with: whole seconds, at least 1, FAILED_READ_WAIT when there is
    no wait to pass on, and at most HUBSPOT_MOST (`math.ceil` of an `inf` raised)."""
    wait = FAILED_READ_WAIT if after is None or after != after else after
    return max(1, math.ceil(min(HUBSPOT_MOST, wait)))


async def _within(read: Awaitable[T], deadline: float) -> tuple[bool, T | None]:
    """`read`'s answer, if it comes by `deadline` (the event loop's time): (True, answer); else
    the read is given up, cancelled (a read changes nothing), and (False, None), for the
    notification to be answered 503 and released, nothing of it applied (the reads of a change
    come before its writes)."""
    try:
        async with asyncio.timeout_at(deadline) as bound:
            return True, await read
    except TimeoutError:
        if bound.expired():
            return False, None
        raise


async def _crm_read(read: Awaitable[T], deadline: float) -> T:
    """A read from the CRM, by `deadline`, else CrmRetry (answered as a failed read is)."""
    answered, value = await _within(read, deadline)
    if not answered:
        raise CrmRetry(f"no answer within the {READS_BOUND:g}s a webhook waits for its reads")
    return cast(T, value)
