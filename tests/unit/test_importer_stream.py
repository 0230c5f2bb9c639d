"""`handoff import` of a CRM export of any size: the file is read in two passes, never held
whole, so a year of leads (100k–1M rows) imports on a small VM; every row is still imported
in order, and what refuses the file as a whole still stores nothing."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from bot.cli import importer
from bot.cli.importer import ImportFileError, Status, import_csv
from tests.unit.test_importer import FakeIntake, write

HEADER = "Record ID,Email,Company Name,HubSpot Score,Create Date\n"


def rows(count: int, start: int = 0) -> str:
    return "".join(
        f"{n},lead{n}@acme{n}.com,Acme {n},{n % 100},2026-11-{1 + n % 28:02d} 09:30\n"
        for n in range(start, start + count)
    )


class Discard:
    """Intake that stores nothing (as a database would, away from this process)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, payload: dict[str, Any]) -> tuple[Status, list[str]]:
        self.calls += 1
        return "mql", []


async def peak_bytes(path: Path) -> int:
    tracemalloc.start()
    try:
        summary = await import_csv(str(path), Discard(), progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.invalid == 0, summary.render()
    return peak


async def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """The whole file was read, decoded, split and mapped before the first row was stored:
    about 3 KB a row (100,000 rows: 400 MB). Now what grows with the file is the set of ids
    seen (a repeated id is named), under 200 bytes a row."""
    small = write(tmp_path, HEADER + rows(2_000), "small.csv")
    large = write(tmp_path, HEADER + rows(8_000), "large.csv")
    await peak_bytes(small)  # caches warmed (time zones, strptime's formats)
    growth = (await peak_bytes(large) - await peak_bytes(small)) / 6_000
    assert growth < 400, f"{growth:.0f} bytes more for each row more"


async def test_a_file_larger_than_a_batch_is_imported_whole_and_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH", 7)
    again = "{},again@acme.com,Acme,10,2026-11-02 09:30\n"
    text = HEADER + rows(4) + again.format(1) + rows(26, 4) + again.format(3) + rows(20, 30)
    path = write(tmp_path, text + "99,not-an-email,Acme,10,2026-11-02 09:30\n")
    intake = FakeIntake()
    summary = await import_csv(str(path), intake, progress=False)
    assert list(intake.leads) == [str(n) for n in range(50)]  # every row, in the file's order
    assert summary.repeated == [  # within a batch, and across batches
        "line 6: external_id 1 is line 3's",
        "line 33: external_id 3 is line 5's",
    ]
    assert summary.errors == ["line 54: email: must be an email address like jane@example.com"]
    assert (summary.total, summary.created, summary.invalid) == (53, 50, 1)


async def test_a_file_that_cannot_be_read_at_its_last_line_stores_nothing(
    tmp_path: Path,
) -> None:
    """A file refused as a whole (here a cell past the csv module's 128 KiB limit) was refused
    before any row was stored; it still is, though its rows are stored as they are read."""
    path = write(tmp_path, HEADER + rows(50) + "51,x@acme.com," + "A" * 200_000 + ",10,\n")
    intake = FakeIntake()
    with pytest.raises(ImportFileError) as refused:
        await import_csv(str(path), intake, progress=False)
    assert refused.value.message.startswith("leads.csv line 52: not valid CSV (field larger")
    assert intake.calls == 0


async def test_the_last_rows_dates_decide_the_order_of_the_first_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Record ID,Email,Create Date\n1,a@x.io,03/04/2026 09:30\n"
        + "".join(f"{n},{n}@x.io,2026-04-03 09:30\n" for n in range(2, 40))
        + "40,z@x.io,20/11/2026 09:30\n",
    )
    intake = FakeIntake()
    await import_csv(str(path), intake, progress=False)
    assert intake.leads["1"]["received_at"] == "2026-04-03T09:30:00Z"  # 3 April: day first
    assert intake.leads["40"]["received_at"] == "2026-11-20T09:30:00Z"


async def test_a_windows_file_whose_only_accent_is_on_its_last_line(tmp_path: Path) -> None:
    """Excel on Windows writes plain CSV in cp1252: a byte that is not UTF-8 far down the file
    decides how the whole file is read."""
    text = "Lead ID,Email,Full Name\n" + "".join(f"{n},{n}@x.io,Ann\n" for n in range(3000))
    path = write(tmp_path, text + "X,zoe@x.io,Zoë Café\n", encoding="cp1252")
    intake = FakeIntake()
    summary = await import_csv(str(path), intake, progress=False)
    assert summary.created == 3001
    assert intake.leads["X"]["name"] == "Zoë Café"


async def test_a_file_whose_every_row_is_wrong_keeps_the_first_errors_and_counts_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong date column fails every row: a million rows held a million error lines, of
    which the summary shows 50."""
    monkeypatch.setattr(importer, "KEPT", 60)
    text = "".join(f"{n},{n}@x.io,Acme,10,someday\n" for n in range(100))
    summary = await import_csv(str(write(tmp_path, HEADER + text)), Discard(), progress=False)
    assert len(summary.errors) == 60 and summary.invalid == 100
    lines = summary.render().splitlines()
    assert lines[2] == "  0 already known (same external id), 100 rows with errors:"
    assert lines[3] == f"  line 2: Create Date (received_at): {importer.DATE_HINT}"
    assert lines[53] == "  … and 50 more"
