"""Configuration from the environment, with one clear line for each missing value."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_DATABASE = "sqlite+aiosqlite:///./handoff.db"
DEFAULT_API_URL = "https://slack.com/api/"


class ConfigError(Exception):
    """Missing or malformed configuration, worded for the person starting the server."""


@dataclass(frozen=True)
class Settings:
    bot_token: str | None
    signing_secret: str | None
    app_token: str | None
    api_url: str
    database_url: str
    sla_file: str
    intake_token: str | None
    host: str
    port: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        port_text = env.get("PORT", "3000")
        if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
            raise ConfigError(f"PORT must be a port number (0–65535), not {port_text!r}")
        api_url = env.get("SLACK_API_URL") or DEFAULT_API_URL
        return cls(
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE,
            sla_file=env.get("HANDOFF_SLA_FILE") or "sla.yaml",
            intake_token=env.get("HANDOFF_INTAKE_TOKEN") or None,
            host=env.get("HOST") or "0.0.0.0",
            port=int(port_text),
        )

    def require(self, *names: str) -> None:
        """Raise ConfigError naming every missing required environment variable."""
        values = {
            "SLACK_BOT_TOKEN": self.bot_token,
            "SLACK_SIGNING_SECRET": self.signing_secret,
            "SLACK_APP_TOKEN": self.app_token,
            "HANDOFF_INTAKE_TOKEN": self.intake_token,
        }
        why = {
            "SLACK_BOT_TOKEN": "the bot token (xoxb-…) from your Slack app's OAuth page",
            "SLACK_SIGNING_SECRET": "the signing secret from your Slack app's Basic Information",
            "SLACK_APP_TOKEN": "an app-level token (xapp-…) with connections:write, for --socket",
            "HANDOFF_INTAKE_TOKEN": "the bearer token marketing systems send to POST /leads",
        }
        missing = [name for name in names if not values.get(name)]
        if missing:
            raise ConfigError("\n".join(f"{name} is not set: {why[name]}." for name in missing))
