"""Settings from the environment: every number names its unit when it is wrong."""

from __future__ import annotations

import logging

import pytest

from bot.cli.main import main
from bot.settings import ConfigError, Settings
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("name", "value", "unit"),
    [
        ("HANDOFF_OUTBOX_KEEP_DAYS", "abc", "days"),  # said "seconds" for a number of days
        ("HANDOFF_OUTBOX_KEEP_DAYS", "-1", "days"),
        ("HANDOFF_SWEEP_SECONDS", "nan", "seconds"),  # was taken: a sweep every NaN seconds
        ("HANDOFF_SHUTDOWN_GRACE", "inf", "seconds"),
    ],
)
def test_a_bad_number_names_the_setting_and_its_unit(name: str, value: str, unit: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    assert (
        str(refused.value) == f"{name} must be a number of {unit} (0 turns it off), not {value!r}"
    )


@pytest.mark.parametrize(
    "name",
    [
        "HANDOFF_SLACK_POSTS_PER_SECOND",
        "HANDOFF_SLACK_POST_BURST",
        "HANDOFF_SLACK_CALLS_PER_MINUTE",
        "HANDOFF_SLACK_CALL_BURST",
    ],
)
@pytest.mark.parametrize("value", ["inf", "Infinity", "1e999", "nan", "-inf", "0", "fast"])
def test_a_rate_that_is_not_a_positive_finite_number_is_refused(name: str, value: str) -> None:
    """`inf` was taken: a pace that never waits, so Slack's rate limits answer 429 instead."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    assert str(refused.value) == f"{name} must be a positive number, not {value!r}"


def test_rates_are_read() -> None:
    pace = Settings.from_env(
        {"HANDOFF_SLACK_POSTS_PER_SECOND": "0.5", "HANDOFF_SLACK_CALL_BURST": "20"}
    ).pace
    assert (pace.posts_per_second, pace.call_burst) == (0.5, 20.0)


def test_good_numbers_are_read() -> None:
    settings = Settings.from_env({"HANDOFF_OUTBOX_KEEP_DAYS": "14", "HANDOFF_SWEEP_SECONDS": "0"})
    assert (settings.outbox_keep_days, settings.sweep_seconds) == (14.0, 0.0)


def test_a_database_url_for_another_driver_says_what_to_write() -> None:
    cases = {
        "sqlite:////tmp/x.db": "write sqlite+aiosqlite:////tmp/x.db",
        "postgresql://u:secret@db:5432/h": "write postgresql+asyncpg://u:***@db:5432/h",
        "/tmp/handoff.db": "is not a database URL: write it like sqlite+aiosqlite:///",
        "mysql://db/h": "names 'mysql': Handoff runs on sqlite+aiosqlite:",
    }
    for url, said in cases.items():
        with pytest.raises(ConfigError, match="DATABASE_URL") as refused:
            Settings.from_env({"DATABASE_URL": url})
        assert said in str(refused.value) and "secret" not in str(refused.value)


def test_hubspots_api_url_is_its_root() -> None:
    """With a path, every call would go where HubSpot has nothing, and its 404 would read as
    a contact that is gone: each write marked done, silently."""
    assert Settings.from_env({}).hubspot_api_url == "https://api.hubapi.com"
    read = Settings.from_env({"HUBSPOT_API_URL": "http://127.0.0.1:8081/"})
    assert read.hubspot_api_url == "http://127.0.0.1:8081"
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"HUBSPOT_API_URL": "https://api.hubapi.com/crm/v3"})
    assert str(refused.value) == (
        "HUBSPOT_API_URL is the API's root, like https://api.hubapi.com, with no path: "
        "'https://api.hubapi.com/crm/v3' goes on past https://api.hubapi.com (the client adds "
        "/crm/v3/… itself)"
    )
    with pytest.raises(ConfigError, match=r"must be a URL like https://api\.hubapi\.com"):
        Settings.from_env({"HUBSPOT_API_URL": "api.hubapi.com"})


@pytest.mark.parametrize(
    ("name", "value", "like"),
    [
        ("SLACK_API_URL", "notaurl", "https://slack.com/api/"),
        ("SLACK_API_URL", "slack.com/api/", "https://slack.com/api/"),
        ("SLACK_API_URL", "ftp://slack.com/api/", "https://slack.com/api/"),
        ("SALESFORCE_INSTANCE_URL", "acme.my.salesforce.com", "https://acme.my.salesforce.com"),
    ],
)
def test_a_base_url_that_is_not_one_is_named(name: str, value: str, like: str) -> None:
    """Before, `serve` started with it and every Slack call (or CRM write) failed, retried for
    good, with no line naming the setting."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    assert str(refused.value) == f"{name} must be an http(s) URL like {like}, not {value!r}"


def test_base_urls_are_read() -> None:
    read = Settings.from_env(
        {"SLACK_API_URL": "http://127.0.0.1:9/api", "SALESFORCE_INSTANCE_URL": "https://a.b/"}
    )
    assert (read.api_url, read.salesforce_instance_url) == (
        "http://127.0.0.1:9/api/",
        "https://a.b",
    )


def test_a_token_of_another_kind_is_named() -> None:
    settings = Settings.from_env({"SLACK_APP_TOKEN": "xoxb-not-an-app-token"})
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN starts 'xoxb-', not 'xapp-'"):
        settings.require("SLACK_APP_TOKEN")


def test_check_reads_no_server_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad PORT is `serve`'s problem: `handoff check` still checks the file."""
    monkeypatch.setenv("PORT", "abc")
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        assert main(["check", str(ROOT / "sla.yaml")]) == 0
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert "PORT" not in capsys.readouterr().err


def test_the_specs_defaults_and_names() -> None:
    """SPEC "Interfaces": with nothing set, `PORT` 3000, `DATABASE_URL`
    sqlite+aiosqlite:///./handoff.db, `SLACK_API_URL` https://slack.com/api/, `HUBSPOT_API_URL`
    https://api.hubapi.com, Slack's published 1 post per second per channel, the SLA file
    sla.yaml, and no intake token (intake refuses everything); each variable read by its name."""
    unset = Settings.from_env({})
    assert unset.port == 3000
    assert unset.database_url == "sqlite+aiosqlite:///./handoff.db"
    assert unset.api_url == "https://slack.com/api/"
    assert unset.hubspot_api_url == "https://api.hubapi.com"
    assert unset.pace.posts_per_second == 1.0
    assert unset.sla_file == "sla.yaml"
    assert (unset.bot_token, unset.signing_secret, unset.app_token, unset.intake_token) == (
        None,
        None,
        None,
        None,
    )
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_APP_TOKEN": "xapp-1",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "DATABASE_URL": "postgresql+asyncpg://handoff@db/handoff",
        "HANDOFF_SLA_FILE": "/etc/handoff/sla.yaml",
        "HANDOFF_INTAKE_TOKEN": "intake",
        "HOST": "127.0.0.1",
        "PORT": "8080",
        "HANDOFF_SLACK_POSTS_PER_SECOND": "0.9",
        "HANDOFF_SLACK_POST_BURST": "1",
        "HUBSPOT_ACCESS_TOKEN": "pat-1",
        "HUBSPOT_API_URL": "http://127.0.0.1:8081",
        "SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com",
        "SALESFORCE_ACCESS_TOKEN": "00D-1",
        "HANDOFF_WEBHOOK_URL": "https://receiver.example/hooks",
        "HANDOFF_WEBHOOK_SECRET": "whsec_x",
    }
    read = Settings.from_env(env)
    assert (read.bot_token, read.signing_secret, read.app_token) == ("xoxb-1", "secret", "xapp-1")
    assert (read.api_url, read.database_url) == (env["SLACK_API_URL"], env["DATABASE_URL"])
    assert (read.sla_file, read.intake_token) == ("/etc/handoff/sla.yaml", "intake")
    assert (read.host, read.port) == ("127.0.0.1", 8080)
    assert (read.pace.posts_per_second, read.pace.post_burst) == (0.9, 1.0)
    assert (read.hubspot_access_token, read.hubspot_api_url) == ("pat-1", "http://127.0.0.1:8081")
    assert (read.salesforce_instance_url, read.salesforce_access_token) == (
        "https://acme.my.salesforce.com",
        "00D-1",
    )
    assert (read.webhook_url, read.webhook_secret) == (
        "https://receiver.example/hooks",
        "whsec_x",
    )


def test_the_package_installs_the_handoff_console_script() -> None:
    """SPEC: "the package installs a console script `handoff`"."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["handoff"] == "bot.cli.main:main"
