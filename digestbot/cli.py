"""Command line: a thin shell over the pipeline. Exit 0 ok, 1 runtime failure, 2 config error."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from digestbot import __version__
from digestbot.errors import ConfigError, DigestbotError
from digestbot.logs import configure_logging

if TYPE_CHECKING:
    from digestbot.config import Config
    from digestbot.store import Store

DEFAULT_CONFIG = "config/digestbot.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run one command, return its exit code."""
    args = _parser().parse_args(argv)
    configure_logging(verbose=args.verbose, fmt=args.log_format)
    try:
        code: int = args.func(args)
        return code
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except DigestbotError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="digestbot", description=__doc__)
    p.add_argument("--version", action="version", version=f"digestbot {__version__}")
    p.add_argument("--config", default=os.environ.get("DIGESTBOT_CONFIG", DEFAULT_CONFIG),
                   help="config file (env DIGESTBOT_CONFIG, default %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("check", help="validate config and watchlists, print a summary")
    s.set_defaults(func=cmd_check)
    s = sub.add_parser("poll", help="poll every feed once and send alerts for new stories")
    s.add_argument("--no-alerts", action="store_true", help="do not send alerts")
    s.set_defaults(func=cmd_poll)
    s = sub.add_parser("digest", help="build a watchlist's digest and send it (or print it)")
    s.add_argument("watchlist")
    s.add_argument("--since", type=_parse_time, help="ISO time (default: the last digest)")
    s.add_argument("--until", type=_parse_time, help="ISO time (default: now)")
    s.add_argument("--dry-run", action="store_true", help="print the rendering, send nothing")
    s.add_argument("--format", choices=["text", "json", "html", "markdown"], default="text")
    s.add_argument("--force", action="store_true",
                   help="send again to destinations already sent, or send a digest with no stories")
    s.set_defaults(func=cmd_digest)
    s = sub.add_parser("status", help="feed health and store counts")
    s.set_defaults(func=cmd_status)
    s = sub.add_parser("schedule", help="show the next run of every scheduled job")
    s.set_defaults(func=cmd_schedule)
    s = sub.add_parser("run", help="run the scheduler (polls, digests, alerts) until stopped")
    s.set_defaults(func=cmd_run)
    s = sub.add_parser("demo", help="run the whole pipeline on a bundled offline sample")
    s.add_argument("--html", type=Path, default=Path("digestbot-demo.html"),
                   help="where to write the HTML digest (default %(default)s)")
    s.set_defaults(func=cmd_demo)
    return p


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from err
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _load(args: argparse.Namespace) -> Config:
    from digestbot.config import load_config

    return load_config(args.config)


def _open_store(config: Config) -> Store:
    from digestbot.store import Store

    return Store.open(config.database)


def cmd_check(args: argparse.Namespace) -> int:
    from digestbot.config import summarize_config

    config = _load(args)
    print(summarize_config(config))
    print("config ok")
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    from digestbot.pipeline import poll
    from digestbot.progress import Progress
    from digestbot.workers import worker_pool

    config = _load(args)
    with _open_store(config) as store:
        with Progress("polling feeds") as progress, worker_pool(config.fetch.workers) as offload:
            report = asyncio.run(poll(config, store, progress=progress.update, offload=offload))
        print(f"polled {len(report.feeds)} feeds: {len(report.articles)} new articles, "
              f"{len(report.matches)} new matches, {len(report.new_stories)} new stories, "
              f"{len(report.failed)} failed")
        for failed in report.failed:
            print(f"  failed {failed.url}: {failed.error}")
        receipts = []
        alerting = any(t.alert for wl in config.watchlists for t in wl.topics)
        if (report.new_stories or report.joined) and alerting and not args.no_alerts:
            from digestbot.alerts import send_alert_updates, send_alerts_for_stories
            from digestbot.pipeline import utcnow

            receipts = send_alerts_for_stories(config, store, report.new_stories, now=utcnow)
            receipts += send_alert_updates(config, store, report.joined, now=utcnow)
    for r in receipts:
        print(f"alert {r.destination}: {r.status}{' (' + r.detail + ')' if r.detail else ''}")
    return 0 if all(r.status in ("sent", "skipped") for r in receipts) else 1


def cmd_digest(args: argparse.Namespace) -> int:
    from digestbot.deliver import deliver_digest
    from digestbot.pipeline import make_digest, utcnow
    from digestbot.render import render_digest

    config = _load(args)
    watchlist = config.watchlist(args.watchlist)
    with _open_store(config) as store:
        digest = make_digest(config, store, watchlist, now=utcnow(), since=args.since,
                             until=args.until)
        if args.dry_run:
            sys.stdout.write(render_digest(digest, args.format, templates_dir=config.templates_dir))
            sys.stdout.write("\n")
            return 0
        if digest.story_count == 0 and not args.force:
            # As the service does: an empty digest would only tell subscribers nothing happened.
            since = digest.since.isoformat(timespec="minutes")
            print(f"{watchlist.name}: no new stories since {since}; nothing sent "
                  "(--force sends it anyway)")
            return 0
        receipts = deliver_digest(digest, watchlist.deliver, store=store, slack=config.slack,
                                  email=config.email, templates_dir=config.templates_dir,
                                  now=utcnow, force=args.force)
    for r in receipts:
        print(f"{r.destination}: {r.status}{' (' + r.detail + ')' if r.detail else ''}")
    return 0 if all(r.status in ("sent", "skipped") for r in receipts) else 1


def cmd_status(args: argparse.Namespace) -> int:
    from digestbot.status import format_status

    config = _load(args)
    with _open_store(config) as store:
        print(format_status(config, store, now=datetime.now(UTC)))
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from digestbot.schedule import describe_schedule

    config = _load(args)
    with _open_store(config) as store:
        states = store.feeds.states()
    print(describe_schedule(config, now=datetime.now(UTC), feed_states=states))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from digestbot.service import run_service

    return asyncio.run(run_service(Path(args.config)))


def cmd_demo(args: argparse.Namespace) -> int:
    from digestbot.demo import run_demo

    return run_demo(html_path=args.html)


def console() -> None:
    """The `digestbot` command: run main() with the process's arguments and exit with its code."""
    code = main()
    # The process ends here: keep the interpreter from sweeping every imported module's objects
    # for cycles on the way out (a tenth of a second for SQLAlchemy's alone). Everything that
    # needs closing was closed by the command.
    gc.freeze()
    raise SystemExit(code)


if __name__ == "__main__":
    console()
