"""Report charts as PNG bytes: speed to lead and daily first-touch compliance.

Each call draws on its own `Figure` with the Agg canvas (no pyplot, no rcParams changes, no
display), so charts can be rendered in worker threads side by side. Titles are never parsed
as math text: a `$` in a segment name stays a `$`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from datetime import date

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from bot.domain.durations import words

SIZE_INCHES = (8.0, 4.0)
DPI = 100
EMPTY_TEXT = "No leads in this period"
MAX_BINS = 24
MAX_DAY_LABELS = 16
# Bin widths in minutes that read well on an axis of minutes or of hours.
_NICE_WIDTHS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 960, 1440)

_BAR = "#4a7fb5"
_GOOD = "#3a9a5b"
_BAD = "#d0583f"
_LINE = "#222222"
_MUTED = "#999999"
_GAP = "#eeeeee"
_GAP_EDGE = "#cccccc"
_WINDOW_STYLES = ("--", ":", "-.")  # one per tier's window line


def speed_to_lead_png(
    minutes: Sequence[int],
    windows: Mapping[str, int] | int | None,
    title: str,
    on_time: Sequence[bool] | None = None,
    first_touch: tuple[int, int] | None = None,
    elapsed: bool = False,
) -> bytes:
    """A histogram of speed to lead (working minutes from the post to the first touch; with
    `elapsed`, the report measured calendar time: minutes) as PNG.

    `windows`: each tier's first-touch window, a dashed line each ("hot: within 2h of arrival";
    a bare number is one line, "SLA: …"). `on_time`: for each lead of `minutes`, whether it was
    touched by its own deadline; its bars are then split into on time and late. `first_touch`:
    first-touch compliance's (touched by the deadline, due), the share the legend states, so
    the chart says what the report says; without it the chart states no share (a line can't
    judge a lead of another tier). The axis is in working hours once it runs past three hours;
    a far-out tail (past twice the 95th percentile, and the windows) is gathered in the last
    bar, and the chart says how many leads it holds. No values: the chart says "No leads in
    this period". Raises ValueError for a negative value or window, or `on_time` of another
    length than `minutes`.
    """
    marks = {"SLA": windows} if isinstance(windows, int) else dict(windows or {})
    if any(value < 0 for value in minutes):
        raise ValueError("speed to lead cannot be negative")
    if any(window <= 0 for window in marks.values()):
        raise ValueError("the SLA window must be positive")
    if on_time is not None and len(on_time) != len(minutes):
        raise ValueError("on_time needs one flag per lead")
    figure, axes = _figure()
    if not minutes:
        _empty(axes, title)
        return _png(figure)

    shortest = min(marks.values(), default=None)
    upper = _axis_end(minutes, max(marks.values(), default=None))
    width = _bin_width(upper, shortest)
    upper = math.ceil(upper / width) * width
    edges = [float(edge) for edge in range(0, upper + width, width)]
    beyond = sum(1 for value in minutes if value > upper)
    in_hours = upper > 180
    scale = 60.0 if in_hours else 1.0

    if on_time is None:
        groups, colours, labels = [list(minutes)], [_BAR], [_leads(len(minutes))]
    else:
        met = [value for value, good in zip(minutes, on_time, strict=True) if good]
        late = [value for value, good in zip(minutes, on_time, strict=True) if not good]
        groups, colours = [met, late], [_GOOD, _BAD]
        labels = [f"touched by its deadline: {len(met)}", f"late, or not touched yet: {len(late)}"]
    axes.hist(
        [[min(value, upper) / scale for value in group] for group in groups],
        bins=[edge / scale for edge in edges],
        stacked=True,
        color=colours,
        edgecolor="white",
        linewidth=0.6,
        label=labels,
    )
    for index, (name, window) in enumerate(marks.items()):
        style = _WINDOW_STYLES[index % len(_WINDOW_STYLES)]
        label = f"{name}: within {words(window)} of arrival"
        axes.axvline(window / scale, color=_LINE, linewidth=1.5, linestyle=style, label=label)
    axes.set_xlim(0, upper / scale)
    unit = "hours" if in_hours else "minutes"
    note = f" ({_leads(beyond)} over {words(upper)}: in the last bar)" if beyond else ""
    clock = "" if elapsed else "working "
    axes.set_xlabel(f"{clock}{unit} from the post to the first touch{note}")
    axes.set_ylabel("leads")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    share = None if first_touch is None else first_touch_words(*first_touch)
    # Beside the plot: a window line or a bar may be anywhere on it.
    legend = axes.legend(
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=9,
        frameon=False,
        title=share,
        title_fontsize=9,
        alignment="left",
    )
    for text in legend.get_texts():
        text.set_parse_math(False)  # a tier named `$5k+` is text, as titles are
    axes.set_title(title, parse_math=False)
    return _png(figure)


def first_touch_words(met: int, due: int) -> str:
    """`First-touch compliance: 62% (8 of 13)`: the share of leads touched by their own
    deadline, in the report's words and rounding (`–` when none was due)."""
    share = f"{met / due:.0%}" if due else "–"
    return f"First-touch compliance: {share} ({met} of {due})"


def daily_compliance_png(
    days: list[tuple[date, float | None]], target: float | None, title: str
) -> bytes:
    """A bar per day of the share of leads touched within their SLA (0..1, shown as %) as PNG.

    A day with no leads (None) is a pale hatched column, not a zero. The target, when given,
    is a horizontal line; bars under it are red, the others green. No day with leads: the
    chart says "No leads in this period". Raises ValueError for a share outside 0..1.
    """
    shares = [share for _, share in days if share is not None]
    if any(not 0.0 <= share <= 1.0 for share in shares) or (
        target is not None and not 0.0 <= target <= 1.0
    ):
        raise ValueError("compliance and its target are shares between 0 and 1")
    figure, axes = _figure()
    if not shares:
        _empty(axes, title)
        return _png(figure)

    positions = list(range(len(days)))
    heights = [share or 0.0 for _, share in days]
    axes.bar(positions, heights, width=0.8, color=[_colour(share, target) for _, share in days])
    for position, (_, share) in enumerate(days):
        if share == 0.0:  # a zero bar has no height: say it, or it reads like a gap
            axes.text(position, 0.01, "0%", ha="center", va="bottom", fontsize=7, color=_BAD)
    legend: list[Artist] = []
    if target is None:
        legend.append(Patch(color=_BAR, label="first touch within SLA"))
    else:
        axes.axhline(target, color=_LINE, linewidth=1.5, linestyle="--")
        legend += [
            Line2D(
                [], [], color=_LINE, linewidth=1.5, linestyle="--", label=f"target {target:.0%}"
            ),
            Patch(color=_GOOD, label="met the target"),
            Patch(color=_BAD, label="below the target"),
        ]
    gaps = [i for i, (_, share) in enumerate(days) if share is None]
    if gaps:
        gap = Patch(facecolor=_GAP, hatch="//", edgecolor=_GAP_EDGE, linewidth=0, label="no leads")
        axes.bar(
            gaps,
            [1.0] * len(gaps),
            width=0.8,
            color=_GAP,
            hatch="//",
            edgecolor=_GAP_EDGE,
            linewidth=0,
        )
        legend.append(gap)
    axes.set_ylim(0, 1.16)  # room for the legend above 100%
    axes.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlim(-0.6, len(days) - 0.4)
    step = max(1, math.ceil(len(days) / MAX_DAY_LABELS))
    axes.set_xticks(positions[::step])
    axes.set_xticklabels([_day_label(day) for day, _ in days][::step], fontsize=8)
    axes.set_ylabel("first touch within SLA")
    axes.legend(handles=legend, loc="upper center", ncols=len(legend), fontsize=8, frameon=False)
    axes.set_title(title, parse_math=False)
    return _png(figure)


# --- helpers ----------------------------------------------------------------------------------


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)  # attaches itself: savefig renders with Agg, never a GUI backend
    axes = figure.add_subplot()
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _empty(axes: Axes, title: str) -> None:
    axes.set_axis_off()
    axes.text(
        0.5, 0.5, EMPTY_TEXT, ha="center", va="center", fontsize=14, color=_MUTED, parse_math=False
    )
    axes.set_title(title, parse_math=False)


def _axis_end(minutes: Sequence[int], window: int | None) -> int:
    """Where the x axis ends: past the window, and past all values but a far-out tail."""
    ordered = sorted(minutes)
    tail_from = 2 * max(1, ordered[math.ceil(0.95 * len(ordered)) - 1])  # twice the 95th pct
    end = min(ordered[-1], tail_from)
    if window is not None:
        end = max(end, math.ceil(window * 1.25))
    return max(end, 1)


def _bin_width(upper: int, window: int | None) -> int:
    """A readable bin width giving at most MAX_BINS bars; one the window falls on if possible."""
    fitting = [w for w in _NICE_WIDTHS if math.ceil(upper / w) <= MAX_BINS]
    if not fitting:  # weeks of working time: multiples of 8 hours
        return 480 * math.ceil(upper / (480 * MAX_BINS))
    if window is not None:
        aligned = [w for w in fitting[:3] if window % w == 0]
        if aligned:
            return aligned[0]
    return fitting[0]


def _leads(count: int) -> str:
    return "1 lead" if count == 1 else f"{count} leads"


def _colour(share: float | None, target: float | None) -> str:
    if share is None or target is None:
        return _BAR
    return _GOOD if share >= target else _BAD


def _day_label(day: date) -> str:
    return f"{day.day} {day:%b}"
