"""The operator's config: digestbot.yaml plus one YAML file per watchlist, validated.

`load_config(path)` reads the YAML with line numbers, expands `${VAR}` / `${VAR:-default}`,
validates with pydantic and turns every mistake into one `ConfigError` line naming file,
line and key. Secrets are `SecretStr` and never appear in a repr or an error message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from digestbot import __version__
from digestbot.configfile import (
    Model,
    OptionalSecret,
    OptionalText,
    Source,
    Text,
    check_address,
    check_timezone,
    read_source,
    reject_keys,
    suggest,
    validate_model,
)
from digestbot.errors import ConfigError
from digestbot.watchlist import (
    ConsoleDestination,
    Destination,
    DigestSettings,
    EmailDestination,
    FileDestination,
    SlackDestination,
    Topic,
    Watchlist,
)

__all__ = [
    "ClusterSettings",
    "Config",
    "ConsoleDestination",
    "Destination",
    "DigestSettings",
    "EmailConfig",
    "EmailDestination",
    "FeedConfig",
    "FetchSettings",
    "FileDestination",
    "HealthConfig",
    "SlackConfig",
    "SlackDestination",
    "Topic",
    "Watchlist",
    "load_config",
    "summarize_config",
]


def _check_http_url(value: str) -> str:
    """Return value stripped when it is an http(s) URL with a host, else raise ValueError."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{value}' is not an http:// or https:// URL")
    return value


class FetchSettings(Model):
    full_text: bool = True
    allow_private: bool = False  # fetch article links on loopback/private/link-local hosts
    timeout: float = Field(default=20.0, gt=0)  # seconds per network operation
    deadline: float = Field(default=60.0, gt=0)  # seconds for a whole request, body included
    max_bytes: int = Field(default=10_000_000, ge=1024)
    max_redirects: int = Field(default=5, ge=0)
    user_agent: Text = f"digestbot/{__version__} (+https://github.com/digestbot/digestbot)"
    concurrency: int = Field(default=64, ge=1)  # requests in flight; per_host bounds each site
    per_host: int = Field(default=4, ge=1)
    # Processes that parse feeds and extract text; None: one per core (at most 8); 0 or 1:
    # threads in the main process.
    workers: int | None = Field(default=None, ge=0)


class FeedConfig(Model):
    url: str
    name: OptionalText = None
    poll_every: int | None = Field(default=None, ge=1)  # minutes; None means Config.poll_every
    full_text: bool | None = None  # None means fetch.full_text

    @model_validator(mode="before")
    @classmethod
    def _accept_bare_url(cls, data: object) -> object:
        return {"url": data} if isinstance(data, str) else data

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _check_http_url(value)

    @property
    def display_name(self) -> str:
        """Return the feed's name, or its host where it has none."""
        return self.name or urlsplit(self.url).hostname or self.url


class SlackConfig(Model):
    token: OptionalSecret = None
    base_url: str = "https://slack.com/api/"
    webhook_url: OptionalSecret = None
    ops_channel: OptionalText = None

    @field_validator("base_url")
    @classmethod
    def _end_with_slash(cls, value: str) -> str:
        value = _check_http_url(value)
        return value if value.endswith("/") else value + "/"  # slack_sdk appends method names

    @model_validator(mode="after")
    def _need_credentials(self) -> SlackConfig:
        if self.token is None and self.webhook_url is None:
            raise ValueError("slack needs a token or a webhook_url")
        return self


class EmailConfig(Model):
    host: Text
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True  # ignored when tls is true
    tls: bool = False  # implicit TLS from the first byte, usually port 465
    username: OptionalText = None
    password: OptionalSecret = None
    sender: str
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, value: str) -> str:
        return check_address(value)

    @model_validator(mode="after")
    def _check_tls(self) -> EmailConfig:
        if self.tls and self.starttls and "starttls" in self.model_fields_set:
            raise ValueError("set either tls (implicit TLS) or starttls, not both")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self


class PollSettings(Model):
    """Bounds on how often feeds are polled, in minutes, whatever the feeds' own hints say."""

    min_every: float = Field(default=1, gt=0)
    max_every: float = Field(default=1440, gt=0)
    max_backoff: float = Field(default=360, gt=0)  # failing feeds wait at most this long
    jitter: float = Field(default=0.1, ge=0, le=0.5)  # +/- share of each wait, spreads load


class HealthConfig(Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)


class ClusterSettings(Model):
    window_days: int = Field(default=7, ge=1)


def _config_folder(info: ValidationInfo) -> Path:
    path = info.data.get("path")
    return path.parent if isinstance(path, Path) else Path.cwd()


class Config(Model):
    path: Path  # the config file, absolute
    timezone: str = "UTC"
    # repr=False: a PostgreSQL URL can hold a password
    # validate_default: the defaults are relative paths resolved against the config's folder too.
    database: str = Field(default="sqlite:///digestbot.db", repr=False, validate_default=True)
    fetch: FetchSettings = FetchSettings()
    feeds: tuple[FeedConfig, ...] = ()
    slack: SlackConfig | None = None
    email: EmailConfig | None = None
    watchlists_dir: Path = Field(default=Path("watchlists"), validate_default=True)
    templates_dir: Path | None = None
    poll_every: int = Field(default=30, ge=1)  # minutes between polls of a feed
    polling: PollSettings = PollSettings()
    health: HealthConfig | None = None
    clustering: ClusterSettings = ClusterSettings()
    watchlists: tuple[Watchlist, ...] = ()

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: Path) -> Path:
        return Path(os.path.abspath(value))

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("database")
    @classmethod
    def _resolve_database(cls, value: str, info: ValidationInfo) -> str:
        try:
            url = make_url(value.strip())
        except ArgumentError:
            raise ValueError("not a database URL; expected e.g. sqlite:///digestbot.db or "
                             "postgresql+psycopg://user@host/dbname") from None
        name = url.database or ""
        if (url.get_backend_name() != "sqlite" or name in ("", ":memory:")
                or name.startswith("file:") or Path(name).is_absolute()):
            return value.strip()
        absolute = os.path.normpath(_config_folder(info) / name)
        return url.set(database=absolute).render_as_string(hide_password=False)

    @field_validator("watchlists_dir", "templates_dir")
    @classmethod
    def _resolve_folder(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        return Path(os.path.normpath(_config_folder(info) / value.expanduser()))

    @field_validator("feeds")
    @classmethod
    def _unique_feeds(cls, value: tuple[FeedConfig, ...]) -> tuple[FeedConfig, ...]:
        for what in ("url", "name"):
            seen: dict[str, int] = {}
            for i, feed in enumerate(value):
                key = feed.url if what == "url" else feed.name
                if key is not None and key in seen:
                    raise ValueError(f"duplicate feed {what} '{key}' "
                                     f"(feeds[{seen[key]}] and feeds[{i}])")
                if key is not None:
                    seen[key] = i
        return value

    def feed(self, url: str) -> FeedConfig | None:
        """Return the configured feed with this URL, or None."""
        return next((f for f in self.feeds if f.url == url), None)

    def watchlist(self, name: str) -> Watchlist:
        """Return the watchlist called name, raising ConfigError listing the known names."""
        for watchlist in self.watchlists:
            if watchlist.name == name:
                return watchlist
        known = ", ".join(w.name for w in self.watchlists) or "none"
        hint = suggest(name, [w.name for w in self.watchlists])
        raise ConfigError(f"unknown watchlist '{name}'{hint} (known: {known})",
                          file=str(self.path))


# --- loading ------------------------------------------------------------------------------

def _check_watchlist(watchlist: Watchlist, config: Config, source: Source) -> Watchlist:
    """Return watchlist with feed names resolved to URLs and its timezone filled in."""
    config_file = config.path.name
    for key in ("deliver", "alert_deliver"):
        for i, dest in enumerate(getattr(watchlist, key) or ()):
            sections = {"slack": config.slack, "email": config.email}
            if dest.kind in sections and sections[dest.kind] is None:
                raise source.error(f"a {dest.kind} destination needs a '{dest.kind}:' section "
                                   f"in {config_file}", (key, i, dest.kind))
    update: dict[str, Any] = {"timezone": watchlist.timezone or config.timezone}
    if watchlist.feeds is not None:
        urls = []
        for i, wanted in enumerate(watchlist.feeds):
            by_name = (f for f in config.feeds if (f.name or "").casefold() == wanted.casefold())
            feed = config.feed(wanted) or next(by_name, None)
            if feed is None:
                known = [f.url for f in config.feeds] + [f.name for f in config.feeds if f.name]
                raise source.error(f"unknown feed '{wanted}'{suggest(wanted, known)}; "
                                   f"feeds are listed in {config_file}", ("feeds", i))
            urls.append(feed.url)
        update["feeds"] = tuple(dict.fromkeys(urls))
    return watchlist.model_copy(update=update)


def _load_watchlists(config: Config, source: Source, env: Mapping[str, str]
                     ) -> tuple[Watchlist, ...]:
    """Return every watchlist in config.watchlists_dir, raising ConfigError for any mistake."""
    folder = config.watchlists_dir
    written = Path(str(source.data.get("watchlists_dir", "watchlists"))).expanduser()
    shown = folder if written.is_absolute() else Path(source.display).parent / written
    if not folder.is_dir():
        raise source.error(f"watchlists folder not found: {folder}", ("watchlists_dir",))
    files = sorted(p for p in folder.iterdir()
                   if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file())
    if not files:
        raise source.error(f"no watchlists: {folder} has no *.yaml files", ("watchlists_dir",))
    shown_by_name: dict[str, str] = {}
    watchlists = []
    for file in files:
        wsource = read_source(file, str(shown / file.name), env)
        reject_keys(wsource, ("file",), Watchlist)
        data = {"name": file.stem, **wsource.data, "file": file}
        watchlist = _check_watchlist(
            validate_model(Watchlist, data, wsource, {"base_dir": file.parent}), config, wsource)
        if watchlist.name in shown_by_name:
            raise wsource.error(f"duplicate watchlist name '{watchlist.name}' "
                                f"(also in {shown_by_name[watchlist.name]})", ("name",))
        shown_by_name[watchlist.name] = wsource.display
        watchlists.append(watchlist)
    return tuple(watchlists)


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Return the validated config and its watchlists, raising a one-line ConfigError."""
    env = os.environ if env is None else env
    source = read_source(Path(path), str(path), env)
    reject_keys(source, ("path", "watchlists"), Config)
    config: Config = validate_model(Config, {**source.data, "path": Path(path)}, source, {})
    if config.templates_dir is not None and not config.templates_dir.is_dir():
        raise source.error(f"templates folder not found: {config.templates_dir}",
                           ("templates_dir",))
    return config.model_copy(update={"watchlists": _load_watchlists(config, source, env)})


def _show_database(url: str) -> str:
    """Return the database URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(invalid URL)"


def _show_schedule(digest: DigestSettings) -> str:
    return (f"daily at {digest.schedule}" if digest.is_daily
            else f"cron '{digest.schedule}'")


def summarize_config(config: Config) -> str:
    """Return the multi-line summary `digestbot check` prints; it holds no secrets."""
    out = [f"config {config.path}",
           f"timezone {config.timezone}; database {_show_database(config.database)}",
           f"{len(config.feeds)} feed(s), polled every {config.poll_every} min:"]
    for feed in config.feeds:
        every = f" (every {feed.poll_every} min)" if feed.poll_every else ""
        out.append(f"  {feed.display_name}: {feed.url}{every}")
    out.append(f"{len(config.watchlists)} watchlist(s):")
    for wl in config.watchlists:
        out.append(f"  {wl.name} ({wl.file.name}): {_show_schedule(wl.digest)} "
                   f"{wl.timezone or config.timezone}, up to {wl.digest.max_stories} stories, "
                   f"{wl.digest.max_quotes} quotes each")
        out.append("    deliver: " + ", ".join(d.label for d in wl.deliver))
        if any(t.alert for t in wl.topics):
            out.append("    alerts: " + ", ".join(d.label for d in wl.alert_destinations)
                       + f" (at most {wl.alert_limit} per hour)")
        if wl.feeds is not None:
            out.append("    feeds: " + ", ".join(wl.feeds))
        for topic in wl.topics:
            flag = " [alert]" if topic.alert else ""
            out.append(f"    topic '{topic.name}'{flag}: {topic.query}")
    return "\n".join(out)
