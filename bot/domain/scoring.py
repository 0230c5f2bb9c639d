"""Scoring a lead against the SLA's MQL definition, as of the moment it arrived.

The definition is the workshop's output (seed 000, "Hour 1"): `mql.fit` signals say who the
lead is (employee range, industries, countries, title words or seniority), `mql.intent` signals
what it did (a page visited, content downloaded, an event attended, a demo requested, an
intent-data topic), each with its points, an intent signal within a recency window. The score
is the sum of the signals the lead meets, at most 100. A signal marked `qualifies` makes the lead
an MQL on its own, whatever the threshold.

Recency is judged as of the lead's arrival (`as_of`): an engagement older than its signal's
window earns nothing, one after the arrival is ignored (it had not happened yet), and one
without a time earns nothing from a signal with a window (its recency cannot be shown). Each
signal counts once, for the most recent engagement that meets it.

A file without signals scores with the built-in definition, exactly as Handoff always has:
a senior title +30 (a manager-level one +20), 50 or more employees +20, engagement by type up to
+50, and the source as intent when nothing else was sent.

A lead that arrives with its own score (a CRM's) keeps it as its score; Handoff's is computed
too, and both are kept (`Score.handoff`). Pure rules: no I/O, no clock; the caller says `as_of`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache

from bot.domain.intake import Engagement, LeadIn
from bot.domain.policy import FitSignal, IntentSignal, Mql

OWN_SCORE = "score sent by the marketing system"  # the first reason of a score kept as sent

_SENIOR = ("chief", "ceo", "cfo", "cmo", "cro", "cto", "coo", "vp", "vice president", "head")
# Whole words only: "cto" is inside "director", "coo" inside "coordinator".
_SENIOR_WORDS = re.compile(r"\b(?:" + "|".join(_SENIOR) + r")\b")
_MANAGER = ("director", "manager", "lead", "founder", "owner", "partner")
_INTENT = {"demo_request": 30, "pricing": 25, "trial": 25, "event": 15, "webinar": 15}

# What marketing systems call the engagement types of the SLA file (policy.ENGAGEMENT_TYPES).
ENGAGEMENT_ALIASES = {
    "page": "page_view",
    "pageview": "page_view",
    "page_visit": "page_view",
    "visit": "page_view",
    "web_visit": "page_view",
    "pricing": "page_view",
    "download": "content_download",
    "content": "content_download",
    "ebook": "content_download",
    "whitepaper": "content_download",
    "form_submission": "content_download",
    "webinar": "event",
    "event_attended": "event",
    "conference": "event",
    "meeting": "event",
    "demo": "demo_request",
    "intent": "intent_topic",
    "intent_data": "intent_topic",
    "topic": "intent_topic",
}
# Title words of each seniority a fit signal may name (whole words, any letter case).
SENIORITY_WORDS = {
    "executive": ("chief", "ceo", "cfo", "cmo", "cro", "cto", "coo", "cio", "president", "founder"),
    "vp": ("vp", "svp", "evp", "vice president", "head"),
    "director": ("director",),
    "manager": ("manager",),
}


@dataclass(frozen=True)
class Score:
    """A lead's score (0–100) and why. With `own`, `value` is the score the sender gave and
    `handoff` Handoff's own (None: `value` is Handoff's). `qualified_by` names a signal that
    makes the lead an MQL on its own."""

    value: int
    reasons: list[str]
    own: bool  # the sender scored the lead; we keep its number
    handoff: int | None = None
    qualified_by: str | None = None

    @property
    def ours(self) -> int:
        """Handoff's own score, whichever score the lead keeps."""
        return self.value if self.handoff is None else self.handoff


def score_lead(lead: LeadIn, mql: Mql | None = None, as_of: datetime | None = None) -> Score:
    """The lead's score under `mql` (None or no signals: the built-in definition) as of
    `as_of` (None: its `received_at`; neither: every engagement counts as recent). A lead that
    arrives with its own score keeps it, with ours beside it."""
    as_of = as_of or lead.received_at
    ours = _signals(lead, mql, as_of) if mql is not None and mql.has_signals else _builtin(lead)
    if lead.score is None:
        return ours
    return Score(
        lead.score,
        [OWN_SCORE, *ours.reasons],
        own=True,
        handoff=ours.value,
        qualified_by=ours.qualified_by,
    )


def is_own(reasons: list[str]) -> bool:
    """Whether stored reasons belong to a score the sender gave (Handoff's follow it)."""
    return reasons[:1] == [OWN_SCORE]


# --- the built-in definition -------------------------------------------------------------------


def _builtin(lead: LeadIn) -> Score:
    """Fit + intent with fixed weights: what Handoff scored before files had signals."""
    reasons: list[str] = []
    fit = 0
    title = (lead.title or "").lower()
    if _SENIOR_WORDS.search(title):
        fit += 30
        reasons.append("senior title (+30)")
    elif any(word in title for word in _MANAGER):
        fit += 20
        reasons.append("manager-level title (+20)")
    employees = lead.company.employees
    if employees is not None and employees >= 50:
        fit += 20
        reasons.append(f"{employees:,} employees (+20)")
    intent = 0
    for item in lead.engagement:
        points = _INTENT.get(item.type.lower(), 10)
        intent += points
    if lead.engagement:
        reasons.append(f"{len(lead.engagement)} engagement(s) (+{min(intent, 50)})")
    source_points = _INTENT.get((lead.source or "").lower(), 0)
    if source_points and not lead.engagement:
        intent += source_points
        reasons.append(f"source {lead.source} (+{source_points})")
    return Score(min(100, fit + min(intent, 50)), reasons, own=False)


# --- the file's signals ------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """A signal the lead meets: what it says on the post, its points, and (for intent) when."""

    text: str
    points: int
    at: datetime | None = None
    qualifies: bool = False


def _signals(lead: LeadIn, mql: Mql, as_of: datetime | None) -> Score:
    hits = [hit for signal in mql.fit if (hit := fit_hit(lead, signal)) is not None]
    for signal in mql.intent:
        hit = intent_hit(lead.engagement, signal, as_of)
        if hit is not None:
            hits.append(hit)
    # The strongest first: the post shows the top reasons.
    ordered = sorted((hit for hit in hits if hit.points or hit.qualifies), key=_strength)
    alone = next((hit.text for hit in ordered if hit.qualifies), None)
    reasons = [reason(hit, as_of) for hit in ordered]
    return Score(min(100, sum(hit.points for hit in hits)), reasons, own=False, qualified_by=alone)


def _strength(hit: Hit) -> tuple[int, int]:
    return (-int(hit.qualifies), -hit.points)


_SEPARATORS = re.compile(r"[\s-]+")


@lru_cache(maxsize=1024)
def _kind(value: str) -> str:
    """An engagement's type as the file names it: `Page View` and `pricing` are `page_view`."""
    word = _SEPARATORS.sub("_", value.strip().lower())
    return ENGAGEMENT_ALIASES.get(word, word)


@cache
def _words(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(w.lower()) for w in words) + r")\b")


def _one_of(value: str | None, options: list[str]) -> bool:
    return value is not None and value.strip().lower() in _folded(tuple(options))


@cache
def _folded(options: tuple[str, ...]) -> frozenset[str]:
    """The SLA file's options as compared (a signal's list, the same for every lead)."""
    return frozenset(option.strip().lower() for option in options)


@cache
def _title_words(titles: tuple[str, ...], seniority: tuple[str, ...]) -> re.Pattern[str]:
    """A fit signal's title words and the words of its seniority levels, as one pattern."""
    return _words(titles + tuple(word for level in seniority for word in SENIORITY_WORDS[level]))


def fit_hit(lead: LeadIn, signal: FitSignal) -> Hit | None:
    """The fit signal as the lead meets it (every condition it sets), or None."""
    company, title = lead.company, (lead.title or "").lower()
    facts: list[str] = []
    if signal.employees_min is not None or signal.employees_max is not None:
        employees = company.employees
        if employees is None:
            return None
        if signal.employees_min is not None and employees < signal.employees_min:
            return None
        if signal.employees_max is not None and employees > signal.employees_max:
            return None
        facts.append(f"{employees:,} employees")
    if signal.industries is not None:
        if not _one_of(company.industry, signal.industries):
            return None
        facts.append(str(company.industry))
    if signal.countries is not None:
        if not _one_of(company.country, signal.countries):
            return None
        facts.append(str(company.country))
    if signal.titles is not None or signal.seniority is not None:
        words = _title_words(tuple(signal.titles or ()), tuple(signal.seniority or ()))
        if not words.search(title):
            return None
        facts.append(str(lead.title))
    return Hit(signal.label or ", ".join(facts), signal.points, qualifies=signal.qualifies)


def _contains(value: str | None, wanted: str | None) -> bool:
    return wanted is None or (value is not None and wanted.lower() in value.lower())


def intent_hit(
    engagement: list[Engagement], signal: IntentSignal, as_of: datetime | None
) -> Hit | None:
    """The intent signal met by the most recent engagement that matches it, or None: of its
    type, its url and title containing the signal's, not after `as_of`, and within the window
    before it (an undated engagement meets no window)."""
    if not engagement:  # most leads: nothing to look through
        return None
    best: Engagement | None = None
    window = signal.within.delta if signal.within is not None else None
    for item in engagement:
        if _kind(item.type) != signal.type:
            continue
        if not (_contains(item.url, signal.url) and _contains(item.title, signal.title)):
            continue
        if item.at is not None and as_of is not None:
            if item.at > as_of:  # after the lead arrived: it had not happened yet
                continue
            if window is not None and as_of - item.at > window:
                continue
        elif window is not None and as_of is not None:
            continue  # undated: its recency cannot be shown
        if best is None or (item.at is not None and (best.at is None or item.at > best.at)):
            best = item
    if best is None:
        return None
    text = signal.label or best.title or best.type.replace("_", " ").capitalize()
    return Hit(text, signal.points, best.at, signal.qualifies)


def ago(at: datetime, as_of: datetime) -> str:
    """How long before the arrival: `2 days ago`, `5 hours ago`, `just before` (under an hour)."""
    span = max(as_of - at, timedelta(0))
    if span >= timedelta(days=1):
        days = span.days
        return f"{days} day{'s' if days != 1 else ''} ago"
    if span >= timedelta(hours=1):
        hours = int(span.total_seconds() // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    return "just before"


def reason(hit: Hit, as_of: datetime | None) -> str:
    """`Pricing page 2 days ago +20`, `240 employees +15`, `Demo request 1 day ago (qualifies)`:
    dates relative to the arrival, which never moves, so the words stay true."""
    when = f" {ago(hit.at, as_of)}" if hit.at is not None and as_of is not None else ""
    points = f" +{hit.points}" if hit.points else ""
    alone = " (qualifies)" if hit.qualifies else ""
    return f"{hit.text}{when}{points}{alone}"
