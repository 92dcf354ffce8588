"""Poll benchmark: digestbot against rss2email on N local feeds of M items (not a test).

Usage: python bench/poll.py [--feeds 300] [--items 40] [--latency 0.05] [--hosts 30]
       [--query '*'] [--skip-r2e] [--keep DIR]

Starts bench/feedserver.py in its own process, then times, each in a fresh process:
  digestbot in-process  `digestbot.pipeline.poll` called twice (first poll, repeat poll)
  digestbot CLI         `digestbot --config C poll` twice, interpreter start-up included
  rss2email             `r2e -c C -d D run --no-send` twice
The repeat poll finds nothing changed (304s). Peak RSS is the most resident memory of each
process and its worker processes together (sampled every 0.25 s), or its own ru_maxrss if
larger. Requests are counted by the feed server. Needs rss2email (`pip install rss2email`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_FIRST, TARGET_REPEAT = 8.0, 15.0


@dataclass
class Run:
    """One timed child process."""

    seconds: float
    peak_rss_mb: float
    code: int
    output: str
    requests: dict[str, int]


def start_feedserver(args: argparse.Namespace) -> tuple[subprocess.Popen[str], int]:
    """Take the arguments; start the feed server and return it with its port."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "feedserver.py"), "--feeds", str(args.feeds),
         "--items", str(args.items), "--latency", str(args.latency), "--hosts", str(args.hosts)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"feed server failed to start: {line!r}")
    return proc, int(line.split()[1])


def server_counts(port: int) -> dict[str, int]:
    """Take the server port; return its request counts so far."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=10) as answer:
        counts: dict[str, int] = json.loads(answer.read())
        return counts


def feed_urls(args: argparse.Namespace, port: int) -> list[str]:
    """Return every feed's URL, on its loopback host."""
    sys.path.insert(0, str(ROOT / "bench"))
    from feedserver import host_address

    return [f"http://{host_address(i, args.hosts)}:{port}/feed/{i}.xml"
            for i in range(args.feeds)]


def write_digestbot_config(folder: Path, urls: list[str], query: str) -> Path:
    """Take a folder, the feed URLs and a topic query; write config and watchlist, return config."""
    folder.mkdir(parents=True)
    (folder / "watchlists").mkdir()
    feeds = "\n".join(f"  - url: {u}\n    name: Bench Gazette {i}" for i, u in enumerate(urls))
    (folder / "digestbot.yaml").write_text(
        "timezone: UTC\ndatabase: sqlite:///digestbot.db\n"
        "fetch:\n  full_text: false\n  allow_private: true\n"
        f"feeds:\n{feeds}\nwatchlists_dir: watchlists\n")
    (folder / "watchlists" / "bench.yaml").write_text(
        "name: bench\ndeliver:\n  - console: {}\ntopics:\n"
        f"  - name: Everything\n    query: {json.dumps(query)}\n")
    return folder / "digestbot.yaml"


def write_r2e_config(folder: Path, urls: list[str]) -> list[str]:
    """Take a folder and the feed URLs; create rss2email's config and data, return its argv."""
    folder.mkdir(parents=True)
    config, data = folder / "r2e.cfg", folder / "r2e.json"
    r2e = [str(BIN / "r2e"), "-c", str(config), "-d", str(data)]
    subprocess.run([*r2e, "new", "you@example.org"], check=True, capture_output=True)
    # Appending sections is what `r2e add` does, one process per feed; this is the same, faster.
    with config.open("a") as out:
        for i, url in enumerate(urls):
            out.write(f"\n[feed.f{i:05d}]\nurl = {url}\n")
    data.write_text(json.dumps({"version": 2, "feeds": [
        {"name": f"f{i:05d}", "etag": None, "modified": None, "seen": {}}
        for i in range(len(urls))]}))
    return r2e


def tree_rss_kb(root: int) -> int:
    """Take a process id; return the resident memory of it and all its descendants, in KiB."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in tree]
        tree.update(children)
        frontier += children
    total = 0
    for pid in tree:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def run_child(argv: list[str], port: int, *, cwd: Path) -> Run:
    """Take a command; run it, return its wall time, peak RSS (the process and its worker
    processes together, sampled every 0.25 s, or its own ru_maxrss if larger), exit code and
    requests."""
    before = server_counts(port)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.stdout.read()
    done.set()
    sampler.join()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    after = server_counts(port)
    requests = {k: after.get(k, 0) - before.get(k, 0) for k in ("200", "304", "404")}
    return Run(seconds, max(usage.ru_maxrss, peak[0]) / 1024, proc.returncode, output, requests)


def poll_in_process(config_path: str) -> None:
    """Take a config path; poll twice through digestbot.pipeline.poll and print JSON timings."""
    import asyncio

    from digestbot.config import load_config
    from digestbot.pipeline import poll
    from digestbot.store import Store
    from digestbot.workers import worker_pool

    t0 = time.perf_counter()
    config = load_config(Path(config_path))
    store = Store.open(config.database)
    setup = time.perf_counter() - t0
    times: list[float] = []
    reports: list[Any] = []
    with worker_pool(config.fetch.workers) as offload:  # as `digestbot poll` does
        for _ in range(2):
            t0 = time.perf_counter()
            reports.append(asyncio.run(poll(config, store, offload=offload)))
            times.append(time.perf_counter() - t0)
    store.close()
    first, repeat = reports
    print(json.dumps({
        "setup": setup, "first": times[0], "repeat": times[1],
        "articles": len(first.articles), "matches": len(first.matches),
        "stories": len(first.new_stories), "failed": len(first.failed),
        "repeat_statuses": sorted({f.status for f in repeat.feeds}),
        "repeat_articles": len(repeat.articles)}))


def r2e_seen(folder: Path) -> int:
    """Return how many entries rss2email has recorded as seen."""
    data = json.loads((folder / "r2e.json").read_text())
    return sum(len(f.get("seen") or {}) for f in data["feeds"])


def print_table(rows: list[tuple[str, float, float, float, str]]) -> None:
    """Take (name, first s, repeat s, peak RSS MB, requests) rows; print them aligned."""
    print(f"{'':28} {'first poll s':>12} {'repeat poll s':>13} {'peak RSS MB':>11}  requests")
    for name, first, repeat, rss, requests in rows:
        print(f"{name:28} {first:12.2f} {repeat:13.3f} {rss:11.0f}  {requests}")


def main() -> int:
    """Parse arguments, run the benchmark, print the table; return an exit code."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feeds", type=int, default=300)
    p.add_argument("--items", type=int, default=40)
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--hosts", type=int, default=30)
    p.add_argument("--query", default="*", help="the one topic's query (default: every article)")
    p.add_argument("--skip-r2e", action="store_true")
    p.add_argument("--keep", type=Path, help="work in this folder and keep it")
    p.add_argument("--inprocess", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inprocess:
        poll_in_process(args.inprocess)
        return 0
    if not args.skip_r2e and not (BIN / "r2e").exists():
        raise SystemExit("rss2email is not installed: pip install rss2email (or --skip-r2e)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="digestbot-bench-"))
    server, port = start_feedserver(args)
    try:
        urls = feed_urls(args, port)
        print(f"{args.feeds} feeds x {args.items} items on {args.hosts} loopback hosts, "
              f"{args.latency * 1000:.0f} ms per request; query {args.query!r}; "
              f"{os.cpu_count()} CPUs; work in {work}")
        inproc_cfg = write_digestbot_config(work / "inprocess", urls, args.query)
        cli_cfg = write_digestbot_config(work / "cli", urls, args.query)
        inproc = run_child([sys.executable, __file__, "--inprocess", str(inproc_cfg)], port,
                           cwd=work)
        if inproc.code != 0:
            raise SystemExit(f"in-process poll failed:\n{inproc.output}")
        timing = json.loads(inproc.output.strip().splitlines()[-1])
        digestbot = [sys.executable, "-m", "digestbot.cli", "--config", str(cli_cfg), "poll"]
        cli = [run_child(digestbot, port, cwd=work) for _ in range(2)]
        print(f"digestbot first poll: {timing['articles']} articles, {timing['matches']} "
              f"matches, {timing['stories']} stories, {timing['failed']} failed; repeat: "
              f"{timing['repeat_statuses']}, {timing['repeat_articles']} articles; "
              f"CLI: {cli[0].output.strip().splitlines()[-1]!r}")
        rows = [("digestbot poll() in-process", timing["first"], timing["repeat"],
                 inproc.peak_rss_mb, str(inproc.requests)),
                ("digestbot CLI (subprocess)", cli[0].seconds, cli[1].seconds,
                 max(c.peak_rss_mb for c in cli), f"{cli[0].requests} / {cli[1].requests}")]
        if not args.skip_r2e:
            r2e_argv = write_r2e_config(work / "r2e", urls)
            r2e = [run_child([*r2e_argv, "run", "--no-send"], port, cwd=work) for _ in range(2)]
            print(f"rss2email: exit {r2e[0].code}/{r2e[1].code}, "
                  f"{r2e_seen(work / 'r2e')} entries seen")
            rows.append(("rss2email r2e run --no-send", r2e[0].seconds, r2e[1].seconds,
                         max(r.peak_rss_mb for r in r2e), f"{r2e[0].requests} / "
                         f"{r2e[1].requests}"))
        print_table(rows)
        if not args.skip_r2e:
            for label, first, repeat in (("in-process", timing["first"], timing["repeat"]),
                                         ("CLI", cli[0].seconds, cli[1].seconds)):
                print(f"speedup vs rss2email ({label}): first poll "
                      f"{r2e[0].seconds / first:.1f}x (target {TARGET_FIRST:.0f}x), repeat poll "
                      f"{r2e[1].seconds / repeat:.1f}x (target {TARGET_REPEAT:.0f}x)")
    finally:
        server.terminate()
        server.wait(timeout=10)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
