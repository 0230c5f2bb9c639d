"""`handoff doctor` against the simulator: a healthy workspace, and one with a problem of each
kind, in process and as a person runs it."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from bot.cli.doctor import doctor
from bot.cli.manifest import bot_scopes, load_manifest
from bot.cli.stack import BOT_TOKEN, local_slack
from bot.crmfake.salesforce import LeadStatus, SalesforceFake
from bot.domain.policy import zone_warning
from bot.settings import Settings
from bot.simulator.server import SlackSimulator
from tests.conftest import ROOT
from tests.e2e.test_cli import clean_env, run


async def run_doctor(
    sim: SlackSimulator,
    token: str = BOT_TOKEN,
    sla_file: Path = ROOT / "sla.yaml",
    env: dict[str, str] | None = None,
) -> tuple[int, str]:
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": token,
            "SLACK_API_URL": sim.api_url,
            "HANDOFF_SLA_FILE": str(sla_file),
            **(env or {}),
        }
    )
    out = io.StringIO()
    code = await doctor(settings, out)
    return code, out.getvalue()


def break_workspace(sim: SlackSimulator) -> None:
    """A problem of each kind the doctor looks for."""
    assert sim.scopes is not None
    sim.scopes = [scope for scope in sim.scopes if scope != "files:write"]
    sim.missing_channels.add("C0MID")  # deleted, or a typo in sla.yaml
    sim.add_channel("C0REVOPS", "revops", private=True)
    sim.not_in_channel.add("C0REVOPS")  # private, and nobody invited the bot
    sim.not_in_channel.add("C0SMB")  # public: chat:write.public posts there anyway
    sim.archive_channel("C0ESCALATE")
    sim.deactivate_user("U0REP3")
    sim.add_user("U0REP4", "zapier", "Zapier", is_bot=True)


async def test_a_healthy_workspace_passes() -> None:
    sim = await local_slack()
    try:
        code, text = await run_doctor(sim)
    finally:
        await sim.stop()
    assert code == 0, text
    assert "FIX" not in text
    lines = text.splitlines()
    assert "ok   token: workspace Handoff Simulator (T0SIM), bot user @handoff (U0BOT)" in lines
    declared = len(bot_scopes(load_manifest()))
    assert f"ok   scopes: all {declared} the manifest declares are granted" in lines
    assert (
        "ok   channel #sales-enterprise (C0ENT, segment enterprise): public, the bot is a member"
        in lines
    )
    assert "ok   user @grace (U0MGR1, manager, compliance alert): active" in lines
    assert lines[-1] == "all 16 checks passed: ready for the first lead"


async def test_a_broken_workspace_names_each_problem_and_what_to_fix() -> None:
    sim = await local_slack()
    break_workspace(sim)
    try:
        code, text = await run_doctor(sim)
    finally:
        await sim.stop()
    assert code == 1, text
    problems = [line for line in text.splitlines() if line.startswith("FIX")]
    expected = [
        "FIX  scopes: missing files:write: add them under OAuth & Permissions",
        "FIX  channel C0MID (segment mid_market): not found. Check the id in sla.yaml",
        "FIX  channel #sla-escalations (C0ESCALATE, escalations): archived: unarchive it or "
        "name another channel in sla.yaml",
        "FIX  channel #revops (C0REVOPS, weekly digest): private and the bot is not a member: "
        "type /invite @handoff in #revops",
        "FIX  user @sofia (U0REP3, rep in mid_market): deactivated: replace or remove them",
        "FIX  user @zapier (U0REP4, rep in mid_market): a bot, not a person",
    ]
    assert len(problems) == len(expected), text
    for line, start in zip(problems, expected, strict=True):
        assert line.startswith(start), (line, start)
    assert (
        "ok   channel #sales-smb (C0SMB, segment smb): public, not a member; "
        "posts with chat:write.public" in text
    )
    assert text.splitlines()[-1] == "6 problem(s) to fix before the first lead arrives"


async def test_a_guest_the_sla_names_is_a_problem_to_fix() -> None:
    """users.info shows a guest with `is_restricted` (and `is_ultra_restricted` for a
    single-channel guest, https://api.slack.com/types/user); Handoff gives guests no role
    whatever sla.yaml lists, so a guest rep would never claim a lead: the doctor says so."""
    sim = await local_slack()
    sim.make_guest("U0REP2")
    sim.make_guest("U0MGR1", single_channel=True)
    try:
        code, text = await run_doctor(sim)
    finally:
        await sim.stop()
    assert code == 1, text
    problems = [line for line in text.splitlines() if line.startswith("FIX")]
    assert len(problems) == 2, text
    assert problems[0].startswith("FIX  user @tom (U0REP2, rep in enterprise): a multi-channel")
    assert problems[1].startswith(
        "FIX  user @grace (U0MGR1, manager, compliance alert): a single-channel"
    )
    for line in problems:
        assert "guest" in line and "full member" in line, line


async def test_a_timezone_without_daylight_saving_is_a_warning_that_passes(
    tmp_path: Path,
) -> None:
    """`timezone: EST` is valid (`handoff check` passes it with a warning): the doctor shows the
    same warning, in the same words, as a `WARN` line, and the workspace still passes."""
    text = (ROOT / "sla.yaml").read_text(encoding="utf-8")
    sla_file = tmp_path / "sla.yaml"
    sla_file.write_text(text.replace("timezone: Australia/Sydney", "timezone: EST"))
    sim = await local_slack()
    try:
        code, out = await run_doctor(sim, sla_file=sla_file)
    finally:
        await sim.stop()
    assert code == 0, out
    lines = out.splitlines()
    assert [line for line in lines if not line.startswith("ok   ")] == [
        f"checking the workspace of SLACK_BOT_TOKEN against {sla_file}",
        f"WARN {zone_warning('timezone', 'EST')}",
        "all 16 checks passed, 1 warning: ready for the first lead",
    ]


def routed_sla(folder: Path) -> Path:
    """The example SLA with every routing role: 5,000 named accounts (a CSV) among its eight
    people, northwind.example owned by U0REP7 (a new smb rep the workspace lacks), a partner
    manager, a fallback owner and a viewer."""
    sla = yaml.safe_load((ROOT / "sla.yaml").read_text())
    sla["segments"][2]["reps"].append("U0REP7")
    sla |= {
        "viewers": ["U0OUTSIDER"],
        "named_accounts": {"northwind.example": "U0REP7"},
        "named_accounts_file": "accounts.csv",
        "partner": {"manager": "U0MGR2"},
        "fallback_owner": "U0REP5",
    }
    owners = ["U0REP1", "U0REP2", "U0REP3", "U0REP4", "U0REP5", "U0REP6", "U0MGR1", "U0MGR2"]
    rows = [f"acct{n}.example,{owners[n % len(owners)]}" for n in range(5000)]
    (folder / "accounts.csv").write_text("domain,owner\n" + "\n".join(rows) + "\n")
    (folder / "sla.yaml").write_text(yaml.safe_dump(sla, allow_unicode=True))
    return folder / "sla.yaml"


async def test_named_account_owners_and_routing_roles_are_checked_once_each(
    tmp_path: Path,
) -> None:
    sim = await local_slack()
    sim.deactivate_user("U0REP5")
    try:
        code, text = await run_doctor(sim, sla_file=routed_sla(tmp_path))
    finally:
        await sim.stop()
    assert code == 1, text
    problems = [line for line in text.splitlines() if line.startswith("FIX")]
    assert problems == [
        "FIX  user @aisha (U0REP5, rep in smb, named accounts acct4.example, acct12.example, "
        "acct20.example and 622 more, fallback owner): deactivated: replace or remove them in "
        "sla.yaml",
        "FIX  user U0REP7 (rep in smb, named account northwind.example): not found in this "
        "workspace: put their member ID in sla.yaml (profile → ⋮ → Copy member ID)",
    ], text
    lines = text.splitlines()
    assert (
        "ok   user @raj (U0MGR2, manager, named accounts acct7.example, acct15.example, "
        "acct23.example and 622 more, partner manager): active"
    ) in lines
    assert "ok   user @casey (U0OUTSIDER, viewer): active" in lines
    # 5,001 named accounts among nine owners, ten people: one users.info each.
    looked_up = [call.args["user"] for call in sim.calls if call.method == "users.info"]
    assert len(looked_up) == len(set(looked_up)) == 10


async def doctor_on_salesforce(
    org: SalesforceFake, status: dict[str, str], folder: Path
) -> tuple[int, list[str]]:
    """`handoff doctor` with the example SLA and a Salesforce `crm:` section mapping `status`,
    against `org` over real HTTPS; its exit code and the CRM's lines."""
    sla = yaml.safe_load((ROOT / "sla.yaml").read_text())
    sla["crm"] = {"kind": "salesforce", "status": status}
    (folder / "sla.yaml").write_text(yaml.safe_dump(sla, allow_unicode=True))
    env = {"SALESFORCE_INSTANCE_URL": org.instance_url, "SALESFORCE_ACCESS_TOKEN": org.token}
    sim = await local_slack()
    try:
        code, text = await run_doctor(sim, sla_file=folder / "sla.yaml", env=env)
    finally:
        await sim.stop()
    return code, [line for line in text.splitlines() if "crm (salesforce)" in line]


@pytest.fixture
async def org(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SalesforceFake]:
    fake = await SalesforceFake().start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_file)  # what `serve` trusts, too
    yield fake
    await fake.stop()


async def test_doctor_names_mapped_lead_statuses_the_org_lacks_or_that_are_converted(
    org: SalesforceFake, tmp_path: Path
) -> None:
    """Salesforce's LeadStatus object lists the org's Lead Status values, `IsConverted` true
    for those lead conversion sets (Object Reference, LeadStatus). A plain update converts
    nothing, so a mapped converted status is a problem to fix, as is one the org lacks."""
    org.lead_statuses.append(LeadStatus("Qualified"))

    code, lines = await doctor_on_salesforce(org, {"sql": "Qualified"}, tmp_path)
    assert code == 0, lines
    assert lines == ["ok   crm (salesforce): takes Handoff's writes"]

    code, lines = await doctor_on_salesforce(
        org, {"sql": "Qualified", "reject": "Closed - Disqualified"}, tmp_path
    )
    assert code == 1, lines
    assert lines == [
        "FIX  crm (salesforce): Salesforce's Lead Status has no value 'Closed - Disqualified' "
        "(crm.status.reject), which Handoff would write: add it to the Lead Status picklist, "
        "or map crm.status.reject to one of 'Open - Not Contacted', "
        "'Working - Contacted', 'Closed - Not Converted', 'Qualified'"
    ]

    # Handoff's default maps sql to Closed - Converted, which a fresh org flags converted.
    code, lines = await doctor_on_salesforce(org, {}, tmp_path)
    assert code == 1, lines
    assert lines == [
        "FIX  crm (salesforce): crm.status.sql (Handoff's default) is 'Closed - Converted', a "
        "converted Lead Status: Salesforce sets it when it converts a Lead, and Handoff's "
        "plain update converts nothing. Map crm.status.sql to a status that is not converted "
        "(one of 'Open - Not Contacted', 'Working - Contacted', 'Closed - Not Converted', "
        "'Qualified'), and leave conversion to Salesforce (a rep, or your Flow)"
    ]
    asked = [call.query for call in org.calls if call.query and "LeadStatus" in call.query]
    assert asked == ["SELECT ApiName, MasterLabel, IsConverted FROM LeadStatus"] * 3


async def test_a_refused_token_is_the_one_problem() -> None:
    sim = await local_slack()
    try:
        code, text = await run_doctor(sim, token="not-a-token")
    finally:
        await sim.stop()
    assert code == 1
    assert "FIX  token: Slack refused SLACK_BOT_TOKEN (invalid_auth)" in text
    assert "channel" not in text


async def test_slack_out_of_reach_is_one_line() -> None:
    sim = await local_slack()
    await sim.stop()  # nothing listens on its port now
    code, text = await run_doctor(sim)
    assert code == 1
    assert f"FIX  Slack: cannot reach {sim.api_url}" in text, text
    assert text.splitlines()[-1] == "1 problem(s) to fix before the first lead arrives"


async def test_a_slack_api_url_that_is_not_slacks_is_named_not_taken_for_a_refused_token() -> None:
    """SLACK_API_URL points at a web server that is not Slack's Web API (here the simulator
    without its /api/ path: a plain-text 404). Slack refused nothing, so the doctor names the
    URL and what answered, not the token (before: "Slack refused SLACK_BOT_TOKEN (None): copy
    the Bot User OAuth Token", sending the operator after a token that is fine)."""
    sim = await local_slack()
    wrong = sim.api_url.removesuffix("api/")
    try:
        code, text = await run_doctor(sim, env={"SLACK_API_URL": wrong})
    finally:
        await sim.stop()
    assert code == 1
    assert "SLACK_BOT_TOKEN" not in text.split("\n", 1)[1], text
    assert f"FIX  Slack: {wrong} is not Slack's Web API (HTTP 404" in text, text
    assert "check SLACK_API_URL" in text, text
    assert text.splitlines()[-1] == "1 problem(s) to fix before the first lead arrives"


async def test_handoff_doctor_as_a_person_runs_it() -> None:
    sim = await local_slack()
    break_workspace(sim)
    env = clean_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=sim.api_url,
        HANDOFF_SLA_FILE=str(ROOT / "sla.yaml"),
    )
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "doctor",
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
    finally:
        await sim.stop()
    assert process.returncode == 1, err.decode()
    text = out.decode()
    assert "FIX  channel C0MID (segment mid_market): not found" in text
    assert "Traceback" not in err.decode()


def test_doctor_without_a_token_or_with_a_broken_sla_file_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    result = run("doctor", env=clean_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("handoff: SLACK_BOT_TOKEN is not set"), result.stderr
    assert len(result.stderr.splitlines()) == 1
    (tmp_path / "sla.yaml").write_text("timezone: [\n")
    result = run("doctor", env=clean_env(SLACK_BOT_TOKEN="xoxb-1"), cwd=tmp_path)
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr and "Traceback" not in result.stderr


async def test_a_proxy_refusing_the_way_to_slack_is_named_not_slack_api_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTPS_PROXY's proxy refuses to open the tunnel to Slack (its 407): the doctor's one FIX
    line says the proxy refused and what to do (credentials in HTTPS_PROXY; slack.com allowed),
    without the password, not "check SLACK_API_URL", which was right all along."""

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n"
            b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://handoff:pr0xy-s3cret@127.0.0.1:{port}")
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": "https://slack.com/api/",
            "HANDOFF_SLA_FILE": str(ROOT / "sla.yaml"),
        }
    )
    out = io.StringIO()
    try:
        code = await doctor(settings, out)
    finally:
        server.close()
        await server.wait_closed()
    text = out.getvalue()
    assert code == 1
    (line,) = [line for line in text.splitlines() if "Slack" in line and "FIX" in line]
    assert "the proxy refused the way to https://slack.com/api/" in line, line
    assert "407" in line and "HTTPS_PROXY" in line and "SLACK_API_URL" not in line, line
    assert "pr0xy-s3cret" not in text
