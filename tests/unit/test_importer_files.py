"""`handoff import` of the files a RevOps person exports on a Monday morning: Excel's CSV UTF-8
and its Windows "CSV", a European Excel's semicolons, tabs, CRLF, cells holding line breaks and
commas, padded and short rows, header variants, HubSpot's and Salesforce's names. Each row is
stored as the docs say, or refused with its line and why while the others are stored; importing
the file again stores nothing twice."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bot.cli.importer import (
    DATE_HINT,
    EXCEL_DATE_FIX,
    EXCEL_FIX,
    ImportFileError,
    excel_date_of_id,
    import_csv,
)
from tests.unit.test_importer import FakeIntake

Expected = dict[int, dict[str, Any] | str]  # line → the payload's fields, or the row's error

CASES: list[tuple[str, bytes, Expected]] = [
    (
        "excel_csv_utf8_bom_crlf",
        "\ufeffEmail,First Name,Last Name,Company\r\njose@x.io,José,Müller,Acme\r\n".encode(),
        {2: {"external_id": "jose@x.io", "name": "José Müller", "company": {"name": "Acme"}}},
    ),
    (
        "excel_csv_windows_1252",
        "Email,First Name,Last Name,Company,Job Title\r\n"
        "zoe@x.io,Zoë,Müller,“Acme” €,Head – Sales\r\n".encode("cp1252"),
        {2: {"name": "Zoë Müller", "company": {"name": "“Acme” €"}, "title": "Head – Sales"}},
    ),
    (
        "european_excel_semicolons",
        b"E-mail;Company;Employees;Created Date\r\na@x.io;Acme, GmbH;1.200;20.11.2026 09:30\r\n",
        {
            2: {
                "company": {"name": "Acme, GmbH", "employees": 1200},
                "received_at": "2026-11-20T09:30:00Z",
            }
        },
    ),
    (
        # The column names' own commas are inside quotes: the delimiter is the semicolon.
        "semicolons_with_commas_in_quoted_column_names",
        b'Email;"Company, legal name";"Size, employees"\r\na@x.io;"Acme, GmbH";1.200\r\n',
        {2: {"email": "a@x.io"}},
    ),
    (
        "tab_separated",
        b"Email\tCompany\tEmployees\r\na@x.io\tAcme, Inc\t1,200\r\n",
        {2: {"company": {"name": "Acme, Inc", "employees": 1200}}},
    ),
    (
        "excel_unicode_text_utf16",
        "Email\tCompany\r\na@x.io\tZoë GmbH\r\n".encode("utf-16"),
        {2: {"company": {"name": "Zoë GmbH"}}},
    ),
    (
        "quoted_line_breaks_and_commas",
        b'Email,Company,Notes\r\na@x.io,"Acme\r\nHoldings","one\r\ntwo, three"\r\nb@x.io,B,\r\n',
        {2: {"company": {"name": "Acme Holdings"}}, 3: {"company": {"name": "B"}}},
    ),
    (
        "trailing_empty_columns_and_rows",
        b"Email,Company,,,\r\na@x.io,Acme,,,\r\n,,,,\r\n,,,,\r\n",
        {2: {"company": {"name": "Acme"}}},
    ),
    (
        "header_case_and_spacing",
        b" EMAIL ,Job  Title, Company Name \r\na@x.io,CEO,Acme\r\n",
        {2: {"title": "CEO", "company": {"name": "Acme"}}},
    ),
    (
        "e_mail_address_header",
        b"E-Mail Address,Company\r\na@x.io,Acme\r\n",
        {2: {"email": "a@x.io", "company": {"name": "Acme"}}},
    ),
    (
        # Excel leaves trailing empty cells out of rows after the 16th (Microsoft KB 77295).
        "short_row",
        b"Email,Company,Job Title\r\na@x.io\r\nb@x.io,B\r\n",
        {2: {"email": "a@x.io"}, 3: {"company": {"name": "B"}}},
    ),
    (
        # `Acme, Inc` not quoted: every cell after it is one column off; nothing of it is stored.
        "row_with_more_cells_than_columns",
        b"Email,Company,Job Title\r\na@x.io,Acme, Inc,CEO\r\nb@x.io,B,CTO\r\n",
        {
            2: "line 2: 4 cells, but the first line names 3 columns (past them: CEO): a cell "
            'holding a comma must be in quotes, as in "Acme, Inc"',
            3: {"company": {"name": "B"}, "title": "CTO"},
        },
    ),
    (
        "employees_1_200_not_quoted",
        b"Email,Employees\r\na@x.io,1,200\r\n",
        {
            2: "line 2: 3 cells, but the first line names 2 columns (past them: 200): a cell "
            'holding a comma must be in quotes, as in "Acme, Inc"',
        },
    ),
    (
        "a_padded_row_is_not_too_long",
        b"Email,Company\r\na@x.io,Acme,,\r\n",
        {2: {"company": {"name": "Acme"}}},
    ),
    (
        # Excel shows a 12-digit Record ID as 1.23457E+11 and saves it so: its digits are lost.
        "excel_scientific_record_id",
        b"Record ID,Email\r\n1.23457E+11,a@x.io\r\n101,b@x.io\r\n",
        {
            2: "line 2: Record ID (external_id): 1.23457E+11 is a long number as Excel shows "
            f"it, its last digits lost: {EXCEL_FIX}",
            3: {"external_id": "101"},
        },
    ),
    (
        # CRM ids 3-12, 12-3 and 3-50 opened in Excel: an English one shows them as 12-Mar,
        # 3-Dec and Mar-50, a German one as 12. Mär, a French one as 3-déc.; a column Excel
        # was told to show as dates writes 3/12/2026, 12.03.2026 or 2026-03-12. Stored so,
        # the lead would never match its CRM id again: each row is refused, naming the ids it
        # likely was. Ids that only hold numbers, dashes or month letters are kept, and so is
        # Dec-01: Excel writes 12-1 as 1-Dec, so Dec-01 is an id as the CRM exported it.
        "external_ids_excel_made_dates",
        "Record ID,Email\r\n"
        "12-Mar,a@x.io\r\n"
        "3-Dec,b@x.io\r\n"
        "Mar-50,c@x.io\r\n"
        "12. Mär,d@x.io\r\n"
        "3-déc.,e@x.io\r\n"
        "3/12/2026,f@x.io\r\n"
        "12.03.2026,g@x.io\r\n"
        "2026-03-12,h@x.io\r\n"
        "00Q5e00000AbCdE,i@x.io\r\n"
        "12345,j@x.io\r\n"
        "lead-2026-001,k@x.io\r\n"
        "MAR-12-ACME,l@x.io\r\n"
        "3-12,m@x.io\r\n"
        "Dec-01,n@x.io\r\n".encode(),
        {
            line: f"line {line}: Record ID (external_id): {value} is a date Excel made of an id "
            f"like {ids}: {EXCEL_DATE_FIX}"
            for line, value, ids in [
                (2, "12-Mar", "3-12 or 12-3"),
                (3, "3-Dec", "12-3 or 3-12"),
                (4, "Mar-50", "3-50"),
                (5, "12. Mär", "3-12 or 12-3"),
                (6, "3-déc.", "12-3 or 3-12"),
                (7, "3/12/2026", "3-12"),
                (8, "12.03.2026", "12-3"),
                (9, "2026-03-12", "3-12 or 12-3"),
            ]
        }
        | {
            10: {"external_id": "00Q5e00000AbCdE"},
            11: {"external_id": "12345"},
            12: {"external_id": "lead-2026-001"},
            13: {"external_id": "MAR-12-ACME"},
            14: {"external_id": "3-12"},
            15: {"external_id": "Dec-01"},
        },
    ),
    (
        "salesforce_field_names",
        b"Id,FirstName,LastName,Company,Email,Title,NumberOfEmployees,LeadSource,CreatedDate\r\n"
        b"00Q1,Ann,Lee,Acme,ann@x.io,CEO,250,Web,2026-11-20T09:30:00.000+0000\r\n",
        {
            2: {
                "external_id": "00Q1",
                "name": "Ann Lee",
                "source": "web",
                "company": {"name": "Acme", "employees": 250},
                "received_at": "2026-11-20T09:30:00Z",
            }
        },
    ),
    (
        "dates_in_several_formats",
        b"Email,Create Date\r\n"
        b"a@x.io,2026-11-20\r\n"
        b"b@x.io,20.11.2026 09:30\r\n"
        b"c@x.io,2026-11-20T09:30:00.000Z\r\n"
        b"d@x.io,11/20/26 9:30\r\n"
        b"e@x.io,20-Nov-2026\r\n"
        b"f@x.io,20 November 2026\r\n"
        b"g@x.io,last tuesday\r\n"
        # Salesforce's ICU locale formats (Spring '24): a comma before the time
        b'h@x.io,"11/20/2026, 9:30 AM"\r\n'
        b'i@x.io,"Nov 20, 2026, 9:30 PM"\r\n'
        b'j@x.io,"20.11.2026, 09:30"\r\n'
        b'k@x.io,"11/20/2026, 9:30\xe2\x80\xafAM"\r\n',  # CLDR 42+: a narrow space before AM
        {
            2: {"received_at": "2026-11-20T00:00:00Z"},
            3: {"received_at": "2026-11-20T09:30:00Z"},
            4: {"received_at": "2026-11-20T09:30:00Z"},
            5: {"received_at": "2026-11-20T09:30:00Z"},
            6: {"received_at": "2026-11-20T00:00:00Z"},
            7: {"received_at": "2026-11-20T00:00:00Z"},
            8: f"line 8: Create Date (received_at): {DATE_HINT}",
            9: {"email": "h@x.io", "received_at": "2026-11-20T09:30:00Z"},
            10: {"email": "i@x.io", "received_at": "2026-11-20T21:30:00Z"},
            11: {"email": "j@x.io", "received_at": "2026-11-20T09:30:00Z"},
            12: {"email": "k@x.io", "received_at": "2026-11-20T09:30:00Z"},
        },
    ),
    (
        "negative_employees_are_refused_not_made_positive",
        b"Email,Employees\r\na@x.io,-5\r\n",
        {2: "line 2: Employees (company.employees): must be at least 0"},
    ),
    (
        # Excel opening the export turned the ranges 1-10 and 11-50 into dates, shown so.
        "employee_ranges_excel_made_dates",
        b"Email,Employees\r\na@x.io,10-Jan\r\nb@x.io,Nov-50\r\nc@x.io,51-200\r\n",
        {
            2: "line 2: Employees (company.employees): 10-Jan is a date Excel made of a range "
            f"(1-10 becomes 10-Jan, 11-50 Nov-50): {EXCEL_FIX}",
            3: "line 3: Employees (company.employees): Nov-50 is a date Excel made of a range "
            f"(1-10 becomes 10-Jan, 11-50 Nov-50): {EXCEL_FIX}",
            4: {"company": {"employees": 51}},
        },
    ),
    (
        # The same ranges as Excel in other locales saves them (its built-in "d-mmm" and
        # "mmm-yy" formats in the locale's short month names): a German Excel reads 1-10 day
        # first as 1 October and writes `01. Okt`, 11-50 as `Nov 50`, 3-12 as `03. Dez`; a
        # French one `1-oct.`, `10-janv.`, `nov.-50`; a Spanish one `3-dic`, `10-ene`; a Dutch
        # one `1-mrt`, `1-mei`. Each is refused as the English ones are; a real range is read.
        "employee_ranges_excel_made_dates_in_other_locales",
        "Email,Employees\r\n"
        "a@x.io,01. Okt\r\n"
        "b@x.io,Nov 50\r\n"
        "c@x.io,03. Dez\r\n"
        "d@x.io,Mrz 50\r\n"
        "e@x.io,1-oct.\r\n"
        "f@x.io,10-janv.\r\n"
        "g@x.io,nov.-50\r\n"
        "h@x.io,1-déc.\r\n"
        "i@x.io,3-dic\r\n"
        "j@x.io,10-ene\r\n"
        "k@x.io,1-mrt\r\n"
        "l@x.io,1-mei\r\n"
        "m@x.io,11-50\r\n".encode(),
        {
            line: f"line {line}: Employees (company.employees): {value} is a date Excel made of "
            f"a range (1-10 becomes 10-Jan, 11-50 Nov-50): {EXCEL_FIX}"
            for line, value in enumerate(
                [
                    "01. Okt",
                    "Nov 50",
                    "03. Dez",
                    "Mrz 50",
                    "1-oct.",
                    "10-janv.",
                    "nov.-50",
                    "1-déc.",
                    "3-dic",
                    "10-ene",
                    "1-mrt",
                    "1-mei",
                ],
                start=2,
            )
        }
        | {14: {"email": "m@x.io", "company": {"employees": 11}}},
    ),
    (
        # The same ranges from a Swedish, Danish, Norwegian, Finnish or Polish Excel, in the
        # locale's short month names (CLDR's abbreviated names; glibc's abmon): Swedish and
        # Danish 1-maj, Norwegian 3. des., Finnish 1.loka (CLDR now) or 1. lokak. (earlier CLDR),
        # tammi 50, Polish 1-paź, 10-sty, lis-50, gru 50. Each is refused; a real range is read.
        "employee_ranges_excel_made_dates_in_nordic_and_polish_locales",
        "Email,Employees\r\n"
        "a@x.io,1-maj\r\n"
        "b@x.io,maj-50\r\n"
        "c@x.io,3. des.\r\n"
        "d@x.io,1.loka\r\n"
        "e@x.io,1. lokak.\r\n"
        "f@x.io,tammi 50\r\n"
        "g@x.io,10-kesä\r\n"
        "h@x.io,1-paź\r\n"
        "i@x.io,10-sty\r\n"
        "j@x.io,lis-50\r\n"
        "k@x.io,gru 50\r\n"
        "l@x.io,10-wrz\r\n"
        "m@x.io,11-50\r\n".encode(),
        {
            line: f"line {line}: Employees (company.employees): {value} is a date Excel made of "
            f"a range (1-10 becomes 10-Jan, 11-50 Nov-50): {EXCEL_FIX}"
            for line, value in enumerate(
                [
                    "1-maj",
                    "maj-50",
                    "3. des.",
                    "1.loka",
                    "1. lokak.",
                    "tammi 50",
                    "10-kesä",
                    "1-paź",
                    "10-sty",
                    "lis-50",
                    "gru 50",
                    "10-wrz",
                ],
                start=2,
            )
        }
        | {14: {"email": "m@x.io", "company": {"employees": 11}}},
    ),
    (
        # Only the employees column is checked: a company called "Mai 10" or "Jan 50" is a name.
        "month_and_number_in_a_name_column_is_a_name",
        b"Email,Company,Employees\r\na@x.io,Mai 10,51-200\r\nb@x.io,Okt 1,1.200\r\n",
        {
            2: {"company": {"name": "Mai 10", "employees": 51}},
            3: {"company": {"name": "Okt 1", "employees": 1200}},
        },
    ),
    (
        # Excel's plain "CSV" (Windows-1252): an accented capital or ß right before a curly
        # quote or ® is two bytes that are also UTF-8 (É’ is C9 92, read as UTF-8 "ɒ"; É® is
        # C9 AE; ß’ is DF 92), on a line with no other accent. They are no UTF-8 text a person
        # writes, so the file is Windows-1252, as its other lines (Zoë: EB) say.
        "windows_1252_accented_capital_before_a_quote",
        "Email,Company\r\n"
        "a@x.io,CAFÉ’S BISTRO\r\n"
        "b@x.io,NESTLÉ® WATERS\r\n"
        "c@x.io,STRAUß’ ERBEN\r\n"
        "d@x.io,Zoë GmbH\r\n".encode("cp1252"),
        {
            2: {"company": {"name": "CAFÉ’S BISTRO"}},
            3: {"company": {"name": "NESTLÉ® WATERS"}},
            4: {"company": {"name": "STRAUß’ ERBEN"}},
            5: {"company": {"name": "Zoë GmbH"}},
        },
    ),
    (
        # Windows-1252 symbols that sit between an accented capital and the next letter (a
        # no-break space, an en dash, an apostrophe: JOSÉ GARCIA is C9 A0 47, UTF-8 "ɠG") are
        # no UTF-8 letter inside a word: the file is still Windows-1252.
        "windows_1252_accented_capital_before_a_space_or_dash_in_a_word",
        "Email,Company\r\n"
        "a@x.io,JOSÉ\u00a0GARCIA\r\n"
        "b@x.io,RENÉ–CLAUDE\r\n"
        "c@x.io,L’ORÉ’S\r\n"
        "d@x.io,Zoë GmbH\r\n".encode("cp1252"),
        {
            2: {"company": {"name": "JOSÉ\u00a0GARCIA"}},
            3: {"company": {"name": "RENÉ–CLAUDE"}},
            4: {"company": {"name": "L’ORÉ’S"}},
            5: {"company": {"name": "Zoë GmbH"}},
        },
    ),
    (
        # A name the CRM already showed garbled (JosÃ©: C3 A9, valid UTF-8 for é) on a line with
        # other Windows-1252 accents: the line is not UTF-8, the file is Windows-1252, and the
        # name is kept as the CRM showed it.
        "windows_1252_name_garbled_upstream_beside_other_accents",
        "Email,First Name,Last Name\r\na@x.io,JosÃ©,Müller\r\n".encode("cp1252"),
        {2: {"name": "JosÃ© Müller"}},
    ),
    (
        # An error names the column as the file names it, and the field it fills.
        "hubspot_conversion_date_unreadable",
        b"Record ID,Email,Recent Conversion,Recent Conversion Date\r\n"
        b"1,a@x.io,Demo request,soon\r\n",
        {2: f"line 2: Recent Conversion Date (engagement[0].at): {DATE_HINT}"},
    ),
    ("header_only", b"Email,Company\r\n", {}),
]


def contains(payload: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(
        contains(payload.get(key) or {}, value)
        if isinstance(value, dict)
        else (payload.get(key) == value)
        for key, value in expected.items()
    )


@pytest.mark.parametrize(("name", "content", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_a_real_world_export_is_imported_as_the_docs_say_and_once(
    tmp_path: Path, name: str, content: bytes, expected: Expected
) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_bytes(content)
    intake = FakeIntake()
    first = await import_csv(str(path), intake, progress=False)
    errors = [text for text in expected.values() if isinstance(text, str)]
    assert first.errors == errors, first.render()
    stored = {lead["email"]: lead for lead in intake.leads.values()}
    assert first.created == len(expected) - len(errors) == len(stored)
    assert first.total == len(expected)
    for fields in expected.values():
        if isinstance(fields, dict):
            assert any(contains(lead, fields) for lead in stored.values()), (fields, stored)
    again = await import_csv(str(path), intake, progress=False)
    assert (again.created, again.duplicates, again.errors) == (0, first.created, errors)


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


REFUSED: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty.csv is empty: the first line must name the columns."),
    (
        "bom_only",
        b"\xef\xbb\xbf\r\n",
        "bom_only.csv is empty: the first line must name the columns.",
    ),
    (
        "xlsx_renamed",
        zipped({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"}),
        "xlsx_renamed.csv is an Excel workbook, not CSV: save it as “CSV UTF-8” and import that.",
    ),
    (
        "xls_renamed",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)),
        "xls_renamed.csv is an Excel 97-2003 workbook (.xls), not CSV: save it as “CSV UTF-8” "
        "and import that.",
    ),
    (
        # An export downloaded zipped: the CSV is inside.
        "hubspot_zip",
        zipped({"hubspot-crm-exports-all-contacts.csv": "Email\na@x.io\n"}),
        "hubspot_zip.csv is a ZIP archive, not CSV: unzip it and import the CSV inside "
        "(hubspot-crm-exports-all-contacts.csv).",
    ),
    (
        # Two exports pasted together: read as Windows-1252, José would become JosÃ©.
        "mixed_encodings",
        "Email,Name\r\na@x.io,José\r\n".encode() + "b@x.io,Zoë\r\n".encode("cp1252"),
        "mixed_encodings.csv mixes two encodings: line 2 is UTF-8 and line 3 is not (byte 0xEB):"
        " save it again as “CSV UTF-8”.",
    ),
    (
        # A UTF-8 export's curly quotes (“ is E2 80 9C: three bytes) next to Windows-1252 lines.
        "mixed_encodings_three_byte_characters",
        "Email,Company\r\na@x.io,“Acme”\r\n".encode() + "b@x.io,Zoë\r\n".encode("cp1252"),
        "mixed_encodings_three_byte_characters.csv mixes two encodings: line 2 is UTF-8 and "
        "line 3 is not (byte 0xEB): save it again as “CSV UTF-8”.",
    ),
    (
        # A UTF-8 export's Cyrillic name (И is D0 98, в D0 B2: two-byte letters in a row).
        "mixed_encodings_cyrillic",
        "Email,Name\r\na@x.io,Иван\r\n".encode() + "b@x.io,Zoë\r\n".encode("cp1252"),
        "mixed_encodings_cyrillic.csv mixes two encodings: line 2 is UTF-8 and line 3 is not "
        "(byte 0xEB): save it again as “CSV UTF-8”.",
    ),
    (
        # A Windows-1252 line that only looks like UTF-8 (CAFÉ’S) is not the UTF-8 line named.
        "mixed_encodings_named_by_the_real_utf8_line",
        "Email,Name\r\na@x.io,CAFÉ’S\r\n".encode("cp1252")
        + "b@x.io,José\r\n".encode()
        + "c@x.io,Zoë\r\n".encode("cp1252"),
        "mixed_encodings_named_by_the_real_utf8_line.csv mixes two encodings: line 3 is UTF-8 "
        "and line 4 is not (byte 0xEB): save it again as “CSV UTF-8”.",
    ),
    (
        # JosÃ© alone on its line in a Windows-1252 file (a name the CRM showed garbled) is the
        # same bytes as "mixed_encodings" above, José pasted from a UTF-8 export: no reader can
        # tell them apart. Reading it as Windows-1252 would store JosÃ© for every pasted José,
        # so it is refused; Excel's "CSV UTF-8" of the file imports it as the CRM showed it.
        "windows_1252_name_garbled_upstream_alone_on_its_line",
        "Email,Name\r\na@x.io,JosÃ©\r\nb@x.io,Zoë\r\n".encode("cp1252"),
        "windows_1252_name_garbled_upstream_alone_on_its_line.csv mixes two encodings: line 2 is "
        "UTF-8 and line 3 is not (byte 0xEB): save it again as “CSV UTF-8”.",
    ),
    (
        # A UTF-8 export's letters of two bytes that stand alone in their word, next to
        # Windows-1252 lines: Azerbaijani ə (U+0259, C9 99), the Hawaiian ʻokina (U+02BB, CA BB),
        # a Mac's decomposed ü and ë (u/e + U+0308, CC 88: Unicode's canonical decomposition,
        # NFD). Read as Windows-1252 they would be stored as KÉ™rimov, HawaiÊ»i, MuÌˆller and
        # ZoeÌˆ, silently; as any UTF-8 line next to Windows-1252 ones, they are refused.
        "mixed_encodings_schwa_alone",
        "Email,Name\r\na@x.io,Kərimov\r\n".encode() + "b@x.io,Zoë\r\n".encode("cp1252"),
        "mixed_encodings_schwa_alone.csv mixes two encodings: line 2 is UTF-8 and line 3 is not "
        "(byte 0xEB): save it again as “CSV UTF-8”.",
    ),
    (
        "mixed_encodings_okina_alone",
        "Email,State\r\na@x.io,Hawaiʻi\r\n".encode() + "b@x.io,Zoë\r\n".encode("cp1252"),
        "mixed_encodings_okina_alone.csv mixes two encodings: line 2 is UTF-8 and line 3 is not "
        "(byte 0xEB): save it again as “CSV UTF-8”.",
    ),
    (
        "mixed_encodings_decomposed_accent_inside_a_word",
        "Email,Name\r\na@x.io,Mu\u0308ller\r\n".encode() + "b@x.io,Zoë\r\n".encode("cp1252"),
        "mixed_encodings_decomposed_accent_inside_a_word.csv mixes two encodings: line 2 is UTF-8 "
        "and line 3 is not (byte 0xEB): save it again as “CSV UTF-8”.",
    ),
    (
        "mixed_encodings_decomposed_accent_ending_a_word",
        "Email,Name\r\na@x.io,Zoe\u0308\r\n".encode() + "b@x.io,Zoë\r\n".encode("cp1252"),
        "mixed_encodings_decomposed_accent_ending_a_word.csv mixes two encodings: line 2 is UTF-8 "
        "and line 3 is not (byte 0xEB): save it again as “CSV UTF-8”.",
    ),
    (
        "broken_utf16",
        "Email\tName\r\na@x.io\tZoë\r\n".encode("utf-16") + b"\x00\xd8",
        "broken_utf16.csv is not UTF-16 text, as its first bytes say it is: save it again as "
        "“CSV UTF-8”.",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), REFUSED, ids=[c[0] for c in REFUSED])
async def test_a_file_that_cannot_be_read_is_one_line_naming_it_and_stores_nothing(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_bytes(content)
    intake = FakeIntake()
    with pytest.raises(ImportFileError) as refused:
        await import_csv(str(path), intake, progress=False)
    assert refused.value.message == message
    assert intake.calls == 0


async def test_an_unreadable_conversion_date_names_its_own_column(tmp_path: Path) -> None:
    """HubSpot repeats a lead's one conversion as first and recent: the row is refused naming
    the date column the user must fix, not the other one."""
    path = tmp_path / "conversions.csv"
    path.write_bytes(
        b"Record ID,Email,First Conversion,First Conversion Date,Recent Conversion,"
        b"Recent Conversion Date\r\n"
        b"1,a@x.io,Demo request,soon,Demo request,2026-11-20\r\n"
        b"2,b@x.io,Demo request,soon,Demo request,later\r\n"
    )
    summary = await import_csv(str(path), FakeIntake(), progress=False)
    assert summary.errors == [
        f"line 2: First Conversion Date (engagement[0].at): {DATE_HINT}",
        f"line 3: First Conversion Date (engagement[0].at): {DATE_HINT}",
        f"line 3: Recent Conversion Date (engagement[1].at): {DATE_HINT}",
    ]


@pytest.mark.parametrize(
    "start",
    [
        b'Email,Company\r\na@x.io,"Acme\r\nHoldings"\r\n',  # a cell holding a line break
        b"sep=,\r\nEmail,Company\r\na@x.io,Acme\r\n",  # Excel's hint, not a row in Excel
    ],
    ids=["quoted_line_break", "sep_hint"],
)
async def test_mixed_encodings_are_named_by_the_lines_every_other_message_counts(
    tmp_path: Path, start: bytes
) -> None:
    """`line N` is the spreadsheet's row, as in each row's error: a cell's line break or
    Excel's `sep=` line does not shift it."""
    path = tmp_path / "pasted.csv"
    path.write_bytes(start + "b@x.io,José\r\n".encode() + "c@x.io,Zoë\r\n".encode("cp1252"))
    with pytest.raises(ImportFileError) as refused:
        await import_csv(str(path), FakeIntake(), progress=False)
    assert refused.value.message == (
        "pasted.csv mixes two encodings: line 3 is UTF-8 and line 4 is not (byte 0xEB): "
        "save it again as “CSV UTF-8”."
    )
    path.write_bytes(
        start + b"b@x.io,B\r\nnot an email,C\r\n"
    )  # the rows as a row's error counts them
    errors = (await import_csv(str(path), FakeIntake(), progress=False)).errors
    assert errors == ["line 4: email: must be an email address like jane@example.com"]


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        # Excel's "d-mmm" of a pair read as a day and a month, in English and other locales
        ("12-Mar", "3-12 or 12-3"),
        ("3-Dec", "12-3 or 3-12"),
        ("03-Dec", "12-3 or 3-12"),
        ("29-Feb", "2-29 or 29-2"),  # Excel reads 2-29 in a leap year
        ("1-Jan", "1-1"),
        ("12. Mär", "3-12 or 12-3"),
        ("12. Mrz", "3-12 or 12-3"),
        ("3-déc.", "12-3 or 3-12"),
        ("12-mars", "3-12 or 12-3"),
        ("3-dic", "12-3 or 3-12"),
        ("3-mrt", "3-3"),
        ("12-maj", "5-12 or 12-5"),
        ("3. des.", "12-3 or 3-12"),
        ("3-paź", "10-3 or 3-10"),
        ("12.loka", "10-12 or 12-10"),
        ("12-\u017fep", "9-12 or 12-9"),  # a long s: Python's ignore-case matches it to s
        # its "mmm-yy" of a month and a number that is no day (3-50 is March 1950)
        ("Mar-50", "3-50"),
        ("nov.-50", "11-50"),
        ("Dez 99", "12-99"),
        ("Apr-31", "4-31"),  # April has no 31st: 4-31 is April 1931
        ("Feb-29", "2-29"),  # in a year that is no leap year, 2-29 is February 2029
        # its short dates, or another program's, when the column was shown as dates: an Excel
        # reads a pair in its locale's order and writes the date in the same order, so the
        # date's two numbers are the id as it was (3/12/2026 is 3-12 to a month-first Excel,
        # 03/12/2026 is 3-12 to a day-first one; 12-3 would be 12/3/2026, 12/03/2026)
        ("3/12/2026", "3-12"),
        ("03/12/2026", "3-12"),
        ("12/3/26", "12-3"),
        ("12.03.2026", "12-3"),
        ("12.03.26", "12-3"),
        ("12-3-2026", "12-3"),  # Dutch
        ("3/25/2026", "3-25"),  # a month-first Excel keeps 25-3 as text
        ("25/3/2026", "25-3"),
        ("2/29/2028", "2-29"),
        # ISO, which a locale's date list offers whatever its order: either
        ("2026-03-12", "3-12 or 12-3"),
        ("2026/3/12", "3-12 or 12-3"),
    ],
)
def test_an_id_excel_made_a_date_names_the_ids_it_likely_was(value: str, ids: str) -> None:
    assert excel_date_of_id(value) == ids


@pytest.mark.parametrize(
    "value",
    [
        "00Q5e00000AbCdE",  # Salesforce
        "00Q5e00000AbCdEAAZ",
        "12345",  # HubSpot
        "123456789012",
        "hs-1",
        "lead-2026-001",
        "MAR-12-ACME",  # a third part: Excel keeps it as text
        "ACME-MAR-12",
        "Mar-2026",  # Excel's "mmm-yy" writes two digits
        "Mar-5",
        # Excel writes a pair whose second number is a day of that month as "d-mmm" (3-12 as
        # 12-Mar), never as "mmm-yy": these are ids as the CRM exported them
        "Mar-12",
        "May-12",
        "Dec-01",
        "SET-10",
        "OUT-12",
        "LIS-12",
        "Feb-28",
        "12Mar",  # no separator: no format of Excel's writes it
        "31-Feb",  # no such day: Excel keeps it as text
        "32-Jan",
        "0-Jan",
        "2/29/2026",  # no such day in 2026: 2-29 became Feb-29 there
        "29.02.2026",
        "2026-02-29",
        "2/29/27",
        "2026-13-45",
        "13/13/2026",
        "3/12/226",
        "3.12",
        "3-12",
        "1.2.3",
        "10.0.0.1",
        "2026-03-12T09:30:00Z",
        "3/12/2026 9:30",
        "Q1-12",
        "March-12",
        "a@x.io",
    ],
)
def test_an_ordinary_id_is_no_date_excel_made(value: str) -> None:
    assert excel_date_of_id(value) is None
