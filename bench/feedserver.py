"""A local feed server for benchmarks: N generated RSS feeds of M fictional items each.

Usage: python bench/feedserver.py [--feeds 300] [--items 40] [--latency 0.05] [--hosts 30]
       [--port 0] [--pages] [--no-gzip]

Feeds are spread round-robin over `--hosts` loopback addresses (127.0.0.1, 127.0.0.2, ...), all
on one port, so per-host limits and same-server pauses behave as with distinct sites. Each
feed is `/feed/<i>.xml`; items carry their full text in `content:encoded`, or with `--pages`
only a one-line summary and a link to `/page/<i>/<j>.html`. Every answer waits `--latency`
seconds (without blocking other requests), sends ETag and Last-Modified, and answers
If-None-Match / If-Modified-Since with 304. `/_stats` returns request counts as JSON (uncounted).
Prints `READY <port>` on stdout once listening; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import json
import random
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from html import escape

PLACES = ("Lowmere", "Brackenford", "Eastholm", "Varnley", "Quillport", "Sedgewick Vale",
          "Tarrow Bay", "Millbrook Cross", "Oakhaven", "Duncarrow", "Fennick", "Harrowgate Sound")
SUBJECTS = ("ferry service", "council budget", "harvest festival", "bridge repairs",
            "tram line", "water board", "youth orchestra", "lighthouse museum", "flood barrier",
            "night market", "rowing club", "wind farm", "hospital wing", "coastal path")
EVENTS = ("resumes after storm damage", "faces a second delay", "wins approval from the council",
          "expands to the islands", "draws record crowds", "is put on hold pending a review",
          "opens a month early", "loses its funding", "gets a new director",
          "is investigated by auditors")
PEOPLE = ("Ida Rusk", "Tomas Brell", "Marguerite Oyelaran", "Piet Vandermolen", "Sunniva Kjell",
          "Rafael Ostrander", "Nadia Cordwell", "Emeka Thornbury", "Greta Hallowell",
          "Luca Penhaligon")
ROLES = ("the harbour master", "the council leader", "a local shopkeeper", "the project engineer",
         "a spokesperson for the water board", "the festival organiser")


@dataclass(frozen=True, slots=True)
class Body:
    """One prepared answer: plain and gzip bytes, validators and type."""

    plain: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime
    content_type: str


@dataclass
class Stats:
    """Requests answered since start, by outcome."""

    counts: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    peak_open: int = 0
    open_now: int = 0


SYLLABLES = ("bra", "ken", "dor", "vel", "mir", "tas", "lun", "quo", "fen", "ril", "sab", "ost",
             "var", "eth", "nim", "cor", "pel", "dru", "zan", "hol")
NOUNS = ("harbour", "budget", "ferry", "bridge", "school", "clinic", "quay", "orchard", "depot",
         "reservoir", "market", "tunnel", "archive", "stadium", "mill", "observatory", "canal")
ADJECTIVES = ("northern", "disputed", "flooded", "historic", "empty", "rebuilt", "crowded",
              "unfinished", "temporary", "costly", "quiet", "famous", "fragile", "modern")
VERBS = ("reopen", "close", "double", "shrink", "relocate", "merge", "recover", "expand", "stall")
MONTHS = ("January", "March", "April", "June", "August", "October", "November", "December")
SENTENCES = (
    "{person} told reporters that the {adj} {noun} near {place} would {verb} by {month}.",
    "{org} said {n1} households around the {noun} had been contacted since {month}.",
    "A survey by {org} found {n2} per cent of {place} residents backed the {adj2} plan.",
    "Engineers from {org} inspected the {noun2} on {day} and reported {n1} faults.",
    "\"{qa} {qb}, and {place} will not wait for {noun2} promises,\" said {person}.",
    "The {adj} {noun} has cost {place} about {n3} thousand crowns since {month}.",
    "{person2}, who chairs {org}, called the {noun2} decision \"{adj2} but overdue\".",
    "Shops along the {noun2} in {place} reported {n2} fewer visitors on {day}.",
    "Talks between {org} and {person2} are set to resume before {month}.",
    "Records seen by {outlet} show the {adj2} {noun2} was first proposed {n1} years ago.",
)


def make_name(rng: random.Random, parts: int) -> str:
    """Take a random source; return a made-up capitalised word of `parts` syllables."""
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def upper_first(text: str) -> str:
    """Take a sentence; return it with its first letter capitalised."""
    return text[:1].upper() + text[1:]


def make_story(rng: random.Random, event: int) -> tuple[str, list[str]]:
    """Take a feed's random source and an event number; return a headline and paragraphs.

    Facts, people, sentences and the quote come from the event, so every feed reporting it
    shares them; order, headline wording and one extra sentence come from the feed. Most
    content words are made up per event, so unrelated stories share few words, as real ones do.
    """
    ev = random.Random(event * 7919 + 17)
    words = [make_name(ev, ev.randint(2, 3)).lower() for _ in range(24)]
    place = f"{ev.choice(PLACES)} {make_name(ev, 2)}"
    slots = {
        "place": place, "noun": words[0], "noun2": words[1], "adj": words[2], "adj2": words[3],
        "verb": words[4], "month": ev.choice(MONTHS), "day": ev.choice(("Monday", "Friday")),
        "person": f"{ev.choice(PEOPLE).split()[0]} {make_name(ev, 3)}",
        "person2": f"{ev.choice(PEOPLE).split()[0]} {make_name(ev, 2)}",
        "org": f"the {make_name(ev, 2)} {ev.choice(('Trust', 'Guild', 'Authority', 'Board'))}",
        "n1": ev.randint(3, 90), "n2": ev.randint(11, 89), "n3": ev.randint(100, 990),
        "qa": f"We {words[5]} the {words[6]} or we {words[7]} the {words[8]}",
        "qb": f"as {make_name(ev, 2)} {words[9]}", "outlet": f"the {make_name(ev, 2)} Courier"}
    chosen = [t.format(**slots) for t in ev.sample(SENTENCES, 6)]
    chosen += [" ".join(ev.sample(words[10:], 6)).capitalize() + f" {place}." for _ in range(3)]
    what = f"{words[10]} {words[11]} {ev.choice(EVENTS)}"
    subject = ev.choice(SUBJECTS)
    title = rng.choice((f"{place} {subject} {what}", f"{subject.capitalize()} {what} in {place}",
                        f"{slots['person']} speaks as {place} {subject} {what}"))
    lead = f"The {subject} in {place} {what}, {slots['org']} confirmed on {slots['day']}."
    body = [upper_first(t) for t in chosen]
    rng.shuffle(body)
    extra = upper_first(rng.choice(SENTENCES).format(**{**slots, "place": rng.choice(PLACES)}))
    paragraphs = [lead, " ".join(body[:3]), " ".join(body[3:6]), " ".join(body[6:]), extra]
    return title, paragraphs


def build_feed(index: int, items: int, *, base: str, pages: bool,
               newest: datetime) -> tuple[bytes, list[bytes]]:
    """Take a feed number and size; return the RSS document and its article pages."""
    rng = random.Random(index)
    entries: list[str] = []
    page_docs: list[bytes] = []
    for j in range(items):
        # Half the items are stories of their own; the rest share events, a few very widely.
        pool = items * 8
        event = (rng.randrange(rng.randrange(1, pool + 1)) if rng.random() < 0.5
                 else pool + index * items + j)
        title, paragraphs = make_story(rng, event)
        when = newest - timedelta(minutes=37 * j + index % 30)
        link = f"{base}/page/{index}/{j}.html"
        html = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
        body = (f"<description>{escape(paragraphs[0])}</description>" if pages else
                f"<description>{escape(paragraphs[0])}</description>"
                f"<content:encoded><![CDATA[{html}]]></content:encoded>")
        entries.append(f"<item><title>{escape(title)}</title><link>{link}</link>"
                       f"<guid isPermaLink=\"false\">bench-{index}-{j}</guid>"
                       f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>{body}</item>")
        page_docs.append((f"<!doctype html><html><head><title>{escape(title)}</title></head>"
                          f"<body><nav>Home | Local | Sport</nav><article><h1>{escape(title)}"
                          f"</h1>{html}</article><footer>Bench Gazette {index}</footer>"
                          f"</body></html>").encode())
    doc = ("<?xml version=\"1.0\" encoding=\"utf-8\"?>"
           "<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\">"
           f"<channel><title>Bench Gazette {index}</title><link>{base}/</link>"
           f"<description>Fictional local news, edition {index}</description>"
           + "".join(entries) + "</channel></rss>")
    return doc.encode(), page_docs


def make_body(content: bytes, content_type: str, modified: datetime) -> Body:
    """Take content; return it prepared with gzip, a strong ETag and Last-Modified."""
    etag = '"' + hashlib.sha1(content).hexdigest()[:16] + '"'
    return Body(content, gzip.compress(content, 6), etag, modified, content_type)


def build_site(feeds: int, items: int, *, port: int, hosts: int, pages: bool,
               newest: datetime) -> dict[str, Body]:
    """Take the sizes; return every path's prepared answer."""
    site: dict[str, Body] = {}
    for i in range(feeds):
        base = f"http://{host_address(i, hosts)}:{port}"
        doc, page_docs = build_feed(i, items, base=base, pages=pages, newest=newest)
        site[f"/feed/{i}.xml"] = make_body(doc, "application/rss+xml; charset=utf-8", newest)
        if pages:
            for j, page in enumerate(page_docs):
                site[f"/page/{i}/{j}.html"] = make_body(page, "text/html; charset=utf-8",
                                                        newest)
    return site


def host_address(index: int, hosts: int) -> str:
    """Take a feed number; return the loopback address it is served on (127.0.0.1 + i mod hosts)."""
    n = index % hosts + 1
    return f"127.0.{n // 256}.{n % 256}"


def is_fresh(headers: dict[str, str], body: Body) -> bool:
    """Take request headers; return whether the client's copy is current (answer 304)."""
    if "if-none-match" in headers:
        tags = {t.strip().removeprefix("W/") for t in headers["if-none-match"].split(",")}
        return body.etag in tags or "*" in tags
    if "if-modified-since" in headers:
        try:
            since = parsedate_to_datetime(headers["if-modified-since"])
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return body.last_modified <= since
    return False


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 site: dict[str, Body], stats: Stats, latency: float, use_gzip: bool) -> None:
    """Take one connection; answer requests on it until the client or protocol closes it."""
    stats.connections += 1
    stats.open_now += 1
    stats.peak_open = max(stats.peak_open, stats.open_now)
    try:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                    ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                return
            method, path, version = parts
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            keep = (headers.get("connection", "").lower() != "close"
                    if version == "HTTP/1.1" else
                    headers.get("connection", "").lower() == "keep-alive")
            if path == "/_stats":
                payload = json.dumps({**stats.counts, "connections": stats.connections,
                                      "peak_open": stats.peak_open}).encode()
                extra = "Content-Type: application/json\r\n"
                status = "200 OK"
            else:
                await asyncio.sleep(latency)
                body = site.get(path.split("?", 1)[0])
                if body is None:
                    stats.counts["404"] += 1
                    status, payload, extra = "404 Not Found", b"not found", ""
                elif is_fresh(headers, body):
                    stats.counts["304"] += 1
                    status, payload = "304 Not Modified", b""
                    extra = f"ETag: {body.etag}\r\n"
                else:
                    stats.counts["200"] += 1
                    zipped = use_gzip and "gzip" in headers.get("accept-encoding", "")
                    payload = body.gzipped if zipped else body.plain
                    status = "200 OK"
                    extra = (f"Content-Type: {body.content_type}\r\nETag: {body.etag}\r\n"
                             f"Last-Modified: {format_datetime(body.last_modified, usegmt=True)}"
                             "\r\n" + ("Content-Encoding: gzip\r\n" if zipped else ""))
            answer = (f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(payload)}\r\n"
                      f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode()
            writer.write(answer + (b"" if method == "HEAD" else payload))
            await writer.drain()
            if not keep:
                return
    finally:
        stats.open_now -= 1
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def serve(args: argparse.Namespace) -> None:
    """Take the parsed arguments; listen on every host address until a stop signal."""
    stats = Stats()
    site: dict[str, Body] = {}

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle(reader, writer, site, stats, args.latency, not args.no_gzip)

    hosts = [host_address(i, args.hosts) for i in range(min(args.hosts, args.feeds))]
    first = await asyncio.start_server(on_connect, hosts[0], args.port, backlog=2048)
    port = first.sockets[0].getsockname()[1]
    servers = [first] + [await asyncio.start_server(on_connect, h, port, backlog=2048)
                         for h in hosts[1:]]
    # Items are dated just before start, so they fall inside any clustering window.
    newest = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    site.update(build_site(args.feeds, args.items, port=port, hosts=args.hosts,
                           pages=args.pages, newest=newest))
    print(f"READY {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
    print(json.dumps({**stats.counts, "connections": stats.connections}), file=sys.stderr)


def main() -> None:
    """Parse arguments and serve."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feeds", type=int, default=300)
    p.add_argument("--items", type=int, default=40)
    p.add_argument("--latency", type=float, default=0.05, help="seconds added to every answer")
    p.add_argument("--hosts", type=int, default=30, help="loopback addresses to spread feeds on")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--pages", action="store_true", help="summaries only; full text on pages")
    p.add_argument("--no-gzip", action="store_true")
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
