"""The adapter the SLA file's `crm:` section picks, built from the environment's secrets."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.crm.port import CrmAdapter
from bot.settings import ConfigError, Settings, require_crm

Emails = Callable[[str], Awaitable[str | None]]


def adapter_for(
    crm: Any, settings: Settings, emails: Emails, seconds: Callable[[], float] | None = None
) -> CrmAdapter:
    """The adapter for `crm` (`Crm`, bot/domain/policy.py); ConfigError naming what the
    environment lacks. `emails(user_id)` gives a Slack member's email, to find their owner in
    the CRM; `seconds` is the clock (in seconds) a CRM's own wait is counted on, the injected
    clock's (default: the monotonic clock). The HubSpot and Salesforce adapters are imported
    only when chosen."""
    require_crm(settings, crm.kind)
    if crm.kind == "webhook":
        from bot.crm.webhook import WebhookAdapter

        try:
            return WebhookAdapter(
                str(settings.webhook_url),
                str(settings.webhook_secret),
                clock=seconds or time.time,  # Unix seconds: a Retry-After may be a date
            )
        except Exception as error:  # binascii.Error, ValueError, the package's own errors
            raise ConfigError(
                "HANDOFF_WEBHOOK_SECRET must be whsec_ followed by base64, as Standard Webhooks "
                f"secrets are ({type(error).__name__})"
            ) from error
    if crm.kind == "hubspot":
        from bot.crm.hubspot import HubSpotAdapter

        adapter: CrmAdapter = HubSpotAdapter(
            crm,
            str(settings.hubspot_access_token),
            settings.hubspot_api_url,
            emails=emails,
            clock=seconds or time.monotonic,
        )
        return adapter
    if crm.kind == "salesforce":
        from bot.crm.salesforce import SalesforceAdapter, oauth_refresh

        instance = str(settings.salesforce_instance_url)
        grant = settings.salesforce_refresh
        refresh = None if grant is None else oauth_refresh(instance, *grant)
        adapter = SalesforceAdapter(
            crm, instance, str(settings.salesforce_access_token), emails=emails, refresh=refresh
        )
        return adapter
    raise ConfigError(f"crm: kind must be hubspot, salesforce or webhook, not {crm.kind!r}")
