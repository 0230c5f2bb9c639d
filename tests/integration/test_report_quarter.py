"""`/sla-report 2026-Q3` on a realistic store reads exactly as it did before its reads were made
faster (docs/benchmarks.md "The SLA report": the quarter's 3 s): every KPI, breakdown and
comparison with Q2.

The store is bench/report_week.py's (`build`: 85% MQLs, most claimed and touched, 40%
dispositioned, escalations, leads offered to the pool while their rep was away and claimed
again by another: the handovers the by-rep table charges), 200 leads a week for 30 weeks back
from 2026-W47, so that the quarter before is partly stored, as in the benchmark's 600,000.
tests/fixtures/quarter_report.json holds the report as the code of commit 325d38b built it on
SQLite, and the figures PostgreSQL gave otherwise (it sums the lead velocity's days in another
order: they differ in the 16th digit). A change in any figure fails here; one meant to change
the report regenerates the file from the code before it, and says so."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.report_week import AS_OF, QUARTER, build
from bot.domain.policy import Policy
from bot.services.policies import PolicyBook
from bot.services.reports import Reports
from storage.db import Database
from storage.reports import ReportStore
from storage.repository import Store

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "quarter_report.json"


def _flat(value: Any, path: str = "") -> dict[str, Any]:
    """Each figure of a report as JSON by its path (`/headline/22/previous`)."""
    if not isinstance(value, dict | list):
        return {path: value}
    items = value.items() if isinstance(value, dict) else enumerate(value)
    return {k: v for key, item in items for k, v in _flat(item, f"{path}/{key}").items()}


async def test_the_quarters_report_reads_as_the_code_before_its_speed_up_built_it(
    database_url: str, policy: Policy
) -> None:
    database = Database(database_url)
    try:
        _, offered = await build(database, policy, 6_000, 200)
        assert offered > 0  # the by-rep table's handovers are in it
        reports = Reports(ReportStore(database), PolicyBook(Store(database), policy))
        report = await reports.report(QUARTER, AS_OF)
    finally:
        await database.dispose()
    # As JSON, as the file holds it: tuples as lists, dates and periods as text.
    got = _flat(json.loads(json.dumps(asdict(report), default=str)))
    recorded = json.loads(RECORDED.read_text())
    expected = _flat(recorded["report"])
    if database_url.startswith("postgresql"):
        expected |= recorded["postgresql"]
    assert report.received == 2_610
    assert got.keys() == expected.keys()
    assert {k: v for k, v in got.items() if v != expected[k]} == {}
