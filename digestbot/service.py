"""`digestbot run`: the long-running service (I/O edge) on APScheduler's AsyncIOScheduler.

Each feed has its own one-shot poll job, re-added after every poll at the time
`schedule.plan_poll_delay` picks (interval, feed hints, backoff, jitter); that time is also
saved in the store so a restart resumes the cadence. Each watchlist has a cron job in its own
zone (misfire grace, coalesced). At start, unfinished deliveries are resumed and a digest that
fell due while the service was down is sent once. Config edits and SIGHUP reload the config;
SIGTERM finishes in-flight work and returns 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digestbot.alerts import send_alert_updates, send_alerts_for_stories
from digestbot.config import Config, FeedConfig, load_config
from digestbot.deliver import deliver_digest, resume_deliveries
from digestbot.errors import ConfigError, DigestbotError
from digestbot.feedlog import FeedState
from digestbot.fetch import make_client
from digestbot.health import assess_health, start_health_server
from digestbot.metrics import Metrics, render_prometheus, track_fetches
from digestbot.pipeline import FeedReport, PollReport, load_story_index, make_digest, poll, utcnow
from digestbot.records import Receipt
from digestbot.schedule import (
    MISFIRE_GRACE,
    FeedHints,
    PollPolicy,
    config_fingerprint,
    digest_trigger,
    failing_too_long,
    feed_interval,
    first_poll_time,
    hints_from_report,
    latest_fire_time,
    plan_poll_delay,
    poll_policy,
)
from digestbot.send_slack import make_slack_client, post_ops_notice
from digestbot.store import Store
from digestbot.workers import Offload, worker_pool

log = logging.getLogger("digestbot.service")

CONFIG_CHECK_SECONDS = 5.0  # how often config and watchlist files are checked for edits
STOP_GRACE_SECONDS = 30.0  # in-flight work gets this long after SIGTERM before it is cancelled
RETRY_DELIVERIES_SECONDS = 300.0  # how often deliveries left pending by a transient error retry

Clock = Callable[[], datetime]


class Service:
    """Running state of `digestbot run`: config, store, scheduler, in-flight work."""

    def __init__(self, config_path: Path, config: Config, store: Store, *,
                 client: httpx.AsyncClient, clock: Clock = utcnow,
                 policy: PollPolicy | None = None, rng: random.Random | None = None,
                 console_stream: TextIO | None = None, offload: Offload | None = None) -> None:
        """Take the loaded config, open store and shared HTTP client; build the idle service."""
        self.config_path = config_path
        self.config = config
        self.store = store
        self.client = client
        self.offload = offload or Offload()
        self.clock = clock
        self.fixed_policy = policy
        self.policy = policy or poll_policy(config)
        self.rng = rng or random.Random()
        self.console_stream = console_stream
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.metrics = Metrics()
        track_fetches(client, self.metrics)
        self.started_at = clock()
        self.index = load_story_index(config, store, now=self.started_at)
        self.stopping = asyncio.Event()
        self.inflight: set[asyncio.Task[Any]] = set()
        self.feed_slots = asyncio.Semaphore(config.fetch.concurrency)
        # One sender at a time: the retry of unfinished deliveries must never pick up a
        # delivery that another send is in the middle of.
        self.delivery_lock = asyncio.Lock()
        # Everything below is keyed by feed url or watchlist name: bounded by the config.
        self.polling: set[str] = set()
        self.digesting: set[str] = set()
        self.intervals: dict[str, timedelta] = {}
        self.next_polls: dict[str, datetime] = {}
        self.planned: dict[str, timedelta] = {}
        self.reported: dict[str, datetime] = {}
        self.failing: set[str] = set()
        self.digest_jobs: dict[str, str] = {}
        self.last_poll: datetime | None = None
        self.fingerprint = config_fingerprint(config_path, config.watchlists_dir)
        self.rejected: tuple[object, ...] | None = None

    # --- jobs -----------------------------------------------------------------------------

    def install_jobs(self) -> None:
        """Add, move or drop poll and digest jobs so they match the current config."""
        now = self.clock()
        wanted = {f.url for f in self.config.feeds}
        for url in [u for u in self.intervals if u not in wanted]:
            self._drop_job(f"poll:{url}")
            for known in (self.intervals, self.next_polls, self.planned, self.reported):
                known.pop(url, None)
            self.failing.discard(url)
        states = {s.url: s for s in self.store.feeds.states()}
        self.failing |= {u for u, s in states.items() if u in wanted and s.error_count}
        for i, feed in enumerate(self.config.feeds):
            interval = feed_interval(feed, self.config)
            if self.intervals.get(feed.url) == interval or feed.url in self.polling:
                self.intervals[feed.url] = interval
                continue  # unchanged, or its running poll schedules the next one itself
            self.intervals[feed.url] = interval
            when = first_poll_time(states.get(feed.url), interval, slot=i,
                                   slots=len(self.config.feeds), policy=self.policy, now=now)
            self.schedule_poll(feed.url, when)
        names = {wl.name for wl in self.config.watchlists}
        for name in [n for n in self.digest_jobs if n not in names]:
            self._drop_job(f"digest:{name}")
            del self.digest_jobs[name]
        for wl in self.config.watchlists:
            trigger = digest_trigger(wl, self.config)
            if self.digest_jobs.get(wl.name) == str(trigger):
                continue
            self._drop_job(f"digest:{wl.name}")
            self.scheduler.add_job(self.run_digest, trigger, args=[wl.name],
                                   id=f"digest:{wl.name}", coalesce=True, max_instances=1,
                                   misfire_grace_time=MISFIRE_GRACE)
            self.digest_jobs[wl.name] = str(trigger)
        if self.scheduler.get_job("retry-deliveries") is None:
            self.scheduler.add_job(self.retry_deliveries,
                                   IntervalTrigger(seconds=RETRY_DELIVERIES_SECONDS),
                                   id="retry-deliveries", coalesce=True, max_instances=1,
                                   misfire_grace_time=None)
        if self.scheduler.get_job("config-watch") is None:
            self.scheduler.add_job(self.watch_config, IntervalTrigger(seconds=CONFIG_CHECK_SECONDS),
                                   id="config-watch", coalesce=True, max_instances=1,
                                   misfire_grace_time=None)

    def _drop_job(self, job_id: str) -> None:
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(job_id)

    def schedule_poll(self, url: str, when: datetime) -> None:
        """Take a feed and a time; (re)place its one-shot poll job at that time."""
        self.next_polls[url] = when
        if self.stopping.is_set():
            return
        self._drop_job(f"poll:{url}")
        # No misfire grace: a poll that is late (a busy loop, a suspended host) still runs.
        self.scheduler.add_job(self.poll_feed, DateTrigger(run_date=when), args=[url],
                               id=f"poll:{url}", coalesce=True, max_instances=1,
                               misfire_grace_time=None)

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        """Count the current task as in-flight work that SIGTERM waits for."""
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self.inflight.discard(task)

    # --- polls ----------------------------------------------------------------------------

    async def poll_feed(self, url: str) -> None:
        """Take a feed url; poll it once, then plan, save and schedule its next poll."""
        feed = self.config.feed(url)
        if feed is None or self.stopping.is_set() or url in self.polling:
            return
        self.polling.add(url)
        with self._tracked():
            try:
                report = await self._poll_once(feed)
                if report is not None:
                    await self.send_alerts(report)
            finally:
                self.polling.discard(url)

    async def _poll_once(self, feed: FeedConfig) -> PollReport | None:
        started = time.perf_counter()
        report: PollReport | None = None
        feed_report: FeedReport | None = None
        try:
            async with self.feed_slots:
                report = await poll(self.config, self.store, client=self.client,
                                    index=self.index, now=self.clock, feeds=(feed,),
                                    offload=self.offload)
            feed_report = next((r for r in report.feeds if r.url == feed.url), None)
            finished = self.clock()
            self.last_poll = finished
            self.metrics.observe_poll(report, time.perf_counter() - started, finished=finished)
        except Exception as err:  # a crashed poll must still schedule the feed's next one
            log.exception("poll crashed", extra={"feed": feed.url, "reason": str(err)})
        try:
            self.after_poll(feed, feed_report)
        except Exception as err:  # e.g. the database is locked: keep the feed on schedule
            log.exception("next poll not planned", extra={"feed": feed.url, "reason": str(err)})
            if self.config.feed(feed.url) is not None:
                self.schedule_poll(feed.url, self.clock() + feed_interval(feed, self.config))
        return report

    def after_poll(self, feed: FeedConfig, report: FeedReport | None) -> datetime:
        """Take a polled feed and its report (None: the poll crashed); plan, save and schedule
        its next poll, report long failures and recoveries; return the next poll time."""
        now = self.clock()
        state = self.store.feeds.state(feed.url)
        errors = state.error_count if state is not None else 0
        failed = report is None or report.status == "failed"
        if failed and errors == 0:
            errors = 1  # the poll crashed before the pipeline could count the failure
        current = self.config.feed(feed.url) or feed
        delay = plan_poll_delay(feed_interval(current, self.config), error_count=errors,
                                hints=hints_from_report(report) if report else FeedHints(),
                                policy=self.policy,
                                jitter=self.rng.uniform(-1.0, 1.0))
        when = now + delay
        self._save_next_poll(feed.url, state, when, failed=failed)
        if self.config.feed(feed.url) is None:
            return when  # removed by a reload while it was being polled
        self.planned[feed.url] = delay
        self.schedule_poll(feed.url, when)
        if failed:
            self.failing.add(feed.url)
            if state is not None and failing_too_long(state, reported=self.reported.get(feed.url),
                                                      policy=self.policy, now=now):
                self.reported[feed.url] = now
                self.report_failing(feed, state)
        elif feed.url in self.failing:
            self.failing.discard(feed.url)
            self.reported.pop(feed.url, None)
            log.warning("feed recovered", extra={"feed": feed.url})
        return when

    def _save_next_poll(self, url: str, state: FeedState | None, when: datetime, *,
                        failed: bool) -> None:
        """Record the next poll time in the store so restarts and `status` see it."""
        try:
            self.store.feeds.record_next_poll(url, when)
        except DigestbotError as err:
            log.warning("next poll not saved", extra={"feed": url, "reason": str(err)})

    def report_failing(self, feed: FeedConfig, state: FeedState) -> None:
        """Log (error level) a feed failing for over a day, and tell the Slack ops channel."""
        since = state.failing_since.isoformat(timespec="minutes") if state.failing_since else "?"
        log.error("feed failing for over a day", extra={
            "feed": feed.url, "since": since, "errors": state.error_count,
            "reason": state.last_error})
        slack = self.config.slack
        if slack is None or slack.token is None or not slack.ops_channel:
            return
        text = (f"digestbot: feed {feed.display_name} ({feed.url}) has been failing since "
                f"{since} ({state.error_count} tries): {state.last_error}")
        task = asyncio.ensure_future(asyncio.to_thread(
            post_ops_notice, make_slack_client(slack), slack.ops_channel, text))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def send_alerts(self, report: PollReport) -> list[Receipt]:
        """Take a poll report; send alerts for its new stories and post the articles that
        joined alerted stories in the alerts' threads; return the receipts."""
        if not report.new_stories and not report.joined:
            return []
        try:
            async with self.delivery_lock:
                receipts = await asyncio.to_thread(
                    send_alerts_for_stories, self.config, self.store, report.new_stories,
                    now=self.clock, console_stream=self.console_stream)
                receipts += await asyncio.to_thread(
                    send_alert_updates, self.config, self.store, report.joined, now=self.clock)
        except DigestbotError as err:
            log.error("alerts failed", extra={"reason": str(err)})
            return []
        for key in {r.digest_key for r in receipts if r.status == "sent"}:
            if ":more:" not in key:  # a reply in an alert's thread is not another alert
                self.metrics.count_alert(key.split(":")[1] if key.count(":") >= 2 else key)
        return receipts

    # --- digests --------------------------------------------------------------------------

    async def run_digest(self, name: str) -> None:
        """Take a watchlist name; send its digest for the schedule slot that just fired."""
        now = self.clock()
        try:
            trigger = digest_trigger(self.config.watchlist(name), self.config)
        except ConfigError:
            return  # removed by a reload while the job was due
        slot = latest_fire_time(trigger, now=now) or now.replace(second=0, microsecond=0)
        await self.send_digest(name, slot)

    async def send_digest(self, name: str, until: datetime) -> list[Receipt]:
        """Take a watchlist and a slot; build and deliver its digest for the period since its
        last digest up to the slot, once (a digest for this slot or later stops it)."""
        if name in self.digesting or self.stopping.is_set():
            return []
        try:
            wl = self.config.watchlist(name)
        except ConfigError:
            return []
        self.digesting.add(name)
        with self._tracked():
            try:
                last = self.store.outbox.last_digest_until(name)
                if last is not None and last >= until:
                    return []
                digest = await asyncio.to_thread(make_digest, self.config, self.store, wl,
                                                 now=self.clock(), until=until)
                if digest.story_count == 0:
                    log.info("digest empty, not sent", extra={"watchlist": name})
                    return []
                async with self.delivery_lock:
                    receipts = await asyncio.to_thread(
                        deliver_digest, digest, wl.deliver, store=self.store,
                        slack=self.config.slack, email=self.config.email,
                        templates_dir=self.config.templates_dir, now=self.clock,
                        console_stream=self.console_stream)
            except DigestbotError as err:
                log.error("digest failed", extra={"watchlist": name, "reason": str(err)})
                return []
            finally:
                self.digesting.discard(name)
        self.metrics.count_digest(name)
        for r in receipts:
            self.metrics.count_delivery(r)
            log.warning("digest delivered", extra={
                "watchlist": name, "digest_key": r.digest_key, "destination": r.destination,
                "status": r.status})
        return receipts

    async def catch_up(self) -> list[Receipt]:
        """Send, once each, the latest digest that fell due while the service was down."""
        receipts: list[Receipt] = []
        now = self.clock()
        for wl in self.config.watchlists:
            last = self.store.outbox.last_digest_until(wl.name)
            if last is None:
                continue  # never sent: the first digest waits for its schedule
            missed = latest_fire_time(digest_trigger(wl, self.config), now=now, after=last)
            if missed is not None:
                log.warning("digest missed while down, sending now",
                            extra={"watchlist": wl.name, "due": missed.isoformat()})
                receipts += await self.send_digest(wl.name, missed)
        return receipts

    async def resume(self) -> list[Receipt]:
        """Finish deliveries a crash, kill or transient error left pending or sending; return
        their receipts."""
        async with self.delivery_lock:
            receipts = await asyncio.to_thread(
                resume_deliveries, self.store, slack=self.config.slack, email=self.config.email,
                templates_dir=self.config.templates_dir, now=self.clock,
                watchlists=self.config.watchlists, console_stream=self.console_stream)
        for r in receipts:
            self.metrics.count_delivery(r)
            log.warning("delivery resumed", extra={"digest_key": r.digest_key,
                                                   "destination": r.destination,
                                                   "status": r.status})
        return receipts

    async def retry_deliveries(self) -> None:
        """Retry deliveries left pending by a transient failure (a cheap check when none)."""
        with self._tracked():
            try:
                if self.store.outbox.unfinished_deliveries():
                    await self.resume()
            except DigestbotError as err:
                log.error("delivery retry failed", extra={"reason": str(err)})

    # --- config ---------------------------------------------------------------------------

    async def watch_config(self) -> None:
        """Reload the config when the config file or a watchlist file changed."""
        found = config_fingerprint(self.config_path, self.config.watchlists_dir)
        if found != self.fingerprint and found != self.rejected:
            self.reload()

    def reload(self) -> bool:
        """Re-read the config; a bad edit keeps the last good config running. True if loaded."""
        found = config_fingerprint(self.config_path, self.config.watchlists_dir)
        try:
            config = load_config(self.config_path)
        except DigestbotError as err:
            if found != self.rejected:
                log.error("config reload failed; keeping the last good config",
                          extra={"reason": str(err)})
            self.rejected = found
            return False
        for what, old, new in (
                ("database", self.config.database, config.database),
                ("health", self.config.health, config.health),
                ("fetch.user_agent", self.config.fetch.user_agent, config.fetch.user_agent),
                ("fetch.timeout", self.config.fetch.timeout, config.fetch.timeout),
                ("clustering", self.config.clustering, config.clustering)):
            if old != new:
                log.warning("config change needs a restart to take effect", extra={"key": what})
        self.config = config
        self.policy = self.fixed_policy or poll_policy(config)
        self.fingerprint = config_fingerprint(self.config_path, config.watchlists_dir)
        self.rejected = None
        try:
            self.install_jobs()
        except DigestbotError as err:
            log.error("config reloaded but jobs not updated", extra={"reason": str(err)})
            return False
        log.warning("config reloaded", extra={"feeds": len(config.feeds),
                                              "watchlists": len(config.watchlists)})
        return True

    # --- health ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Return the /healthz document: scheduler alive, last poll, failing feeds."""
        now = self.clock()
        wanted = {f.url for f in self.config.feeds}
        states = [s for s in self.store.feeds.states() if s.url in wanted]
        doc = assess_health(scheduler_running=self.scheduler.state == STATE_RUNNING,
                            started_at=self.started_at, last_poll_finished=self.last_poll,
                            poll_interval=self.expected_poll_gap(), feed_states=states, now=now)
        doc["failing_over_a_day"] = sorted(
            s.url for s in states if s.error_count and s.failing_since is not None
            and now - s.failing_since >= self.policy.failing_report_after)
        return doc

    def expected_poll_gap(self) -> timedelta | None:
        """Return the shortest planned wait between polls of any feed (None: no feeds)."""
        gaps = [self.planned.get(f.url) or feed_interval(f, self.config)
                for f in self.config.feeds]
        return min(gaps) if gaps else None

    def metrics_text(self) -> str:
        """Return the /metrics body."""
        return render_prometheus(self.metrics, store_stats=self.store.stats())

    # --- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume deliveries, send missed digests, then start the scheduler."""
        await self.resume()
        if not self.stopping.is_set():
            await self.catch_up()
        if not self.stopping.is_set():
            self.install_jobs()
            self.scheduler.start()

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Start nothing new; let in-flight polls and sends finish (up to grace seconds)."""
        self.stopping.set()
        if self.scheduler.state == STATE_RUNNING:
            self.scheduler.pause()
        current = asyncio.current_task()
        pending = {t for t in self.inflight if t is not current and not t.done()}
        if pending:
            log.warning("stopping: waiting for in-flight work", extra={"tasks": len(pending)})
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn


async def run_service(config_path: Path, *, stop: asyncio.Event | None = None,
                      clock: Clock = utcnow, policy: PollPolicy | None = None,
                      console_stream: TextIO | None = None) -> int:
    """Take the config path; run polls and digests until SIGTERM/SIGINT (or `stop`); return 0."""
    config = load_config(config_path)
    store = Store.open(config.database)
    client = make_client(user_agent=config.fetch.user_agent, timeout=config.fetch.timeout,
                         max_connections=config.fetch.concurrency)
    with worker_pool(config.fetch.workers) as offload:
        return await _serve(config_path, config, store, client, offload, stop=stop, clock=clock,
                            policy=policy, console_stream=console_stream)


async def _serve(config_path: Path, config: Config, store: Store, client: httpx.AsyncClient,
                 offload: Offload, *, stop: asyncio.Event | None, clock: Clock,
                 policy: PollPolicy | None, console_stream: TextIO | None) -> int:
    """Run the service with its open store, client and workers until stopped; return 0."""
    service = Service(config_path, config, store, client=client, clock=clock, policy=policy,
                      console_stream=console_stream, offload=offload)
    stopping = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stopping.set)
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, service.reload)
    health_server: asyncio.Server | None = None
    try:
        if config.health is not None:
            health_server = await start_health_server(
                config.health.host, config.health.port, health=service.health,
                metrics=service.metrics_text)
            log.warning("health endpoint listening", extra={
                "address": f"{config.health.host}:{config.health.port}"})
        waiter = asyncio.ensure_future(stopping.wait())
        starter = asyncio.ensure_future(service.start())
        await asyncio.wait({waiter, starter}, return_when=asyncio.FIRST_COMPLETED)
        if starter.done():
            starter.result()
            log.warning("digestbot running", extra={"feeds": len(service.config.feeds),
                                                    "watchlists": len(service.config.watchlists)})
            await waiter
        else:
            service.stopping.set()  # SIGTERM while resuming: finish that, start nothing more
            await starter
        await service.stop()
    finally:
        if health_server is not None:
            health_server.close()
            await health_server.wait_closed()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
        await client.aclose()
        store.close()
    log.warning("digestbot stopped")
    return 0
