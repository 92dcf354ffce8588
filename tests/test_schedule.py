"""Pure scheduling: digest fire times across DST, poll planning, backoff, hints, resuming."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digestbot.config import Config, load_config
from digestbot.feedlog import FeedState
from digestbot.schedule import (
    FeedHints,
    PollPolicy,
    ZonedCronTrigger,
    backoff_delay,
    config_fingerprint,
    describe_schedule,
    digest_trigger,
    failing_too_long,
    first_poll_time,
    latest_fire_time,
    next_fire_times,
    parse_max_age,
    plan_poll_delay,
)

LONDON = ZoneInfo("Europe/London")
MIN = timedelta(minutes=1)


def write_config(folder: Path, *, schedule: str = "07:30", timezone: str = "Europe/London",
                 watchlist_zone: str | None = None) -> Config:
    (folder / "watchlists").mkdir(exist_ok=True)
    (folder / "digestbot.yaml").write_text(
        f"timezone: {timezone}\ndatabase: sqlite:///{folder / 'db.sqlite'}\npoll_every: 20\n"
        f"watchlists_dir: {folder / 'watchlists'}\n"
        "feeds:\n  - {url: 'https://news.example.org/a.rss', name: Alpha}\n"
        "  - {url: 'https://news.example.org/b.rss', poll_every: 5}\n", encoding="utf-8")
    zone_line = f"timezone: {watchlist_zone}\n" if watchlist_zone else ""
    (folder / "watchlists" / "desk.yaml").write_text(
        f"digest: {{schedule: '{schedule}'}}\n{zone_line}deliver: [console]\n"
        "topics:\n  - {name: Ferries, query: ferry}\n", encoding="utf-8")
    return load_config(folder / "digestbot.yaml")


def state(**changes: object) -> FeedState:
    base: dict[str, object] = dict(
        url="https://news.example.org/a.rss", title=None, etag=None, last_modified=None,
        content_hash=None, last_polled=None, last_success=None, error_count=0, last_error=None,
        failing_since=None, next_poll=None)
    base.update(changes)
    return FeedState(**base)  # type: ignore[arg-type]


# --- digests across DST -----------------------------------------------------------------------

@pytest.mark.parametrize("start", [datetime(2026, 10, 23, 12, tzinfo=UTC),
                                   datetime(2026, 3, 27, 12, tzinfo=UTC)])
def test_daily_digest_fires_at_local_time_on_both_sides_of_a_dst_change(
        tmp_path: Path, start: datetime) -> None:
    config = write_config(tmp_path)
    fires = next_fire_times(digest_trigger(config.watchlists[0], config), now=start, count=4)
    assert [f.astimezone(LONDON).strftime("%H:%M") for f in fires] == ["07:30"] * 4
    assert len({f.astimezone(LONDON).date() for f in fires}) == 4
    offsets = {f.astimezone(LONDON).utcoffset() for f in fires}
    assert offsets == {timedelta(0), timedelta(hours=1)}  # the change fell inside the window
    gaps = {b - a for a, b in itertools.pairwise(fires)}
    assert gaps == {timedelta(hours=24), timedelta(hours=23 if start.month == 3 else 25)}


def test_time_in_the_repeated_hour_fires_once_and_the_trigger_keeps_advancing() -> None:
    trigger = ZonedCronTrigger("30 1 * * *", LONDON)
    fires = next_fire_times(trigger, now=datetime(2026, 10, 24, 12, tzinfo=UTC), count=3)
    assert [f.isoformat() for f in fires] == [
        "2026-10-25T00:30:00+00:00",  # 01:30 BST; the 01:30 GMT an hour later is not repeated
        "2026-10-26T01:30:00+00:00", "2026-10-27T01:30:00+00:00"]


def test_time_skipped_by_spring_forward_fires_once_an_hour_later() -> None:
    trigger = ZonedCronTrigger("30 1 * * *", LONDON)
    fires = next_fire_times(trigger, now=datetime(2026, 3, 28, 12, tzinfo=UTC), count=2)
    assert [f.astimezone(LONDON).strftime("%m-%d %H:%M") for f in fires] == [
        "03-29 02:30", "03-30 01:30"]


def test_watchlist_zone_overrides_config_zone(tmp_path: Path) -> None:
    config = write_config(tmp_path, watchlist_zone="Asia/Tokyo")
    (fire,) = next_fire_times(digest_trigger(config.watchlists[0], config),
                              now=datetime(2026, 6, 1, 0, tzinfo=UTC), count=1)
    assert fire == datetime(2026, 6, 1, 22, 30, tzinfo=UTC)  # 07:30 JST on 2 June


def test_weekday_cron_skips_the_weekend(tmp_path: Path) -> None:
    config = write_config(tmp_path, schedule="0 8 * * 1-5")
    fires = next_fire_times(digest_trigger(config.watchlists[0], config),
                            now=datetime(2026, 6, 5, 12, tzinfo=UTC), count=2)  # a Friday
    assert [f.astimezone(LONDON).strftime("%a %H:%M") for f in fires] == ["Mon 08:00", "Tue 08:00"]


def test_latest_fire_time_finds_the_slot_that_just_passed() -> None:
    trigger = ZonedCronTrigger("30 7 * * *", LONDON)
    now = datetime(2026, 10, 26, 9, 0, tzinfo=UTC)
    assert latest_fire_time(trigger, now=now) == datetime(2026, 10, 26, 7, 30, tzinfo=UTC)
    assert latest_fire_time(trigger, now=now, after=datetime(2026, 10, 26, 7, 30, tzinfo=UTC)
                            ) is None
    monthly = ZonedCronTrigger("0 8 1 * *", LONDON)
    assert latest_fire_time(monthly, now=now) == datetime(2026, 10, 1, 7, 0, tzinfo=UTC)


# --- polls ------------------------------------------------------------------------------------

def test_backoff_doubles_per_failure_up_to_the_cap() -> None:
    waits = [backoff_delay(10 * MIN, n, cap=timedelta(hours=1)) for n in range(6)]
    assert waits == [10 * MIN, 10 * MIN, 20 * MIN, 40 * MIN, 60 * MIN, 60 * MIN]
    # A cap below the feed's own interval never makes a failing feed poll faster than normal.
    assert backoff_delay(3 * 60 * MIN, 4, cap=timedelta(hours=1)) == timedelta(hours=3)
    assert backoff_delay(MIN, 10_000, cap=timedelta(hours=6)) == timedelta(hours=6)


def test_hints_only_slow_polling_down_within_bounds() -> None:
    policy = PollPolicy(min_interval=2 * MIN, max_interval=timedelta(hours=2), jitter=0.0)
    plan = lambda hints, errors=0, interval=10 * MIN: plan_poll_delay(  # noqa: E731
        interval, error_count=errors, hints=hints, policy=policy)
    assert plan(FeedHints()) == 10 * MIN
    assert plan(FeedHints(max_age=1800)) == 30 * MIN
    assert plan(FeedHints(max_age=60)) == 10 * MIN  # cannot make us poll faster
    assert plan(FeedHints(ttl_minutes=45)) == 45 * MIN
    assert plan(FeedHints(ttl_minutes=24 * 60)) == timedelta(hours=2)  # operator's max
    assert plan(FeedHints(), interval=MIN // 2) == 2 * MIN  # operator's min
    # Retry-After counts on failure (above the backoff) and is clamped to the max too.
    assert plan(FeedHints(retry_after=1500), errors=1) == 25 * MIN
    assert plan(FeedHints(retry_after=60), errors=2) == 20 * MIN
    assert plan(FeedHints(retry_after=86400), errors=1) == timedelta(hours=2)
    # Cache hints describe a good answer; a failing feed follows its backoff.
    assert plan(FeedHints(max_age=7000), errors=1) == 10 * MIN


def test_jitter_stays_within_its_fraction_and_the_bounds() -> None:
    policy = PollPolicy(min_interval=9 * MIN, jitter=0.2)
    low = plan_poll_delay(10 * MIN, error_count=0, hints=FeedHints(), policy=policy, jitter=-1.0)
    high = plan_poll_delay(10 * MIN, error_count=0, hints=FeedHints(), policy=policy, jitter=1.0)
    assert (low, high) == (9 * MIN, 12 * MIN)  # 8 min would be below the minimum


@pytest.mark.parametrize(("header", "seconds"), [
    ("public, max-age=600", 600.0), ("max-age=600, s-maxage=30", 30.0),
    ('max-age="120"', 120.0), ("no-cache", None), (None, None), ("max-age=abc", None)])
def test_parse_max_age(header: str | None, seconds: float | None) -> None:
    assert parse_max_age(header) == seconds


def test_first_poll_resumes_the_stored_cadence() -> None:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    policy = PollPolicy(jitter=0.1)
    stored = now + 7 * MIN
    resumed = first_poll_time(state(last_polled=now - 3 * MIN, next_poll=stored), 10 * MIN,
                              slot=0, slots=1, policy=policy, now=now)
    assert resumed == stored
    # Without a stored time, the wait runs from the last poll (here: already due).
    due = first_poll_time(state(last_polled=now - 30 * MIN), 10 * MIN, slot=0, slots=1,
                          policy=policy, now=now)
    assert due == now
    # A failing feed keeps backing off after a restart.
    backing = first_poll_time(state(last_polled=now - MIN, error_count=3), 10 * MIN, slot=0,
                              slots=1, policy=policy, now=now)
    assert backing == now + 39 * MIN
    # A stored time far beyond what the (new, shorter) interval allows is pulled in.
    pulled = first_poll_time(state(last_polled=now, next_poll=now + timedelta(hours=5)),
                             10 * MIN, slot=0, slots=1, policy=policy, now=now)
    assert pulled == now + 11 * MIN


def test_feeds_never_polled_are_spread_over_the_start_window() -> None:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    policy = PollPolicy(start_spread=timedelta(seconds=40))
    times = [first_poll_time(None, 30 * MIN, slot=i, slots=4, policy=policy, now=now)
             for i in range(4)]
    assert [(t - now).total_seconds() for t in times] == [0, 10, 20, 30]


def test_failing_feed_is_reported_after_a_day_and_then_daily() -> None:
    since = datetime(2026, 5, 1, 12, tzinfo=UTC)
    policy = PollPolicy()
    failing = state(error_count=9, failing_since=since)
    assert not failing_too_long(failing, reported=None, policy=policy, now=since + 23 * 60 * MIN)
    day = since + timedelta(days=1, minutes=1)
    assert failing_too_long(failing, reported=None, policy=policy, now=day)
    assert not failing_too_long(failing, reported=day, policy=policy, now=day + 60 * MIN)
    assert failing_too_long(failing, reported=day, policy=policy, now=day + timedelta(days=1))
    assert not failing_too_long(state(), reported=None, policy=policy, now=day)


# --- config files and `digestbot schedule` ----------------------------------------------------

def test_fingerprint_changes_when_a_watchlist_is_edited_or_added(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    before = config_fingerprint(config.path, config.watchlists_dir)
    assert config_fingerprint(config.path, config.watchlists_dir) == before
    wl = tmp_path / "watchlists" / "desk.yaml"
    stamp = wl.stat().st_mtime_ns + 2_000_000_000
    os.utime(wl, ns=(stamp, stamp))
    edited = config_fingerprint(config.path, config.watchlists_dir)
    assert edited != before
    (tmp_path / "watchlists" / "more.yaml").write_text("x: 1\n", encoding="utf-8")
    assert config_fingerprint(config.path, config.watchlists_dir) != edited


def test_describe_schedule_shows_next_digest_and_polls(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    now = datetime(2026, 10, 24, 12, tzinfo=UTC)
    failing = state(url="https://news.example.org/b.rss", last_polled=now - MIN, error_count=2,
                    next_poll=now + 9 * MIN)
    text = describe_schedule(config, now=now, feed_states=[failing])
    assert "desk: schedule '07:30' in Europe/London -> next 2026-10-25 07:30 UTC (Sun 07:30 GMT)" \
        in text
    assert "Alpha: every 20 min -> next 2026-10-24 12:00:00 UTC" in text
    assert "news.example.org: every 5 min -> next 2026-10-24 12:09:00 UTC, failing x2" in text
