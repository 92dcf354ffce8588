"""Service counters and their Prometheus text exposition (format 0.0.4), with no global registry.

One `Metrics` object lives as long as the service; the scheduler feeds it poll reports,
delivery receipts and alerts, and `render_prometheus` turns it into the `/metrics` body.
The exposition is written here (it is a few lines of text) rather than with prometheus_client.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from digestbot.records import Receipt

if TYPE_CHECKING:
    from digestbot.pipeline import PollReport

# Upper bounds in seconds: a feed answers in tens of ms to tens of seconds; a poll can take minutes.
FETCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
POLL_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

Labels = tuple[tuple[str, str], ...]


@dataclass
class Histogram:
    """Counts of observations per upper bound, plus their sum and count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        """Take one observation and add it to the first bucket whose bound holds it."""
        index = bisect_left(self.bounds, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """Return (le, cumulative count) pairs ending with +Inf, as Prometheus reports them."""
        pairs: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            running += n
            pairs.append((format_value(bound), running))
        pairs.append(("+Inf", self.count))
        return pairs


class Metrics:
    """What the service has done since it started: polls, fetches, feeds, deliveries, alerts."""

    def __init__(self) -> None:
        """Start every counter at zero."""
        # Deliveries run in worker threads, so every update holds the lock.
        self._lock = threading.Lock()
        self.polls = 0
        self.poll_seconds = Histogram(POLL_BUCKETS)
        self.fetch_seconds = Histogram(FETCH_BUCKETS)
        self.fetch_responses: Counter[str] = Counter()
        self.feed_polls: Counter[tuple[str, str]] = Counter()
        self.feed_errors: Counter[str] = Counter()
        self.articles = 0
        self.matches: Counter[tuple[str, str]] = Counter()
        self.stories = 0
        self.digests: Counter[str] = Counter()
        self.deliveries: Counter[tuple[str, str]] = Counter()
        self.delivery_failures: Counter[str] = Counter()
        self.alerts: Counter[str] = Counter()
        self.last_poll_finished: datetime | None = None

    def observe_poll(self, report: PollReport, seconds: float, *,
                     finished: datetime | None = None) -> None:
        """Take one poll's report, its duration and end time; add them to the counters."""
        with self._lock:
            self.polls += 1
            self.poll_seconds.observe(seconds)
            for feed in report.feeds:
                self.feed_polls[(feed.url, feed.status)] += 1
                if feed.status == "failed":
                    self.feed_errors[feed.url] += 1
            self.articles += len(report.articles)
            for match in report.matches:
                self.matches[(match.watchlist, match.topic)] += 1
            self.stories += len(report.new_stories)
            if finished is not None:
                self.last_poll_finished = finished

    def observe_fetch(self, seconds: float, status: int | None) -> None:
        """Take one HTTP fetch's time to response headers and its status (None: no answer)."""
        with self._lock:
            self.fetch_seconds.observe(seconds)
            self.fetch_responses["error" if status is None else str(status)] += 1

    def count_digest(self, watchlist: str) -> None:
        """Take the watchlist of a digest that was built and handed to delivery; count it."""
        with self._lock:
            self.digests[watchlist] += 1

    def count_delivery(self, receipt: Receipt) -> None:
        """Take one destination's delivery receipt; count it by destination kind and status."""
        kind = destination_kind(receipt.destination)
        with self._lock:
            self.deliveries[(kind, receipt.status)] += 1
            if receipt.status == "failed":
                self.delivery_failures[kind] += 1

    def count_alert(self, watchlist: str) -> None:
        """Take the watchlist an alert was sent for; count it."""
        with self._lock:
            self.alerts[watchlist] += 1


def destination_kind(destination: str) -> str:
    """Take a destination name such as "slack:#desk" or "email:a@b"; return "slack" or "email"."""
    # The kind only: channel names and addresses would make one time series per recipient.
    kind = destination.split(":", 1)[0].strip().lower()
    return kind if kind.isidentifier() else "other"


def track_fetches(client: httpx.AsyncClient, metrics: Metrics) -> None:
    """Take the shared HTTP client; add event hooks that time every request into metrics."""

    async def on_request(request: httpx.Request) -> None:
        request.extensions["digestbot_started"] = time.perf_counter()

    async def on_response(response: httpx.Response) -> None:
        started = response.request.extensions.get("digestbot_started")
        if isinstance(started, float):
            metrics.observe_fetch(time.perf_counter() - started, response.status_code)

    hooks = client.event_hooks
    client.event_hooks = {"request": [*hooks.get("request", []), on_request],
                          "response": [*hooks.get("response", []), on_response]}


def format_value(value: float) -> str:
    """Take a number; return it as the exposition format writes it (+Inf, NaN, 3, 0.25)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def escape_label(value: str) -> str:
    """Take a label value; return it with backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """Take HELP text; return it with backslash and newline escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_sample(name: str, labels: Labels, value: float) -> str:
    """Take a metric name, its labels and value; return one exposition line."""
    if not labels:
        return f"{name} {format_value(value)}"
    inner = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels)
    return f"{name}{{{inner}}} {format_value(value)}"


def format_family(name: str, kind: str, help_text: str,
                  samples: Iterable[tuple[Labels, float]]) -> list[str]:
    """Take a counter or gauge family and its samples; return its HELP, TYPE and sample lines."""
    lines = [f"# HELP {name} {escape_help(help_text)}", f"# TYPE {name} {kind}"]
    lines += [format_sample(name, labels, value) for labels, value in samples]
    return lines


def format_histogram(name: str, help_text: str, histogram: Histogram) -> list[str]:
    """Take a histogram; return its HELP, TYPE, _bucket, _sum and _count lines."""
    lines = [f"# HELP {name} {escape_help(help_text)}", f"# TYPE {name} histogram"]
    lines += [format_sample(f"{name}_bucket", (("le", le),), n) for le, n in histogram.cumulative()]
    lines.append(format_sample(f"{name}_sum", (), histogram.total))
    lines.append(format_sample(f"{name}_count", (), histogram.count))
    return lines


def _by(counter: Mapping[str, int], label: str) -> list[tuple[Labels, float]]:
    return [(((label, key),), value) for key, value in sorted(counter.items())]


def _by_pair(counter: Mapping[tuple[str, str], int], first: str,
             second: str) -> list[tuple[Labels, float]]:
    return [(((first, a), (second, b)), value) for (a, b), value in sorted(counter.items())]


def render_prometheus(metrics: Metrics, *, store_stats: Mapping[str, int] | None = None) -> str:
    """Take the metrics and optional store row counts; return the Prometheus text exposition."""
    m = metrics
    with m._lock:
        lines = format_family("digestbot_polls_total", "counter",
                              "Polls run (each covers one or more feeds).", [((), m.polls)])
        lines += format_histogram("digestbot_poll_duration_seconds",
                                  "Wall time of one poll, fetch to clustering.", m.poll_seconds)
        lines += format_histogram("digestbot_fetch_duration_seconds",
                                  "Time from sending an HTTP request to its response headers.",
                                  m.fetch_seconds)
        lines += format_family("digestbot_fetch_responses_total", "counter",
                               "HTTP responses by status code.", _by(m.fetch_responses, "code"))
        lines += format_family("digestbot_feed_polls_total", "counter",
                               "Feed polls by feed and outcome "
                               "(ok, not_modified, unchanged, failed).",
                               _by_pair(m.feed_polls, "feed", "status"))
        lines += format_family("digestbot_feed_errors_total", "counter",
                               "Failed feed polls by feed.", _by(m.feed_errors, "feed"))
        lines += format_family("digestbot_articles_total", "counter",
                               "New articles stored.", [((), m.articles)])
        lines += format_family("digestbot_matches_total", "counter",
                               "New topic matches by watchlist and topic.",
                               _by_pair(m.matches, "watchlist", "topic"))
        lines += format_family("digestbot_stories_total", "counter",
                               "New stories started.", [((), m.stories)])
        lines += format_family("digestbot_digests_total", "counter",
                               "Digests built and handed to delivery, by watchlist.",
                               _by(m.digests, "watchlist"))
        lines += format_family("digestbot_deliveries_total", "counter",
                               "Digest deliveries by destination kind and status.",
                               _by_pair(m.deliveries, "destination", "status"))
        lines += format_family("digestbot_delivery_failures_total", "counter",
                               "Failed digest deliveries by destination kind.",
                               _by(m.delivery_failures, "destination"))
        lines += format_family("digestbot_alerts_total", "counter",
                               "Alerts sent by watchlist.", _by(m.alerts, "watchlist"))
        if m.last_poll_finished is not None:
            lines += format_family("digestbot_last_poll_timestamp_seconds", "gauge",
                                   "Unix time the last poll finished.",
                                   [((), m.last_poll_finished.timestamp())])
    if store_stats is not None:
        lines += format_family("digestbot_store_rows", "gauge",
                               "Rows in the store by kind (feeds_failing: feeds in error).",
                               _by(store_stats, "kind"))
    return "\n".join(lines) + "\n"
