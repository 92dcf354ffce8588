"""Opt-in HTTP endpoint of the running service: GET /healthz (JSON) and GET /metrics (Prometheus).

A minimal HTTP/1.1 server on asyncio streams: one request per connection, request head capped
in size and time, every answer closes the connection. Garbage gets a 4xx, never a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from digestbot.feedlog import FeedState

log = logging.getLogger("digestbot.health")

MAX_HEAD_BYTES = 8192  # request line and headers; a health probe sends a few hundred
READ_TIMEOUT = 5.0  # seconds to receive the request head
CHECK_TIMEOUT = 10.0  # seconds the health or metrics callable may take
MAX_CONNECTIONS = 64  # connections served at once; more are closed unanswered
STALE_FACTOR = 3  # down when no poll finished for this many poll intervals

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JSON_TYPE = "application/json"

HealthFn = Callable[[], dict[str, Any]]
MetricsFn = Callable[[], str]


def assess_health(*, scheduler_running: bool, started_at: datetime,
                  last_poll_finished: datetime | None, poll_interval: timedelta | None,
                  feed_states: Iterable[FeedState], now: datetime) -> dict[str, Any]:
    """Take the service's state and the time; return the /healthz document.

    Down: scheduler stopped, or no poll finished within 3 poll intervals (counted from start
    while none has). Degraded: some feed is failing. `poll_interval` None means no feeds.
    """
    failing = [{"url": s.url,
                "since": s.failing_since.isoformat() if s.failing_since else None,
                "errors": s.error_count, "last_error": s.last_error}
               for s in feed_states if s.error_count > 0]
    stale = False
    if poll_interval is not None:
        reference = last_poll_finished or started_at
        stale = now - reference > STALE_FACTOR * poll_interval
    if not scheduler_running or stale:
        status = "down"
    elif failing:
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, "scheduler_running": scheduler_running,
            "last_poll_finished": last_poll_finished.isoformat() if last_poll_finished else None,
            "poll_stale": stale, "failing_feeds": failing,
            "uptime_seconds": round(max(0.0, (now - started_at).total_seconds()), 3)}


async def start_health_server(host: str, port: int, *, health: HealthFn, metrics: MetricsFn,
                              read_timeout: float = READ_TIMEOUT) -> asyncio.Server:
    """Take an address and the two callables; return the listening server (port 0: any free)."""
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if slots.locked():
            writer.close()
            return
        async with slots:
            try:
                await serve_connection(reader, writer, health=health, metrics=metrics,
                                       read_timeout=read_timeout)
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                pass  # the client went away; nothing to answer
            except Exception:
                log.exception("health endpoint: request failed")
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()

    return await asyncio.start_server(on_connect, host, port, limit=MAX_HEAD_BYTES)


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                           health: HealthFn, metrics: MetricsFn,
                           read_timeout: float = READ_TIMEOUT) -> None:
    """Take one connection; read one request head and write one answer."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), read_timeout)
    except TimeoutError:
        await write_answer(writer, 408, b"request timeout\n", "text/plain")
        return
    except asyncio.LimitOverrunError:
        await write_answer(writer, 431, b"request head too large\n", "text/plain")
        return
    except asyncio.IncompleteReadError:
        return  # closed before the head ended
    request = parse_request_head(head)
    if request is None:
        await write_answer(writer, 400, b"bad request\n", "text/plain")
        return
    method, path = request
    code, body, content_type = await answer_request(method, path, health=health, metrics=metrics)
    await write_answer(writer, code, b"" if method == "HEAD" else body, content_type,
                       length=len(body))


def parse_request_head(head: bytes) -> tuple[str, str] | None:
    """Take the bytes up to the blank line; return (method, path without query), or None."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return None
    parts = text.split("\r\n", 1)[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0].isalpha():
        return None
    method, target = parts[0], parts[1]
    if not target.startswith("/"):
        return None
    return method.upper(), target.split("?", 1)[0].split("#", 1)[0]


async def answer_request(method: str, path: str, *, health: HealthFn,
                         metrics: MetricsFn) -> tuple[int, bytes, str]:
    """Take a method and path; return (status code, body, content type)."""
    if path not in ("/healthz", "/metrics"):
        return 404, b"not found: try /healthz or /metrics\n", "text/plain"
    if method not in ("GET", "HEAD"):
        return 405, b"method not allowed\n", "text/plain"
    if path == "/metrics":
        try:
            text = await asyncio.wait_for(asyncio.to_thread(metrics), CHECK_TIMEOUT)
        except Exception as err:
            log.warning("health endpoint: metrics failed", extra={"reason": repr(err)})
            return 500, f"metrics failed: {err!r}\n".encode(), "text/plain"
        return 200, text.encode("utf-8"), METRICS_TYPE
    try:
        # The callable may read the store; a thread keeps a slow database off the event loop.
        doc = await asyncio.wait_for(asyncio.to_thread(health), CHECK_TIMEOUT)
    except Exception as err:
        log.warning("health endpoint: health check failed", extra={"reason": repr(err)})
        doc = {"status": "down", "error": f"health check failed: {err!r}"}
    code = 503 if doc.get("status") == "down" else 200
    return code, json.dumps(doc, default=str).encode("utf-8") + b"\n", JSON_TYPE


async def write_answer(writer: asyncio.StreamWriter, code: int, body: bytes, content_type: str,
                       *, length: int | None = None) -> None:
    """Take a status, body and type; write a complete HTTP/1.1 answer that closes the connection."""
    try:
        reason = HTTPStatus(code).phrase
    except ValueError:
        reason = "Unknown"
    head = (f"HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n")
    writer.write(head.encode("ascii") + body)
    await writer.drain()
