"""The bundled demo runs end to end offline and reads like a digest an editor would send."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digestbot.cli import main
from digestbot.config import load_config
from digestbot.demo import serve_site, write_demo_config
from digestbot.pipeline import make_digest, poll
from digestbot.store import Store

BOILERPLATE = ("Sign up for our Morning Briefing", "cookies", "JUST IN", "Donate", "Read more",
               "Related stories", "All rights reserved", "Photo:")


def test_demo_command_prints_digest_and_writes_html(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html = tmp_path / "demo.html"
    assert main(["demo", "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "demo-desk digest" in out
    for topic in ("Castavia-Velmar troop movements", "Rates and inflation", "Tennis"):
        assert f"== {topic} ==" in out
    assert "Harbour festival" not in out  # matched no topic
    for text in BOILERPLATE:
        assert text not in out
    page = html.read_text(encoding="utf-8")
    assert "<html" in page.lower() and "Lindqvist" in page


def test_demo_merges_outlets_per_event_and_attributes_quotes(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with serve_site(now) as base:
        config = load_config(write_demo_config(tmp_path, base), env={})
        with Store.open(config.database) as store:
            asyncio.run(poll(config, store))
            digest = make_digest(config, store, config.watchlist("demo-desk"),
                                 now=now, since=now - timedelta(days=2))
    stories = {s.headline: s for t in digest.topics for s in t.stories}
    slugs = {h: {a.url.rsplit("/", 1)[1] for a in s.articles} for h, s in stories.items()}
    border = {"castavia-brigades-velmar-border", "tanks-near-orsk", "velmar-demands-answers-troops"}
    # Three outlets reporting the build-up near Orsk are one story, and only that story.
    assert sum(1 for s in slugs.values() if s & border) == 1
    assert any(s == border for s in slugs.values()), slugs
    # Same topic, different event: the Harrow Flats withdrawal is a story of its own.
    assert {"harrow-flats-withdrawal"} in slugs.values()
    assert {"central-bank-raises-rates", "vogl-rate-rise"} in slugs.values()
    border_story = next(s for s in stories.values() if {a.url.rsplit("/", 1)[1]
                                                         for a in s.articles} == border)
    speakers = {q.speaker for q in border_story.quotes}
    assert {"Ilse Marren", "Tomas Kessler"} <= speakers
    # The Kessler quote appears in all three reports: one quote, three links.
    kessler = [q for q in border_story.quotes if "two brigades next to a border" in q.text]
    assert len(kessler) == 1 and len(kessler[0].urls) >= 2
    for story in stories.values():
        assert all(text not in story.summary for text in BOILERPLATE)
        urls = [a.url for a in story.articles]
        assert len(urls) == len(set(urls))
