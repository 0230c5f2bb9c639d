"""Report charts: valid PNGs of a sensible size, for empty, gappy and extreme periods."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from bot.slack import charts
from bot.slack.charts import daily_compliance_png, speed_to_lead_png
from tests.conftest import ROOT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 200 * 1024
MINUTES = [3, 12, 25, 40, 55, 61, 75, 90, 118, 119, 121, 150, 200, 260, 480]
NOVEMBER = [date(2026, 11, 1) + timedelta(days=n) for n in range(30)]


def dimensions(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def assert_chart(png: bytes) -> None:
    assert png.startswith(PNG_SIGNATURE)
    assert 1_000 < len(png) < MAX_BYTES
    assert dimensions(png) == (800, 400)


def month(share: float | None = 0.8) -> list[tuple[date, float | None]]:
    """November with no leads at weekends and the given share on working days."""
    return [(day, None if day.weekday() >= 5 else share) for day in NOVEMBER]


def test_speed_to_lead_is_a_png_of_a_sensible_size() -> None:
    assert_chart(speed_to_lead_png(MINUTES, 120, "Speed to lead: hot"))


def test_speed_to_lead_is_deterministic_and_draws_the_window_line() -> None:
    with_window = speed_to_lead_png(MINUTES, 120, "Speed to lead")
    assert with_window == speed_to_lead_png(MINUTES, 120, "Speed to lead")  # same in, same out
    assert with_window != speed_to_lead_png(MINUTES, None, "Speed to lead")
    assert with_window != speed_to_lead_png(MINUTES, 60, "Speed to lead")


def test_speed_to_lead_splits_the_bars_by_each_leads_own_deadline() -> None:
    """Hot and warm leads: a line per tier, the bars split into on time and late by each lead's
    own deadline, and the share the report gives (not the leads left of the first line)."""
    windows = {"hot": 120, "warm": 480}
    on_time = [value <= 120 or value > 300 for value in MINUTES]  # some warm, some late
    judged = speed_to_lead_png(MINUTES, windows, "Speed to lead", on_time, (9, 16))
    assert_chart(judged)
    assert judged != speed_to_lead_png(MINUTES, windows, "Speed to lead")  # no split, no share
    assert judged != speed_to_lead_png(MINUTES, windows, "Speed to lead", on_time, (3, 16))
    assert judged != speed_to_lead_png(MINUTES, {"hot": 120}, "Speed to lead", on_time, (9, 16))
    assert charts.first_touch_words(9, 16) == "First-touch compliance: 56% (9 of 16)"
    assert charts.first_touch_words(0, 0) == "First-touch compliance: – (0 of 0)"
    assert_chart(speed_to_lead_png(MINUTES, {"$5k$ \\frac{": 60}, "t", on_time, (1, 2)))
    with pytest.raises(ValueError):
        speed_to_lead_png(MINUTES, windows, "t", on_time[1:], (9, 16))


@pytest.mark.parametrize("window", [120, None])
def test_speed_to_lead_with_no_leads_says_so(window: int | None) -> None:
    empty = speed_to_lead_png([], window, "Speed to lead")
    assert_chart(empty)
    assert empty != speed_to_lead_png(MINUTES, window, "Speed to lead")


@pytest.mark.parametrize(
    "minutes",
    [
        [10**7, 5, 10**6],  # years of working time: a far-out tail
        [10**6] * 50,  # every lead slow
        [0] * 20,  # every lead at once
        [7],
    ],
)
def test_speed_to_lead_survives_extreme_values(minutes: list[int]) -> None:
    assert_chart(speed_to_lead_png(minutes, 120, "Speed to lead"))
    assert_chart(speed_to_lead_png(minutes, None, "Speed to lead"))


def test_speed_to_lead_bins_stay_readable() -> None:
    for values, window in (([5, 50], 30), ([10**6, 3], 120), ([30] * 5, 24 * 60), ([1], None)):
        upper = charts._axis_end(values, window)
        width = charts._bin_width(upper, window)
        assert -(-upper // width) <= charts.MAX_BINS
        if window is not None:
            assert upper >= window  # the window line is always on the chart


def test_a_far_out_tail_is_gathered_not_stretched() -> None:
    values = [10, 20, 30, 40, 50] * 20 + [10**7]
    assert charts._axis_end(values, 60) < 10**7


def test_daily_compliance_is_a_png_with_gaps_and_a_target_line() -> None:
    shares = [
        (day, None if day.weekday() >= 5 else (n % 10) / 10) for n, day in enumerate(NOVEMBER)
    ]
    with_target = daily_compliance_png(shares, 0.9, "First touch, November")
    assert_chart(with_target)
    assert with_target == daily_compliance_png(shares, 0.9, "First touch, November")
    assert with_target != daily_compliance_png(shares, None, "First touch, November")
    assert with_target != daily_compliance_png(shares, 0.5, "First touch, November")


def test_a_day_without_leads_is_not_drawn_as_zero() -> None:
    gap = [(NOVEMBER[0], 0.9), (NOVEMBER[1], None), (NOVEMBER[2], 0.9)]
    zero = [(NOVEMBER[0], 0.9), (NOVEMBER[1], 0.0), (NOVEMBER[2], 0.9)]
    assert daily_compliance_png(gap, 0.8, "t") != daily_compliance_png(zero, 0.8, "t")


@pytest.mark.parametrize("days", [[], [(day, None) for day in NOVEMBER]])
def test_daily_compliance_with_no_leads_says_so(days: list[tuple[date, float | None]]) -> None:
    empty = daily_compliance_png(days, 0.9, "First touch")
    assert_chart(empty)
    assert empty != daily_compliance_png(month(), 0.9, "First touch")


def test_a_long_period_stays_small() -> None:
    year = [(date(2026, 1, 1) + timedelta(days=n), (n % 7) / 7) for n in range(366)]
    assert_chart(daily_compliance_png(year, 0.85, "First touch, 2026"))


def test_titles_are_text_not_math() -> None:
    # A `$` pair would be parsed as math text (and a bad one would raise) if titles were parsed.
    title = "Segment $5k–$50k: 50% ^_^ $\\frac{"
    assert_chart(speed_to_lead_png(MINUTES, 120, title))
    assert_chart(daily_compliance_png(month(), 0.9, title))
    assert_chart(speed_to_lead_png([], 120, title))


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError):
        speed_to_lead_png([5, -1], 120, "t")
    with pytest.raises(ValueError):
        speed_to_lead_png([5], 0, "t")
    with pytest.raises(ValueError):
        daily_compliance_png([(NOVEMBER[0], 1.2)], 0.9, "t")
    with pytest.raises(ValueError):
        daily_compliance_png(month(), 90, "t")


def test_charts_render_the_same_in_parallel_threads() -> None:
    def both(n: int) -> tuple[bytes, bytes]:
        window = 60 * (1 + n % 3)
        return (
            speed_to_lead_png(MINUTES, window, f"chart {n}"),
            daily_compliance_png(month(0.5 + n % 5 / 10), 0.9, f"chart {n}"),
        )

    serial = [both(n) for n in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(both, range(4)))
    assert parallel == serial


def test_charts_need_no_display_and_no_pyplot() -> None:
    # A GUI backend that is not installed: rendering must not care, and pyplot stays unloaded.
    code = (
        "import sys; from bot.slack.charts import speed_to_lead_png as f; "
        "assert f([5], 30, 't').startswith(b'\\x89PNG'); "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    env = {**os.environ, "MPLBACKEND": "QtAgg", "DISPLAY": ""}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)


def test_the_axis_names_the_clock_the_report_measured_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """An SLA whose every tier is calendar time (`2h`, `24h`) is measured in elapsed time: its
    chart's axis must not say "working hours" (the report's footer says calendar time)."""
    from matplotlib.axes import Axes

    labels: list[str] = []
    set_xlabel = Axes.set_xlabel

    def record(self: Axes, text: str, *args: object, **kwargs: object) -> object:
        labels.append(text)
        return set_xlabel(self, text, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Axes, "set_xlabel", record)
    speed_to_lead_png([30, 300, 600], {"hot": 120}, "Speed", elapsed=True)
    speed_to_lead_png([30, 300, 600], {"hot": 120}, "Speed")
    assert labels == [
        "hours from the post to the first touch",
        "working hours from the post to the first touch",
    ]
