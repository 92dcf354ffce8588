"""Render a Digest with Jinja2 templates: text, markdown, HTML email, JSON (pure).

Every template gets the same context: `digest` (the Digest record), `max_quotes`, `tz` (the
digest's timezone name) and `kind` (one of KINDS); see
templates/README.md. Slack blocks are built in `slack_blocks.py` from the same templates.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import css_inline
import jinja2

import digestbot
from digestbot.errors import DigestbotError
from digestbot.records import Digest, DigestArticle, DigestStory, DigestTopic, StoryQuote

FORMATS = ("text", "markdown", "html", "json")
KINDS = ("digest", "alert", "alert_summary", "alert_update")

# (kind family, format) -> template name; alert_summary and alert_update share the alert
# templates.
_TEMPLATES: Mapping[tuple[str, str], str] = {
    ("digest", "text"): "digest.txt.j2",
    ("digest", "markdown"): "digest.md.j2",
    ("digest", "html"): "email.html.j2",
    ("digest", "email_text"): "email.txt.j2",
    ("digest", "subject"): "email_subject.txt.j2",
    ("digest", "slack"): "slack.j2",
    ("alert", "text"): "alert.txt.j2",
    ("alert", "markdown"): "alert.md.j2",
    ("alert", "html"): "alert.html.j2",
    ("alert", "email_text"): "alert.txt.j2",
    ("alert", "subject"): "alert_subject.txt.j2",
    ("alert", "slack"): "alert.slack.j2",
}


def find_default_templates() -> Path:
    """Return the folder of the shipped templates (inside the wheel, else the source tree)."""
    package = Path(digestbot.__file__).parent
    shipped = package / "templates"
    return shipped if shipped.is_dir() else package.parent / "templates"


def make_environment(templates_dir: Path | None, *, autoescape_html: bool) -> jinja2.Environment:
    """Build the Jinja2 environment: operator overrides first, then the defaults; strict."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(jinja2.FileSystemLoader(str(find_default_templates())))
    autoescape = (jinja2.select_autoescape(enabled_extensions=("html", "htm", "html.j2"),
                                           default_for_string=False, default=False)
                  if autoescape_html else False)
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update({
        "localtime": format_localtime,
        "localdate": format_localdate,
        "wrap": wrap_text,
        "nobreak": keep_together,
        "paragraphs": split_paragraphs,
        "http_url": keep_http_url,
        "slack_escape": slack_escape,
        "slack_link": slack_link,
        "md_escape": md_escape,
        "md_link": md_link,
        "plural": pluralize,
    })
    return env


def template_context(digest: Digest, kind: str = "digest") -> dict[str, Any]:
    """Return the one documented context every template receives."""
    if kind not in KINDS:
        raise DigestbotError(f"render: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    return {"digest": digest, "max_quotes": digest.max_quotes, "tz": digest.timezone,
            "kind": kind}


def template_name(kind: str, fmt: str) -> str:
    """Return the template file that renders `fmt` for a digest or an alert."""
    family = "digest" if kind == "digest" else "alert"
    try:
        return _TEMPLATES[(family, fmt)]
    except KeyError:
        raise DigestbotError(f"render: unknown format {fmt!r}") from None


def render_template(digest: Digest, name: str, *, templates_dir: Path | None = None,
                    kind: str = "digest") -> str:
    """Render one named template with the digest context; returns the text."""
    env = make_environment(templates_dir, autoescape_html=True)
    try:
        return env.get_template(name).render(template_context(digest, kind))
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or name
        line = getattr(exc, "lineno", None)
        at = f"{where}:{line}" if line else where
        raise DigestbotError(f"render: template {at}: {exc}") from exc


def render_digest(digest: Digest, fmt: str, *, templates_dir: Path | None = None,
                  kind: str = "digest") -> str:
    """Render a digest (or alert) as text, markdown, html (CSS inlined) or json."""
    if fmt == "json":
        return render_json(digest)
    if fmt not in FORMATS:
        raise DigestbotError(f"render: unknown format {fmt!r} (expected one of "
                             f"{', '.join(FORMATS)})")
    out = render_template(digest, template_name(kind, fmt), templates_dir=templates_dir, kind=kind)
    return inline_css(out) if fmt == "html" else tidy_text(out)


def slack_messages(digest: Digest, *, templates_dir: Path | None = None,
                   kind: str = "digest") -> list[dict[str, Any]]:
    """Return the Slack Block Kit payloads for a digest (see slack_blocks.slack_messages)."""
    from digestbot import slack_blocks  # slack_blocks imports this module

    return slack_blocks.slack_messages(digest, templates_dir=templates_dir, kind=kind)


def inline_css(html: str) -> str:
    """Inline <style> rules into style attributes, keeping @media rules for phones."""
    inliner = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)
    return str(inliner.inline(html))


def tidy_text(text: str) -> str:
    """Strip trailing spaces and runs of blank lines from a plain rendering; ends in a newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


# ---- filters -------------------------------------------------------------------------------

def _zone(context: jinja2.runtime.Context) -> ZoneInfo:
    return ZoneInfo(str(context.resolve_or_missing("tz") or "UTC"))


@jinja2.pass_context
def format_localtime(context: jinja2.runtime.Context, value: datetime,
                     fmt: str = "%H:%M") -> str:
    """Format an aware datetime in the template's timezone with strftime `fmt`."""
    return value.astimezone(_zone(context)).strftime(fmt)


@jinja2.pass_context
def format_localdate(context: jinja2.runtime.Context, value: datetime) -> str:
    """Format an aware datetime's date in the template's timezone as '1 Nov 2026'."""
    local = value.astimezone(_zone(context))
    return f"{local.day} {local:%b %Y}"


_NBSP = "\u00a0"


def wrap_text(text: str, width: int = 88, indent: str = "", first: str | None = None) -> str:
    """Wrap plain text paragraph by paragraph to `width`; returns the wrapped lines.

    Words joined by `nobreak` stay on one line; they come out with plain spaces."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        words = re.split(r"[ \t\r\n\f\v]+", para.strip(" \t\r\n\f\v"))
        if not any(words):
            continue
        lead = first if first is not None and not out else indent
        out.append(textwrap.fill(" ".join(words), width=width, initial_indent=lead,
                                 subsequent_indent=indent, break_long_words=False,
                                 break_on_hyphens=False).replace(_NBSP, " "))
    return "\n\n".join(out)


def keep_together(text: object) -> str:
    """Join the words with no-break spaces so `wrap` never splits them (e.g. '— Speaker')."""
    return _NBSP.join(str(text).split(" "))


def split_paragraphs(text: str) -> list[str]:
    """Split plain text on blank lines; returns paragraphs with whitespace collapsed."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def keep_http_url(url: str | None) -> str:
    """Return the URL if it is http(s) with a host, else an empty string."""
    if not url:
        return ""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def slack_escape(text: object) -> str:
    """Escape &, < and > for Slack mrkdwn so feed text cannot mention, ping or forge links."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(url: str | None, text: object) -> str:
    """Return a Slack `<url|text>` link for http(s) URLs, else the escaped text alone."""
    safe = keep_http_url(url)
    label = slack_escape(" ".join(str(text).split()) or safe)
    if not safe:
        return label
    encoded = quote(safe, safe="/:?#[]@!$&'()*+,;=%~-._")
    return f"<{slack_escape(encoded)}|{label}>"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_escape(text: object) -> str:
    """Backslash-escape markdown syntax characters in feed text."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def md_link(url: str | None, text: object) -> str:
    """Return a markdown link for http(s) URLs, else the escaped text alone."""
    safe = keep_http_url(url)
    label = md_escape(" ".join(str(text).split()) or safe)
    if not safe:
        return label
    return f"[{label}]({quote(safe, safe='/:?#[]@!$&*+,;=%~-._')})"


def pluralize(count: int, singular: str, plural: str | None = None) -> str:
    """Return '1 story' / '3 stories' style counts."""
    word = singular if count == 1 else (plural or singular + "s")
    return f"{count} {word}"


# ---- JSON ----------------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}")
    return parsed


def digest_to_dict(digest: Digest) -> dict[str, Any]:
    """Return the digest as JSON-ready data (see templates/README.md for the shape)."""
    return {
        "key": digest.key,
        "watchlist": digest.watchlist,
        "since": _iso(digest.since),
        "until": _iso(digest.until),
        "generated_at": _iso(digest.generated_at),
        "timezone": digest.timezone,
        "max_quotes": digest.max_quotes,
        "story_count": digest.story_count,
        "article_count": digest.article_count,
        "topics": [{"name": t.name, "stories": [_story_to_dict(s) for s in t.stories]}
                   for t in digest.topics],
    }


def _story_to_dict(story: DigestStory) -> dict[str, Any]:
    return {
        "id": story.id,
        "headline": story.headline,
        "url": story.url,
        "summary": story.summary,
        "summary_sentences": list(story.summary_sentences),
        "first_seen": _iso(story.first_seen),
        "is_update": story.is_update,
        "terms": list(story.terms),
        "sources": list(story.sources),
        "articles": [{"title": a.title, "url": a.url, "source": a.source,
                      "published": _iso(a.published)} for a in story.articles],
        "quotes": [{"text": q.text, "speaker": q.speaker, "urls": list(q.urls), "score": q.score}
                   for q in story.quotes],
    }


def digest_from_dict(data: Mapping[str, Any]) -> Digest:
    """Rebuild the Digest from `digest_to_dict` output; raises DigestbotError if malformed."""
    try:
        return Digest(
            watchlist=str(data["watchlist"]),
            since=_dt(data["since"]),
            until=_dt(data["until"]),
            generated_at=_dt(data["generated_at"]),
            timezone=str(data.get("timezone", "UTC")),
            max_quotes=int(data.get("max_quotes", 3)),
            topics=tuple(DigestTopic(name=str(t["name"]),
                                     stories=tuple(_story_from_dict(s) for s in t["stories"]))
                         for t in data["topics"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DigestbotError(f"digest payload: malformed ({type(exc).__name__}: {exc})") from exc


def _story_from_dict(s: Mapping[str, Any]) -> DigestStory:
    summary = str(s["summary"])
    return DigestStory(
        id=int(s["id"]),
        headline=str(s["headline"]),
        url=str(s["url"]),
        summary=summary,
        summary_sentences=tuple(str(x) for x in s.get("summary_sentences", ())),
        articles=tuple(DigestArticle(title=str(a["title"]), url=str(a["url"]),
                                     source=str(a["source"]),
                                     published=_dt(a["published"]) if a.get("published") else None)
                       for a in s["articles"]),
        quotes=tuple(StoryQuote(text=str(q["text"]), speaker=q.get("speaker"),
                                urls=tuple(str(u) for u in q.get("urls", ())),
                                score=float(q.get("score", 0.0)))
                     for q in s["quotes"]),
        terms=tuple(str(t) for t in s["terms"]),
        first_seen=_dt(s["first_seen"]),
        is_update=bool(s.get("is_update", False)),
    )


def render_json(digest: Digest) -> str:
    """Return the digest as pretty-printed JSON text."""
    return json.dumps(digest_to_dict(digest), ensure_ascii=False, indent=2) + "\n"


# ---- email ---------------------------------------------------------------------------------

def make_message_id(key: str, sender: str) -> str:
    """Return a Message-ID derived from the digest key, so every retry carries the same id."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "digestbot.invalid"
    return f"<digest.{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def build_email(digest: Digest, *, sender: str, to: Sequence[str],
                templates_dir: Path | None = None, now: datetime, kind: str = "digest",
                key: str | None = None, subject_prefix: str | None = None) -> EmailMessage:
    """Build the multipart/alternative email (text + inlined HTML) for a digest or alert."""
    subject = " ".join(render_template(digest, template_name(kind, "subject"),
                                       templates_dir=templates_dir, kind=kind).split())
    if subject_prefix:
        subject = f"{subject_prefix.strip()} {subject}"
    text = tidy_text(render_template(digest, template_name(kind, "email_text"),
                                     templates_dir=templates_dir, kind=kind))
    html = inline_css(render_template(digest, template_name(kind, "html"),
                                      templates_dir=templates_dir, kind=kind))
    address = parseaddr(sender)[1]
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(a for _, a in getaddresses(list(to)) if a) or ", ".join(to)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_message_id(key or digest.key, sender)
    msg["List-Unsubscribe"] = f"<mailto:{address}?subject=unsubscribe>"
    # No List-Unsubscribe-Post: RFC 8058 one-click needs an HTTPS URI, and we only have mailto.
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg
