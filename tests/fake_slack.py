"""A fake Slack Web API on 127.0.0.1 for tests: chat.postMessage, conversations.*, auth.test.

slack-sdk reaches it with `base_url=fake.base_url`. It records every request (parsed body and
headers), keeps posted messages with their metadata per channel, and can be told to answer
429 with Retry-After, 500, or `{"ok": false, "error": ...}` for the next N calls.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class SlackRequest:
    """One request the fake received."""

    method: str
    api: str  # e.g. "chat.postMessage"
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() when it arrived


@dataclass
class Failure:
    """A canned failure answered for the next `count` calls of `api` (or any api if None)."""

    count: int
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    api: str | None = None


@dataclass
class FakeSlack:
    """State of the fake workspace: channels by name, messages by channel id, requests seen."""

    channels: dict[str, str] = field(default_factory=lambda: {"desk": "C0DESK", "ops": "C0OPS",
                                                              "alerts": "C0ALERTS"})
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[SlackRequest] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    token: str = "xoxb-test-token"
    replies_page: int | None = None  # most messages one conversations.replies page returns
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clock: int = 1_700_000_000_000
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def fail_next(self, count: int, *, status: int = 200, error: str | None = None,
                  retry_after: int | None = None, api: str | None = "chat.postMessage") -> None:
        """Answer the next `count` calls of `api` with this status/error instead of success."""
        with self._lock:
            self.failures.append(Failure(count, status, error, retry_after, api))

    def calls(self, api: str) -> list[SlackRequest]:
        """Return the recorded requests of one API method, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.api == api]

    def all_messages(self) -> list[dict[str, Any]]:
        """Return every stored message of every channel (replies included)."""
        with self._lock:
            return [m for msgs in self.messages.values() for m in msgs]

    def messages_with_key(self, key: str) -> list[dict[str, Any]]:
        """Return stored messages whose metadata names this digest key."""
        return [m for m in self.all_messages()
                if (m.get("metadata") or {}).get("event_payload", {}).get("digest_key") == key]

    # ---- request handling ----------------------------------------------------------------

    def handle(self, method: str, api: str, headers: dict[str, str],
               body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Answer one API call: (status, extra headers, JSON body)."""
        with self._lock:
            self.requests.append(SlackRequest(method, api, headers, body, time.monotonic()))
            failure = next((f for f in self.failures
                            if f.count > 0 and f.api in (None, api)), None)
            if failure is not None:
                failure.count -= 1
                extra = ({"Retry-After": str(failure.retry_after)}
                         if failure.retry_after is not None else {})
                if failure.status == 429:
                    return 429, extra, {"ok": False, "error": "ratelimited"}
                if failure.status >= 500:
                    return failure.status, extra, {"ok": False, "error": "internal_error"}
                return 200, extra, {"ok": False, "error": failure.error or "fatal_error"}
            if headers.get("authorization", "") != f"Bearer {self.token}":
                return 200, {}, {"ok": False, "error": "invalid_auth"}
            answer = {"auth.test": self._auth_test, "chat.postMessage": self._post,
                      "conversations.history": self._history,
                      "conversations.replies": self._replies,
                      "conversations.list": self._list}.get(api)
            if answer is None:
                return 404, {}, {"ok": False, "error": "unknown_method"}
            return 200, {}, answer(body)

    def _channel_id(self, name: str) -> str | None:
        name = name.lstrip("#")
        if name in self.channels.values():
            return name
        return self.channels.get(name)

    def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user_id": "U0BOT", "team_id": "T0TEAM", "bot_id": "B0BOT"}

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(str(body.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        self._clock += 100
        ts = f"{self._clock // 1_000_000}.{self._clock % 1_000_000:06d}"
        message = {"type": "message", "ts": ts, "text": body.get("text", ""),
                   "blocks": body.get("blocks", []), "metadata": body.get("metadata"),
                   "thread_ts": body.get("thread_ts"), "channel": channel}
        self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _history(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = str(body.get("channel", ""))
        if channel not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        limit = int(body.get("limit", 100))
        top = [m for m in self.messages.get(channel, []) if not m["thread_ts"]]
        with_meta = str(body.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [dict(m) if with_meta else {k: v for k, v in m.items() if k != "metadata"}
                 for m in reversed(top)][:limit]
        return {"ok": True, "messages": found, "has_more": False}

    def _replies(self, body: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(body.get("channel", "")), str(body.get("ts", ""))
        msgs = self.messages.get(channel, [])
        thread = [m for m in msgs if m["ts"] == ts or m["thread_ts"] == ts]
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        with_meta = str(body.get("include_all_metadata", "")).lower() in ("1", "true")
        # Oldest first, in pages of `limit` (at most `replies_page`, as Slack caps some apps).
        size = min(int(body.get("limit", 1000)), self.replies_page or 1000)
        start = int(body.get("cursor") or 0)
        page = thread[start:start + size]
        more = start + size < len(thread)
        return {"ok": True, "has_more": more,
                "response_metadata": {"next_cursor": str(start + size) if more else ""},
                "messages": [dict(m) if with_meta
                             else {k: v for k, v in m.items() if k != "metadata"}
                             for m in page]}

    def _list(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "channels": [{"id": cid, "name": name}
                                         for name, cid in self.channels.items()],
                "response_metadata": {"next_cursor": ""}}


class FakeSlackServer:
    """Runs a FakeSlack behind a ThreadingHTTPServer on 127.0.0.1 (also serves a webhook)."""

    def __init__(self, fake: FakeSlack | None = None) -> None:
        self.fake = fake or FakeSlack()
        self.webhook_posts: list[dict[str, Any]] = []
        fake_ref, hooks = self.fake, self.webhook_posts

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                body: dict[str, Any] = dict(parse_qsl(parts.query))
                if raw:
                    if "json" in headers.get("content-type", ""):
                        body.update(json.loads(raw))
                    else:
                        body.update(parse_qsl(raw.decode("utf-8")))
                if parts.path.startswith("/hooks/"):
                    status, extra, payload = self._hook(body)
                else:
                    api = parts.path.rsplit("/", 1)[-1]
                    status, extra, answer = fake_ref.handle(self.command, api, headers, body)
                    payload = json.dumps(answer).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _hook(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
                with fake_ref._lock:
                    failure = next((f for f in fake_ref.failures
                                    if f.count > 0 and f.api == "webhook"), None)
                    if failure is not None:
                        failure.count -= 1
                        return failure.status, {}, (failure.error or "error").encode()
                    hooks.append(body)
                return 200, {}, b"ok"

            do_GET = _serve
            do_POST = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.fake.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.fake.port}/hooks/T0/B0/secret"

    def start(self) -> FakeSlackServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
