"""`handoff doctor`: checks a real Slack workspace before the first lead arrives.

With the bot token it asks Slack who the token is (`auth.test`), which scopes it was granted
(the `x-oauth-scopes` header of every Web API answer) against those `manifest.yaml` declares,
whether each channel `sla.yaml` names exists and takes the bot's posts (`conversations.info`),
and whether each person it names, in any role, is an active member and not a guest
(`users.info`, once per person however many roles or named accounts they have). Each finding
is one line, and each problem says what to fix; what `handoff check` warns of in the SLA file
(`policy_warnings`) is a `WARN` line that fails nothing. The judging is pure (`judge_*`);
`examine` does the calls.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TextIO

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli.manifest import bot_scopes, load_manifest
from bot.domain.policy import Policy, policy_warnings
from bot.services.policies import load_policy
from bot.settings import Settings
from bot.slack.pacing import Pace, Pacer
from bot.slack.publisher import NoSlackAnswer, slack_client

POST_PUBLIC = "chat:write.public"  # posts to a public channel the bot has not joined
LOOKUPS_AT_ONCE = 4  # users.info and conversations.info calls in flight together
# Each look-up's rate-limit tier (Slack's method reference, `rate_limits`): users.info is
# Tier 4 (100+ per minute), conversations.info Tier 3 (50+), each with short bursts.
PER_MINUTE = {"users.info": 100.0, "conversations.info": 50.0}
LOOKUP_BURST = 10.0
ACCOUNTS_SHOWN = 3  # named accounts a finding lists by name; the rest are counted
# A forward proxy (HTTPS_PROXY) refusing to open the way to Slack: docs/operations.md.
PROXY_FIX = (
    "a 407 wants the proxy's user and password in HTTPS_PROXY (http://user:password@host:port); "
    "a 403 means the proxy does not allow slack.com (see docs/operations.md)"
)


@dataclass(frozen=True)
class Finding:
    """One line of the report: what is fine, or what to fix."""

    ok: bool
    text: str
    warning: bool = False  # what `handoff check` warns of: read it, though nothing fails

    def line(self) -> str:
        if self.warning:
            return f"WARN {self.text}"
        return f"{'ok ' if self.ok else 'FIX'}  {self.text}"


def fine(text: str) -> Finding:
    return Finding(True, text)


def fix(text: str) -> Finding:
    return Finding(False, text)


def warn(text: str) -> Finding:
    """A line to read that fails nothing: the SLA file is valid, and the doctor exits 0."""
    return Finding(True, text, warning=True)


# -- what sla.yaml names ----------------------------------------------------------------------


def channel_roles(policy: Policy) -> dict[str, list[str]]:
    """Every channel the SLA names → what it is for, in the file's order."""
    roles: dict[str, list[str]] = {}
    for segment in policy.segments:
        roles.setdefault(segment.channel, []).append(f"segment {segment.name}")
    named = policy.channels
    for channel, role in (
        (named.marketing_feedback, "marketing feedback"),
        (named.escalations, "escalations"),
        (named.digest, "weekly digest"),
    ):
        if channel:
            roles.setdefault(channel, []).append(role)
    return roles


def people_roles(policy: Policy) -> dict[str, list[str]]:
    """Every user id the SLA (with its named-accounts CSV) names → what they are, in the
    file's order: each person once, however many roles or named accounts they have."""
    roles: dict[str, list[str]] = {}

    def add(user: str, role: str) -> None:
        roles.setdefault(user, []).append(role)

    for segment in policy.segments:
        for rep in segment.reps:
            add(rep, f"rep in {segment.name}")
    for role, people in (
        ("manager", policy.managers),
        ("reporter", policy.reporters),
        ("viewer", policy.viewers),
    ):
        for person in people:
            add(person, role)
    alert = policy.report.compliance_alert
    for person in alert.notify if alert else []:
        add(person, "compliance alert")
    owned: dict[str, list[str]] = {}
    for domain, owner in policy.named_accounts.items():
        owned.setdefault(owner, []).append(domain)
    for owner, domains in owned.items():
        add(owner, accounts_role(domains))
    if policy.partner is not None:
        add(policy.partner.manager, "partner manager")
    if policy.fallback_owner is not None:
        add(policy.fallback_owner, "fallback owner")
    for member, crm_owner in policy.crm.owners.items() if policy.crm else []:
        add(member, f"CRM owner {crm_owner}")
    return roles


def accounts_role(domains: list[str]) -> str:
    """The role of the owner of `domains` (named accounts), the first few by name."""
    if len(domains) == 1:
        return f"named account {domains[0]}"
    more = len(domains) - ACCOUNTS_SHOWN
    shown = ", ".join(domains[:ACCOUNTS_SHOWN])
    return f"named accounts {shown}" + (f" and {more} more" if more > 0 else "")


# -- judging Slack's answers (pure) -----------------------------------------------------------


def judge_identity(answer: Mapping[str, Any]) -> Finding:
    """auth.test's answer: which workspace and which bot user the token belongs to."""
    team = f"{answer.get('team') or '?'} ({answer.get('team_id') or '?'})"
    if not answer.get("bot_id"):
        return fix(
            f"token: {team} as @{answer.get('user')}, which is not a bot: "
            "set SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-…) from OAuth & Permissions"
        )
    return fine(
        f"token: workspace {team}, bot user @{answer.get('user')} ({answer.get('user_id')})"
    )


def parse_scopes(header: str | None) -> set[str] | None:
    """The `x-oauth-scopes` header (`chat:write,users:read`) as a set; None when absent."""
    if header is None:
        return None
    return {scope.strip() for scope in header.split(",") if scope.strip()}


def judge_scopes(declared: Iterable[str], granted: set[str] | None) -> Finding:
    """The scopes the manifest declares against those Slack granted the token."""
    wanted = list(dict.fromkeys(declared))
    if granted is None:
        return fix(
            "scopes: Slack sent no x-oauth-scopes header, so the granted scopes are unknown: "
            "check SLACK_BOT_TOKEN is a bot token (xoxb-…) and SLACK_API_URL points at Slack"
        )
    missing = [scope for scope in wanted if scope not in granted]
    if missing:
        return fix(
            f"scopes: missing {', '.join(missing)}: add them under OAuth & Permissions → Bot "
            "Token Scopes (or update the app from `handoff manifest`), then reinstall the app"
        )
    return fine(f"scopes: all {len(wanted)} the manifest declares are granted")


def judge_channel(
    channel: str,
    roles: list[str],
    answer: Mapping[str, Any] | str,
    granted: set[str] | None,
    bot: str = "handoff",
) -> Finding:
    """conversations.info's answer (or its error) for a channel the SLA names; `bot` is the
    bot user's name, for the /invite to type."""
    purpose = ", ".join(roles)
    if isinstance(answer, str):
        if answer == "channel_not_found":
            # Slack answers so for a private channel the bot is not in, too.
            return fix(
                f"channel {channel} ({purpose}): not found. Check the id in sla.yaml; if it is "
                f"a private channel, type /invite @{bot} in it"
            )
        return fix(f"channel {channel} ({purpose}): conversations.info failed: {answer}")
    name = f"#{answer.get('name') or channel} ({channel}, {purpose})"
    invite = f"type /invite @{bot} in #{answer.get('name') or channel}"
    if answer.get("is_archived"):
        return fix(f"channel {name}: archived: unarchive it or name another channel in sla.yaml")
    private = bool(answer.get("is_private"))
    kind = "private" if private else "public"
    if answer.get("is_member"):
        return fine(f"channel {name}: {kind}, the bot is a member")
    if private:
        return fix(f"channel {name}: private and the bot is not a member: {invite}")
    if any(role == "weekly digest" for role in roles):
        # files.completeUploadExternal shares a file only where the bot is a member.
        return fix(f"channel {name}: the digest's charts need the bot in the channel: {invite}")
    if granted is not None and POST_PUBLIC in granted:
        return fine(f"channel {name}: public, not a member; posts with {POST_PUBLIC}")
    return fix(f"channel {name}: public, the bot is not a member and lacks {POST_PUBLIC}: {invite}")


def judge_person(user: str, roles: list[str], answer: Mapping[str, Any] | str) -> Finding:
    """users.info's answer (or its error) for a person the SLA names."""
    purpose = ", ".join(roles)
    if isinstance(answer, str):
        if answer == "user_not_found":
            return fix(
                f"user {user} ({purpose}): not found in this workspace: put their member ID "
                "in sla.yaml (profile → ⋮ → Copy member ID)"
            )
        return fix(f"user {user} ({purpose}): users.info failed: {answer}")
    who = f"@{answer.get('name') or user} ({user}, {purpose})"
    if answer.get("deleted"):
        return fix(f"user {who}: deactivated: replace or remove them in sla.yaml")
    if answer.get("is_bot"):
        return fix(f"user {who}: a bot, not a person: put a person's member ID in sla.yaml")
    # A guest (`is_restricted`; `is_ultra_restricted` too: single-channel) holds no role in
    # Handoff, whatever sla.yaml says (bot/domain/access.py).
    if answer.get("is_restricted") or answer.get("is_ultra_restricted"):
        kind = "single-channel" if answer.get("is_ultra_restricted") else "multi-channel"
        return fix(
            f"user {who}: a {kind} guest, and Handoff gives guests no role: make them a full "
            "member of the workspace, or take them out of sla.yaml"
        )
    return fine(f"user {who}: active")


# -- asking Slack ------------------------------------------------------------------------------


async def _answer(call: Awaitable[Any], key: str) -> Mapping[str, Any] | str:
    """The answer's `key` object, or Slack's error code."""
    try:
        response = await call
    except SlackApiError as error:
        return str(error.response.get("error") or error)
    value = response.get(key)
    return value if isinstance(value, dict) else {}


def lookup_pacers() -> dict[str, Pacer]:
    """One pacer per look-up method, at its tier's rate."""
    return {
        method: Pacer(Pace(calls_per_minute=rate, call_burst=LOOKUP_BURST))
        for method, rate in PER_MINUTE.items()
    }


async def examine(
    client: AsyncWebClient,
    policy: Policy,
    declared_scopes: Iterable[str],
    pacers: Mapping[str, Pacer] | None = None,
) -> list[Finding]:
    """Every finding about the workspace behind `client`'s token, in a stable order.

    Stops after the token check when Slack refuses the token: nothing else can be asked.
    Each channel and person is looked up once, each method within its rate-limit tier.
    """
    try:
        identity = await client.auth_test()
    except NoSlackAnswer as error:  # Slack answers JSON with `ok` (its Web API basics)
        return [
            fix(
                f"Slack: {client.base_url} is not Slack's Web API ({error}): check "
                "SLACK_API_URL (Slack's is https://slack.com/api/) and any proxy in between"
            )
        ]
    except SlackApiError as error:
        code = error.response.get("error")
        return [
            fix(f"token: Slack refused SLACK_BOT_TOKEN ({code}): copy the Bot User OAuth Token")
        ]
    granted = parse_scopes(identity.headers.get("x-oauth-scopes"))
    findings = [judge_identity(identity.data if isinstance(identity.data, dict) else {})]
    findings.append(judge_scopes(declared_scopes, granted))

    gate = asyncio.Semaphore(LOOKUPS_AT_ONCE)
    pacers = pacers or lookup_pacers()

    async def limited(
        method: str, lookup: Callable[[], Awaitable[Any]], key: str
    ) -> Mapping[str, Any] | str:
        async with gate:
            await pacers[method].wait(method, None)
            return await _answer(lookup(), key)

    channels = channel_roles(policy)
    people = people_roles(policy)
    channel_answers = await asyncio.gather(
        *(
            limited("conversations.info", partial(client.conversations_info, channel=c), "channel")
            for c in channels
        )
    )
    people_answers = await asyncio.gather(
        *(limited("users.info", partial(client.users_info, user=u), "user") for u in people)
    )
    bot = str(identity.get("user") or "handoff")
    findings += [
        judge_channel(channel, roles, answer, granted, bot)
        for (channel, roles), answer in zip(channels.items(), channel_answers, strict=True)
    ]
    findings += [
        judge_person(user, roles, answer)
        for (user, roles), answer in zip(people.items(), people_answers, strict=True)
    ]
    return findings


async def examine_crm(settings: Settings, policy: Policy) -> list[Finding]:
    """With a `crm:` section: the adapter's own check (credentials, the mapped properties the
    CRM must have, Salesforce's Lead Status values the status map names, a receiver that
    answers), each problem naming what is wrong."""
    if policy.crm is None:
        return []
    from bot.crm.factory import adapter_for
    from bot.settings import ConfigError

    kind = policy.crm.kind

    async def no_email(_: str) -> str | None:
        return None

    try:
        adapter = adapter_for(policy.crm, settings, no_email)
    except ConfigError as error:
        return [fix(f"crm ({kind}): {line}") for line in str(error).splitlines()]
    try:
        problems = await adapter.check()
    except Exception as error:  # a check that cannot run is a finding, not a traceback
        problems = [f"the check could not run: {type(error).__name__}: {error}"]
    finally:
        await adapter.aclose()
    if not problems:
        return [fine(f"crm ({kind}): takes Handoff's writes")]
    return [fix(f"crm ({kind}): {problem}") for problem in problems]


def summary(findings: list[Finding]) -> str:
    problems = sum(not finding.ok for finding in findings)
    warnings = sum(finding.warning for finding in findings)
    read = f"{warnings} warning{'' if warnings == 1 else 's'}"
    if problems:
        more = f", and {read}" if warnings else ""
        return f"{problems} problem(s) to fix before the first lead arrives{more}"
    checks = len(findings) - warnings
    more = f", {read}" if warnings else ""
    return f"all {checks} checks passed{more}: ready for the first lead"


async def doctor(settings: Settings, out: TextIO | None = None) -> int:
    """`handoff doctor`: print every finding; 0 when all is well, 1 on any problem (the SLA
    file's warnings, `WARN` lines, are none).

    A missing token raises ConfigError and a broken SLA file PolicyError, as for `serve`."""
    settings.require("SLACK_BOT_TOKEN")
    policy = load_policy(settings.sla_file)
    declared = bot_scopes(load_manifest())
    out = out or sys.stdout
    print(f"checking the workspace of SLACK_BOT_TOKEN against {settings.sla_file}", file=out)
    # What `handoff check` warns of in the file, in its words: valid, so no check fails.
    findings = [warn(line) for line in policy_warnings(policy)]
    client = slack_client(settings.bot_token or "", settings.api_url)
    try:
        findings += await examine(client, policy, declared)
    except aiohttp.ClientHttpProxyError as error:  # the proxy refused, not Slack's address
        way = f"Slack: the proxy refused the way to {settings.api_url} ({error})"
        findings += [fix(f"{way}: {PROXY_FIX}")]
    except (aiohttp.ClientError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        findings += [fix(f"Slack: cannot reach {settings.api_url} ({reason}): check SLACK_API_URL")]
    finally:
        if client.session is not None:
            await client.session.close()
    findings += await examine_crm(settings, policy)
    for finding in findings:
        print(finding.line(), file=out)
    print(summary(findings), file=out)
    return 0 if all(finding.ok for finding in findings) else 1
