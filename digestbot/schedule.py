"""When things run: digest fire times (cron in a local zone, DST-safe) and each feed's next poll.

Pure code: every function takes `now` (aware UTC) and, where chance is involved, a jitter
value drawn by the caller. `digestbot.service` turns these answers into APScheduler jobs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from digestbot.config import Config, FeedConfig, Watchlist

if TYPE_CHECKING:
    from digestbot.feedlog import FeedState
    from digestbot.pipeline import FeedReport

MISFIRE_GRACE = 6 * 3600  # seconds a digest may run late and still be sent (once: coalesced)
_MAX_SKIPS = 2000  # candidate fire times a trigger may reject in one call (a day of minutes)
_LOOKBACKS = (timedelta(hours=2), timedelta(days=2), timedelta(days=35), timedelta(days=400))
_MAX_AGE = re.compile(r"(?:^|[,\s])(s-maxage|max-age)\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


# --- digests ----------------------------------------------------------------------------------

class ZonedCronTrigger(BaseTrigger):  # type: ignore[misc]
    """A cron trigger in a local zone whose fire times strictly advance in local wall time.

    APScheduler 3.11's CronTrigger fires twice for a time inside the hour repeated when clocks
    go back (01:30 BST and 01:30 GMT) and, asked again from the second one, returns it again,
    which would hang the scheduler's run-time loop. Like Vixie cron, this trigger fires a
    repeated wall time once; a wall time skipped when clocks go forward fires an hour later.
    """

    def __init__(self, cron: str, zone: tzinfo) -> None:
        """Take a 5-field cron (weekday names) and a zone."""
        self.cron = CronTrigger.from_crontab(cron, timezone=zone)
        self.zone = zone
        self.expression = cron

    def get_next_fire_time(self, previous_fire_time: datetime | None,
                           now: datetime) -> datetime | None:
        """Take the last fire time (or None) and now; return the next fire time or None."""
        candidate: datetime | None = self.cron.get_next_fire_time(previous_fire_time, now)
        for _ in range(_MAX_SKIPS):
            if candidate is None or self._acceptable(candidate, previous_fire_time, now):
                return candidate
            probe = max(candidate.astimezone(UTC), now.astimezone(UTC)) + timedelta(minutes=1)
            candidate = self.cron.get_next_fire_time(None, probe.replace(second=0,
                                                                          microsecond=0))
        return None

    def _acceptable(self, candidate: datetime, previous: datetime | None, now: datetime) -> bool:
        if previous is None:
            return candidate.astimezone(UTC) >= now.astimezone(UTC).replace(microsecond=0)
        return (candidate.astimezone(UTC) > previous.astimezone(UTC)
                and _wall(candidate, self.zone) > _wall(previous, self.zone))

    def __str__(self) -> str:
        return f"cron[{self.expression} {self.zone}]"

    def __repr__(self) -> str:
        return f"<ZonedCronTrigger {self.expression!r} {self.zone}>"


def _wall(moment: datetime, zone: tzinfo) -> datetime:
    """Take an aware time; return its naive local wall-clock time in zone."""
    return moment.astimezone(zone).replace(tzinfo=None)


def watchlist_zone(watchlist: Watchlist, config: Config) -> ZoneInfo:
    """Take a watchlist and the config; return the zone its schedule is read in."""
    return ZoneInfo(watchlist.timezone or config.timezone)


def digest_trigger(watchlist: Watchlist, config: Config) -> ZonedCronTrigger:
    """Take a watchlist (schedule HH:MM or cron); return its trigger in its own zone."""
    return ZonedCronTrigger(watchlist.digest.cron, watchlist_zone(watchlist, config))


def next_fire_times(trigger: BaseTrigger, *, now: datetime, count: int) -> list[datetime]:
    """Take a trigger and now; return its next `count` fire times, in UTC."""
    times: list[datetime] = []
    fire = trigger.get_next_fire_time(None, now)
    while fire is not None and len(times) < count:
        times.append(fire.astimezone(UTC))
        fire = trigger.get_next_fire_time(fire, fire)
    return times


def latest_fire_time(trigger: BaseTrigger, *, now: datetime,
                     after: datetime | None = None) -> datetime | None:
    """Take a trigger and now; return its last fire time in (after, now] in UTC, or None."""
    for lookback in _LOOKBACKS:
        start = now - lookback if after is None else max(after, now - lookback)
        last: datetime | None = None
        fire = trigger.get_next_fire_time(None, start + timedelta(microseconds=1))
        while fire is not None and fire <= now:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire)
        if last is not None:
            return last.astimezone(UTC)
        if after is not None and start == after:
            return None
    return None


# --- polls ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PollPolicy:
    """Operator bounds on polling: hints and backoff never leave [min_interval, max_interval]."""

    min_interval: timedelta = timedelta(minutes=1)
    max_interval: timedelta = timedelta(hours=24)
    max_backoff: timedelta = timedelta(hours=6)  # cap on a failing feed's wait (Retry-After aside)
    jitter: float = 0.1  # each wait is stretched or shrunk by up to this fraction
    start_spread: timedelta = timedelta(seconds=30)  # first polls spread over this window
    failing_report_after: timedelta = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class FeedHints:
    """What a feed said about when to come back: Cache-Control, RSS ttl, Retry-After."""

    max_age: float | None = None  # seconds
    ttl_minutes: int | None = None
    retry_after: float | None = None  # seconds


def poll_policy(config: Config) -> PollPolicy:
    """Take the config; return its polling bounds (`polling:`)."""
    settings = config.polling
    return PollPolicy(
        min_interval=timedelta(minutes=settings.min_every),
        max_interval=timedelta(minutes=settings.max_every),
        max_backoff=timedelta(minutes=settings.max_backoff),
        jitter=settings.jitter)


def parse_max_age(cache_control: str | None) -> float | None:
    """Take a Cache-Control header; return its (s-)max-age in seconds, or None (no-store: 0)."""
    if not cache_control:
        return None
    found = dict((k.lower(), int(v)) for k, v in _MAX_AGE.findall(cache_control))
    if "s-maxage" in found:
        return float(found["s-maxage"])
    if "max-age" in found:
        return float(found["max-age"])
    return None


def hints_from_report(report: FeedReport) -> FeedHints:
    """Take a pipeline FeedReport; return the polling hints its server gave."""
    return FeedHints(max_age=parse_max_age(report.cache_control),
                     ttl_minutes=report.ttl_minutes, retry_after=report.retry_after)


def feed_interval(feed: FeedConfig, config: Config) -> timedelta:
    """Take a feed and the config; return its configured poll interval."""
    return timedelta(minutes=feed.poll_every or config.poll_every)


def backoff_delay(interval: timedelta, error_count: int, *, cap: timedelta) -> timedelta:
    """Take the interval and consecutive failures; return the wait before the next try.

    The wait doubles with each failure (interval, 2x, 4x, ...) up to cap (or the interval
    itself when that is longer); zero failures means the plain interval.
    """
    if error_count <= 0:
        return interval
    return min(interval * (1 << min(error_count - 1, 30)), max(cap, interval))


def plan_poll_delay(interval: timedelta, *, error_count: int, hints: FeedHints,
                    policy: PollPolicy, jitter: float = 0.0) -> timedelta:
    """Take a feed's interval, failures, hints and a jitter draw in [-1, 1]; return the wait.

    Hints only ever slow polling down (a feed cannot make us poll faster than configured);
    Retry-After is honoured on failure; everything is clamped to the policy's bounds.
    """
    base = _clamp(interval, policy.min_interval, policy.max_interval)
    if error_count > 0:
        delay = backoff_delay(base, error_count, cap=policy.max_backoff)
        if hints.retry_after is not None:
            delay = max(delay, timedelta(seconds=hints.retry_after))
    else:
        delay = base
        if hints.max_age is not None:
            delay = max(delay, timedelta(seconds=hints.max_age))
        if hints.ttl_minutes is not None:
            delay = max(delay, timedelta(minutes=hints.ttl_minutes))
    delay = _clamp(delay, policy.min_interval, policy.max_interval)
    stretched = delay * (1.0 + policy.jitter * max(-1.0, min(1.0, jitter)))
    return _clamp(stretched, policy.min_interval, policy.max_interval)


def _clamp(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    return max(low, min(value, max(low, high)))


def first_poll_time(state: FeedState | None, interval: timedelta, *, slot: int, slots: int,
                    policy: PollPolicy, now: datetime) -> datetime:
    """Take a feed's stored state and its place among all feeds; return when to poll it first.

    A stored next poll is kept (a restart resumes the cadence) unless it lies further ahead
    than the interval now allows; a feed without one waits from its last poll; a feed never
    polled gets an even share of the start window so feeds are not all hit at once.
    """
    spread = min(policy.start_spread, interval)
    offset = spread * (slot / max(1, slots))
    soonest = now + offset
    if state is None or state.last_polled is None:
        return soonest
    longest = plan_poll_delay(interval, error_count=state.error_count, hints=FeedHints(),
                              policy=policy, jitter=1.0)
    planned = state.next_poll or state.last_polled + plan_poll_delay(
        interval, error_count=state.error_count, hints=FeedHints(), policy=policy)
    planned = min(planned, max(state.last_polled, now) + longest)
    return max(planned, soonest)


def failing_too_long(state: FeedState, *, reported: datetime | None, policy: PollPolicy,
                     now: datetime) -> bool:
    """Take a feed's state and when it was last reported; return whether to report it now
    (failing for longer than the policy allows, and not reported within that time)."""
    if state.error_count <= 0 or state.failing_since is None:
        return False
    if now - state.failing_since < policy.failing_report_after:
        return False
    return reported is None or now - reported >= policy.failing_report_after


# --- config files -----------------------------------------------------------------------------

def config_fingerprint(config_path: Path, watchlists_dir: Path | None) -> tuple[object, ...]:
    """Take the config file and watchlists folder; return what changes when either is edited
    (names, sizes and modification times)."""
    paths = [config_path]
    if watchlists_dir is not None and watchlists_dir.is_dir():
        paths += sorted(p for p in watchlists_dir.iterdir() if p.suffix in (".yaml", ".yml"))
    marks: list[object] = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            marks.append((str(path), None))
            continue
        marks.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(marks)


# --- what `digestbot schedule` shows ----------------------------------------------------------

def describe_schedule(config: Config, *, now: datetime,
                      feed_states: Sequence[FeedState] = ()) -> str:
    """Take the config (and optionally stored feed states); return each job's next run."""
    lines = ["digests:"]
    for wl in config.watchlists:
        zone = watchlist_zone(wl, config)
        fires = next_fire_times(digest_trigger(wl, config), now=now, count=1)
        when = (f"{fires[0]:%Y-%m-%d %H:%M} UTC ({fires[0].astimezone(zone):%a %H:%M %Z})"
                if fires else "never")
        lines.append(f"  {wl.name}: schedule {wl.digest.schedule!r} in {zone.key} -> next {when}")
    lines.append("polls:")
    states = {s.url: s for s in feed_states}
    policy = poll_policy(config)
    for i, feed in enumerate(config.feeds):
        interval = feed_interval(feed, config)
        minutes = interval.total_seconds() / 60
        state = states.get(feed.url)
        nxt = first_poll_time(state, interval, slot=i, slots=len(config.feeds), policy=policy,
                              now=now)
        extra = f", failing x{state.error_count}" if state is not None and state.error_count else ""
        lines.append(f"  {feed.display_name}: every {minutes:g} min -> next "
                     f"{nxt.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC{extra}")
    return "\n".join(lines)


async def run_service(config_path: Path) -> int:
    """Take the config path; run the service until SIGTERM (see digestbot.service)."""
    from digestbot.service import run_service as run

    return await run(config_path)
