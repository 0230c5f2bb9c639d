"""`handoff doctor`'s judging, without Slack: what the SLA names, and each answer's line."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

import bot.slack.pacing
from bot.cli.doctor import (
    accounts_role,
    channel_roles,
    examine,
    judge_channel,
    judge_identity,
    judge_person,
    judge_scopes,
    parse_scopes,
    people_roles,
    summary,
    warn,
)
from bot.domain.policy import Crm, Partner, Policy
from bot.slack.pacing import Pace, Pacer

PUBLIC = {"id": "C0SMB", "name": "sales-smb", "is_private": False, "is_member": False}


def test_every_channel_and_person_the_sla_names(policy: Policy) -> None:
    assert channel_roles(policy) == {
        "C0ENT": ["segment enterprise"],
        "C0MID": ["segment mid_market"],
        "C0SMB": ["segment smb"],
        "C0MKTFEED": ["marketing feedback"],
        "C0ESCALATE": ["escalations"],
        "C0REVOPS": ["weekly digest"],
    }
    people = people_roles(policy)
    assert people["U0REP3"] == ["rep in mid_market"]
    assert people["U0MGR1"] == ["manager", "compliance alert"]
    assert len(people) == 8


def test_reporters_are_people_to_check(policy: Policy) -> None:
    with_reporter = policy.model_copy(update={"reporters": ["U0MKT1"]})
    assert people_roles(with_reporter)["U0MKT1"] == ["reporter"]


def test_every_role_the_routing_gives_is_a_person_to_check(policy: Policy) -> None:
    accounts = {"northwind.example": "U0REP2", "globex.example": "U0REP5"}
    accounts |= {f"acct{n}.example": "U0REP6" for n in range(5000)}
    routed = policy.model_copy(
        update={
            "viewers": ["U0VIEW"],
            "named_accounts": accounts,
            "partner": Partner(manager="U0MGR2"),
            "fallback_owner": "U0REP1",
            "crm": Crm(kind="webhook", owners={"U0REP3": "owner-7"}),
        }
    )
    people = people_roles(routed)
    assert routed.routed_people <= set(people)
    assert people["U0VIEW"] == ["viewer"]
    assert people["U0REP2"] == ["rep in enterprise", "named account northwind.example"]
    assert people["U0REP5"] == ["rep in smb", "named account globex.example"]
    assert people["U0REP6"] == [
        "rep in smb",
        "named accounts acct0.example, acct1.example, acct2.example and 4997 more",
    ]
    assert people["U0MGR2"] == ["manager", "partner manager"]
    assert people["U0REP1"] == ["rep in enterprise", "fallback owner"]
    assert people["U0REP3"] == ["rep in mid_market", "CRM owner owner-7"]
    assert len(people) == 9  # 5,002 named accounts, and still one look-up per person


def test_a_few_named_accounts_are_all_named() -> None:
    assert accounts_role(["a.example", "b.example"]) == "named accounts a.example, b.example"
    assert accounts_role(["a.example", "b.example", "c.example"]).endswith("c.example")


class PacedSlack:
    """Answers doctor's look-ups at once, noting when (on a fake clock) each was asked."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.asked: list[tuple[str, float]] = []

    async def auth_test(self) -> Any:
        answer = SimpleNamespace(data={"bot_id": "B1", "user": "handoff"})
        answer.headers = {"x-oauth-scopes": "chat:write"}
        answer.get = answer.data.get
        return answer

    async def users_info(self, user: str) -> dict[str, Any]:
        self.asked.append(("users.info", self.clock[0]))
        return {"user": {"name": user.lower()}}

    async def conversations_info(self, channel: str) -> dict[str, Any]:
        self.asked.append(("conversations.info", self.clock[0]))
        return {"channel": {"name": channel.lower(), "is_member": True}}


async def test_look_ups_keep_to_each_methods_rate_limit_tier(
    policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [0.0]
    sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        clock[0] += max(seconds, 1e-6)  # a wait under the float's precision would not pass
        await sleep(0)

    monkeypatch.setattr(bot.slack.pacing.asyncio, "sleep", fake_sleep)
    reps = [f"U0R{n:03d}" for n in range(40)]
    segments = [policy.segments[0].model_copy(update={"reps": reps}), *policy.segments[1:]]
    big = policy.model_copy(update={"segments": segments})
    pacers = {
        method: Pacer(Pace(calls_per_minute=rate, call_burst=10), monotonic=lambda: clock[0])
        for method, rate in (("users.info", 100.0), ("conversations.info", 50.0))
    }
    slack = PacedSlack(clock)
    findings = await examine(slack, big, [], pacers)  # type: ignore[arg-type]
    users = [at for method, at in slack.asked if method == "users.info"]
    assert len(users) == len(people_roles(big)) == 40 + 6
    # A burst of 10 at once, then Tier 4's 100 a minute: one each 0.6 s.
    assert users[9] == 0.0 and users[-1] == pytest.approx((len(users) - 10) * 0.6, abs=0.01)
    assert all(finding.ok for finding in findings[2:])


def test_scopes_missing_from_the_grant_are_named() -> None:
    assert parse_scopes("chat:write, users:read,,") == {"chat:write", "users:read"}
    assert parse_scopes(None) is None
    declared = ["chat:write", "files:write", "users:read", "im:write"]
    missing = judge_scopes(declared, {"chat:write", "users:read", "extra:scope"})
    assert not missing.ok
    assert missing.text.startswith("scopes: missing files:write, im:write: add them")
    assert "reinstall the app" in missing.text
    assert judge_scopes(declared, set(declared)).ok
    unknown = judge_scopes(declared, None)
    assert not unknown.ok and "x-oauth-scopes" in unknown.text


def test_a_user_token_is_not_the_bot_token() -> None:
    answer = {"team": "Acme", "team_id": "T1", "user": "grace", "user_id": "U1"}
    finding = judge_identity(answer)
    assert not finding.ok and "Bot User OAuth Token (xoxb-…)" in finding.text
    assert judge_identity({**answer, "bot_id": "B1"}).ok


def test_a_public_channel_takes_posts_without_the_bot_only_with_chat_write_public() -> None:
    roles = ["segment smb"]
    assert judge_channel("C0SMB", roles, PUBLIC, {"chat:write.public"}).ok
    refused = judge_channel("C0SMB", roles, PUBLIC, {"chat:write"}, bot="handoff")
    assert not refused.ok
    assert refused.text.endswith("lacks chat:write.public: type /invite @handoff in #sales-smb")
    assert judge_channel("C0SMB", roles, {**PUBLIC, "is_member": True}, set()).ok


def test_the_digest_channel_needs_the_bot_for_its_charts() -> None:
    finding = judge_channel("C0SMB", ["weekly digest"], PUBLIC, {"chat:write.public"})
    assert not finding.ok and "charts need the bot in the channel" in finding.text


def test_missing_private_archived_and_refused_channels() -> None:
    missing = judge_channel("C0GONE", ["escalations"], "channel_not_found", None, bot="handoff")
    assert not missing.ok and "type /invite @handoff in it" in missing.text
    private = judge_channel("C0P", ["digest"], {**PUBLIC, "is_private": True}, None)
    assert not private.ok and "private and the bot is not a member" in private.text
    archived = judge_channel("C0A", ["x"], {**PUBLIC, "is_archived": True, "is_member": True}, None)
    assert not archived.ok and "archived" in archived.text
    scope = judge_channel("C0S", ["x"], "missing_scope", None)
    assert not scope.ok and scope.text.endswith("conversations.info failed: missing_scope")


def test_people_must_be_active_members_and_not_bots() -> None:
    roles = ["manager"]
    assert judge_person("U1", roles, {"name": "grace", "deleted": False, "is_bot": False}).ok
    gone = judge_person("U1", roles, "user_not_found")
    assert not gone.ok and "Copy member ID" in gone.text
    deactivated = judge_person("U1", roles, {"name": "grace", "deleted": True})
    assert (
        deactivated.text
        == "user @grace (U1, manager): deactivated: replace or remove them in sla.yaml"
    )
    assert not judge_person("U1", roles, {"name": "zap", "is_bot": True}).ok


def test_the_summary_counts_problems() -> None:
    fine = judge_person("U1", ["manager"], {"name": "grace"})
    broken = judge_person("U2", ["manager"], "user_not_found")
    assert summary([fine, broken]) == "1 problem(s) to fix before the first lead arrives"
    assert summary([fine]) == "all 1 checks passed: ready for the first lead"
    assert fine.line().startswith("ok   user @grace") and broken.line().startswith("FIX  user U2")


def test_a_warning_is_read_but_fails_nothing() -> None:
    """The SLA file's warnings (`handoff check`'s) are `WARN` lines, aligned with the others:
    counted apart from the checks, and never a problem."""
    fine = judge_person("U1", ["manager"], {"name": "grace"})
    broken = judge_person("U2", ["manager"], "user_not_found")
    zone, other = warn("timezone: 'EST' is UTC-05:00 all year"), warn("another")
    assert zone.ok and zone.line() == "WARN timezone: 'EST' is UTC-05:00 all year"
    assert summary([zone, fine]) == "all 1 checks passed, 1 warning: ready for the first lead"
    assert summary([zone, other, fine]) == (
        "all 1 checks passed, 2 warnings: ready for the first lead"
    )
    assert summary([zone, fine, broken]) == (
        "1 problem(s) to fix before the first lead arrives, and 1 warning"
    )
