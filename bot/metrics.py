"""Process counters for `GET /metrics` (Prometheus text format)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

HELP = {
    "leads_received_total": "Leads accepted by intake (new leads only).",
    "leads_duplicate_total": "Intake requests for a lead that was already stored.",
    "leads_requalified_total": "Known leads sent again that re-qualified: a new cycle.",
    "leads_invalid_total": "Intake requests refused as invalid.",
    "leads_posted_total": "Lead messages posted to Slack.",
    "claims_total": "Claims won.",
    "claims_refused_total": "Claim presses that lost a race or were not allowed.",
    "attempts_total": "Contact attempts logged.",
    "dispositions_total": "Leads dispositioned.",
    "feedback_posted_total": "Disposition feedback and nurture notices posted to marketing.",
    "alerts_posted_total": "Delivery alerts posted to the escalations channel.",
    "slack_calls_total": "Slack Web API calls made for side effects.",
    "slack_retries_total": "Slack deliveries retried after a 5xx, connection error or timeout.",
    "slack_rate_limited_total": "Slack deliveries answered 429 (retried after Retry-After).",
    "slack_adopted_total": "Posts found in the channel's history after an unknown outcome.",
    "slack_errors_total": "Slack side effects given up (a permanent error, alerted).",
}


GAUGE_HELP = {
    "slack_queue_depth": "Private answers (ephemeral, modals) on their way to Slack.",
    "slack_outbox_pending": "Slack side effects in the outbox not yet delivered.",
}


class Metrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.gauges: dict[str, Callable[[], float]] = {}
        self.probes: list[Callable[[], Awaitable[None]]] = []  # refresh gauges before a read

    async def refresh(self) -> None:
        for probe in self.probes:
            await probe()

    def inc(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount

    def render(self) -> str:
        lines = []
        for name, text in HELP.items():
            lines += [f"# HELP handoff_{name} {text}", f"# TYPE handoff_{name} counter"]
            lines.append(f"handoff_{name} {self.counts[name]}")
        for name, read in self.gauges.items():
            lines += [f"# HELP handoff_{name} {GAUGE_HELP.get(name, name)}"]
            lines += [f"# TYPE handoff_{name} gauge", f"handoff_{name} {read()}"]
        return "\n".join(lines) + "\n"
