"""`handoff import leads.csv`: spreadsheet exports (HubSpot, Salesforce, our own) into intake.

Each row becomes the JSON payload of `POST /leads`, is validated by the same rules, and goes
through the same intake; a bad row is reported with its spreadsheet line number and skipped.
A time without a time zone is read in the zone the caller names (the CRM account's: `handoff
import` uses the SLA's), a country name becomes its ISO 3166-1 alpha-2 code. `handoff import -`
reads the export from standard input (`spooled`); Ctrl-C, SIGTERM and SIGHUP stop an import
after the batch under way, saying what was stored, the copy deleted (`stopping`).
"""

from __future__ import annotations

import asyncio
import calendar
import csv
import itertools
import re
import shutil
import signal
import sys
import tempfile
import unicodedata
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, BinaryIO, Literal, TextIO, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from holidays.registry import COUNTRIES as HOLIDAY_COUNTRIES
from tqdm import tqdm

from bot.domain.intake import parse_lead
from bot.domain.policy import zone_hint

Format = Literal["hubspot", "salesforce", "handoff", "csv"]
# What intake did with a row: a new lead posted as an MQL, a new lead kept in nurture (below the
# MQL definition), a lead it knew already, or a refusal (with "field: message" errors).
Status = Literal["mql", "nurture", "duplicate", "invalid"]
Intake = Callable[[dict[str, Any]], Awaitable[tuple[Status, list[str]]]]

FORMAT_LABELS: dict[str, str] = {
    "hubspot": "HubSpot export",
    "salesforce": "Salesforce export",
    "handoff": "Handoff CSV",
    "csv": "CSV",
}

# Payload path → accepted column headers (normalized), in order of preference.
COLUMNS: dict[str, tuple[str, ...]] = {
    "external_id": ("external_id", "record id", "lead id", "contact id", "id"),
    "email": ("email", "email address"),  # "E-mail", "E-Mail Address": see _normalize
    "name": ("name", "full name"),
    "first_name": ("first name", "first_name", "firstname"),
    "last_name": ("last name", "last_name", "lastname"),
    "title": ("title", "job title"),
    "phone": (
        "phone",
        "phone number",
        "mobile phone number",
        "mobile",
        "mobile phone",
        "mobilephone",
    ),
    "company.name": ("company.name", "company name", "company", "account name"),
    "company.domain": ("company.domain", "company domain name", "website url", "website"),
    "company.employees": (
        "company.employees",
        "number of employees",
        "no. of employees",
        "numberofemployees",
        "employees",
    ),
    "company.industry": ("company.industry", "industry"),
    "company.country": ("company.country", "country/region", "country", "mailing country"),
    "company.state": (
        "company.state",
        "state/region",
        "state/province",
        "mailing state/province",
        "mailing state",
        "state",
        "province",
    ),
    "company.postcode": (
        "company.postcode",
        "postal code",
        "zip/postal code",
        "mailing zip/postal code",
        "mailing postal code",
        "postalcode",
        "postcode",
        "zip code",
        "zip",
    ),
    "source": ("source", "original source", "lead source", "leadsource", "latest source"),
    "campaign": ("campaign", "primary campaign source", "original source drill-down 1"),
    "segment": ("segment",),
    "score": ("score", "hubspot score", "lead score"),
    "received_at": ("received_at", "create date", "created date", "createddate"),
    "first_conversion": ("first conversion",),
    "first_conversion_at": ("first conversion date",),
    "recent_conversion": ("recent conversion",),
    "recent_conversion_at": ("recent conversion date",),
}

# Headers only one exporter writes: they tell the formats apart for the summary line.
_MARKERS: dict[Format, frozenset[str]] = {
    "hubspot": frozenset(
        "record id|company domain name|website url|country/region|state/region|original source|"
        "latest source|original source drill-down 1|hubspot score|create date|first conversion|"
        "recent conversion|recent conversion date|lifecycle stage|contact owner".split("|")
    ),
    "salesforce": frozenset(
        "lead id|account name|no. of employees|lead source|primary campaign source|lead score|"
        "created date|lead status|lead owner|state/province|zip/postal code|"
        # Data Loader and the weekly Data Export name the columns by field name
        "numberofemployees|leadsource|createddate|postalcode|mobilephone".split("|")
    ),
    "handoff": frozenset(
        "external_id|company.name|company.domain|company.employees|company.state|"
        "company.postcode|received_at".split("|")
    ),
}

_DATE_TARGETS = ("received_at", "first_conversion_at", "recent_conversion_at")
_SLASH_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/\d{2,4}\b")
_TIME_FORMATS = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p", " %I:%M%p")
_MONTH_FIRST = ("%m/%d/%Y", "%m/%d/%y")
_DAY_FIRST = ("%d/%m/%Y", "%d/%m/%y")
_OTHER_DATES = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%d %b %Y",
    "%d %B %Y",
    "%d-%b-%Y",  # Excel's "d-mmm-yyyy" and "d-mmm-yy": 20-Nov-2026, 20-Nov-26
    "%d-%b-%y",
)
# Salesforce's ICU locale formats (CLDR; its default since Spring '24) put a comma before the
# time: `11/20/2026, 9:30 AM`, `20.11.2026, 09:30`, `Nov 20, 2026, 9:30 AM`; CLDR 42 and later
# a narrow no-break space before AM/PM.
_COMMA_BEFORE_TIME = re.compile(r"(?<=\d),\s+(?=\d{1,2}:\d{2})")
_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})
_UTC_SUFFIX = re.compile(r"\s*(?:UTC|GMT)$", re.IGNORECASE)
# Excel shows a number of 12 digits or more in a General cell as 1.23457E+11, and saves a CSV
# as it shows it (1,23457E+11 in a European locale): a HubSpot Record ID so has lost its digits.
_EXCEL_SCIENTIFIC = re.compile(r"\d(?:[.,]\d+)?E\+\d+", re.IGNORECASE)
# What fixes a value Excel changed when it opened the file: not formatting the column as Text
# afterwards, which shows what the cell now holds (the long number still as 1.23457E+11, a
# range turned date as its serial number, 46032, read as that many employees), only reading
# the file again with the column as Text.
EXCEL_FIX = (
    "import the CRM's export as downloaded, or open it in Excel with Data > From Text/CSV with "
    "that column set to Text (once Excel has changed a value, formatting the column does not "
    "bring it back)"
)
# Excel's short month names, in the languages of the Excels whose dates are recognized below
# (a dot after them or not). Sources: CLDR's abbreviated month names (cldr-json
# `cldr-dates-full/main/LANG/ca-gregorian.json`), glibc's `abmon` (Debian's `locales`,
# /usr/share/i18n/locales/LANG_XX) and, where Windows differs, its own (German `Mrz`):
#   English    jan feb mar apr may jun jul aug sep(t) oct nov dec
#   German     jan feb mär/mrz apr mai jun(i) jul(i) aug sep okt nov dez (and März)
#   French     janv. févr. mars avr. mai juin juil(l). août sept. oct. nov. déc.
#   Spanish    ene feb mar abr may jun jul ago sep(t) oct nov dic
#   Dutch      jan feb mrt apr mei jun jul aug sep okt nov dec
#   Italian    gen feb mar apr mag giu lug ago set ott nov dic
#   Portuguese jan fev mar abr mai jun jul ago set out nov dez
#   Swedish    jan. feb. mars apr. maj juni juli aug. sep. okt. nov. dec. (CLDR; glibc: mar jun)
#   Danish     jan. feb. mar. apr. maj jun. jul. aug. sep. okt. nov. dec. (CLDR, glibc)
#   Norwegian  jan. feb. mars april mai juni juli aug. sep. okt. nov. des. (glibc nb_NO; the
#              full `april` is left out: no month is shorter there)
#   Finnish    tammi helmi maalis huhti touko kesä heinä elo syys loka marras joulu (CLDR,
#              glibc), tammik. helmik. … jouluk. (earlier CLDR data, still in .NET's tests)
#   Polish     sty lut mar kwi maj cze lip sie wrz paź lis gru (CLDR, glibc)
_MONTH_NAMES: dict[str, int] = {
    name: month
    for month, names in enumerate(
        (
            "jan janv ene gen tammi tammik sty",
            "feb févr fev helmi helmik lut",
            "mar mär märz mrz mars mrt maalis maalisk",
            "apr avr abr huhti huhtik kwi",
            "may mai mei mag maj touko toukok",
            "jun juni juin giu kesä kesäk cze",
            "jul juli juil juill lug heinä heinäk lip",
            "aug août ago elo elok sie",
            "sep sept set syys syysk wrz",
            "oct okt ott out loka lokak paź",
            "nov marras marrask lis",
            "dec dez déc dic des joulu jouluk gru",
        ),
        start=1,
    )
    for name in names.split()
}
_MONTHS = "|".join(sorted(_MONTH_NAMES, key=len, reverse=True))
# Excel opening a CSV reads an employee range as a date and saves it as it shows it: 1-10 as
# 10-Jan (or 01-Oct), 11-50 as Nov-50. Which range it was depends on Excel's locale. It shows
# them in its built-in "d-mmm" and "mmm-yy" formats, as the locale writes them and in its short
# month names (above): a German Excel `01. Okt` and `Nov 50`, a French one `1-oct.` and
# `nov.-50`, a Spanish one `3-dic`, a Dutch one `1-mrt`, a Swedish one `1-maj`, a Polish one
# `1-paź`. Only the employees column is checked: no count of employees is a month.
_EXCEL_RANGE_DATE = re.compile(
    rf"\d{{1,2}}\.?[-\s]?\s*(?:{_MONTHS})\.?|(?:{_MONTHS})\.?[-\s]\s*\d{{2,4}}", re.IGNORECASE
)
# An external id that is a pair of numbers (a CRM's `3-12`) is read by Excel as a date too,
# and saved as it shows it: `12-Mar` or `3-Dec` ("d-mmm": the pair as a month and a day, or a
# day and a month, in the locale's order), `Mar-50` ("mmm-yy", only when the second number
# is no day of that month: 3-50 is March 1950, 2-29 February 2029 but in a leap year), or,
# in a column shown as dates, the locale's short date (`3/12/2026`, `12/03/2026`,
# `12.03.2026`, `12-3-2026`, `2026-03-12`; LibreOffice's `03/12/26`, `12.03.26`). Only those
# shapes, whole, with a day that exists in that month (of that year, when it is written),
# count: `12345`, `00Q5e00000AbCdE`, `lead-2026-001`, `MAR-12-ACME` (a third part: Excel
# keeps it as text) and `Dec-01` (Excel writes 12-1 as 1-Dec) are ids.
_ID_DAY_MONTH = re.compile(rf"(\d{{1,2}})(?:\.?[-\s]\s*|\.)({_MONTHS})\.?", re.IGNORECASE)
_ID_MONTH_YEAR = re.compile(rf"({_MONTHS})\.?[-\s]\s*(\d{{2}})", re.IGNORECASE)
# The locale's short dates: the two numbers in the order its Excel reads a pair in and writes
# a date in (a month-first Excel writes 3-12 as 3/12/2026, a day-first one as 03/12/2026: the
# numbers as written are the id), then the year.
_ID_SHORT_DATES = (
    re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})"),
    re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})"),
    re.compile(r"(\d{1,2})-(\d{1,2})-(\d{4})"),
)
_ID_ISO_DATE = re.compile(r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})")
EXCEL_DATE_FIX = (
    "export the file again from the CRM and import it as downloaded; to edit it in Excel "
    "first, format the column as Text before pasting the ids in, or open the CSV with "
    "Data > From Text/CSV with that column set to Text"
)


def _a_day(month: int, day: int, year: int = 2000) -> bool:
    """Whether `day` exists in `month` of `year` (by default a leap year: 29 February does)."""
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def _year(digits: str) -> int:
    """A written year; two digits as 20yy (only whether it is a leap year matters, and 19yy
    is one alike, but for 00: Excel reads it as 2000, a leap year)."""
    return int(digits) + (2000 if len(digits) == 2 else 0)


def _pair(first: int, second: int) -> str:
    return f"{first}-{second}" if first == second else f"{first}-{second} or {second}-{first}"


def excel_date_of_id(value: str) -> str | None:
    """The ids Excel likely read as the date it wrote as `value` (`3-12 or 12-3` for `12-Mar`:
    a month-first Excel reads 3-12, a day-first one 12-3; `3-12` for `3/12/2026`, written in
    the order it was read), or None when `value` is none of the dates Excel writes for a pair
    of numbers, as an ordinary id is not."""
    if match := _ID_DAY_MONTH.fullmatch(value):
        day, month = int(match.group(1)), _MONTH_NAMES.get(match.group(2).casefold(), 0)
        return _pair(month, day) if _a_day(month, day) else None
    if match := _ID_MONTH_YEAR.fullmatch(value):
        month = _MONTH_NAMES.get(match.group(1).casefold(), 0)
        # A pair whose second number is a day of that month (in a year that is no leap year)
        # is shown as that day, "d-mmm": `Mar-12` is not how Excel writes 3-12 (`12-Mar`).
        return (
            f"{month}-{match.group(2)}"
            if month and not _a_day(month, int(match.group(2)), 2001)
            else None
        )
    for short_date in _ID_SHORT_DATES:
        if match := short_date.fullmatch(value):
            first, second, year = int(match.group(1)), int(match.group(2)), _year(match.group(3))
            return (
                f"{first}-{second}"
                if _a_day(first, second, year) or _a_day(second, first, year)
                else None
            )
    if match := _ID_ISO_DATE.fullmatch(value):
        year, month, day = int(match.group(1)), int(match.group(3)), int(match.group(4))
        return _pair(month, day) if _a_day(month, day, year) else None
    return None


_THOUSANDS = re.compile(r"\d{1,3}(?:[,.\u00a0 ]\d{3})+(?!\d)|\d+")

DATE_HINT = "must be a date like 2026-11-20 09:30 or 11/20/2026 9:30 AM"
UNCLOSED_QUOTE = "a quote is never closed"
KEPT = 1000  # errors (and repeated ids) an import keeps to show; those past it are counted
# The file "-" is standard input (POSIX Utility Syntax Guidelines, guideline 13), named so in
# the summary and the errors (as GNU head and tail name it).
STDIN = "-"
STDIN_NAME = "standard input"


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing, not CSV, no email column)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class RowPayload:
    """One spreadsheet row as a `POST /leads` payload, and what could not be converted."""

    line: int  # 1-based, as a spreadsheet shows it: the header is line 1
    payload: dict[str, Any]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (field, message)
    refused: str | None = None  # why the row as a whole cannot be read (its cells are unknown)
    # Payload field → the column that fills it, as the file names it (`Create Date`), so that
    # an error names the column the user sees: `Create Date (received_at): must be a date …`.
    labels: dict[str, str] = field(default_factory=dict)

    def labelled(self, problem: str) -> str:
        """A "field: message" error with the field's column named, if the file calls it
        something else (`Create Date (received_at): …`; `email` stays `email`)."""
        name, colon, message = problem.partition(": ")
        label = self.labels.get(name)
        if not colon or not label or _normalize(label) == name:
            return problem
        return f"{label} ({name}): {message}"


@dataclass(frozen=True)
class Sheet:
    """A whole CSV file, read and mapped."""

    rows: list[RowPayload]
    format: Format
    ignored_columns: list[str]
    email_as_id: bool  # no id column: each row's email is its external id
    has_times: bool = False  # a date column is mapped: its zone-less times were read in a zone
    footer: str | None = None  # "line N (its text)": a report's footer, not read as rows


@dataclass
class ImportSummary:
    """What an import did, row by row counted; `render()` is the closing report."""

    file: str
    format: Format = "csv"
    total: int = 0
    posted: int = 0  # new leads posted as MQLs
    nurtured: int = 0  # new leads kept in nurture: below the MQL definition
    duplicates: int = 0
    invalid: int = 0
    errors: list[str] = field(default_factory=list)  # "line N: field: message", the first KEPT
    ignored_columns: list[str] = field(default_factory=list)
    email_as_id: bool = False
    zone: str | None = None  # where times without a time zone were read, if the file had times
    footer: str | None = None  # "line N (its text)": where a report's footer began
    repeated: list[str] = field(default_factory=list)  # "line N: external_id X is line M's"
    first_lines: dict[str, int] = field(default_factory=dict, repr=False)  # id → its first line
    # Errors and repeats past the first KEPT are counted, not kept: a file of a million rows
    # whose dates all fail would hold them all, and the summary shows the first 50.
    errors_left_out: int = 0
    repeated_left_out: int = 0

    def error(self, text: str) -> None:
        if len(self.errors) < KEPT:
            self.errors.append(text)
        else:
            self.errors_left_out += 1

    def repeat(self, text: str) -> None:
        if len(self.repeated) < KEPT:
            self.repeated.append(text)
        else:
            self.repeated_left_out += 1

    @property
    def created(self) -> int:
        """New leads, posted or kept in nurture."""
        return self.posted + self.nurtured

    def render(self, max_errors: int = 50) -> str:
        """The closing summary: counts, each error with its line (up to max_errors), notes."""
        lines = [
            f"Imported {self.file} ({FORMAT_LABELS[self.format]}): {_count(self.total, 'row')}",
            f"  {_count(self.created, 'new lead')}",
        ]
        if self.created:
            mqls = "an MQL" if self.posted == 1 else "MQLs"
            lines[-1] += (
                f": {self.posted} posted as {mqls}, "
                f"{self.nurtured} kept in nurture (below the MQL definition)"
            )
        known = f"  {self.duplicates} already known (same external id), "
        if self.invalid:
            lines.append(known + f"{_count(self.invalid, 'row')} with errors:")
            lines += [f"  {error}" for error in self.errors[:max_errors]]
            if len(self.errors) + self.errors_left_out > max_errors:
                more = len(self.errors) + self.errors_left_out - max_errors
                lines.append(f"  … and {more} more")
        else:
            lines.append(known + "no errors.")
        if self.repeated:
            repeats = len(self.repeated) + self.repeated_left_out
            lines.append(f"  {repeats} not imported, an earlier row has its id:")
            lines += [f"  {repeat}" for repeat in self.repeated[:max_errors]]
            if repeats > max_errors:
                lines.append(f"  … and {repeats - max_errors} more")
        if self.footer:
            lines.append(f"Not read: the report's footer from {self.footer}.")
        if self.zone:
            lines.append(f"Times without a time zone were read in {self.zone}.")
        if self.email_as_id:
            lines.append("No id column: each row's email was used as its external id.")
        if self.ignored_columns:
            lines.append("Ignored columns: " + ", ".join(self.ignored_columns))
        return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


# ---------------------------------------------------------------------------------------------
# Reading the file
#
# A CRM export of a year of leads is 100k–1M rows: the file is read twice and never held whole
# (holding it took about 3.5 KB a row). The first pass reads every record without mapping it: it
# refuses a file that cannot be read as a whole (so nothing of it is stored, as before), decides
# the order of slash dates from every date in the file, finds a report's footer and counts the
# rows; the second maps each row as it is read, for `import_csv` to store it.


# SIGTERM (`kill`, systemd, Kubernetes, `timeout`) and SIGHUP (the terminal closed): their default
# action ends the process at once, with no clean-up (POSIX <signal.h>: "T" – abnormal
# termination), which would leave standard input's copy behind; `stopping` handles them.
STOPPING = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)  # SIGINT: Ctrl-C
SPOOL_PREFIX = "handoff-import-"


@contextmanager
def spooled(source: str, stdin: BinaryIO | None = None) -> Iterator[str]:
    """The file to import: `source`, or for "-" standard input copied to a temporary file, since
    the import reads its file twice and a pipe can be read once. The copy is made a chunk at a
    time (memory stays flat), is named "standard input" so every message names it so, and is
    deleted afterwards, also when the import fails or is interrupted (Ctrl-C, or SIGTERM and
    SIGHUP under `stopping`); its folder is named `SPOOL_PREFIX`…, for the copy a SIGKILL leaves."""
    if source != STDIN:
        yield source
        return
    if stdin is None and sys.stdin is not None:  # None: standard input is closed, read as empty
        stdin = sys.stdin.buffer
    folder = tempfile.TemporaryDirectory(prefix=SPOOL_PREFIX)  # only ours can read
    try:
        copy = Path(folder.name) / STDIN_NAME
        with copy.open("wb") as out:
            if stdin is not None:
                shutil.copyfileobj(stdin, out, 1 << 20)
        yield str(copy)
    finally:
        # A signal stopping the removal half-way would leave the copy: they wait until it is gone.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)
        try:
            folder.cleanup()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


class Stopped(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP stopped the import. A BaseException, as KeyboardInterrupt: no
    `except Exception` on the way keeps it, and every `finally` runs (the copy is deleted, the
    database closed). `message` is the line to show: what was stored by then."""

    def __init__(self, signum: int, stop: Stop, *, settled: bool) -> None:
        super().__init__(signum)
        self.signum = signum
        self.summary = stop.summary
        self.rows = stop.rows
        self.settled = settled  # False: stopped during a batch, some of it may be stored too

    @property
    def message(self) -> str:
        name = signal.Signals(self.signum).name
        summary = self.summary
        if summary is None or (not summary.total and self.settled):
            return f"handoff: import stopped by {name} before storing any row: nothing was stored."
        counts = (
            f"{_count(summary.created, 'new lead')} stored, {summary.duplicates} already known"
            + (f", {_count(summary.invalid, 'row')} refused" if summary.invalid else "")
            + ("" if self.settled else " (and perhaps some rows of the batch under way)")
        )
        return (
            f"handoff: import stopped by {name} after {summary.total} of {self.rows} rows: "
            f"{counts}; run the same import again to import the rest (rows already stored are "
            "skipped as already known by their external id)."
        )


class Stop:
    """Ctrl-C, SIGTERM and SIGHUP during an import (`stopping` installs it as their handler).

    Outside the event loop (standard input being copied) they raise `Stopped` at once. In it
    (`cancelling`) a handler must not raise, since the exception would land in whatever callback
    runs, so the import's task is cancelled instead, and the cancellation becomes `Stopped`. A
    batch in intake is let finish and counted first, so the line says exactly what was stored:
    `import_csv` stops after it (`check`). A second signal cancels at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.storing = False  # a batch is in intake
        self.settled = True  # False: cancelled during a batch, some of it may be stored too
        self.stopped = False  # `check` raised: the import's clean-up is not cancelled
        self.summary: ImportSummary | None = None  # what the import did so far
        self.rows: int | None = None  # the rows of the file
        self._task: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None

    def __call__(self, signum: int, frame: object) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if self._task is None:
            raise Stopped(signum, self, settled=True)
        loop, task = self._task
        loop.call_soon_threadsafe(self._cancel, task, first)

    def _cancel(self, task: asyncio.Task[Any], first: bool) -> None:
        if first and (self.storing or self.stopped):
            return  # `check` stops the import after the batch, or already did
        self.settled = not self.storing
        task.cancel()

    def check(self) -> None:
        """Between batches: stop if a signal came during the last one."""
        if self.signum is not None:
            self.stopped = True
            raise Stopped(self.signum, self, settled=True)

    @contextmanager
    def cancelling(self) -> Iterator[None]:
        """The current task, in its event loop, is cancelled by a signal: `Stopped` leaves."""
        task = asyncio.current_task()
        assert task is not None
        self._task = (asyncio.get_running_loop(), task)
        try:
            yield
        except asyncio.CancelledError:
            if self.signum is None:
                raise
            raise Stopped(self.signum, self, settled=self.settled) from None
        finally:
            self._task = None


@contextmanager
def stopping() -> Iterator[Stop]:
    """Ctrl-C, SIGTERM and SIGHUP stop the import (`Stop`, `Stopped`) until the block ends, then
    are handled as before. One ignored when the command started (`nohup` ignores SIGHUP) stays
    ignored."""
    stop = Stop()
    kept = {
        number: signal.signal(number, stop)
        for number in STOPPING
        if signal.getsignal(number) is not signal.SIG_IGN
    }
    try:
        yield stop
    finally:
        for number, handler in kept.items():
            signal.signal(number, handler)


# Rows mapped and sent to intake at a time: the intake of a batch runs concurrently, so its
# leads reach the store together and share its group commit (`storage.db.GroupCommit`).
BATCH = 500


@dataclass(frozen=True)
class _Layout:
    """What the first pass learned of a file, for the second to read its rows."""

    path: Path
    encoding: str
    columns: list[str]
    plan: dict[str, list[int]]
    ignored: list[str]
    day_first: bool
    rows: int  # rows to import (blank rows left out)
    end: int | None  # the line where a report's footer begins: no row from there on
    footer: str | None  # "line N (its text, …)"

    @property
    def mapped(self) -> set[int]:
        return {index for indexes in self.plan.values() for index in indexes}


def read_sheet(path: str | Path, zone: tzinfo = UTC) -> Sheet:
    """Read a CSV export and map every row to a lead payload; raise ImportFileError if unusable.
    Times without a time zone are read in `zone`. (All rows at once: `import_csv` streams.)"""
    layout = _scan(Path(path))
    return _sheet(layout, list(_payloads(layout, zone)), zone)


def _sheet(layout: _Layout, rows: list[RowPayload], zone: tzinfo) -> Sheet:
    header = [_normalize(cell) for cell in layout.columns]
    email_as_id = "external_id" not in layout.plan
    has_times = any(target in layout.plan for target in _DATE_TARGETS)
    return Sheet(
        rows, _detect_format(header), layout.ignored, email_as_id, has_times, layout.footer
    )


def read_rows(path: str | Path) -> tuple[list[RowPayload], list[str]]:
    """The rows of a CSV export as payloads, and the columns that were ignored."""
    sheet = read_sheet(path)
    return sheet.rows, sheet.ignored_columns


def _scan(path: Path) -> _Layout:
    """The first pass; ImportFileError if the file cannot be imported."""
    encoding = _encoding(path)
    try:
        return _scan_as(path, encoding)
    except UnicodeDecodeError:
        if encoding != "utf-8-sig":
            raise ImportFileError(
                f"{path.name} is not UTF-16 text, as its first bytes say it is: "
                "save it again as “CSV UTF-8”."
            ) from None
    _refuse_mixed_encodings(path)
    try:
        return _scan_as(path, "cp1252")  # what Excel on Windows writes for plain "CSV"
    except UnicodeDecodeError:
        raise ImportFileError(f"{path.name} is not UTF-8 text: save it as “CSV UTF-8”.") from None


_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
# What makes a line that decodes as UTF-8 UTF-8 text, not Windows-1252 text whose bytes happen
# to be UTF-8 (RFC 3629, section 4: "UTF8-2 = %xC2-DF UTF8-tail", "UTF8-tail = %x80-BF"; the
# UTF8-3 and UTF8-4 leads are E0-EF and F0-F4). In Windows-1252 (Unicode's CP1252.TXT mapping)
# a UTF-8 lead byte of two (C2-DF) is an accented capital or ß, and a continuation byte (80-BF)
# a curly quote, a dash, ™, ®, NBSP or another symbol: `CAFÉ’S` is C9 92, UTF-8 for "ɒ",
# `NESTLÉ®` C9 AE, `STRAUß’` DF 92. Such a pair alone is no evidence. A line is UTF-8 text when
# it holds
# - a character of 3 or 4 bytes (U+0800 on: curly quotes, €, CJK, a byte-order mark): in
#   Windows-1252 a lowercase à-ï (ð-÷) followed directly by two (three) symbols;
# - a Latin letter of 2 bytes (U+00A0-U+023F: é ü ñ ł ő ș ǎ ư, what Western UTF-8 text holds):
#   in Windows-1252 Â Ã Ä Å Æ Ç or È directly followed by a symbol, the mark of a UTF-8 text
#   read as Windows-1252 (`JosÃ©` is José), which words do not otherwise make;
# - two characters of 2 bytes in a row (a word in Greek, Cyrillic, Hebrew, Arabic, …): in
#   Windows-1252 two pairs of an accented capital and a symbol back to back;
# - a character of 2 bytes directly before a letter (Azerbaijani `Kərimov`, ə C9 99; the
#   ʻokina of `Hawaiʻi`, CA BB), unless its second byte is a Windows-1252 symbol that sits
#   inside words (‘ ’ – — NBSP, soft hyphen, ·: `CAFÉ’S`, `JOSÉ GARCIA`): in Windows-1252 an
#   accented capital, a ™ or » and a letter, which words do not make;
# - a letter and an accent of Unicode's canonical decomposition (NFD, what a Mac may write:
#   `Zoë` as e + U+0308, CC 88): in Windows-1252 a letter, Ì and a symbol (`ZoeÌˆ`).
_UTF8_TEXT = re.compile(
    "[\u00a0-\u023f\u0800-\U0010ffff]|[\u0080-\u07ff]{2}"
    "|[^\\W\\d_][\u0300-\u0304\u0306-\u030c\u030f\u0311\u031b\u0323-\u0328\u032d\u032e\u0330\u0331]"
)
_BEFORE_A_LETTER = re.compile(r"[\u0240-\u07ff](?=[^\W\d_])")
_INSIDE_WORDS = b"\x91\x92\x96\x97\xa0\xad\xb7"  # Windows-1252 ‘ ’ – — NBSP, soft hyphen, ·


def _is_utf8_text(text: str) -> bool:
    """Whether a line that decodes as UTF-8 is UTF-8 text (`_UTF8_TEXT`)."""
    return _UTF8_TEXT.search(text) is not None or any(
        0x80 | ord(match.group()) & 0x3F not in _INSIDE_WORDS  # its second byte
        for match in _BEFORE_A_LETTER.finditer(text)
    )


def _refuse_mixed_encodings(path: Path) -> None:
    """A file that is not UTF-8 is read as Windows-1252, unless some of its lines are UTF-8
    text (two exports pasted together): read so, their José would become JosÃ©. A line whose
    bytes are UTF-8 only by chance (`CAFÉ’S`, `_is_utf8_text`) is no such line. Lines are counted
    as every other message counts them, as a spreadsheet's rows: a line break inside quotes (an
    odd count of `"` before it) does not end a row, and Excel's `sep=` line is not one. The
    file is read a chunk at a time."""
    utf8: int | None = None
    other: tuple[int, int] | None = None  # (line, its first byte that is not UTF-8)
    number, carry, quoted, first = 0, b"", False, True
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            data = carry + chunk
            held = b"\r" if chunk and data.endswith(b"\r") else b""  # its \n may come next
            lines = _LINE_BREAK.split(data[: len(data) - len(held)])
            carry = (lines.pop() if chunk else b"") + held
            for line in lines:
                hint, first = first and re.fullmatch(rb"sep=.", line) is not None, False
                number += not quoted and not hint
                quoted ^= line.count(b'"') % 2 == 1
                if line.isascii():
                    continue
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as error:
                    other = other or (number, line[error.start])
                else:
                    if _is_utf8_text(text):
                        utf8 = utf8 or number
                if utf8 and other:
                    raise ImportFileError(
                        f"{path.name} mixes two encodings: line {utf8} is UTF-8 and line "
                        f"{other[0]} is not (byte 0x{other[1]:02X}): save it again as “CSV UTF-8”."
                    )
            if not chunk:
                return


def _encoding(path: Path) -> str:
    """How to decode the file, from its first bytes: UTF-8 (with or without a BOM), which the
    first pass falls back from to cp1252 at the first byte that is not UTF-8, or UTF-16."""
    try:
        with path.open("rb") as handle:
            start = handle.read(4096)
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file.") from None
    except OSError as error:
        raise ImportFileError(f"{path}: cannot read it ({error.strerror}).") from None
    if start.startswith(b"PK\x03\x04"):
        raise ImportFileError(_zipped(path))
    if start.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):  # OLE2: Excel 97-2003
        raise ImportFileError(
            f"{path.name} is an Excel 97-2003 workbook (.xls), not CSV: "
            "save it as “CSV UTF-8” and import that."
        )
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"  # Excel's "Unicode text"
    if b"\x00" in start:
        raise ImportFileError(f"{path.name} is a binary file, not CSV.")
    return "utf-8-sig"


def _zipped(path: Path) -> str:
    """Why a ZIP file is not imported: an Excel workbook (.xlsx is a ZIP of XML), or an
    archive (an export downloaded zipped, the CSV inside): unzip it first."""
    workbook = f"{path.name} is an Excel workbook, not CSV: save it as “CSV UTF-8” and import that."
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return workbook
    if not names or any(name.startswith("xl/") for name in names):
        return workbook
    inside = [Path(name).name for name in names if name.lower().endswith((".csv", ".txt"))]
    if not inside:
        return f"{path.name} is a ZIP archive, not CSV: it holds no CSV file."
    shown = ", ".join(inside[:3]) + (", …" if len(inside) > 3 else "")
    return f"{path.name} is a ZIP archive, not CSV: unzip it and import the CSV inside ({shown})."


@contextmanager
def _open(path: Path, encoding: str) -> Iterator[tuple[_Records, list[str]]]:
    """The file's records after its column names, and the column names."""
    try:
        # newline="": lines end at \n, \r\n or \r, kept as written (the csv module reads them)
        with path.open(encoding=encoding, newline="") as handle:
            if _first_character(handle) in ("[", "{"):
                raise ImportFileError(
                    f"{path.name} looks like JSON, not CSV: send JSON leads to POST /leads instead."
                )
            handle.seek(0)
            lines: Iterator[str] = iter(handle)
            first_line = next(lines, "")
            delimiter, hint = _delimiter(first_line.rstrip("\r\n"))
            if not hint:
                lines = itertools.chain([first_line], lines)
            reading = _Records(lines, delimiter)
            try:
                columns = reading.record(fits=lambda cells: not any(map(_breaks, cells)))
            except csv.Error as error:
                raise ImportFileError(f"{path.name} line 1: not valid CSV ({error}).") from None
            if columns is None:
                raise ImportFileError(f"{path.name} line 1: {UNCLOSED_QUOTE} in the column names.")
            yield reading, columns
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file.") from None


def _first_character(handle: TextIO) -> str:
    while chunk := handle.read(4096):
        if text := chunk.lstrip():
            return text[0]
    return ""


def _delimiter(first_line: str) -> tuple[str, bool]:
    """The delimiter, and whether the first line is Excel's delimiter hint (`sep=;`), which
    Excel does not show as a row."""
    hint = re.fullmatch(r"sep=(.)", first_line)
    if hint:
        return hint.group(1), True
    unquoted = re.sub(r'"(?:[^"]|"")*"', "", first_line)  # a quoted name's commas are its own
    counts = {d: unquoted.count(d) for d in (",", ";", "\t")}
    return (max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","), False


def _scan_as(path: Path, encoding: str) -> _Layout:
    with _open(path, encoding) as (reading, columns):
        if not any(cell.strip() for cell in columns):
            raise ImportFileError(f"{path.name} is empty: the first line must name the columns.")
        plan = _plan([_normalize(cell) for cell in columns])
        if "email" not in plan:
            found = ", ".join(cell.strip() for cell in columns if cell.strip())
            raise ImportFileError(
                f"{path.name} has no email column, so it is not a lead export this can read. "
                "The first line must name the columns (Email, First Name, Last Name, Company, …); "
                f"found: {found[:200]}"
            )
        mapped = {index for indexes in plan.values() for index in indexes}
        ignored = list(
            dict.fromkeys(
                cell.strip()
                for index, cell in enumerate(columns)
                if index not in mapped and cell.strip()
            )
        )
        ending = _Ending(plan)
        for line, cells in _records(path, reading, _fits(reading, mapped, len(columns))):
            ending.add(line, cells)
    day_first, rows, end, footer = ending.settle(footer_possible=len(columns) > 1)
    return _Layout(path, encoding, columns, plan, ignored, day_first, rows, end, footer)


def _payloads(layout: _Layout, zone: tzinfo) -> Iterator[RowPayload]:
    """The second pass: each row as it is read, mapped to its payload (the footer left out)."""
    email_as_id = "external_id" not in layout.plan
    with _open(layout.path, layout.encoding) as (reading, columns):
        for line, cells in _records(
            layout.path, reading, _fits(reading, layout.mapped, len(columns))
        ):
            if layout.end is not None and line >= layout.end:
                return
            if cells is None:
                yield RowPayload(line, {}, refused=UNCLOSED_QUOTE)
            elif any(map(str.strip, cells)):
                if too_long := _too_long(cells, len(columns), reading.delimiter):
                    yield RowPayload(line, {}, refused=too_long)
                    continue
                headers: dict[str, str] = {}
                values = _values(layout.plan, cells, columns, headers)
                yield _row(
                    line,
                    values,
                    email_as_id=email_as_id,
                    day_first=layout.day_first,
                    zone=zone,
                    headers=headers,
                )


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def _too_long(cells: list[str], width: int, delimiter: str) -> str | None:
    """Why a row with cells past the last column is refused, or None. A cell holding the
    delimiter and not quoted (`Acme, Inc`) splits in two, and every cell after it lands one
    column off (the title in the phone's): nothing of the row can be trusted. Empty cells past
    the last column are padding (Excel writes them), not cells."""
    filled = [index for index, cell in enumerate(cells) if cell.strip()]
    if not filled or filled[-1] < width:
        return None
    past = [cell.strip()[:40] for cell in cells[width:] if cell.strip()]
    shown = ", ".join(past[:3]) + (", …" if len(past) > 3 else "")
    name = _DELIMITER_NAMES.get(delimiter, repr(delimiter))
    example = f', as in "Acme{delimiter} Inc"' if delimiter in ",;" else ""
    return (
        f"{filled[-1] + 1} cells, but the first line names {width} columns (past them: "
        f"{shown}): a cell holding a {name} must be in quotes{example}"
    )


def _records(
    path: Path, reading: _Records, fits: Callable[[list[str]], bool]
) -> Iterator[tuple[int, list[str] | None]]:
    """Each record after the column names with its line (None: a quote never closed)."""
    try:
        for cells in reading.rest(fits):
            yield reading.number, cells
    except csv.Error as error:
        raise ImportFileError(
            f"{path.name} line {reading.number}: not valid CSV ({error})."
        ) from None


def _fits(reading: _Records, mapped: set[int], width: int) -> Callable[[list[str]], bool]:
    def fits(cells: list[str]) -> bool:
        """A record of several lines is one row (RFC 4180 lets a quoted cell hold line breaks)
        unless a cell we read took another row's cells: an unclosed quote brings them along,
        with their delimiters and the email."""
        taken = [cells[i] for i in mapped if i < len(cells) and _breaks(cells[i])]
        return not taken or (
            len(cells) == width
            and not any(reading.delimiter in cell or "@" in cell for cell in taken)
        )

    return fits


def _breaks(cell: str) -> bool:
    return "\n" in cell or "\r" in cell


class _Records:
    """A CSV file's records, read one at a time so that one whose quote is never closed is
    refused alone: a lenient reader would take the rest of the file into that one cell, and
    report nothing. Reading goes on at the line after the refused record's first. Only the
    lines of the record being read are held (a cell holds at most the csv module's
    field_size_limit, 128 KiB: a quote never closed stops there, with a csv.Error)."""

    def __init__(self, lines: Iterator[str], delimiter: str) -> None:
        self.lines = lines
        self.delimiter = delimiter
        self.again: list[str] = []  # lines to read again, the next one last
        self.taken: list[str] = []  # the lines of the record being read
        self.number = 0  # the records read so far: a spreadsheet's row number

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:  # the csv readers read the lines through this
        line = self.again.pop() if self.again else next(self.lines)
        self.taken.append(line)
        return line

    def rest(self, fits: Callable[[list[str]], bool]) -> Iterator[list[str] | None]:
        """Each remaining record's cells, None for one whose quote is never closed."""
        while self.again or self._more():
            yield self.record(fits)

    def _more(self) -> bool:
        line = next(self.lines, None)
        if line is None:
            return False
        self.again.append(line)
        return True

    def record(self, fits: Callable[[list[str]], bool]) -> list[str] | None:
        """The next record ([] at the end), or None if a quote in it is never closed: strict
        reading fails, or it spans lines and `fits` refuses the cells that took them."""
        self.number += 1
        self.taken = []
        reader = csv.reader(self, delimiter=self.delimiter, strict=True)
        try:
            cells = next(reader, [])
        except csv.Error as error:
            # "unexpected end of data": the file ended inside a quote, so the quote never closed.
            if len(self.taken) == 1 and "end of data" not in str(error):
                # `"Acme" Inc` within one line: read as Excel reads it (`Acme Inc`).
                return next(csv.reader(self.taken, delimiter=self.delimiter))
            cells = None
        if cells is None or (len(self.taken) > 1 and not fits(cells)):
            self.again.extend(reversed(self.taken[1:]))
            return None
        return cells


class _Ending:
    """What the first pass keeps of the records it reads: the order of slash dates (from every
    row's dates), the rows, and the run of one-cell records at the end so far, which is a
    report's footer if a blank row begins it and the file ends with it (Salesforce's "Grand
    Totals (7 records)", its copyright, "Generated By: …"; a cell with an @ is a lead's email,
    not a footer; Excel, saving it again, pads it: "…",,,)."""

    def __init__(self, plan: dict[str, list[int]]) -> None:
        self.dates = [index for target in _DATE_TARGETS for index in plan.get(target, [])]
        self.orders = (False, False)  # (a date reads only day first, one only month first)
        self.rows = 0
        self._restart()

    def _restart(self) -> None:
        self.blank: int | None = None  # the line of the run's first blank row
        self.text: tuple[int, str] | None = None  # its first line with text after that
        self.before = self.after = (False, False)  # the run's date orders, before/after it
        self.rows_before = self.rows_after = 0

    def add(self, line: int, cells: list[str] | None) -> None:
        filled = cells is None or any(map(str.strip, cells))
        orders = _orders(self.dates, cells or [])
        if cells is None or any(map(str.strip, cells[1:])) or "@" in (cells[:1] or [""])[0]:
            self.orders = _either(self.orders, _either(self.before, self.after), orders)
            self.rows += self.rows_before + self.rows_after + 1
            self._restart()
        elif self.blank is None:
            self.before = _either(self.before, orders)
            self.rows_before += filled
            if not filled:
                self.blank = line
        else:
            self.after = _either(self.after, orders)
            self.rows_after += filled
            if filled and self.text is None:
                self.text = line, cells[0].strip()

    def settle(self, footer_possible: bool) -> tuple[bool, int, int | None, str | None]:
        """(slash dates read day first, the rows, the footer's line, "line N (its text, …)")."""
        footer = footer_possible and self.text is not None
        orders = _either(self.orders, self.before, (False, False) if footer else self.after)
        rows = self.rows + self.rows_before + (0 if footer else self.rows_after)
        day_first = orders[0] and not orders[1]
        if not footer or self.text is None:
            return day_first, rows, None, None
        line, text = self.text
        return day_first, rows, self.blank, f"line {line} ({text[:40]}, …)"


def _orders(dates: list[int], cells: list[str]) -> tuple[bool, bool]:
    # 03/04/2026 is ambiguous; a file is day-first if any of its slash dates only reads that way.
    day_first = month_first = False
    for index in dates:
        match = _SLASH_DATE.match(cells[index]) if index < len(cells) else None
        if match:
            day_first |= int(match.group(1)) > 12
            month_first |= int(match.group(2)) > 12
    return day_first, month_first


def _either(*orders: tuple[bool, bool]) -> tuple[bool, bool]:
    return any(day for day, _ in orders), any(month for _, month in orders)


def _normalize(header: str) -> str:
    """`  E-Mail  Address ` → `email address`: case, spaces and the hyphen of e-mail aside."""
    return " ".join(header.strip().lower().replace("e-mail", "email").split())


def _plan(header: list[str]) -> dict[str, list[int]]:
    """Payload path → column indexes that feed it, best first."""
    plan: dict[str, list[int]] = {}
    for target, aliases in COLUMNS.items():
        indexes = [i for alias in aliases for i, name in enumerate(header) if name == alias]
        if indexes:
            plan[target] = indexes
    return plan


def _detect_format(header: list[str]) -> Format:
    hits = {name: len(markers.intersection(header)) for name, markers in _MARKERS.items()}
    best = max(hits, key=lambda name: hits[name])
    ties = [name for name, count in hits.items() if count == hits[best]]
    return best if hits[best] and len(ties) == 1 else "csv"


def _values(
    plan: dict[str, list[int]],
    cells: list[str],
    columns: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """Payload path → the first non-empty cell that feeds it (empty cells are left out). With
    `columns`, `headers` gets each path's column name: the one its value came from, else the
    first that feeds it."""
    values: dict[str, str] = {}
    for target, indexes in plan.items():
        if columns is not None and headers is not None:
            headers[target] = columns[indexes[0]].strip()
        for index in indexes:
            cell = cells[index] if index < len(cells) else ""
            cell = " ".join(cell.split()) if _breaks(cell) else cell.strip()  # one line
            if cell:
                values[target] = cell
                if columns is not None and headers is not None:
                    headers[target] = columns[index].strip()
                break
    return values


# ---------------------------------------------------------------------------------------------
# Converting one row


# Payload fields filled by the column of the same target (see COLUMNS).
_LABELLED = frozenset(
    "external_id email name title phone source campaign segment score received_at".split()
)


def _row(
    line: int,
    values: dict[str, str],
    *,
    email_as_id: bool,
    day_first: bool,
    zone: tzinfo,
    headers: dict[str, str] | None = None,
) -> RowPayload:
    headers = headers or {}
    payload: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key in ("external_id", "email", "title", "phone", "campaign", "segment"):
        if key in values:
            payload[key] = values[key]
    if _EXCEL_SCIENTIFIC.fullmatch(values.get("external_id", "")):
        message = f"is a long number as Excel shows it, its last digits lost: {EXCEL_FIX}"
        problems.append(("external_id", f"{values['external_id']} {message}"))
    elif ids := excel_date_of_id(values.get("external_id", "")):
        message = f"is a date Excel made of an id like {ids}: {EXCEL_DATE_FIX}"
        problems.append(("external_id", f"{values['external_id']} {message}"))
    if email_as_id and "email" in values:
        payload["external_id"] = values["email"].lower()
    name = values.get("name") or " ".join(
        part for part in (values.get("first_name"), values.get("last_name")) if part
    )
    if name:
        payload["name"] = name
    if "source" in values:
        payload["source"] = slug(values["source"])
    company = _company(values, problems)
    if company:
        payload["company"] = company
    if "score" in values:
        score = parse_score(values["score"])
        if score is None:
            problems.append(("score", "must be a number like 85"))
        else:
            payload["score"] = score
    if "received_at" in values:
        received = parse_timestamp(values["received_at"], day_first=day_first, zone=zone)
        if received is None:
            problems.append(("received_at", DATE_HINT))
        else:
            payload["received_at"] = received
    kinds: list[str] = []  # the conversion each engagement item is
    unread: dict[str, str] = {}  # the conversion whose date an "engagement[N].at" error is
    engagement = _conversions(
        values, problems, day_first=day_first, zone=zone, kinds=kinds, unread=unread
    )
    if engagement:
        payload["engagement"] = engagement
    labels = {
        target: header
        for target, header in headers.items()
        if target in _LABELLED or target.startswith("company.")
    }
    if email_as_id:
        labels["external_id"] = headers.get("email", "")
    if "name" not in headers:
        names = [headers[key] for key in ("first_name", "last_name") if key in headers]
        labels["name"] = " + ".join(names)
    for index, kind in enumerate(kinds):
        labels[f"engagement[{index}].title"] = headers.get(kind, "")
        labels[f"engagement[{index}].at"] = headers.get(f"{kind}_at", "")
    for name, kind in unread.items():  # its item may since have become the recent conversion
        labels[name] = headers.get(f"{kind}_at", "")
    return RowPayload(line, payload, problems, labels={k: v for k, v in labels.items() if v})


def _company(values: dict[str, str], problems: list[tuple[str, str]]) -> dict[str, Any]:
    company: dict[str, Any] = {}
    for key in ("name", "industry", "state", "postcode"):
        if f"company.{key}" in values:
            company[key] = values[f"company.{key}"]
    if "company.country" in values:
        company["country"] = country_code(values["company.country"])
    if "company.domain" in values:
        company["domain"] = domain_of(values["company.domain"])
    if "company.employees" in values:
        employees = parse_employees(values["company.employees"])
        if _EXCEL_RANGE_DATE.fullmatch(values["company.employees"]):
            message = (
                f"{values['company.employees']} is a date Excel made of a range (1-10 becomes "
                f"10-Jan, 11-50 Nov-50): {EXCEL_FIX}"
            )
            problems.append(("company.employees", message))
        elif employees is None:
            message = "must be a number like 1200 or a range like 1000-5000"
            problems.append(("company.employees", message))
        else:
            company["employees"] = employees
    return company


# What a HubSpot conversion's form title says it was, so the SLA file's intent signals apply
# ("Demo request form" is a demo request, "Ebook: …" a content download); anything else stays
# a generic form fill. A webinar registration is not an attended event: a form.
_CONVERSION_KINDS = (
    (
        re.compile(
            r"\b(demo|contact sales|talk to (sales|an expert)|book a (call|meeting))\b", re.I
        ),
        "demo_request",
    ),
    (
        re.compile(r"\b(e-?book|white ?paper|guide|template|report|download|checklist)\b", re.I),
        "content_download",
    ),
)


def conversion_kind(title: str) -> str:
    """The engagement type of a HubSpot conversion, from its form's title."""
    for pattern, kind in _CONVERSION_KINDS:
        if pattern.search(title):
            return kind
    return "form"


def _conversions(
    values: dict[str, str],
    problems: list[tuple[str, str]],
    *,
    day_first: bool,
    zone: tzinfo,
    kinds: list[str] | None = None,
    unread: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """HubSpot's first and recent conversion columns as engagement items, typed by what the
    form's title says (`conversion_kind`); `kinds` gets the conversion each item is, `unread`
    the conversion whose date each "engagement[N].at" problem is."""
    items: list[dict[str, Any]] = []
    kinds = [] if kinds is None else kinds
    unread = {} if unread is None else unread
    for kind in ("first_conversion", "recent_conversion"):
        title = values.get(kind)
        if not title:
            continue
        item: dict[str, Any] = {"type": conversion_kind(title), "title": title}
        if f"{kind}_at" in values:
            at = parse_timestamp(values[f"{kind}_at"], day_first=day_first, zone=zone)
            if at is None:
                problems.append((f"engagement[{len(items)}].at", DATE_HINT))
                unread[f"engagement[{len(items)}].at"] = kind
            else:
                item["at"] = at
        if items and items[-1]["title"] == title and items[-1].get("at") in (None, item.get("at")):
            items[-1] = item  # one conversion only: HubSpot repeats it as first and recent
            kinds[-1] = kind
        else:
            items.append(item)
            kinds.append(kind)
    return items


def slug(value: str) -> str:
    """A CRM picklist label as a source key: `Paid Search` → `paid_search`."""
    return re.sub(r"[^a-z0-9]+", "_", value.strip().lower()).strip("_") or value.strip()


def domain_of(value: str) -> str:
    """`https://www.Acme.com/about` → `acme.com` (scheme, www., port and path removed)."""
    text = value.strip()
    try:
        host = urlsplit(text if "://" in text else f"//{text}").hostname or text.lower()
    except ValueError:  # e.g. an unbalanced "[" that urlsplit takes for an IPv6 address
        host = text.lower()
    return host.removeprefix("www.")


# Country names as the `holidays` package names its countries (every ISO 3166-1 country), and
# the spellings CRMs use besides, so the SLA's rules (`country: [AU, NZ, US, GB]`) match.
_COUNTRY_CODES: dict[str, str] = {
    name.replace("_", " "): codes[1] for name, codes in HOLIDAY_COUNTRIES.items()
} | {
    "usa": "US",
    "united states of america": "US",
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "hong kong": "HK",
    "hong kong sar": "HK",
    "macao": "MO",
    "czech republic": "CZ",
    "korea": "KR",
    "republic of korea": "KR",
    "korea republic of": "KR",
    "viet nam": "VN",
    "turkiye": "TR",
    "cote d ivoire": "CI",
    "democratic republic of the congo": "CD",
    "republic of the congo": "CG",
    "russian federation": "RU",
    "uae": "AE",
    "holland": "NL",
    "swaziland": "SZ",
    "cape verde": "CV",
    "burma": "MM",
    "east timor": "TL",
    "vatican": "VA",
    "syria": "SY",
    "macedonia": "MK",
}


def country_code(value: str) -> str:
    """A country as its ISO 3166-1 alpha-2 code: `Australia` → `AU`, `au` → `AU`, `USA` → `US`;
    a name it does not know is kept as given."""
    text = value.strip()
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    key = " ".join(re.sub(r"[^a-z0-9]+", " ", folded.replace("&", " and ")).split())
    code = _COUNTRY_CODES.get(key.removeprefix("the "))
    if code:
        return code
    return text.upper() if re.fullmatch(r"[A-Za-z]{2}", text) else text


def parse_employees(value: str) -> int | None:
    """`1,200` → 1200; a range `1000-5000` or `10,001+` → its lower bound; None if no number.
    A negative number stays negative, for intake to refuse (`-5` is not 5 employees)."""
    text = value.strip()
    if re.match(r"-\s*\d", text) and (number := parse_employees(text[1:])) is not None:
        return -number
    if re.fullmatch(r"\d+\.0*", text):
        return int(text.split(".")[0])
    match = _THOUSANDS.search(text)
    return int(re.sub(r"\D", "", match.group())) if match else None


def parse_score(value: str) -> int | None:
    """`85`, `85.0` → 85 (rounded); None if it is not a number."""
    try:
        return round(float(value.strip().replace(",", ".")))
    except (ValueError, OverflowError):
        return None


def parse_timestamp(value: str, *, day_first: bool = False, zone: tzinfo = UTC) -> str | None:
    """An export's date-time as ISO-8601 UTC (`2026-11-20T09:30:00Z`). One without a time zone
    is read in `zone`: HubSpot and Salesforce write times in the account's zone, not UTC."""
    text = _COMMA_BEFORE_TIME.sub(" ", value.translate(_SPACES).strip())
    text, utc_named = _UTC_SUFFIX.subn("", text)
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = _strptime(text, day_first=day_first)
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC if utc_named else zone)
    try:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:  # year 1 or 9999 moved past the calendar's end by the zone
        return None


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (Australia/Sydney); ValueError with a hint if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        hint = zone_hint(name)
        raise ValueError(
            f"{name!r} is not a time zone (an IANA name like Australia/Sydney or UTC){hint}"
        ) from None


def _strptime(text: str, *, day_first: bool) -> datetime | None:
    slashes = _DAY_FIRST + _MONTH_FIRST if day_first else _MONTH_FIRST + _DAY_FIRST
    for date_format in slashes + _OTHER_DATES:
        for time_format in _TIME_FORMATS:
            try:
                return datetime.strptime(text, date_format + time_format)
            except ValueError:
                continue
    return None


# ---------------------------------------------------------------------------------------------
# Importing


async def import_csv(
    path: str,
    intake: Intake,
    *,
    zone: tzinfo = UTC,
    progress: bool = True,
    out: TextIO = sys.stderr,
    stop: Stop | None = None,
) -> ImportSummary:
    """Send every row of a CSV export through `intake`; bad rows are reported and skipped.

    `intake(payload)` answers a `Status` and, when it refuses, ["field: message", ...]. Times
    without a time zone are read in `zone`. Raises ImportFileError when the file as a whole
    cannot be read, before any row reaches intake; an exception from `intake` (the database is
    down) stops the import and propagates (the rows before it stay stored).

    The file is read twice and never held whole (`_scan`, then `_payloads`); rows are sent
    `BATCH` at a time, the intake of a batch concurrently, and counted in the file's order.
    With `stop`, a SIGTERM or SIGHUP during a batch stops the import after it (`Stopped`).
    """
    layout = _scan(Path(path))
    sheet = _sheet(layout, [], zone)
    summary = ImportSummary(
        file=Path(path).name,
        format=sheet.format,
        ignored_columns=sheet.ignored_columns,
        email_as_id=sheet.email_as_id,
        zone=str(zone) if sheet.has_times else None,
        footer=sheet.footer,
    )
    stop = stop or Stop()
    stop.summary, stop.rows = summary, layout.rows
    show = progress and out.isatty()
    with tqdm(total=layout.rows, file=out, disable=not show, unit="row", desc=summary.file) as bar:
        batch: list[RowPayload] = []
        for row in _payloads(layout, zone):
            batch.append(row)
            if len(batch) == BATCH:
                await _stored(batch, intake, summary, stop)
                bar.update(len(batch))
                batch = []
        await _stored(batch, intake, summary, stop)
        bar.update(len(batch))
    return summary


async def _stored(
    rows: list[RowPayload], intake: Intake, summary: ImportSummary, stop: Stop
) -> None:
    """A batch through intake and counted, a first SIGTERM or SIGHUP waiting until it is."""
    stop.check()  # one came while the file was read: no batch more
    stop.storing = True
    try:
        await _import_batch(rows, intake, summary)
    finally:
        stop.storing = False
    stop.check()


async def _import_batch(rows: list[RowPayload], intake: Intake, summary: ImportSummary) -> None:
    """Rows in the file's order, their intake concurrent; a row repeating the id of an earlier
    row of the batch waits for that row's answer (if intake refused it, this one is the first)."""
    waiting: list[tuple[RowPayload, list[str]]] = []
    ids: set[str] = set()
    for row in rows:
        problems = _problems(row, summary)
        if not problems and row.payload["external_id"] in ids:
            await _import_rows(waiting, intake, summary)
            waiting, ids = [], set()
        waiting.append((row, problems))
        if not problems:
            ids.add(row.payload["external_id"])
    await _import_rows(waiting, intake, summary)


def _problems(row: RowPayload, summary: ImportSummary) -> list[str]:
    """What is wrong with a row before intake sees it: "field: message" each."""
    if row.refused:
        return [row.refused]
    problems = [f"{name}: {message}" for name, message in row.problems]
    _, errors = parse_lead(row.payload)
    problems += [
        f"{error.field}: {error.message}"
        for error in errors
        # With no id column the id is the email: its error is already the email's.
        if not (summary.email_as_id and error.field == "external_id")
    ]
    return problems


async def _import_rows(
    rows: list[tuple[RowPayload, list[str]]], intake: Intake, summary: ImportSummary
) -> None:
    """Rows with distinct ids and their problems: those without any go to intake together
    (their leads share the store's group commit), and each is counted in order."""
    sent = [
        row
        for row, problems in rows
        if not problems and row.payload["external_id"] not in summary.first_lines
    ]
    answers = await asyncio.gather(*(intake(row.payload) for row in sent), return_exceptions=True)
    for answer in answers:  # each intake has finished: none is left running
        if isinstance(answer, BaseException):
            raise answer
    answered = dict(zip((row.line for row in sent), answers, strict=True))
    for row, problems in rows:
        summary.total += 1
        if not problems:
            external_id = row.payload["external_id"]
            first = summary.first_lines.get(external_id)
            if row.line not in answered:  # intake would call it known: it is, from this file
                name = "email" if summary.email_as_id else "external_id"
                summary.repeat(f"line {row.line}: {name} {external_id} is line {first}'s")
                continue
            status, intake_errors = cast(tuple[Status, list[str]], answered[row.line])
            if status != "invalid":
                summary.first_lines[external_id] = row.line
            if status == "mql":
                summary.posted += 1
                continue
            if status == "nurture":
                summary.nurtured += 1
                continue
            if status == "duplicate":
                summary.duplicates += 1
                continue
            if status != "invalid":
                raise ValueError(f"intake answered {status!r}, not mql/nurture/duplicate/invalid")
            problems = intake_errors or ["rejected by intake"]
        summary.invalid += 1
        for problem in problems:
            summary.error(f"line {row.line}: {row.labelled(problem)}")
