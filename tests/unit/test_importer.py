"""`handoff import`: CRM spreadsheet exports become intake payloads, bad rows are reported."""

from __future__ import annotations

import asyncio
import io
import signal
from pathlib import Path
from typing import Any

import pytest

from bot.cli.importer import (
    BATCH,
    ImportFileError,
    ImportSummary,
    Status,
    Stop,
    Stopped,
    conversion_kind,
    domain_of,
    import_csv,
    parse_employees,
    parse_score,
    parse_timestamp,
    read_rows,
    read_sheet,
    spooled,
    stopping,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HUBSPOT = FIXTURES / "hubspot_export.csv"
SALESFORCE = FIXTURES / "salesforce_export.csv"


class FakeIntake:
    """Intake with a dict keyed by external_id: the second arrival of an id is a duplicate; a
    new lead scored below `mql_score` is kept in nurture, others are posted as MQLs."""

    def __init__(self, refuse: dict[str, list[str]] | None = None, mql_score: int = 0) -> None:
        self.leads: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.refuse = refuse or {}
        self.mql_score = mql_score

    async def __call__(self, payload: dict[str, Any]) -> tuple[Status, list[str]]:
        self.calls += 1
        key = payload["external_id"]
        if key in self.refuse:
            return "invalid", self.refuse[key]
        if key in self.leads:
            return "duplicate", []
        self.leads[key] = payload
        return ("mql" if payload.get("score", 0) >= self.mql_score else "nurture"), []


def write(tmp_path: Path, text: str, name: str = "leads.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def by_line(path: Path) -> dict[int, dict[str, Any]]:
    rows, _ = read_rows(path)
    return {row.line: row.payload for row in rows}


# --- mapping the fixtures --------------------------------------------------------------------


def test_hubspot_export_is_detected_and_unknown_columns_are_listed() -> None:
    sheet = read_sheet(HUBSPOT)
    assert sheet.format == "hubspot"
    assert sheet.ignored_columns == ["Lifecycle Stage", "Contact owner"]
    assert not sheet.email_as_id
    assert [row.line for row in sheet.rows] == list(range(2, 11))


def test_hubspot_row_maps_to_the_whole_payload() -> None:
    assert by_line(HUBSPOT)[2] == {
        "external_id": "10234",
        "email": "olivia.chen@brightwave.io",
        "name": "Olivia Chen",
        "title": "VP of Marketing",
        "phone": "+61 2 9012 3344",
        "company": {
            "name": "Brightwave Analytics",
            "domain": "brightwave.io",
            "employees": 1450,
            "industry": "Computer Software",
            "country": "AU",  # "Australia": the SLA's rules name countries by ISO code
        },
        "source": "paid_search",
        "campaign": "google",
        "score": 85,
        "received_at": "2026-11-16T09:30:00Z",
        "engagement": [
            {"type": "demo_request", "title": "Demo request form", "at": "2026-11-16T09:28:00Z"}
        ],
    }


def test_hubspot_empty_cells_are_left_out_and_quoted_commas_kept() -> None:
    priya = by_line(HUBSPOT)[4]
    assert priya["company"]["name"] == "Tidewater Health, Inc."
    assert priya["company"]["domain"] == "tidewaterhealth.com"  # http:// and /careers dropped
    assert priya["company"]["employees"] == 3200
    assert "score" not in priya and "campaign" not in priya
    daniel = by_line(HUBSPOT)[9]
    assert "engagement" not in daniel and "score" not in daniel
    assert "phone" not in by_line(HUBSPOT)[8]


def test_salesforce_export_maps_to_payloads() -> None:
    sheet = read_sheet(SALESFORCE)
    assert sheet.format == "salesforce"
    assert sheet.ignored_columns == ["Lead Status", "Lead Owner"]
    rows = {row.line: row.payload for row in sheet.rows}
    assert len(rows) == 7
    james = rows[2]
    assert james["external_id"] == "00Q5g00000JkLmNEA3"
    assert james["name"] == "James O'Neill"
    assert james["title"] == "Head of Sales Enablement"
    assert james["company"] == {
        "name": "Harbourline Freight",
        "domain": "harbourline.com.au",
        "employees": 850,
        "industry": "Transportation/Trucking/Railroad",
        "country": "AU",
    }
    assert james["source"] == "webinar"
    assert james["campaign"] == "Q4 SLA Webinar Series"
    assert james["score"] == 78
    assert james["received_at"] == "2026-11-18T09:30:00Z"
    sophie = rows[3]
    assert sophie["company"]["employees"] == 1000  # "1000-5000": the lower bound
    assert sophie["received_at"] == "2026-11-19T14:05:00Z"  # 2:05 PM
    assert sophie["source"] == "demo_request"
    carlos = rows[6]
    assert carlos["company"]["employees"] == 2400
    assert "score" not in carlos
    assert carlos["source"] == "partner_referral"
    assert rows[8]["received_at"] == "2026-11-22T00:05:00Z"  # 12:05 AM
    assert rows[8]["title"] == "Director, Customer Success"
    assert "phone" not in rows[5]


# --- importing --------------------------------------------------------------------------------


async def test_hubspot_import_counts_new_duplicate_and_bad_rows() -> None:
    intake = FakeIntake()
    summary = await import_csv(str(HUBSPOT), intake, progress=False)
    assert (summary.total, summary.created, summary.duplicates, summary.invalid) == (9, 7, 0, 1)
    assert summary.errors == ["line 5: email: must be an email address like jane@example.com"]
    assert summary.repeated == ["line 7: external_id 10234 is line 2's"]
    assert intake.calls == 7  # neither the bad row nor the repeated one reached intake
    assert "10237" not in intake.leads
    assert summary.format == "hubspot"


async def test_summary_renders_counts_errors_and_ignored_columns() -> None:
    summary = await import_csv(str(HUBSPOT), FakeIntake(mql_score=70), progress=False)
    assert summary.render().splitlines() == [
        "Imported hubspot_export.csv (HubSpot export): 9 rows",
        "  7 new leads: 3 posted as MQLs, 4 kept in nurture (below the MQL definition)",
        "  0 already known (same external id), 1 row with errors:",
        "  line 5: email: must be an email address like jane@example.com",
        "  1 not imported, an earlier row has its id:",
        "  line 7: external_id 10234 is line 2's",
        "Times without a time zone were read in UTC.",
        "Ignored columns: Lifecycle Stage, Contact owner",
    ]


async def test_salesforce_import_creates_every_row() -> None:
    intake = FakeIntake()
    summary = await import_csv(str(SALESFORCE), intake, progress=False)
    assert (summary.total, summary.created, summary.invalid) == (7, 7, 0)
    assert "no errors." in summary.render()
    assert intake.leads["00Q5g00000JkLmOEA3"]["email"] == "sophie.turner@aldergrove.io"


async def test_bad_cells_are_reported_per_line_and_the_import_goes_on(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Record ID,Email,Company Name,Number of Employees,HubSpot Score,Create Date\n"
        "1,ok@acme.com,Acme,50,70,2026-11-20 09:30\n"
        "2,bad@acme.com,Acme,lots,70,2026-11-20 09:30\n"
        "3,late@acme.com,Acme,50,high,yesterday\n"
        "4,big@acme.com,Acme,50,150,2026-11-20 09:30\n"
        ",noid@acme.com,Acme,50,70,2026-11-20 09:30\n"
        "6,fine@acme.com,Acme,50,70,2026-11-20 09:30\n",
    )
    intake = FakeIntake()
    summary = await import_csv(str(path), intake, progress=False)
    assert summary.errors == [
        "line 3: Number of Employees (company.employees): must be a number like 1200 or a "
        "range like 1000-5000",
        "line 4: HubSpot Score (score): must be a number like 85",
        "line 4: Create Date (received_at): must be a date like 2026-11-20 09:30 or 11/20/2026 "
        "9:30 AM",
        "line 5: HubSpot Score (score): must be at most 100",  # intake's error names it too
        "line 6: Record ID (external_id): is required",
    ]
    assert (summary.total, summary.created, summary.invalid) == (6, 2, 4)
    assert set(intake.leads) == {"1", "6"}


async def test_intake_refusals_are_reported_with_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "Lead ID,Email\nA1,a@x.io\nA2,b@x.io\n")
    intake = FakeIntake(refuse={"A2": ["company.name: is required"]})
    summary = await import_csv(str(path), intake, progress=False)
    assert summary.errors == ["line 3: company.name: is required"]
    assert (summary.created, summary.invalid) == (1, 1)


async def test_blank_rows_are_skipped_but_keep_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "Lead ID,Email\nA1,a@x.io\n\n,,\nA2,not-an-email\n")
    summary = await import_csv(str(path), FakeIntake(), progress=False)
    assert summary.total == 2
    assert summary.errors == ["line 5: email: must be an email address like jane@example.com"]


async def test_rows_without_an_id_column_use_the_email(tmp_path: Path) -> None:
    path = write(tmp_path, "Email,Name\nJane@Example.com,Jane Doe\n,No Email\n")
    intake = FakeIntake()
    summary = await import_csv(str(path), intake, progress=False)
    assert intake.leads["jane@example.com"]["name"] == "Jane Doe"
    assert summary.errors == ["line 3: email: is required"]  # not also external_id
    assert summary.email_as_id
    assert "No id column: each row's email was used as its external id." in summary.render()


async def test_progress_bar_goes_to_a_terminal_only() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet, terminal = io.StringIO(), Terminal()
    await import_csv(str(SALESFORCE), FakeIntake(), out=quiet)
    await import_csv(str(SALESFORCE), FakeIntake(), out=terminal)
    assert quiet.getvalue() == ""
    assert "7/7" in terminal.getvalue()
    silenced = Terminal()
    await import_csv(str(SALESFORCE), FakeIntake(), out=silenced, progress=False)
    assert silenced.getvalue() == ""


# --- file formats ----------------------------------------------------------------------------


def test_utf8_bom_and_semicolons(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\ufeffE-mail;First Name;Last Name;Company;Employees;Created Date\r\n"
        "zoe.muller@alpenkraft.de;Zoë;Müller;Alpenkraft, GmbH;1.200;20.11.2026 09:30\r\n",
    )
    sheet = read_sheet(path)
    assert sheet.ignored_columns == []
    assert sheet.rows[0].payload == {
        "external_id": "zoe.muller@alpenkraft.de",
        "email": "zoe.muller@alpenkraft.de",
        "name": "Zoë Müller",
        "company": {"name": "Alpenkraft, GmbH", "employees": 1200},
        "received_at": "2026-11-20T09:30:00Z",
    }


def test_excel_windows_encoding_and_sep_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "sep=;\nEmail;Full Name\nrene@cafe.fr;René Côté\n", encoding="cp1252")
    rows, _ = read_rows(path)
    assert rows[0].line == 2
    assert rows[0].payload["name"] == "René Côté"


def test_handoff_column_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "external_id,email,company.name,company.employees,segment,score,received_at\n"
        "hs-1,a@b.co,Acme,250,mid_market,61,2026-11-20T20:30:00+11:00\n",
    )
    sheet = read_sheet(path)
    assert sheet.format == "handoff"
    assert sheet.rows[0].payload == {
        "external_id": "hs-1",
        "email": "a@b.co",
        "company": {"name": "Acme", "employees": 250},
        "segment": "mid_market",
        "score": 61,
        "received_at": "2026-11-20T09:30:00Z",
    }


def test_day_first_dates_when_the_file_says_so(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Lead ID,Email,Created Date\nA1,a@x.io,03/11/2026 09:00\nA2,b@x.io,20/11/2026 14:00\n",
    )
    rows = by_line(path)
    assert rows[2]["received_at"] == "2026-11-03T09:00:00Z"  # read day-first like line 3
    assert rows[3]["received_at"] == "2026-11-20T14:00:00Z"


def test_first_and_recent_conversion_become_engagement(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Record ID,Email,First Conversion,First Conversion Date,Recent Conversion,"
        "Recent Conversion Date\n"
        "1,a@x.io,Ebook: SLA template,2026-11-02 08:00,Demo request,2026-11-19 10:00\n"
        "2,b@x.io,Contact us,2026-11-05 08:00,Contact us,2026-11-05 08:00\n",
    )
    rows = by_line(path)
    assert rows[2]["engagement"] == [
        {"type": "content_download", "title": "Ebook: SLA template", "at": "2026-11-02T08:00:00Z"},
        {"type": "demo_request", "title": "Demo request", "at": "2026-11-19T10:00:00Z"},
    ]
    assert rows[3]["engagement"] == [
        {"type": "form", "title": "Contact us", "at": "2026-11-05T08:00:00Z"}
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("people.csv", "Name,Company\nJane,Acme\n", "people.csv has no email column"),
        ("notes.txt", "just some notes\nabout leads\n", "has no email column"),
        ("empty.csv", "", "is empty"),
        ("leads.json", '[{"email": "a@b.co"}]', "looks like JSON, not CSV"),
    ],
)
def test_unusable_files_are_refused_with_one_clear_error(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    with pytest.raises(ImportFileError) as refused:
        read_sheet(write(tmp_path, content, name))
    assert message in refused.value.message


def test_no_email_column_names_what_it_found(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError) as refused:
        read_sheet(write(tmp_path, "Record ID,First Name,Company Name\n1,Jane,Acme\n"))
    assert "found: Record ID, First Name, Company Name" in refused.value.message


async def test_missing_file_and_workbook_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no such file"):
        await import_csv(str(tmp_path / "nope.csv"), FakeIntake(), progress=False)
    workbook = tmp_path / "leads.xlsx"
    workbook.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(ImportFileError, match="Excel workbook"):
        read_sheet(workbook)


# --- cell conversions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20 09:30", "2026-11-20T09:30:00Z"),
        ("2026-11-20T09:30:00Z", "2026-11-20T09:30:00Z"),
        ("2026-11-20T20:30:00+11:00", "2026-11-20T09:30:00Z"),
        ("11/20/2026 9:30 AM", "2026-11-20T09:30:00Z"),
        ("11/20/2026 09:30:15 pm", "2026-11-20T21:30:15Z"),
        ("11/20/2026", "2026-11-20T00:00:00Z"),
        ("2026-11-20 09:30 UTC", "2026-11-20T09:30:00Z"),
        ("Nov 20, 2026 9:30 AM", "2026-11-20T09:30:00Z"),
        ("last tuesday", None),
    ],
)
def test_parse_timestamp(text: str, expected: str | None) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,200", 1200),
        ("1000-5000", 1000),
        ("1,001 - 5,000", 1001),
        ("10,001+", 10001),
        ("1200.0", 1200),
        ("45", 45),
        ("unknown", None),
    ],
)
def test_parse_employees(text: str, expected: int | None) -> None:
    assert parse_employees(text) == expected


def test_parse_score_and_domain() -> None:
    assert parse_score("85.0") == 85
    assert parse_score("72") == 72
    assert parse_score("high") is None
    assert domain_of("https://www.Acme.com:443/about?x=1") == "acme.com"
    assert domain_of("www.acme.co.uk") == "acme.co.uk"
    assert domain_of("acme.io/") == "acme.io"


def test_render_pluralizes_and_caps_the_error_list() -> None:
    summary = ImportSummary(file="x.csv", format="salesforce", total=1, posted=1)
    assert summary.render().splitlines() == [
        "Imported x.csv (Salesforce export): 1 row",
        "  1 new lead: 1 posted as an MQL, 0 kept in nurture (below the MQL definition)",
        "  0 already known (same external id), no errors.",
    ]
    many = ImportSummary(
        file="y.csv",
        total=60,
        invalid=60,
        errors=[f"line {n}: email: is required" for n in range(60)],
    )
    lines = many.render(max_errors=5).splitlines()
    assert lines[2].endswith("60 rows with errors:")
    assert lines[-1] == "  … and 55 more"


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("Demo request form", "demo_request"),
        ("Contact sales", "demo_request"),
        ("Ebook: The one-page SLA", "content_download"),
        ("2026 B2B Pipeline Benchmark report", "content_download"),
        ("Webinar registration - Fixing the MQL handoff", "form"),  # registered, not attended
        ("Contact us", "form"),
        ("Newsletter sign-up", "form"),
    ],
)
def test_a_hubspot_conversion_is_typed_by_its_forms_title(title: str, kind: str) -> None:
    """So the SLA file's intent signals (demo request, content download) score imported
    leads as they score leads sent to `POST /leads`."""
    assert conversion_kind(title) == kind


def test_standard_input_is_imported_from_a_copy_deleted_afterwards() -> None:
    """`-` is standard input, copied to a file (the import reads it twice) that the summary
    names "standard input"; the copy goes when the import ends, also when it is interrupted."""
    with spooled("-", io.BytesIO(HUBSPOT.read_bytes())) as path:
        assert Path(path).read_bytes() == HUBSPOT.read_bytes()
        summary = asyncio.run(import_csv(path, FakeIntake(), progress=False))
    assert summary.render().splitlines()[0] == "Imported standard input (HubSpot export): 9 rows"
    assert not Path(path).exists() and not Path(path).parent.exists()
    with pytest.raises(KeyboardInterrupt), spooled("-", io.BytesIO(b"Email\n")) as path:
        raise KeyboardInterrupt
    assert not Path(path).parent.exists()
    with spooled(str(HUBSPOT)) as path:  # any other name is the file itself
        assert path == str(HUBSPOT)
    assert HUBSPOT.exists()


async def test_sigterm_during_a_batch_lets_it_finish_and_stops_before_the_next(
    tmp_path: Path,
) -> None:
    """The handler (`Stop`) called as the signal module calls it, from inside the first batch's
    intake: the batch is stored and counted, no row of the next reaches intake, and the line
    says exactly what was stored. A second signal stops at once and says so."""
    rows = "".join(f"{n},p{n}@acme.example,Acme\n" for n in range(BATCH * 3))
    path = write(tmp_path, "Record ID,Email,Company Name\n" + rows)
    stop, fake = Stop(), FakeIntake()

    async def intake(payload: dict[str, Any]) -> tuple[Status, list[str]]:
        if fake.calls == 10:
            stop(signal.SIGTERM, None)
        return await fake(payload)

    with pytest.raises(Stopped) as stopped, stop.cancelling():
        await import_csv(str(path), intake, progress=False, stop=stop)
    assert fake.calls == BATCH and stopped.value.signum == signal.SIGTERM
    assert stopped.value.message == (
        f"handoff: import stopped by SIGTERM after {BATCH} of {BATCH * 3} rows: {BATCH} new "
        "leads stored, 0 already known; run the same import again to import the rest (rows "
        "already stored are skipped as already known by their external id)."
    )

    stop, fake = Stop(), FakeIntake()

    async def twice(payload: dict[str, Any]) -> tuple[Status, list[str]]:
        if fake.calls in (BATCH + 10, BATCH + 20):  # during the second batch
            stop(signal.SIGHUP, None)
        return await fake(payload)

    with pytest.raises(Stopped) as stopped, stop.cancelling():
        await import_csv(str(path), twice, progress=False, stop=stop)
    assert fake.calls <= 2 * BATCH and stopped.value.signum == signal.SIGHUP  # no third batch
    assert stopped.value.message.startswith(
        f"handoff: import stopped by SIGHUP after {BATCH} of {BATCH * 3} rows: {BATCH} new leads "
        "stored, 0 already known (and perhaps some rows of the batch under way); run the same"
    )


async def test_sigterm_while_the_file_is_read_stops_before_the_first_batch(
    tmp_path: Path,
) -> None:
    """The first pass reads the whole file without yielding to the event loop: the signal is
    seen after it, the import stops before any row reaches intake, and what the caller then
    awaits to clean up (the database closed) is not cancelled."""
    path = write(tmp_path, "Email,Company Name\na@acme.example,Acme\n")
    stop, fake, closed = Stop(), FakeIntake(), []
    with pytest.raises(Stopped) as stopped, stop.cancelling():
        try:
            stop(signal.SIGTERM, None)
            await import_csv(str(path), fake, progress=False, stop=stop)
        finally:
            await asyncio.sleep(0)
            closed.append(True)
    assert fake.calls == 0 and closed == [True]
    assert stopped.value.message.endswith("before storing any row: nothing was stored.")


def test_a_signal_before_any_row_is_stored_says_nothing_was() -> None:
    """Outside the event loop (standard input being copied) the handler raises at once."""
    with pytest.raises(Stopped) as stopped:
        Stop()(signal.SIGTERM, None)
    assert stopped.value.message == (
        "handoff: import stopped by SIGTERM before storing any row: nothing was stored."
    )


def test_stopping_leaves_an_ignored_signal_ignored_and_restores_the_handlers_after() -> None:
    """`nohup handoff import -` ignores SIGHUP (POSIX nohup): the import keeps ignoring it."""
    before, term = signal.signal(signal.SIGHUP, signal.SIG_IGN), signal.getsignal(signal.SIGTERM)
    try:
        with stopping() as stop:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is stop
        assert signal.getsignal(signal.SIGTERM) is term
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)
