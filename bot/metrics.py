"""Process metrics for `GET /metrics`, with the official Prometheus client (`prometheus-client`).

Counters count what happened (`inc`); histograms time what users wait on (`observe`); gauges
are read when Prometheus scrapes (`gauge`), after the `probes` refresh what needs the database.
Each Handoff has a registry of its own, so several in one process (the tests) never mix. Every
name is prefixed `handoff_`; docs/operations.md lists them and what to alert on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

log = logging.getLogger("handoff.metrics")

# The classic text format, which every Prometheus reads (our names need no escaping).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

HELP = {
    "leads_received_total": "Leads accepted by intake (new leads only).",
    "leads_duplicate_total": "Intake requests for a lead that was already stored.",
    "leads_requalified_total": "Known leads sent again that re-qualified: a new cycle.",
    "leads_invalid_total": "POST /leads requests refused as invalid (400, 413, 415): a wrong "
    "field, or a body that is not JSON, too large or not sent as JSON.",
    "leads_unauthorized_total": "POST /leads requests refused as unauthorized (401): a wrong "
    "or missing bearer token (a rotated HANDOFF_INTAKE_TOKEN), a bad intake signature, or "
    "intake disabled.",
    "activity_invalid_total": "POST /leads/{id}/activity requests refused as invalid (400, "
    "413, 415): a wrong field, or a body that is not JSON, too large or not sent as JSON.",
    "activity_unauthorized_total": "POST /leads/{id}/activity requests refused as "
    "unauthorized (401): the same token and signature as POST /leads.",
    "leads_posted_total": "Lead messages posted to Slack.",
    "claims_total": "Claims won.",
    "claims_refused_total": "Claim presses that lost a race or were not allowed.",
    "attempts_total": "Contact attempts logged.",
    "dispositions_total": "Leads dispositioned.",
    "reports_total": "SLA reports built for /sla-report.",
    "feedback_posted_total": "Disposition feedback and nurture notices posted to marketing.",
    "alerts_posted_total": "Delivery alerts posted to the escalations channel.",
    "slack_calls_total": "Slack Web API calls made for side effects.",
    "slack_retries_total": "Slack deliveries retried after a 5xx, connection error or timeout.",
    "slack_rate_limited_total": "Slack deliveries answered 429 (retried after Retry-After).",
    "slack_adopted_total": "Posts found in the channel's history after an unknown outcome.",
    "slack_errors_total": (
        "Slack requests given up for good: a message (alerted in the escalations channel) or "
        "a private answer or form (an expired trigger_id, a used-up response_url)."
    ),
    "crm_retries_total": "CRM writes retried after a 5xx, connection error or timeout.",
    "crm_rate_limited_total": "CRM writes answered 429 (tried again after its wait).",
    "sweep_failures_total": "Escalation sweeps that failed (the next one tries again).",
}

GAUGE_HELP = {
    "slack_queue_depth": "Private answers (ephemeral, modals) on their way to Slack.",
    "slack_outbox_pending": "Slack side effects in the outbox not yet delivered.",
    "slack_token_refused": "1 while Slack refuses Handoff's bot token (the app uninstalled, the "
    "token revoked: nothing is delivered until it works again), else 0.",
    "sweep_last_success_timestamp_seconds": "When an escalation sweep last finished (Unix "
    "time; 0: none yet in this process).",
}

# Seconds: Slack wants an ack within 3 s; most take milliseconds.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
# Seconds, for work that takes longer than an ack: a sweep runs every 30 s, and one CRM write
# may take its adapter's deadline (15-30 s) per request, after a wait for the CRM's rate window.
LONG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Seconds from a change to its Slack message: at Slack's pace, a burst takes minutes.
LAG_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
# Working time from a lead's post to its first touch, in seconds (Prometheus's base unit): the
# SLA's windows are hours, so 5 working minutes to 80 working hours.
TOUCH_BUCKETS = tuple(60.0 * minutes for minutes in (5, 15, 30, 60, 120, 240, 480, 960, 1920, 4800))


class _Counts(Mapping[str, int]):
    """The counters' current values by name (`counts["claims_total"]`), for tests and the demo."""

    def __init__(self, counters: dict[str, Counter], registry: CollectorRegistry) -> None:
        self._counters = counters
        self._registry = registry

    def __getitem__(self, name: str) -> int:
        value = self._registry.get_sample_value(f"handoff_{name.removesuffix('_total')}_total")
        return int(value or 0)

    def __iter__(self) -> Iterator[str]:
        return iter(self._counters)

    def __len__(self) -> int:
        return len(self._counters)


class Metrics:
    def __init__(self) -> None:
        # No `_created` series beside every counter and histogram (a third of a scrape).
        disable_created_metrics()
        self.registry = CollectorRegistry()
        # The process's own: memory, CPU, open files and its start time (a restart shows).
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._counters: dict[str, Counter] = {}
        for name in HELP:
            self._counter(name)
        self.counts = _Counts(self._counters, self.registry)
        self.probes: list[Callable[[], Awaitable[None]]] = []  # refresh gauges before a scrape
        self.probe_failures = Gauge(
            "handoff_metrics_probe_failures",
            "Gauge probes that failed at the last scrape (the database not answering): their "
            "gauges keep their last values, and the oldest waits' ages go on growing.",
            registry=self.registry,
        )
        registry = self.registry
        self.ack_seconds = Histogram(
            "handoff_slack_ack_seconds",
            "Time to answer a Slack request (HTTP and Socket Mode), listener included, by kind "
            "(command, block_actions, …).",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.intake_seconds = Histogram(
            "handoff_intake_seconds",
            "Time to answer an intake request, by route (leads, activity).",
            ["route"],
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.first_touch_seconds = Histogram(
            "handoff_first_touch_business_seconds",
            "Working time from a lead's post to its first touch, in seconds (on the team's "
            "calendar: nights, weekends and holidays do not count).",
            buckets=TOUCH_BUCKETS,
            registry=registry,
        )
        self.delivery_lag_seconds = Histogram(
            "handoff_outbox_delivery_lag_seconds",
            "Seconds from a change to its delivery to Slack, by kind of outbox row.",
            ["kind"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.sweep_seconds = Histogram(
            "handoff_sweep_seconds",
            "Duration of one escalation sweep.",
            buckets=LONG_BUCKETS,
            registry=registry,
        )
        self.crm_write_seconds = Histogram(
            "handoff_crm_write_seconds",
            "Duration of one write to the CRM, by adapter (none until a `crm:` is configured).",
            ["crm"],
            buckets=LONG_BUCKETS,
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "handoff_outbox_depth",
            "Outbox rows not yet delivered, by kind.",
            ["kind"],
            registry=registry,
        )
        self.outbox_oldest_seconds = Gauge(
            "handoff_outbox_oldest_pending_seconds",
            "Age of the oldest outbox row not yet delivered (0: none).",
            registry=registry,
        )

        self.crm_outbox_depth = Gauge(
            "handoff_crm_outbox_depth",
            "CRM outbox rows not yet written to the CRM, by kind (crm_sync, crm_note, crm_event).",
            ["kind"],
            registry=registry,
        )
        self.crm_outbox_oldest_seconds = Gauge(
            "handoff_crm_outbox_oldest_pending_seconds",
            "Age of the oldest CRM outbox row not yet written (0: none).",
            registry=registry,
        )
        self.crm_refusing = Gauge(
            "handoff_crm_refusing",
            "1 while the CRM refuses Handoff's writes (credentials, a property it lacks), else 0.",
            registry=registry,
        )

    def start_at_zero(
        self,
        *,
        slack_request_kinds: Iterable[str],
        outbox_kinds: Iterable[str],
        crm: str | None = None,
    ) -> None:
        """Every labelled series whose label values are known, at 0 from the start (the
        counters have no labels: they are at 0 already; the depth gauges list every kind at
        the first scrape). Prometheus's instrumentation guide, "Avoid missing metrics": a
        series that first appears at its first use is invisible to `rate()`, to an alert and
        to a dashboard until then."""
        for kind in slack_request_kinds:
            self.ack_seconds.labels(kind=kind)
        for kind in outbox_kinds:
            self.delivery_lag_seconds.labels(kind=kind)
        if crm is not None:
            self.crm_write_seconds.labels(crm=crm)

    def _counter(self, name: str) -> Counter:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Counter(
                f"handoff_{name.removesuffix('_total')}",
                HELP.get(name, name.replace("_", " ")),
                registry=self.registry,
            )
        return counter

    def inc(self, name: str, amount: int = 1) -> None:
        self._counter(name).inc(amount)

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """A gauge whose value is `read()` at each scrape."""
        Gauge(
            f"handoff_{name}", GAUGE_HELP.get(name, name.replace("_", " ")), registry=self.registry
        ).set_function(read)

    async def refresh(self) -> None:
        """Bring the gauges up to date before a scrape. A probe that fails (the database is
        down) leaves its gauges as they last read (the oldest waits' ages go on growing from the
        times last read), and `probe_failures` says so: the scrape still answers, with every
        counter and histogram (a 500 lost them all)."""
        failed = 0
        for probe in self.probes:
            try:
                await probe()
            except Exception as error:
                failed += 1
                log.warning(
                    "a /metrics probe failed (its gauges keep their last values): %s", error
                )
        self.probe_failures.set(failed)

    def render(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)
