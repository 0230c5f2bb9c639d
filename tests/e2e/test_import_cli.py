"""`handoff import` as an operator runs it: its exit code, its errors, the zone of its times."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import OperationalError

from bot.cli.main import _import
from bot.domain.lead import LeadView
from bot.domain.policy import zone_warning
from bot.settings import ConfigError, Settings
from storage import db
from storage.repository import Store
from tests.conftest import ROOT
from tests.e2e.test_cli import HANDOFF, clean_env, run, sigint_by_default

HUBSPOT = ROOT / "tests" / "fixtures" / "hubspot_export.csv"


def env_for(tmp_path: Path) -> dict[str, str]:
    return clean_env(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'h.db'}",
        HANDOFF_SLA_FILE=str(ROOT / "sla.yaml"),  # timezone: Australia/Sydney
    )


async def stored_lead(tmp_path: Path, external_id: str) -> LeadView:
    """The lead an import stored, read back from its database."""
    database = db.Database(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    try:
        lead = await Store(database).by_external_id(external_id)
    finally:
        await database.dispose()
    assert lead is not None, external_id
    return lead


def sydney_minutes_ago(minutes: int) -> str:
    """A time as HubSpot writes it for an account in Sydney: local, with no zone."""
    local = datetime.now(ZoneInfo("Australia/Sydney")) - timedelta(minutes=minutes)
    return local.strftime("%Y-%m-%d %H:%M")


def test_import_exits_1_when_a_row_was_refused_and_0_when_every_row_was_stored(
    tmp_path: Path,
) -> None:
    env = env_for(tmp_path)
    refused = run("import", str(HUBSPOT), "--no-progress", env=env)  # its line 5: a bad email
    assert refused.returncode == 1, refused.stderr
    assert "1 row with errors:" in refused.stdout
    good = tmp_path / "good.csv"
    good.write_text("Email,Company Name,Job Title\nnew@acme.com,Acme,CEO\n")
    stored = run("import", str(good), "--no-progress", env=env)
    assert stored.returncode == 0, stored.stdout + stored.stderr
    known = run("import", str(good), "--no-progress", env=env)
    assert known.returncode == 0, known.stdout + known.stderr
    assert "1 already known (same external id), no errors." in known.stdout


def test_import_splits_new_leads_into_mqls_and_nurture(tmp_path: Path) -> None:
    result = run("import", str(HUBSPOT), "--no-progress", env=env_for(tmp_path))
    line = result.stdout.splitlines()[1]
    assert line.startswith("  7 new leads: "), result.stdout
    posted, nurtured = (int(part.split()[0]) for part in line.split(": ", 1)[1].split(", "))
    assert posted + nurtured == 7 and posted > 0 and nurtured > 0, line
    assert line.endswith(" kept in nurture (below the MQL definition)")


def test_import_file_errors_name_the_file_once(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    missing = run("import", str(tmp_path / "nonexist.csv"), "--no-progress", env=env)
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [f"{tmp_path / 'nonexist.csv'}: no such file."]
    no_email = tmp_path / "b_noemail.csv"
    no_email.write_text("Name,Company\nJane,Acme\n")
    refused = run("import", str(no_email), "--no-progress", env=env)
    assert refused.returncode == 1
    assert refused.stderr.startswith("b_noemail.csv has no email column"), refused.stderr
    assert refused.stderr.count("b_noemail.csv") == 1


def test_import_reads_times_without_a_zone_in_the_slas_zone(tmp_path: Path) -> None:
    """Read as UTC, a Sydney lead created 10 minutes ago was 'in the future' and refused."""
    path = tmp_path / "recent.csv"
    path.write_text(
        "Record ID,Email,Company Name,Job Title,Create Date\n"
        f"1,recent@acme.com,Acme,CEO,{sydney_minutes_ago(10)}\n"
    )
    result = run("import", str(path), "--no-progress", env=env_for(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "must not be in the future" not in result.stdout
    assert "Times without a time zone were read in Australia/Sydney." in result.stdout


async def test_import_timezone_names_the_zone_of_times_without_one(tmp_path: Path) -> None:
    settings = Settings.from_env(env_for(tmp_path))
    path = tmp_path / "recent.csv"
    path.write_text(f"Record ID,Email,Create Date\n1,a@acme.com,{sydney_minutes_ago(10)}\n")
    # Sydney's wall clock read as UTC is hours ahead: refused, so the zone was the one named.
    assert await _import(settings, str(path), False, "UTC") == 1
    assert await _import(settings, str(path), False, "Australia/Sydney") == 0


async def test_import_timezone_without_daylight_saving_is_read_and_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--timezone EST` is UTC-05:00 all year (the tz database's legacy name): valid, so the
    rows are read in it, with the one line `handoff check` gives the SLA's `timezone: EST`."""
    settings = Settings.from_env(env_for(tmp_path))
    path = tmp_path / "recent.csv"
    path.write_text("Record ID,Email\n1,a@acme.com\n")
    assert await _import(settings, str(path), False, "EST") == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "EST" in line]
    assert warned == [f"handoff: warning: {zone_warning('--timezone', 'EST')}"]
    assert "America/New_York" in warned[0]


async def test_import_with_an_unknown_timezone_is_one_configuration_error(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env(env_for(tmp_path))
    with pytest.raises(ConfigError) as refused:
        await _import(settings, str(HUBSPOT), False, "Mars/Olympus")
    assert str(refused.value) == (
        "--timezone 'Mars/Olympus' is not a time zone (an IANA name like Australia/Sydney or UTC)"
    )
    assert not (tmp_path / "h.db").exists()  # refused before the database was touched


async def test_a_salesforce_data_loader_export_keeps_employees_source_date_and_postcode(
    tmp_path: Path,
) -> None:
    """Data Loader and the weekly Data Export name columns by field name (NumberOfEmployees,
    LeadSource, CreatedDate): ignored, a 5,000-person company went to smb, its clock from now."""
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    path = tmp_path / "Lead.csv"
    path.write_text(
        "Id,FirstName,LastName,Title,Company,Email,MobilePhone,NumberOfEmployees,"
        "LeadSource,CreatedDate,PostalCode,Country\n"
        "00Q5g00000AbCdEEA1,Ann,Lee,VP Sales,Big Co,ann@bigco.com,+61 400 000 000,5000,"
        f"Web,{created:%Y-%m-%dT%H:%M:%S}.000Z,2000,Australia\n"
    )
    result = run("import", str(path), "--no-progress", env=env_for(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ignored columns" not in result.stdout, result.stdout
    assert "(Salesforce export)" in result.stdout.splitlines()[0]
    lead = await stored_lead(tmp_path, "00Q5g00000AbCdEEA1")
    assert lead.segment == "enterprise" and lead.company["employees"] == 5000
    assert lead.received_at == created
    assert lead.source == "web" and lead.company["postcode"] == "2000"
    assert lead.phone == "+61 400 000 000"


def test_a_salesforce_reports_footer_is_not_read_as_rows(tmp_path: Path) -> None:
    """A report exported from Salesforce ends with its totals, copyright and who generated it:
    each of those lines was a row without an email, and a clean export exited 1."""
    path = tmp_path / "report1700000000000.csv"
    path.write_text(
        (ROOT / "tests" / "fixtures" / "salesforce_export.csv").read_text() + "\n\n"
        '"Grand Totals (7 records)"\n'
        "\n"
        '"Open leads - AU"\n'
        '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n'
        '"Confidential Information - Do Not Distribute"\n'
        '"Generated By:  Rita Gomez  11/22/2026 9:30 AM"\n'
        '"Acme Pty Ltd"\n'
    )
    result = run("import", str(path), "--no-progress", env=env_for(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith(": 7 rows"), result.stdout
    assert lines[1].startswith("  7 new leads: "), result.stdout
    assert "no errors." in lines[2], result.stdout
    assert "Not read: the report's footer from line 11 (Grand Totals (7 records), …)." in lines


def test_a_row_repeating_an_earlier_rows_id_is_named_not_counted_as_already_known(
    tmp_path: Path,
) -> None:
    """Two rows of one file with one Record ID: the second was counted "already known (same
    external id)", as if Handoff had the lead before, and its differences went unseen."""
    path = tmp_path / "merged_exports.csv"
    path.write_text(
        "Record ID,Email,Company Name,Job Title\n"
        "501,ann@acme.com,Acme,CEO\n"
        "502,bob@beta.io,Beta,CTO\n"
        "501,carol@gamma.io,Gamma,CFO\n"
    )
    env = env_for(tmp_path)
    result = run("import", str(path), "--no-progress", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("  2 new leads"), result.stdout
    assert lines[2] == "  0 already known (same external id), no errors.", result.stdout
    assert lines[3] == "  1 not imported, an earlier row has its id:"
    assert lines[4] == "  line 4: external_id 501 is line 2's", result.stdout
    again = run("import", str(path), "--no-progress", env=env).stdout.splitlines()
    assert again[2] == "  2 already known (same external id), no errors.", again
    assert again[4] == "  line 4: external_id 501 is line 2's", again


async def test_a_cell_with_a_line_break_is_read_as_one_line_not_refused(tmp_path: Path) -> None:
    """RFC 4180 lets a quoted cell hold a line break (Excel writes one for Alt+Enter). In a
    column the import reads, it was refused as "a quote is never closed", and its next line
    was read as a row of its own: a lead from `Holdings",dana@acme.com,...` with company
    `Holdings"` was stored and posted."""
    path = tmp_path / "excel.csv"
    path.write_bytes(
        b"Company Name,Email,Job Title\r\n"
        b'"Acme\nHoldings",dana@acme.com,VP Sales\r\n'
        b'Beta,eve@beta.io,"Head of Sales\nEMEA"\r\n'
    )
    result = run("import", str(path), "--no-progress", env=env_for(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].endswith(": 2 rows"), result.stdout
    assert "2 new leads" in result.stdout and "no errors." in result.stdout, result.stdout
    dana = await stored_lead(tmp_path, "dana@acme.com")
    assert dana.company["name"] == "Acme Holdings"
    assert (await stored_lead(tmp_path, "eve@beta.io")).title == "Head of Sales EMEA"


async def test_an_import_larger_than_a_batch_stores_every_row_once_in_the_files_order(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The file is read in two passes and its rows stored a batch at a time, each batch's
    leads together in the store's group commit: every row is stored once, in the file's
    order, a repeated id is named, and a bad last row is refused alone, as before."""
    from bot.cli import importer

    monkeypatch.setattr(importer, "BATCH", 16)
    lines = [f"{n},lead{n}@acme{n}.com,Acme {n},VP Marketing" for n in range(100)]
    lines.insert(10, "5,again@acme.com,Acme,CEO")  # line 12, in the batch of line 7
    path = tmp_path / "year.csv"
    path.write_text(
        "Record ID,Email,Company Name,Job Title\n"
        + "\n".join(lines)
        + "\n100,not-an-email,Acme,CEO\n"
    )
    settings = Settings.from_env(
        env_for(tmp_path)
        | {"DATABASE_URL": database_url, "HANDOFF_SLA_FILE": str(ROOT / "sla.yaml")}
    )
    assert await _import(settings, str(path), False) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Imported year.csv (HubSpot export): 102 rows", out
    assert out[1].startswith("  100 new leads: "), out
    assert out[2:6] == [
        "  0 already known (same external id), 1 row with errors:",
        "  line 103: email: must be an email address like jane@example.com",
        "  1 not imported, an earlier row has its id:",
        "  line 12: external_id 5 is line 7's",
    ]
    database = db.Database(database_url)
    try:
        store = Store(database)
        stored = [await store.by_external_id(str(n)) for n in range(101)]
    finally:
        await database.dispose()
    assert stored[100] is None
    leads = [lead for lead in stored[:100] if lead is not None]
    assert [lead.email for lead in leads] == [f"lead{n}@acme{n}.com" for n in range(100)]
    assert [lead.id for lead in leads] == sorted(lead.id for lead in leads)  # the file's order


async def test_an_import_routes_past_reps_away_and_deactivated_as_serve_does(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Imported leads take the rotation's turns as `serve`'s intake does: a rep away (time away
    set) or deactivated in Slack gets none of them. Before, the import routed as if nobody
    were away, so half of a year's enterprise leads were suggested to a rep on leave."""
    from storage.away import AwayStore
    from storage.repository import Member

    settings = Settings.from_env(
        env_for(tmp_path)
        | {"DATABASE_URL": database_url, "HANDOFF_SLA_FILE": str(ROOT / "sla.yaml")}
    )
    await db.upgrade(db.Database(database_url).engine)
    database = db.Database(database_url)
    now = datetime.now(UTC)
    try:
        await AwayStore(database).set("U0REP1", now + timedelta(days=30), "leave", "U0MGR1", now)
        path = tmp_path / "enterprise.csv"
        demo = f"Demo request form,{sydney_minutes_ago(30)}"  # qualifies on its own: an MQL
        rows = [f"{n},lead{n}@big{n}.com,Big {n},VP Marketing,5000,{demo}" for n in range(6)]
        path.write_text(
            "Record ID,Email,Company Name,Job Title,Number of Employees,Recent Conversion,"
            "Recent Conversion Date\n" + "\n".join(rows) + "\n"
        )
        assert await _import(settings, str(path), False) == 0, capsys.readouterr().out
        store = Store(database)
        owners = [(await store.by_external_id(str(n))) for n in range(6)]
        assert [lead.suggested_owner for lead in owners if lead] == ["U0REP2"] * 6
        await AwayStore(database).clear("U0REP1", now)
        await store.save_people({"U0REP2": Member(deactivated=True)}, now)
        path.write_text(
            "Record ID,Email,Company Name,Job Title,Number of Employees,Recent Conversion,"
            "Recent Conversion Date\n"
            + "\n".join(f"{n},l{n}@huge{n}.com,Huge {n},CMO,5000,{demo}" for n in range(6, 10))
            + "\n"
        )
        assert await _import(settings, str(path), False) == 0, capsys.readouterr().out
        owners = [(await store.by_external_id(str(n))) for n in range(6, 10)]
        assert [lead.suggested_owner for lead in owners if lead] == ["U0REP1"] * 4
    finally:
        await database.dispose()


def spool_env(tmp_path: Path, name: str) -> tuple[dict[str, str], Path]:
    """An environment whose database is `name`.db and whose temporary files go to a folder of
    their own, to see that the spooled standard input is gone afterwards."""
    spool = tmp_path / f"{name}-tmp"
    spool.mkdir()
    env = env_for(tmp_path) | {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}",
        "TMPDIR": str(spool),
    }
    return env, spool


def run_with_stdin(
    data: bytes, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [*HANDOFF, "import", *args, "--no-progress"],
        input=data,
        capture_output=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    return subprocess.CompletedProcess(
        completed.args, completed.returncode, completed.stdout.decode(), completed.stderr.decode()
    )


async def test_import_dash_reads_the_export_from_standard_input(tmp_path: Path) -> None:
    """`curl … | handoff import -` (POSIX utility syntax guideline 13: "-" is standard input):
    "-" was taken for a file name, `-: no such file.`, and nothing was imported."""
    env, spool = spool_env(tmp_path, "h")
    piped = run_with_stdin(HUBSPOT.read_bytes(), "-", env=env)
    by_file = run("import", str(HUBSPOT), "--no-progress", env=spool_env(tmp_path, "file")[0])
    assert piped.returncode == by_file.returncode == 1, piped.stderr  # its line 5: a bad email
    lines, expected = piped.stdout.splitlines(), by_file.stdout.splitlines()
    assert lines[0] == "Imported standard input (HubSpot export): 9 rows", piped.stdout
    assert lines[1:] == expected[1:], piped.stdout  # the counts, line 5's error, the notes
    assert "  line 5: email: must be an email address like jane@example.com" in lines
    lead = await stored_lead(tmp_path, "10234")  # stored from the piped rows
    assert lead.email == "olivia.chen@brightwave.io" and lead.company["employees"] == 1450
    assert list(spool.iterdir()) == []  # the spooled copy is deleted


def test_import_dash_with_an_empty_or_unreadable_standard_input_is_one_error_line(
    tmp_path: Path,
) -> None:
    """As an empty or unreadable file: one line naming it ("standard input"), exit code 1."""
    env, spool = spool_env(tmp_path, "h")
    empty = run_with_stdin(b"", "-", env=env)
    assert empty.returncode == 1, empty.stdout + empty.stderr
    assert empty.stderr.splitlines() == [
        "standard input is empty: the first line must name the columns."
    ]
    no_email = run_with_stdin(b"Name,Company\nJane,Acme\n", "-", env=env)
    assert no_email.returncode == 1
    assert no_email.stderr.startswith("standard input has no email column"), no_email.stderr
    assert list(spool.iterdir()) == []


def test_import_help_says_dash_reads_standard_input() -> None:
    help_text = " ".join(run("import", "--help").stdout.split())
    assert '"-" reads standard input' in help_text, help_text


def import_from_stdin(env: dict[str, str], stdin: Any = subprocess.PIPE) -> subprocess.Popen[bytes]:
    with sigint_by_default():  # the tests send it SIGINT too
        return subprocess.Popen(
            [*HANDOFF, "import", "-", "--no-progress"],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=["SIGTERM", "SIGHUP", "SIGINT"]
)
def test_import_dash_stopped_by_sigterm_or_sighup_while_reading_leaves_no_copy(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """`kill`, systemd, Kubernetes and `timeout` send SIGTERM, a closed terminal SIGHUP: their
    default action ended the process at once, and the partial copy of the export (names,
    emails) stayed in $TMPDIR. Now it is deleted, and the exit status is 128 + the signal's
    number, as a shell reports a process a signal ended."""
    env, spool = spool_env(tmp_path, "h")
    process = import_from_stdin(env)
    assert process.stdin is not None
    try:
        process.stdin.write(b"Email,Company Name\n" + b"a@acme.com,Acme\n" * 1000)
        process.stdin.flush()
        deadline = time.monotonic() + 60
        # Reading: the copy is there. Only the spool's own folder counts: Python's `tempfile`
        # first checks that TMPDIR is writable with a file it creates and deletes at once.
        while not any(path.is_file() for path in spool.glob("handoff-import-*/*")):
            assert process.poll() is None, process.communicate()  # it is reading
            assert time.monotonic() < deadline, "standard input was never spooled"
            time.sleep(0.05)
        process.send_signal(signum)
        process.wait(timeout=60)
    finally:
        process.kill()
        _, err = process.communicate()
    assert list(spool.iterdir()) == []  # the partial copy is deleted
    assert process.returncode == 128 + signum, err.decode()
    assert err.decode().splitlines() == [
        f"handoff: import stopped by {signum.name} before storing any row: nothing was stored."
    ]
    assert not (tmp_path / "h.db").exists()  # nothing was imported


async def stored_count(tmp_path: Path, name: str) -> int:
    database = db.Database(f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}")
    try:
        async with database.engine.connect() as connection:
            return int((await connection.exec_driver_sql("SELECT count(*) FROM leads")).scalar())
    except OperationalError:  # the import has not created its tables yet
        return 0
    finally:
        await database.dispose()


async def test_an_import_stopped_by_sigterm_keeps_what_it_stored_and_running_it_again_ends_it(
    tmp_path: Path,
) -> None:
    """SIGTERM while rows are being stored: the batch under way is finished, then the import
    stops with one line saying how many leads it stored (they stay) and exit status 143; the
    same import run again skips them as already known (their external id) and stores the rest."""
    rows = 4 * 500  # four batches (`importer.BATCH`)
    export = b"Record ID,Email,Company Name\n" + b"".join(
        b"%d,p%d@acme.example,Acme %d\n" % (n, n, n) for n in range(rows)
    )
    env, spool = spool_env(tmp_path, "h")
    (tmp_path / "leads.csv").write_bytes(export)
    with (tmp_path / "leads.csv").open("rb") as stdin:  # `handoff import - < leads.csv`
        process = import_from_stdin(env, stdin)
    try:
        deadline = time.monotonic() + 120
        while await stored_count(tmp_path, "h") == 0:  # the first batch is being stored
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no lead was ever stored"
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        process.kill()
        out, err = process.communicate()
    assert list(spool.iterdir()) == []  # the copy is deleted
    assert process.returncode == 128 + signal.SIGTERM, out.decode() + err.decode()
    stored = await stored_count(tmp_path, "h")
    assert 0 < stored < rows and stored % 500 == 0, stored  # whole batches: none half-counted
    assert err.decode().splitlines() == [
        f"handoff: import stopped by SIGTERM after {stored} of {rows} rows: {stored} new leads "
        "stored, 0 already known; run the same import again to import the rest (rows already "
        "stored are skipped as already known by their external id)."
    ]
    again = run_with_stdin(export, "-", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[1].startswith(f"  {rows - stored} new leads"), again.stdout
    assert f"  {stored} already known (same external id), no errors." in again.stdout
    assert await stored_count(tmp_path, "h") == rows


async def test_a_european_excel_export_imports_its_good_rows_once_and_names_the_bad_ones(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Excel's plain "CSV" on a German Windows: Windows-1252, semicolons, day-first dates,
    `1.200` employees. A Record ID Excel turned into 1,23457E+11 and a row whose cells run past
    the last column are refused with their lines; the others are stored, once."""
    path = tmp_path / "montag.csv"
    path.write_bytes(
        "Record ID;Email;First Name;Last Name;Company Name;Job Title;Number of Employees;"
        "Create Date\r\n"
        "101;jose@alpen.de;José;Müller;Alpenkraft GmbH;Head of Sales;1.200;20.11.2026 09:30\r\n"
        "1,23457E+11;zoe@stern.de;Zoë;Ng;„Stern“ AG;CEO;50;21.11.2026 10:00\r\n"
        "103;eur@geld.de;Eu;Ro;Geld;€ AG;CFO;250;22.11.2026 10:00\r\n"
        "104;ok@gut.de;Ok;Ay;Gut AG;CTO;10;23.11.2026 10:00\r\n".encode("cp1252")
    )
    settings = Settings.from_env(
        env_for(tmp_path)
        | {"DATABASE_URL": database_url, "HANDOFF_SLA_FILE": str(ROOT / "sla.yaml")}
    )
    refused = [
        "  line 3: Record ID (external_id): 1,23457E+11 is a long number as Excel shows it, its"
        " last digits lost: import the CRM's export as downloaded, or open it in Excel with Data"
        " > From Text/CSV with that column set to Text (once Excel has changed a value,"
        " formatting the column does not bring it back)",
        "  line 4: 9 cells, but the first line names 8 columns (past them: 22.11.2026 10:00): a"
        ' cell holding a semicolon must be in quotes, as in "Acme; Inc"',
    ]
    assert await _import(settings, str(path), False) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Imported montag.csv (HubSpot export): 4 rows", out
    assert out[1].startswith("  2 new leads: "), out
    assert out[2:5] == ["  0 already known (same external id), 2 rows with errors:", *refused]
    assert await _import(settings, str(path), False) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1:5] == [
        "  0 new leads",
        "  2 already known (same external id), 2 rows with errors:",
        *refused,
    ]
    database = db.Database(database_url)
    try:
        store = Store(database)
        jose = await store.by_external_id("101")
        missing = [await store.by_external_id(key) for key in ("1,23457E+11", "103")]
        assert await store.by_external_id("104") is not None
    finally:
        await database.dispose()
    assert jose is not None and jose.name == "José Müller"
    assert jose.company == {"name": "Alpenkraft GmbH", "employees": 1200}
    assert jose.received_at == datetime(2026, 11, 19, 22, 30, tzinfo=UTC)  # 09:30 in Sydney
    assert missing == [None, None]


async def test_an_id_excel_made_a_date_is_refused_and_the_fixed_file_stores_each_lead_once(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A team's CRM ids 3-12 and 12-3, opened in an English Excel and saved, come as 12-Mar and
    3-Dec. Stored so, the CRM's later updates for 3-12 would find no lead and the corrected
    file would store each lead twice: both rows are refused with their lines, the column and
    what to do; the other rows are stored. The corrected file then stores each lead once,
    under the id the CRM sends."""
    mangled = tmp_path / "leads.csv"
    mangled.write_text(
        "Lead ID,Email,Company\r\n"
        "12-Mar,ann@acme.com,Acme\r\n"
        "3-Dec,bob@beta.io,Beta\r\n"
        "lead-2026-001,cy@gamma.io,Gamma\r\n",
        encoding="utf-8",
    )
    settings = Settings.from_env(
        env_for(tmp_path)
        | {"DATABASE_URL": database_url, "HANDOFF_SLA_FILE": str(ROOT / "sla.yaml")}
    )
    fix = (
        "export the file again from the CRM and import it as downloaded; to edit it in Excel "
        "first, format the column as Text before pasting the ids in, or open the CSV with "
        "Data > From Text/CSV with that column set to Text"
    )
    assert await _import(settings, str(mangled), False) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("  1 new lead"), out
    assert out[2:5] == [
        "  0 already known (same external id), 2 rows with errors:",
        f"  line 2: Lead ID (external_id): 12-Mar is a date Excel made of an id like 3-12 or "
        f"12-3: {fix}",
        f"  line 3: Lead ID (external_id): 3-Dec is a date Excel made of an id like 12-3 or "
        f"3-12: {fix}",
    ]
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(
        "Lead ID,Email,Company\r\n"
        "3-12,ann@acme.com,Acme\r\n"
        "12-3,bob@beta.io,Beta\r\n"
        "lead-2026-001,cy@gamma.io,Gamma\r\n",
        encoding="utf-8",
    )
    assert await _import(settings, str(fixed), False) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("  2 new leads"), out
    assert "  1 already known (same external id), no errors." in out, out
    database = db.Database(database_url)
    try:
        store = Store(database)
        found = {key: await store.by_external_id(key) for key in ("3-12", "12-3", "12-Mar")}
    finally:
        await database.dispose()
    assert found["3-12"] is not None and found["3-12"].email == "ann@acme.com"
    assert found["12-3"] is not None and found["12-3"].email == "bob@beta.io"
    assert found["12-Mar"] is None
