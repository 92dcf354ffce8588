"""Soak test of `digestbot run`: a local feed server whose feeds change, fail and recover.

Usage: python bench/soak.py [--minutes 60] [--feeds 6] [--digest-every 5] [--json report.json]

Starts `python -m digestbot.cli run` (a subprocess) with every feed polled each minute and a
digest cron every `--digest-every` minutes, against feeds served from this process: each feed
gains a fictional item every minute; in every 15-minute cycle feed 1 answers 500 for minutes
2-5, feed 2 times out for minutes 6-9, feed 3 answers 503 with Retry-After: 120 for minutes
10-11. Every 10 s it samples the child's RSS and /healthz, then SIGTERMs it and reports: polls
done, digests sent (each once, on time within the grace), failing feeds recovered, the last
health and metrics snapshots, RSS over time, and how long the SIGTERM took.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PLACES = ("Lowmere", "Brackenford", "Eastholm", "Varnley", "Quillport", "Tarrow Bay")
SUBJECTS = ("ferry service", "harbour wall", "tram line", "flood barrier", "night market")
CYCLE = 15  # minutes; the failure pattern repeats
ON_TIME_GRACE = timedelta(seconds=90)  # a digest sent later than this after its slot is late


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def feed_body(index: int, started: float, now: float) -> str:
    """Take a feed number and the clock; return its RSS with one new item per elapsed minute."""
    minutes = int((now - started) // 60)
    items = []
    for m in range(max(0, minutes - 20), minutes + 1):
        place, subject = PLACES[(index + m) % len(PLACES)], SUBJECTS[(index * 3 + m) % 5]
        stamp = datetime.fromtimestamp(started + m * 60 + index, UTC)
        text = (f"The {subject} in {place} reopened on minute {m}, officials said. "
                f"\"We are glad the harbour is busy again,\" said warden Ilse Marrow of {place}. "
                f"Residents of {place} queued early for the {subject} on update {m}.")
        items.append(
            f"<item><title>{subject.title()} in {place}: update {m} (feed {index})</title>"
            f"<link>http://127.0.0.1/soak/{index}/{m}</link><guid>soak-{index}-{m}</guid>"
            f"<pubDate>{format_datetime(stamp)}</pubDate><description>{text}</description>"
            "</item>")
    return ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Soak feed {index}</title><link>http://127.0.0.1/</link>"
            + "".join(reversed(items)) + "</channel></rss>")


def feed_mode(index: int, started: float, now: float) -> str:
    """Take a feed number and the clock; return "ok", "error", "timeout" or "retry"."""
    minute = int((now - started) // 60) % CYCLE
    if index == 1 and 2 <= minute <= 5:
        return "error"
    if index == 2 and 6 <= minute <= 9:
        return "timeout"
    if index == 3 and 10 <= minute <= 11:
        return "retry"
    return "ok"


def start_feed_server(feeds: int, started: float) -> tuple[ThreadingHTTPServer, dict[str, int]]:
    """Start the changing feed server in a thread; return it and its request counters."""
    counts: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            index = int(self.path.rsplit("/", 1)[-1].split(".")[0])
            now = time.time()
            mode = feed_mode(index, started, now)
            with lock:
                counts[mode] = counts.get(mode, 0) + 1
            if mode == "timeout":
                time.sleep(12)  # longer than the child's fetch timeout
            status, headers, body = 200, {"Content-Type": "application/rss+xml"}, b""
            if mode == "error":
                status, body = 500, b"upstream broke"
            elif mode == "retry":
                status, body = 503, b"busy"
                headers["Retry-After"] = "120"
            elif index < feeds:
                body = feed_body(index, started, now).encode()
            else:
                status = 404
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # a timed-out client has hung up
                self.wfile.write(body if mode != "timeout" else b"")

    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client that timed out hangs up mid-request; that is the point

    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, counts


def write_config(folder: Path, port: int, feeds: int, health_port: int, every: int) -> Path:
    """Write the child's config and one watchlist into folder; return the config path."""
    (folder / "watchlists").mkdir()
    lines = ["timezone: UTC", f"database: sqlite:///{folder / 'soak.db'}", "poll_every: 1",
             f"watchlists_dir: {folder / 'watchlists'}",
             "fetch: {full_text: false, timeout: 3, deadline: 5}",
             f"health: {{host: 127.0.0.1, port: {health_port}}}", "feeds:"]
    lines += [f"  - {{url: 'http://127.0.0.1:{port}/feed/{i}.xml', name: feed{i}}}"
              for i in range(feeds)]
    path = folder / "digestbot.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "watchlists" / "soak.yaml").write_text(
        f"digest: {{schedule: '*/{every} * * * *'}}\n"
        "deliver: [console]\n"
        "topics:\n  - {name: Harbour, query: 'harbour OR ferry OR tram'}\n", encoding="utf-8")
    return path


def rss_kib(pid: int) -> int | None:
    """Take a process id; return its resident set size in KiB (Linux), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def fetch_text(url: str) -> str | None:
    """Take a URL; return its body (also for 503), or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return str(answer.read().decode())
    except urllib.error.HTTPError as err:
        return str(err.read().decode())
    except OSError:
        return None


def metric_sum(text: str | None, name: str, match: str = "") -> float:
    """Take a /metrics body; return the sum of the samples of name whose labels hold match."""
    total = 0.0
    for line in (text or "").splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and match in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def check_digests(db: Path, started: datetime, ended: datetime, every: int) -> dict[str, Any]:
    """Read the child's store; return what its digests and deliveries show."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT key, since, until, created_at FROM digests "
                            "WHERE watchlist = 'soak' ORDER BY until").fetchall()
        deliveries = conn.execute("SELECT digest_key, status, attempts FROM deliveries").fetchall()
        feeds = conn.execute("SELECT url, error_count, last_success FROM feeds").fetchall()
    parse = datetime.fromisoformat
    untils = [parse(r[2]).replace(tzinfo=UTC) for r in rows]
    late = [r[0] for r, u in zip(rows, untils, strict=True)
            if parse(r[3]).replace(tzinfo=UTC) - u > ON_TIME_GRACE]
    slot = started.replace(second=0, microsecond=0)
    slot -= timedelta(minutes=slot.minute % every)
    if slot <= started:
        slot += timedelta(minutes=every)
    expected = []
    while slot <= ended - timedelta(seconds=5):
        expected.append(slot)
        slot += timedelta(minutes=every)
    sent: dict[str, list[tuple[str, int]]] = {}
    for key, status, attempts in deliveries:
        sent.setdefault(key, []).append((status, attempts))
    return {
        "digests": len(rows), "slots_due": len(expected),
        "slots_missing": [s.isoformat() for s in expected if s not in untils],
        "slots_repeated": len(untils) - len(set(untils)),
        "late": late,
        "deliveries_not_exactly_once": [k for k, v in sent.items()
                                        if v != [("sent", 1)] and not k.startswith("alert:")],
        "periods_contiguous": all(parse(rows[i][1]) == parse(rows[i - 1][2])
                                  for i in range(1, len(rows))),
        "feeds_failing_at_end": [u for u, errors, _ in feeds if errors],
    }


def main() -> int:
    """Run the soak; print the report (and write it as JSON when asked); 0 if all held."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--feeds", type=int, default=6)
    parser.add_argument("--digest-every", type=int, default=5, help="minutes between digests")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="digestbot-soak-"))
    started = time.time()
    server, counts = start_feed_server(args.feeds, started)
    health_port = free_port()
    config = write_config(folder, server.server_address[1], args.feeds, health_port,
                          args.digest_every)
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    log_path = folder / "child.log"
    with open(log_path, "w") as log_file, open(folder / "stdout.txt", "w") as out_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "digestbot.cli", "--config", str(config), "--log-format",
             "json", "run"], stdout=out_file, stderr=log_file, env=env, cwd=folder)
        began = datetime.now(UTC)
        samples: list[tuple[float, int]] = []
        health: str | None = None
        metrics: str | None = None
        deadline = started + args.minutes * 60
        while time.time() < deadline and child.poll() is None:
            kib = rss_kib(child.pid)
            if kib is not None:
                samples.append((round(time.time() - started, 1), kib))
            health = fetch_text(f"http://127.0.0.1:{health_port}/healthz") or health
            metrics = fetch_text(f"http://127.0.0.1:{health_port}/metrics") or metrics
            time.sleep(max(0.0, min(args.sample_every, deadline - time.time())))
        ended = datetime.now(UTC)
        stop_began = time.monotonic()
        child.send_signal(signal.SIGTERM)
        try:
            code = child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        stop_seconds = time.monotonic() - stop_began
    server.shutdown()

    events: dict[str, int] = {}
    ready = began
    for line in log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = {"message": "(not json)"}
        message = str(entry.get("message", "?"))
        events[message] = events.get(message, 0) + 1
        if message == "digestbot running":
            ready = datetime.fromisoformat(entry["time"])  # slots before this are not due
    digests = check_digests(folder / "soak.db", ready, ended, args.digest_every)
    rss = [kib for _, kib in samples]
    half = rss[len(rss) // 2:] or rss
    report = {
        "minutes": round((ended - began).total_seconds() / 60, 2),
        "exit_code": code, "sigterm_seconds": round(stop_seconds, 2),
        "polls": metric_sum(metrics, "digestbot_feed_polls_total"),
        "polls_failed": metric_sum(metrics, "digestbot_feed_polls_total", 'status="failed"'),
        "server_requests": counts,
        "feeds_recovered": events.get("feed recovered", 0),
        "log_events": events,
        **digests,
        "rss_kib": {"first": rss[0] if rss else None, "peak": max(rss) if rss else None,
                    "last": rss[-1] if rss else None,
                    "peak_second_half": max(half) if half else None,
                    "min_second_half": min(half) if half else None},
        "rss_samples": samples[:: max(1, len(samples) // 30)],
        "health_last": json.loads(health) if health else None,
        "metrics_last": [m for m in (metrics or "").splitlines()
                         if m and not m.startswith("#") and "_bucket" not in m],
        "work_folder": str(folder) if args.keep else None,
    }
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    ok = (code == 0 and not digests["slots_missing"] and not digests["slots_repeated"]
          and not digests["late"] and not digests["deliveries_not_exactly_once"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
