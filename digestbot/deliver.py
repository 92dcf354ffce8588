"""Deliver digests and alerts exactly once through the store's outbox (I/O edge).

For each destination: claim; skip if already sent (unless force); mark "sending" before the
network call; send; mark "sent" (remote_ref = Slack ts / Message-ID / file path), "failed"
(permanent reason) or back to "pending" (transient; resumed later). One failing destination
never stops the others.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from slack_sdk import WebClient

from digestbot.config import (
    ConsoleDestination,
    Destination,
    EmailConfig,
    EmailDestination,
    FileDestination,
    SlackConfig,
    SlackDestination,
    Watchlist,
)
from digestbot.errors import DeliveryError, DigestbotError
from digestbot.records import Digest, Receipt
from digestbot.render import (
    build_email,
    digest_from_dict,
    digest_to_dict,
    render_digest,
    slack_escape,
)
from digestbot.send_email import DEFAULT_DELAYS, send_email_message
from digestbot.send_slack import (
    make_slack_client,
    post_ops_notice,
    post_slack_messages,
    post_webhook_messages,
)
from digestbot.slack_blocks import slack_messages
from digestbot.store import Store

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # a delivery still failing transiently after this many sends is given up
FILE_EXTENSIONS = {"html": "html", "text": "txt", "markdown": "md", "json": "json"}


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One thing to deliver: a digest or an alert, under its outbox key."""

    key: str
    kind: str  # "digest", "alert", "alert_summary" or "alert_update"
    digest: Digest
    # Slack destination label -> ts of the message this one replies to (alert updates).
    threads: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Senders:
    """What every send of one run needs besides the destination."""

    slack: SlackConfig | None
    email: EmailConfig | None
    templates_dir: Path | None
    now: Callable[[], datetime]
    console_stream: TextIO | None = None
    slack_client_factory: Callable[[SlackConfig], WebClient] | None = None
    retry_delays: Sequence[float] = DEFAULT_DELAYS


def deliver_digest(digest: Digest, destinations: Iterable[Destination], *, store: Store,
                   slack: SlackConfig | None, email: EmailConfig | None,
                   templates_dir: Path | None, now: Callable[[], datetime], force: bool = False,
                   console_stream: TextIO | None = None,
                   slack_client_factory: Callable[[SlackConfig], WebClient] | None = None,
                   retry_delays: Sequence[float] = DEFAULT_DELAYS) -> list[Receipt]:
    """Save the digest, then send it to each destination once; returns one Receipt each."""
    senders = Senders(slack, email, templates_dir, now, console_stream, slack_client_factory,
                      retry_delays)
    return deliver_outgoing(Outgoing(digest.key, "digest", digest), destinations, store=store,
                            senders=senders, force=force)


def deliver_outgoing(item: Outgoing, destinations: Iterable[Destination], *, store: Store,
                     senders: Senders, force: bool = False) -> list[Receipt]:
    """Save the item's payload (JSON) first, then deliver it to each destination."""
    payload = json.dumps({"kind": item.kind, **({"threads": dict(item.threads)} if item.threads
                                                else {}), **digest_to_dict(item.digest)},
                         ensure_ascii=False)
    # Alerts are filed under "alert:<watchlist>" so they never move the watchlist's
    # outbox.last_digest_until, which decides the next digest's period.
    owner = item.digest.watchlist if item.kind == "digest" else f"alert:{item.digest.watchlist}"
    store.outbox.save_digest(item.key, owner, item.digest.since, item.digest.until, payload,
                             now=senders.now())
    unique = {d.label: d for d in destinations}
    return [deliver_one(item, dest, store=store, senders=senders, force=force)
            for dest in unique.values()]


def deliver_one(item: Outgoing, dest: Destination, *, store: Store, senders: Senders,
                force: bool = False) -> Receipt:
    """Run the outbox steps for one destination; returns its Receipt (never raises)."""
    label = dest.label
    if force:
        store.outbox.reset_delivery(item.key, label, now=senders.now())
    state = store.outbox.claim_delivery(item.key, label, now=senders.now())
    if not force and state.status == "sent":
        return Receipt(item.key, label, "skipped", "already sent")
    if not force and state.status == "failed":
        return Receipt(item.key, label, "skipped",
                       f"failed earlier: {state.detail} (force to retry)")
    if not force and state.attempts >= MAX_ATTEMPTS:
        detail = f"gave up after {state.attempts} attempts: {state.detail}"
        store.outbox.mark_delivery(item.key, label, "failed", now=senders.now(), detail=detail)
        return Receipt(item.key, label, "failed", detail)
    recover = state.status == "sending" and not force
    store.outbox.mark_delivery(item.key, label, "sending", now=senders.now(),
                               detail="recovering" if recover else "")
    try:
        ref, detail = send_to(item, dest, senders=senders, recover=recover)
    except DeliveryError as err:
        if err.permanent:
            store.outbox.mark_delivery(item.key, label, "failed", now=senders.now(),
                                       detail=err.reason)
            log.error("delivery failed", extra={"digest_key": item.key, "destination": label,
                                                "reason": err.reason})
            notify_ops(item, label, err.reason, senders=senders)
            return Receipt(item.key, label, "failed", err.reason)
        return _leave_pending(item, label, err.reason, store=store, senders=senders)
    except DigestbotError as err:
        # A broken operator template fails every attempt: permanent until fixed and forced.
        store.outbox.mark_delivery(item.key, label, "failed", now=senders.now(), detail=str(err))
        return Receipt(item.key, label, "failed", str(err))
    except Exception as err:  # one failing destination never stops the others
        log.exception("delivery crashed", extra={"digest_key": item.key, "destination": label})
        return _leave_pending(item, label, f"{type(err).__name__}: {err}", store=store,
                              senders=senders)
    sent_at = senders.now()
    store.outbox.mark_delivery(item.key, label, "sent", now=sent_at, detail=detail, remote_ref=ref)
    return Receipt(item.key, label, "sent", detail, sent_at=sent_at)


def _leave_pending(item: Outgoing, label: str, reason: str, *, store: Store,
                   senders: Senders) -> Receipt:
    detail = f"will retry: {reason}"
    store.outbox.mark_delivery(item.key, label, "pending", now=senders.now(), detail=detail)
    log.warning("delivery postponed", extra={"digest_key": item.key, "destination": label,
                                             "reason": reason})
    return Receipt(item.key, label, "failed", detail)


def send_to(item: Outgoing, dest: Destination, *, senders: Senders,
            recover: bool) -> tuple[str | None, str]:
    """Send the item to one destination; returns (remote_ref, detail). Raises DeliveryError."""
    if isinstance(dest, SlackDestination):
        return send_slack(item, dest, senders=senders, recover=recover), ""
    if isinstance(dest, EmailDestination):
        if senders.email is None:
            raise DeliveryError(dest.label, "email: no email section in the config",
                                permanent=True)
        msg = build_email(item.digest, sender=senders.email.sender, to=dest.to,
                          templates_dir=senders.templates_dir, now=senders.now(), kind=item.kind,
                          key=item.key, subject_prefix=dest.subject_prefix)
        detail = send_email_message(msg, senders.email, label=dest.label,
                                    delays=senders.retry_delays)
        return str(msg["Message-ID"]), detail
    if isinstance(dest, ConsoleDestination):
        stream = senders.console_stream or sys.stdout
        stream.write(render_digest(item.digest, "text", templates_dir=senders.templates_dir,
                                   kind=item.kind))
        stream.flush()
        return None, ""
    if isinstance(dest, FileDestination):
        return str(write_file(item, dest, templates_dir=senders.templates_dir)), ""
    raise DeliveryError(str(dest), f"unknown destination type {type(dest).__name__}",
                        permanent=True)


def send_slack(item: Outgoing, dest: SlackDestination, *, senders: Senders,
               recover: bool) -> str:
    """Post the item to a Slack channel (token) or webhook; returns the first message's ts."""
    config = senders.slack
    if config is None or (config.token is None and config.webhook_url is None):
        raise DeliveryError(dest.label, "slack: no token or webhook_url configured",
                            permanent=True)
    if item.threads and config.token is None:
        raise DeliveryError(dest.label, "slack: a reply in a thread needs a token (a webhook "
                            "cannot post in threads)", permanent=True)
    messages = slack_messages(item.digest, templates_dir=senders.templates_dir, kind=item.kind)
    if config.token is None and config.webhook_url is not None:
        # A webhook cannot be searched, so a crash mid-send can repeat it (at least once).
        return post_webhook_messages(config.webhook_url.get_secret_value(), messages,
                                     label=dest.label)
    client = (senders.slack_client_factory or make_slack_client)(config)
    return post_slack_messages(client, dest.channel, messages, key=item.key, label=dest.label,
                               recover=recover, reply_to=item.threads.get(dest.label))


def notify_ops(item: Outgoing, label: str, reason: str, *, senders: Senders) -> None:
    """Tell the Slack ops channel (if configured) once that a delivery failed for good."""
    config = senders.slack
    if config is None or config.token is None or not config.ops_channel:
        return
    if label == f"slack:{config.ops_channel}":
        return
    client = (senders.slack_client_factory or make_slack_client)(config)
    post_ops_notice(client, config.ops_channel,
                    slack_escape(f"digestbot: delivery of {item.key} to {label} failed: {reason}"))


def file_name(item: Outgoing, fmt: str) -> str:
    """Return the file name: '<watchlist>-<until, local>.<ext>' (alerts name their story)."""
    digest, ext = item.digest, FILE_EXTENSIONS.get(fmt, fmt)
    local = digest.until.astimezone(ZoneInfo(digest.timezone))
    if item.kind == "alert":
        story = next((s.id for t in digest.topics for s in t.stories), 0)
        return f"{digest.watchlist}-alert-{story}.{ext}"
    if item.kind == "alert_summary":
        return f"{digest.watchlist}-alerts-{local:%Y-%m-%dT%H%M}.{ext}"
    # The time too: a watchlist with a morning and an evening digest keeps both.
    return f"{digest.watchlist}-{local:%Y-%m-%dT%H%M}.{ext}"


def write_file(item: Outgoing, dest: FileDestination, *, templates_dir: Path | None) -> Path:
    """Write the rendering into the destination folder atomically; returns the file path."""
    text = render_digest(item.digest, dest.format, templates_dir=templates_dir, kind=item.kind)
    path = Path(dest.path) / file_name(item, dest.format)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DeliveryError(dest.label, f"file: cannot write {path}: {exc.strerror or exc}",
                            permanent=False) from exc
    return path


def destination_from_label(label: str) -> Destination | None:
    """Rebuild a destination from its outbox label (settings beyond the label get defaults)."""
    kind, _, rest = label.partition(":")
    try:
        if kind == "slack" and rest:
            return SlackDestination(channel=rest)
        if kind == "email" and rest:
            return EmailDestination(to=tuple(rest.split(",")))
        if kind == "file" and rest:
            return FileDestination(path=Path(rest))
        if label == "console":
            return ConsoleDestination()
    except ValueError:
        return None
    return None


def resume_deliveries(store: Store, *, slack: SlackConfig | None, email: EmailConfig | None,
                      templates_dir: Path | None, now: Callable[[], datetime],
                      watchlists: Sequence[Watchlist] = (), console_stream: TextIO | None = None,
                      slack_client_factory: Callable[[SlackConfig], WebClient] | None = None,
                      retry_delays: Sequence[float] = DEFAULT_DELAYS) -> list[Receipt]:
    """Finish deliveries left pending or sending (e.g. by a crash); returns their Receipts.

    Destinations are looked up in `watchlists` by label, else rebuilt from the label."""
    senders = Senders(slack, email, templates_dir, now, console_stream, slack_client_factory,
                      retry_delays)
    known = {d.label: d for wl in watchlists for d in (*wl.deliver, *(wl.alert_deliver or ()))}
    receipts: list[Receipt] = []
    for state in store.outbox.unfinished_deliveries():
        key, label = state.digest_key, state.destination
        row = store.outbox.get_digest(key)
        dest = known.get(label) or destination_from_label(label)
        try:
            if row is None:
                raise DigestbotError("outbox: digest payload missing")
            if dest is None:
                raise DigestbotError(f"outbox: destination {label!r} is not understood")
            data = json.loads(row.payload)
            threads = data.get("threads")
            item = Outgoing(key, str(data.get("kind", "digest")), digest_from_dict(data),
                            {str(k): str(v) for k, v in threads.items()}
                            if isinstance(threads, dict) else {})
        except (DigestbotError, ValueError) as err:
            store.outbox.mark_delivery(key, label, "failed", now=now(), detail=str(err))
            receipts.append(Receipt(key, label, "failed", str(err)))
            continue
        receipts.append(deliver_one(item, dest, store=store, senders=senders))
    return receipts
