"""Post rendered Slack messages with slack-sdk (I/O): Web API with threads, or a webhook.

Every post carries message metadata naming the digest key and part, so a delivery left in
state "sending" by a crash can look in the channel for what already arrived instead of
posting it twice.
"""

from __future__ import annotations

import http.client
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.webhook import WebhookClient

from digestbot.config import SlackConfig
from digestbot.errors import DeliveryError

log = logging.getLogger(__name__)

EVENT_TYPE = "digestbot_digest"
# Slack answers these when trying again later can succeed; every other error is permanent.
TRANSIENT_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error",
                              "service_unavailable", "request_timeout", "team_added_to_org"})
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")
MAX_REPLY_PAGES = 100  # a thread is searched this far (Slack may page as few as 15 messages)


def make_retry_handlers(*, retries: int = 2, backoff: float = 0.5) -> list[RetryHandler]:
    """Return slack-sdk retry handlers: 429 honours Retry-After; 5xx and resets back off."""
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff)
    return [RateLimitErrorRetryHandler(max_retry_count=retries),
            ServerErrorRetryHandler(max_retry_count=retries, interval_calculator=interval),
            ConnectionErrorRetryHandler(max_retry_count=retries, interval_calculator=interval)]


def make_slack_client(config: SlackConfig) -> WebClient:
    """Return a WebClient for the configured token and base_url, with retry handlers."""
    token = config.token.get_secret_value() if config.token is not None else None
    return WebClient(token=token, base_url=config.base_url, timeout=30,
                     retry_handlers=make_retry_handlers())


def slack_failure(label: str, exc: Exception) -> DeliveryError:
    """Turn a slack-sdk or network exception into a DeliveryError, permanent unless transient."""
    if isinstance(exc, SlackApiError):
        data, status = exc.response.data, exc.response.status_code
        code = data.get("error") if isinstance(data, dict) else None
        transient = status == 429 or status >= 500 or code in TRANSIENT_ERRORS
        return DeliveryError(label, f"slack: {code or f'HTTP {status}'}", permanent=not transient)
    if isinstance(exc, URLError | OSError | http.client.HTTPException):
        return DeliveryError(label, f"slack: connection failed ({exc})", permanent=False)
    return DeliveryError(label, f"slack: {exc}", permanent=True)


def post_slack_messages(client: WebClient, channel: str, messages: Sequence[dict[str, Any]], *,
                        key: str, label: str, recover: bool = False,
                        reply_to: str | None = None) -> str:
    """Post the messages (follow-ups in the thread of the first, or all of them in the thread
    of `reply_to`); returns the first's ts.

    With `recover`, parts of this digest already in the channel are found and not posted again.
    """
    thread_ts: str | None = reply_to
    posted: dict[int, str] = {}
    first_ts: str | None = None
    if recover:
        found = find_posted_parts(client, channel, key, thread=reply_to)
        if found is not None:
            first_ts, posted = found
            thread_ts = reply_to or first_ts
            log.warning("slack delivery resumed", extra={"digest_key": key, "destination": label,
                                                         "parts_found": len(posted)})
    try:
        for part, message in enumerate(messages):
            if part in posted:
                continue
            response = client.chat_postMessage(
                channel=channel, text=message["text"], blocks=message["blocks"],
                thread_ts=thread_ts if part > 0 or reply_to else None, unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": EVENT_TYPE,
                          "event_payload": {"digest_key": key, "part": part}})
            if part == 0:
                first_ts = str(response["ts"])
                thread_ts = reply_to or first_ts
    except (SlackClientError, OSError, http.client.HTTPException) as exc:
        raise slack_failure(label, exc) from exc
    return first_ts or ""


def resolve_channel_id(client: WebClient, channel: str) -> str | None:
    """Return the channel id for '#name' (conversations.list), or the id itself."""
    name = channel.lstrip("#")
    if _CHANNEL_ID.match(name):
        return name
    cursor: str | None = None
    while True:
        page = client.conversations_list(types="public_channel,private_channel", limit=200,
                                         exclude_archived=True, cursor=cursor)
        for item in page.get("channels") or []:
            if item.get("name") == name:
                return str(item["id"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return None


def _part_of(message: dict[str, Any], key: str) -> int | None:
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    if meta.get("event_type") != EVENT_TYPE or payload.get("digest_key") != key:
        return None
    return int(payload.get("part", 0))


def find_posted_parts(client: WebClient, channel: str, key: str, *,
                      thread: str | None = None) -> tuple[str, dict[int, str]] | None:
    """Look in the channel (or in the thread of `thread`) for parts of this digest already
    posted: (first ts, {part: ts})."""
    try:
        channel_id = resolve_channel_id(client, channel)
        if channel_id is None:
            log.warning("slack recovery: channel not listed; posting again",
                        extra={"channel": channel, "digest_key": key})
            return None
        ts = thread
        if ts is None:
            history = client.conversations_history(channel=channel_id,
                                                   include_all_metadata=True, limit=50)
            first = next((m for m in history.get("messages") or []
                          if _part_of(m, key) == 0), None)
            if first is None:
                return None
            ts = str(first["ts"])
        parts: dict[int, str] = {} if thread else {0: ts}
        cursor: str | None = None
        for _page in range(MAX_REPLY_PAGES):
            # Oldest first: in a long alert thread this digest's parts are on the last pages.
            replies = client.conversations_replies(channel=channel_id, ts=ts, cursor=cursor,
                                                   include_all_metadata=True, limit=200)
            for message in replies.get("messages") or []:
                part = _part_of(message, key)
                if part is not None:
                    parts.setdefault(part, str(message["ts"]))
            cursor = (replies.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        if 0 not in parts:
            return None
        return parts[0], parts
    except (SlackClientError, OSError, http.client.HTTPException) as exc:
        # Without history access we cannot tell; posting again beats losing the digest.
        log.warning("slack recovery: history unavailable; posting again",
                    extra={"channel": channel, "digest_key": key, "reason": str(exc)})
        return None


def post_webhook_messages(url: str, messages: Sequence[dict[str, Any]], *, label: str) -> str:
    """Post each message to an incoming webhook (no threads there); returns ''."""
    hook = WebhookClient(url, timeout=30, retry_handlers=make_retry_handlers())
    for message in messages:
        try:
            response = hook.send(text=message["text"], blocks=message["blocks"],
                                 unfurl_links=False, unfurl_media=False)
        except (SlackClientError, OSError, http.client.HTTPException) as exc:
            raise slack_failure(label, exc) from exc
        if response.status_code != 200:
            transient = response.status_code == 429 or response.status_code >= 500
            reason = (response.body or f"HTTP {response.status_code}").strip()
            raise DeliveryError(label, f"slack webhook: {reason}", permanent=not transient)
    return ""


def post_ops_notice(client: WebClient, channel: str, text: str) -> None:
    """Post a plain failure notice to the ops channel; failures here are only logged."""
    try:
        client.chat_postMessage(channel=channel, text=text, unfurl_links=False,
                                unfurl_media=False)
    except (SlackClientError, OSError, http.client.HTTPException) as exc:
        log.warning("slack ops notice failed", extra={"channel": channel, "reason": str(exc)})
