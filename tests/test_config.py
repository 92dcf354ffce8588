"""Config loading: the example config, env expansion, path resolution, one-line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from digestbot.config import (
    ConsoleDestination,
    EmailDestination,
    FileDestination,
    SlackDestination,
    load_config,
    summarize_config,
)
from digestbot.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_ENV = {"SLACK_BOT_TOKEN": "xoxb-fictional-4411", "SMTP_USER": "digest-bot",
               "SMTP_PASSWORD": "s3cret-Pa55word"}

MAIN = """\
timezone: Europe/London
database: sqlite:///state/digestbot.db
feeds:
  - url: https://news.example.org/world.rss
    name: Example World
  - url: https://wire.example.net/markets.atom
slack:
  token: ${SLACK_BOT_TOKEN:-xoxb-default}
email:
  host: smtp.example.org
  sender: Digest Bot <digest@example.org>
watchlists_dir: watchlists
"""

DESK = """\
name: vellmark-desk
digest:
  schedule: "07:30"
deliver:
  - slack: {channel: "#vellmark"}
  - email: {to: [desk@example.org, night@example.org]}
topics:
  - name: Vellmark troops
    query: 'Vellmark AND (troop* OR border)'
  - name: Lindholm talks
    query: '"peace talks" Lindholm'
    alert: true
"""


def write_config(tmp_path: Path, main: str = MAIN, watchlists: dict[str, str] | None = None,
                 ) -> Path:
    """Write digestbot.yaml and watchlists/*.yaml under tmp_path and return the config path."""
    folder = tmp_path / "watchlists"
    folder.mkdir(exist_ok=True)
    for name, text in (watchlists if watchlists is not None else {"desk.yaml": DESK}).items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    path = tmp_path / "digestbot.yaml"
    path.write_text(textwrap.dedent(main), encoding="utf-8")
    return path


def config_error(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {})
    return caught.value


def test_example_config_loads() -> None:
    config = load_config(REPO / "config" / "digestbot.yaml", env=EXAMPLE_ENV)
    assert config.timezone == "Europe/London"
    assert config.database == f"sqlite:///{REPO / 'config' / 'digestbot.db'}"
    assert config.fetch.full_text is True and config.fetch.allow_private is False
    assert [f.display_name for f in config.feeds] == ["Example World"]
    assert config.slack is not None and config.slack.token is not None
    assert config.slack.token.get_secret_value() == "xoxb-fictional-4411"
    assert config.email is not None and config.email.username == "digest-bot"
    assert config.watchlists_dir == REPO / "config" / "watchlists"
    ukraine = config.watchlist("ukraine-desk")
    assert ukraine.digest.schedule == "07:30" and ukraine.digest.cron == "30 7 * * *"
    assert [d.label for d in ukraine.deliver] == ["slack:#ukraine-desk", "email:desk@example.org"]
    assert ukraine.topics[0].parsed.text.startswith("Ukraine AND")
    assert ukraine.timezone == "Europe/London"
    markets = config.watchlist("markets-desk")
    assert markets.digest.cron == "0 8 * * mon,tue,wed,thu,fri"
    assert markets.deliver[0] == ConsoleDestination()
    assert markets.deliver[1] == FileDestination(path=REPO / "config" / "watchlists" / "digests")
    assert markets.deliver[1].label == f"file:{REPO / 'config' / 'watchlists' / 'digests'}"


def test_loaded_watchlist_fields(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path), env={})
    desk = config.watchlist("vellmark-desk")
    assert desk.file == tmp_path / "watchlists" / "desk.yaml"
    assert desk.deliver == (SlackDestination(channel="#vellmark"),
                            EmailDestination(to=("desk@example.org", "night@example.org")))
    assert desk.deliver[1].label == "email:desk@example.org,night@example.org"
    assert desk.alert_destinations == desk.deliver
    assert [t.alert for t in desk.topics] == [False, True]
    assert desk.digest.max_stories == 10 and desk.alert_limit == 5
    wire = config.feed("https://wire.example.net/markets.atom")
    assert wire is not None and wire.display_name == "wire.example.net"
    assert config.feed("https://nowhere.example.org/") is None
    with pytest.raises(ConfigError, match=r"unknown watchlist 'vellmark-dsk' \(did you mean "
                                          r"'vellmark-desk'\?\) \(known: vellmark-desk\)"):
        config.watchlist("vellmark-dsk")


def test_env_expansion_default_and_escape(tmp_path: Path) -> None:
    main = MAIN.replace("host: smtp.example.org", "host: ${SMTP_HOST:-mail.example.org}\n"
                        "  port: ${SMTP_PORT}\n  username: ${SMTP_USER:-}")
    desk = DESK.replace('"#vellmark"', '"#${DESK_CHANNEL:-vellmark}-$${literal}"')
    path = write_config(tmp_path, main, {"desk.yaml": desk})
    config = load_config(path, env={"SMTP_PORT": "2525", "SLACK_BOT_TOKEN": "xoxb-from-env"})
    assert config.email is not None
    assert config.email.host == "mail.example.org" and config.email.port == 2525
    assert config.email.username is None  # ${SMTP_USER:-} is empty: not set
    assert config.slack is not None and config.slack.token is not None
    assert config.slack.token.get_secret_value() == "xoxb-from-env"
    assert config.watchlists[0].deliver[0] == SlackDestination(channel="#vellmark-${literal}")
    # a variable set to "" takes its default
    config = load_config(path, env={"SMTP_PORT": "25", "SMTP_HOST": ""})
    assert config.email is not None and config.email.host == "mail.example.org"


def test_missing_env_var(tmp_path: Path) -> None:
    main = MAIN.replace("sender: Digest", "password: ${SMTP_PASSWORD}\n  sender: Digest")
    error = config_error(write_config(tmp_path, main))
    assert (error.file, error.line, error.key) == (str(tmp_path / "digestbot.yaml"), 11,
                                                   "email.password")
    assert str(error) == (f"{tmp_path / 'digestbot.yaml'}:11: email.password: environment "
                          "variable SMTP_PASSWORD is not set (write ${SMTP_PASSWORD:-default} "
                          "to give a default)")


def test_database_paths(tmp_path: Path) -> None:
    cases = {
        "sqlite:///state/digestbot.db": f"sqlite:///{tmp_path / 'state' / 'digestbot.db'}",
        "sqlite:///../up.db": f"sqlite:///{tmp_path.parent / 'up.db'}",
        "'sqlite:///:memory:'": "sqlite:///:memory:",
        "sqlite:////var/lib/digestbot/db.sqlite": "sqlite:////var/lib/digestbot/db.sqlite",
        "postgresql+psycopg://digest@db.example.org/digest":
            "postgresql+psycopg://digest@db.example.org/digest",
    }
    for written, resolved in cases.items():
        path = write_config(tmp_path, MAIN.replace("sqlite:///state/digestbot.db", written))
        assert load_config(path, env={}).database == resolved
    path = write_config(tmp_path, MAIN.replace("sqlite:///state/digestbot.db", "sqlite:///:memory:"))
    assert str(config_error(path)).endswith(
        "digestbot.yaml:2: invalid YAML: mapping values are not allowed here "
        "(quote a value that holds ': ' or ends with ':')")


def test_relative_config_path_resolves_against_its_folder(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    write_config(tmp_path / "conf")
    monkeypatch.chdir(tmp_path)
    config = load_config("conf/digestbot.yaml", env={})
    assert config.path == tmp_path / "conf" / "digestbot.yaml"
    assert config.database == f"sqlite:///{tmp_path / 'conf' / 'state' / 'digestbot.db'}"
    assert config.watchlists_dir == tmp_path / "conf" / "watchlists"
    # errors in watchlists name the file the way the operator wrote the config path
    (tmp_path / "conf" / "watchlists" / "desk.yaml").write_text(
        DESK.replace("alert: true", "alert: maybe"), encoding="utf-8")
    error = config_error(Path("conf/digestbot.yaml"))
    assert str(error).startswith("conf/watchlists/desk.yaml:12: topics[1].alert: ")


def test_unquoted_hhmm_is_not_base_60(tmp_path: Path) -> None:
    path = write_config(tmp_path, watchlists={"desk.yaml": DESK.replace('"07:30"', "7:05")})
    assert load_config(path, env={}).watchlists[0].digest.schedule == "07:05"


def test_feed_restriction_by_name_or_url(tmp_path: Path) -> None:
    desk = DESK + "feeds: [example world, 'https://wire.example.net/markets.atom']\n"
    config = load_config(write_config(tmp_path, watchlists={"desk.yaml": desk}), env={})
    desk_list = config.watchlists[0]
    assert desk_list.feeds == ("https://news.example.org/world.rss",
                               "https://wire.example.net/markets.atom")
    assert desk_list.includes_feed("https://wire.example.net/markets.atom")
    assert not desk_list.includes_feed("https://other.example.com/feed")


def desk_error(tmp_path: Path, desk: str, main: str = MAIN) -> str:
    """Return str(ConfigError) for a watchlist file, with the tmp folder shortened."""
    error = config_error(write_config(tmp_path, main, {"desk.yaml": desk}))
    assert "Traceback" not in str(error) and "\n" not in str(error)
    return str(error).replace(str(tmp_path), "TMP")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("Vellmark AND (troop* OR border)", "Vellmark AND (troop* OR border",
         "TMP/watchlists/desk.yaml:9: topics[0].query: unbalanced parenthesis (at character 14)"),
        ('  schedule: "07:30"', '  shedule: "07:30"',
         "TMP/watchlists/desk.yaml:3: digest.shedule: unknown key 'shedule' "
         "(did you mean 'schedule'?)"),
        ('  schedule: "07:30"', '  schedule: "25:00"',
         "TMP/watchlists/desk.yaml:3: digest.schedule: invalid schedule '25:00': expected "
         "HH:MM or a 5-field cron expression like '0 8 * * 1-5' (Wrong number of fields; "
         "got 1, expected 5)"),
        ('  schedule: "07:30"', '  schedule: "0 8 * *"',
         "TMP/watchlists/desk.yaml:3: digest.schedule: invalid schedule '0 8 * *': expected "
         "HH:MM or a 5-field cron expression like '0 8 * * 1-5' (Wrong number of fields; "
         "got 4, expected 5)"),
        ('  schedule: "07:30"', '  schedule: "07:30"\n  max_stories: lots',
         "TMP/watchlists/desk.yaml:4: digest.max_stories: Input should be a valid integer, "
         "unable to parse string as an integer (got 'lots')"),
        ("    query: '\"peace talks\" Lindholm'\n", "",
         "TMP/watchlists/desk.yaml:10: topics[1].query: required key is missing"),
        ('  - slack: {channel: "#vellmark"}', '  - slak: {channel: "#vellmark"}',
         "TMP/watchlists/desk.yaml:5: deliver[0]: unknown destination 'slak' "
         "(did you mean 'slack'?); expected one of slack, email, console, file"),
        ('  - slack: {channel: "#vellmark"}', '  - slack: {chanel: "#vellmark"}',
         "TMP/watchlists/desk.yaml:5: deliver[0].slack.chanel: unknown key 'chanel' "
         "(did you mean 'channel'?) (and 1 more problem)"),
        ("name: vellmark-desk", "name: vellmark-desk\ntimezone: Europe/Atlantis",
         "TMP/watchlists/desk.yaml:2: timezone: unknown timezone 'Europe/Atlantis' "
         "(use an IANA name such as Europe/London)"),
        ("name: vellmark-desk", "name: vellmark-desk\nfeeds: [Example Wrld]",
         "TMP/watchlists/desk.yaml:2: feeds[0]: unknown feed 'Example Wrld' "
         "(did you mean 'Example World'?); feeds are listed in digestbot.yaml"),
        ("  - name: Lindholm talks", "  - name: Vellmark troops",
         "TMP/watchlists/desk.yaml:7: topics: duplicate topic name 'Vellmark troops' "
         "(topics[0] and topics[1])"),
        ("name: vellmark-desk", "name: vellmark-desk\nname: other",
         "TMP/watchlists/desk.yaml:2: name: duplicate key 'name'"),
        ("name: vellmark-desk", "name: vellmark-desk\nalert_deliver: []",
         "TMP/watchlists/desk.yaml:2: alert_deliver: needs at least 1 item(s)"),
    ],
)
def test_watchlist_errors(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in DESK
    assert desk_error(tmp_path, DESK.replace(old, new)) == expected


def test_yaml_syntax_error(tmp_path: Path) -> None:
    desk = DESK.replace("deliver:\n", "deliver:\n  bad: [unclosed\n")
    message = desk_error(tmp_path, desk)
    assert message.startswith("TMP/watchlists/desk.yaml:")
    assert "invalid YAML" in message
    unquoted_star = desk_error(tmp_path, DESK.replace('"07:30"', "* 8 * * *"))
    assert unquoted_star.startswith("TMP/watchlists/desk.yaml:3: invalid YAML: ")
    assert "quote values that start with '*'" in unquoted_star


def test_destination_needs_its_section(tmp_path: Path) -> None:
    main = MAIN.replace("slack:\n  token: ${SLACK_BOT_TOKEN:-xoxb-default}\n", "")
    assert desk_error(tmp_path, DESK, main) == (
        "TMP/watchlists/desk.yaml:5: deliver[0].slack: a slack destination needs a 'slack:' "
        "section in digestbot.yaml")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("timezone: Europe/London", "timezone: Mars/Olympus",
         "TMP/digestbot.yaml:1: timezone: unknown timezone 'Mars/Olympus' "
         "(use an IANA name such as Europe/London)"),
        ("timezone: Europe/London", "timezone: Europe/London\nwatchlist_dir: lists",
         "TMP/digestbot.yaml:2: watchlist_dir: unknown key 'watchlist_dir' "
         "(did you mean 'watchlists_dir'?)"),
        ("timezone: Europe/London", "timezone: Europe/London\nwatchlists: []",
         "TMP/digestbot.yaml:2: watchlists: unknown key 'watchlists' "
         "(did you mean 'watchlists_dir'?)"),
        ("  - url: https://wire.example.net/markets.atom", "  - url: ftp://wire.example.net/x",
         "TMP/digestbot.yaml:6: feeds[1].url: 'ftp://wire.example.net/x' is not an http:// or "
         "https:// URL"),
        ("  host: smtp.example.org\n", "",
         "TMP/digestbot.yaml:9: email.host: required key is missing"),
        ("database: sqlite:///state/digestbot.db", "database: not a url",
         "TMP/digestbot.yaml:2: database: not a database URL; expected e.g. "
         "sqlite:///digestbot.db or postgresql+psycopg://user@host/dbname"),
        ("watchlists_dir: watchlists", "watchlists_dir: missing-folder",
         "TMP/digestbot.yaml:12: watchlists_dir: watchlists folder not found: "
         "TMP/missing-folder"),
        ("  token: ${SLACK_BOT_TOKEN:-xoxb-default}", "  token: ''",
         "TMP/digestbot.yaml:7: slack: slack needs a token or a webhook_url"),
        ("timezone: Europe/London", "timezone: Europe/London\n\tpoll_every: 5",
         "TMP/digestbot.yaml:2: invalid YAML: found character '\\t' that cannot start any "
         "token (while scanning for the next token) (indent with spaces, not tabs)"),
    ],
)
def test_main_config_errors(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in MAIN
    error = config_error(write_config(tmp_path, MAIN.replace(old, new)))
    assert str(error).replace(str(tmp_path), "TMP") == expected


def test_missing_config_file(tmp_path: Path) -> None:
    error = config_error(tmp_path / "nowhere.yaml")
    assert str(error) == f"{tmp_path / 'nowhere.yaml'}: file not found"
    assert error.line is None


def test_empty_watchlists_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path, watchlists={})
    (tmp_path / "watchlists" / "notes.txt").write_text("not a watchlist", encoding="utf-8")
    error = config_error(path)
    assert str(error) == (f"{path}:12: watchlists_dir: no watchlists: "
                          f"{tmp_path / 'watchlists'} has no *.yaml files")


def test_empty_watchlist_file(tmp_path: Path) -> None:
    error = config_error(write_config(tmp_path, watchlists={"desk.yaml": "# nothing yet\n"}))
    assert str(error) == f"{tmp_path / 'watchlists' / 'desk.yaml'}: file is empty"


def test_duplicate_watchlist_names_name_both_files(tmp_path: Path) -> None:
    path = write_config(tmp_path, watchlists={"a-desk.yaml": DESK, "b-desk.yaml": DESK})
    error = config_error(path)
    assert error.file == str(tmp_path / "watchlists" / "b-desk.yaml")
    assert (error.line, error.key) == (1, "name")
    assert str(error).endswith(f"duplicate watchlist name 'vellmark-desk' "
                               f"(also in {tmp_path / 'watchlists' / 'a-desk.yaml'})")


def test_watchlist_name_defaults_to_file_name(tmp_path: Path) -> None:
    desk = DESK.replace("name: vellmark-desk\n", "")
    config = load_config(write_config(tmp_path, watchlists={"night-desk.yaml": desk}), env={})
    assert [w.name for w in config.watchlists] == ["night-desk"]


def test_secrets_stay_out_of_errors_and_repr(tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-topsecret-9931", "SMTP_PASSWORD": "hunter2-fictional",
           "SMTP_PORT": "hunter3-fictional", "ZONE": "Secret/Zone-7781"}
    main = MAIN.replace("sender: Digest", "username: bot\n  password: ${SMTP_PASSWORD}\n"
                        "  sender: Digest")
    config = load_config(write_config(tmp_path, main), env=env)
    for text in (repr(config), str(config), summarize_config(config)):
        assert "xoxb-topsecret-9931" not in text and "hunter2-fictional" not in text
    bad_port = main.replace("host: smtp.example.org",
                            "host: smtp.example.org\n  port: ${SMTP_PORT}")
    error = config_error(write_config(tmp_path, bad_port), env)
    assert error.key == "email.port" and "hunter3-fictional" not in str(error)
    assert str(error).endswith("email.port: Input should be a valid integer, unable to parse "
                               "string as an integer")
    bad_zone = main.replace("timezone: Europe/London", "timezone: ${ZONE}")
    error = config_error(write_config(tmp_path, bad_zone), env)
    assert error.key == "timezone" and "Secret/Zone-7781" not in str(error)
    assert "unknown timezone '***'" in str(error)


def test_summary_lists_feeds_watchlists_topics(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path), env={"SLACK_BOT_TOKEN": "xoxb-summary-5510"})
    summary = summarize_config(config)
    assert "2 feed(s)" in summary and "Example World: https://news.example.org/world.rss" in summary
    assert "wire.example.net: https://wire.example.net/markets.atom" in summary
    assert "vellmark-desk (desk.yaml): daily at 07:30 Europe/London" in summary
    assert "deliver: slack:#vellmark, email:desk@example.org,night@example.org" in summary
    assert "topic 'Vellmark troops': Vellmark AND (troop* OR border)" in summary
    assert "topic 'Lindholm talks' [alert]: \"peace talks\" Lindholm" in summary
    assert "xoxb-summary-5510" not in summary


def test_summary_hides_database_password(tmp_path: Path) -> None:
    main = MAIN.replace("sqlite:///state/digestbot.db",
                        "postgresql+psycopg://digest:${PGPASSWORD}@db.example.org/digest")
    config = load_config(write_config(tmp_path, main), env={"PGPASSWORD": "pg-fictional-77"})
    assert config.database == "postgresql+psycopg://digest:pg-fictional-77@db.example.org/digest"
    assert "pg-fictional-77" not in summarize_config(config)
    assert "pg-fictional-77" not in repr(config)


def test_the_only_topic_invalid_is_reported_by_its_own_line_not_as_an_empty_list(
        tmp_path: Path) -> None:
    lone = """\
        name: lone-desk
        deliver:
          - console: {}
        topics:
          - name: Border
            query: 'border AND (troops'
            alert: yes please
        """
    path = write_config(tmp_path, watchlists={"lone.yaml": lone})
    message = str(config_error(path)).replace(str(tmp_path), "TMP")
    assert message == ("TMP/watchlists/lone.yaml:6: topics[0].query: unbalanced parenthesis "
                       "(at character 12) (and 1 more problem)")
