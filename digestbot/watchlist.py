"""A watchlist file's schema: its topics, digest schedule and where digests and alerts go.

`config.load_config` reads every file of the watchlists folder into a `Watchlist`, then resolves
its feed names and fills in its time zone from the config.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Union
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from digestbot.configfile import Model, OptionalText, Text, check_address, check_timezone, suggest
from digestbot.errors import QueryError
from digestbot.match import Query, parse_query

if TYPE_CHECKING:
    from digestbot.config import Config

FILE_FORMATS = ("html", "text", "markdown", "json")  # render.FORMATS
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


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


class DigestSettings(Model):
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
    def is_daily(self) -> bool:
        """Return whether the schedule is a daily HH:MM time rather than cron."""
        return _HHMM.fullmatch(self.schedule) is not None

    @property
    def cron(self) -> str:
        """Return the schedule as 5-field cron with weekday names, for CronTrigger.from_crontab."""
        if hhmm := _HHMM.fullmatch(self.schedule):
            return f"{int(hhmm[2])} {int(hhmm[1])} * * *"
        return _cron_with_day_names(self.schedule)


class SlackDestination(Model):
    kind: Literal["slack"] = "slack"
    channel: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\S+$")]

    @property
    def label(self) -> str:
        return f"slack:{self.channel}"


class EmailDestination(Model):
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
        return tuple(check_address(v) for v in value)

    @property
    def label(self) -> str:
        return "email:" + ",".join(self.to)


class ConsoleDestination(Model):
    kind: Literal["console"] = "console"

    @property
    def label(self) -> str:
        return "console"


class FileDestination(Model):
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


class Topic(Model):
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


class Watchlist(Model):
    name: str
    file: Path
    timezone: str | None = None  # load_config fills in Config.timezone when absent
    digest: DigestSettings = DigestSettings()
    deliver: tuple[DestinationItem, ...] = Field(min_length=1)
    # None: alerts go to `deliver`
    alert_deliver: tuple[DestinationItem, ...] | None = Field(default=None, min_length=1)
    alert_limit: int = Field(default=5, ge=0)  # alerts per hour for this watchlist
    feeds: tuple[str, ...] | None = None  # feed URLs (names are resolved by load_config)
    topics: tuple[Topic, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str | None) -> str | None:
        return value if value is None else check_timezone(value)

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
