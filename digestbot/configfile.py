"""Reading config YAML with line numbers, `${VAR}` expansion, and one-line error messages.

`read_source` keeps where every key path sits in the file; `validate_model` turns pydantic's
errors into a `ConfigError` naming file, line and key, with environment values scrubbed.
`Model` and the field types below are shared by the config file's and the watchlists' schemas.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SecretStr,
    StringConstraints,
    ValidationError,
)

from digestbot.errors import ConfigError

SENSITIVE_KEYS = frozenset({"token", "password", "webhook_url", "database"})

Loc = tuple[str | int, ...]
_VARIABLE = re.compile(r"\$\$\{|\$\{([^}]*)(\}|$)")
_VARIABLE_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_STR_TAG = "tag:yaml.org,2002:str"
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


@dataclass
class Source:
    """One YAML file: its data after `${VAR}` expansion and where each key path sits."""

    display: str  # the file name as errors show it
    lines: dict[Loc, int] = field(default_factory=dict)
    env_paths: set[Loc] = field(default_factory=set)  # values that came from the environment
    secrets: set[str] = field(default_factory=set)
    data: Any = None

    def line_of(self, loc: Loc) -> int | None:
        """Return the line of the deepest node of loc that exists in the file."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None

    def error(self, message: str, loc: Loc = ()) -> ConfigError:
        """Return a ConfigError at loc in this file, with environment values scrubbed."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) >= 3:
                message = message.replace(secret, "***")
        return ConfigError(message, file=self.display, line=self.line_of(loc),
                           key=dotted(loc) or None)


def dotted(loc: Iterable[str | int]) -> str:
    """Return a loc tuple as a YAML key path such as `topics[0].query`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def suggest(word: str, candidates: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the candidate closest to word, or ""."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _expand_env(value: str, loc: Loc, source: Source, env: Mapping[str, str]) -> str:
    """Return value with `${VAR}` and `${VAR:-default}` replaced from env (`$${` is a `${`)."""
    if "${" not in value:
        return value

    def replace(found: re.Match[str]) -> str:
        if found[0] == "$${":
            return "${"
        body = _VARIABLE_BODY.fullmatch(found[1])
        if body is None or not found[2]:
            raise source.error(f"malformed variable reference '${{{found[1]}'; "
                               "write ${NAME} or ${NAME:-default}", loc)
        name, default = body[1], body[2]
        got = env.get(name)
        if got is None or (got == "" and default is not None):
            if default is None:
                raise source.error(f"environment variable {name} is not set "
                                   f"(write ${{{name}:-default}} to give a default)", loc)
            return default
        source.env_paths.add(loc)
        source.secrets.add(got)
        return got

    return _VARIABLE.sub(replace, value)


def _build_data(node: yaml.Node, loc: Loc, source: Source, env: Mapping[str, str],
                loader: yaml.SafeLoader) -> Any:
    """Return the Python value of a YAML node, recording the line of every key path."""
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError("a key must be a plain name", file=source.display, line=line,
                                  key=dotted(loc) or None)
            key = key_node.value  # as written: `on:` stays "on", not YAML 1.1's True
            if key == "<<":
                raise ConfigError("YAML merge keys ('<<') are not supported; repeat the keys",
                                  file=source.display, line=line, key=dotted(loc) or None)
            if key in result:
                raise ConfigError(f"duplicate key '{key}'", file=source.display, line=line,
                                  key=dotted((*loc, key)))
            source.lines[(*loc, key)] = line
            result[key] = _build_data(value_node, (*loc, key), source, env, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            source.lines[(*loc, i)] = item.start_mark.line + 1
            items.append(_build_data(item, (*loc, i), source, env, loader))
        return items
    if node.tag == _STR_TAG:
        return _expand_env(node.value, loc, source, env)
    if node.tag in _NUMBER_TAGS and ":" in node.value:
        return node.value  # YAML 1.1 reads an unquoted 07:30 as the base-60 number 450
    return loader.construct_object(node, deep=True)


def _describe_yaml_error(exc: yaml.MarkedYAMLError, text: str) -> str:
    """Return a one-line description of a YAML syntax error, with a hint where one helps."""
    message = "invalid YAML: " + " ".join(
        part for part in (exc.problem, f"({exc.context})" if exc.context else None) if part)
    mark = exc.problem_mark
    line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
    if "\t" in line:
        message += " (indent with spaces, not tabs)"
    elif re.search(r":\s+\*", line):
        message += " (quote values that start with '*', e.g. schedule: \"0 8 * * *\")"
    elif exc.problem == "mapping values are not allowed here":
        message += " (quote a value that holds ': ' or ends with ':')"
    return message


def _compose(text: str) -> yaml.Node | None:
    """Take YAML text and return its node tree, with libyaml's speed where it is built in."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            node: yaml.Node | None = yaml.compose(text, Loader=fast)
            return node
        except yaml.YAMLError:
            pass  # the pure-Python parser words its errors as our hints expect
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    return node


def read_source(path: Path, display: str, env: Mapping[str, str]) -> Source:
    """Return the YAML mapping in the file at path, raising ConfigError for any mistake."""
    source = Source(display=display)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=display) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a file", file=display) from None
    except UnicodeDecodeError:
        raise ConfigError("file is not UTF-8 text", file=display) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", file=display) from None
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError(_describe_yaml_error(exc, text), file=display, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=display) from None
    if node is None:
        raise ConfigError("file is empty", file=display)
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError("expected a mapping of keys at the top level", file=display,
                          line=node.start_mark.line + 1)
    source.lines[()] = node.start_mark.line + 1
    source.data = _build_data(node, (), source, env, yaml.SafeLoader(""))
    return source


# --- turning pydantic errors into one line ------------------------------------------------

def _unwrap(annotation: Any) -> list[Any]:
    """Return the member types of an Annotated / Union / Optional annotation."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _models_at(model: type[BaseModel], loc: Loc) -> list[type[BaseModel]]:
    """Return the models that can sit at loc below model (for unknown-key suggestions)."""
    current: list[Any] = [model]
    for part in loc:
        following: list[Any] = []
        for kind in (t for a in current for t in _unwrap(a)):
            if isinstance(kind, type) and issubclass(kind, BaseModel) and isinstance(part, str):
                if part in kind.model_fields:
                    following.append(kind.model_fields[part].annotation)
                elif getattr(kind.model_fields.get("kind"), "default", None) == part:
                    following.append(kind)  # a destination's tag, e.g. deliver[0].slack
            elif get_origin(kind) is tuple and isinstance(part, int):
                following.append(get_args(kind)[0])
        current = following
    return [t for a in current for t in _unwrap(a)
            if isinstance(t, type) and issubclass(t, BaseModel)]


def _key_names(models: list[type[BaseModel]]) -> list[str]:
    """Return the keys an operator may write for these models."""
    hidden = {"kind", "file", "watchlists"} | (
        {"path"} if any(m.__name__ == "Config" for m in models) else set())
    return [name for m in models for name in m.model_fields if name not in hidden]


def _describe_error(error: Any, loc: Loc, model: type[BaseModel], source: Source) -> str:
    """Return one pydantic error as an operator-facing message."""
    kind, message = error["type"], str(error["msg"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        names = _key_names(_models_at(model, loc[:-1]))
        return f"unknown key '{loc[-1]}'{suggest(str(loc[-1]), names)}"
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "expected a mapping of keys"
    if kind in ("tuple_type", "list_type"):
        return "expected a list"
    if kind == "too_short":
        return f"needs at least {error.get('ctx', {}).get('min_length', 1)} item(s)"
    value = error.get("input")
    sensitive = loc in source.env_paths or not SENSITIVE_KEYS.isdisjoint(map(str, loc))
    if not sensitive and isinstance(value, str | int | float | bool):
        message += f" (got {value!r:.60})"
    return message


def validate_model(model: type[BaseModel], data: dict[str, Any], source: Source,
              context: dict[str, Any]) -> Any:
    """Return model validated from data, raising one ConfigError line on failure."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_url=False):
            # drop pydantic's own markers such as 'function-before[...]' from the path
            errors.append((tuple(p for p in error["loc"] if isinstance(p, int) or "[" not in p),
                           error))
        # A list whose only item is invalid is also "too short": name the item's own problem.
        inner = [(loc, error) for loc, error in errors
                 if not any(len(other) > len(loc) and other[:len(loc)] == loc
                            for other, _ in errors)]
        # an unknown key first: a misspelt key also shows up as a missing one
        found = [(source.line_of(loc) or 0, error["type"] != "extra_forbidden", loc, error)
                 for loc, error in inner]
        *_, loc, error = min(found, key=lambda item: item[:2])
        message = _describe_error(error, loc, model, source)
        if len(found) > 1:
            message += f" (and {len(found) - 1} more problem{'s' if len(found) > 2 else ''})"
        raise source.error(message, loc) from None


def reject_keys(source: Source, keys: Iterable[str], model: type[BaseModel]) -> None:
    """Raise ConfigError when the file sets a field that load_config fills in itself."""
    for key in keys:
        if key in source.data:
            names = _key_names([model])
            raise source.error(f"unknown key '{key}'{suggest(key, names)}", (key,))


# --- shared schema parts ------------------------------------------------------------------

def blank_to_none(value: object) -> object:
    """Return None for an empty or blank string (`${VAR:-}`), else the value unchanged."""
    return None if isinstance(value, str) and not value.strip() else value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
OptionalText = Annotated[Text | None, BeforeValidator(blank_to_none)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(blank_to_none)]


def check_timezone(value: str) -> str:
    """Return value when it names an IANA time zone, else raise ValueError."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone '{value}' (use an IANA name such as Europe/London)"
                         ) from None
    return value


def check_address(value: str) -> str:
    """Return value when it holds an email address ("a@b" or "Name <a@b>"), else raise."""
    if "@" not in parseaddr(value)[1]:
        raise ValueError(f"'{value}' is not an email address")
    return value.strip()


class Model(BaseModel):
    """A config section: frozen, unknown keys refused, numbers accepted where text is."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)
