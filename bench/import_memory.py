"""Peak memory of `handoff import` on a generated HubSpot export, against the floor.

    python -m bench.import_memory [--rows 100000] [--keep DIR]

It writes a HubSpot export of `--rows` rows (a multi-line quoted cell every 100 rows, dates
that read only day first, so the whole file decides their order), then imports it in child
processes, each measured by its peak resident set size (`ru_maxrss` of the child, Linux: KiB):

* floor: the interpreter with the importer loaded, reading nothing;
* import: `import_csv` (what `handoff import` runs) with an intake that stores nothing, so the
  figure is the importer's, not the database's;
* whole sheet: `read_sheet`, every row's payload held in memory at once, as the import held
  them before it streamed (the file's text and lines besides: the baseline is an
  underestimate of the import before).

It prints each peak, the import's and the whole sheet's above the floor, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HEADER = (
    "Record ID,First Name,Last Name,Email,Job Title,Phone Number,Company Name,Website URL,"
    "Number of Employees,Industry,Country/Region,Original Source,HubSpot Score,Create Date,"
    "Recent Conversion,Recent Conversion Date,Lifecycle Stage,Contact owner\n"
)


def generate(path: Path, rows: int) -> None:
    """A HubSpot export of `rows` leads, each id distinct."""
    rng = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        for n in range(rows):
            day, month = rng.randint(13, 28), rng.randint(1, 12)  # only reads day first
            company = f'"Acme {n}\nHoldings"' if n % 100 == 0 else f"Acme {n}"
            out.write(
                f"{100000 + n},Jane{n},Doe,jane{n}@acme{n % 5000}.com,VP Marketing,"
                f'+61 2 9012 {n % 10000:04d},{company},https://acme{n % 5000}.com,"1,450",'
                f"Computer Software,Australia,Paid Search,{rng.randint(0, 100)},"
                f"{day:02d}/{month:02d}/2026 09:30,Demo request form,"
                f"{day:02d}/{month:02d}/2026 09:28,Marketing Qualified Lead,Sam Porter\n"
            )


async def _discard(payload: dict[str, Any]) -> tuple[Any, list[str]]:
    return "mql", []


def child(mode: str, path: str) -> None:
    from bot.cli.importer import import_csv, read_sheet

    if mode == "import":
        summary = asyncio.run(import_csv(path, _discard, progress=False))
        assert summary.posted > 0, summary.render()
    elif mode == "sheet":
        assert read_sheet(path).rows


def peak_kib(mode: str, path: Path) -> int:
    """The child's peak resident set size (KiB on Linux)."""
    command = [sys.executable, "-m", "bench.import_memory", "--child", mode, str(path)]
    process = subprocess.Popen(command, env=os.environ | {"PYTHONPATH": os.getcwd()})
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{mode} failed")
    return usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="write the file here and keep it")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as scratch:
        path = (args.keep or Path(scratch)) / f"leads_{args.rows}.csv"
        generate(path, args.rows)
        size = path.stat().st_size / 2**20
        floor, imported, sheet = (peak_kib(mode, path) for mode in ("floor", "import", "sheet"))
    mib = 1024
    print(f"{args.rows} rows, {size:.1f} MiB file; peak resident memory:")
    print(f"  floor (importer loaded, nothing read): {floor / mib:.1f} MiB")
    print(
        f"  import:      {imported / mib:.1f} MiB ({(imported - floor) / mib:.1f} above the floor)"
    )
    print(f"  whole sheet: {sheet / mib:.1f} MiB ({(sheet - floor) / mib:.1f} above the floor)")
    print(f"  import / whole sheet, above the floor: {(imported - floor) / (sheet - floor):.3f}")


if __name__ == "__main__":
    main()
