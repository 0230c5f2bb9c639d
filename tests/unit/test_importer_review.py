"""`handoff import` after the operators' review: a quote never closed refuses its row alone,
times without a zone are read in the account's zone, an email is one address, the summary
splits MQLs from nurture, and state, postcode and country are read as the SLA's rules name them.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cli.importer import (
    UNCLOSED_QUOTE,
    ImportFileError,
    country_code,
    import_csv,
    parse_timestamp,
    read_sheet,
    time_zone,
)
from bot.domain.intake import parse_lead
from bot.domain.routing import territory_of
from bot.services.policies import load_policy
from tests.conftest import ROOT
from tests.unit.test_importer import FakeIntake, write

SYDNEY = ZoneInfo("Australia/Sydney")


# --- a quote that is never closed ------------------------------------------------------------


async def test_a_quote_never_closed_refuses_its_row_and_the_rows_after_it_are_read(
    tmp_path: Path,
) -> None:
    """A lenient reader took the three rows after it into one company name, reporting nothing."""
    path = write(
        tmp_path,
        "Email,Company,Title\n"
        'a1@acme.com,"Acme, Inc,CEO\n'
        "a2@beta.io,Beta,CTO\n"
        "a3@gamma.io,Gamma,CFO\n"
        "a4@delta.io,Delta,COO\n",
    )
    intake = FakeIntake()
    summary = await import_csv(str(path), intake, progress=False)
    assert summary.errors == [f"line 2: {UNCLOSED_QUOTE}"]
    assert (summary.total, summary.created, summary.invalid) == (4, 3, 1)
    assert set(intake.leads) == {"a2@beta.io", "a3@gamma.io", "a4@delta.io"}  # not a1's
    assert intake.leads["a2@beta.io"]["company"] == {"name": "Beta"}


async def test_a_quote_closed_by_a_later_rows_quote_is_still_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Email,Company,Title\n"
        'a1@acme.com,"Acme, Inc,CEO\n'
        'a2@beta.io,"Beta, Ltd",CTO\n'  # its first quote closes line 2's, and `B` follows
        "a3@gamma.io,Gamma,CFO\n",
    )
    intake = FakeIntake()
    summary = await import_csv(str(path), intake, progress=False)
    assert summary.errors == [f"line 2: {UNCLOSED_QUOTE}"]
    assert set(intake.leads) == {"a2@beta.io", "a3@gamma.io"}
    assert intake.leads["a2@beta.io"]["company"] == {"name": "Beta, Ltd"}


async def test_a_cell_we_read_that_took_several_lines_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Email,Company,Title\n"
        'a1@acme.com,"Acme, Inc,CEO\n'
        'a2@beta.io,Beta",CTO\n'  # a quote just before a comma closes line 2's: valid CSV,
        "a3@gamma.io,Gamma,CFO\n",  # but a company name of two lines
    )
    intake = FakeIntake()
    summary = await import_csv(str(path), intake, progress=False)
    assert summary.errors == [f"line 2: {UNCLOSED_QUOTE}"]
    assert set(intake.leads) == {"a2@beta.io", "a3@gamma.io"}


async def test_a_quote_never_closed_on_the_last_line_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'Email,Company\na1@acme.com,Acme\na2@beta.io,"Beta, Ltd')
    summary = await import_csv(str(path), FakeIntake(), progress=False)
    assert summary.errors == [f"line 3: {UNCLOSED_QUOTE}"]
    assert summary.created == 1


def test_cells_that_may_hold_lines_still_do_and_stray_quotes_read_as_before(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "Email,Company,Notes\n"
        'a1@acme.com,Acme,"Called twice,\nno answer"\n'  # a column we do not read: two lines
        'a2@beta.io,"Beta" Ltd,\n',  # a stray quote within one line, as Excel reads it
    )
    sheet = read_sheet(path)
    assert [(row.line, row.refused) for row in sheet.rows] == [(2, None), (3, None)]
    assert sheet.rows[1].payload["company"] == {"name": "Beta Ltd"}


def test_a_quote_never_closed_in_the_column_names_refuses_the_file(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError) as refused:
        read_sheet(write(tmp_path, 'Email,"Company\na1@acme.com,Acme\n'))
    assert refused.value.message == f"leads.csv line 1: {UNCLOSED_QUOTE} in the column names."


# --- times without a time zone ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20 09:30", "2026-11-19T22:30:00Z"),  # Sydney is UTC+11 in November
        ("11/20/2026 9:30 AM", "2026-11-19T22:30:00Z"),
        ("2026-06-20 09:30", "2026-06-19T23:30:00Z"),  # and UTC+10 in June
        ("2026-11-20 09:30 UTC", "2026-11-20T09:30:00Z"),  # a zone named: that zone
        ("2026-11-20T09:30:00Z", "2026-11-20T09:30:00Z"),
        ("2026-11-20T09:30:00+01:00", "2026-11-20T08:30:00Z"),
        ("0001-01-01 00:00", None),  # before the calendar's start in UTC: not a date we can use
    ],
)
def test_a_time_without_a_zone_is_read_in_the_accounts_zone(
    text: str, expected: str | None
) -> None:
    assert parse_timestamp(text, zone=SYDNEY) == expected


async def test_an_import_reads_every_time_in_its_zone_and_says_which(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Record ID,Email,Create Date,Recent Conversion,Recent Conversion Date\n"
        "1,a@x.io,2026-11-20 09:30,Demo request,2026-11-20 09:28\n",
    )
    intake = FakeIntake()
    summary = await import_csv(str(path), intake, zone=SYDNEY, progress=False)
    assert intake.leads["1"]["received_at"] == "2026-11-19T22:30:00Z"
    assert intake.leads["1"]["engagement"][0]["at"] == "2026-11-19T22:28:00Z"
    assert "Times without a time zone were read in Australia/Sydney." in summary.render()
    no_dates = write(tmp_path, "Email\nb@x.io\n", "plain.csv")
    plain = await import_csv(str(no_dates), FakeIntake(), zone=SYDNEY, progress=False)
    assert "time zone" not in plain.render()


def test_a_time_zone_is_an_iana_name() -> None:
    assert time_zone("Australia/Sydney") == SYDNEY
    with pytest.raises(ValueError) as refused:
        time_zone("Australia/Sidney")
    assert str(refused.value) == (
        "'Australia/Sidney' is not a time zone (an IANA name like Australia/Sydney or UTC); "
        "did you mean Australia/Sydney?"
    )
    with pytest.raises(ValueError) as abbreviated:
        time_zone("AEST")  # the hint was EST: US Eastern, 15 hours from Sydney
    assert "did you mean" not in str(abbreviated.value)
    assert "it is an abbreviation" in str(abbreviated.value)
    with pytest.raises(ValueError, match="did you mean Australia/Sydney"):
        time_zone("Sydney")
    for name in ("", "../etc", "Mars/Olympus"):
        with pytest.raises(ValueError, match="is not a time zone"):
            time_zone(name)


# --- one email address ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "y@acme.com,y,acme",
        "a@acme.com;b@acme.com",
        '"Jane" <jane@acme.com>',
        "<jane@acme.com>",
        'jane"@acme.com',
        "jane doe@acme.com",
    ],
)
def test_an_email_with_commas_quotes_or_angle_brackets_is_refused(email: str) -> None:
    _, errors = parse_lead({"external_id": "1", "email": email})
    assert [(e.field, e.message) for e in errors] == [
        ("email", "must be an email address like jane@example.com")
    ]


@pytest.mark.parametrize(
    "email",
    ["jane@acme.com", "o'brien+sla@sub.acme.co.uk", "zoë.müller@alpenkraft.de", "a_b-c@x.io"],
)
def test_an_email_address_is_still_accepted(email: str) -> None:
    lead, errors = parse_lead({"external_id": "1", "email": email})
    assert errors == [] and lead is not None


async def test_an_import_refuses_an_email_cell_holding_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, 'Email;Name\n"y@acme.com,y,acme";Y\nz@acme.com;Z\n')
    intake = FakeIntake()
    summary = await import_csv(str(path), intake, progress=False)
    assert summary.errors == ["line 2: email: must be an email address like jane@example.com"]
    assert set(intake.leads) == {"z@acme.com"}


# --- the summary -----------------------------------------------------------------------------


async def test_the_summary_says_how_many_were_posted_and_how_many_kept_in_nurture(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "Lead ID,Email,Lead Score\n1,a@x.io,90\n2,b@x.io,20\n3,c@x.io,30\n")
    intake = FakeIntake(mql_score=50)
    summary = await import_csv(str(path), intake, progress=False)
    assert (summary.posted, summary.nurtured, summary.created) == (1, 2, 3)
    assert summary.render().splitlines()[1] == (
        "  3 new leads: 1 posted as an MQL, 2 kept in nurture (below the MQL definition)"
    )
    again = await import_csv(str(path), intake, progress=False)
    assert again.render().splitlines()[1:3] == [
        "  0 new leads",
        "  3 already known (same external id), no errors.",
    ]


# --- state, postcode and country ---------------------------------------------------------------


def test_hubspot_state_region_and_postal_code_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Record ID,Email,Company Name,Country/Region,State/Region,Postal Code\n"
        "1,a@x.io,Acme,Australia,NSW,2000\n",
    )
    sheet = read_sheet(path)
    assert sheet.format == "hubspot"
    assert sheet.ignored_columns == []
    assert sheet.rows[0].payload["company"] == {
        "name": "Acme",
        "country": "AU",
        "state": "NSW",
        "postcode": "2000",
    }


@pytest.mark.parametrize(
    "header",
    [
        "Lead ID,Email,Company,Country,State/Province,Zip/Postal Code",
        "Contact ID,Email,Account Name,Mailing Country,Mailing State/Province,"
        "Mailing Zip/Postal Code",
        "external_id,email,company.name,company.country,company.state,company.postcode",
    ],
)
def test_salesforce_and_handoff_state_and_postcode_are_read(tmp_path: Path, header: str) -> None:
    sheet = read_sheet(write(tmp_path, f"{header}\n1,a@x.io,Acme,United States,CA,94105\n"))
    assert sheet.ignored_columns == []
    assert sheet.rows[0].payload["company"] == {
        "name": "Acme",
        "country": "US",
        "state": "CA",
        "postcode": "94105",
    }


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("Australia", "AU"),
        ("United Kingdom", "GB"),
        ("United States", "US"),
        ("New Zealand", "NZ"),
        ("  new zealand ", "NZ"),
        ("USA", "US"),
        ("UK", "GB"),
        ("The Netherlands", "NL"),
        ("Hong Kong", "HK"),
        ("Côte d'Ivoire", "CI"),
        ("Trinidad & Tobago", "TT"),
        ("Singapore", "SG"),
        ("au", "AU"),
        ("GB", "GB"),
        ("Atlantis", "Atlantis"),  # a name it does not know is kept as given
        ("Nouvelle-Zélande", "Nouvelle-Zélande"),
    ],
)
def test_a_country_name_becomes_its_iso_code(value: str, code: str) -> None:
    assert country_code(value) == code


def test_an_imported_lead_falls_in_its_state_territory(tmp_path: Path) -> None:
    """The point of reading them: the SLA's territories and ICP name places by code."""
    sla = tmp_path / "sla.yaml"
    sla.write_text(
        (ROOT / "sla.yaml")
        .read_text()
        .replace(
            "# territories: [{name: Sydney, when: {country: AU, state: NSW}, segment: smb}]",
            "territories: [{name: Sydney, when: {country: AU, state: NSW}, segment: smb}]",
        )
    )
    policy = load_policy(str(sla))
    path = write(
        tmp_path,
        "Record ID,Email,Company Name,Country/Region,State/Region,Postal Code\n"
        "1,a@x.io,Acme,Australia,NSW,2000\n"
        "2,b@x.io,Bilby,Australia,VIC,3000\n",
    )
    territories = []
    for row in read_sheet(path).rows:
        lead, errors = parse_lead(row.payload)
        assert lead is not None, errors
        territory = territory_of(lead, policy)
        territories.append(territory.name if territory else None)
    assert territories == ["Sydney", None]


# --- a report's footer ------------------------------------------------------------------------


async def test_a_footer_excel_padded_is_not_read_but_a_lone_email_after_a_blank_row_is(
    tmp_path: Path,
) -> None:
    footer = '"Grand Totals (1 records)",,\n\n"Confidential Information - Do Not Distribute",,\n'
    padded = write(tmp_path, f"Email,Company,Title\na1@acme.com,Acme,CEO\n,,\n{footer}")
    intake = FakeIntake()
    summary = await import_csv(str(padded), intake, progress=False)
    assert (summary.total, summary.invalid, set(intake.leads)) == (1, 0, {"a1@acme.com"})
    assert summary.footer == "line 4 (Grand Totals (1 records), …)"
    lone = write(tmp_path, "Email,Company,Title\na1@acme.com,Acme,CEO\n\na2@beta.io,,\n", "b.csv")
    intake = FakeIntake()
    summary = await import_csv(str(lone), intake, progress=False)
    assert set(intake.leads) == {"a1@acme.com", "a2@beta.io"} and summary.footer is None
