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
