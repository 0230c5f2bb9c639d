"""Configuration from the environment, with one clear line for each missing value."""

from __future__ import annotations

import base64
import binascii
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.domain.erasure import KEY_MIN_LENGTH
from bot.slack.pacing import Pace

DEFAULT_DATABASE = "sqlite+aiosqlite:///./handoff.db"
DEFAULT_API_URL = "https://slack.com/api/"
DEFAULT_HUBSPOT_URL = "https://api.hubapi.com"


class ConfigError(Exception):
    """Missing or malformed configuration, worded for the person starting the server."""


@dataclass(frozen=True)
class Settings:
    # Secrets stay out of repr(), so logging a Settings never leaks them.
    bot_token: str | None = field(repr=False)
    signing_secret: str | None = field(repr=False)
    app_token: str | None = field(repr=False)
    api_url: str
    database_url: str
    sla_file: str
    intake_token: str | None = field(repr=False)
    intake_signing_secret: str | None = field(repr=False)
    # Keys the digests an erased lead keeps of its ids (bot/domain/erasure.py); not derived
    # from a Slack or intake secret: rotating one of those must not bring erased people back.
    erasure_key: str | None = field(repr=False)
    host: str
    port: int
    pace: Pace = field(default_factory=Pace)
    sweep_seconds: float = 30.0  # how often `serve` runs the escalation sweep (0: never)
    intake_max_backlog: int = 20_000  # pending Slack deliveries past which intake says later
    intake_max_in_flight: int = 200  # intake requests waiting on the database, at most
    shutdown_grace: float = 10.0  # seconds SIGTERM leaves requests and deliveries under way
    # Seconds SIGTERM keeps taking requests with /readyz failing, so the load balancer stops
    # sending traffic before the listener closes (0: close at once).
    shutdown_drain: float = 0.0
    ready_max_outbox_age: float = 600.0  # /readyz fails while a delivery waits longer than this
    outbox_keep_days: float = 7.0  # delivered outbox rows are emptied after this (0: kept)
    report_process: bool = True  # reports built in a worker process (0: in the server's)
    # Ids of erasure keys lost for good: their digests no longer stop the server starting.
    retired_erasure_keys: frozenset[str] = frozenset()
    # The CRM's credentials (the SLA file's `crm:` picks which are needed; docs/crm.md).
    hubspot_access_token: str | None = field(default=None, repr=False)
    hubspot_api_url: str = DEFAULT_HUBSPOT_URL
    salesforce_instance_url: str | None = None
    salesforce_access_token: str | None = field(default=None, repr=False)
    # A connected app's refresh-token grant, to renew an expired session (all three, or none).
    salesforce_refresh: tuple[str, str, str] | None = field(default=None, repr=False)
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    # The CRM's webhooks (docs/crm-inbound.md): HubSpot's app client secret, which signs them,
    # and the bearer token a Salesforce Flow or Apex sends.
    hubspot_client_secret: str | None = field(default=None, repr=False)
    salesforce_webhook_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        port_text = env.get("PORT", "3000")
        if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
            raise ConfigError(f"PORT must be a port number (0–65535), not {port_text!r}")
        api_url = _base_url(env, "SLACK_API_URL", DEFAULT_API_URL)
        return cls(
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            database_url=_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE),
            sla_file=env.get("HANDOFF_SLA_FILE") or "sla.yaml",
            intake_token=env.get("HANDOFF_INTAKE_TOKEN") or None,
            intake_signing_secret=env.get("HANDOFF_INTAKE_SIGNING_SECRET") or None,
            erasure_key=_erasure_key(env.get("HANDOFF_ERASURE_KEY") or None),
            host=env.get("HOST") or "0.0.0.0",
            port=int(port_text),
            pace=Pace(
                posts_per_second=_rate(
                    env, "HANDOFF_SLACK_POSTS_PER_SECOND", Pace.posts_per_second
                ),
                post_burst=_rate(env, "HANDOFF_SLACK_POST_BURST", Pace.post_burst),
                calls_per_minute=_rate(
                    env, "HANDOFF_SLACK_CALLS_PER_MINUTE", Pace.calls_per_minute
                ),
                call_burst=_rate(env, "HANDOFF_SLACK_CALL_BURST", Pace.call_burst),
            ),
            sweep_seconds=_seconds(env, "HANDOFF_SWEEP_SECONDS", 30.0),
            intake_max_backlog=_count(env, "HANDOFF_INTAKE_MAX_BACKLOG", 20_000),
            intake_max_in_flight=_count(env, "HANDOFF_INTAKE_MAX_IN_FLIGHT", 200),
            shutdown_grace=_seconds(env, "HANDOFF_SHUTDOWN_GRACE", 10.0),
            shutdown_drain=_seconds(env, "HANDOFF_SHUTDOWN_DRAIN", 0.0),
            ready_max_outbox_age=_seconds(env, "HANDOFF_READY_MAX_OUTBOX_AGE", 600.0),
            outbox_keep_days=_seconds(env, "HANDOFF_OUTBOX_KEEP_DAYS", 7.0, "days"),
            report_process=_switch(env, "HANDOFF_REPORT_PROCESS", True),
            retired_erasure_keys=_key_ids(env.get("HANDOFF_ERASURE_KEY_RETIRED") or ""),
            hubspot_access_token=env.get("HUBSPOT_ACCESS_TOKEN") or None,
            hubspot_api_url=_hubspot_url(env.get("HUBSPOT_API_URL") or DEFAULT_HUBSPOT_URL),
            salesforce_instance_url=_base_url(
                env, "SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com"
            ).rstrip("/")
            if env.get("SALESFORCE_INSTANCE_URL")
            else None,
            salesforce_access_token=env.get("SALESFORCE_ACCESS_TOKEN") or None,
            salesforce_refresh=_salesforce_refresh(env),
            webhook_url=env.get("HANDOFF_WEBHOOK_URL") or None,
            webhook_secret=env.get("HANDOFF_WEBHOOK_SECRET") or None,
            hubspot_client_secret=env.get("HUBSPOT_CLIENT_SECRET") or None,
            salesforce_webhook_token=env.get("HANDOFF_SALESFORCE_WEBHOOK_TOKEN") or None,
        )

    def require(self, *names: str) -> None:
        """Raise ConfigError naming every missing required environment variable."""
        values = {
            "SLACK_BOT_TOKEN": self.bot_token,
            "SLACK_SIGNING_SECRET": self.signing_secret,
            "SLACK_APP_TOKEN": self.app_token,
            "HANDOFF_INTAKE_TOKEN": self.intake_token,
            "HANDOFF_ERASURE_KEY": self.erasure_key,
        }
        why = {
            "SLACK_BOT_TOKEN": "the bot token (xoxb-…) from your Slack app's OAuth page",
            "SLACK_SIGNING_SECRET": "the signing secret from your Slack app's Basic Information",
            "SLACK_APP_TOKEN": "an app-level token (xapp-…) with connections:write, for --socket",
            "HANDOFF_INTAKE_TOKEN": "the bearer token marketing systems send to POST /leads",
            "HANDOFF_ERASURE_KEY": ERASURE_KEY_HELP,
        }
        missing = [name for name in names if not values.get(name)]
        if missing:
            raise ConfigError("\n".join(f"{name} is not set: {why[name]}." for name in missing))
        # An app token of another kind: Socket Mode would retry its connection forever (the
        # bot token's kind is Slack's to judge: `handoff doctor` says what it answers).
        app = values.get("SLACK_APP_TOKEN") or ""
        if "SLACK_APP_TOKEN" in names and not app.startswith("xapp-"):
            raise ConfigError(
                f"SLACK_APP_TOKEN starts {app[:5]!r}, not 'xapp-': it must be "
                f"{why['SLACK_APP_TOKEN']}."
            )


ERASURE_KEY_HELP = (
    f"a random secret of at least {KEY_MIN_LENGTH} characters (`openssl rand -hex 32`) that keys "
    "what an erased person's lead keeps of their ids; set it once and keep it with your other "
    "secrets, apart from the database's backups (docs/operations.md#the-erasure-key)"
)


def _erasure_key(text: str | None) -> str | None:
    """HANDOFF_ERASURE_KEY, if set: long enough that nobody guesses it (with it, anyone with
    the database could test guessed ids against the digests of erased ones)."""
    key = text.strip() if text is not None else None
    if key is not None and len(key) < KEY_MIN_LENGTH:
        length = len(key)
        raise ConfigError(
            f"HANDOFF_ERASURE_KEY has {length} characters; it must be {ERASURE_KEY_HELP}."
        )
    return key


def _key_ids(text: str) -> frozenset[str]:
    """HANDOFF_ERASURE_KEY_RETIRED: key ids (8 hex characters each), separated by commas."""
    ids = frozenset(part.strip().lower() for part in text.split(",") if part.strip())
    wrong = sorted(i for i in ids if len(i) != 8 or any(c not in "0123456789abcdef" for c in i))
    if wrong:
        raise ConfigError(
            f"HANDOFF_ERASURE_KEY_RETIRED takes key ids of 8 hex characters, separated by "
            f"commas (as the refusal to start names them), not {', '.join(map(repr, wrong))}"
        )
    return ids


# What each CRM needs from the environment, and where to find it.
CRM_ENV = {
    "hubspot": {
        "HUBSPOT_ACCESS_TOKEN": "a HubSpot private app's access token (docs/crm-hubspot.md)",
    },
    "salesforce": {
        "SALESFORCE_INSTANCE_URL": "your org's URL, like https://acme.my.salesforce.com",
        "SALESFORCE_ACCESS_TOKEN": "a Salesforce session or OAuth access token "
        "(docs/crm-salesforce.md)",
    },
    "webhook": {
        "HANDOFF_WEBHOOK_URL": "the https URL that receives Handoff's signed lead events",
        "HANDOFF_WEBHOOK_SECRET": "the signing secret, whsec_ followed by base64 (docs/crm.md)",
    },
}


SALESFORCE_REFRESH_ENV = (
    "SALESFORCE_CLIENT_ID",
    "SALESFORCE_CLIENT_SECRET",
    "SALESFORCE_REFRESH_TOKEN",
)


def _salesforce_refresh(env: Mapping[str, str]) -> tuple[str, str, str] | None:
    """The connected app's refresh grant: all three variables, or none of them."""
    values = [env.get(name) or "" for name in SALESFORCE_REFRESH_ENV]
    if not any(values):
        return None
    if not all(values):
        missing = [n for n, v in zip(SALESFORCE_REFRESH_ENV, values, strict=True) if not v]
        raise ConfigError(
            f"{', '.join(missing)} not set: an expired Salesforce session is renewed with all "
            f"three of {', '.join(SALESFORCE_REFRESH_ENV)}, or none of them."
        )
    client_id, secret, token = values
    return client_id, secret, token


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = (env.get(name) or "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, not {text!r}")


def require_crm(settings: Settings, kind: str) -> None:
    """Raise ConfigError naming every environment variable the `crm:` kind needs and lacks."""
    values = {
        "HUBSPOT_ACCESS_TOKEN": settings.hubspot_access_token,
        "SALESFORCE_INSTANCE_URL": settings.salesforce_instance_url,
        "SALESFORCE_ACCESS_TOKEN": settings.salesforce_access_token,
        "HANDOFF_WEBHOOK_URL": settings.webhook_url,
        "HANDOFF_WEBHOOK_SECRET": settings.webhook_secret,
    }
    needed = CRM_ENV.get(kind, {})
    missing = [f"{name} is not set: {why} (crm: {kind})." for name, why in needed.items()]
    missing = [line for name, line in zip(needed, missing, strict=True) if not values.get(name)]
    if missing:
        raise ConfigError("\n".join(missing))
    if kind == "webhook":
        _webhook_url(str(settings.webhook_url))
        _webhook_secret(str(settings.webhook_secret))


def _webhook_url(text: str) -> None:
    """ConfigError unless `text` is an absolute http or https URL with a host: anything else
    reaches no receiver, and every event would wait on it. The value is not repeated (a
    receiver's URL may carry its own token)."""
    try:
        url = urlsplit(text.strip())
        url.port  # noqa: B018 (raises ValueError for a port that is not one)
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number
        problem = "it does not read as a URL (its host or port)"
    else:
        if url.scheme not in ("http", "https"):
            problem = f"its scheme is {url.scheme}:" if url.scheme else "it has no scheme"
        elif not url.hostname:
            problem = "it names no host"
        else:
            return
    raise ConfigError(
        "HANDOFF_WEBHOOK_URL must be an http:// or https:// URL with a host, like "
        f"https://receiver.example/hooks/handoff: {problem} (docs/crm.md)."
    )


# Standard Webhooks: a symmetric secret is random, at least 24 bytes (192 bits) and at most 64
# (512 bits), base64 encoded and prefixed with whsec_.
WEBHOOK_SECRET_BYTES = (24, 64)


def _webhook_secret(text: str) -> None:
    """ConfigError unless `text` is a Standard Webhooks secret. The `standardwebhooks` package
    takes almost anything (it drops what is not base64, so `-` and `_` change the key that a
    receiver in another language derives), and a short key is a guessable one."""
    low, high = WEBHOOK_SECRET_BYTES
    body = text.removeprefix("whsec_")
    problem = None
    if body == text:
        problem = "it does not start with whsec_"
    else:
        try:
            size = len(base64.b64decode(body + "=" * (-len(body) % 4), validate=True))
        except binascii.Error:
            problem = "what follows whsec_ is not base64 (A-Z, a-z, 0-9, + and /)"
        else:
            if not low <= size <= high:
                problem = f"it holds {size} bytes"
    if problem:
        raise ConfigError(
            f"HANDOFF_WEBHOOK_SECRET must be whsec_ followed by the base64 of {low} to {high} "
            f"random bytes, as Standard Webhooks secrets are: {problem} (docs/crm.md)."
        )


def _hubspot_url(text: str) -> str:
    """HubSpot's API root: the client adds each path (`/crm/v3/objects/contacts/…`) itself, so
    a root with a path would send every call where HubSpot has nothing, and a 404 reads as a
    record that is gone (the write done, silently)."""
    url = urlsplit(text.strip().rstrip("/"))
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigError(f"HUBSPOT_API_URL must be a URL like {DEFAULT_HUBSPOT_URL}, not {text!r}")
    if url.path or url.query or url.fragment:
        raise ConfigError(
            f"HUBSPOT_API_URL is the API's root, like {DEFAULT_HUBSPOT_URL}, with no path: "
            f"{text!r} goes on past {url.scheme}://{url.netloc} (the client adds /crm/v3/… itself)"
        )
    return f"{url.scheme}://{url.netloc}"


def _base_url(env: Mapping[str, str], name: str, like: str) -> str:
    """`name`'s http(s) URL (`like` when unset, which is also the example); ConfigError for
    anything else: every call to it would fail, and be retried for good, naming nothing."""
    text = env.get(name)
    if not text:
        return like
    url = urlsplit(text.strip())
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigError(f"{name} must be an http(s) URL like {like}, not {text!r}")
    return text.strip()


def _rate(env: Mapping[str, str], name: str, default: float) -> float:
    """A pace: a positive number; ConfigError for anything else (`inf` is a pace that never
    waits, and Slack's rate limits answer 429 instead)."""
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive number, not {text!r}")
    return value


# The drivers Handoff ships (pyproject.toml), and what a URL written for another one means.
DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def _database_url(text: str) -> str:
    """`DATABASE_URL` if it names a database through a driver Handoff ships (aiosqlite,
    asyncpg); ConfigError with the URL to write otherwise."""
    forms = "sqlite+aiosqlite:///./handoff.db or postgresql+asyncpg://user:password@host/db"
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL is not a database URL: write it like {forms}") from None
    if url.drivername == "sqlite+aiosqlite":
        folder = Path(url.database or ".").parent
        if url.database not in (None, "", ":memory:") and not folder.is_dir():
            raise ConfigError(
                f"DATABASE_URL names a SQLite file in {folder}, a folder that is not there: "
                "create it, or name another"
            )
        return text
    if url.drivername == "postgresql+asyncpg":
        return text
    wanted = DRIVERS.get(url.get_backend_name())
    if wanted is None:
        raise ConfigError(f"DATABASE_URL names {url.drivername!r}: Handoff runs on {forms}")
    fixed = url.set(drivername=wanted).render_as_string(hide_password=True)
    raise ConfigError(
        f"DATABASE_URL uses the driver {url.drivername!r}: Handoff's is async, write {fixed}"
    )


def _seconds(env: Mapping[str, str], name: str, default: float, unit: str = "seconds") -> float:
    """A number of `unit` (0 turns it off); ConfigError for anything else (negative, NaN or
    infinite included)."""
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{name} must be a number of {unit} (0 turns it off), not {text!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise ConfigError(f"{name} must be a whole number (0 turns it off), not {text!r}")
    return int(text)
