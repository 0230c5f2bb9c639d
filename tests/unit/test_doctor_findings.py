"""`handoff doctor`'s judging, without Slack: what the SLA names, and each answer's line."""

from __future__ import annotations

from bot.cli.doctor import (
    channel_roles,
    judge_channel,
    judge_identity,
    judge_person,
    judge_scopes,
    parse_scopes,
    people_roles,
    summary,
)
from bot.domain.policy import Policy

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
