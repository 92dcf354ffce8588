"""Operator view of the state: feed health and what the store holds."""

from __future__ import annotations

from datetime import datetime

from digestbot.config import Config
from digestbot.store import Store


def format_status(config: Config, store: Store, *, now: datetime) -> str:
    """Take config and store; return a table of feed health and store counts."""
    states = {s.url: s for s in store.feeds.states()}
    lines = ["feeds:"]
    for feed in config.feeds:
        state = states.get(feed.url)
        name = feed.name or feed.url
        if state is None or state.last_polled is None:
            lines.append(f"  never polled  {name}")
        elif state.error_count:
            since = (state.failing_since.isoformat(timespec="minutes")
                     if state.failing_since else "?")
            lines.append(f"  FAILING x{state.error_count} since {since}  {name}: "
                         f"{state.last_error}")
        else:
            ago = _ago(now, state.last_success or state.last_polled)
            lines.append(f"  ok ({ago} ago)  {name}")
        if state is not None and state.next_poll is not None:
            lines[-1] += f"  (next poll in {_ago(state.next_poll, now)})"
    lines.append("store: " + ", ".join(f"{k}={v}" for k, v in store.stats().items()))
    return "\n".join(lines)


def _ago(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"
