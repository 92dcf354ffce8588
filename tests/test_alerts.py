"""Alerts: one per story per watchlist, the hourly limit folds the rest, exactly once."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fake_slack import FakeSlackServer
from pydantic import SecretStr
from test_render import make_story

from digestbot.alerts import alert_stories, send_alert_updates, send_alerts_for_stories
from digestbot.config import (
    ConsoleDestination,
    FileDestination,
    SlackConfig,
    SlackDestination,
    Topic,
    Watchlist,
    load_config,
)
from digestbot.deliver import resume_deliveries
from digestbot.records import Article, DigestStory
from digestbot.store import Store

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the I/O edge."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def watchlist(*, limit: int = 5, alert_deliver: tuple[Any, ...] | None = None) -> Watchlist:
    return Watchlist(name="castrena-desk", file=Path("castrena-desk.yaml"),
                     deliver=(SlackDestination(channel="#desk"),), alert_deliver=alert_deliver,
                     alert_limit=limit, timezone="Europe/London",
                     topics=(Topic(name="Border", query="border", alert=True),
                             Topic(name="Ports", query="port")))


def stories(store: Store, n: int, start: int = 1) -> list[DigestStory]:
    """Create n stories in the store (alerts refer to them) and return them as a digest shows."""
    made = []
    for i in range(start, start + n):
        url = f"https://velmora.example.org/checkpoint/{i}"
        store.add_article(Article(url=url, link=url, guid=None,
                                  feed_url="https://velmora.example.org/feed.rss",
                                  source="Velmora Post", title=f"Checkpoint {i}",
                                  text="Guards stopped traffic at the border.", published=None,
                                  first_seen=NOW))
        sid = store.create_story(url, now=NOW)
        made.append(make_story(sid, f"Velmora checkpoint incident number {i}", quotes=2))
    return made


def run(items: list[Any], store: Store, srv: FakeSlackServer, clock: Clock,
        stream: io.StringIO | None = None) -> list[Any]:
    return alert_stories(items, store=store,
                         slack=SlackConfig(token=SecretStr("xoxb-test-token"),
                                                     base_url=srv.fake.base_url),
                         email=None, templates_dir=None, now=clock, console_stream=stream,
                         retry_delays=(0.01,))


def texts(srv: FakeSlackServer) -> list[str]:
    return ["\n".join(b["text"]["text"] for b in m["blocks"] if b["type"] == "section")
            for m in srv.fake.all_messages()]


def test_alert_shows_headline_sources_and_best_quote_once(slack: FakeSlackServer,
                                                          store: Store) -> None:
    wl = watchlist()
    [story] = stories(store, 1)
    receipts = run([(wl, "Border", story)], store, slack, Clock(NOW))
    assert [(r.digest_key, r.status) for r in receipts] == [("alert:castrena-desk:1", "sent")]
    [message] = slack.fake.all_messages()
    [body] = texts(slack)
    assert "|Velmora checkpoint incident number 1>*" in body
    assert "— Castrena Herald" in body and "— Velmora Post" in body
    assert "number 1” — *Mira Olenko*" in body
    assert "Tomas Verhaal" not in body  # only the best quote
    assert message["text"] == "castrena-desk alert: Velmora checkpoint incident number 1"
    assert message["metadata"]["event_payload"]["digest_key"] == "alert:castrena-desk:1"
    # The same story again (next poll, or a second matching topic) gives no second alert.
    assert run([(wl, "Border", story)], store, slack, Clock(NOW + timedelta(minutes=5))) == []
    assert len(slack.fake.all_messages()) == 1


def test_non_alert_topic_sends_nothing(slack: FakeSlackServer, store: Store) -> None:
    assert run([(watchlist(), "Ports", stories(store, 1)[0])], store, slack, Clock(NOW)) == []
    assert slack.fake.all_messages() == []


def test_limit_folds_the_rest_into_one_summary(slack: FakeSlackServer, store: Store) -> None:
    wl = watchlist(limit=2)
    batch = stories(store, 5)
    receipts = run([(wl, "Border", s) for s in batch], store, slack, Clock(NOW))
    assert [r.status for r in receipts] == ["sent"] * 3
    bodies = texts(slack)
    assert len(bodies) == 3
    summary = bodies[2]
    assert summary.startswith(":bell: *3 more alerts* for castrena-desk:")
    for s in batch[2:]:
        assert f"|{s.headline}> (Border)" in summary
    assert slack.fake.all_messages()[2]["text"] == (
        "castrena-desk: 3 more alerts: Velmora checkpoint incident number 3; "
        "Velmora checkpoint incident number 4; Velmora checkpoint incident number 5")
    # Still within the hour: the limit is used up, so a new story is folded too.
    later = stories(store, 1, start=6)[0]
    run([(wl, "Border", later)], store, slack, Clock(NOW + timedelta(minutes=30)))
    assert texts(slack)[3].startswith(":bell: *1 more alert* for castrena-desk:")
    # An hour later alerts are single again.
    hour_later = stories(store, 1, start=7)[0]
    run([(wl, "Border", hour_later)], store, slack, Clock(NOW + timedelta(minutes=61)))
    assert texts(slack)[4].startswith(":rotating_light: *<")


def test_alert_deliver_overrides_deliver_and_console_gets_text(slack: FakeSlackServer,
                                                               store: Store) -> None:
    wl = watchlist(alert_deliver=(ConsoleDestination(),))
    stream = io.StringIO()
    [receipt] = run([(wl, "Border", stories(store, 1)[0])], store, slack, Clock(NOW), stream)
    assert receipt.destination == "console"
    assert slack.fake.all_messages() == []
    out = stream.getvalue()
    assert out.startswith("ALERT · castrena-desk · Border\n")
    assert "Velmora checkpoint incident number 1" in out and "Sources:" in out


def test_alerts_do_not_move_the_digest_period(slack: FakeSlackServer, store: Store) -> None:
    run([(watchlist(), "Border", stories(store, 1)[0])], store, slack, Clock(NOW))
    assert store.outbox.last_digest_until("castrena-desk") is None
    row = store.outbox.get_digest("alert:castrena-desk:1")
    assert row is not None and json.loads(row.payload)["kind"] == "alert"


def test_pending_alert_is_resumed_as_an_alert(tmp_path: Path, sqlite_url: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the alerts folder should be")
    wl = watchlist(alert_deliver=(FileDestination(path=blocker / "alerts"),))
    with Store.open(sqlite_url) as st:
        [receipt] = alert_stories([(wl, "Border", stories(st, 1)[0])], store=st, slack=None,
                                  email=None, templates_dir=None, now=Clock(NOW),
                                  retry_delays=(0.01,))
        assert receipt.status == "failed" and receipt.detail.startswith("will retry")
    blocker.unlink()
    with Store.open(sqlite_url) as st:
        [resumed] = resume_deliveries(st, slack=None, email=None, templates_dir=None,
                                      now=Clock(NOW), watchlists=[wl])
        assert resumed.status == "sent"
    html = (blocker / "alerts" / "castrena-desk-alert-1.html").read_text(encoding="utf-8")
    assert ">Alert<" in html and "Velmora checkpoint incident number 1" in html


def test_send_alerts_for_stories_from_the_store(tmp_path: Path, store: Store,
                                                slack: FakeSlackServer) -> None:
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "digestbot.yaml").write_text(f"""
timezone: Europe/London
database: sqlite:///unused.db
feeds:
  - url: https://castrena.example.org/feed.rss
    name: Castrena Herald
slack:
  token: xoxb-test-token
  base_url: {slack.fake.base_url}
watchlists_dir: watchlists
""")
    (tmp_path / "watchlists" / "castrena-desk.yaml").write_text("""
name: castrena-desk
deliver:
  - slack: {channel: "#desk"}
topics:
  - name: Border
    query: 'border AND Velmora'
    alert: true
  - name: Weather
    query: 'storm'
""")
    config = load_config(tmp_path / "digestbot.yaml")

    def article(n: int, title: str, text: str) -> Article:
        return Article(url=f"https://castrena.example.org/{n}", link=f"https://castrena.example.org/{n}",
                       guid=None, feed_url="https://castrena.example.org/feed.rss",
                       source="Castrena Herald", title=title, text=text,
                       published=NOW - timedelta(minutes=10), first_seen=NOW)

    border = article(1, "Velmora border post closes overnight",
                     'Guards closed the Velmora border post at midnight. "We had no choice," '
                     "said captain Ilse Brandvik of the fictional border service.")
    storm = article(2, "Storm warning for the Castrena coast", "A storm is expected on Sunday.")
    ids = []
    for a in (border, storm):
        assert store.add_article(a)
        ids.append(store.create_story(a.url, now=NOW))
    receipts = send_alerts_for_stories(config, store, ids, now=Clock(NOW))
    assert [r.digest_key for r in receipts] == [f"alert:castrena-desk:{ids[0]}"]
    [body] = texts(slack)
    assert "Velmora border post closes overnight" in body
    assert "Storm" not in body
    # The pipeline calling again with the same new stories sends nothing more.
    assert send_alerts_for_stories(config, store, ids, now=Clock(NOW)) == []
    assert len(slack.fake.all_messages()) == 1


def test_no_alert_topic_means_the_new_stories_are_not_read_back(tmp_path: Path) -> None:
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "digestbot.yaml").write_text("""
timezone: Europe/London
database: sqlite:///unused.db
feeds:
  - url: https://castrena.example.org/feed.rss
watchlists_dir: watchlists
""")
    (tmp_path / "watchlists" / "desk.yaml").write_text("""
name: desk
deliver:
  - console: {}
topics:
  - name: Weather
    query: 'storm'
""")
    config = load_config(tmp_path / "digestbot.yaml")
    closed = Store.open(f"sqlite:///{tmp_path / 'closed.db'}")
    closed.close()  # any read of the stories would fail
    assert send_alerts_for_stories(config, closed, [1, 2, 3], now=Clock(NOW)) == []


def update_config(tmp_path: Path, slack: FakeSlackServer) -> Any:
    """The config of watchlist(): castrena-desk alerting Border stories to Slack #desk."""
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "digestbot.yaml").write_text(f"""
timezone: Europe/London
database: sqlite:///unused.db
feeds:
  - url: https://velmora.example.org/feed.rss
  - url: https://castrena.example.org/feed.rss
slack:
  token: xoxb-test-token
  base_url: {slack.fake.base_url}
email:
  host: 127.0.0.1
  sender: Digest Bot <digest@example.org>
watchlists_dir: watchlists
""")
    (tmp_path / "watchlists" / "castrena-desk.yaml").write_text("""
deliver:
  - slack: {channel: "#desk"}
  - email: {to: [desk@example.org]}
topics:
  - name: Border
    query: border
    alert: true
""")
    return load_config(tmp_path / "digestbot.yaml")


def join_story(store: Store, story_id: int, n: int, title: str) -> tuple[int, str]:
    """Store a later report and put it in the story; return (story id, its url)."""
    url = f"https://castrena.example.org/report/{n}"
    store.add_article(Article(url=url, link=url, guid=None,
                              feed_url="https://castrena.example.org/feed.rss",
                              source="Castrena Herald", title=title,
                              text="More guards were sent to the border.", published=NOW,
                              first_seen=NOW + timedelta(minutes=n)))
    store.assign_story(url, story_id)
    return story_id, url


def test_later_reports_are_posted_once_in_the_alert_thread(
        tmp_path: Path, store: Store, slack: FakeSlackServer) -> None:
    config = update_config(tmp_path, slack)
    [story] = stories(store, 1)
    run([(config.watchlists[0], "Border", story)], store, slack, Clock(NOW))
    [alert] = slack.fake.all_messages()
    joined = [join_story(store, story.id, 1, "Velmora sends <!channel> more guards & dogs")]
    receipts = send_alert_updates(config, store, joined, now=Clock(NOW + timedelta(minutes=20)),
                                  retry_delays=(0.01,))
    # Slack only: a thread reply is no news for an inbox.
    assert [(r.destination, r.status) for r in receipts] == [("slack:#desk", "sent")]
    assert receipts[0].digest_key.startswith(f"alert:castrena-desk:{story.id}:more:")
    [_, reply] = slack.fake.all_messages()
    assert reply["thread_ts"] == alert["ts"]
    [body] = texts(slack)[1:]
    assert body == (":heavy_plus_sign: *1 more report* on this story:\n"
                    "• <https://castrena.example.org/report/1|Velmora sends &lt;!channel&gt; "
                    "more guards &amp; dogs> — Castrena Herald")
    assert reply["text"] == f"castrena-desk: more on {story.headline}"
    # The same articles again (a re-run of the poll's last step) post nothing.
    again = send_alert_updates(config, store, joined, now=Clock(NOW + timedelta(minutes=21)))
    assert [r.status for r in again] == ["skipped"]
    assert len(slack.fake.all_messages()) == 2


def test_a_report_already_in_the_alert_is_not_posted_again_in_its_thread(
        tmp_path: Path, store: Store, slack: FakeSlackServer) -> None:
    config = update_config(tmp_path, slack)
    [story] = stories(store, 1)
    shown = story.articles[1]  # joined while the alert waited for its turn to be sent
    store.add_article(Article(url=shown.url, link=shown.url, guid=None,
                              feed_url="https://castrena.example.org/feed.rss",
                              source=shown.source, title=shown.title, text="At the border.",
                              published=None, first_seen=NOW))
    store.assign_story(shown.url, story.id)
    run([(config.watchlists[0], "Border", story)], store, slack, Clock(NOW))
    assert f"<{shown.url.replace('&', '&amp;')}|" in texts(slack)[0]
    joined = [(story.id, shown.url), join_story(store, story.id, 1, "A new angle")]
    [receipt] = send_alert_updates(config, store, joined, now=Clock(NOW + timedelta(minutes=5)))
    assert receipt.status == "sent"
    reply = texts(slack)[1]
    assert reply.startswith(":heavy_plus_sign: *1 more report* on this story:")
    assert "A new angle" in reply and shown.title not in reply
    # Nothing new beyond what the alert showed: no reply at all.
    assert send_alert_updates(config, store, joined[:1], now=Clock(NOW)) == []


def test_no_thread_reply_for_unalerted_or_old_alerts(tmp_path: Path, store: Store,
                                                     slack: FakeSlackServer) -> None:
    config = update_config(tmp_path, slack)
    alerted, quiet = stories(store, 2)
    run([(config.watchlists[0], "Border", alerted)], store, slack, Clock(NOW))
    assert send_alert_updates(config, store, [join_story(store, quiet.id, 1, "Quiet one")],
                              now=Clock(NOW + timedelta(hours=1))) == []
    late = join_story(store, alerted.id, 2, "Three days on")
    assert send_alert_updates(config, store, [late], now=Clock(NOW + timedelta(days=3))) == []
    assert len(slack.fake.all_messages()) == 1


def test_thread_reply_left_sending_by_a_crash_is_found_not_posted_again(
        tmp_path: Path, store: Store, slack: FakeSlackServer) -> None:
    config = update_config(tmp_path, slack)
    slack.fake.replies_page = 2  # the thread comes back oldest first, two messages a page
    [story] = stories(store, 1)
    run([(config.watchlists[0], "Border", story)], store, slack, Clock(NOW))
    for n in range(1, 5):
        [receipt] = send_alert_updates(config, store, [join_story(store, story.id, n, f"No. {n}")],
                                       now=Clock(NOW + timedelta(minutes=n)))
    # As if the process died after Slack took the last reply but before the outbox heard of it.
    store.outbox.mark_delivery(receipt.digest_key, "slack:#desk", "sending", now=NOW)
    [resumed] = resume_deliveries(store, slack=config.slack, email=None, templates_dir=None,
                                  now=Clock(NOW), watchlists=config.watchlists)
    assert (resumed.digest_key, resumed.status) == (receipt.digest_key, "sent")
    assert len(slack.fake.all_messages()) == 5  # the alert and four replies, none twice
    assert len(slack.fake.calls("conversations.replies")) == 3  # it read to the last page


def test_no_thread_replies_through_a_webhook(tmp_path: Path, store: Store,
                                             slack: FakeSlackServer) -> None:
    config = update_config(tmp_path, slack)
    [story] = stories(store, 1)
    run([(config.watchlists[0], "Border", story)], store, slack, Clock(NOW))
    hook = config.slack.model_copy(update={"token": None,
                                           "webhook_url": SecretStr(slack.webhook_url)})
    joined = [join_story(store, story.id, 1, "Border post reopens")]
    assert send_alert_updates(config.model_copy(update={"slack": hook}), store, joined,
                              now=Clock(NOW)) == []
    # One left pending while the config still had a token is refused, not posted unthreaded.
    [receipt] = send_alert_updates(config, store, joined, now=Clock(NOW))
    store.outbox.mark_delivery(receipt.digest_key, "slack:#desk", "pending", now=NOW)
    [resumed] = resume_deliveries(store, slack=hook, email=None, templates_dir=None,
                                  now=Clock(NOW), watchlists=config.watchlists)
    assert resumed.status == "failed" and "needs a token" in resumed.detail
    assert len(slack.fake.all_messages()) == 2 and slack.webhook_posts == []
