"""Delivery through the outbox to a fake Slack API, a real SMTP server, console and files."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from fake_slack import FakeSlackServer
from pydantic import SecretStr
from slack_sdk import WebClient
from test_render import evil_digest, sample_digest

from digestbot.config import (
    ConsoleDestination,
    EmailConfig,
    EmailDestination,
    FileDestination,
    SlackConfig,
    SlackDestination,
)
from digestbot.deliver import deliver_digest, resume_deliveries
from digestbot.render import digest_from_dict, make_message_id
from digestbot.send_slack import make_retry_handlers
from digestbot.slack_blocks import MAX_BLOCKS, MAX_HEADER, MAX_SECTION
from digestbot.store import Store

NOW = datetime(2026, 11, 21, 7, 31, tzinfo=UTC)
SENDER = "Digest Bot <digest@example.org>"


def clock() -> datetime:
    return NOW


def slack_config(srv: FakeSlackServer, *, token: str = "xoxb-test-token",
                 ops: str | None = None) -> SlackConfig:
    return SlackConfig(token=SecretStr(token), base_url=srv.fake.base_url, ops_channel=ops)


def quick_client(config: SlackConfig) -> WebClient:
    """A WebClient like the default one but with millisecond backoff for 5xx retries."""
    assert config.token is not None
    return WebClient(token=config.token.get_secret_value(), base_url=config.base_url,
                     retry_handlers=make_retry_handlers(backoff=0.01))


def send(digest: Any, destinations: list[Any], store: Store, *, slack: SlackConfig | None = None,
         email: EmailConfig | None = None, force: bool = False,
         stream: io.StringIO | None = None,
         factory: Callable[[SlackConfig], WebClient] | None = quick_client) -> list[Any]:
    return deliver_digest(digest, destinations, store=store, slack=slack, email=email,
                          templates_dir=None, now=clock, force=force, console_stream=stream,
                          slack_client_factory=factory, retry_delays=(0.01, 0.01))


# ---- Slack ---------------------------------------------------------------------------------

def test_slack_delivery_posts_blocks_with_metadata_and_unfurl_off(
        slack: FakeSlackServer, store: Store) -> None:
    digest = sample_digest(3)
    [receipt] = send(digest, [SlackDestination(channel="#desk")], store, slack=slack_config(slack))
    assert receipt.status == "sent" and receipt.destination == "slack:#desk"
    [call] = slack.fake.calls("chat.postMessage")
    assert call.body["unfurl_links"] is False and call.body["unfurl_media"] is False
    assert call.body["text"] == "castrena-desk digest, 21 Nov 2026: 3 stories"
    assert call.body["blocks"][0]["type"] == "header"
    assert call.body["metadata"] == {"event_type": "digestbot_digest",
                                     "event_payload": {"digest_key": digest.key, "part": 0}}
    assert call.headers["authorization"] == "Bearer xoxb-test-token"
    [state] = store.outbox.deliveries(digest.key)
    assert state.status == "sent" and state.attempts == 1
    assert state.remote_ref == slack.fake.messages["C0DESK"][0]["ts"]
    row = store.outbox.get_digest(digest.key)
    assert row is not None and digest_from_dict(json.loads(row.payload)) == digest


def test_large_digest_arrives_as_thread_within_limits(slack: FakeSlackServer,
                                                      store: Store) -> None:
    digest = sample_digest(60)
    [receipt] = send(digest, [SlackDestination(channel="#desk")], store, slack=slack_config(slack))
    assert receipt.status == "sent"
    calls = slack.fake.calls("chat.postMessage")
    assert len(calls) >= 2
    first_ts = slack.fake.messages["C0DESK"][0]["ts"]
    assert "thread_ts" not in calls[0].body
    assert all(c.body["thread_ts"] == first_ts for c in calls[1:])
    assert [c.body["metadata"]["event_payload"]["part"] for c in calls] == list(range(len(calls)))
    headlines = 0
    for call in calls:
        assert len(call.body["blocks"]) <= MAX_BLOCKS
        for block in call.body["blocks"]:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= MAX_SECTION
                headlines += block["text"]["text"].startswith("*<")
            if block["type"] == "header":
                assert len(block["text"]["text"]) <= MAX_HEADER
    assert headlines == 60


def test_feed_text_arrives_escaped(slack: FakeSlackServer, store: Store) -> None:
    send(evil_digest(), [SlackDestination(channel="#desk")], store, slack=slack_config(slack))
    [call] = slack.fake.calls("chat.postMessage")
    raw = json.dumps(call.body, ensure_ascii=False)
    assert "<!channel>" not in raw and "<http://evil|click>" not in raw and "<@U123>" not in raw
    assert "&lt;!channel&gt; &amp; &lt;http://evil|click&gt; {{ 7*7 }}" in raw


def test_rate_limit_is_retried_after_retry_after(slack: FakeSlackServer, store: Store) -> None:
    slack.fake.fail_next(1, status=429, retry_after=1)
    [receipt] = send(sample_digest(), [SlackDestination(channel="#desk")], store,
                     slack=slack_config(slack), factory=None)  # the default client
    assert receipt.status == "sent"
    calls = slack.fake.calls("chat.postMessage")
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 0.95
    assert len(slack.fake.all_messages()) == 1


def test_server_error_is_retried(slack: FakeSlackServer, store: Store) -> None:
    slack.fake.fail_next(1, status=500)
    [receipt] = send(sample_digest(), [SlackDestination(channel="#desk")], store,
                     slack=slack_config(slack))
    assert receipt.status == "sent"
    assert len(slack.fake.calls("chat.postMessage")) == 2


def test_invalid_auth_is_reported_once_and_not_retried(slack: FakeSlackServer,
                                                       store: Store) -> None:
    config = slack_config(slack, token="xoxb-revoked")
    digest = sample_digest()
    [receipt] = send(digest, [SlackDestination(channel="#desk")], store, slack=config)
    assert receipt.status == "failed" and receipt.detail == "slack: invalid_auth"
    assert len(slack.fake.calls("chat.postMessage")) == 1
    [state] = store.outbox.deliveries(digest.key)
    assert state.status == "failed" and state.detail == "slack: invalid_auth"
    [again] = send(digest, [SlackDestination(channel="#desk")], store, slack=config)
    assert again.status == "skipped" and "invalid_auth" in again.detail
    assert len(slack.fake.calls("chat.postMessage")) == 1
    assert resume_deliveries(store, slack=config, email=None, templates_dir=None,
                             now=clock) == []


def test_unknown_channel_fails_others_still_sent_and_ops_told(slack: FakeSlackServer,
                                                              store: Store) -> None:
    stream = io.StringIO()
    digest = sample_digest()
    receipts = send(digest, [SlackDestination(channel="#nowhere"), ConsoleDestination(),
                             SlackDestination(channel="#desk")],
                    store, slack=slack_config(slack, ops="#ops"), stream=stream)
    assert [(r.destination, r.status) for r in receipts] == [
        ("slack:#nowhere", "failed"), ("console", "sent"), ("slack:#desk", "sent")]
    assert receipts[0].detail == "slack: channel_not_found"
    assert "castrena-desk digest" in stream.getvalue()
    [notice] = slack.fake.messages["C0OPS"]
    assert "slack:#nowhere failed: slack: channel_not_found" in notice["text"]


def test_transient_failure_stays_pending_and_resume_finishes_it(slack: FakeSlackServer,
                                                                store: Store) -> None:
    digest = sample_digest()
    config = slack_config(slack)
    slack.fake.fail_next(3, status=500)  # the first try and both retries
    [receipt] = send(digest, [SlackDestination(channel="#desk")], store, slack=config)
    assert receipt.status == "failed" and receipt.detail.startswith("will retry: slack:")
    [state] = store.outbox.deliveries(digest.key)
    assert state.status == "pending"
    [resumed] = resume_deliveries(store, slack=config, email=None, templates_dir=None,
                                  now=clock, slack_client_factory=quick_client)
    assert resumed.status == "sent"
    assert len(slack.fake.messages_with_key(digest.key)) == 1


class SimulatedCrash(BaseException):
    """Stands for the process dying between a post and recording its result."""


def crashing_factory(posts_before_crash: int) -> Callable[[SlackConfig], WebClient]:
    """Return a client factory whose client dies right after its N-th successful post."""
    class CrashingClient(WebClient):
        posted = 0

        def chat_postMessage(self, **kwargs: Any) -> Any:
            response = super().chat_postMessage(**kwargs)
            CrashingClient.posted += 1
            if CrashingClient.posted >= posts_before_crash:
                raise SimulatedCrash
            return response

    def factory(config: SlackConfig) -> WebClient:
        assert config.token is not None
        return CrashingClient(token=config.token.get_secret_value(), base_url=config.base_url)
    return factory


@pytest.mark.parametrize(("stories", "posts_before_crash"), [(3, 1), (60, 2)])
def test_crash_after_post_does_not_duplicate_on_restart(
        slack: FakeSlackServer, sqlite_url: str, stories: int, posts_before_crash: int) -> None:
    digest = sample_digest(stories)
    config = slack_config(slack)
    with Store.open(sqlite_url) as first, pytest.raises(SimulatedCrash):
        send(digest, [SlackDestination(channel="#desk")], first, slack=config,
             factory=crashing_factory(posts_before_crash))
    parts_total = len(slack.fake.calls("chat.postMessage")) if stories == 3 else None
    with Store.open(sqlite_url) as second:
        [state] = second.outbox.unfinished_deliveries()
        assert state.status == "sending"
        [receipt] = resume_deliveries(second, slack=config, email=None, templates_dir=None,
                                      now=clock)
        assert receipt.status == "sent"
        assert second.outbox.unfinished_deliveries() == []
    posted = slack.fake.messages_with_key(digest.key)
    parts = [m["metadata"]["event_payload"]["part"] for m in posted]
    assert sorted(parts) == list(range(len(parts)))  # every part exactly once
    if parts_total is not None:
        assert len(posted) == parts_total == 1
    else:
        assert len(parts) > posts_before_crash
        first_ts = next(m["ts"] for m in posted if m["metadata"]["event_payload"]["part"] == 0)
        assert all(m["thread_ts"] == first_ts for m in posted if m["ts"] != first_ts)
    assert slack.fake.calls("conversations.history")


def test_already_sent_is_skipped_and_force_sends_again(slack: FakeSlackServer,
                                                       store: Store) -> None:
    digest = sample_digest()
    dest = [SlackDestination(channel="#desk")]
    config = slack_config(slack)
    assert send(digest, dest, store, slack=config)[0].status == "sent"
    skipped = send(digest, dest, store, slack=config)[0]
    assert (skipped.status, skipped.detail) == ("skipped", "already sent")
    assert len(slack.fake.messages_with_key(digest.key)) == 1
    assert send(digest, dest, store, slack=config, force=True)[0].status == "sent"
    assert len(slack.fake.messages_with_key(digest.key)) == 2
    assert store.outbox.deliveries(digest.key)[0].attempts == 2


def test_webhook_delivery(slack: FakeSlackServer, store: Store) -> None:
    config = SlackConfig(webhook_url=SecretStr(slack.webhook_url))
    [receipt] = send(sample_digest(), [SlackDestination(channel="#desk")], store, slack=config,
                     factory=None)
    assert receipt.status == "sent"
    [post] = slack.webhook_posts
    assert post["unfurl_links"] is False and post["blocks"][0]["type"] == "header"


# ---- SMTP ----------------------------------------------------------------------------------

@dataclass
class Mailbox:
    """An aiosmtpd handler that stores envelopes; can refuse addresses or answer 421 first."""

    refuse: tuple[str, ...] = ()
    busy_first: int = 0
    envelopes: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    data_calls: int = 0

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.data_calls += 1
        if self.data_calls <= self.busy_first:
            return "421 4.3.2 busy, try again later"
        content = envelope.original_content or b""
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 OK queued"

    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(c, policy=policy.default)
                for _, _, c in self.envelopes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_factory() -> Iterator[Callable[..., tuple[Mailbox, EmailConfig]]]:
    controllers: list[Controller] = []

    def start(mailbox: Mailbox | None = None, *, password: str | None = None,
              **config: Any) -> tuple[Mailbox, EmailConfig]:
        box = mailbox or Mailbox()
        port = free_port()
        extra: dict[str, Any] = {}
        if password is not None:
            def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                             auth_data: Any) -> AuthResult:
                ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
                return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself
            extra = {"authenticator": authenticate, "auth_require_tls": False}
        controller = Controller(box, hostname="127.0.0.1", port=port, **extra)
        controller.start()
        controllers.append(controller)
        settings: dict[str, Any] = {"host": "127.0.0.1", "port": port, "starttls": False,
                                    "sender": SENDER, "timeout": 5}
        if password is not None:
            settings |= {"username": "digestbot", "password": password}
        return box, EmailConfig(**(settings | config))

    yield start
    for controller in controllers:
        controller.stop()


def test_email_arrives_with_both_parts_and_headers(smtp_factory: Callable[..., Any],
                                                   store: Store) -> None:
    box, config = smtp_factory()
    digest = sample_digest(3)
    dest = EmailDestination(to=("desk@example.org", "Ana Brenn <ana@example.org>"),
                            subject_prefix="[desk]")
    [receipt] = send(digest, [dest], store, email=config)
    assert receipt.status == "sent", receipt.detail
    [(mail_from, rcpts, _)] = box.envelopes
    assert mail_from == "digest@example.org"
    assert rcpts == ["desk@example.org", "ana@example.org"]
    [msg] = box.messages()
    assert msg["Subject"] == ("[desk] castrena-desk digest, 21 Nov 2026: "
                              "Border crossings at Velmora reopen after overnight talks")
    assert msg["Message-ID"] == make_message_id(digest.key, SENDER)
    assert msg["List-Unsubscribe"] == "<mailto:digest@example.org?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] is None
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert "Border crossings at Velmora reopen" in plain.get_content()
    assert "<table" in html.get_content()
    [state] = store.outbox.deliveries(digest.key)
    assert state.status == "sent" and state.remote_ref == msg["Message-ID"]


def test_html_email_escapes_script_from_titles(smtp_factory: Callable[..., Any],
                                               store: Store) -> None:
    box, config = smtp_factory()
    send(evil_digest(), [EmailDestination(to=("desk@example.org",))], store, email=config)
    [msg] = box.messages()
    html = msg.get_body(("html",))
    assert html is not None
    body = html.get_content()
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_email_421_is_retried_with_the_same_message_id(smtp_factory: Callable[..., Any],
                                                       store: Store) -> None:
    box, config = smtp_factory(Mailbox(busy_first=1))
    digest = sample_digest()
    [receipt] = send(digest, [EmailDestination(to=("desk@example.org",))], store, email=config)
    assert receipt.status == "sent"
    assert box.data_calls == 2
    [msg] = box.messages()
    assert msg["Message-ID"] == make_message_id(digest.key, SENDER)


def test_all_recipients_refused_is_permanent(smtp_factory: Callable[..., Any],
                                             store: Store) -> None:
    box, config = smtp_factory(Mailbox(refuse=("gone@example.org",)))
    digest = sample_digest()
    [receipt] = send(digest, [EmailDestination(to=("gone@example.org",))], store, email=config)
    assert receipt.status == "failed"
    assert receipt.detail.startswith("smtp: all recipients refused: gone@example.org (550")
    assert box.envelopes == []
    assert store.outbox.deliveries(digest.key)[0].status == "failed"


def test_one_refused_recipient_still_delivers_to_the_others(smtp_factory: Callable[..., Any],
                                                           store: Store) -> None:
    box, config = smtp_factory(Mailbox(refuse=("gone@example.org",)))
    [receipt] = send(sample_digest(), [EmailDestination(to=("gone@example.org",
                                                            "desk@example.org"))],
                     store, email=config)
    assert receipt.status == "sent"
    assert "refused gone@example.org (550" in receipt.detail
    assert box.envelopes[0][1] == ["desk@example.org"]


def test_smtp_auth(smtp_factory: Callable[..., Any], store: Store) -> None:
    box, good = smtp_factory(password="s3cret")
    assert send(sample_digest(), [EmailDestination(to=("desk@example.org",))], store,
                email=good)[0].status == "sent"
    _, bad = smtp_factory(password="wrong")
    [receipt] = send(sample_digest(watchlist="other-desk"),
                     [EmailDestination(to=("desk@example.org",))], store, email=bad)
    assert receipt.status == "failed"
    assert receipt.detail.startswith("smtp: authentication failed")
    assert "wrong" not in receipt.detail
    assert len(box.envelopes) == 1


def test_starttls_required_but_not_offered_is_permanent(smtp_factory: Callable[..., Any],
                                                        store: Store) -> None:
    box, config = smtp_factory(starttls=True)
    [receipt] = send(sample_digest(), [EmailDestination(to=("desk@example.org",))], store,
                     email=config)
    assert receipt.status == "failed" and "does not offer STARTTLS" in receipt.detail
    assert box.envelopes == []


def test_unreachable_smtp_is_retried_then_left_pending(store: Store) -> None:
    config = EmailConfig(host="127.0.0.1", port=free_port(), starttls=False, sender=SENDER,
                         timeout=2)
    digest = sample_digest()
    started = time.monotonic()
    [receipt] = send(digest, [EmailDestination(to=("desk@example.org",))], store, email=config)
    assert time.monotonic() - started < 5
    assert receipt.status == "failed" and receipt.detail.startswith("will retry: smtp:")
    assert store.outbox.deliveries(digest.key)[0].status == "pending"
    assert [s.destination for s in store.outbox.unfinished_deliveries()] == [
        "email:desk@example.org"]


# ---- console, file, resume -----------------------------------------------------------------

def test_console_and_file_destinations(tmp_path: Path, store: Store) -> None:
    stream = io.StringIO()
    digest = sample_digest()
    out = tmp_path / "digests"
    receipts = send(digest, [ConsoleDestination(), FileDestination(path=out),
                             FileDestination(path=tmp_path / "md", format="markdown")],
                    store, stream=stream)
    assert [r.status for r in receipts] == ["sent", "sent", "sent"]
    assert stream.getvalue().startswith("castrena-desk digest\n")
    html = (out / "castrena-desk-2026-11-21T0730.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Border crossings" in html
    assert (tmp_path / "md" / "castrena-desk-2026-11-21T0730.md").read_text().startswith("# ")
    assert [p.name for p in out.iterdir()] == ["castrena-desk-2026-11-21T0730.html"]  # no temp left
    again = send(digest, [ConsoleDestination()], store, stream=stream)
    assert again[0].status == "skipped"
    assert stream.getvalue().count("castrena-desk digest\n") == 1


def test_file_destination_keeps_two_digests_of_one_day(tmp_path: Path, store: Store) -> None:
    morning = sample_digest()
    evening = replace(morning, since=morning.until, until=morning.until + timedelta(hours=10),
                      generated_at=morning.until + timedelta(hours=10))
    out = tmp_path / "digests"
    for digest in (morning, evening):
        [receipt] = send(digest, [FileDestination(path=out, format="markdown")], store)
        assert receipt.status == "sent"
    # Europe/London is on UTC in November: the names carry the local end of each period.
    assert sorted(p.name for p in out.iterdir()) == [
        "castrena-desk-2026-11-21T0730.md", "castrena-desk-2026-11-21T1730.md"]


def test_resume_rebuilds_destination_from_label(tmp_path: Path, sqlite_url: str) -> None:
    digest = sample_digest()
    out = tmp_path / "files"
    with Store.open(sqlite_url) as st:
        blocked = tmp_path / "blocker"
        blocked.write_text("a file where a folder should be")
        [receipt] = send(digest, [FileDestination(path=blocked / "sub")], st)
        assert receipt.status == "failed" and receipt.detail.startswith("will retry: file:")
        # A pending row for a destination the current config no longer lists still finishes.
        st.outbox.claim_delivery(digest.key, f"file:{out}", now=NOW)
    with Store.open(sqlite_url) as st:
        blocked.unlink()
        receipts = resume_deliveries(st, slack=None, email=None, templates_dir=None,
                                     now=lambda: NOW + timedelta(minutes=1))
        assert sorted(r.status for r in receipts) == ["sent", "sent"]
        assert (out / "castrena-desk-2026-11-21T0730.html").exists()
        assert (blocked / "sub" / "castrena-desk-2026-11-21T0730.html").exists()
        assert st.outbox.unfinished_deliveries() == []
