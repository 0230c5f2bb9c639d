"""`handoff whatif` as a person runs it: a week of leads worked through the services into a SQLite
file, replayed under a stricter SLA file beside today's, as text and JSON; a broken proposed file
and an empty history are answered in words."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from bot.services.leads import Services
from bot.services.policies import PolicyBook, load_policy
from tests.conftest import ROOT, lead_payload, migrated_store
from tests.e2e.test_cli import clean_env, run
from tests.unit.test_whatif_replay import STRICT

MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # 11:00 in Sydney, 2026-W48
FRIDAY_NOON = "2026-11-27T12:00+11:00"


class Later:
    def deliver_soon(self) -> None: ...


def at(minutes: int) -> datetime:
    return MONDAY + timedelta(minutes=minutes)


async def worked_week(tmp_path: Path) -> dict[str, str]:
    """Two hot leads: one claimed in 5 minutes, touched in 80 and qualified; one never claimed."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    async with migrated_store(url) as store:
        book = PolicyBook(store, load_policy(str(ROOT / "sla.yaml")))
        await book.record_current(MONDAY - timedelta(days=7))
        services = Services(store, book, Later())
        ids = []
        for index, external_id in enumerate(("hs-1", "hs-2")):
            result = await services.intake(lead_payload(external_id), at(index))
            assert result.lead is not None
            await store.mark_posted(result.lead.id, "C0ENT", f"1.{index}", at(index))
            ids.append(result.lead.id)
        await services.claim(ids[0], "U0REP1", at(5))
        await services.log_attempt(ids[0], "U0REP1", "call", at(80))
        await services.dispose(ids[0], "U0REP1", "qualified", at(180))
    return clean_env(DATABASE_URL=url, HANDOFF_SLA_FILE=str(ROOT / "sla.yaml"))


def strict_file(tmp_path: Path) -> Path:
    path = tmp_path / "strict.yaml"
    data = yaml.safe_load((ROOT / "sla.yaml").read_text())
    path.write_text(yaml.safe_dump({**data, **STRICT}, allow_unicode=True))
    return path


async def test_whatif_prints_today_and_proposed_side_by_side(tmp_path: Path) -> None:
    env = await worked_week(tmp_path)
    proposed = strict_file(tmp_path)
    args = ("whatif", str(proposed), "--weeks", "2", "--at", FRIDAY_NOON)
    result = run(*args, "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["weeks"] == ["2026-W47", "2026-W48"]
    today, strict = data["total"]["today"], data["total"]["proposed"]
    assert today["mqls"] == strict["mqls"] == 2
    # Touched 80 working minutes after arrival: within today's 2h, not the proposed 1h.
    assert today["first_touch"] == {"value": 0.5, "met": 1, "due": 2}
    assert strict["first_touch"] == {"value": 0.0, "met": 0, "due": 2}
    assert today["claim"]["met"] == strict["claim"]["met"] == 1
    # The lead nobody claimed: today's ladders reassign it twice (unclaimed at 150%, no_touch
    # at 200%); the proposed no_touch ladder never reassigns, and reminds the worked lead.
    assert (today["reassignments"], strict["reassignments"]) == (2, 1)
    kpis = {kpi["key"]: kpi for kpi in data["kpis"]}
    assert (kpis["escalations"]["today"], kpis["escalations"]["proposed"]) == (5, 6)
    assert kpis["escalations.no_touch.remind_owner"]["change"] == 1

    text = run(*args, env=env)
    assert text.returncode == 0, text.stderr
    assert re.search(
        r"^First-touch compliance +50% \(1/2\) +0% \(0/2\) +-50 pts$", text.stdout, re.M
    )
    assert re.search(r"^Reassignments +2 +1 +-1$", text.stdout, re.M)
    assert re.search(r"^2026-W48 +2 +50% → 0% +50% → 50% +100% → 100%$", text.stdout, re.M)
    assert "It does not simulate how people would have behaved" in " ".join(text.stdout.split())


async def test_a_broken_proposal_and_an_empty_history_are_explained(tmp_path: Path) -> None:
    env = await worked_week(tmp_path)
    broken = tmp_path / "broken.yaml"
    text = (
        strict_file(tmp_path)
        .read_text()
        .replace("first_touch: 1 business hour", "first_touch: soon")
    )
    broken.write_text(text.replace("do: reassign", "do: fly"))
    result = run("whatif", str(broken), env=env)
    assert result.returncode == 2
    assert "tiers[0].first_touch: 'soon' is not a duration" in result.stderr
    assert "escalation.unclaimed[2].do: 'fly' is not a step" in result.stderr
    assert "Traceback" not in result.stderr

    long_after = run("whatif", str(strict_file(tmp_path)), "--at", "2027-06-01T09:00Z", env=env)
    assert long_after.returncode == 0, long_after.stderr
    assert long_after.stdout.strip() == "no leads in the last 12 weeks: nothing to replay"
    # A script asked for JSON (docs/plan-and-whatif.md: "for scripts") gets JSON then too:
    # the same figures, all zero, not a sentence its parser chokes on.
    args = ("whatif", str(strict_file(tmp_path)), "--at", "2027-06-01T09:00Z", "--format", "json")
    empty = run(*args, env=env)
    assert empty.returncode == 0, empty.stderr
    data = json.loads(empty.stdout)
    assert len(data["weeks"]) == 12
    assert data["total"]["today"]["mqls"] == data["total"]["proposed"]["mqls"] == 0
    # Nothing was due: each share is null, not zero (docs/plan-and-whatif.md says which).
    assert data["total"]["today"]["claim"] == {"value": None, "met": 0, "due": 0}


# --- the MQL definition ------------------------------------------------------------------------


def engaged(kind: str, days: int, **extra: str) -> dict[str, str]:
    return {"type": kind, "at": (MONDAY - timedelta(days=days)).isoformat(), **extra}


PRICING = engaged("page_view", 2, url="https://acme.example/pricing", title="Pricing")
EBOOK = engaged("content_download", 12, title="The Enterprise Guide (ebook)")
DEMO = engaged("demo_request", 1, title="Book a demo")


def unscored(external_id: str, employees: int, *engagement: dict[str, str]) -> dict[str, object]:
    company = {"name": f"Company {external_id}", "employees": employees}
    return lead_payload(
        external_id,
        score=None,
        title="Analyst",
        source="content",
        company=company,
        engagement=list(engagement),
    )


async def mixed_week(tmp_path: Path) -> dict[str, str]:
    """The worked week's two CRM-scored leads, and four the shipped definition scores: seed
    000's example (an MQL), the same without the pricing visit (40: nurture), a small company's
    pricing visit (20: nurture), and a small company's demo request (qualifies alone)."""
    env = await worked_week(tmp_path)
    async with migrated_store(env["DATABASE_URL"]) as store:
        book = PolicyBook(store, load_policy(str(ROOT / "sla.yaml")))
        services = Services(store, book, Later())
        leads = [
            unscored("q-1", 240, EBOOK, PRICING),
            unscored("q-2", 240, EBOOK),
            unscored("q-3", 12, PRICING),
            unscored("q-4", 12, DEMO),
        ]
        for index, payload in enumerate(leads):
            result = await services.intake(payload, at(10 + index))
            assert result.lead is not None
    return env


def looser_file(tmp_path: Path) -> Path:
    """Threshold 40, and a demo request no longer qualifies alone (30 points)."""
    path = tmp_path / "looser.yaml"
    data = yaml.safe_load((ROOT / "sla.yaml").read_text())
    data["mql"]["threshold"] = 40
    demo = next(item for item in data["mql"]["intent"] if item["type"] == "demo_request")
    demo.update(points=30, qualifies=False)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


async def test_whatif_replays_a_changed_mql_definition(tmp_path: Path) -> None:
    env = await mixed_week(tmp_path)
    args = ("whatif", str(looser_file(tmp_path)), "--weeks", "2", "--at", FRIDAY_NOON)
    result = run(*args, "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    mqls = json.loads(result.stdout)["mql_definition"]
    both = {"today": {"leads": 6, "mqls": 4}, "proposed": {"leads": 6, "mqls": 4}}
    assert mqls["total"] == both
    assert mqls["by_segment"] == {
        "enterprise": {"today": {"leads": 2, "mqls": 2}, "proposed": {"leads": 2, "mqls": 2}},
        "mid_market": {"today": {"leads": 2, "mqls": 1}, "proposed": {"leads": 2, "mqls": 2}},
        "smb": {"today": {"leads": 2, "mqls": 1}, "proposed": {"leads": 2, "mqls": 0}},
    }
    assert mqls["by_source"]["content"] == {
        "today": {"leads": 4, "mqls": 2},
        "proposed": {"leads": 4, "mqls": 2},
    }
    (gained,) = mqls["gained"]["examples"]
    assert (gained["company"], gained["score"]) == ("Company q-2", {"today": 40, "proposed": 40})
    (lost,) = mqls["lost"]["examples"]
    assert lost["company"] == "Company q-4"
    assert lost["score"] == {"today": 40, "proposed": 30}
    assert lost["why"] == "score 30 is below the MQL threshold 40"
    assert "@" not in json.dumps(mqls)  # no email, no personal data beyond id and company

    text = run(*args, env=env)
    assert text.returncode == 0, text.stderr
    assert re.search(r"^MQLs +4 of 6 +4 of 6 +\+0$", text.stdout, re.M)
    assert re.search(r"^  segment mid_market +1 of 2 +2 of 2 +\+1$", text.stdout, re.M)
    assert re.search(r"^  segment smb +1 of 2 +0 of 2 +-1$", text.stdout, re.M)
    assert "Leads that would become MQLs: 1" in text.stdout
    assert re.search(
        r"^  #\d+ Company q-4 \(smb\): score 40 → 30; score 30 is below", text.stdout, re.M
    )


async def test_whatif_counts_leads_that_never_qualified(tmp_path: Path) -> None:
    """Only nurtured leads in the period: nothing for the clocks, still a definition to judge."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    async with migrated_store(url) as store:
        book = PolicyBook(store, load_policy(str(ROOT / "sla.yaml")))
        await book.record_current(MONDAY - timedelta(days=7))
        services = Services(store, book, Later())
        result = await services.intake(unscored("q-2", 240, EBOOK), at(0))
        assert result.lead is not None and result.lead.stage.value == "nurture"
    env = clean_env(DATABASE_URL=url, HANDOFF_SLA_FILE=str(ROOT / "sla.yaml"))
    result = run(
        "whatif", str(looser_file(tmp_path)), "--at", FRIDAY_NOON, "--format", "json", env=env
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total"]["today"]["mqls"] == 0
    assert data["mql_definition"]["gained"]["count"] == 1
