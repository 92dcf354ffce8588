"""Build Slack Block Kit messages for a digest or alert from the slack templates (pure).

Slack limits: 50 blocks per message, 3000 characters per section text, 150 per header. A digest
that does not fit continues in follow-up messages (posted in the thread of the first); a story
too long for one section is split over several. Nothing is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from digestbot.errors import DigestbotError
from digestbot.records import Digest
from digestbot.render import make_environment, template_context, template_name

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FALLBACK = 3000
# Keeps one message readable and far below Slack's msg_too_long size.
MAX_MESSAGE_CHARS = 12000

Block = dict[str, Any]


def slack_messages(digest: Digest, *, templates_dir: Path | None = None,
                   kind: str = "digest") -> list[dict[str, Any]]:
    """Return the Slack payloads `{"text", "blocks"}` for a digest (or alert), in posting order."""
    env = make_environment(templates_dir, autoescape_html=True)
    name = template_name(kind, "slack")
    try:
        module = env.get_template(name).make_module(template_context(digest, kind))
        if kind == "digest":
            return _digest_messages(digest, module)
        return _alert_messages(module)
    except jinja2.TemplateError as exc:
        raise DigestbotError(f"render: template {name}: {exc}") from exc


def _call(module: Any, macro: str, *args: Any) -> str:
    return str(getattr(module, macro)(*args)).strip()


def _digest_messages(digest: Digest, module: Any) -> list[dict[str, Any]]:
    groups: list[list[Block]] = []
    for topic in digest.topics:
        heading = section(_call(module, "topic", topic))
        first = True
        for story in topic.stories:
            text = _call(module, "story", topic, story)
            blocks = [section(chunk) for chunk in split_mrkdwn(text)]
            groups.append(([{"type": "divider"}, heading] if first else []) + blocks)
            first = False
    head = [header(_call(module, "header")), context(_call(module, "context"))]
    pages = pack_blocks(groups, first_reserved=len(head), later_reserved=1)
    total = len(pages)
    messages = []
    for i, page in enumerate(pages):
        part = i + 1
        if i == 0:
            blocks, text = head + page, _call(module, "fallback")
        else:
            blocks = [context(_call(module, "continued", part, total)), *page]
            text = _call(module, "fallback_continued", part, total)
        messages.append({"text": cap_text(text, MAX_FALLBACK), "blocks": blocks})
    return messages


def _alert_messages(module: Any) -> list[dict[str, Any]]:
    groups = [[section(chunk)] for chunk in split_mrkdwn(_call(module, "body"))]
    pages = pack_blocks(groups, first_reserved=1, later_reserved=0)
    ctx = context(_call(module, "context"))
    text = cap_text(_call(module, "fallback"), MAX_FALLBACK)
    messages = []
    for i, page in enumerate(pages):
        blocks = [*page, ctx] if i == len(pages) - 1 else page
        messages.append({"text": text, "blocks": blocks})
    return messages


def header(text: str) -> Block:
    """Return a header block; text longer than Slack's 150 characters ends with '…'."""
    return {"type": "header", "text": {"type": "plain_text", "text": cap_text(text, MAX_HEADER),
                                       "emoji": True}}


def section(text: str) -> Block:
    """Return a mrkdwn section block (the caller keeps text within 3000 characters)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> Block:
    """Return a context block with one mrkdwn element."""
    return {"type": "context",
            "elements": [{"type": "mrkdwn", "text": cap_text(text, MAX_SECTION)}]}


def cap_text(text: str, limit: int) -> str:
    """Return text cut to `limit` characters with a visible '…' when it was longer."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _block_chars(block: Block) -> int:
    text = block.get("text")
    return len(text["text"]) if isinstance(text, dict) else 0


def pack_blocks(groups: list[list[Block]], *, first_reserved: int,
                later_reserved: int) -> list[list[Block]]:
    """Pack block groups into pages of <= 50 blocks, keeping a group together where it fits."""
    pages: list[list[Block]] = [[]]
    room, chars = MAX_BLOCKS - first_reserved, 0
    for group in groups:
        size, weight = len(group), sum(_block_chars(b) for b in group)
        if pages[-1] and (size > room or chars + weight > MAX_MESSAGE_CHARS):
            pages.append([])
            room, chars = MAX_BLOCKS - later_reserved, 0
        for block in group:
            # A group longer than a whole page spills over; dividers never open a page.
            if room == 0 or (pages[-1] and chars + _block_chars(block) > MAX_MESSAGE_CHARS):
                pages.append([])
                room, chars = MAX_BLOCKS - later_reserved, 0
            if block["type"] == "divider" and not pages[-1]:
                continue
            pages[-1].append(block)
            room -= 1
            chars += _block_chars(block)
    return [p for p in pages if p] or [[]]


def split_mrkdwn(text: str, limit: int = MAX_SECTION) -> list[str]:
    """Split mrkdwn into chunks <= limit at line ends or spaces, never inside a <link>."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        pieces = _split_line(line, limit)
        for piece in pieces:
            candidate = f"{current}\n{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                chunks.append(current)
                current = piece
    if current.strip():
        chunks.append(current)
    return [c.strip("\n") for c in chunks if c.strip()]


def _split_line(line: str, limit: int) -> list[str]:
    """Split one over-long line at spaces outside <...> links; quote lines keep their '>'."""
    prefix = ">" if line.startswith(">") else ""
    pieces: list[str] = []
    while len(line) > limit:
        cut = _last_safe_space(line, limit)
        pieces.append(line[:cut].rstrip())
        line = prefix + line[cut:].lstrip()
    pieces.append(line)
    return pieces


def _last_safe_space(line: str, limit: int) -> int:
    inside, best = False, -1
    for i, ch in enumerate(line[:limit]):
        if ch == "<":
            inside = True
        elif ch == ">" and inside:
            inside = False
        elif ch == " " and not inside and i > 0:
            best = i
    if best > 0:
        return best
    # No space outside a link: cut before an entity rather than through it.
    cut = limit
    amp = line.rfind("&", max(0, limit - 6), limit)
    if amp > 0 and ";" not in line[amp:limit]:
        cut = amp
    return cut
