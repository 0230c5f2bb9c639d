"""The pool's rotation: weighted round robin with caps, time away and catch-up.

A rep's credit is what they are owed: every lead adds to each rep taking part their weighted
share of it (λ = weight ÷ the weights of the reps taking part), and the rep picked pays back one
lead. The pick is Tijdeman's rule for the chairman assignment problem (R. Tijdeman, "The
chairman assignment problem", Discrete Mathematics 32 (1980) 323-330): with n reps taking part,
of those owed at least 1/(2n-2) of a lead, the one whose credit would reach C = 1 - 1/(2n-2)
soonest, (C - credit) ÷ λ turns from now, an earliest deadline; a tie goes to the rep listed
first. While the same reps are available this keeps every rep within C < 1 lead of their
weighted share at every lead (0.5 for two reps, 0.9 for six), and picks interleave (2:1 gives
A B A A B A, not A A B; equal weights go in the order listed). "The most owed wins" (the smooth
weighted round robin nginx uses) does not: with weights 1,1,1,5,5,5 it lets a weight-5 rep fall
1.06 leads behind at the 11th lead.

When someone is owed more than C, or nobody 1/(2n-2) (only after a change of who is available,
a frozen credit or catch-up), the most owed goes first instead. Across changes of who is
available (caps, time away) no rotation can promise one lead: taking out the rep furthest behind
after each stretch forces 13/12 on four reps whatever the picks; against that pattern this one
deviates by H(n) - 1 for n reps (tests/unit/test_rotation_bounds.py), and the property tests
bound it at 1.5 or H(n) - 1, the larger. Without the "owed more than C goes first" guard the
earliest deadline can starve a rep left far behind by a change, past that bound.

- A rep at a cap (`cap.open`, `cap.per_day`) or away sits the turn out with their credit frozen:
  they resume where they were, with no flood of leads when the cap lifts.
- With `catch_up`, a rep who is away keeps gaining credit without being picked, so on return
  they take the next leads until they have had their share of the whole stretch.
- Weight 0 takes no part.

So that a turn writes one rep, not all of them, the shares are kept as a segment clock: each
turn moves it by 1 ÷ the weights taking part, and a rep taking part since clock `since` has
gained weight × (clock − since) on top of what was `settled` when they joined. Only the rep
picked, and reps who start or stop taking part, change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

_TIE = 1e-9  # credits are sums of fractions: equal ones may differ in the last bits


@dataclass(frozen=True)
class RepLoad:
    """One rep's place in a segment's rotation."""

    settled: float = 0.0  # owed when they last started or stopped taking part, less leads since
    since: float | None = None  # the clock when they started taking part (None: they are not)
    weight: int = 0  # the weight they take part with since then
    today: int = 0  # leads the rotation suggested to the rep this business day
    week: int = 0  # ...and this week (what "3 of 12 this week" counts)
    open: int = 0  # leads the rep owns, claimed and not yet dispositioned

    def credit(self, clock: float) -> float:
        """Leads the rep is owed at `clock`."""
        gained = self.weight * (clock - self.since) if self.since is not None else 0.0
        return self.settled + gained

    def taking_part(self, weight: int | None, clock: float) -> RepLoad:
        """The load from `clock` on, taking part with `weight` (None: not taking part): what
        was gained so far is settled first, so a new weight counts from now, not back."""
        since = None if weight is None else clock
        return replace(self, settled=self.credit(clock), since=since, weight=weight or 0)


_NO_LOAD = RepLoad()  # a rep with no load yet (frozen: one will do for all)


@dataclass(frozen=True)
class PoolRules:
    """A segment's pool as the SLA file sets it."""

    reps: tuple[str, ...]
    weights: Mapping[str, int]
    cap_open: int | None = None
    cap_per_day: int | None = None
    catch_up: bool = False

    def weight(self, rep: str) -> int:
        return self.weights.get(rep, 1)

    @property
    def cap(self) -> int | None:
        """The tighter cap, for "cap 10" in the why line (None: no cap)."""
        caps = [cap for cap in (self.cap_open, self.cap_per_day) if cap is not None]
        return min(caps) if caps else None


class Skip:
    """Why a rep sits a turn out."""

    AWAY = "away"
    OPEN_CAP = "at the open-leads cap"
    DAY_CAP = "at the daily cap"
    NO_WEIGHT = "weight 0"
    HOLDER = "has the lead now"  # the rep a reassignment takes the lead from
    HAD = "already had it"  # a rep the SLA took the lead from earlier in its cycle


@dataclass(frozen=True)
class Turn:
    """The outcome of one turn: the rep picked (None: nobody available), everyone's loads and
    the segment's clock after it, the reps whose load changed, and why each skipped rep was."""

    rep: str | None
    loads: dict[str, RepLoad]
    skipped: dict[str, str]
    clock: float = 0.0
    changed: frozenset[str] = frozenset()

    @property
    def why_nobody(self) -> str:
        """Nobody available, in words: "all at cap", "all away", "everyone else in the pool
        already had it" (the SLA took the lead from each of them this cycle), or the mix ("all
        away or already had it"). The rep the lead is taken from is not counted: "nobody else
        in the pool"."""
        reasons = sorted(set(self.skipped.values()) - {Skip.HOLDER, Skip.HAD})
        if Skip.HAD in self.skipped.values():
            if not reasons:
                others = "everyone else" if Skip.HOLDER in self.skipped.values() else "everyone"
                return f"{others} in the pool already had it"
            return "all " + " or ".join(reasons) + f" or {Skip.HAD}"
        if not reasons:
            return "nobody else in the pool" if self.skipped else "no reps in the pool"
        if all(reason in (Skip.OPEN_CAP, Skip.DAY_CAP) for reason in reasons):
            return "all at cap"
        if reasons == [Skip.AWAY]:
            return "all away"
        return "all " + " or ".join(reasons)


def skip_reason(
    rules: PoolRules,
    rep: str,
    load: RepLoad,
    away: frozenset[str],
    avoid: frozenset[str] = frozenset(),
    had: frozenset[str] = frozenset(),
) -> str | None:
    """Why `rep` cannot take this turn (None: they can); `avoid`: the reps the lead is taken
    from (a reassignment never hands a lead back to them), of whom `had` the SLA took it from
    earlier in its cycle (the others have it now)."""
    if rules.weight(rep) <= 0:
        return Skip.NO_WEIGHT
    if rep in avoid:
        return Skip.HAD if rep in had else Skip.HOLDER
    if rep in away:
        return Skip.AWAY
    if rules.cap_open is not None and load.open >= rules.cap_open:
        return Skip.OPEN_CAP
    if rules.cap_per_day is not None and load.today >= rules.cap_per_day:
        return Skip.DAY_CAP
    return None


def take_turn(
    rules: PoolRules,
    loads: Mapping[str, RepLoad],
    away: frozenset[str] = frozenset(),
    clock: float = 0.0,
    avoid: frozenset[str] = frozenset(),
    had: frozenset[str] = frozenset(),
) -> Turn:
    """Pick the next rep of the pool; `loads` and `clock` as stored (a rep missing has no load
    yet), `away` the reps unavailable now, `avoid` the reps a reassignment takes the lead from
    (they sit the turn out like a capped rep: their credit frozen), of whom `had` had it
    earlier in its cycle (the skip's reason says so). Pure: the caller stores what changed."""
    current = {rep: loads.get(rep, _NO_LOAD) for rep in dict.fromkeys(rules.reps)}
    skipped = {
        rep: why
        for rep, load in current.items()
        if (why := skip_reason(rules, rep, load, away, avoid, had)) is not None
    }
    available = [rep for rep in current if rep not in skipped]
    if not available:
        return Turn(None, current, skipped, clock)
    gaining = set(available)
    if rules.catch_up:
        gaining |= {rep for rep, why in skipped.items() if why == Skip.AWAY}
    after, changed = dict(current), set()
    for rep, load in current.items():  # settle who starts or stops taking part, or reweighs
        weight = rules.weight(rep) if rep in gaining else None
        if (load.since is not None, load.weight) != (weight is not None, weight or 0):
            after[rep] = load.taking_part(weight, clock)
            changed.add(rep)
    total = sum(rules.weight(rep) for rep in gaining)
    clock += 1 / total
    credits = {rep: after[rep].credit(clock) for rep in available}
    picked = _earliest_deadline(rules, credits, len(gaining), total) or _most_owed(credits)
    load = after[picked]
    after[picked] = replace(
        load, settled=load.settled - 1, today=load.today + 1, week=load.week + 1
    )
    return Turn(picked, after, skipped, clock, frozenset(changed | {picked}))


def _earliest_deadline(
    rules: PoolRules, credits: Mapping[str, float], taking_part: int, total: int
) -> str | None:
    """Tijdeman's pick: of the reps owed at least 1/(2n-2) of a lead (n the reps taking part),
    the one whose credit would reach 1 - 1/(2n-2) soonest at the rate it grows (weight ÷
    `total` a turn); a tie (within rounding) goes to the rep listed first. None when nobody is
    owed that much (only after a change of who takes part) or when one rep takes part alone."""
    if taking_part < 2:
        return None
    low = 1 / (2 * taking_part - 2)
    if max(credits.values()) > 1 - low + _TIE:
        return None  # someone is owed more than the bound (after a change): they go first
    eligible = [rep for rep, credit in credits.items() if credit >= low - _TIE]
    if not eligible:
        return None
    deadline = {rep: (1 - low - credits[rep]) * total / rules.weight(rep) for rep in eligible}
    soonest = min(deadline.values())
    return next(rep for rep in eligible if deadline[rep] <= soonest + _TIE)


def _most_owed(credits: Mapping[str, float]) -> str:
    """The rep owed the most; a tie (within rounding) goes to the rep listed first."""
    best = max(credits.values())
    return next(rep for rep, credit in credits.items() if credit >= best - _TIE)


def next_picks(
    rules: PoolRules,
    loads: Mapping[str, RepLoad],
    away: frozenset[str] = frozenset(),
    count: int = 5,
    clock: float = 0.0,
) -> list[str]:
    """The rotation's next `count` picks if nothing else changed (fewer if it runs dry)."""
    picks: list[str] = []
    for _ in range(count):
        turn = take_turn(rules, loads, away, clock)
        if turn.rep is None:
            break
        picks.append(turn.rep)
        loads, clock = turn.loads, turn.clock
    return picks


def weighted_shares(rules: PoolRules, turns: Sequence[frozenset[str]]) -> dict[str, float]:
    """Each rep's fair share of leads over `turns` (each turn: the reps available then): every
    lead shared among the reps available for it, by weight. What fairness is measured against."""
    shares = {rep: 0.0 for rep in rules.reps}
    for available in turns:
        total = sum(rules.weight(rep) for rep in available)
        for rep in available:
            if total:
                shares[rep] += rules.weight(rep) / total
    return shares


@dataclass(frozen=True)
class SegmentRotation:
    """One segment's rotation as it stands: what `/handoff routing` and App Home show."""

    name: str
    rules: PoolRules
    loads: Mapping[str, RepLoad]
    away: frozenset[str]
    next_picks: Sequence[str]
    clock: float = 0.0  # the segment's clock as stored (what the credits are read at)
    # When each rep of `away` is back, where known (None: until they say so).
    away_until: Mapping[str, datetime | None] = field(default_factory=dict)

    def share(self, rep: str) -> float:
        """The rep's weighted share of this week's leads as the rotation counts it: the leads
        they had this week and the credit it owes them now. Only the leads they took part in
        count (not while away, unless `catch_up`, nor at a cap), so a rep away all week has a
        share of 0, not their weight's part of every lead. It carries what was owed when the
        week began (under a lead while the same reps are available); never below 0."""
        load = self.loads.get(rep, _NO_LOAD)
        return max(load.week + load.credit(self.clock), 0.0)
