"""Alerts: a new story matching an `alert: true` topic is sent at once (I/O edge).

One alert per story per watchlist (store.outbox.record_alert), at most `alert_limit` per
watchlist per hour; stories beyond the limit are folded into one summary message. Alerts go
through the same outbox as digests (key `alert:<watchlist>:<story id>`), so they are
exactly-once too. Articles that later join an alerted story are posted as one reply per poll
in the alert's Slack thread (key `alert:<watchlist>:<story id>:more:<hash of their urls>`).
Like alerts, replies are decided by the poll that places the articles in their story (a poll
that dies before then leaves them to the next one); a story whose alert did not reach Slack
gets none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from slack_sdk import WebClient

from digestbot.config import Config, EmailConfig, SlackConfig, SlackDestination, Watchlist
from digestbot.deliver import Outgoing, Senders, deliver_outgoing
from digestbot.digest import DigestInput, build_digest
from digestbot.errors import DigestbotError
from digestbot.match import Document, match_document, tokenize_document
from digestbot.records import (
    Article,
    Digest,
    DigestArticle,
    DigestStory,
    DigestTopic,
    Match,
    Receipt,
)
from digestbot.render import digest_from_dict
from digestbot.send_email import DEFAULT_DELAYS
from digestbot.store import Store

ALERT_WINDOW = timedelta(hours=1)
UPDATE_WINDOW = timedelta(days=2)  # an alert's thread gets new reports for this long

AlertItem = tuple[Watchlist, str, DigestStory]  # (watchlist, topic name, story)


def alert_stories(items: Sequence[AlertItem], *, store: Store, slack: SlackConfig | None,
                  email: EmailConfig | None, templates_dir: Path | None,
                  now: Callable[[], datetime], console_stream: TextIO | None = None,
                  slack_client_factory: Callable[[SlackConfig], WebClient] | None = None,
                  retry_delays: Sequence[float] = DEFAULT_DELAYS) -> list[Receipt]:
    """Send alerts for new stories of alert topics; returns the Receipts of what was sent."""
    senders = Senders(slack, email, templates_dir, now, console_stream, slack_client_factory,
                      retry_delays)
    receipts: list[Receipt] = []
    for watchlist, found in group_by_watchlist(items):
        receipts.extend(alert_watchlist(watchlist, found, store=store, senders=senders))
    return receipts


def group_by_watchlist(items: Iterable[AlertItem]) -> list[tuple[Watchlist, list[AlertItem]]]:
    """Group alert items by watchlist name, keeping first-seen order."""
    groups: dict[str, tuple[Watchlist, list[AlertItem]]] = {}
    for item in items:
        groups.setdefault(item[0].name, (item[0], []))[1].append(item)
    return list(groups.values())


def alert_watchlist(watchlist: Watchlist, items: Sequence[AlertItem], *, store: Store,
                    senders: Senders) -> list[Receipt]:
    """Alert one watchlist's new stories: the first up to the hourly limit each on its own,
    the rest in one summary; returns the Receipts."""
    at = senders.now()
    alert_topics = {t.name for t in watchlist.topics if t.alert}
    fresh = [(topic, story) for _, topic, story in items
             if topic in alert_topics
             and store.outbox.record_alert(watchlist.name, story.id, now=at)]
    if not fresh:
        return []
    earlier = store.outbox.count_alerts(watchlist.name, at - ALERT_WINDOW) - len(fresh)
    room = max(0, watchlist.alert_limit - earlier)
    destinations = watchlist.alert_destinations
    zone = watchlist.timezone or "UTC"
    receipts: list[Receipt] = []
    for topic, story in fresh[:room]:
        digest = alert_digest(watchlist.name, [(topic, story)], at=at, timezone=zone)
        item = Outgoing(f"alert:{watchlist.name}:{story.id}", "alert", digest)
        receipts.extend(deliver_outgoing(item, destinations, store=store, senders=senders))
    folded = fresh[room:]
    if folded:
        ids = ",".join(str(story.id) for _, story in folded)
        digest = alert_digest(watchlist.name, folded, at=at, timezone=zone)
        key = (f"alert:{watchlist.name}:summary:"
               f"{hashlib.sha256(ids.encode()).hexdigest()[:16]}")
        receipts.extend(deliver_outgoing(Outgoing(key, "alert_summary", digest), destinations,
                                         store=store, senders=senders))
    return receipts


def alert_digest(watchlist: str, stories: Sequence[tuple[str, DigestStory]], *, at: datetime,
                 timezone: str) -> Digest:
    """Wrap alerted stories in a Digest (topics in first-seen order) for the templates."""
    topics: dict[str, list[DigestStory]] = {}
    for topic, story in stories:
        topics.setdefault(topic, []).append(story)
    since = min([story.first_seen for _, story in stories] + [at])
    return Digest(watchlist=watchlist, since=since, until=at, generated_at=at,
                  topics=tuple(DigestTopic(name, tuple(s)) for name, s in topics.items()),
                  timezone=timezone, max_quotes=1)


def find_alert_items(config: Config, store: Store, story_ids: Iterable[int], *,
                     now: datetime) -> list[AlertItem]:
    """Match the stories' articles against every alert topic; returns what to alert."""
    ids = sorted(set(story_ids))
    alerting = [(wl, topics) for wl in config.watchlists
                if (topics := [t for t in wl.topics if t.alert])]
    if not ids or not alerting:  # a first poll's thousands of stories are not read back for none
        return []
    by_story = store.story_articles(ids)
    first_seen = store.story_first_seen(ids)
    docs: dict[str, Document] = {}  # tokenized once, and only where an alert topic looks
    latest = max([a.when for arts in by_story.values() for a in arts] + [now])
    items: list[AlertItem] = []
    for wl, topics in alerting:
        rows: list[tuple[Article, Match, int | None]] = []
        for sid in ids:
            for article in by_story.get(sid, []):
                if wl.feeds and article.feed_url not in wl.feeds:
                    continue
                doc = docs.get(article.url)
                if doc is None:
                    doc = docs[article.url] = tokenize_document(article.title, article.text)
                for topic in topics:
                    terms = match_document(topic.parsed, doc)
                    if terms is not None:
                        rows.append((article, Match(article.url, wl.name, topic.name, terms), sid))
        if not rows:
            continue
        digest = build_digest(
            wl.name, [t.name for t in topics],
            DigestInput(rows=rows, story_articles=by_story, story_first_seen=first_seen),
            since=min(first_seen.values(), default=now), until=latest + timedelta(seconds=1),
            now=now, max_stories=len(ids), max_quotes=1,
            summary_sentences=wl.digest.summary_sentences,
            timezone=wl.timezone or config.timezone)
        items.extend((wl, topic.name, story) for topic in digest.topics for story in topic.stories)
    return items


def send_alerts_for_stories(config: Config, store: Store, story_ids: Iterable[int], *,
                            now: Callable[[], datetime], console_stream: TextIO | None = None,
                            slack_client_factory: Callable[[SlackConfig], WebClient] | None = None,
                            retry_delays: Sequence[float] = DEFAULT_DELAYS) -> list[Receipt]:
    """Alert the new stories of a poll to every watchlist with a matching alert topic."""
    items = find_alert_items(config, store, story_ids, now=now())
    return alert_stories(items, store=store, slack=config.slack, email=config.email,
                         templates_dir=config.templates_dir, now=now,
                         console_stream=console_stream,
                         slack_client_factory=slack_client_factory, retry_delays=retry_delays)


def send_alert_updates(config: Config, store: Store, joined: Iterable[tuple[int, str]], *,
                       now: Callable[[], datetime],
                       slack_client_factory: Callable[[SlackConfig], WebClient] | None = None,
                       retry_delays: Sequence[float] = DEFAULT_DELAYS) -> list[Receipt]:
    """Take (story id, article url) for articles that joined older stories; post them in the
    Slack threads of those stories' alerts (one reply per story and poll); return Receipts."""
    new_urls: dict[int, list[str]] = {}
    for story_id, url in joined:
        new_urls.setdefault(story_id, []).append(url)
    if not new_urls or config.slack is None or config.slack.token is None:
        return []  # threads need the Web API; a webhook cannot post in one
    senders = Senders(config.slack, config.email, config.templates_dir, now,
                      slack_client_factory=slack_client_factory, retry_delays=retry_delays)
    at = now()
    receipts: list[Receipt] = []
    for wl in config.watchlists:
        channels = {d.label: d for d in wl.alert_destinations if isinstance(d, SlackDestination)}
        if not channels or not any(t.alert for t in wl.topics):
            continue
        for story_id in sorted(store.outbox.alerted_stories(wl.name, new_urls,
                                                            since=at - UPDATE_WINDOW)):
            key = f"alert:{wl.name}:{story_id}"
            threads = {d.destination: d.remote_ref for d in store.outbox.deliveries(key)
                       if d.status == "sent" and d.remote_ref and d.destination in channels}
            alert = _read_alert(store, key)
            if not threads or alert is None:
                continue
            # An article that joined while the alert waited to be sent is in the alert already.
            shown = {a.url for a in alert.topics[0].stories[0].articles}
            articles = [a for a in store.articles_by_url(new_urls[story_id])
                        if wl.includes_feed(a.feed_url) and a.url not in shown]
            if not articles:
                continue
            update = alert_update(alert, articles, at=at)
            urls = "\n".join(sorted(a.url for a in articles))
            item = Outgoing(f"{key}:more:{hashlib.sha256(urls.encode()).hexdigest()[:16]}",
                            "alert_update", update, threads)
            receipts.extend(deliver_outgoing(item, [channels[label] for label in threads],
                                             store=store, senders=senders))
    return receipts


def _read_alert(store: Store, key: str) -> Digest | None:
    """Take an alert's outbox key; return the alert as sent, or None if it is not readable."""
    row = store.outbox.get_digest(key)
    try:
        alert = None if row is None else digest_from_dict(json.loads(row.payload))
    except (DigestbotError, ValueError):
        return None
    return alert if alert is not None and alert.topics and alert.topics[0].stories else None


def alert_update(alert: Digest, articles: Sequence[Article], *, at: datetime) -> Digest:
    """Take a sent alert and articles that joined its story since; return the update: the
    alert's story and topic with those articles only."""
    topic = alert.topics[0]
    story = replace(topic.stories[0], quotes=(), articles=tuple(
        DigestArticle(title=a.title, url=a.url, source=a.source, published=a.published)
        for a in articles))
    return replace(alert, since=min(a.first_seen for a in articles), until=at, generated_at=at,
                   topics=(DigestTopic(topic.name, (story,)),))
