"""Render the sample digest (test fixture data) as the HTML email and screenshot it.

Usage: python bench/screenshot_email.py [OUT_DIR]   (default: a new temporary folder)
Writes digest.html, alert.html and, when /usr/bin/chromium exists, PNG screenshots at 1200px
and 375px widths: digest-1200.png, digest-375.png, alert-375.png.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_render import evil_digest, sample_digest  # noqa: E402

from digestbot.records import Digest, DigestTopic  # noqa: E402
from digestbot.render import render_digest  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")


def screenshot(html_file: Path, png: Path, width: int, height: int = 1400) -> None:
    """Take a headless Chromium screenshot of a local HTML file at the given window width."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
             f"--screenshot={png}", f"--window-size={width},{height}", html_file.as_uri()],
            check=True, capture_output=True, timeout=120)


def main(argv: list[str]) -> int:
    """Write the HTML renderings and, with Chromium, their screenshots; returns an exit code."""
    out = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="digestbot-email-"))
    out.mkdir(parents=True, exist_ok=True)
    digest = sample_digest(4)
    evil = evil_digest()
    mixed = Digest(watchlist=digest.watchlist, since=digest.since, until=digest.until,
                   generated_at=digest.generated_at, timezone=digest.timezone,
                   max_quotes=digest.max_quotes, topics=(*digest.topics, *evil.topics))
    alert = Digest(watchlist=digest.watchlist, since=digest.since, until=digest.until,
                   generated_at=digest.generated_at, max_quotes=1,
                   topics=(DigestTopic(digest.topics[0].name, digest.topics[0].stories[:1]),))
    files = {"digest": render_digest(mixed, "html"),
             "alert": render_digest(alert, "html", kind="alert")}
    for name, html in files.items():
        (out / f"{name}.html").write_text(html, encoding="utf-8")
        print(f"wrote {out / (name + '.html')} ({len(html)} chars)")
    if not CHROMIUM.exists():
        print("no /usr/bin/chromium: skipping screenshots")
        return 0
    for name, width in (("digest", 1200), ("digest", 375), ("alert", 375)):
        png = out / f"{name}-{width}.png"
        screenshot(out / f"{name}.html", png, width)
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
