"""Plain-text rules shared by the stages that take text from the outside world."""

from __future__ import annotations

# Embedding, override and isolate controls: an unterminated one reorders everything after it,
# including the markup a digest wraps around feed text (links, Slack mrkdwn, HTML).
BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
