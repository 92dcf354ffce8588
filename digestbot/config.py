"""The operator's config: digestbot.yaml plus one YAML file per watchlist, validated.

`load_config(path)` reads the YAML with line numbers, expands `${VAR}` / `${VAR:-default}`,
validates with pydantic and turns every mistake into one `ConfigError` line naming file,
line and key. Secrets are `SecretStr` and never appear in a repr or an error message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from email.utils import parseaddr
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from digestbot import __version__
from digestbot.configfile import Source, read_source, reject_keys, suggest, validate_model
from digestbot.errors import ConfigError, QueryError
from digestbot.match import Query, parse_query

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

FILE_FORMATS = ("html", "text", "markdown", "json")  # render.FORMATS
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _blank_to_none(value: object) -> object:
    """Return None for an empty or blank string (`${VAR:-}`), else the value unchanged."""
    return None if isinstance(value, str) and not value.strip() else value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
OptionalText = Annotated[Text | None, BeforeValidator(_blank_to_none)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_to_none)]


def _check_timezone(value: str) -> str:
    """Return value when it names an IANA time zone, else raise ValueError."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone '{value}' (use an IANA name such as Europe/London)"
                         ) from None
    return value


def _check_http_url(value: str) -> str:
    """Return value stripped when it is an http(s) URL with a host, else raise ValueError."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{value}' is not an http:// or https:// URL")
    return value


def _check_address(value: str) -> str:
    """Return value when it holds an email address ("a@b" or "Name <a@b>"), else raise."""
    if "@" not in parseaddr(value)[1]:
        raise ValueError(f"'{value}' is not an email address")
    return value.strip()


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


class FetchSettings(_Model):
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


class FeedConfig(_Model):
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


class SlackConfig(_Model):
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


class EmailConfig(_Model):
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
        return _check_address(value)

    @model_validator(mode="after")
    def _check_tls(self) -> EmailConfig:
        if self.tls and self.starttls and "starttls" in self.model_fields_set:
            raise ValueError("set either tls (implicit TLS) or starttls, not both")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self


class PollSettings(_Model):
    """Bounds on how often feeds are polled, in minutes, whatever the feeds' own hints say."""

    min_every: float = Field(default=1, gt=0)
    max_every: float = Field(default=1440, gt=0)
    max_backoff: float = Field(default=360, gt=0)  # failing feeds wait at most this long
    jitter: float = Field(default=0.1, ge=0, le=0.5)  # +/- share of each wait, spreads load


class HealthConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)


class ClusterSettings(_Model):
    window_days: int = Field(default=7, ge=1)


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_with_day_names(cron: str) -> str:
    """Return cron with numeric weekdays (cron's 0/7 = Sunday) written as names.

    APScheduler 3 counts weekdays from Monday = 0, so `from_crontab("0 8 * * 1-5")` would fire
    Tuesday to Saturday; names mean the same to both.
    """
    fields = cron.split()
    if len(fields) != 5 or not any(c.isdigit() for c in fields[4]):
        return cron
    days: list[str] = []
    for part in fields[4].split(","):
        body, _, step = part.partition("/")
        try:
            low, _, high = ("0-6" if body == "*" else body).partition("-")
            first, last = int(low), int(high or (6 if step else low))
            stride = int(step or 1)
        except ValueError:
            raise ValueError(f"cannot mix weekday names and numbers in '{fields[4]}'") from None
        if not 0 <= first <= last <= 7 or stride < 1:
            raise ValueError(f"weekday '{part}' is outside 0-7 (0 and 7 are Sunday)")
        days += [_DAY_NAMES[d % 7] for d in range(first, last + 1, stride)]
    return " ".join([*fields[:4], ",".join(dict.fromkeys(days))])


class DigestSettings(_Model):
    schedule: str = "07:30"  # HH:MM daily in the watchlist's timezone, or 5-field cron
    max_stories: int = Field(default=10, ge=1)
    max_quotes: int = Field(default=3, ge=0)
    summary_sentences: int = Field(default=3, ge=1)
    summary_words: int | None = Field(default=None, ge=5)  # a hard cap on summary length

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        value = " ".join(value.split())
        if hhmm := _HHMM.fullmatch(value):
            return f"{int(hhmm[1]):02d}:{hhmm[2]}"
        try:
            CronTrigger.from_crontab(_cron_with_day_names(value), timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"invalid schedule '{value}': expected HH:MM or a 5-field cron "
                             f"expression like '0 8 * * 1-5' ({exc})") from None
        return value

    @property
    def cron(self) -> str:
        """Return the schedule as 5-field cron with weekday names, for CronTrigger.from_crontab."""
        if hhmm := _HHMM.fullmatch(self.schedule):
            return f"{int(hhmm[2])} {int(hhmm[1])} * * *"
        return _cron_with_day_names(self.schedule)


class SlackDestination(_Model):
    kind: Literal["slack"] = "slack"
    channel: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\S+$")]

    @property
    def label(self) -> str:
        return f"slack:{self.channel}"


class EmailDestination(_Model):
    kind: Literal["email"] = "email"
    to: tuple[str, ...] = Field(min_length=1)
    subject_prefix: OptionalText = None

    @field_validator("to", mode="before")
    @classmethod
    def _accept_one(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_address(v) for v in value)

    @property
    def label(self) -> str:
        return "email:" + ",".join(self.to)


class ConsoleDestination(_Model):
    kind: Literal["console"] = "console"

    @property
    def label(self) -> str:
        return "console"


class FileDestination(_Model):
    kind: Literal["file"] = "file"
    path: Path  # a folder; resolved against the watchlist file's folder
    format: str = "html"

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get("base_dir")
        value = value.expanduser()
        return Path(os.path.normpath(base / value)) if base and not value.is_absolute() else value

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        if value not in FILE_FORMATS:
            raise ValueError(f"unknown format '{value}'{suggest(value, FILE_FORMATS)}; "
                             f"expected one of {', '.join(FILE_FORMATS)}")
        return value

    @property
    def label(self) -> str:
        return f"file:{self.path}"


_SHORTHAND = {"slack": "channel", "email": "to", "file": "path"}
_DESTINATION_KINDS = ("slack", "email", "console", "file")


def _normalize_destination(item: object) -> object:
    """Return a `{kind: ..., **settings}` dict for a one-key destination mapping from YAML."""
    if isinstance(item, BaseModel) or (isinstance(item, dict) and "kind" in item):
        return item
    if item == "console":
        return {"kind": "console"}
    if not isinstance(item, dict) or len(item) != 1:
        raise ValueError("a destination is one key such as 'slack: {channel: \"#news\"}', "
                         "'email: {to: [desk@example.org]}', 'console: {}' or 'file: {path: dir}'")
    ((kind, value),) = item.items()
    if kind not in _DESTINATION_KINDS:
        raise ValueError(f"unknown destination '{kind}'{suggest(str(kind), _DESTINATION_KINDS)}"
                         f"; expected one of {', '.join(_DESTINATION_KINDS)}")
    if value is None:
        value = {}
    elif not isinstance(value, dict):
        if kind not in _SHORTHAND:
            raise ValueError(f"{kind} takes no settings; write '{kind}: {{}}'")
        value = {_SHORTHAND[kind]: value}
    return {"kind": kind, **value}


Destination = SlackDestination | EmailDestination | ConsoleDestination | FileDestination
DestinationItem = Annotated[
    Union[SlackDestination, EmailDestination, ConsoleDestination, FileDestination],  # noqa: UP007
    Field(discriminator="kind"),
    BeforeValidator(_normalize_destination),
]


@cache
def _parse_cached(text: str) -> Query:
    return parse_query(text)


class Topic(_Model):
    name: Text
    query: str
    alert: bool = False  # also send an alert as soon as a new article matches

    @field_validator("query")
    @classmethod
    def _check_query(cls, value: str) -> str:
        try:
            _parse_cached(value)
        except QueryError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def parsed(self) -> Query:
        """Return the parsed query (parsed once per distinct text)."""
        return _parse_cached(self.query)


class Watchlist(_Model):
    name: str
    file: Path
    timezone: str | None = None  # load_config fills in Config.timezone when absent
    digest: DigestSettings = DigestSettings()
    deliver: tuple[DestinationItem, ...] = Field(min_length=1)
    alert_deliver: tuple[DestinationItem, ...] | None = None  # None: alerts go to `deliver`
    alert_limit: int = Field(default=5, ge=0)  # alerts per hour for this watchlist
    feeds: tuple[str, ...] | None = None  # feed URLs (names are resolved by load_config)
    topics: tuple[Topic, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str | None) -> str | None:
        return value if value is None else _check_timezone(value)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _SLUG.fullmatch(value):
            raise ValueError(f"watchlist name '{value}' may only hold letters, digits, "
                             "'.', '_' and '-' (it names the digest and its outbox)")
        return value

    @field_validator("topics")
    @classmethod
    def _unique_topics(cls, value: tuple[Topic, ...]) -> tuple[Topic, ...]:
        seen: dict[str, int] = {}
        for i, topic in enumerate(value):
            if topic.name in seen:
                raise ValueError(f"duplicate topic name '{topic.name}' "
                                 f"(topics[{seen[topic.name]}] and topics[{i}])")
            seen[topic.name] = i
        return value

    @property
    def alert_destinations(self) -> tuple[Destination, ...]:
        """Return where alerts go: alert_deliver, or deliver when it is not set."""
        return self.deliver if self.alert_deliver is None else self.alert_deliver

    def tz(self, config: Config) -> ZoneInfo:
        """Return the watchlist's time zone, falling back to the config's."""
        return ZoneInfo(self.timezone or config.timezone)

    def includes_feed(self, url: str) -> bool:
        """Return whether articles from the feed at url belong to this watchlist."""
        return self.feeds is None or url in self.feeds


def _config_folder(info: ValidationInfo) -> Path:
    path = info.data.get("path")
    return path.parent if isinstance(path, Path) else Path.cwd()


class Config(_Model):
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
        return _check_timezone(value)

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
    return (f"daily at {digest.schedule}" if _HHMM.fullmatch(digest.schedule)
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
