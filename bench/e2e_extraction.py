"""Real article pages behind a feed of our own, through the real CLI: is anything boilerplate?

Usage: python bench/e2e_extraction.py [DATA_DIR]   (default ../shared/evaldata)

Serves the 181 Zyte AEB pages (`extraction/scrapinghub_aeb/`) unchanged on 127.0.0.1 behind
one RSS feed whose items carry only a title and a one-line teaser, so `digestbot poll` must fetch
and extract every page (`fetch.full_text: true`). Then runs `digestbot digest --dry-run --format
json` and reports:
- shingle F1 / P / R of the text the pipeline stored, against the gold article bodies, beside
  plain trafilatura on the same bytes (the metric of bench/extraction.py);
- whether every article is linked exactly once in the digest;
- how many summary sentences and quotes are not verbatim in the gold article body (a sentence
  that is not in the gold body is boilerplate, or text the gold annotators left out).
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape, unescape
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import trafilatura  # noqa: E402

from bench.extraction import score_aeb  # noqa: E402
from bench.harness import run_cli  # noqa: E402
from digestbot.config import load_config  # noqa: E402
from digestbot.demo import serve_routes  # noqa: E402
from digestbot.store import Store  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "evaldata"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.S | re.I)


def page_title(html: bytes, fallback: str) -> str:
    found = _TITLE.search(html)
    title = unescape(found.group(1).decode("utf-8", "replace")).strip() if found else ""
    return " ".join(title.split())[:200] or fallback


def normalize(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    data = Path(args[0]) if args else DEFAULT_DATA
    root = data / "extraction" / "scrapinghub_aeb"
    truth = {k: v["articleBody"] for k, v in
             json.loads((root / "ground-truth.json").read_text("utf-8")).items()}
    pages = {k: gzip.decompress((root / "html" / f"{k}.html.gz").read_bytes()) for k in truth}
    now = datetime.now(UTC).replace(microsecond=0)
    routes: dict[str, tuple[str, bytes]] = {
        f"/page/{k}.html": ("text/html; charset=utf-8", html) for k, html in pages.items()}
    with serve_routes(routes) as base, tempfile.TemporaryDirectory(prefix="digestbot-e2e-") as tmp:
        items = "".join(
            f"<item><title>{escape(page_title(html, k))}</title>"
            f"<link>{base}/page/{k}.html</link><guid isPermaLink='false'>{k}</guid>"
            f"<pubDate>{format_datetime(now - timedelta(minutes=i))}</pubDate>"
            "<description>Read the full story.</description></item>"
            for i, (k, html) in enumerate(pages.items()))
        routes["/feed.xml"] = (
            "application/rss+xml; charset=utf-8",
            f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>AEB"
            f"</title><link>{base}/</link>{items}</channel></rss>".encode())
        work = Path(tmp)
        (work / "watchlists").mkdir()
        (work / "watchlists" / "all.yaml").write_text(
            "name: all\ndigest: {max_stories: 100000}\ndeliver: [{console: {}}]\n"
            "topics: [{name: Everything, query: '*'}]\n", encoding="utf-8")
        config_path = work / "digestbot.yaml"
        config_path.write_text(
            "database: sqlite:///state.db\n"
            "fetch: {full_text: true, allow_private: true, deadline: 60}\n"
            f"feeds: [{{url: '{base}/feed.xml', name: AEB pages}}]\n", encoding="utf-8")
        print(run_cli(config_path, ["poll"]).strip())
        since = (now - timedelta(days=2)).isoformat()
        digest = json.loads(run_cli(config_path, ["digest", "all", "--dry-run", "--format",
                                                  "json", "--since", since]))
        config = load_config(config_path, env={})
        with Store.open(config.database) as store:
            stored = {k: (a.text if (a := store.get_article(f"{base}/page/{k}.html")) else "")
                      for k in truth}
    plain = {k: trafilatura.extract(html) or "" for k, html in pages.items()}
    print(f"\nAEB pages through `digestbot poll` (fetch + extract + store), {len(truth)} pages")
    print(f"  {'system':40} {'F1':>6} {'P':>6} {'R':>6}")
    for name, predicted in (("plain trafilatura, same bytes", plain),
                            ("digestbot stored article text", stored)):
        f1, p, r = score_aeb(truth, predicted)
        print(f"  {name:40} {f1:6.3f} {p:6.3f} {r:6.3f}")
    key_of = {f"{base}/page/{k}.html": k for k in truth}
    stories = [s for t in digest["topics"] for s in t["stories"]]
    linked = [a["url"] for s in stories for a in s["articles"]]
    print(f"\ndigest: {len(stories)} stories, {len(linked)} article links, "
          f"{len(set(linked))} distinct, {len(set(linked) & set(key_of))} of {len(truth)} pages")
    sentences = outside = quotes = quotes_outside = 0
    examples: list[str] = []
    for story in stories:
        bodies = [normalize(truth[key_of[a["url"]]]) for a in story["articles"]
                  if a["url"] in key_of]
        for sentence in story.get("summary_sentences", []):
            sentences += 1
            if not any(normalize(sentence) in body for body in bodies):
                outside += 1
                examples.append(sentence[:100])
        for quote in story["quotes"]:
            for part in quote["text"].split(" … "):
                quotes += 1
                quotes_outside += not any(normalize(part) in body for body in bodies)
    print(f"summary sentences not verbatim in a gold body: {outside} of {sentences}")
    print(f"quote parts not verbatim in a gold body: {quotes_outside} of {quotes}")
    for story in stories:
        if len(story["articles"]) > 1 and "--stories" in sys.argv:
            print("  story:", " | ".join(a["title"][:50] for a in story["articles"]))
    for example in examples[:8]:
        print(f"  e.g. {example!r}")


if __name__ == "__main__":
    main()
