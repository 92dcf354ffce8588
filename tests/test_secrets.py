"""Secrets come from the environment, reach only the configured Slack API, and are never printed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from conftest import LocalServer, Response
from fake_slack import FakeSlackServer

from digestbot.cli import main

TOKEN = "xoxb-9911-secret-token-for-tests"


def write_setup(tmp_path: Path, server: LocalServer, slack: FakeSlackServer) -> Path:
    when = format_datetime(datetime.now(UTC) - timedelta(hours=1))
    paragraphs = "".join(
        f"<p>The Ostrel ferry timetable changes on Monday, the harbour office said in notice "
        f"number {n}, adding that late sailings would stop for the winter.</p>" for n in range(6))
    server.routes["/feed.xml"] = Response(
        "<?xml version='1.0'?><rss version='2.0' "
        "xmlns:content='http://purl.org/rss/1.0/modules/content/'><channel><title>Ostrel Post"
        f"</title><item><title>Ostrel ferry timetable changes</title>"
        f"<link>{server.url('/ferry')}</link><pubDate>{when}</pubDate>"
        f"<content:encoded><![CDATA[{paragraphs}]]></content:encoded></item></channel></rss>")
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "watchlists" / "desk.yaml").write_text(
        "name: desk\ndeliver:\n  - slack: {channel: '#desk'}\n"
        "topics:\n  - name: Ferries\n    query: ferry\n", encoding="utf-8")
    path = tmp_path / "digestbot.yaml"
    path.write_text(
        "database: sqlite:///state.db\n"
        "fetch: {allow_private: true}\n"
        f"feeds: [{{url: '{server.url('/feed.xml')}', name: Ostrel Post}}]\n"
        f"slack: {{token: '${{SLACK_BOT_TOKEN}}', base_url: '{slack.fake.base_url}'}}\n",
        encoding="utf-8")
    return path


def test_token_reaches_only_the_slack_api_and_is_never_printed(
        tmp_path: Path, server: LocalServer, slack: FakeSlackServer,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    slack.fake.token = TOKEN
    path = write_setup(tmp_path, server, slack)
    caplog.set_level(logging.DEBUG)
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    for argv in (["check"], ["poll"], ["digest", "desk", "--since", since], ["status"]):
        assert main(["--config", str(path), "-v", *argv]) == 0, argv
    posts = slack.fake.calls("chat.postMessage")
    assert len(posts) == 1
    assert posts[0].headers.get("authorization") == f"Bearer {TOKEN}"
    assert server.requests, "the feed was fetched"
    for request in server.requests:
        assert all(TOKEN not in value for value in request.headers.values())
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err
    assert TOKEN not in caplog.text


def test_rejected_token_is_reported_without_the_token(
        tmp_path: Path, server: LocalServer, slack: FakeSlackServer,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    slack.fake.token = "xoxb-some-other-token"  # the fake answers invalid_auth
    path = write_setup(tmp_path, server, slack)
    caplog.set_level(logging.DEBUG)
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert main(["--config", str(path), "poll"]) == 0
    assert main(["--config", str(path), "-v", "digest", "desk", "--since", since]) == 1
    out = capsys.readouterr()
    assert "invalid_auth" in out.out + out.err
    assert TOKEN not in out.out + out.err
    assert TOKEN not in caplog.text
